/* The tokenizer object, the pre-tokenizer, encode (BPE by merge rank) and decode. */
#include "tokenizer/internal.h"
#include <stdlib.h>
#include <string.h>

/* ---- construction ------------------------------------------------------------------------ */

dl_tokenizer *tok_alloc(dl_error *err) {
    dl_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        dl_fail(err, "out of memory");
        return NULL;
    }
    t->eot_id = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

void dl_tok_free(dl_tokenizer *t) {
    if (!t) return;
    dl_buf_free(&t->arena);
    free(t->off);
    free(t->len);
    free(t->kind);
    free(t->merges);
    tok_u64map_free(&t->ranks);
    tok_strmap_free(&t->bytes_map);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->pattern);
    if (t->re) pcre2_code_free(t->re);
    tok_spm_free(t->spm);
    free(t);
}

int tok_set_pattern(dl_tokenizer *t, tok_pretok_kind kind, const char *pattern, dl_error *err) {
    free(t->pattern);
    t->pattern = NULL;
    if (t->re) pcre2_code_free(t->re);
    t->re = NULL;
    t->pretok = kind;
    if (kind == PRETOK_NONE) return 0;
    int ec;
    PCRE2_SIZE eo;
    /* MATCH_INVALID_UTF: invalid UTF-8 in a subject is not an error; it can never be part of a
     * match, so it ends up in the gaps between matches (see tok_pretokenize). */
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                          &ec, &eo, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return dl_fail(err, "pre-tokenizer regex '%.200s': %s (at offset %zu)", pattern, (const char *)msg,
                       (size_t)eo);
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* on failure pcre2_match interprets instead */
    t->pattern = strdup(pattern);
    if (!t->pattern) return dl_fail(err, "out of memory");
    return 0;
}

int tok_alloc_ids(dl_tokenizer *t, int32_t n, dl_error *err) {
    if (n < 0 || n > TOK_MAX_VOCAB) return dl_fail(err, "vocabulary size %d out of range", (int)n);
    t->n_vocab = n;
    t->off = calloc((size_t)n + 1, sizeof *t->off);
    t->len = calloc((size_t)n + 1, sizeof *t->len);
    t->kind = calloc((size_t)n + 1, 1);
    if (!t->off || !t->len || !t->kind) return dl_fail(err, "out of memory");
    return 0;
}

int tok_set_token(dl_tokenizer *t, int32_t id, const void *p, size_t n, int kind, dl_error *err) {
    if (id < 0 || id >= t->n_vocab) return dl_fail(err, "token id %d out of range", (int)id);
    if (n > TOK_MAX_TOKEN_BYTES) return dl_fail(err, "token %d is %zu bytes long (at most %d)", (int)id, n, TOK_MAX_TOKEN_BYTES);
    t->off[id] = t->arena.len;
    t->len[id] = (uint32_t)n;
    t->kind[id] = (uint8_t)kind;
    if (dl_buf_append(&t->arena, p, n)) return dl_fail(err, "out of memory");
    return 0;
}

static int cmp_added(const void *a, const void *b) {
    const tok_added *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int tok_finish(dl_tokenizer *t, dl_error *err) {
    if (!t->bytes_map.cap && tok_strmap_init(&t->bytes_map, (size_t)t->n_vocab)) return dl_fail(err, "out of memory");
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->kind[id] != TOK_REGULAR) continue;
        const char *p = t->arena.data + t->off[id];
        int added;
        tok_strent *e = tok_strmap_put(&t->bytes_map, p, t->len[id], tok_hash_bytes(p, t->len[id]), &added);
        if (!e) return dl_fail(err, "out of memory");
        if (!added) return dl_fail(err, "tokens %d and %d have the same bytes", (int)e->val, (int)id);
        e->val = (uint64_t)id;
    }
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        const tok_strent *e = tok_strmap_get(&t->bytes_map, &c, 1, tok_hash_bytes(&c, 1));
        if (!e) return dl_fail(err, "the vocabulary has no token for byte 0x%02x (a byte-level BPE needs all 256)", b);
        t->byte_id[b] = (int32_t)e->val;
    }
    if (tok_u64map_init(&t->ranks, (size_t)t->n_merges)) return dl_fail(err, "out of memory");
    for (int32_t r = 0; r < t->n_merges; r++) {
        const tok_merge *m = &t->merges[r];
        if (m->a < 0 || m->a >= t->n_vocab || m->b < 0 || m->b >= t->n_vocab || m->c < 0 || m->c >= t->n_vocab)
            return dl_fail(err, "merge %d refers to an id out of range", (int)r);
        int64_t *v = tok_u64map_put(&t->ranks, tok_pair_key(m->a, m->b));
        if (!v) return dl_fail(err, "out of memory");
        *v = (int64_t)r << 32 | m->c; /* a repeated pair takes its last rank, as in HF tokenizers */
    }
    if (t->n_added > 0) qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    t->eot_id = -1;
    for (int i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, DL_EOT) == 0) t->eot_id = t->added[i].id;
    return 0;
}

