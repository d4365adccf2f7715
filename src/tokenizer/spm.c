/* SentencePiece-style BPE: build from pieces and scores (or merges), encode, decode.
 *
 * The merge loop is the byte-level BPE's (tok_bpe_merge); what differs is where the symbols
 * come from (characters, with bytes for the ones that are not tokens) and what ranks a pair:
 * the group of the token it makes. Tokens are sorted by score, highest first, and tokens of
 * equal score share a group, so that the heap's "lowest rank, then leftmost" is SentencePiece's
 * "highest score, then leftmost". */
#include "tokenizer/internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPACE_PIECE "\xe2\x96\x81" /* U+2581, SentencePiece's spelling of a space */

void tok_spm_free(tok_spm *s) {
    if (!s) return;
    dl_buf_free(&s->pieces);
    free(s->poff);
    free(s->plen);
    free(s->score);
    free(s->type);
    tok_strmap_free(&s->piece_ids);
    tok_strmap_free(&s->text_ids);
    free(s);
}

int tok_spm_byte_piece(const char *s, size_t n, int *byte) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    if (!hi || !lo) return 0;
    *byte = (int)(hi - hex) * 16 + (int)(lo - hex);
    return 1;
}

/* Length of the valid UTF-8 character at s (n > 0 bytes left), or 0 if there is none. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    return tok_utf8_valid((const char *)s, k) ? k : 0;
}

/* Tokens that are added tokens (matched in text as a whole, never merged). */
static int is_added_type(int type) {
    return type == DL_TOK_CONTROL || type == DL_TOK_UNKNOWN || type == DL_TOK_USER_DEFINED;
}

/* Tokens that can stand for characters of text and take part in merges. */
static int is_symbol(uint8_t type) { return type == DL_TOK_NORMAL || type == DL_TOK_BYTE || type == DL_TOK_UNUSED; }

/* For messages: at most 100 bytes of a piece. */
static int clip(size_t n) { return n > 100 ? 100 : (int)n; }

static const char *piece_of(const tok_spm *s, int32_t id, uint32_t *len) {
    *len = s->plen[id];
    return s->pieces.data + s->poff[id];
}

/* The id of a symbol token spelt p[0..n), or -1. */
static int32_t symbol_id(const tok_spm *s, const char *p, size_t n) {
    const tok_strent *e = tok_strmap_get(&s->piece_ids, p, n, tok_hash_bytes(p, n));
    return e && is_symbol(s->type[e->val]) ? (int32_t)e->val : -1;
}

/* ---- building ------------------------------------------------------------------------------ */

static int infer_type(const tok_spm_src *src, int32_t id) {
    int b;
    if (src->type) return src->type[id];
    if (tok_spm_byte_piece(src->piece[id], src->len[id], &b)) return DL_TOK_BYTE;
    if (id == src->o.unk_id) return DL_TOK_UNKNOWN;
    if (id == src->o.bos_id || id == src->o.eos_id) return DL_TOK_CONTROL;
    return DL_TOK_NORMAL;
}

/* The text id decodes to: a byte token its byte, a normal token its piece with U+2581 as a
 * space, an added token its piece. */
static int decoded_text(const char *p, size_t n, int type, dl_buf *out) {
    out->len = 0;
    int b;
    if (type == DL_TOK_BYTE && tok_spm_byte_piece(p, n, &b)) {
        char c = (char)b;
        return dl_buf_append(out, &c, 1);
    }
    if (type != DL_TOK_NORMAL && type != DL_TOK_UNUSED) return dl_buf_append(out, p, n);
    for (size_t i = 0; i < n;) {
        int sp = n - i >= 3 && memcmp(p + i, SPACE_PIECE, 3) == 0;
        if (dl_buf_append(out, sp ? " " : p + i, 1)) return -1;
        i += sp ? 3 : 1;
    }
    return 0;
}

static int add_added(dl_tokenizer *t, int32_t id, const char *p, size_t n, int type, dl_error *err) {
    tok_added *a = &t->added[t->n_added];
    if (!(a->content = strndup(p, n))) return dl_fail(err, "out of memory");
    t->n_added++;
    a->id = id;
    a->len = n;
    a->special = type != DL_TOK_USER_DEFINED;
    a->in_vocab = 1;
    return 0;
}

