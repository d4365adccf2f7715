/* Known values and identities of the distillation losses, masking, aliasing, thread count,
 * and every argument the API must refuse. */
#include "distill/losses.h"
#include "kd_ref.h"
#include "ops/ops.h"
#include "test.h"
#include <omp.h>

static dl_rng rng;
static const char *kinds[] = {"fkl", "rkl", "jsd", "skl", "srkl", "tv"};

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static float max_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static float full(dl_kd_cfg cfg, const float *zs, const float *zt, const int32_t *tg, float *dz, int N, int V) {
    dl_kd_stats st;
    dl_error err;
    int rc = dl_kd_full(&cfg, zs, zt, (size_t)V, tg, dz, N, V, 1.0f, &st, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc ? NAN : st.loss;
}

static float topk(dl_kd_cfg cfg, const float *zs, const int32_t *ids, const float *logp, const float *rest, int K,
                  const int32_t *tg, float *dz, int N, int V) {
    dl_kd_stats st;
    dl_error err;
    int rc = dl_kd_topk(&cfg, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, &st, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc ? NAN : st.loss;
}

static void test_names(void) {
    for (int i = 0; i < 6; i++) {
        dl_kd_kind k = DL_KD_TV;
        CHECK(dl_kd_parse(kinds[i], &k, NULL) == 0 && (int)k == i);
        CHECK(strcmp(dl_kd_name(k), kinds[i]) == 0);
    }
    dl_error err;
    dl_kd_kind k;
    CHECK(dl_kd_parse("kl", &k, &err) == -1 && strstr(err.msg, "'kl'") && strstr(err.msg, "srkl"));
    CHECK(dl_kd_parse(NULL, &k, &err) == -1);
    CHECK(strcmp(dl_kd_name((dl_kd_kind)42), "?") == 0);
}

static void test_check(void) {
    dl_error err;
    dl_kd_cfg ok = {DL_KD_JSD, 0.5f, 0.1f, 2.0f, 0.5f};
    CHECK(dl_kd_check(&ok, &err) == 0);
    dl_kd_cfg edges = {DL_KD_SKL, 1.0f, 0.0f, 1e-3f, 1.0f};
    CHECK(dl_kd_check(&edges, &err) == 0);
    dl_kd_cfg bad[] = {
        {(dl_kd_kind)6, 0.5f, 0.1f, 1.0f, 0.0f}, {(dl_kd_kind)-1, 0.5f, 0.1f, 1.0f, 0.0f},
        {DL_KD_JSD, -0.1f, 0.1f, 1.0f, 0.0f},    {DL_KD_JSD, 1.5f, 0.1f, 1.0f, 0.0f},
        {DL_KD_JSD, NAN, 0.1f, 1.0f, 0.0f},      {DL_KD_SKL, 0.5f, 1.01f, 1.0f, 0.0f},
        {DL_KD_SKL, 0.5f, NAN, 1.0f, 0.0f},      {DL_KD_FKL, 0.5f, 0.1f, 0.0f, 0.0f},
        {DL_KD_FKL, 0.5f, 0.1f, -1.0f, 0.0f},    {DL_KD_FKL, 0.5f, 0.1f, NAN, 0.0f},
        {DL_KD_FKL, 0.5f, 0.1f, INFINITY, 0.0f}, {DL_KD_FKL, 0.5f, 0.1f, 1.0f, -0.1f},
        {DL_KD_FKL, 0.5f, 0.1f, 1.0f, 1.5f},     {DL_KD_FKL, 0.5f, 0.1f, 1.0f, NAN},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        CHECK_MSG(dl_kd_check(&bad[i], &err) == -1 && err.msg[0], "bad config %zu accepted", i);
    }
    CHECK(dl_kd_check(&bad[2], &err) == -1 && strstr(err.msg, "beta"));
    CHECK(dl_kd_check(&bad[7], &err) == -1 && strstr(err.msg, "temperature"));
}

/* Same distribution on both sides: every divergence is 0 and so is its gradient. */
static void test_self(void) {
    enum { N = 3, V = 40 };
    float *z = kd_randn(&rng, N * V, 3.0f), dz[N * V];
    for (int kind = 0; kind < 6; kind++)
        for (int it = 0; it < 2; it++) {
            dl_kd_cfg cfg = {(dl_kd_kind)kind, 0.4f, 0.2f, it ? 2.5f : 1.0f, 0.0f};
            float l = full(cfg, z, z, NULL, dz, N, V);
            CHECK_MSG(fabsf(l) <= 1e-6f && max_abs(dz, N * V) <= 1e-6f, "%s: loss %g, max|dz| %g", kinds[kind],
                      (double)l, (double)max_abs(dz, N * V));
        }
    free(z);
}

/* Student sure of one class, teacher of another: TV = 1, both forms. */
static void test_tv_disjoint(void) {
    enum { V = 20 };
    float zs[V] = {0}, zt[V] = {0}, dz[V];
    zs[2] = 120.0f;
    zt[5] = 120.0f;
    dl_kd_cfg cfg = {DL_KD_TV, 0, 0, 1.0f, 0};
    CHECK_CLOSE(full(cfg, zs, zt, NULL, dz, 1, V), 1.0, 1e-6, 0);
    int32_t id = 5;
    float lp = 0.0f, rest = 0.0f;
    CHECK_CLOSE(topk(cfg, zs, &id, &lp, &rest, 1, NULL, dz, 1, V), 1.0, 1e-6, 0);
    id = 2; // the student's class as the teacher's only id, with all other mass in rest
    rest = 1.0f;
    lp = -30.0f;
    CHECK_CLOSE(topk(cfg, zs, &id, &lp, &rest, 1, NULL, dz, 1, V), 1.0, 1e-6, 0);
    cfg.tau = 3.0f; // tau^2 factor on a distance that stays 1
    CHECK_CLOSE(full(cfg, zs, zt, NULL, dz, 1, V), 9.0, 1e-4, 0);
}

typedef struct {
    int N, V, K;
    float *zs, *zt, *logp, *rest;
    int32_t *ids, *tg;
} data;

static data make(int N, int V, int K, float scale) {
    data d = {.N = N, .V = V, .K = K};
    d.zs = kd_randn(&rng, (size_t)N * V, scale);
    d.zt = kd_randn(&rng, (size_t)N * V, scale);
    d.logp = malloc(sizeof(float) * N * K);
    d.rest = malloc(sizeof(float) * N);
    d.ids = malloc(sizeof(int32_t) * N * K);
    d.tg = malloc(sizeof(int32_t) * N);
    kd_make_topk(d.zt, (size_t)V, N, V, K, &rng, d.ids, d.logp, d.rest);
    for (int n = 0; n < N; n++) d.tg[n] = (int32_t)dl_rng_below(&rng, (uint64_t)V);
    if (N > 2) d.tg[2] = -1;
    return d;
}

static void drop(data *d) {
    free(d->zs);
    free(d->zt);
    free(d->logp);
    free(d->rest);
    free(d->ids);
    free(d->tg);
}

/* Runs cfg in one form (topk != 0) on d; dz may be NULL. */
static float run(dl_kd_cfg cfg, const data *d, int tk, float *dz) {
    return tk ? topk(cfg, d->zs, d->ids, d->logp, d->rest, d->K, d->tg, dz, d->N, d->V)
              : full(cfg, d->zs, d->zt, d->tg, dz, d->N, d->V);
}

/* jsd's endpoints are exactly fkl and rkl; skl / srkl at alpha 0 are fkl / rkl. */
static void test_equivalences(void) {
    data d = make(5, 37, 5, 2.0f);
    size_t NV = (size_t)d.N * d.V;
    float *a = malloc(NV * sizeof(float)), *b = malloc(NV * sizeof(float));
    for (int tk = 0; tk < 2; tk++)
        for (int it = 0; it < 2; it++) {
            float tau = it ? 2.0f : 1.0f;
            dl_kd_cfg fkl = {DL_KD_FKL, 0, 0, tau, 0.2f}, rkl = {DL_KD_RKL, 0, 0, tau, 0.2f};
            dl_kd_cfg jsd0 = {DL_KD_JSD, 0, 0, tau, 0.2f}, jsd1 = {DL_KD_JSD, 1, 0, tau, 0.2f};
            dl_kd_cfg skl0 = {DL_KD_SKL, 0.5f, 0, tau, 0.2f}, srkl0 = {DL_KD_SRKL, 0.5f, 0, tau, 0.2f};
            float lf = run(fkl, &d, tk, a), lj = run(jsd0, &d, tk, b);
            CHECK(lf == lj && max_diff(a, b, NV) == 0.0f);
            float ls = run(skl0, &d, tk, b);
            CHECK_CLOSE(ls, lf, 1e-7, 1e-6);
            CHECK(max_diff(a, b, NV) <= 1e-6f * max_abs(a, NV));
            float lr = run(rkl, &d, tk, a);
            lj = run(jsd1, &d, tk, b);
            CHECK(lr == lj && max_diff(a, b, NV) == 0.0f);
            ls = run(srkl0, &d, tk, b);
            CHECK_CLOSE(ls, lr, 1e-7, 1e-6);
            CHECK(max_diff(a, b, NV) <= 1e-6f * max_abs(a, NV));

        }
    free(a);
    free(b);
    drop(&d);
}

/* Near its endpoints jsd(beta) ~ beta fkl and ~ (1 - beta) rkl: this pins which side of the
 * mixture beta weighs. jsd(b) / b = fkl - O(b chi^2(p||q)) holds while b p / q << 1, so the
 * side that divides is kept flat (logit scale 0.3) and the other peaked (2.5), which also keeps
 * fkl and rkl far apart; Richardson's 2 f(b) - f(2b) removes the first-order term. */
static double jsd_limit(const data *d, int tk, float tau, float b0, float b1) {
    dl_kd_cfg j = {DL_KD_JSD, b0, 0, tau, 0};
    double f1 = run(j, d, tk, NULL) / fabsf(b0 - (b0 > 0.5f));
    j.beta = b1;
    double f2 = run(j, d, tk, NULL) / fabsf(b1 - (b1 > 0.5f));
    return 2 * f1 - f2;
}

static void test_jsd_limits(void) {
    enum { N = 5, V = 37, K = 6 };
    for (int side = 0; side < 2; side++) {
        data d = make(N, V, K, 1.0f);
        float ss = side ? 2.5f : 0.3f, st = side ? 0.3f : 2.5f; // side 0: flat student; 1: flat teacher
        for (int i = 0; i < N * V; i++) {
            d.zs[i] *= ss;
            d.zt[i] *= st;
        }
        kd_make_topk(d.zt, V, N, V, K, &rng, d.ids, d.logp, d.rest);
        for (int tk = 0; tk < 2; tk++)
            for (int it = 0; it < 2; it++) {
                float tau = it ? 1.5f : 1.0f;
                dl_kd_cfg fkl = {DL_KD_FKL, 0, 0, tau, 0}, rkl = {DL_KD_RKL, 0, 0, tau, 0};
                double lf = run(fkl, &d, tk, NULL), lr = run(rkl, &d, tk, NULL);
                CHECK_MSG(fabs(lf - lr) > 0.03 * fmax(lf, lr), // six times the tolerance below
                           "side %d %s tau %g: fkl %g rkl %g", side, tk ? "topk" : "full", (double)tau, lf, lr);
                if (side == 0) CHECK_CLOSE(jsd_limit(&d, tk, tau, 1e-3f, 2e-3f), lf, 0, 0.005);
                else CHECK_CLOSE(jsd_limit(&d, tk, tau, 1 - 1e-3f, 1 - 2e-3f), lr, 0, 0.005);
            }
        drop(&d);
    }
}

/* jsd(0.5) is symmetric in teacher and student. */
static void test_jsd_symmetric(void) {
    data d = make(4, 29, 3, 2.0f);
    dl_kd_cfg c = {DL_KD_JSD, 0.5f, 0, 1.5f, 0};
    float l1 = full(c, d.zs, d.zt, NULL, NULL, d.N, d.V), l2 = full(c, d.zt, d.zs, NULL, NULL, d.N, d.V);
    CHECK_CLOSE(l1, l2, 1e-7, 1e-5);
    CHECK(l1 > 0.01f);
    drop(&d);
}

/* tau^2 D(softmax(z_t / tau), softmax(z_s / tau)) equals tau^2 times the tau = 1 loss of z / tau. */
static void test_temperature(void) {
    data d = make(3, 31, 4, 3.0f);
    size_t NV = (size_t)d.N * d.V;
    float *zs2 = malloc(NV * sizeof(float)), *zt2 = malloc(NV * sizeof(float));
    for (size_t i = 0; i < NV; i++) {
        zs2[i] = d.zs[i] / 2.0f;
        zt2[i] = d.zt[i] / 2.0f;
    }
    for (int kind = 0; kind < 6; kind++) {
        dl_kd_cfg c2 = {(dl_kd_kind)kind, 0.3f, 0.1f, 2.0f, 0}, c1 = c2;
        c1.tau = 1.0f;
        CHECK_CLOSE(full(c2, d.zs, d.zt, NULL, NULL, d.N, d.V), 4.0 * full(c1, zs2, zt2, NULL, NULL, d.N, d.V), 1e-6,
                    1e-5);
    }
    free(zs2);
    free(zt2);
    drop(&d);
}

/* Top-k with K = V (a shuffled permutation) and rest 0 is the full form. */
static void test_topk_is_full(void) {
    enum { N = 4, V = 23 };
    data d = make(N, V, V, 2.0f);
    for (int n = 0; n < N; n++) d.rest[n] = 0.0f;
    float *a = malloc(sizeof(float) * N * V), *b = malloc(sizeof(float) * N * V);
    for (int kind = 0; kind < 6; kind++)
        for (int it = 0; it < 2; it++) {
            dl_kd_cfg c = {(dl_kd_kind)kind, 0.3f, 0.2f, it ? 0.7f : 1.0f, 0.25f};
            float lf = run(c, &d, 0, a), lt = run(c, &d, 1, b);
            CHECK_MSG(fabsf(lf - lt) <= 1e-5f * fabsf(lf) + 1e-7f, "%s tau %g: full %.8g topk %.8g", kinds[kind],
                      (double)c.tau, (double)lf, (double)lt);
            CHECK_MSG(max_diff(a, b, N * V) <= 1e-5f * max_abs(a, N * V), "%s: gradients differ by %g", kinds[kind],
                      (double)max_diff(a, b, N * V));
        }
    free(a);
    free(b);
    drop(&d);
}

/* The top-k temperature rule is exact when the tail is uniform: a teacher (.5, .3, .05 x 4) as
 * full logits and as top-2 {0, 1} + rest .2, a student whose tail ids share one logit (so both
 * forms see the same tail shape): same loss and gradient at tau 2 and 0.5, every divergence.
 * Then by hand at tau 2: the rest bin is 4 sqrt(.05) / (sqrt(.5) + sqrt(.3) + 4 sqrt(.05)) = .4162
 * (the earlier rule, rest as one logit, gave .2628), and a student softened to exactly those
 * bins has loss and gradient 0. */
static void test_topk_uniform_tail(void) {
    enum { V = 6, K = 2 };
    const float pt[V] = {0.5f, 0.3f, 0.05f, 0.05f, 0.05f, 0.05f};
    float zt[V], zs[V] = {1.3f, -0.4f, 0.7f, 0.7f, 0.7f, 0.7f}, logp[K], rest = 0.2f, a[V], b[V];
    int32_t ids[K] = {1, 0};
    for (int i = 0; i < V; i++) zt[i] = logf(pt[i]);
    logp[0] = zt[1], logp[1] = zt[0];
    for (int kind = 0; kind < 6; kind++)
        for (int it = 0; it < 2; it++) {
            dl_kd_cfg c = {(dl_kd_kind)kind, 0.3f, 0.2f, it ? 0.5f : 2.0f, 0};
            float lf = full(c, zs, zt, NULL, a, 1, V), lt = topk(c, zs, ids, logp, &rest, K, NULL, b, 1, V);
            CHECK_MSG(fabsf(lf - lt) <= 1e-5f * fabsf(lf) + 1e-7f && lf > 1e-3f, "%s tau %g: full %.8g topk %.8g",
                      kinds[kind], (double)c.tau, (double)lf, (double)lt);
            CHECK_MSG(max_diff(a, b, V) <= 1e-5f * max_abs(a, V), "%s tau %g: gradients differ by %g", kinds[kind],
                      (double)c.tau, (double)max_diff(a, b, V));
        }
    /* the teacher's softened bins at tau 2, by hand: .70711, .54772 and 4 x .22361, over 2.14926 */
    const double soft[V] = {0.329002, 0.254843, 0.104039, 0.104039, 0.104039, 0.104039};
    for (int i = 0; i < V; i++) zs[i] = (float)(2.0 * log(soft[i])); // softmax(zs / 2) = soft
    dl_kd_cfg f = {DL_KD_FKL, 0, 0, 2.0f, 0};
    CHECK_CLOSE(topk(f, zs, ids, logp, &rest, K, NULL, a, 1, V), 0.0, 2e-5, 0);
    CHECK(max_abs(a, V) <= 2e-5f);
}

/* ce_weight 1 is the model's cross-entropy (ops), mean over counted rows. */
static void test_ce_only(void) {
    enum { N = 6, V = 50 };
    data d = make(N, V, 4, 2.0f);
    float losses[N], lse[N], dz[N * V], ref[N * V];
    int count = dl_crossentropy_forward(losses, lse, d.zs, d.tg, N, V);
    double mean = 0;
    for (int n = 0; n < N; n++) mean += losses[n];
    mean /= count;
    dl_crossentropy_backward(ref, d.zs, lse, d.tg, N, V, 1.0f / count);
    for (int tk = 0; tk < 2; tk++)
        for (int it = 0; it < 2; it++) {
            dl_kd_cfg c = {DL_KD_RKL, 0, 0, it ? 3.0f : 1.0f, 1.0f};
            CHECK_CLOSE(run(c, &d, tk, dz), mean, 1e-6, 1e-6);
            CHECK(max_diff(dz, ref, N * V) <= 1e-6f);
        }
    drop(&d);
}

/* Ignored rows: zero gradient, not counted; no targets: every row counts. Rows sum to 0. */
static void test_masking(void) {
    enum { N = 5, V = 30 };
    data d = make(N, V, 6, 2.0f);
    d.tg[0] = -7;
    d.tg[4] = V; // out of range counts as ignored too
    float dz[N * V];
    for (int tk = 0; tk < 2; tk++) {
        dl_kd_cfg c = {DL_KD_JSD, 0.5f, 0, 2.0f, 0.0f};
        dl_kd_stats st;
        dl_error err;
        int rc = tk ? dl_kd_topk(&c, d.zs, d.ids, d.logp, d.rest, d.K, d.tg, dz, N, V, 1.0f, &st, &err)
                    : dl_kd_full(&c, d.zs, d.zt, V, d.tg, dz, N, V, 1.0f, &st, &err);
        CHECK(rc == 0 && st.rows == 2 && st.ce == 0.0f);
        CHECK(max_abs(dz, V) == 0.0f && max_abs(dz + 2 * V, V) == 0.0f && max_abs(dz + 4 * V, V) == 0.0f);
        CHECK(max_abs(dz + V, V) > 0.0f && max_abs(dz + 3 * V, V) > 0.0f);
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int i = 0; i < V; i++) s += dz[n * V + i];
            CHECK_MSG(fabs(s) <= 1e-7, "row %d of the gradient sums to %g", n, s);
        }
        // the mean over the two counted rows is the mean of each alone
        float l1 = tk ? topk(c, d.zs + V, d.ids + d.K, d.logp + d.K, d.rest + 1, d.K, NULL, NULL, 1, V)
                      : full(c, d.zs + V, d.zt + V, NULL, NULL, 1, V);
        float l3 = tk ? topk(c, d.zs + 3 * V, d.ids + 3 * d.K, d.logp + 3 * d.K, d.rest + 3, d.K, NULL, NULL, 1, V)
                      : full(c, d.zs + 3 * V, d.zt + 3 * V, NULL, NULL, 1, V);
        CHECK_CLOSE(st.loss, 0.5 * (l1 + l3), 1e-7, 1e-6);
        c.ce_weight = 0.5f; // without targets there is no cross-entropy to weigh
        CHECK(dl_kd_full(&c, d.zs, d.zt, V, NULL, dz, N, V, 1.0f, &st, &err) == -1 && strstr(err.msg, "targets"));
        c.ce_weight = 0.0f;
        rc = tk ? dl_kd_topk(&c, d.zs, d.ids, d.logp, d.rest, d.K, NULL, dz, N, V, 1.0f, &st, &err)
                : dl_kd_full(&c, d.zs, d.zt, V, NULL, dz, N, V, 1.0f, &st, &err);
        CHECK(rc == 0 && st.rows == N);
    }
    // nothing counted: loss 0 and a zero gradient
    int32_t none[N] = {-1, -1, -1, -1, -1};
    dl_kd_cfg c = {DL_KD_FKL, 0, 0, 1.0f, 0.5f};
    for (int i = 0; i < N * V; i++) dz[i] = 1.0f;
    dl_kd_stats st;
    CHECK(dl_kd_full(&c, d.zs, d.zt, V, none, dz, N, V, 1.0f, &st, NULL) == 0 && st.rows == 0 && st.loss == 0.0f);
    CHECK(max_abs(dz, N * V) == 0.0f);
    CHECK(dl_kd_full(&c, NULL, NULL, V, NULL, NULL, 0, V, 1.0f, &st, NULL) == -1); // w > 0 without targets
    c.ce_weight = 0;
    CHECK(dl_kd_full(&c, NULL, NULL, V, NULL, NULL, 0, V, 1.0f, &st, NULL) == 0 && st.rows == 0);
    drop(&d);
}

