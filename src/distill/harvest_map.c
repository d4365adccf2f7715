/* One harvest record as the student's token sequence, with the teacher's top-k targets at the
 * positions where the two tokenizations agree (rules in harvest_data.h). */
#include "harvest_data.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int hd_student_id(const hd_vocab *v, const char *b, size_t n) {
    int id = -1;
    if (n == 0) return -1;
    if (memchr(b, 0, n)) {
        /* dl_tok_id takes C strings: byte 0 alone is found by encoding it (one byte is one token) */
        dl_ivec ids = {0};
        if (n == 1 && dl_tok_encode(v->tok, b, 1, 0, &ids, NULL) == 0 && ids.len == 1) id = ids.data[0];
        dl_ivec_free(&ids);
    } else {
        char small[256], *s = n < sizeof small ? small : malloc(n + 1);
        if (!s) return -1;
        memcpy(s, b, n);
        s[n] = 0;
        id = dl_tok_id(v->tok, s);
        if (s != small) free(s);
    }
    return id >= 0 && id < v->V ? id : -1;
}

/* ---- the sequence ------------------------------------------------------------------------------- */

static int push_float(float **a, size_t *cap, size_t len, float x) {
    if (len + 1 > *cap) {
        size_t n = *cap ? 2 * *cap : 64;
        float *q = realloc(*a, n * sizeof *q);
        if (!q) return -1;
        *a = q;
        *cap = n;
    }
    (*a)[len] = x;
    return 0;
}

void hd_seq_free(hd_seq *s) {
    dl_ivec_free(&s->ids), dl_ivec_free(&s->n_alt), dl_ivec_free(&s->top1), dl_ivec_free(&s->alt_ids);
    free(s->alt_logp), free(s->rest);
    memset(s, 0, sizeof *s);
}

static void seq_clear(hd_seq *s) {
    s->ids.len = s->n_alt.len = s->top1.len = s->alt_ids.len = 0;
    s->first = 0;
}

/* ---- completion tokens -------------------------------------------------------------------------- */

/* The teacher's own tokens, when each has a student id and together they spell the completion
 * (raw bytes need not: the completion text is their UTF-8 repair). */
static int direct_ids(const hd_record *r, const hd_vocab *v, dl_ivec *ids) {
    if (!r->has_logprobs) return 0;
    size_t at = 0;
    int spells = 1;
    for (size_t j = 0; j < r->n_tok; j++) {
        const hd_span *t = &r->tok[j];
        const char *b = r->bytes.data + t->off;
        int id = hd_student_id(v, b, t->len);
        if (id < 0) return 0;
        spells &= at + t->len <= r->completion.len && memcmp(r->completion.data + at, b, t->len) == 0;
        if (!spells && !r->raw) return 0;
        if (dl_ivec_push(ids, id)) return -1;
        at += t->len;
    }
    return at == r->completion.len || (r->raw && r->n_tok > 0);
}

/* How many bytes of the completion the teacher's tokens spell, from the start. */
static size_t spelled(const hd_record *r) {
    size_t at = 0;
    for (size_t j = 0; j < r->n_tok; j++) {
        const hd_span *t = &r->tok[j];
        size_t n = t->len, k = 0;
        while (k < n && at + k < r->completion.len && r->bytes.data[t->off + k] == r->completion.data[at + k]) k++;
        if (k < n) return at + k;
        at += n;
    }
    return at;
}

/* align[i]: the teacher token covering exactly the bytes of student token i, or -1. */
static int align_tokens(const hd_record *r, const hd_vocab *v, const dl_ivec *ids, int *align) {
    size_t lcp = spelled(r), s = 0, a = 0; // s: student token start, a: teacher token j start
    size_t j = 0;
    for (size_t i = 0; i < ids->len; i++) {
        size_t n = 0;
        if (!dl_tok_token(v->tok, ids->data[i], &n)) return -1;
        while (j < r->n_tok && (a < s || (a == s && r->tok[j].len == 0))) a += r->tok[j++].len;
        int same = j < r->n_tok && a == s && r->tok[j].len == n && a + n <= lcp;
        align[i] = same ? (int)j : -1;
        s += n;
    }
    return 0;
}

/* ---- top-k targets of one aligned position -------------------------------------------------------- */

static int find(const int32_t *ids, size_t n, int32_t id) {
    for (size_t k = 0; k < n; k++)
        if (ids[k] == id) return (int)k;
    return -1;
}

// log(exp(a) + exp(b))
static float log_add(float a, float b) {
    float m = a > b ? a : b;
    return m + log1pf(expf(-fabsf(a - b)));
}

