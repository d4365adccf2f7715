/* Knowledge-distillation losses; definitions and conventions are in losses.h.
 *
 * One identity serves every divergence and both teacher forms. For a loss D(q) over bins
 * and q = softmax(u), dD/du_l = q_l (g_b(l) - sum_b q_b g_b), g = dD/dq, where b(l) is the
 * bin holding vocabulary entry l (entry l itself in the full form; an id or the rest bin in
 * the top-k form). So each divergence only gives, per bin, its loss term and
 * h_b = q_b g_b, which stays finite where q_b -> 0 (g alone does not, e.g. -p/q for fkl),
 * and G = sum_b h_b. For an entry of the rest bin q_l g_rest = (e_l / e_rest) h_rest, a ratio
 * of exps that never divides by a rounded-away probability. With u = z / tau and the tau^2
 * factor, dKD/dz = tau * dD/du. */
#include "distill/losses.h"
#include "ops/ops.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"fkl", "rkl", "jsd", "skl", "srkl", "tv"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

int dl_kd_parse(const char *name, dl_kd_kind *out, dl_error *err) {
    for (int i = 0; name && i < N_KINDS; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (dl_kd_kind)i;
            return 0;
        }
    return dl_fail(err, "unknown kd loss '%.64s' (expected fkl, rkl, jsd, skl, srkl or tv)", name ? name : "");
}

const char *dl_kd_name(dl_kd_kind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS ? kind_names[kind] : "?";
}

static int in_unit(float x) { return x >= 0.0f && x <= 1.0f; } // false for NaN

int dl_kd_check(const dl_kd_cfg *cfg, dl_error *err) {
    if ((int)cfg->kind < 0 || (int)cfg->kind >= N_KINDS)
        return dl_fail(err, "kd loss: unknown kind %d", (int)cfg->kind);
    if (!in_unit(cfg->beta)) return dl_fail(err, "kd beta = %g: must be in [0, 1]", (double)cfg->beta);
    if (!in_unit(cfg->alpha)) return dl_fail(err, "kd alpha = %g: must be in [0, 1]", (double)cfg->alpha);
    if (!(cfg->tau > 0.0f) || !isfinite(cfg->tau))
        return dl_fail(err, "kd temperature = %g: must be a finite number > 0", (double)cfg->tau);
    if (!in_unit(cfg->ce_weight)) return dl_fail(err, "kd ce_weight = %g: must be in [0, 1]", (double)cfg->ce_weight);
    return 0;
}

/* ---- divergences over bins ------------------------------------------------------------------ */

/* Log of a mixture; the clamp only matters when both parts underflowed. */
static inline float log_mix(float m) { return logf(fmaxf(m, FLT_MIN)); }

/* D(p, q) over n bins from probabilities and their logs (teacher p, lp; student q, lq).
 * Writes h[b] = q_b dD/dq_b (h may alias p) and *G = sum_b h_b. Sums in double, bin order. */
