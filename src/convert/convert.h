/* convert: model folders to and from llama.cpp's GGUF.
 *
 * A model folder (config.json, model.safetensors, tokenizer.json) maps onto GGUF's "llama"
 * architecture: hyperparameters as llama.* keys, the byte-level BPE as tokenizer.ggml.* keys
 * (model "gpt2"), HF tensor names onto llama.cpp's (token_embd, blk.N.attn_q, ...), with the
 * rows of attn_q and attn_k permuted because llama.cpp rotates adjacent pairs of dimensions
 * where Hugging Face rotates dimension i with i + HS/2. */
#ifndef DISTIL_CONVERT_H
#define DISTIL_CONVERT_H

#include "base/base.h"

typedef enum { DL_EXPORT_F32, DL_EXPORT_F16, DL_EXPORT_Q8_0 } dl_export_dtype;
/* "f32", "f16" or "q8_0". */
int dl_export_dtype_parse(const char *s, dl_export_dtype *out, dl_error *err);
const char *dl_export_dtype_name(dl_export_dtype t);

/* Writes model_dir as a GGUF v3 file. Norm weights stay F32; matrices get dtype (Q8_0 falls
 * back to F16 for a matrix whose rows are not a multiple of 32). The tokenizer.json must use
 * the GPT-2 pre-tokenizer or Llama 3's split regex (GGUF names them "gpt-2" and "llama-bpe"). */
int dl_export_gguf(const char *model_dir, const char *out_path, dl_export_dtype dtype, dl_error *err);

/* Reads a GGUF file of architecture "llama" with tensors in F32, F16, BF16 or Q8_0 and writes
 * out_dir: config.json, model.safetensors (float32) and, for a "gpt2" vocabulary, a
 * tokenizer.json. SentencePiece ("llama") vocabularies are refused for now. */
int dl_import_gguf(const char *gguf_path, const char *out_dir, dl_error *err);

/* The row permutation of attn_q / attn_k. w is (n_head * head_size, cols) row-major; within
 * each head, GGUF row 2i + j holds HF row j * head_size/2 + i (j = 0, 1). src != dst. */
void dl_qk_to_gguf(const float *src, float *dst, int n_head, int head_size, size_t cols);
void dl_qk_from_gguf(const float *src, float *dst, int n_head, int head_size, size_t cols);

/* llama.cpp's name of a Hugging Face tensor name of our layout ("model.layers.3.mlp.up_proj.weight"
 * -> "blk.3.ffn_up.weight"); fails for a name it does not know. */
int dl_gguf_name_of(const char *hf_name, char *out, size_t n, dl_error *err);

#endif