/* dz may alias z_s; dz NULL gives the same loss; scale multiplies the gradient; the thread
 * count changes nothing (bitwise). */
static void test_alias_scale_threads(void) {
    enum { N = 61, V = 1100 }; // above the size where the loss goes parallel
    data d = make(N, V, 12, 3.0f);
    size_t NV = (size_t)N * V;
    float *a = malloc(NV * sizeof(float)), *b = malloc(NV * sizeof(float));
    int threads = omp_get_max_threads();
    for (int kind = 0; kind < 6; kind++)
        for (int tk = 0; tk < 2; tk++) {
            dl_kd_cfg c = {(dl_kd_kind)kind, 0.4f, 0.2f, 1.7f, 0.3f};
            float la = run(c, &d, tk, a);
            memcpy(b, d.zs, NV * sizeof(float));
            float lb = tk ? topk(c, b, d.ids, d.logp, d.rest, d.K, d.tg, b, N, V)
                          : full(c, b, d.zt, d.tg, b, N, V);
            CHECK_MSG(la == lb && memcmp(a, b, NV * sizeof(float)) == 0, "%s %s: aliasing changes the result",
                      kinds[kind], tk ? "topk" : "full");
            CHECK(run(c, &d, tk, NULL) == la);
            dl_kd_stats st;
            int rc = tk ? dl_kd_topk(&c, d.zs, d.ids, d.logp, d.rest, d.K, d.tg, b, N, V, 3.0f, &st, NULL)
                        : dl_kd_full(&c, d.zs, d.zt, V, d.tg, b, N, V, 3.0f, &st, NULL);
            float worst = 0;
            for (size_t i = 0; i < NV; i++) worst = fmaxf(worst, fabsf(b[i] - 3.0f * a[i]));
            CHECK(rc == 0 && st.loss == la && worst <= 1e-6f * max_abs(a, NV));
            omp_set_num_threads(1);
            lb = run(c, &d, tk, b);
            omp_set_num_threads(threads > 1 ? threads : 2);
            float lc = run(c, &d, tk, a);
            CHECK_MSG(la == lb && lb == lc && memcmp(a, b, NV * sizeof(float)) == 0,
                      "%s %s: results depend on the thread count", kinds[kind], tk ? "topk" : "full");
            omp_set_num_threads(threads);
        }
    free(a);
    free(b);
    drop(&d);
}

