/* Raw features of a set of requests (one key's, or a group's pooled). Every measure is a share, a
 * ratio or a shape of the gaps, so none depends on the time unit or on how long the log is:
 * a log replayed ten times faster gives the same features. Cost: linear in the rows plus
 * O(S * m log m) for m <= sim_sample distinct prompts and S = 64 MinHash slots. */
#include "audit_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BREADTH_MIN_PROMPTS 8 /* fewer distinct prompts: breadth is not measured */
/* Fewer slices: steadiness is not measured. With 2 slices (4 requests) random arrivals fill both
 * 3 times in 4, so the share says nothing; from 8 slices a run of even pacing stands out. */
#define STEADY_MIN_SLICES 8

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The distinct prompts with text among the rows, at most max of them spread evenly over the
 * list (sorted by prompt index); *out malloc'ed. Also how many distinct prompts there are with
 * text (*n_text) and with or without (*n_distinct). */
static int text_prompts(const dl_audit_log *L, const int *rows, int n, int max, int **out, int *n_out, int *n_text,
                        int *n_distinct) {
    int *p = malloc(((size_t)n + 1) * sizeof *p);
    if (!p) return -1;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (L->rows[rows[i]].prompt >= 0) p[k++] = L->rows[rows[i]].prompt;
    qsort(p, (size_t)k, sizeof *p, cmp_int);
    int d = 0, t = 0;
    for (int i = 0; i < k; i++)
        if (i == 0 || p[i] != p[i - 1]) {
            d++;
            if (L->prompts[p[i]].has_text && L->prompts[p[i]].n_sh > 0) p[t++] = p[i];
        }
    *n_text = t;
    if (t > max) {
        for (int i = 0; i < max; i++) p[i] = p[(int)((long long)i * t / max)];
        t = max;
    }
    *out = p;
    *n_out = t;
    *n_distinct = d;
    return 0;
}

/* Mean over slots of the share of prompt pairs whose minimum agrees: for MinHash that is an
 * unbiased estimate of the mean pairwise Jaccard similarity, with no pair ever formed. */
static int mean_similarity(const dl_audit_log *L, const int *p, int m, double *out) {
    *out = NAN;
    if (m < 2) return 0;
    uint32_t *sig = malloc((size_t)m * AUDIT_SIG * sizeof *sig), *col = malloc((size_t)m * sizeof *col);
    if (!sig || !col) return free(sig), free(col), -1;
    for (int i = 0; i < m; i++) {
        const audit_prompt *ap = &L->prompts[p[i]];
        audit_minhash(L->pool + ap->sh_off, ap->n_sh, sig + (size_t)i * AUDIT_SIG);
    }
    double agree = 0;
    for (int s = 0; s < AUDIT_SIG; s++) {
        for (int i = 0; i < m; i++) col[i] = sig[(size_t)i * AUDIT_SIG + s];
        qsort(col, (size_t)m, sizeof *col, cmp_u32);
        for (int i = 0, j; i < m; i = j) {
            for (j = i; j < m && col[j] == col[i]; j++) {}
            agree += (double)(j - i) * (j - i - 1);
        }
    }
    *out = agree / AUDIT_SIG / ((double)m * (m - 1));
    free(sig);
    free(col);
    return 0;
}

/* All hashes of one kind (shingles or words) of the prompts, concatenated and sorted. */
static uint32_t *gather(const dl_audit_log *L, const int *p, int m, int words, size_t *n) {
    size_t total = 0;
    for (int i = 0; i < m; i++) total += (size_t)(words ? L->prompts[p[i]].n_words : L->prompts[p[i]].n_sh);
    uint32_t *all = malloc((total + 1) * sizeof *all);
    if (!all) return NULL;
    size_t k = 0;
    for (int i = 0; i < m; i++) {
        const audit_prompt *ap = &L->prompts[p[i]];
        size_t c = (size_t)(words ? ap->n_words : ap->n_sh);
        memcpy(all + k, L->pool + (words ? ap->word_off : ap->sh_off), c * sizeof *all);
        k += c;
    }
    qsort(all, k, sizeof *all, cmp_u32);
    *n = k;
    return all;
}

/* In at least half of m prompts, and in two at least. */
static int frequent_min(int m) {
    int half = (m + 1) / 2;
    return half > 2 ? half : 2;
}

/* Words in half the prompts or more are the template's or grammar's; the rest are content.
 * Breadth = distinct content words / content word uses (each prompt counts a word once). */
static int breadth(const dl_audit_log *L, const int *p, int m, double *out) {
    *out = NAN;
    if (m < BREADTH_MIN_PROMPTS) return 0;
    size_t n;
    uint32_t *w = gather(L, p, m, 1, &n);
    if (!w) return -1;
    long long distinct = 0, uses = 0;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && w[j] == w[i]; j++) {}
        if ((int)(j - i) >= frequent_min(m)) continue;
        distinct++;
        uses += (long long)(j - i);
    }
    if (uses > 0) *out = (double)distinct / (double)uses;
    free(w);
    return 0;
}

