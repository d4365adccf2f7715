/* Fast kernels against their naive references and against values worked out by hand;
 * determinism across thread counts for the kernels written here (BLAS aside). */
#include "base/base.h"
#include "ops/ops.h"
#include "test.h"
#include <omp.h>

static dl_rng rng;

static float *randn(size_t n) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = dl_rng_normal(&rng);
    return x;
}

static float max_rel_diff(const float *a, const float *b, size_t n) {
    float worst = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]) / (1.0f + fabsf(b[i]));
        if (d > worst) worst = d;
    }
    return worst;
}

/* sgemm against the double-accumulating reference; odd shapes to catch leading-dimension slips.
 * fp32 sums of ~50 O(1) products: 1e-5 relative (to 1 + |value|) is comfortable. */
static void test_matmul_vs_ref(void) {
    int N = 37, IC = 53, OC = 29;
    float *inp = randn((size_t)N * IC), *w = randn((size_t)OC * IC), *dout = randn((size_t)N * OC);
    float *o1 = randn((size_t)N * OC), *o2 = malloc((size_t)N * OC * sizeof(float));
    memcpy(o2, o1, (size_t)N * OC * sizeof(float));
    dl_matmul_forward(o1, inp, w, N, IC, OC, 1); // accumulate onto the same start values
    dl_matmul_forward_ref(o2, inp, w, N, IC, OC, 1);
    CHECK(max_rel_diff(o1, o2, (size_t)N * OC) < 1e-5f);
    dl_matmul_forward(o1, inp, w, N, IC, OC, 0);
    dl_matmul_forward_ref(o2, inp, w, N, IC, OC, 0);
    CHECK(max_rel_diff(o1, o2, (size_t)N * OC) < 1e-5f);
    float *di1 = calloc((size_t)N * IC, 4), *di2 = calloc((size_t)N * IC, 4);
    float *dw1 = calloc((size_t)OC * IC, 4), *dw2 = calloc((size_t)OC * IC, 4);
    dw1[5] = dw2[5] = 3.0f;
    dl_matmul_backward(di1, dw1, dout, inp, w, N, IC, OC);
    dl_matmul_backward_ref(di2, dw2, dout, inp, w, N, IC, OC);
    CHECK(max_rel_diff(di1, di2, (size_t)N * IC) < 1e-5f);
    CHECK(max_rel_diff(dw1, dw2, (size_t)OC * IC) < 1e-5f);
    // hand value: out = [1 2] @ [[3 4]]^T = 11
    float a[2] = {1, 2}, b[2] = {3, 4}, c = 0;
    dl_matmul_forward(&c, a, b, 1, 2, 1, 0);
    CHECK(c == 11.0f);
    free(inp), free(w), free(dout), free(o1), free(o2), free(di1), free(di2), free(dw1), free(dw2);
}

static void test_rmsnorm_values(void) {
    float x[4] = {3, 4, 0, 1}, w[2] = {1, 2}, y[4], rstd[2];
    dl_rmsnorm_forward(y, rstd, x, w, 2, 2, 0.5f);
    // row 0: mean(9,16) = 12.5, +0.5 -> 13; row 1: mean(0,1) = 0.5, +0.5 -> 1
    CHECK_CLOSE(rstd[0], 1 / sqrt(13.0), 1e-7, 1e-6);
    CHECK_CLOSE(y[1], 8 / sqrt(13.0), 1e-6, 1e-6);
    CHECK_CLOSE(y[3], 2.0, 1e-6, 1e-6);
}

/* Table-driven rope against the reference computing angles in double. Positions reach 255,
 * where the float angle (up to 255 rad) carries ~1e-5 rad of rounding: 1e-4 tolerance. */
