/* convert internals shared by the files of this folder. */
#ifndef DISTIL_CONVERT_INTERNAL_H
#define DISTIL_CONVERT_INTERNAL_H

#include "convert/convert.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct json_t;

/* Pre-tokenizer regexes as tokenizer.json spells them: GPT-2's, and the splits of Llama 3 and Qwen2. */
#define CONV_GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define CONV_LLAMA3_REGEX                                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2's: Llama 3's with single digits. */
#define CONV_QWEN2_REGEX                                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* llama.cpp's token types. */
enum { TOKTYPE_NORMAL = 1, TOKTYPE_UNKNOWN = 2, TOKTYPE_CONTROL = 3, TOKTYPE_USER_DEFINED = 4, TOKTYPE_UNUSED = 5,
       TOKTYPE_BYTE = 6 };

/* How many heads the rows of view vi hold when it needs the Q/K permutation (attn_q weight and
 * bias: NH, attn_k weight and bias: NKV); 0 for every other view. */
int conv_qk_heads(const dl_model *m, int vi);

/* Writes the tokenizer.ggml.* keys for tok (loaded from tokenizer_json, which is read again
 * for what the tokenizer API does not say: the pre-tokenizer and non-special added tokens).
 * Ids from the tokenizer's size up to cfg->V become unused "[PAD<id>]" tokens. */
int conv_write_vocab(dl_gguf_writer *w, const dl_tokenizer *tok, const char *tokenizer_json, const dl_config *cfg,
                     dl_error *err);

/* Builds the tokenizer.json of the file's tokenizer.ggml.* keys; *out is NULL (and 0 is
 * returned) when the file has no tokenizer. V is the model's vocabulary size. */
int conv_vocab_to_json(const dl_gguf_file *f, int V, struct json_t **out, dl_error *err);

/* SentencePiece-style vocabularies, tokenizer.ggml.model "llama" (gguf_spm.c): the same two
 * jobs as conv_vocab_to_json and conv_write_vocab. */
int conv_spm_vocab_to_json(const dl_gguf_file *f, int V, struct json_t **out, dl_error *err);
int conv_write_spm_vocab(dl_gguf_writer *w, const dl_tokenizer *tok, const dl_config *cfg, dl_error *err);
/* n without the unused "[PAD<id>]" tokens at its end (what export pads a vocabulary with). */
uint64_t conv_strip_pads(const dl_gguf_kv *tokens, const dl_gguf_kv *types, uint64_t n);

#endif