static double divergence(dl_kd_kind kind, float beta, float alpha, const float *p, const float *lp,
                         const float *q, const float *lq, float *h, int n, double *G) {
    double loss = 0.0, g = 0.0;
    switch (kind) {
    case DL_KD_FKL:
        for (int b = 0; b < n; b++) {
            float hb = -p[b];
            loss += p[b] * (lp[b] - lq[b]);
            h[b] = hb;
            g += hb;
        }
        break;
    case DL_KD_RKL: // dD/dq = log q - log p + 1
        for (int b = 0; b < n; b++) {
            float d = lq[b] - lp[b], hb = q[b] * (d + 1.0f);
            loss += q[b] * d;
            h[b] = hb;
            g += hb;
        }
        break;
    case DL_KD_JSD: // m = beta p + (1-beta) q; dD/dq = (1-beta)(log q - log m)
        for (int b = 0; b < n; b++) {
            float lm = log_mix(beta * p[b] + (1.0f - beta) * q[b]);
            float hb = (1.0f - beta) * q[b] * (lq[b] - lm);
            loss += beta * p[b] * (lp[b] - lm) + (1.0f - beta) * q[b] * (lq[b] - lm);
            h[b] = hb;
            g += hb;
        }
        break;
    case DL_KD_SKL: // m = alpha p + (1-alpha) q; dD/dq = -(1-alpha) p / m
        for (int b = 0; b < n; b++) {
            float m = alpha * p[b] + (1.0f - alpha) * q[b];
            float hb = -(1.0f - alpha) * p[b] * (q[b] / fmaxf(m, FLT_MIN));
            loss += p[b] * (lp[b] - log_mix(m));
            h[b] = hb;
            g += hb;
        }
        break;
    case DL_KD_SRKL: // m = alpha q + (1-alpha) p; dD/dq = log q - log m + 1 - alpha q / m
        for (int b = 0; b < n; b++) {
            float m = alpha * q[b] + (1.0f - alpha) * p[b];
            float d = lq[b] - log_mix(m);
            float hb = q[b] * (d + 1.0f - alpha * (q[b] / fmaxf(m, FLT_MIN)));
            loss += q[b] * d;
            h[b] = hb;
            g += hb;
        }
        break;
    case DL_KD_TV: // dD/dq = 0.5 sign(q - p), 0 at equality
        for (int b = 0; b < n; b++) {
            float d = q[b] - p[b], sign = copysignf((float)(d != 0.0f), d); // no branch: random signs
            float hb = 0.5f * sign * q[b];
            loss += 0.5f * fabsf(d);
            h[b] = hb;
            g += hb;
        }
        break;
    }
    *G = g;
    return loss;
}

/* ---- one row --------------------------------------------------------------------------------- */

typedef struct {
    const float *z_t; /* full form: rows of t_stride */
    size_t t_stride;
    const int32_t *ids; /* top-k form: (N,K), (N,K), (N) */
    const float *logp, *rest;
    int K;
} kd_teacher;

typedef struct {
    dl_kd_kind kind; /* jsd endpoints already resolved to fkl / rkl */
    float beta, alpha, inv_tau;
    int V;
    float c_kd, c_ce; /* gradient coefficients of one counted row */
} kd_ctx;

/* Per-thread scratch: V floats each, plus 5 (K+1) for the top-k bins. */
typedef struct {
    float *u, *e, *lp, *p, *s1, *bins;
} kd_work;

static int work_alloc(kd_work *w, int V, int K) {
    size_t nb = (size_t)K + 1;
    w->u = malloc(((size_t)5 * V + 5 * nb) * sizeof(float));
    if (!w->u) return -1;
    w->e = w->u + V;
    w->lp = w->e + V;
    w->p = w->lp + V;
    w->s1 = w->p + V;
    w->bins = w->s1 + V;
    return 0;
}

/* u = x / tau, e = exp(u - max u); returns sum e and sets *lse = log sum exp(u). */
static float exp_row(float *e, float *u, const float *x, int V, float inv_tau, float *lse) {
    float m = -INFINITY;
    for (int i = 0; i < V; i++) {
        u[i] = x[i] * inv_tau;
        m = u[i] > m ? u[i] : m;
    }
    float s = dl_exp_sum(e, u, V, m, 1.0f);
    *lse = m + logf(s);
    return s;
}

/* Temperature-1 softmax for the cross-entropy term, read before dz (which may alias x) is
 * written: s1 * inv is the softmax. Returns -log softmax(x)[target]. */
typedef struct { const float *s1; float inv; } soft1;
static double ce_row(soft1 *sm, float *buf, const float *x, int V, int target) {
    float lse;
    float s = exp_row(buf, buf, x, V, 1.0f, &lse); // u is not needed afterwards: share buf
    sm->s1 = buf;
    sm->inv = 1.0f / s;
    return (double)lse - x[target];
}

static void add_ce_grad(float *dz, const soft1 *sm, float c_ce, int V, int target) {
    float a = c_ce * sm->inv;
    for (int l = 0; l < V; l++) dz[l] += a * sm->s1[l];
    dz[target] -= c_ce;
}