static int check_piece(const tok_spm_src *src, int32_t id, int type, dl_error *err) {
    const char *p = src->piece[id];
    size_t n = src->len[id];
    if (n == 0 || n > TOK_MAX_TOKEN_BYTES) return dl_fail(err, "token %d: length %zu is out of range", (int)id, n);
    if (memchr(p, 0, n)) return dl_fail(err, "token %d holds a NUL byte", (int)id);
    if (!tok_utf8_valid(p, n)) return dl_fail(err, "token %d is not valid UTF-8", (int)id);
    if (type < DL_TOK_NORMAL || type > DL_TOK_BYTE) return dl_fail(err, "token %d has unknown type %d", (int)id, type);
    int b;
    if (type == DL_TOK_BYTE && !tok_spm_byte_piece(p, n, &b))
        return dl_fail(err, "token %d has type BYTE but is spelt '%.*s', not <0xXX>", (int)id, clip(n), p);
    if (src->score && !isfinite(src->score[id])) return dl_fail(err, "token %d has score %g", (int)id, (double)src->score[id]);
    return 0;
}

/* Records the text id decodes to, unless a token that is not a byte token has it already. */
static int add_text(tok_spm *s, int32_t id, const dl_buf *text) {
    if (text->len == 0) return 0;
    int added;
    tok_strent *e = tok_strmap_put(&s->text_ids, text->data, text->len, tok_hash_bytes(text->data, text->len), &added);
    if (!e) return -1;
    if (added || (s->type[e->val] == DL_TOK_BYTE && s->type[id] != DL_TOK_BYTE)) e->val = (uint64_t)id;
    return 0;
}

static int add_token(dl_tokenizer *t, const tok_spm_src *src, int32_t id, dl_buf *text, dl_error *err) {
    tok_spm *s = t->spm;
    int type = infer_type(src, id);
    if (check_piece(src, id, type, err)) return -1;
    const char *p = src->piece[id];
    size_t n = src->len[id];
    int added, b;
    tok_strent *e = tok_strmap_put(&s->piece_ids, p, n, tok_hash_bytes(p, n), &added);
    if (!e) return dl_fail(err, "out of memory");
    if (!added) return dl_fail(err, "tokens %d and %d are both spelt '%.*s'", (int)e->val, (int)id, clip(n), p);
    e->val = (uint64_t)id;
    s->poff[id] = s->pieces.len;
    s->plen[id] = (uint32_t)n;
    s->type[id] = (uint8_t)type;
    s->score[id] = src->score ? src->score[id] : 0.0f;
    if (dl_buf_append(&s->pieces, p, n) || decoded_text(p, n, type, text) || add_text(s, id, text))
        return dl_fail(err, "out of memory");
    if (type == DL_TOK_BYTE && tok_spm_byte_piece(p, n, &b)) s->byte_tok[b] = id;
    int is_added = is_added_type(type);
    if (is_added && add_added(t, id, p, n, type, err)) return -1;
    return tok_set_token(t, id, text->data, text->len, is_added ? TOK_ADDED : TOK_REGULAR, err);
}

static int check_opts(const dl_spm_opts *o, int32_t n, dl_error *err) {
    const int ids[3] = {o->unk_id, o->bos_id, o->eos_id};
    static const char *const names[3] = {"unk", "bos", "eos"};
    for (int k = 0; k < 3; k++)
        if (ids[k] < -1 || ids[k] >= n)
            return dl_fail(err, "%s token id %d is outside the vocabulary (%d tokens)", names[k], ids[k], (int)n);
    return 0;
}

