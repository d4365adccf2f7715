/* tokenizer: byte-level BPE (GPT-2 style) with a PCRE2 pre-tokenizer and special tokens.
 * Reads and writes Hugging Face tokenizer.json. */
#ifndef DISTIL_TOKENIZER_H
#define DISTIL_TOKENIZER_H

#include "base/base.h"

typedef struct dl_tokenizer dl_tokenizer;

#define DL_EOT "<|endoftext|>"

/* Trains a byte-level BPE on text until the vocabulary (256 bytes + merges + specials) has
 * vocab_size entries. specials: NULL-terminated list, added after the merges (NULL means just
 * "<|endoftext|>"). */
dl_tokenizer *dl_tok_train(const char *text, size_t len, int vocab_size, const char *const *specials,
                           dl_error *err);
dl_tokenizer *dl_tok_load(const char *path, dl_error *err);
int dl_tok_save(const dl_tokenizer *t, const char *path, dl_error *err);
void dl_tok_free(dl_tokenizer *t);

int dl_tok_vocab_size(const dl_tokenizer *t);
/* id of a token string (special or regular), -1 if absent */
int dl_tok_id(const dl_tokenizer *t, const char *token);
int dl_tok_eot_id(const dl_tokenizer *t); /* "<|endoftext|>" or -1 */

/* Appends the ids of text[0..len) to out. allow_special: special-token strings in text
 * become their ids; otherwise they are encoded as plain text. */
int dl_tok_encode(const dl_tokenizer *t, const char *text, size_t len, int allow_special, dl_ivec *out,
                  dl_error *err);
/* Appends the bytes of the ids to out (special tokens as their text). Fails on an id out
 * of range. */
int dl_tok_decode(const dl_tokenizer *t, const int32_t *ids, size_t n, dl_buf *out, dl_error *err);

#endif