static void test_rope_vs_ref(void) {
    int B = 2, T = 16, NH = 3, HS = 32, stride = NH * HS + 5, pos0 = 240, maxT = 256;
    size_t n = (size_t)B * T * stride;
    float *x = randn(n), *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    float *cs = malloc((size_t)maxT * HS / 2 * 4), *sn = malloc((size_t)maxT * HS / 2 * 4);
    dl_rope_table(cs, sn, maxT, HS, 10000.0f);
    dl_rope_forward(x, B, T, NH, HS, (size_t)stride, pos0, cs, sn);
    dl_rope_forward_ref(y, B, T, NH, HS, (size_t)stride, pos0, 10000.0f);
    CHECK(max_rel_diff(x, y, n) < 1e-4f);
    // the padding between rows is untouched
    float *z = randn(n);
    memcpy(x, z, n * sizeof(float));
    dl_rope_forward(x, B, T, NH, HS, (size_t)stride, pos0, cs, sn);
    CHECK(x[NH * HS] == z[NH * HS] && x[stride + NH * HS + 4] == z[stride + NH * HS + 4]);
    // forward then backward is the identity (a rotation's transpose is its inverse)
    dl_rope_backward(x, B, T, NH, HS, (size_t)stride, pos0, cs, sn);
    CHECK(max_rel_diff(x, z, n) < 1e-5f);
    // hand value: HS = 2, position 1, inv_freq 1: (1, 0) turns by 1 radian; pairs are (i, i+HS/2)
    float v[2] = {1, 0}, c1[2], s1[2];
    dl_rope_table(c1, s1, 2, 2, 10000.0f);
    dl_rope_forward(v, 1, 1, 1, 2, 2, 1, c1, s1);
    CHECK_CLOSE(v[0], cos(1.0), 1e-6, 0);
    CHECK_CLOSE(v[1], sin(1.0), 1e-6, 0);
    // HS = 4: dims 0 and 2 pair up (rotate-half), with inv_freq 1; dims 1 and 3 with theta^-0.5
    float u[4] = {1, 0, 0, 0}, c2[4], s2[4];
    dl_rope_table(c2, s2, 2, 4, 100.0f);
    dl_rope_forward(u, 1, 1, 1, 4, 4, 1, c2, s2);
    CHECK_CLOSE(u[0], cos(1.0), 1e-6, 0);
    CHECK_CLOSE(u[2], sin(1.0), 1e-6, 0);
    CHECK(u[1] == 0.0f && u[3] == 0.0f);
    free(x), free(y), free(z), free(cs), free(sn);
}

static void test_attention_vs_ref(void) {
    int B = 2, T = 9, NH = 6, NKV = 2, HS = 8;
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, nqkv = (size_t)B * T * QKV, nout = (size_t)B * T * NH * HS;
    size_t natt = (size_t)B * NH * T * T;
    float *qkv = randn(nqkv), *o1 = malloc(nout * 4), *o2 = malloc(nout * 4);
    float *a1 = calloc(natt, 4), *a2 = calloc(natt, 4);
    dl_attention_forward(o1, a1, qkv, B, T, NH, NKV, HS);
    dl_attention_forward_ref(o2, a2, qkv, B, T, NH, NKV, HS);
    CHECK(max_rel_diff(o1, o2, nout) < 1e-5f);
    CHECK(max_rel_diff(a1, a2, natt) < 1e-5f);
    // each probability row sums to 1; position 0 attends only to itself, so its output is v_0
    double rowsum = 0;
    for (int s = 0; s <= 4; s++) rowsum += a1[((size_t)1 * NH + 3) * T * T + 4 * T + s];
    CHECK_CLOSE(rowsum, 1.0, 1e-6, 0);
    int h = 5, kvh = h / (NH / NKV);
    CHECK_CLOSE(o1[(size_t)h * HS + 2], qkv[(size_t)(NH + NKV + kvh) * HS + 2], 1e-6, 0);
    free(qkv), free(o1), free(o2), free(a1), free(a2);
}

/* The tiled kernels at sizes that use full 4x32 tiles and every edge (T not a multiple of 4
 * or 32, HS = 48 = 32 + a 16-column tail), forward against the double reference and backward
 * against the plain row-at-a-time reference. fp32 sums over <= 70 terms: 1e-5 relative. */
static void attention_tiled_case(int B, int T, int NH, int NKV, int HS) {
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, nqkv = (size_t)B * T * QKV, nout = (size_t)B * T * NH * HS;
    size_t natt = (size_t)B * NH * T * T;
    float *qkv = randn(nqkv), *dout = randn(nout), *o1 = malloc(nout * 4), *o2 = malloc(nout * 4);
    float *a1 = malloc(natt * 4), *a2 = malloc(natt * 4), *d1 = malloc(nqkv * 4), *d2 = malloc(nqkv * 4);
    for (size_t i = 0; i < natt; i++) a1[i] = a2[i] = 7.0f; // stale values must not survive
    dl_attention_forward(o1, a1, qkv, B, T, NH, NKV, HS);
    dl_attention_forward_ref(o2, a2, qkv, B, T, NH, NKV, HS);
    CHECK_MSG(max_rel_diff(o1, o2, nout) < 1e-5f, "T=%d HS=%d out", T, HS);
    CHECK_MSG(max_rel_diff(a1, a2, natt) < 1e-5f, "T=%d HS=%d att", T, HS);
    CHECK(a1[1] == 0.0f && a1[(size_t)T * T - 2] != 0.0f); // above the diagonal: zero
    dl_attention_backward_ref(d2, dout, qkv, a1, B, T, NH, NKV, HS);
    dl_attention_backward(d1, dout, qkv, a1, B, T, NH, NKV, HS);
    CHECK_MSG(max_rel_diff(d1, d2, nqkv) < 1e-5f, "T=%d HS=%d dqkv", T, HS);
    free(qkv), free(dout), free(o1), free(o2), free(a1), free(a2), free(d1), free(d2);
}