// x (V) student logits, t (V) teacher logits; dz (V) or NULL
static double full_row(const kd_ctx *c, kd_work *w, const float *x, const float *t, int target, int need_ce,
                       float *dz, double *ce) {
    int V = c->V;
    float lse_s, lse_t;
    float *lq = w->u, *q = w->e, *lp = w->lp, *p = w->p;
    float s = exp_row(q, lq, x, V, c->inv_tau, &lse_s);
    float st = exp_row(p, lp, t, V, c->inv_tau, &lse_t);
    float inv_s = 1.0f / s, inv_t = 1.0f / st;
    for (int l = 0; l < V; l++) {
        q[l] *= inv_s;
        lq[l] -= lse_s;
        p[l] *= inv_t;
        lp[l] -= lse_t;
    }
    soft1 sm = {q, 1.0f};
    if (need_ce) {
        if (c->inv_tau == 1.0f) *ce = -(double)lq[target];
        else *ce = ce_row(&sm, w->s1, x, V, target);
    }
    double G;
    float *h = p;
    double D = divergence(c->kind, c->beta, c->alpha, p, lp, q, lq, h, V, &G);
    if (dz) {
        float a = c->c_kd, g = (float)G;
        for (int l = 0; l < V; l++) dz[l] = a * (h[l] - q[l] * g);
        if (need_ce) add_ce_grad(dz, &sm, c->c_ce, V, target);
    }
    return D;
}

/* Teacher bins of the top-k form (see losses.h): softmax over K (+ 1) logits, logp_k / tau for
 * the ids and, for the rest bin, the log of its mass if it were spread evenly over the V - K
 * other ids and softened: log((V - K) (rest / (V - K))^(1 / tau)). Without a rest bin (K == V)
 * this is softmax(logp / tau), exactly the full form. bp, blp: K (+ 1) floats. */
static void teacher_bins(const float *logp, float rest, int K, int V, float inv_tau, float *bp, float *blp) {
    int nb = K < V ? K + 1 : K;
    float m = -INFINITY;
    for (int b = 0; b < nb; b++) {
        if (b < K) blp[b] = logp[b] * inv_tau;
        else blp[b] = logf(fmaxf(rest, DL_KD_REST_MIN)) * inv_tau + (1.0f - inv_tau) * logf((float)(V - K));
        m = blp[b] > m ? blp[b] : m;
    }
    double st = 0.0;
    for (int b = 0; b < nb; b++) st += exp((double)(blp[b] - m));
    float lse = m + (float)log(st);
    for (int b = 0; b < nb; b++) {
        blp[b] -= lse;
        bp[b] = expf(blp[b]);
    }
}

// x (V) student logits; ids, logp (K); dz (V) or NULL
static double topk_row(const kd_ctx *c, kd_work *w, const float *x, const int32_t *ids, const float *logp,
                       float rest, int K, int target, int need_ce, float *dz, double *ce) {
    int V = c->V, nb = K < V ? K + 1 : K; // no rest bin when the ids cover the vocabulary
    float *u = w->u, *e = w->e;
    float *bp = w->bins, *blp = bp + K + 1, *bq = blp + K + 1, *blq = bq + K + 1, *saved = blq + K + 1;
    float lse;
    float s = exp_row(e, u, x, V, c->inv_tau, &lse);
    // student bins; the rest bin's mass is summed over the other entries, not 1 - sum q_k,
    // which would cancel to nothing when the ids hold almost all the mass
    for (int k = 0; k < K; k++) {
        int i = ids[k];
        bq[k] = e[i] / s;
        blq[k] = u[i] - lse;
        saved[k] = e[i];
        e[i] = 0.0f;
    }
    double e_rest = 0.0;
    if (nb > K)
        for (int l = 0; l < V; l++) e_rest += e[l];
    for (int k = 0; k < K; k++) e[ids[k]] = saved[k];
    if (nb > K) {
        e_rest = fmax(e_rest, (double)FLT_MIN); // dl_exp_sum never gives 0; stay finite if it did
        bq[K] = (float)(e_rest / s);
        blq[K] = (float)(log(e_rest) - log((double)s));
    }
    teacher_bins(logp, rest, K, V, c->inv_tau, bp, blp);
    soft1 sm = {e, 1.0f / s};
    if (need_ce) {
        if (c->inv_tau == 1.0f) *ce = (double)lse - x[target];
        else *ce = ce_row(&sm, w->s1, x, V, target);
    }
    double G;
    float *h = bp;
    double D = divergence(c->kind, c->beta, c->alpha, bp, blp, bq, blq, h, nb, &G);
    if (dz) {
        float a = c->c_kd;
        if (nb > K) { // every entry as if in the rest bin, then the ids overwritten
            float r = (float)(a * ((double)h[K] / e_rest - G / s));
            for (int l = 0; l < V; l++) dz[l] = r * e[l];
        }
        for (int k = 0; k < K; k++) dz[ids[k]] = a * (h[k] - bq[k] * (float)G);
        if (need_ce) add_ce_grad(dz, &sm, c->c_ce, V, target);
    }
    return D;
}