static int add_tokens(dl_tokenizer *t, const tok_spm_src *src, dl_error *err) {
    tok_spm *s = t->spm;
    int32_t n = src->n, n_added = 0;
    if (n <= 0 || n > TOK_MAX_VOCAB) return dl_fail(err, "vocabulary of %d tokens is out of range", (int)n);
    if (check_opts(&src->o, n, err) || tok_alloc_ids(t, n, err)) return -1;
    for (int32_t id = 0; id < n; id++) n_added += is_added_type(infer_type(src, id));
    if (n_added > TOK_MAX_ADDED) return dl_fail(err, "%d control and user-defined tokens (at most %d)", (int)n_added, TOK_MAX_ADDED);
    s->poff = calloc((size_t)n, sizeof *s->poff);
    s->plen = calloc((size_t)n, sizeof *s->plen);
    s->score = calloc((size_t)n, sizeof *s->score);
    s->type = calloc((size_t)n, 1);
    t->added = calloc((size_t)n_added + 1, sizeof *t->added);
    if (!s->poff || !s->plen || !s->score || !s->type || !t->added || tok_strmap_init(&s->piece_ids, (size_t)n) ||
        tok_strmap_init(&s->text_ids, (size_t)n))
        return dl_fail(err, "out of memory");
    dl_buf text = {0};
    int rc = 0;
    for (int32_t id = 0; id < n && rc == 0; id++) rc = add_token(t, src, id, &text, err);
    dl_buf_free(&text);
    if (rc) return -1;
    for (int b = 0; b < 256; b++)
        if (s->byte_tok[b] < 0)
            return dl_fail(err, "the vocabulary has no byte token <0x%02X> (byte fallback needs all 256)", b);
    return 0;
}

/* ---- merges and their ranks ------------------------------------------------------------------ */

typedef struct scored_merge { float score; tok_merge m; } scored_merge;

static int cmp_scored(const void *x, const void *y) {
    const scored_merge *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->m.c != b->m.c) return a->m.c < b->m.c ? -1 : 1;
    if (a->m.a != b->m.a) return a->m.a < b->m.a ? -1 : 1;
    return (a->m.b > b->m.b) - (a->m.b < b->m.b);
}

/* Every split of a normal token c into two symbol tokens, at character boundaries. */
static int splits_of(const tok_spm *s, int32_t c, scored_merge **v, size_t *n, size_t *cap) {
    uint32_t len;
    const char *p = piece_of(s, c, &len);
    for (size_t k = utf8_char((const unsigned char *)p, len); k > 0 && k < len;) {
        int32_t a = symbol_id(s, p, k), b = symbol_id(s, p + k, len - k);
        if (a >= 0 && b >= 0) {
            if (*n == *cap) {
                size_t nc = *cap ? 2 * *cap : 1024;
                scored_merge *g = realloc(*v, nc * sizeof *g);
                if (!g) return -1;
                *v = g;
                *cap = nc;
            }
            (*v)[(*n)++] = (scored_merge){s->score[c], {a, b, c}};
        }
        size_t step = utf8_char((const unsigned char *)p + k, len - k);
        k = step ? k + step : 0;
    }
    return 0;
}

/* Merges from the scores, in rank order; group[r] = the first rank of r's score. */
static int derive_merges(dl_tokenizer *t, int32_t **group, dl_error *err) {
    tok_spm *s = t->spm;
    scored_merge *v = NULL;
    size_t n = 0, cap = 0;
    for (int32_t c = 0; c < t->n_vocab; c++)
        if (s->type[c] == DL_TOK_NORMAL && splits_of(s, c, &v, &n, &cap)) {
            free(v);
            return dl_fail(err, "out of memory");
        }
    if (n > INT32_MAX / 2) {
        free(v);
        return dl_fail(err, "%zu merges are too many", n);
    }
    if (n) qsort(v, n, sizeof *v, cmp_scored);
    t->merges = malloc((n + 1) * sizeof *t->merges);
    *group = malloc((n + 1) * sizeof **group);
    if (!t->merges || !*group) {
        free(v);
        return dl_fail(err, "out of memory");
    }
    for (size_t r = 0; r < n; r++) {
        t->merges[r] = v[r].m;
        (*group)[r] = r > 0 && v[r].score == v[r - 1].score ? (*group)[r - 1] : (int32_t)r;
    }
    t->n_merges = (int32_t)n;
    free(v);
    return 0;
}

/* Merges as given (from tokenizer.json), checked; group[r] = the first rank that makes the
 * same token, and each token's score is minus one minus that rank (0 for the others). */