static void test_attention_tiled(void) {
    attention_tiled_case(1, 70, 4, 2, 32);
    attention_tiled_case(2, 37, 2, 1, 48);
    attention_tiled_case(1, 3, 3, 3, 2);
}

/* The vectorised exp against double exp over its whole range, at lengths with and without a
 * partial last vector: within 1e-6 relative (a few ulp). Below the clamp (-87.3) it returns
 * a tiny normal number instead of underflowing. */
static void test_exp_sum(void) {
    int n = 1000 + 7;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (int i = 0; i < n; i++) x[i] = -87.0f + 175.0f * (float)i / (float)n;
    dl_exp_sum(y, x, n, 0.0f, 1.0f);
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(y[i] - exp((double)x[i])) / exp((double)x[i]));
    CHECK_MSG(worst < 1e-6, "exp worst relative error %g", worst);
    for (int len = 1; len <= 40; len += 13) { // 1, 14, 27, 40: partial vectors
        double want = 0;
        for (int i = 0; i < len; i++) x[i] = 0.1f * (float)i - 2.0f, want += exp((double)x[i] - 0.5);
        float sum = dl_exp_sum(NULL, x, len, 0.5f, 3.0f);
        CHECK_CLOSE(sum, want, 0, 1e-6);
        dl_exp_sum(x, x, len, 0.5f, 3.0f); // in place, with mul
        CHECK_CLOSE(x[len - 1], 3 * exp(0.1 * (len - 1) - 2.5), 0, 1e-6);
    }
    x[0] = -1000.0f, x[1] = NAN;
    dl_exp_sum(y, x, 2, 0.0f, 1.0f);
    CHECK(y[0] >= 0.0f && y[0] < 1e-37f && isnan(y[1]));
    free(x), free(y);
}

static void test_softmax_ce_values(void) {
    float x[4] = {0, logf(3), 1000, 1000}, y[4];
    dl_softmax_forward(y, x, 2, 2); // the second row would overflow expf without the max shift
    CHECK_CLOSE(y[0], 0.25, 1e-6, 0);
    CHECK_CLOSE(y[1], 0.75, 1e-6, 0);
    CHECK_CLOSE(y[2], 0.5, 1e-6, 0);
    float logits[8] = {0, 0, 0, 0, 1, 2, 3, 4}, losses[2], lse[2];
    int32_t tgt[2] = {1, 3};
    CHECK(dl_crossentropy_forward(losses, lse, logits, tgt, 2, 4) == 2);
    CHECK_CLOSE(losses[0], log(4.0), 1e-6, 0);
    double l1 = log(exp(1) + exp(2) + exp(3) + exp(4));
    CHECK_CLOSE(lse[1], l1, 1e-5, 0);
    CHECK_CLOSE(losses[1], l1 - 4, 1e-5, 0);
    float g = 3.0f, u = 2.0f, o;
    dl_swiglu_forward(&o, &g, &u, 1, 1, 1);
    CHECK_CLOSE(o, 3.0 / (1 + exp(-3.0)) * 2, 1e-6, 1e-6);
}

/* The kernels here reduce in a fixed order: 1 and 2 threads give the same bits. */
static void test_thread_count_independence(void) {
    int B = 2, T = 12, NH = 4, NKV = 2, HS = 8, C = NH * HS, N = B * T;
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, nqkv = (size_t)N * QKV, natt = (size_t)B * NH * T * T;
    float *qkv = randn(nqkv), *dout = randn((size_t)N * C), *x = randn((size_t)N * C), *w = randn((size_t)C);
    float *res[2][3];
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run + 1);
        float *o = malloc((size_t)N * C * 4), *att = calloc(natt, 4), *dqkv = malloc(nqkv * 4);
        float *dx = calloc((size_t)N * C, 4), *dw = calloc((size_t)C, 4), rstd[24];
        dl_attention_forward(o, att, qkv, B, T, NH, NKV, HS);
        dl_attention_backward(dqkv, dout, qkv, att, B, T, NH, NKV, HS);
        dl_rmsnorm_forward(o, rstd, x, w, N, C, 1e-5f);
        dl_rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
        res[run][0] = dqkv, res[run][1] = dx, res[run][2] = dw;
        free(o), free(att);
    }
    CHECK(memcmp(res[0][0], res[1][0], nqkv * 4) == 0);
    CHECK(memcmp(res[0][1], res[1][1], (size_t)N * C * 4) == 0);
    CHECK(memcmp(res[0][2], res[1][2], (size_t)C * 4) == 0);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3; i++) free(res[r][i]);
    free(qkv), free(dout), free(x), free(w);
    omp_set_num_threads(2);
}

int main(void) {
    dl_rng_seed(&rng, 99);
    test_matmul_vs_ref();
    test_rmsnorm_values();
    test_rope_vs_ref();
    test_attention_vs_ref();
    test_attention_tiled();
    test_exp_sum();
    test_softmax_ce_values();
    test_thread_count_independence();
    TEST_MAIN_END();
}