/* ---- driver ---------------------------------------------------------------------------------- */

static int row_counted(const int32_t *targets, int n, int V) {
    return !targets || (targets[n] >= 0 && targets[n] < V);
}

/* Ids in range and distinct, finite logp and rest, for the rows that will be read. */
static int check_topk(const kd_teacher *t, const int32_t *targets, int N, int V, dl_error *err) {
    unsigned char *seen = calloc((size_t)V, 1);
    if (!seen) return dl_fail(err, "kd loss: out of memory");
    int rc = 0, K = t->K;
    for (int n = 0; n < N && !rc; n++) {
        if (!row_counted(targets, n, V)) continue;
        const int32_t *ids = t->ids + (size_t)n * K;
        const float *logp = t->logp + (size_t)n * K;
        int k = 0;
        for (; k < K && !rc; k++) {
            if (ids[k] < 0 || ids[k] >= V)
                rc = dl_fail(err, "top-k teacher, row %d slot %d: id %d outside the student vocabulary [0, %d)", n,
                             k, (int)ids[k], V);
            else if (seen[ids[k]])
                rc = dl_fail(err, "top-k teacher, row %d: id %d appears twice", n, (int)ids[k]);
            else if (!isfinite(logp[k]))
                rc = dl_fail(err, "top-k teacher, row %d slot %d: log-probability %g is not finite", n, k,
                             (double)logp[k]);
            else
                seen[ids[k]] = 1;
        }
        for (int j = 0; j < k; j++)
            if (ids[j] >= 0 && ids[j] < V) seen[ids[j]] = 0;
        if (!rc && !isfinite(t->rest[n]))
            rc = dl_fail(err, "top-k teacher, row %d: rest mass %g is not finite", n, (double)t->rest[n]);
    }
    free(seen);
    return rc;
}

static int check_args(const dl_kd_cfg *cfg, const float *z_s, const int32_t *targets, int N, int V,
                      dl_error *err) {
    if (!cfg) return dl_fail(err, "kd loss: no configuration");
    if (dl_kd_check(cfg, err)) return -1;
    if (N < 0 || V < 1) return dl_fail(err, "kd loss: bad shape N = %d, V = %d", N, V);
    if (N > 0 && !z_s) return dl_fail(err, "kd loss: no student logits");
    if (!targets && cfg->ce_weight > 0.0f)
        return dl_fail(err, "kd loss: ce_weight = %g needs targets", (double)cfg->ce_weight);
    return 0;
}

