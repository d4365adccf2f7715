/* convert: model folders to and from llama.cpp's GGUF, and Hugging Face folders in.
 *
 * A model folder (config.json, model.safetensors, tokenizer.json) maps onto GGUF's "llama"
 * architecture: hyperparameters as llama.* keys, the byte-level BPE as tokenizer.ggml.* keys
 * (model "gpt2") and a SentencePiece-style one with its scores and token types (model "llama"),
 * HF tensor names onto llama.cpp's (token_embd, blk.N.attn_q, ...), with the
 * rows of attn_q and attn_k permuted because llama.cpp rotates adjacent pairs of dimensions
 * where Hugging Face rotates dimension i with i + HS/2. Attention biases (Qwen2's q/k/v, Llama's
 * attention_bias) become blk.N.attn_{q,k,v,output}.bias, which llama.cpp's llama architecture
 * reads; the q and k biases are permuted like their weights' rows.
 *
 * A model with q/k/v biases and no output bias can also be written as, and any such file read
 * from, GGUF's "qwen2" architecture (qwen2.* keys; the biases required): llama.cpp rotates
 * dimension i with i + HS/2 there as Hugging Face does, so nothing is permuted. */
#ifndef DISTIL_CONVERT_H
#define DISTIL_CONVERT_H

#include "base/base.h"
#include "formats/safetensors.h"

typedef enum { DL_EXPORT_F32, DL_EXPORT_F16, DL_EXPORT_Q8_0 } dl_export_dtype;
typedef enum { DL_GGUF_LLAMA, DL_GGUF_QWEN2 } dl_gguf_arch;
/* "llama" or "qwen2". */
int dl_gguf_arch_parse(const char *s, dl_gguf_arch *out, dl_error *err);
const char *dl_gguf_arch_name(dl_gguf_arch a);
/* "f32", "f16" or "q8_0". */
int dl_export_dtype_parse(const char *s, dl_export_dtype *out, dl_error *err);
const char *dl_export_dtype_name(dl_export_dtype t);

/* Writes model_dir as a GGUF v3 file. Norm weights stay F32; matrices get dtype (Q8_0 falls
 * back to F16 for a matrix whose rows are not a multiple of 32). A byte-level tokenizer.json must
 * use a pre-tokenizer GGUF has a name for ("gpt-2", "llama-bpe", ...); a SentencePiece-style one
 * is written as tokenizer.ggml.model "llama". arch DL_GGUF_QWEN2 needs q/k/v biases and no output
 * bias (what llama.cpp's qwen2 architecture loads). */
int dl_export_gguf(const char *model_dir, const char *out_path, dl_export_dtype dtype, dl_gguf_arch arch,
                   dl_error *err);

/* Reads a GGUF file of architecture "llama" or "qwen2" with tensors in F32, F16, BF16 or Q8_0 and writes
 * out_dir: config.json, model.safetensors (float32) and, for a "gpt2" or a "llama"
 * (SentencePiece-style) vocabulary, a tokenizer.json. */
int dl_import_gguf(const char *gguf_path, const char *out_dir, dl_error *err);

/* Reads a Hugging Face model folder (config.json of LlamaForCausalLM or Qwen2ForCausalLM,
 * model.safetensors or a sharded model.safetensors.index.json, F32/F16/BF16 weights, and a
 * tokenizer.json distil's tokenizer reads) and writes out_dir: config.json, model.safetensors
 * in dtype (DL_F32, DL_F16 or DL_BF16) and tokenizer.json copied as it is, each atomically.
 * Everything is read and checked before anything is written. */
int dl_import_hf(const char *hf_dir, const char *out_dir, dl_dtype dtype, dl_error *err);

/* Reads a llama2.c checkpoint (legacy or version-1 fp32 format, told apart by the magic) and
 * its tokenizer.bin and writes out_dir: config.json (rope_theta 10000, rms_norm_eps 1e-5, bos
 * and eos from the tokenizer), model.safetensors (F32, Q/K rows moved from llama2.c's
 * interleaved RoPE layout to Hugging Face's) and a SentencePiece-style tokenizer.json. The
 * vocabulary sizes of the two files must agree. */
int dl_import_llama2c(const char *checkpoint, const char *tokenizer_bin, const char *out_dir, dl_error *err);
struct dl_model;
/* The checkpoint alone, from memory: creates m (the caller frees it with dl_model_free). The
 * file must be exactly as long as its header implies; bos_id and eos_id are left at -1. */
int dl_llama2c_read(struct dl_model *m, const void *data, size_t len, dl_error *err);

/* The row permutation of attn_q / attn_k. w is (n_head * head_size, cols) row-major; within
 * each head, GGUF row 2i + j holds HF row j * head_size/2 + i (j = 0, 1). src != dst. */
void dl_qk_to_gguf(const float *src, float *dst, int n_head, int head_size, size_t cols);
void dl_qk_from_gguf(const float *src, float *dst, int n_head, int head_size, size_t cols);

/* llama.cpp's name of a Hugging Face tensor name of our layout ("model.layers.3.mlp.up_proj.weight"
 * -> "blk.3.ffn_up.weight"); fails for a name it does not know. */
int dl_gguf_name_of(const char *hf_name, char *out, size_t n, dl_error *err);

#endif