int audit_template_sig(const dl_audit_log *L, const int *rows, int n, uint32_t sig[AUDIT_SIG], int *ok) {
    int *p, m, t, d;
    *ok = 0;
    if (text_prompts(L, rows, n, AUDIT_BREADTH_PROMPTS, &p, &m, &t, &d)) return -1;
    size_t total;
    uint32_t *all = m >= 2 ? gather(L, p, m, 0, &total) : NULL;
    free(p);
    if (m >= 2 && !all) return -1;
    int k = 0;
    for (size_t i = 0, j; all && i < total; i = j) {
        for (j = i; j < total && all[j] == all[i]; j++) {}
        if ((int)(j - i) >= frequent_min(m)) all[k++] = all[i];
    }
    if (k >= 3) {
        audit_minhash(all, k, sig);
        *ok = 1;
    }
    free(all);
    return 0;
}

/* Gaps between consecutive requests: their coefficient of variation and burstiness;
 * steadiness over slices of the active period; hours of the day when the period is long. */
static void timing(const dl_audit_log *L, const int *rows, int n, const dl_audit_model *m, dl_audit_features *x) {
    x->gap_cv = x->burstiness = x->steadiness = x->hours_active = NAN;
    if (n < m->min_requests || n < 3) return;
    double sum = 0, sq = 0;
    for (int i = 1; i < n; i++) sum += L->rows[rows[i]].t - L->rows[rows[i - 1]].t;
    double mean = sum / (n - 1);
    for (int i = 1; i < n; i++) {
        double d = L->rows[rows[i]].t - L->rows[rows[i - 1]].t - mean;
        sq += d * d;
    }
    double sd = sqrt(sq / (n - 1));
    if (mean > 0) {
        x->gap_cv = sd / mean;
        x->burstiness = (sd - mean) / (sd + mean);
    } else {
        x->burstiness = 1; /* every request at one instant: one burst */
    }
    /* one slice per two requests: even pacing fills all, Poisson 1 - e^-2 = 86%, bursts few */
    int S = n / 2 > AUDIT_SLICES_MAX ? AUDIT_SLICES_MAX : n / 2;
    double span = x->last - x->first;
    uint64_t seen[AUDIT_SLICES_MAX / 64] = {0};
    int hit = 0;
    for (int i = 0; i < n; i++) {
        int s = span > 0 ? (int)((L->rows[rows[i]].t - x->first) / span * S) : 0;
        if (s >= S) s = S - 1;
        if (!(seen[s / 64] >> (s % 64) & 1)) {
            seen[s / 64] |= 1ull << (s % 64);
            hit++;
        }
    }
    if (S >= STEADY_MIN_SLICES) x->steadiness = (double)hit / S;
    if (span < m->hours_min_days * 86400.0) return;
    int hours[24] = {0}, active = 0;
    for (int i = 0; i < n; i++) {
        int h = (int)fmod(floor(L->rows[rows[i]].t / 3600.0), 24.0);
        if (h < 0) h += 24;
        if (!hours[h]) active += hours[h] = 1;
    }
    x->hours_active = active;
}

static void counts(const dl_audit_log *L, const int *rows, int n, dl_audit_features *x) {
    long long asked = 0, done = 0, saturated = 0;
    for (int i = 0; i < n; i++) {
        const audit_row *r = &L->rows[rows[i]];
        x->prompt_tokens += r->pt;
        x->completion_tokens += r->ct;
        if (r->prompt < 0) continue;
        x->with_prompt++;
        asked += r->logprobs >= 0;
        if (r->status == 200 && r->max_tokens > 0) {
            done++;
            saturated += r->ct >= (long long)r->max_tokens * (r->n > 1 ? r->n : 1);
        }
    }
    x->logprobs_share = x->with_prompt ? (double)asked / (double)x->with_prompt : NAN;
    x->saturation = done ? (double)saturated / (double)done : NAN;
}

int audit_measure(const dl_audit_log *L, const int *rows, int n, const dl_audit_model *m, dl_audit_features *x) {
    memset(x, 0, sizeof *x);
    x->keys = 1;
    x->requests = n;
    x->volume_ratio = NAN;
    x->first = n ? L->rows[rows[0]].t : NAN;
    x->last = n ? L->rows[rows[n - 1]].t : NAN;
    counts(L, rows, n, x);
    timing(L, rows, n, m, x);
    int *p, np, t, d;
    if (text_prompts(L, rows, n, m->sim_sample, &p, &np, &t, &d)) return -1;
    x->distinct_prompts = d;
    x->distinct_ratio = x->with_prompt ? (double)d / (double)x->with_prompt : NAN;
    x->with_text = t;
    int rc = mean_similarity(L, p, np, &x->similarity);
    if (rc == 0) rc = breadth(L, p, np < AUDIT_BREADTH_PROMPTS ? np : AUDIT_BREADTH_PROMPTS, &x->breadth);
    free(p);
    return rc;
}