static int kd_run(const dl_kd_cfg *cfg, const kd_teacher *t, const float *z_s, const int32_t *targets,
                  float *dz, int N, int V, float scale, dl_kd_stats *out, dl_error *err) {
    if (out) memset(out, 0, sizeof *out);
    int count = 0;
    for (int n = 0; n < N; n++) count += row_counted(targets, n, V);
    if (N == 0) return 0;
    double *row_d = calloc((size_t)2 * N, sizeof(double)), *row_ce = row_d + N;
    if (!row_d) return dl_fail(err, "kd loss: out of memory for %d rows", N);

    float w = cfg->ce_weight, tau = cfg->tau;
    kd_ctx c = {cfg->kind, cfg->beta, cfg->alpha, 1.0f / tau, V, 0.0f, 0.0f};
    if (c.kind == DL_KD_JSD && cfg->beta == 0.0f) c.kind = DL_KD_FKL;
    if (c.kind == DL_KD_JSD && cfg->beta == 1.0f) c.kind = DL_KD_RKL;
    if (count > 0) {
        c.c_kd = scale * (1.0f - w) * tau / (float)count; // tau^2 * d/dz of D(u = z / tau)
        c.c_ce = scale * w / (float)count;
    }
    int need_ce = w > 0.0f, failed = 0;
    // threads only pay off past a few rows of a real vocabulary
#pragma omp parallel reduction(| : failed) if ((size_t)N * V >= 65536)
    {
        kd_work wk = {0};
        if (work_alloc(&wk, V, t->z_t ? 0 : t->K)) failed = 1;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            float *d = dz ? dz + (size_t)n * V : NULL;
            if (!row_counted(targets, n, V)) {
                if (d) memset(d, 0, (size_t)V * sizeof(float));
                continue;
            }
            if (!wk.u) continue;
            const float *x = z_s + (size_t)n * V;
            int target = targets ? targets[n] : -1;
            if (t->z_t)
                row_d[n] = full_row(&c, &wk, x, t->z_t + (size_t)n * t->t_stride, target, need_ce, d, &row_ce[n]);
            else
                row_d[n] = topk_row(&c, &wk, x, t->ids + (size_t)n * t->K, t->logp + (size_t)n * t->K, t->rest[n],
                                    t->K, target, need_ce, d, &row_ce[n]);
        }
        free(wk.u);
    }
    if (failed) {
        free(row_d);
        return dl_fail(err, "kd loss: out of memory for scratch of V = %d", V);
    }
    double sd = 0.0, sce = 0.0;
    for (int n = 0; n < N; n++) { // in row order: the same sum for any thread count
        sd += row_d[n];
        sce += row_ce[n];
    }
    free(row_d);
    if (out && count > 0) {
        out->kd = (float)((double)tau * tau * sd / count);
        out->ce = (float)(sce / count);
        out->loss = (1.0f - w) * out->kd + w * out->ce;
        out->rows = count;
    }
    return 0;
}

int dl_kd_full(const dl_kd_cfg *cfg, const float *z_s, const float *z_t, size_t t_stride,
               const int32_t *targets, float *dz, int N, int V, float scale, dl_kd_stats *out,
               dl_error *err) {
    if (check_args(cfg, z_s, targets, N, V, err)) return -1;
    if (N > 0 && !z_t) return dl_fail(err, "kd loss: no teacher logits");
    if (t_stride < (size_t)V)
        return dl_fail(err, "kd loss: teacher row stride %zu is shorter than the vocabulary %d", t_stride, V);
    kd_teacher t = {.z_t = z_t, .t_stride = t_stride};
    return kd_run(cfg, &t, z_s, targets, dz, N, V, scale, out, err);
}

int dl_kd_topk(const dl_kd_cfg *cfg, const float *z_s, const int32_t *ids, const float *logp,
               const float *rest, int K, const int32_t *targets, float *dz, int N, int V, float scale,
               dl_kd_stats *out, dl_error *err) {
    if (check_args(cfg, z_s, targets, N, V, err)) return -1;
    if (K < 1 || K > V) return dl_fail(err, "top-k teacher: K = %d must be in [1, V = %d]", K, V);
    if (N > 0 && (!ids || !logp || !rest)) return dl_fail(err, "top-k teacher: ids, logp and rest are required");
    kd_teacher t = {.ids = ids, .logp = logp, .rest = rest, .K = K};
    if (check_topk(&t, targets, N, V, err)) return -1;
    return kd_run(cfg, &t, z_s, targets, dz, N, V, scale, out, err);
}
