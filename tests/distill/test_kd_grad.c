/* Gradient checks for the distillation losses: every divergence, both teacher forms, several
 * temperatures, beta, alpha, with and without the cross-entropy term, and an ignored target.
 *
 * The numeric gradient is a central difference of the double reference (kd_ref.h) with
 * H = 1e-5: truncation ~H^2, rounding ~1e-16/H, both far below what we test. The analytic
 * gradient comes from the float implementation: its rounding is ~1e-7 of the largest entry,
 * more where |log p| is large (the floored rest bin at tau 0.5, |log p| ~ 40: ~1.5e-5 of the
 * largest entry, ~5e-5 of the entry itself). We accept |num - ana| <= 2e-6 max|grad| +
 * 1e-4 |num|; a 0.1% error in one divergence's gradient fails it. The float loss must match the
 * double reference within 1e-5 relative (+1e-7 absolute). */
#include "distill/losses.h"
#include "kd_ref.h"
#include "test.h"

#define H 1e-5

typedef struct {
    int N, V, K;
    size_t ts;
    float *zs, *zt, *logp, *rest;
    int32_t *ids, *targets;
} kd_data;

static kd_data make_data(int N, int V, int K, uint64_t seed) {
    dl_rng r;
    dl_rng_seed(&r, seed);
    kd_data d = {.N = N, .V = V, .K = K, .ts = (size_t)V + 3};
    d.zs = kd_randn(&r, (size_t)N * V, 2.0f);
    d.zt = kd_randn(&r, (size_t)N * d.ts, 2.0f);
    for (int n = 0; n < N; n++) // columns past V belong to a larger teacher vocabulary: unused
        for (size_t i = V; i < d.ts; i++) d.zt[n * d.ts + i] = 50.0f;
    d.ids = malloc(sizeof(int32_t) * N * K);
    d.logp = malloc(sizeof(float) * N * K);
    d.rest = malloc(sizeof(float) * N);
    kd_make_topk(d.zt, d.ts, N, V, K, &r, d.ids, d.logp, d.rest);
    d.rest[N - 1] = -1e-4f; // fp16 rounding in a cache: raised to the floor
    d.targets = malloc(sizeof(int32_t) * N);
    for (int n = 0; n < N; n++) d.targets[n] = (int32_t)dl_rng_below(&r, (uint64_t)V);
    d.targets[1] = -1; // ignored row
    return d;
}

static void free_data(kd_data *d) {
    free(d->zs);
    free(d->zt);
    free(d->ids);
    free(d->logp);
    free(d->rest);
    free(d->targets);
}

static ref_teacher teacher_of(const kd_data *d, int topk) {
    ref_teacher t = {0};
    if (topk) {
        t.ids = d->ids;
        t.logp = d->logp;
        t.rest = d->rest;
        t.K = d->K;
    } else {
        t.zt = d->zt;
        t.ts = d->ts;
    }
    return t;
}

static int run_c(const dl_kd_cfg *cfg, const kd_data *d, const ref_teacher *t, const float *zs, float *dz,
                 dl_kd_stats *st) {
    dl_error err;
    int rc = t->zt ? dl_kd_full(cfg, zs, t->zt, t->ts, d->targets, dz, d->N, d->V, 1.0f, st, &err)
                   : dl_kd_topk(cfg, zs, t->ids, t->logp, t->rest, t->K, d->targets, dz, d->N, d->V, 1.0f, st, &err);
    if (rc) fprintf(stderr, "kd call failed: %s\n", err.msg);
    return rc;
}

static double max_err_seen;

static void check_case(const dl_kd_cfg *cfg, const kd_data *d, int topk) {
    char what[160];
    snprintf(what, sizeof what, "%s %s V=%d tau=%g beta=%g alpha=%g w=%g", dl_kd_name(cfg->kind),
             topk ? "topk" : "full", d->V, (double)cfg->tau, (double)cfg->beta, (double)cfg->alpha,
             (double)cfg->ce_weight);
    ref_teacher t = teacher_of(d, topk);
    size_t NV = (size_t)d->N * d->V;
    float *dz = malloc(NV * sizeof(float));
    double *zd = malloc(NV * sizeof(double));
    dl_kd_stats st;
    CHECK(run_c(cfg, d, &t, d->zs, dz, &st) == 0);
    for (size_t i = 0; i < NV; i++) zd[i] = d->zs[i];
    double ref = ref_loss(cfg, zd, &t, d->targets, d->N, d->V);
    CHECK_MSG(fabs(st.loss - ref) <= 1e-7 + 1e-5 * fabs(ref), "%s: loss %.9g, reference %.9g", what,
              (double)st.loss, ref);
    CHECK_MSG(st.rows == d->N - 1, "%s: rows %d", what, st.rows);
    double gmax = 0;
    for (size_t i = 0; i < NV; i++) gmax = fmax(gmax, fabs(dz[i]));
    int bad = 0;
    for (size_t i = 0; i < NV; i++) {
        double saved = zd[i];
        zd[i] = saved + H;
        double lp = ref_loss(cfg, zd, &t, d->targets, d->N, d->V);
        zd[i] = saved - H;
        double lm = ref_loss(cfg, zd, &t, d->targets, d->N, d->V);
        zd[i] = saved;
        double num = (lp - lm) / (2 * H), e = fabs(num - dz[i]);
        if (gmax > 0) max_err_seen = fmax(max_err_seen, e / gmax);
        if (e > 2e-6 * gmax + 1e-4 * fabs(num)) {
            if (bad < 3) fprintf(stderr, "%s: dz[%zu] = %.8g, numeric %.8g\n", what, i, (double)dz[i], num);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu gradients disagree", what, bad, NV);
    free(dz);
    free(zd);
}

static void sweep(const kd_data *d, int full_sweep) {
    const float taus[] = {1.0f, 2.0f, 0.5f};
    const float betas[] = {0.0f, 0.3f, 0.9f, 1.0f};
    const float alphas[] = {0.0f, 0.1f, 0.6f};
    const float ws[] = {0.0f, 0.3f};
    int nt = full_sweep ? 3 : 2;
    for (int kind = DL_KD_FKL; kind <= DL_KD_TV; kind++)
        for (int it = 0; it < nt; it++)
            for (int iw = 0; iw < 2; iw++)
                for (int ip = 0; ip < 4; ip++) {
                    dl_kd_cfg cfg = {(dl_kd_kind)kind, 0.5f, 0.1f, taus[it], ws[iw]};
                    if (kind == DL_KD_JSD) cfg.beta = betas[ip];
                    else if ((kind == DL_KD_SKL || kind == DL_KD_SRKL) && ip < 3) cfg.alpha = alphas[ip];
                    else if (ip > 0) continue;
                    if (!full_sweep && ip % 2) continue;
                    check_case(&cfg, d, 0);
                    check_case(&cfg, d, 1);
                }
}

int main(void) {
    kd_data small = make_data(4, 11, 4, 7); // V under one vector of the exp kernel
    sweep(&small, 1);
    free_data(&small);
    kd_data mid = make_data(3, 53, 6, 8); // full vectors and a tail
    sweep(&mid, 0);
    free_data(&mid);
    printf("largest |numeric - analytic| / max|grad|: %.3g\n", max_err_seen);
    TEST_MAIN_END();
}
