/* Sampling the next token: temperature, top-k (a heap of k), top-p (nucleus). */
#include "sampler.h"
#include <math.h>
#include <stdlib.h>

dl_sampler_cfg dl_sampler_default(void) { return (dl_sampler_cfg){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f}; }

int dl_sampler_check(const dl_sampler_cfg *cfg, dl_error *err) {
    if (!(cfg->temperature >= 0.0f) || !isfinite(cfg->temperature))
        return dl_fail(err, "temperature %g must be a finite number >= 0", (double)cfg->temperature);
    if (cfg->top_k < 0) return dl_fail(err, "top-k %d must be >= 0 (0 = no limit)", cfg->top_k);
    if (!(cfg->top_p > 0.0f && cfg->top_p <= 1.0f))
        return dl_fail(err, "top-p %g must be in (0, 1] (1 = no limit)", (double)cfg->top_p);
    return 0;
}

int dl_argmax(const float *logits, int V) {
    int best = -1;
    for (int i = 0; i < V; i++)
        if (isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    return best;
}

static double uniform(dl_rng *rng) { return (double)(dl_rng_u64(rng) >> 11) * 0x1.0p-53; }

/* Unnormalised probability of logit x: exp((x - max) / T); non-finite logits get 0. */
static float weight(float x, float mx, float inv_t) { return isfinite(x) ? expf((x - mx) * inv_t) : 0.0f; }

/* Plain softmax sampling needs no scratch: one pass for the sum, one to find u's bucket. */
static int sample_all(const float *logits, int V, float mx, float inv_t, dl_rng *rng) {
    double sum = 0;
    for (int i = 0; i < V; i++) sum += weight(logits[i], mx, inv_t);
    double u = uniform(rng) * sum, acc = 0;
    int last = -1;
    for (int i = 0; i < V; i++) {
        float w = weight(logits[i], mx, inv_t);
        if (w <= 0) continue;
        acc += w;
        last = i;
        if (u < acc) return i;
    }
    return last; /* u landed past the sum by rounding */
}

typedef struct {
    float p;
    int id;
} cand;

/* a comes before b: more likely, or as likely with a lower id */
static int before(const cand *a, const cand *b) { return a->p > b->p || (a->p == b->p && a->id < b->id); }
static int cand_cmp(const void *a, const void *b) { return before(a, b) ? -1 : before(b, a) ? 1 : 0; }

/* heap whose root is the candidate that comes last */
static void sift_down(cand *h, int n, int i) {
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && before(&h[w], &h[l])) w = l;
        if (r < n && before(&h[w], &h[r])) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Moves the k best of c[0..n) to c[0..k), in O(n log k). */
static int keep_top_k(cand *c, int n, int k) {
    if (k >= n) return n;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (before(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    return k;
}

/* Without top-k, a token whose probability is below (1-p)/(V-1) cannot be in the nucleus:
 * all such tokens together hold less than 1-p, so the tokens above the cut already hold more
 * than p. Dropping them first saves sorting the long tail. */
static int drop_tail(cand *c, int n, double total, float top_p) {
    double cut = n > 1 ? (1.0 - top_p) / (n - 1) * total : 0;
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (c[i].p >= cut) c[kept++] = c[i];
    return kept > 0 ? kept : n;
}

int dl_sample(const float *logits, int V, const dl_sampler_cfg *cfg, dl_rng *rng) {
    int best = dl_argmax(logits, V);
    if (best < 0 || cfg->temperature <= 0.0f || cfg->top_k == 1) return best;
    float mx = logits[best], inv_t = 1.0f / cfg->temperature;
    int use_k = cfg->top_k > 0 && cfg->top_k < V, use_p = cfg->top_p < 1.0f;
    if (!use_k && !use_p) return sample_all(logits, V, mx, inv_t, rng);
    cand *c = malloc((size_t)V * sizeof *c);
    if (!c) return -1;
    double total = 0;
    for (int i = 0; i < V; i++) {
        c[i] = (cand){weight(logits[i], mx, inv_t), i};
        total += c[i].p;
    }
    int n = use_k ? keep_top_k(c, V, cfg->top_k) : drop_tail(c, V, total, cfg->top_p);
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    double mass = 0;
    for (int i = 0; i < n; i++) mass += c[i].p;
    if (use_p) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += c[i].p;
            if (acc >= cfg->top_p * mass) {
                n = i + 1;
                mass = acc;
                break;
            }
        }
    }
    double u = uniform(rng) * mass, acc = 0;
    int pick = c[0].id;
    for (int i = 0; i < n && c[i].p > 0; i++) {
        acc += c[i].p;
        pick = c[i].id;
        if (u < acc) break;
    }
    free(c);
    return pick;
}