/* ---- accessors ------------------------------------------------------------------------- */

int dl_tok_vocab_size(const dl_tokenizer *t) { return t->n_vocab; }
int dl_tok_eot_id(const dl_tokenizer *t) { return t->eot_id; }
int dl_tok_n_merges(const dl_tokenizer *t) { return t->n_merges; }

int dl_tok_id(const dl_tokenizer *t, const char *token) {
    for (int i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, token) == 0) return t->added[i].id;
    size_t n = strlen(token);
    uint64_t h = tok_hash_bytes(token, n);
    const tok_strent *e = tok_strmap_get(t->spm ? &t->spm->piece_ids : &t->bytes_map, token, n, h);
    if (!e && t->spm) e = tok_strmap_get(&t->spm->text_ids, token, n, h); /* " the" as well as its piece */
    return e ? (int)e->val : -1;
}

int dl_tok_merge(const dl_tokenizer *t, int rank, int *left, int *right) {
    if (rank < 0 || rank >= t->n_merges) return -1;
    if (left) *left = t->merges[rank].a;
    if (right) *right = t->merges[rank].b;
    return t->merges[rank].c;
}

int dl_tok_spelling(const dl_tokenizer *t, int id, dl_buf *out, dl_error *err) {
    if (id < 0 || id >= t->n_vocab || t->kind[id] == TOK_HOLE) return dl_fail(err, "token id %d out of range", id);
    const char *p = t->arena.data + t->off[id];
    int rc = t->spm                   ? dl_buf_append(out, t->spm->pieces.data + t->spm->poff[id], t->spm->plen[id])
             : t->kind[id] == TOK_ADDED ? dl_buf_append(out, p, t->len[id])
                                      : tok_bytes_to_bl(p, t->len[id], out);
    if (rc == 0) rc = dl_buf_append(out, "", 0); /* NUL-terminated even when empty */
    return rc ? dl_fail(err, "out of memory") : 0;
}

int dl_tok_parse_ids(const char *s, size_t len, dl_ivec *out, dl_error *err) {
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (c == ' ' || c == ',' || c == '\n' || c == '\t' || c == '\r') {
            i++;
            continue;
        }
        if (c < '0' || c > '9') return dl_fail(err, "bad token id at byte %zu: expected a digit, got byte 0x%02x", i, (unsigned char)c);
        long long v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i++] - '0');
            if (v > INT32_MAX) return dl_fail(err, "token id at byte %zu is too large", i);
        }
        if (dl_ivec_push(out, (int32_t)v)) return dl_fail(err, "out of memory");
    }
    return 0;
}

const char *dl_tok_token(const dl_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab || t->kind[id] == TOK_HOLE) return NULL;
    if (len) *len = t->len[id];
    return t->arena.data + t->off[id];
}

int dl_tok_is_special(const dl_tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab || t->kind[id] != TOK_ADDED) return 0;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return t->added[i].special;
    return 0;
}

/* ---- pre-tokenizer --------------------------------------------------------------------- */

static int pcre2_fail(dl_error *err, int rc) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return dl_fail(err, "pre-tokenizer regex failed: %s", (const char *)msg);
}

/* Like HF's Split with behavior "Isolated": each match is a piece and so is each stretch of
 * text between matches. With the GPT-2 pattern the only such stretches are invalid UTF-8. */