/* Logits far apart (confident, nearly disjoint distributions), rest 0 and a tiny K: every
 * loss and gradient stays finite. */
static void test_extremes(void) {
    enum { N = 4, V = 64 };
    data d = make(N, V, 2, 40.0f);
    for (int n = 0; n < N; n++) d.rest[n] = 0.0f;
    float dz[N * V];
    for (int kind = 0; kind < 6; kind++)
        for (int tk = 0; tk < 2; tk++)
            for (int it = 0; it < 2; it++) {
                dl_kd_cfg c = {(dl_kd_kind)kind, 0.5f, 0.1f, it ? 0.25f : 1.0f, 0.1f};
                float l = run(c, &d, tk, dz);
                int finite = isfinite(l);
                for (int i = 0; i < N * V; i++) finite &= isfinite(dz[i]);
                CHECK_MSG(finite && l >= -1e-6f, "%s %s tau %g: loss %g", kinds[kind], tk ? "topk" : "full",
                          (double)c.tau, (double)l);
            }
    drop(&d);
}

static void test_bad_topk(void) {
    enum { N = 3, V = 10, K = 3 };
    float zs[N * V] = {0}, logp[N * K], rest[N] = {0.1f, 0.1f, 0.1f}, dz[N * V];
    int32_t ids[N * K] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, tg[N] = {1, 2, 3};
    for (int i = 0; i < N * K; i++) logp[i] = -1.5f;
    dl_kd_cfg c = {DL_KD_FKL, 0, 0, 1.0f, 0.5f};
    dl_error err;
    CHECK(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err) == 0);
