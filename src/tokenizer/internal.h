/* tokenizer internals shared by the files of this folder (not part of the public header). */
#ifndef DISTIL_TOKENIZER_INTERNAL_H
#define DISTIL_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tokenizer.h"

/* The pre-tokenizer regex of GPT-2 (Hugging Face ByteLevel with use_regex: true). */
#define TOK_GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* Caps on what a tokenizer.json may declare, so a hostile file cannot make us allocate
 * without bound. Real vocabularies stay far below (the largest are around 256k). */
enum { TOK_MAX_VOCAB = 1 << 24, TOK_MAX_ADDED = 1 << 20, TOK_MAX_TOKEN_BYTES = 1 << 16 };

/* ---- hash maps ------------------------------------------------------------------------- */
uint64_t tok_hash_bytes(const void *p, size_t n);

/* byte string -> uint64. Keys are copied into the map's own arena, in insertion order. */
typedef struct tok_strent {
    uint64_t hash, val;
    size_t off;   /* key offset in keys.data */
    uint32_t len; /* key length */
    uint32_t used;
} tok_strent;
typedef struct tok_strmap {
    tok_strent *slots;
    size_t cap, n; /* cap: a power of two */
    dl_buf keys;
} tok_strmap;
int tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
void tok_strmap_clear(tok_strmap *m);
/* The entry for key, created with val 0 (*added = 1) when absent. NULL when out of memory. */
tok_strent *tok_strmap_put(tok_strmap *m, const void *key, size_t len, uint64_t hash, int *added);
const tok_strent *tok_strmap_get(const tok_strmap *m, const void *key, size_t len, uint64_t hash);

/* uint64 -> int64 (values >= 0; -1 means absent). */
typedef struct tok_u64ent { uint64_t key; int64_t val; } tok_u64ent;
typedef struct tok_u64map {
    tok_u64ent *slots;
    size_t cap, n;
} tok_u64map;
int tok_u64map_init(tok_u64map *m, size_t expected);
void tok_u64map_free(tok_u64map *m);
/* Slot of key, created with val -1 when absent; NULL when out of memory. */
int64_t *tok_u64map_put(tok_u64map *m, uint64_t key);
static inline uint64_t tok_u64_slot(uint64_t key, size_t cap) {
    uint64_t h = key * 0x9E3779B97F4A7C15ULL; /* the high half depends on every bit of key */
    return (h >> 32 ^ h >> 7) & (cap - 1);
}
static inline int64_t tok_u64map_get(const tok_u64map *m, uint64_t key) {
    if (!m->cap) return -1;
    for (size_t i = tok_u64_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        const tok_u64ent *e = &m->slots[i];
        if (e->val < 0) return -1;
        if (e->key == key) return e->val;
    }
}
static inline uint64_t tok_pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* ---- byte-level mapping (GPT-2 bytes_to_unicode) --------------------------------------- */
/* Appends the byte-level spelling (UTF-8) of raw bytes to out. */
int tok_bytes_to_bl(const void *raw, size_t n, dl_buf *out);
/* Decodes a byte-level spelling into raw bytes; -1 if s is not byte-level text. */
int tok_bl_to_bytes(const char *s, size_t n, dl_buf *out);
/* 1 if s[0..n) is valid UTF-8 */
int tok_utf8_valid(const char *s, size_t n);

/* ---- the tokenizer --------------------------------------------------------------------- */
enum { TOK_HOLE = 0, TOK_REGULAR = 1, TOK_ADDED = 2 };
typedef enum { PRETOK_BYTELEVEL = 0, PRETOK_SPLIT = 1, PRETOK_NONE = 2 } tok_pretok_kind;

typedef struct tok_added {
    int32_t id;
    char *content; /* NUL-terminated */
    size_t len;
    int special;    /* matched only when the caller allows specials */
    int normalized; /* kept to write it back */
    int in_vocab;   /* also listed in model.vocab (under its content) */
} tok_added;

typedef struct tok_merge { int32_t a, b, c; } tok_merge; /* a + b -> c */

/* What a SentencePiece-style tokenizer adds (spm.c); the dl_tokenizer keeps the merges, their
 * ranks (pair -> group << 32 | c, tokens of equal score in one group), the added tokens and,
 * in arena, the text each token decodes to. */
typedef struct tok_spm {
    dl_buf pieces;        /* the spelling of every token, back to back */
    size_t *poff;         /* [n_vocab] offset in pieces */
    uint32_t *plen;       /* [n_vocab] */
    float *score;         /* [n_vocab] */
    uint8_t *type;        /* [n_vocab] DL_TOK_* */
    tok_strmap piece_ids; /* spelling -> id */
    tok_strmap text_ids;  /* the text a token decodes to -> id (a normal token before a byte token) */
    int32_t byte_tok[256];
    dl_spm_opts o;
} tok_spm;