static int take_merges(dl_tokenizer *t, const tok_spm_src *src, int32_t **group, dl_error *err) {
    tok_spm *s = t->spm;
    int32_t n = src->n_merges;
    t->merges = malloc(((size_t)n + 1) * sizeof *t->merges);
    *group = malloc(((size_t)n + 1) * sizeof **group);
    int32_t *first = malloc((size_t)t->n_vocab * sizeof *first);
    int rc = t->merges && *group && first ? 0 : dl_fail(err, "out of memory");
    for (int32_t id = 0; rc == 0 && id < t->n_vocab; id++) first[id] = -1;
    for (int32_t r = 0; rc == 0 && r < n; r++) {
        tok_merge m = src->merges[r];
        uint32_t la, lb, lc;
        const char *pa = piece_of(s, m.a, &la), *pb = piece_of(s, m.b, &lb), *pc = piece_of(s, m.c, &lc);
        if (lc != la + lb || memcmp(pc, pa, la) != 0 || memcmp(pc + la, pb, lb) != 0)
            rc = dl_fail(err, "merge %d: '%.*s' + '%.*s' is not '%.*s'", (int)r, clip(la), pa, clip(lb), pb, clip(lc), pc);
        else if (s->type[m.c] != DL_TOK_NORMAL)
            rc = dl_fail(err, "merge %d makes '%.*s', which is not a normal token", (int)r, clip(lc), pc);
        if (rc) break;
        if (first[m.c] < 0) {
            first[m.c] = r;
            s->score[m.c] = -1.0f - (float)r;
        }
        t->merges[r] = m;
        (*group)[r] = first[m.c];
    }
    t->n_merges = rc ? 0 : n;
    free(first);
    return rc;
}

static int build_ranks(dl_tokenizer *t, const int32_t *group, dl_error *err) {
    if (tok_u64map_init(&t->ranks, (size_t)t->n_merges)) return dl_fail(err, "out of memory");
    for (int32_t r = 0; r < t->n_merges; r++) {
        const tok_merge *m = &t->merges[r];
        int64_t *v = tok_u64map_put(&t->ranks, tok_pair_key(m->a, m->b));
        if (!v) return dl_fail(err, "out of memory");
        if (*v < 0) *v = (int64_t)group[r] << 32 | m->c;
    }
    return 0;
}

static int check_merge_ids(const tok_spm_src *src, dl_error *err) {
    for (int32_t r = 0; r < src->n_merges; r++) {
        const tok_merge *m = &src->merges[r];
        if (m->a < 0 || m->a >= src->n || m->b < 0 || m->b >= src->n || m->c < 0 || m->c >= src->n)
            return dl_fail(err, "merge %d refers to an id out of range", (int)r);
    }
    return 0;
}

dl_tokenizer *tok_spm_build(const tok_spm_src *src, dl_error *err) {
    dl_tokenizer *t = tok_alloc(err);
    if (!t) return NULL;
    t->pretok = PRETOK_NONE;
    int32_t *group = NULL;
    int rc = (t->spm = calloc(1, sizeof *t->spm)) ? 0 : dl_fail(err, "out of memory");
    if (rc == 0) {
        for (int b = 0; b < 256; b++) t->spm->byte_tok[b] = -1;
        t->spm->o = src->o;
        rc = add_tokens(t, src, err);
    }
    if (rc == 0) rc = src->score ? derive_merges(t, &group, err)
                                 : check_merge_ids(src, err) || take_merges(t, src, &group, err);
    if (rc == 0) rc = build_ranks(t, group, err);
    free(group);
    if (rc) {
        dl_tok_free(t);
        return NULL;
    }
    t->eot_id = src->o.eos_id;
    return t;
}

dl_tokenizer *dl_tok_spm_new(int n, const char *const *pieces, const size_t *lens, const float *scores,
                             const uint8_t *types, const dl_spm_opts *o, dl_error *err) {
    if (!scores) {
        dl_fail(err, "a SentencePiece-style vocabulary needs scores");
        return NULL;
    }
    tok_spm_src src = {.n = n, .piece = pieces, .len = lens, .score = scores, .type = types, .o = *o};
    return tok_spm_build(&src, err);
}