#define BAD(expr, needle)                                                                          \
    do {                                                                                           \
        err.msg[0] = 0;                                                                            \
        CHECK_MSG((expr) == -1 && strstr(err.msg, needle), "%s: message '%s'", #expr, err.msg);    \
    } while (0)
    ids[4] = V;
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "row 1 slot 1");
    ids[4] = -3;
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "id -3");
    ids[4] = 5; // duplicate of slot 2
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "appears twice");
    tg[1] = -1; // an ignored row is never read: garbage there is fine
    CHECK(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err) == 0);
    tg[1] = 2;
    ids[4] = 4;
    logp[7] = NAN;
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "row 2 slot 1");
    logp[7] = -INFINITY;
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "not finite");
    logp[7] = -1.5f;
    rest[0] = NAN;
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "rest");
    rest[0] = 0.1f;
    // the same ids in consecutive rows are fine (marks are cleared between rows)
    for (int i = 0; i < N * K; i++) ids[i] = i % K;
    CHECK(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err) == 0);
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, 0, tg, dz, N, V, 1.0f, NULL, &err), "K = 0");
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, V + 1, tg, dz, N, V, 1.0f, NULL, &err), "K = 11");
    BAD(dl_kd_topk(&c, zs, NULL, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "required");
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, -1, V, 1.0f, NULL, &err), "N = -1");
    BAD(dl_kd_topk(&c, zs, ids, logp, rest, K, tg, dz, N, 0, 1.0f, NULL, &err), "V = 0");
    BAD(dl_kd_topk(NULL, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, NULL, &err), "configuration");
    BAD(dl_kd_full(&c, zs, zs, V - 1, tg, dz, N, V, 1.0f, NULL, &err), "stride 9");
    BAD(dl_kd_full(&c, zs, NULL, V, tg, dz, N, V, 1.0f, NULL, &err), "teacher");
    BAD(dl_kd_full(&c, NULL, zs, V, tg, dz, N, V, 1.0f, NULL, &err), "student");
    c.tau = 0;
    BAD(dl_kd_full(&c, zs, zs, V, tg, dz, N, V, 1.0f, NULL, &err), "temperature");
#undef BAD
}

int main(void) {
    dl_rng_seed(&rng, 11);
    test_names();
    test_check();
    test_self();
    test_tv_disjoint();
    test_equivalences();
    test_jsd_limits();
    test_jsd_symmetric();
    test_temperature();
    test_topk_is_full();
    test_topk_uniform_tail();
    test_ce_only();
    test_masking();
    test_alias_scale_threads();
    test_extremes();
    test_bad_topk();
    TEST_MAIN_END();
}
