/* A reference for the distillation losses in double, written straight from the formulas in
 * src/distill/losses.h (not from losses.c): plain softmax, plain KL sums, the rest bin's student
 * mass summed over the entries outside the ids. Shared by the kd tests, and random inputs. */
#ifndef DISTIL_TEST_KD_REF_H
#define DISTIL_TEST_KD_REF_H
#include "base/base.h"
#include "distill/losses.h"
#include <math.h>
#include <stdlib.h>

/* A teacher in either form: full logits (zt != NULL, rows of ts) or top-k. */
typedef struct {
    const float *zt;
    size_t ts;
    const int32_t *ids;
    const float *logp, *rest;
    int K;
} ref_teacher;

static inline double ref_kl(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        if (a[i] > 0) s += a[i] * log(a[i] / b[i]);
    return s;
}

static inline double ref_div(const dl_kd_cfg *cfg, const double *p, const double *q, int n) {
    double m[n], out = 0;
    double be = cfg->beta, al = cfg->alpha;
    switch (cfg->kind) {
    case DL_KD_FKL: return ref_kl(p, q, n);
    case DL_KD_RKL: return ref_kl(q, p, n);
    case DL_KD_JSD:
        if (be == 0) return ref_kl(p, q, n);
        if (be == 1) return ref_kl(q, p, n);
        for (int i = 0; i < n; i++) m[i] = be * p[i] + (1 - be) * q[i];
        return be * ref_kl(p, m, n) + (1 - be) * ref_kl(q, m, n);
    case DL_KD_SKL:
        for (int i = 0; i < n; i++) m[i] = al * p[i] + (1 - al) * q[i];
        return ref_kl(p, m, n);
    case DL_KD_SRKL:
        for (int i = 0; i < n; i++) m[i] = al * q[i] + (1 - al) * p[i];
        return ref_kl(q, m, n);
    case DL_KD_TV:
        for (int i = 0; i < n; i++) out += 0.5 * fabs(p[i] - q[i]);
        return out;
    }
    return NAN;
}

/* softmax of x / tau into out, n entries */
static inline void ref_softmax(double *out, const double *x, int n, double tau) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, x[i] / tau);
    for (int i = 0; i < n; i++) s += exp(x[i] / tau - mx);
    for (int i = 0; i < n; i++) out[i] = exp(x[i] / tau - mx) / s;
}

/* Total loss (1 - w) tau^2 mean D + w mean CE over counted rows; zs (N,V) in double. */
static inline double ref_loss(const dl_kd_cfg *cfg, const double *zs, const ref_teacher *t, const int32_t *targets,
                       int N, int V) {
    double tau = cfg->tau, w = cfg->ce_weight, sd = 0, sce = 0;
    int count = 0;
    double *q = malloc(sizeof(double) * V * 4), *p = q + V, *qb = p + V, *x = qb + V;
    for (int n = 0; n < N; n++) {
        int tg = targets ? targets[n] : 0;
        if (targets && (tg < 0 || tg >= V)) continue;
        count++;
        const double *z = zs + (size_t)n * V;
        ref_softmax(q, z, V, tau);
        if (targets) {
            ref_softmax(x, z, V, 1.0);
            sce += -log(x[tg]);
        }
        int nb;
        if (t->zt) {
            for (int i = 0; i < V; i++) x[i] = t->zt[n * t->ts + i];
            ref_softmax(p, x, V, tau);
            for (int i = 0; i < V; i++) qb[i] = q[i];
            nb = V;
        } else {
            int K = t->K;
            const int32_t *ids = t->ids + n * K;
            double qrest = 0;
            for (int i = 0; i < V; i++) {
                int in = 0;
                for (int k = 0; k < K; k++) in |= ids[k] == i;
                if (!in) qrest += q[i];
            }
            for (int k = 0; k < K; k++) {
                qb[k] = q[ids[k]];
                x[k] = t->logp[n * K + k];
            }
            nb = K;
            if (K < V) { // the rest bin: its mass spread evenly over the other V - K ids, softened
                double each = fmax(t->rest[n], DL_KD_REST_MIN) / (V - K), sp = 0;
                for (int k = 0; k < K; k++) sp += pow(exp(x[k]), 1 / tau);
                double tail = (V - K) * pow(each, 1 / tau);
                for (int k = 0; k < K; k++) p[k] = pow(exp(x[k]), 1 / tau) / (sp + tail);
                p[K] = tail / (sp + tail);
                qb[K] = qrest;
                nb = K + 1;
            } else {
                ref_softmax(p, x, K, tau);
            }
        }
        sd += ref_div(cfg, p, qb, nb);
    }
    free(q);
    if (!count) return 0;
    return (1 - w) * tau * tau * sd / count + w * sce / count;
}

/* ---- random inputs ------------------------------------------------------------------------- */
static inline float *kd_randn(dl_rng *r, size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * dl_rng_normal(r);
    return x;
}

/* Top-k from full teacher logits (first V of each row of ts): the K largest ids in a shuffled
 * order, their log-probabilities and the leftover mass, as a cache would hold them. */
static inline void kd_make_topk(const float *zt, size_t ts, int N, int V, int K, dl_rng *r, int32_t *ids, float *logp,
                         float *rest) {
    for (int n = 0; n < N; n++) {
        const float *z = zt + n * ts;
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, z[i]);
        for (int i = 0; i < V; i++) s += exp(z[i] - mx);
        char used[V];
        for (int i = 0; i < V; i++) used[i] = 0;
        double mass = 0;
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int i = 0; i < V; i++)
                if (!used[i] && (best < 0 || z[i] > z[best])) best = i;
            used[best] = 1;
            ids[n * K + k] = best;
            logp[n * K + k] = (float)(z[best] - mx - log(s));
            mass += exp(logp[n * K + k]);
        }
        for (int k = K - 1; k > 0; k--) { // shuffle so that nothing relies on the order
            int j = (int)dl_rng_below(r, (uint64_t)k + 1);
            int32_t ti = ids[n * K + k];
            float tl = logp[n * K + k];
            ids[n * K + k] = ids[n * K + j];
            logp[n * K + k] = logp[n * K + j];
            ids[n * K + j] = ti;
            logp[n * K + j] = tl;
        }
        rest[n] = (float)(1.0 - mass);
    }
}
#endif