/* ---- accessors ------------------------------------------------------------------------------- */

int dl_tok_is_spm(const dl_tokenizer *t, dl_spm_opts *o) {
    if (t->spm && o) *o = t->spm->o;
    return t->spm != NULL;
}

float dl_tok_score(const dl_tokenizer *t, int id) {
    return t->spm && id >= 0 && id < t->n_vocab ? t->spm->score[id] : 0.0f;
}

int dl_tok_type(const dl_tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab) return 0;
    if (t->spm) return t->spm->type[id];
    if (t->kind[id] == TOK_HOLE) return DL_TOK_UNUSED;
    if (t->kind[id] == TOK_REGULAR) return DL_TOK_NORMAL;
    return dl_tok_is_special(t, id) ? DL_TOK_CONTROL : DL_TOK_USER_DEFINED;
}

/* ---- encode and decode ----------------------------------------------------------------------- */

typedef struct spm_ctx {
    const dl_tokenizer *t;
    dl_ivec *out;
    dl_error *err;
    dl_buf norm; /* the normalized run */
    tok_work w;
} spm_ctx;

static int normalize(const dl_spm_opts *o, const char *s, size_t n, dl_buf *out) {
    out->len = 0;
    if (o->add_prefix && dl_buf_append(out, SPACE_PIECE, 3)) return -1;
    for (size_t i = 0, j; i < n; i = j + 1) {
        const char *sp = memchr(s + i, ' ', n - i);
        j = sp ? (size_t)(sp - s) : n;
        if (dl_buf_append(out, s + i, j - i) || (sp && dl_buf_append(out, SPACE_PIECE, 3))) return -1;
    }
    return 0;
}

/* One run of text between added tokens: characters (or their bytes), then the merges. */
static int encode_run(void *vc, const char *text, size_t len) {
    spm_ctx *c = vc;
    const tok_spm *s = c->t->spm;
    if (normalize(&s->o, text, len, &c->norm)) return dl_fail(c->err, "out of memory");
    const unsigned char *p = (const unsigned char *)c->norm.data;
    size_t n = c->norm.len, k = 0;
    if (n > INT32_MAX / 2) return dl_fail(c->err, "text of %zu bytes is too long", len);
    if (tok_work_grow(&c->w, n)) return dl_fail(c->err, "out of memory");
    for (size_t i = 0; i < n;) {
        size_t cl = utf8_char(p + i, n - i);
        int32_t id = cl ? symbol_id(s, (const char *)p + i, cl) : -1;
        if (id >= 0) c->w.sym[k++] = id;
        else for (size_t j = 0; j < (cl ? cl : 1); j++) c->w.sym[k++] = s->byte_tok[p[i + j]];
        i += cl ? cl : 1;
    }
    return tok_bpe_merge(c->t, &c->w, k, c->out, c->err);
}

static int encode_added(void *vc, int idx) {
    spm_ctx *c = vc;
    return dl_ivec_push(c->out, c->t->added[idx].id) ? dl_fail(c->err, "out of memory") : 0;
}

int tok_spm_encode(const dl_tokenizer *t, const char *text, size_t len, int allow_special, dl_ivec *out,
                   dl_error *err) {
    spm_ctx c = {.t = t, .out = out, .err = err};
    int rc = tok_split_added(t, text, len, allow_special, encode_run, encode_added, &c, err);
    dl_buf_free(&c.norm);
    tok_work_free(&c.w);
    return rc;
}

int tok_spm_decode(const dl_tokenizer *t, const int32_t *ids, size_t n, dl_buf *out, dl_error *err) {
    size_t start = out->len;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab)
            return dl_fail(err, "token id %d at position %zu is out of range (vocabulary of %d)", (int)id, i,
                           (int)t->n_vocab);
        if (dl_buf_append(out, t->arena.data + t->off[id], t->len[id])) return dl_fail(err, "out of memory");
    }
    if (t->spm->o.add_prefix && out->len > start && out->data[start] == ' ') {
        memmove(out->data + start, out->data + start + 1, out->len - start - 1);
        out->len--;
    }
    return 0;
}
