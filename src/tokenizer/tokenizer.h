/* tokenizer: byte-level BPE (GPT-2 style) with a PCRE2 pre-tokenizer and special tokens.
 * Reads and writes Hugging Face tokenizer.json. */
#ifndef DISTIL_TOKENIZER_H
#define DISTIL_TOKENIZER_H

#include "base/base.h"

typedef struct dl_tokenizer dl_tokenizer;

#define DL_EOT "<|endoftext|>"

/* Trains a byte-level BPE on text until the vocabulary (256 bytes + merges + specials) has
 * vocab_size entries (fewer when the text runs out of pairs). specials: NULL-terminated list,
 * added after the merges (NULL means just "<|endoftext|>"); special strings in text are cut
 * out before counting. Ids: byte b is id b, merge k makes id 256 + k.
 * Ties between pairs of equal count go to the smallest (left id, right id). */
dl_tokenizer *dl_tok_train(const char *text, size_t len, int vocab_size, const char *const *specials,
                           dl_error *err);
/* Reads a Hugging Face tokenizer.json: model BPE (merges as "a b" or ["a", "b"]), pre-tokenizer
 * ByteLevel or Sequence [Split(Regex, Isolated), ByteLevel(use_regex false)], decoder
 * ByteLevel, normalizer null, post-processor null or ByteLevel; all 256 bytes need a token.
 * Ids may leave a few gaps (unused ids, as cl100k has): they stay below 2 * tokens + 1024, and
 * an unused id is never produced and fails to decode. Anything else fails with a message
 * naming the field. */
dl_tokenizer *dl_tok_load(const char *path, dl_error *err);
/* Writes what HF tokenizers writes for a GPT-2 style tokenizer (merges in the "a b" form,
 * which every version reads). Saving a loaded tokenizer keeps its pre-tokenizer. */
int dl_tok_save(const dl_tokenizer *t, const char *path, dl_error *err);
void dl_tok_free(dl_tokenizer *t);

int dl_tok_vocab_size(const dl_tokenizer *t); /* the largest id + 1 */
/* id of a token string (special, or regular by its raw bytes), -1 if absent */
int dl_tok_id(const dl_tokenizer *t, const char *token);
int dl_tok_eot_id(const dl_tokenizer *t); /* "<|endoftext|>" or -1 */

/* Appends the ids of text[0..len) to out. allow_special: special-token strings in text
 * become their ids; otherwise they are encoded as plain text (HF's split_special_tokens).
 * Non-special added tokens (from a loaded file) always match. Any bytes are accepted; decode
 * gives them back exactly. Thread-safe on a shared tokenizer. */
int dl_tok_encode(const dl_tokenizer *t, const char *text, size_t len, int allow_special, dl_ivec *out,
                  dl_error *err);
/* Appends the bytes of the ids to out (special tokens as their text). Fails on an id out
 * of range. */
int dl_tok_decode(const dl_tokenizer *t, const int32_t *ids, size_t n, dl_buf *out, dl_error *err);

/* The bytes of token id (the content of an added/special token), not NUL-terminated; NULL
 * when id is out of range. Regular tokens are raw bytes, not the byte-level spelling of
 * tokenizer.json; dl_tok_id takes the same raw bytes. */
const char *dl_tok_token(const dl_tokenizer *t, int id, size_t *len);
int dl_tok_is_special(const dl_tokenizer *t, int id);
int dl_tok_n_merges(const dl_tokenizer *t);
/* Merge number rank (0 = applied first): *left + *right -> the returned id; -1 if out of range. */
int dl_tok_merge(const dl_tokenizer *t, int rank, int *left, int *right);
/* Appends id's spelling in tokenizer.json (and GGUF): the GPT-2 byte-to-unicode form of its
 * bytes, or an added token's text. */
int dl_tok_spelling(const dl_tokenizer *t, int id, dl_buf *out, dl_error *err);
/* Parses ids separated by spaces, commas or newlines (what `tokenizer encode` prints). */
int dl_tok_parse_ids(const char *s, size_t len, dl_ivec *out, dl_error *err);

/* Splits text into pre-tokens with the tokenizer's regex (special tokens are not looked
 * for): appends the end offset of each pre-token to ends. Invalid UTF-8 never matches the
 * regex; each stretch of it between matches is a pre-token of its own. */
int dl_tok_pretokenize(const dl_tokenizer *t, const char *text, size_t len, dl_ivec *ends, dl_error *err);

/* Reads corpus_path, trains (as dl_tok_train) and writes out_path: what `distil tokenizer
 * train` does. Returns the tokenizer (the caller frees it) or NULL. */
dl_tokenizer *dl_tok_train_file(const char *corpus_path, int vocab_size, const char *const *specials,
                                const char *out_path, dl_error *err);

#endif
