/* tokenizer: byte-level BPE (GPT-2 style) with a PCRE2 pre-tokenizer and special tokens, and a
 * SentencePiece-style BPE with scores and byte fallback (Llama 1/2, llama2.c). Reads and writes
 * Hugging Face tokenizer.json. */
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
/* Reads a Hugging Face tokenizer.json (a model with byte_fallback true is SentencePiece-style,
 * see below): model BPE (merges as "a b" or ["a", "b"]), pre-tokenizer
 * ByteLevel or Sequence [Split(Regex, Isolated), ByteLevel(use_regex false)], decoder
 * ByteLevel, normalizer null, post-processor null or ByteLevel; all 256 bytes need a token.
 * Ids may leave a few gaps (unused ids, as cl100k has): they stay below 2 * tokens + 1024, and
 * an unused id is never produced and fails to decode. Anything else fails with a message
 * naming the field. */
dl_tokenizer *dl_tok_load(const char *path, dl_error *err);
/* Writes what HF tokenizers writes for a GPT-2 style tokenizer (merges in the "a b" form,
 * which every version reads), or for Llama 2's (SentencePiece-style, below). Saving a loaded
 * tokenizer keeps its pre-tokenizer. */
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

/* The tokenizer.json of t (a new reference, what dl_tok_save writes); NULL on failure. */
struct json_t *dl_tok_to_json(const dl_tokenizer *t, dl_error *err);

/* ---- SentencePiece-style BPE (spm.c) ----------------------------------------------------------
 * The Llama 1/2 and llama2.c kind: BPE over Unicode characters ranked by scores, with byte
 * fallback. Each run of text between added tokens is normalized (each space becomes U+2581,
 * written _ here, and one _ is prepended when add_prefix is set), split into UTF-8 characters
 * (a byte that is not part of a valid UTF-8 character is a character of its own), and each
 * character that is not a token becomes its bytes as <0xXX> tokens. Then the adjacent pair
 * whose concatenation is a normal token with the highest score is merged, again and again
 * (ties: the leftmost pair). Control, unknown and user-defined tokens are added tokens:
 * user-defined ones are always matched in text, the others only when specials are allowed (as
 * for the byte-level BPE). The same API serves both kinds: dl_tok_token gives the text a token
 * decodes to ("_the" -> " the", "<0x0A>" -> "\n", a control token its text), dl_tok_spelling
 * its piece ("_the"), dl_tok_id takes an added token's text, a piece or the text a token
 * decodes to (a normal token before a byte token: " " is "_", not "<0x20>"), dl_tok_eot_id is the
 * eos id ("</s>"), dl_tok_merge lists the merges in rank order (every pair (a, b) of tokens with
 * a + b a normal token, ranked by the score of a + b; equal scores by id). dl_tok_decode drops
 * one leading space of its output when add_prefix is set (Hugging Face's Strip decoder), so
 * decode(encode(text)) is text when text holds no added token and no U+2581. Encode never adds
 * <s>: add_bos only travels to GGUF and tokenizer.json.
 * As a tokenizer.json it takes the form Hugging Face uses for Llama 2: model BPE with
 * byte_fallback, vocab and merges; normalizer Sequence [Prepend, Replace]; decoder Sequence
 * [Replace, ByteFallback, Fuse, Strip]; post-processor TemplateProcessing (<s> first) when
 * add_bos. Read back, a token's score is minus one minus the rank of the first merge that makes
 * it: that encodes exactly as the original scores did when no two mergeable tokens shared one. */
enum { DL_TOK_NORMAL = 1, DL_TOK_UNKNOWN = 2, DL_TOK_CONTROL = 3, DL_TOK_USER_DEFINED = 4, DL_TOK_UNUSED = 5,
       DL_TOK_BYTE = 6 }; /* token types, numbered as in GGUF */

typedef struct dl_spm_opts {
    int unk_id, bos_id, eos_id; /* -1 when absent */
    int add_prefix;             /* prepend U+2581 to each run of text (SentencePiece's add_dummy_prefix) */
    int add_bos;                /* the model expects <s> first (kept for GGUF and tokenizer.json) */
} dl_spm_opts;

/* n tokens: pieces[i] (lens[i] bytes, valid UTF-8 without NUL, unique), scores[i] (finite) and
 * types[i] (DL_TOK_*; NULL: <0xXX> pieces are bytes, the unk id unknown, bos and eos control,
 * the rest normal). The 256 byte tokens <0x00>..<0xFF> must all be there. */
dl_tokenizer *dl_tok_spm_new(int n, const char *const *pieces, const size_t *lens, const float *scores,
                             const uint8_t *types, const dl_spm_opts *o, dl_error *err);
/* 1 (and *o filled when o is not NULL) for a SentencePiece-style tokenizer, 0 for a byte-level BPE. */
int dl_tok_is_spm(const dl_tokenizer *t, dl_spm_opts *o);
/* The score of id (0 for a byte-level BPE or an id out of range). */
float dl_tok_score(const dl_tokenizer *t, int id);
/* DL_TOK_* of id: a byte-level BPE's added tokens are control (special) or user-defined, an
 * unused id DL_TOK_UNUSED; 0 for an id out of range. */
int dl_tok_type(const dl_tokenizer *t, int id);

/* llama2.c's tokenizer.bin: int32 max_token_length, then per token a float32 score, an int32
 * length and that many bytes (spaces spelt ' ', <s> and </s> as "\n<s>\n" and "\n</s>\n"),
 * exactly n_vocab tokens (the file does not say how many; the checkpoint does). Little-endian. */
dl_tokenizer *dl_tok_load_llama2c(const void *data, size_t len, int n_vocab, dl_error *err);

/* ---- the chat template ------------------------------------------------------------------------- */
/* Every message becomes "### System:\n", "### User:\n" or "### Assistant:\n" followed by its
 * content and a blank line ("\n\n"); then "### Assistant:\n" asks for the reply. Roles: system
 * and developer (both shown as System), user, assistant. Content: a string or a list of
 * {"type": "text", "text": ...} parts (null for an assistant turn). messages is a jansson array;
 * max_messages > 0 refuses longer lists. Appends the text to out and returns 0; -1 when the
 * messages are malformed (err says how, param names the field: "messages[2].role"); -2 when out
 * of memory. */
#define DL_CHAT_PARAM_MAX 64
struct json_t;
int dl_chat_render(struct json_t *messages, int max_messages, dl_buf *out, char param[DL_CHAT_PARAM_MAX], dl_error *err);

#endif