int tok_pretokenize(const dl_tokenizer *t, pcre2_match_data *md, const char *text, size_t len, tok_piece_fn fn,
                    void *ctx, dl_error *err) {
    if (!t->re) return len ? fn(ctx, text, len) : 0;
    size_t off = 0;
    uint32_t opts = 0;
    while (off < len) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, len, off, opts, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return fn(ctx, text + off, len - off);
        if (rc < 0) return pcre2_fail(err, rc);
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (s < off || e < s || e > len) return dl_fail(err, "pre-tokenizer regex gave a match outside the text");
        if (s > off && fn(ctx, text + off, s - off)) return -1;
        if (e == s) { /* an empty match: look again from there for a non-empty one */
            off = s;
            opts = PCRE2_NOTEMPTY_ATSTART;
            continue;
        }
        if (fn(ctx, text + s, e - s)) return -1;
        off = e;
        opts = 0;
    }
    return 0;
}

typedef struct ends_ctx { dl_ivec *ends; const char *base; dl_error *err; } ends_ctx;

static int push_end(void *vc, const char *p, size_t n) {
    ends_ctx *c = vc;
    size_t end = (size_t)(p - c->base) + n;
    if (end > INT32_MAX) return dl_fail(c->err, "text too long for pre-token offsets");
    return dl_ivec_push(c->ends, (int32_t)end) ? dl_fail(c->err, "out of memory") : 0;
}

int dl_tok_pretokenize(const dl_tokenizer *t, const char *text, size_t len, dl_ivec *ends, dl_error *err) {
    pcre2_match_data *md = NULL;
    if (t->re && !(md = pcre2_match_data_create_from_pattern(t->re, NULL))) return dl_fail(err, "out of memory");
    ends_ctx c = {ends, text, err};
    int rc = tok_pretokenize(t, md, text, len, push_end, &c, err);
    if (md) pcre2_match_data_free(md);
    return rc;
}

/* ---- added tokens ------------------------------------------------------------------------ */

static size_t find_added(const tok_added *a, const char *text, size_t len, size_t from) {
    if (from >= len) return SIZE_MAX;
    const char *p = memmem(text + from, len - from, a->content, a->len);
    return p ? (size_t)(p - text) : SIZE_MAX;
}

int tok_split_added(const dl_tokenizer *t, const char *text, size_t len, int allow_special, tok_piece_fn text_fn,
                    int (*tok_fn)(void *ctx, int idx), void *ctx, dl_error *err) {
    int eligible = 0;
    for (int k = 0; k < t->n_added; k++) eligible += allow_special || !t->added[k].special;
    if (!eligible) return len ? text_fn(ctx, text, len) : 0;
    size_t stack_next[64], *next = stack_next;
    if (t->n_added > 64 && !(next = malloc((size_t)t->n_added * sizeof *next))) return dl_fail(err, "out of memory");
    /* next[k]: where added token k next occurs at or after the position it was searched
     * from; recomputed only once the scan has passed it. */
    for (int k = 0; k < t->n_added; k++)
        next[k] = allow_special || !t->added[k].special ? find_added(&t->added[k], text, len, 0) : SIZE_MAX;
    size_t pos = 0;
    int rc = 0;
    while (rc == 0 && pos < len) {
        size_t best = SIZE_MAX;
        int bk = -1;
        for (int k = 0; k < t->n_added; k++) {
            if (next[k] == SIZE_MAX) continue;
            if (next[k] < pos) next[k] = find_added(&t->added[k], text, len, pos);
            if (next[k] < best || (next[k] == best && next[k] != SIZE_MAX && t->added[k].len > t->added[bk].len)) {
                best = next[k];
                bk = k;
            }
        }
        if (bk < 0) {
            rc = text_fn(ctx, text + pos, len - pos);
            break;
        }
        if (best > pos) rc = text_fn(ctx, text + pos, best - pos);
        if (rc == 0) rc = tok_fn(ctx, bk);
        pos = best + t->added[bk].len;
    }
    if (next != stack_next) free(next);
    return rc;
}

/* ---- encode ------------------------------------------------------------------------------ */