struct dl_tokenizer {
    int32_t n_vocab;
    dl_buf arena;      /* bytes of every token, back to back */
    size_t *off;       /* [n_vocab] offset of token id in arena */
    uint32_t *len;     /* [n_vocab] */
    uint8_t *kind;     /* [n_vocab] TOK_* */
    int32_t byte_id[256];
    tok_merge *merges; /* by rank */
    int32_t n_merges;
    tok_u64map ranks;  /* pair(a,b) -> rank << 32 | c */
    tok_strmap bytes_map; /* raw bytes of a regular token -> id */
    tok_added *added;  /* sorted by id */
    int n_added;
    int32_t eot_id;
    int ignore_merges;
    tok_pretok_kind pretok;
    char *pattern;     /* NULL for PRETOK_NONE */
    pcre2_code *re;
    tok_spm *spm;      /* NULL for a byte-level BPE */
};

/* An empty tokenizer with the GPT-2 pre-tokenizer and no tokens. */
dl_tokenizer *tok_alloc(dl_error *err);
/* Compiles pattern (UTF + UCP + MATCH_INVALID_UTF, JIT when available) into t->re. */
int tok_set_pattern(dl_tokenizer *t, tok_pretok_kind kind, const char *pattern, dl_error *err);
/* Allocates the per-id tables for n ids (all holes). */
int tok_alloc_ids(dl_tokenizer *t, int32_t n, dl_error *err);
/* Stores the bytes of id and its kind. */
int tok_set_token(dl_tokenizer *t, int32_t id, const void *p, size_t n, int kind, dl_error *err);
/* Builds ranks, bytes_map (adding the regular tokens to what the caller put there), byte_id
 * and eot_id from the tables, and sorts added by id. Fails when a byte has no token. */
int tok_finish(dl_tokenizer *t, dl_error *err);

/* The merge loop of encode. sym[0..n) holds the ids of a piece's symbols; pairs are merged by
 * t->ranks (lowest rank first, leftmost first among equal ranks) and the ids left are appended
 * to out. The work arrays grow as needed and are reused across calls. */
typedef struct tok_work {
    int32_t *sym, *nxt, *prv; /* per symbol: token id (-1 once merged away), links */
    uint64_t *heap;           /* rank << 32 | position, a min-heap */
    size_t cap;
} tok_work;
int tok_work_grow(tok_work *w, size_t n);
void tok_work_free(tok_work *w);
int tok_bpe_merge(const dl_tokenizer *t, tok_work *w, size_t n, dl_ivec *out, dl_error *err);

/* ---- SentencePiece-style model (spm.c, spm_json.c) ------------------------------------------ */
/* The tokens of a SentencePiece-style tokenizer: scores, or (from tokenizer.json) merges. */
typedef struct tok_spm_src {
    int32_t n;
    const char *const *piece;
    const size_t *len;
    const float *score;      /* NULL when merges are given */
    const uint8_t *type;     /* NULL: inferred (see dl_tok_spm_new) */
    const tok_merge *merges; /* in rank order, when score is NULL */
    int32_t n_merges;
    dl_spm_opts o;
} tok_spm_src;
dl_tokenizer *tok_spm_build(const tok_spm_src *src, dl_error *err);
void tok_spm_free(tok_spm *s);
int tok_spm_encode(const dl_tokenizer *t, const char *text, size_t len, int allow_special, dl_ivec *out,
                   dl_error *err);
int tok_spm_decode(const dl_tokenizer *t, const int32_t *ids, size_t n, dl_buf *out, dl_error *err);
/* 1 when s[0..n) is "<0xXX>" (upper-case hex, as SentencePiece spells byte tokens); *byte set. */
int tok_spm_byte_piece(const char *s, size_t n, int *byte);
/* tokenizer.json (spm_json.c): read when model.byte_fallback is true, and write. */
struct json_t;
dl_tokenizer *tok_spm_from_json(const struct json_t *root, dl_error *err);
struct json_t *tok_spm_to_json(const dl_tokenizer *t, dl_error *err);

/* Calls fn for each pre-token of text[0..len) (added tokens are not looked for). */
typedef int (*tok_piece_fn)(void *ctx, const char *p, size_t n);
int tok_pretokenize(const dl_tokenizer *t, pcre2_match_data *md, const char *text, size_t len, tok_piece_fn fn,
                    void *ctx, dl_error *err);

/* Splits text at added tokens: calls text_fn for the runs between them and tok_fn with the
 * index (into t->added) of each added token found. Specials count only with allow_special;
 * non-special added tokens always do. Leftmost match first, the longest at one position. */
int tok_split_added(const dl_tokenizer *t, const char *text, size_t len, int allow_special, tok_piece_fn text_fn,
                    int (*tok_fn)(void *ctx, int idx), void *ctx, dl_error *err);

#endif