/* Teacher token j's alternatives as student ids (and the sampled token `sampled`) onto s. */
static int add_targets(hd_seq *s, const hd_record *r, size_t j, int32_t sampled, const hd_vocab *v, hd_counts *c) {
    size_t first = s->alt_ids.len;
    int top1 = -1;
    float best = -INFINITY;
    for (size_t a = r->alt_at[j]; a < r->alt_at[j + 1]; a++) {
        const hd_alt *alt = &r->alts[a];
        int id = hd_student_id(v, r->bytes.data + alt->b.off, alt->b.len);
        c->alts++;
        c->unmapped += id < 0;
        if (alt->logp > best) best = alt->logp, top1 = id;
        if (id < 0) continue;
        int k = find(s->alt_ids.data + first, s->alt_ids.len - first, id);
        if (k >= 0) s->alt_logp[first + (size_t)k] = log_add(s->alt_logp[first + (size_t)k], alt->logp);
        else if (push_float(&s->alt_logp, &s->cap_logp, s->alt_ids.len, alt->logp) || dl_ivec_push(&s->alt_ids, id))
            return -1;
    }
    float lp = r->tok_logp[j];
    if (!isnan(lp) && find(s->alt_ids.data + first, s->alt_ids.len - first, sampled) < 0)
        if (push_float(&s->alt_logp, &s->cap_logp, s->alt_ids.len, lp) || dl_ivec_push(&s->alt_ids, sampled)) return -1;
    double kept = 0;
    for (size_t k = first; k < s->alt_ids.len; k++) kept += exp((double)s->alt_logp[k]);
    int n = (int)(s->alt_ids.len - first);
    c->topk += n > 0;
    if (push_float(&s->rest, &s->cap_rest, s->n_alt.len, kept < 1 ? (float)(1 - kept) : 0.0f)) return -1;
    return dl_ivec_push(&s->n_alt, n) || dl_ivec_push(&s->top1, top1);
}

static int add_plain(hd_seq *s) {
    return push_float(&s->rest, &s->cap_rest, s->n_alt.len, 0.0f) || dl_ivec_push(&s->n_alt, 0) ||
           dl_ivec_push(&s->top1, -1);
}

/* ---- the record ----------------------------------------------------------------------------------- */

/* Every id must be a row of the student's embeddings. what: "prompt" or "completion". */
static int check_ids(const dl_ivec *ids, int V, const char *what, dl_error *err) {
    for (size_t i = 0; i < ids->len; i++)
        if (ids->data[i] >= V)
            return dl_fail(err, "the %s encodes to id %d, outside the student's vocab_size %d", what, ids->data[i], V);
    return 0;
}

static int encode_prompt(const hd_record *r, const hd_vocab *v, dl_ivec *ids, dl_error *err) {
    /* as the server: a completions prompt may hold special tokens, a chat message may not */
    if (dl_tok_encode(v->tok, r->prompt.data ? r->prompt.data : "", r->prompt.len, !r->chat, ids, err) ||
        check_ids(ids, v->V, "prompt", err))
        return -1;
    if (ids->len > 0) return 0;
    if (v->start < 0) return dl_fail(err, "the prompt is empty and the student's tokenizer has no <|endoftext|> to start from");
    return dl_ivec_push(ids, v->start) ? dl_fail(err, "out of memory") : 0;
}

static int encode_completion(const hd_record *r, const hd_vocab *v, dl_ivec *ids, int *direct, dl_error *err) {
    int d = direct_ids(r, v, ids);
    if (d < 0) return dl_fail(err, "out of memory");
    *direct = d;
    if (d) return 0;
    ids->len = 0;
    if (dl_tok_encode(v->tok, r->completion.data ? r->completion.data : "", r->completion.len, 0, ids, err)) return -1;
    return check_ids(ids, v->V, "completion", err);
}

/* ids = the prompt's last keep_p + the completion's first keep_c tokens; then targets per token */
static int build(hd_seq *s, const hd_record *r, const hd_vocab *v, const dl_ivec *p, const dl_ivec *comp,
                 const int *align, size_t keep_p, size_t keep_c, hd_counts *c) {
    for (size_t i = p->len - keep_p; i < p->len; i++)
        if (dl_ivec_push(&s->ids, p->data[i])) return -1;
    s->first = (int)keep_p;
    for (size_t i = 0; i < keep_c; i++) {
        int eot = i >= comp->len;
        int32_t id = eot ? v->eot : comp->data[i];
        if (dl_ivec_push(&s->ids, id)) return -1;
        int j = eot ? -1 : align[i];
        c->unaligned += !eot && r->has_logprobs && j < 0;
        if (j >= 0 ? add_targets(s, r, (size_t)j, id, v, c) : add_plain(s)) return -1;
    }
    c->tokens += (long)keep_c;
    return 0;
}

static int map_into(const hd_record *r, const hd_vocab *v, size_t lim, dl_ivec *p, dl_ivec *comp, int **align,
                    hd_seq *s, hd_counts *c, dl_error *err) {
    int direct = 0;
    if (encode_prompt(r, v, p, err) || encode_completion(r, v, comp, &direct, err)) return -1;
    if (!(*align = malloc((comp->len + 1) * sizeof **align))) return dl_fail(err, "out of memory");
    if (direct)
        for (size_t i = 0; i < comp->len; i++) (*align)[i] = (int)i;
    else if (align_tokens(r, v, comp, *align))
        return dl_fail(err, "the student's tokenizer gave an id it cannot spell");
    size_t C = comp->len + (r->stopped && v->eot >= 0);
    size_t keep_c = C < lim - 1 ? C : lim - 1, keep_p = p->len < lim - keep_c ? p->len : lim - keep_c;
    c->truncated += keep_p + keep_c < p->len + C;
    c->direct += direct;
    return build(s, r, v, p, comp, *align, keep_p, keep_c, c) ? dl_fail(err, "out of memory") : 0;
}

int hd_map_record(const hd_record *r, const hd_vocab *v, int max_len, hd_seq *s, hd_counts *c, dl_error *err) {
    seq_clear(s);
    if (max_len < 2) return dl_fail(err, "sequences need at least 2 tokens");
    dl_ivec p = {0}, comp = {0};
    int *align = NULL;
    int rc = map_into(r, v, (size_t)max_len, &p, &comp, &align, s, c, err);
    dl_ivec_free(&p), dl_ivec_free(&comp);
    free(align);
    return rc;
}
