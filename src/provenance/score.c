/* Scoring (context, token) pairs: each distinct pair once, pairs held by a prompt not at all.
 *
 * A pair is a tuple of W = H + 1 ids. A set of tuples is an open-addressing table of indices
 * into one flat array of the tuples it holds (W ids each), at most half full. */
#include "provenance.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct tuple_set {
    int W;
    dl_ivec ids;      /* the tuples, W ids each */
    uint32_t *slots;  /* 0 = empty, else 1 + tuple number */
    size_t cap, n;    /* cap a power of two */
} tuple_set;

static uint64_t tuple_hash(const int32_t *t, int W) {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < W; i++) {
        h ^= (uint32_t)t[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static void set_free(tuple_set *s) {
    dl_ivec_free(&s->ids);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

/* the slot holding t, or the empty slot where it would go */
static size_t set_find(const tuple_set *s, const int32_t *t) {
    size_t mask = s->cap - 1, i = (size_t)tuple_hash(t, s->W) & mask;
    while (s->slots[i] && memcmp(s->ids.data + (size_t)(s->slots[i] - 1) * s->W, t, (size_t)s->W * sizeof *t))
        i = (i + 1) & mask;
    return i;
}

static int set_grow(tuple_set *s) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    if (cap > ((size_t)1 << 31)) return -1;
    uint32_t *old = s->slots;
    size_t old_cap = s->cap;
    if (!(s->slots = calloc(cap, sizeof *s->slots))) {
        s->slots = old;
        return -1;
    }
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i]) s->slots[set_find(s, s->ids.data + (size_t)(old[i] - 1) * s->W)] = old[i];
    free(old);
    return 0;
}

static int set_has(const tuple_set *s, const int32_t *t) { return s->cap && s->slots[set_find(s, t)] != 0; }

/* 1 when t was new (now added), 0 when it was there, -1 when out of memory */
static int set_add(tuple_set *s, const int32_t *t) {
    if (2 * (s->n + 1) > s->cap && set_grow(s)) return -1;
    size_t i = set_find(s, t);
    if (s->slots[i]) return 0;
    for (int k = 0; k < s->W; k++)
        if (dl_ivec_push(&s->ids, t[k])) return -1;
    s->slots[i] = (uint32_t)++s->n;
    return 1;
}

struct dl_wm_scorer {
    const dl_wm *wm;
    tuple_set seen;
    long tokens, no_context, repeats, excluded, n, green;
};

dl_wm_scorer *dl_wm_scorer_new(const dl_wm *wm) {
    dl_wm_scorer *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->wm = wm;
    s->seen.W = wm->H + 1;
    return s;
}

void dl_wm_scorer_free(dl_wm_scorer *s) {
    if (!s) return;
    set_free(&s->seen);
    free(s);
}

/* every run of W consecutive ids of the prompt */
static int prompt_set(tuple_set *p, const int32_t *prompt, size_t n, int W) {
    p->W = W;
    for (size_t i = 0; i + (size_t)W <= n; i++)
        if (set_add(p, prompt + i) < 0) return -1;
    return 0;
}

static int score_one(dl_wm_scorer *s, const int32_t *pair, const tuple_set *prompt) {
    int W = s->wm->H + 1;
    if (set_has(prompt, pair)) return s->excluded++, 0;
    int fresh = set_add(&s->seen, pair);
    if (fresh < 0) return -1;
    if (!fresh) return s->repeats++, 0;
    s->n++;
    s->green += dl_wm_green(s->wm, pair, pair[W - 1]);
    return 0;
}

int dl_wm_score(dl_wm_scorer *s, const int32_t *ctx, const int32_t *tok, size_t n, const int32_t *prompt,
                size_t n_prompt, dl_error *err) {
    int H = s->wm->H;
    tuple_set excl = {0};
    int rc = prompt ? prompt_set(&excl, prompt, n_prompt, H + 1) : 0;
    int32_t pair[DL_WM_MAX_CONTEXT + 1];
    for (size_t i = 0; rc == 0 && i < n; i++) {
        s->tokens++;
        if (i < (size_t)H || tok[i] < 0) {
            s->no_context++;
            continue;
        }
        memcpy(pair, ctx + i - H, (size_t)H * sizeof *pair);
        pair[H] = tok[i];
        rc = score_one(s, pair, &excl);
    }
    set_free(&excl);
    return rc ? dl_fail(err, "scoring: out of memory after %ld pairs", s->n) : 0;
}

void dl_wm_scorer_stats(const dl_wm_scorer *s, dl_wm_stats *out) {
    double gamma = s->wm->gamma;
    *out = (dl_wm_stats){.tokens = s->tokens, .no_context = s->no_context, .repeats = s->repeats,
                         .excluded = s->excluded, .n = s->n, .green = s->green, .gamma = gamma};
    out->z = dl_binom_z(s->green, s->n, gamma);
    out->log_p = dl_binom_log_sf(s->green, s->n, gamma);
    out->p = exp(out->log_p);
}