enum { CACHE_MAX_PIECE = 255, CACHE_MAX_ENTRIES = 1 << 17, CACHE_MIN_TEXT = 4096 };

typedef struct enc_ctx {
    const dl_tokenizer *t;
    dl_ivec *out;
    dl_error *err;
    pcre2_match_data *md;
    int use_cache;
    tok_strmap cache; /* piece bytes -> offset in pool << 8 | number of ids */
    dl_ivec pool;
    tok_work w;
} enc_ctx;

static void heap_push(uint64_t *h, size_t *n, uint64_t x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= x) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
    return top;
}

int tok_work_grow(tok_work *w, size_t n) {
    if (n <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *s = realloc(w->sym, cap * sizeof *s);
    if (s) w->sym = s;
    int32_t *x = realloc(w->nxt, cap * sizeof *x);
    if (x) w->nxt = x;
    int32_t *p = realloc(w->prv, cap * sizeof *p);
    if (p) w->prv = p;
    uint64_t *h = realloc(w->heap, cap * 2 * sizeof *h);
    if (h) w->heap = h;
    if (!s || !x || !p || !h) return -1;
    w->cap = cap;
    return 0;
}

void tok_work_free(tok_work *w) {
    free(w->sym);
    free(w->nxt);
    free(w->prv);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

/* Pushes the pair starting at i, if it is a merge, as rank << 32 | i. */
static inline void push_pair(const dl_tokenizer *t, tok_work *w, size_t *nh, int32_t i, size_t n) {
    if (i < 0) return;
    int32_t j = w->nxt[i];
    if ((size_t)j >= n) return;
    int64_t v = tok_u64map_get(&t->ranks, tok_pair_key(w->sym[i], w->sym[j]));
    if (v >= 0) heap_push(w->heap, nh, (uint64_t)v >> 32 << 32 | (uint32_t)i);
}

/* Lowest rank first and leftmost first among equal ranks (what HF tokenizers' BPE does), in
 * O(n log n) so that a long piece stays cheap. The heap never holds more than 2n entries:
 * n - 1 pairs to start with, and each merge pops one and pushes at most two. */
int tok_bpe_merge(const dl_tokenizer *t, tok_work *w, size_t n, dl_ivec *out, dl_error *err) {
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        w->nxt[i] = (int32_t)i + 1;
        w->prv[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, w, &nh, (int32_t)i, n);
    while (nh) {
        uint64_t e = heap_pop(w->heap, &nh);
        int32_t i = (int32_t)(uint32_t)e, j = w->nxt[i];
        if (w->sym[i] < 0 || (size_t)j >= n) continue;
        int64_t v = tok_u64map_get(&t->ranks, tok_pair_key(w->sym[i], w->sym[j]));
        if (v < 0 || (uint64_t)v >> 32 != e >> 32) continue; /* stale: the pair here changed */
        w->sym[i] = (int32_t)(uint32_t)v;
        w->sym[j] = -1;
        w->nxt[i] = w->nxt[j];
        if ((size_t)w->nxt[j] < n) w->prv[w->nxt[j]] = i;
        push_pair(t, w, &nh, w->prv[i], n);
        push_pair(t, w, &nh, i, n);
    }
    for (size_t i = 0; i < n; i = (size_t)w->nxt[i])
        if (dl_ivec_push(out, w->sym[i])) return dl_fail(err, "out of memory");
    return 0;
}

/* Applies the merges to one pre-token, starting from its bytes. */
static int bpe_piece(enc_ctx *c, const unsigned char *p, size_t n) {
    if (n > INT32_MAX / 2) return dl_fail(c->err, "pre-token of %zu bytes is too long", n);
    if (tok_work_grow(&c->w, n)) return dl_fail(c->err, "out of memory");
    for (size_t i = 0; i < n; i++) c->w.sym[i] = c->t->byte_id[p[i]];
    return tok_bpe_merge(c->t, &c->w, n, c->out, c->err);
}

static int encode_piece(void *vc, const char *s, size_t n) {
    enc_ctx *c = vc;
    const dl_tokenizer *t = c->t;
    const unsigned char *p = (const unsigned char *)s;
    if (n == 1) return dl_ivec_push(c->out, t->byte_id[p[0]]) ? dl_fail(c->err, "out of memory") : 0;
    uint64_t h = 0;
    if (t->ignore_merges || (c->use_cache && n <= CACHE_MAX_PIECE)) h = tok_hash_bytes(p, n);
    if (t->ignore_merges) { /* HF: a piece that is itself in the vocabulary is taken whole */
        const tok_strent *e = tok_strmap_get(&t->bytes_map, p, n, h);
        if (e) return dl_ivec_push(c->out, (int32_t)e->val) ? dl_fail(c->err, "out of memory") : 0;
    }
    if (!c->use_cache || n > CACHE_MAX_PIECE) return bpe_piece(c, p, n);
    const tok_strent *e = tok_strmap_get(&c->cache, p, n, h);
    if (e) {
        size_t off = e->val >> 8, k = e->val & 0xFF;
        if (dl_ivec_reserve(c->out, c->out->len + k)) return dl_fail(c->err, "out of memory");
        memcpy(c->out->data + c->out->len, c->pool.data + off, k * sizeof(int32_t));
        c->out->len += k;
        return 0;
    }
    size_t start = c->out->len;
    if (bpe_piece(c, p, n)) return -1;
    size_t k = c->out->len - start;
    if (c->cache.n >= CACHE_MAX_ENTRIES) { /* bounded: start over rather than evict */
        tok_strmap_clear(&c->cache);
        c->pool.len = 0;
    }
    int added;
    tok_strent *ne = tok_strmap_put(&c->cache, p, n, h, &added);
    if (!ne || dl_ivec_reserve(&c->pool, c->pool.len + k)) return dl_fail(c->err, "out of memory");
    ne->val = (uint64_t)c->pool.len << 8 | k;
    memcpy(c->pool.data + c->pool.len, c->out->data + start, k * sizeof(int32_t));
    c->pool.len += k;
    return 0;
}

static int encode_text(void *vc, const char *s, size_t n) {
    enc_ctx *c = vc;
    return tok_pretokenize(c->t, c->md, s, n, encode_piece, c, c->err);
}

static int encode_added(void *vc, int idx) {
    enc_ctx *c = vc;
    return dl_ivec_push(c->out, c->t->added[idx].id) ? dl_fail(c->err, "out of memory") : 0;
}

int dl_tok_encode(const dl_tokenizer *t, const char *text, size_t len, int allow_special, dl_ivec *out,
                  dl_error *err) {
    if (t->spm) return tok_spm_encode(t, text, len, allow_special, out, err);
    enc_ctx c = {.t = t, .out = out, .err = err};
    int rc = -1;
    if (t->re && !(c.md = pcre2_match_data_create_from_pattern(t->re, NULL))) {
        dl_fail(err, "out of memory");
        goto done;
    }
    /* The cache lives for one call so that encode stays thread-safe on a shared tokenizer;
     * callers encode in large chunks, where it pays for itself. */
    if (len >= CACHE_MIN_TEXT) {
        if (tok_strmap_init(&c.cache, 4096)) {
            dl_fail(err, "out of memory");
            goto done;
        }
        c.use_cache = 1;
    }
    if (dl_ivec_reserve(out, out->len + len / 3 + 16)) {
        dl_fail(err, "out of memory");
        goto done;
    }
    rc = tok_split_added(t, text, len, allow_special, encode_text, encode_added, &c, err);
done:
    if (c.md) pcre2_match_data_free(c.md);
    tok_strmap_free(&c.cache);
    dl_ivec_free(&c.pool);
    tok_work_free(&c.w);
    return rc;
}

/* ---- decode ------------------------------------------------------------------------------ */

int dl_tok_decode(const dl_tokenizer *t, const int32_t *ids, size_t n, dl_buf *out, dl_error *err) {
    if (t->spm) return tok_spm_decode(t, ids, n, out, err);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab || t->kind[id] == TOK_HOLE)
            return dl_fail(err, "token id %d at position %zu is out of range (vocabulary of %d)", (int)id, i,
                           (int)t->n_vocab);
        if (dl_buf_append(out, t->arena.data + t->off[id], t->len[id])) return dl_fail(err, "out of memory");
    }
    return 0;
}
