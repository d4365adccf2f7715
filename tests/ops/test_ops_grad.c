/* Finite-difference gradient checks for every op's backward.
 *
 * Each check defines a scalar loss = sum_i w_i * out_i with fixed random weights w (so the
 * upstream gradient dout is w), perturbs one input at a time by +-H and compares the central
 * difference (loss(x+H) - loss(x-H)) / 2H with the analytic gradient.
 * The loss is summed in double; the ops run in float, so the difference quotient carries about
 * 1e-7 * |terms| / H of rounding error. With H = 1e-3 and O(1) values we accept
 * |num - ana| <= 2e-3 + 1e-2 * |ana| (fp32 forward, central differences). */
#include "base/base.h"
#include "ops/ops.h"
#include "test.h"

#define H 1e-3f
#define ATOL 2e-3
#define RTOL 1e-2

static dl_rng rng;

static float *randn(size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * dl_rng_normal(&rng);
    return x;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

static double wsum(const float *w, const float *out, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * out[i];
    return s;
}

/* Compares grad[j] with the central difference of loss() for every j in x[0..n). Returns
 * the number of mismatches (and reports the first few). */
typedef double (*loss_fn)(void *ctx);
static int fd_check(const char *what, float *x, size_t n, const float *grad, loss_fn loss, void *ctx) {
    int bad = 0;
    for (size_t j = 0; j < n; j++) {
        float saved = x[j];
        x[j] = saved + H;
        double lp = loss(ctx);
        x[j] = saved - H;
        double lm = loss(ctx);
        x[j] = saved;
        double num = (lp - lm) / (2.0 * (double)H);
        if (fabs(num - grad[j]) > ATOL + RTOL * fabs(grad[j])) {
            if (bad < 5) fprintf(stderr, "%s[%zu]: numeric %.6g analytic %.6g\n", what, j, num, (double)grad[j]);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu gradients disagree", what, bad, n);
    return bad;
}

/* ---- matmul --------------------------------------------------------------------------------- */
typedef struct { float *out, *inp, *w, *dout; int N, IC, OC; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    dl_matmul_forward(c->out, c->inp, c->w, c->N, c->IC, c->OC, 0);
    return wsum(c->dout, c->out, (size_t)c->N * c->OC);
}

static void test_matmul_grad(void) {
    mm_ctx c = {.N = 5, .IC = 7, .OC = 3};
    c.inp = randn(35, 1), c.w = randn(21, 1), c.dout = randn(15, 1), c.out = zeros(15);
    float *dinp = randn(35, 1), *dw = zeros(21); // dinp starts dirty: it must be overwritten
    dl_matmul_backward(dinp, dw, c.dout, c.inp, c.w, c.N, c.IC, c.OC);
    fd_check("matmul dinp", c.inp, 35, dinp, mm_loss, &c);
    fd_check("matmul dweight", c.w, 21, dw, mm_loss, &c);
    // dweight accumulates: a second call doubles it
    float first = dw[4];
    dl_matmul_backward(NULL, dw, c.dout, c.inp, c.w, c.N, c.IC, c.OC);
    CHECK_CLOSE(dw[4], 2 * first, 1e-6, 1e-5);
    free(c.inp), free(c.w), free(c.dout), free(c.out), free(dinp), free(dw);
}

/* ---- rmsnorm -------------------------------------------------------------------------------- */
typedef struct { float *out, *inp, *w, *dout; int N, C; } rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    dl_rmsnorm_forward(c->out, NULL, c->inp, c->w, c->N, c->C, 1e-5f);
    return wsum(c->dout, c->out, (size_t)c->N * c->C);
}

static void test_rmsnorm_grad(void) {
    rms_ctx c = {.N = 4, .C = 70}; // 70: more than one 64-column block in the weight gradient
    size_t n = (size_t)c.N * c.C;
    c.inp = randn(n, 1), c.w = randn((size_t)c.C, 1), c.dout = randn(n, 1), c.out = zeros(n);
    float rstd[4];
    dl_rmsnorm_forward(c.out, rstd, c.inp, c.w, c.N, c.C, 1e-5f);
    float *dinp = zeros(n), *dw = zeros((size_t)c.C);
    dl_rmsnorm_backward(dinp, dw, c.dout, c.inp, c.w, rstd, c.N, c.C);
    fd_check("rmsnorm dinp", c.inp, n, dinp, rms_loss, &c);
    fd_check("rmsnorm dweight", c.w, (size_t)c.C, dw, rms_loss, &c);
    // dinp accumulates (the residual stream's gradient flows through it)
    float first = dinp[3];
    dl_rmsnorm_backward(dinp, NULL, c.dout, c.inp, c.w, rstd, c.N, c.C);
    CHECK_CLOSE(dinp[3], 2 * first, 1e-6, 1e-5);
    free(c.inp), free(c.w), free(c.dout), free(c.out), free(dinp), free(dw);
}

/* ---- rope ----------------------------------------------------------------------------------- */
typedef struct { float *x, *y, *dout, *cs, *sn; int B, T, NH, HS, stride, pos0; } rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->B * c->T * c->stride;
    memcpy(c->y, c->x, n * sizeof(float));
    dl_rope_forward(c->y, c->B, c->T, c->NH, c->HS, (size_t)c->stride, c->pos0, c->cs, c->sn);
    return wsum(c->dout, c->y, n);
}

static void test_rope_grad(void) {
    rope_ctx c = {.B = 2, .T = 3, .NH = 2, .HS = 6, .stride = 14, .pos0 = 5}; // stride > NH*HS: padding
    size_t n = (size_t)c.B * c.T * c.stride;
    c.cs = zeros(16 * 3), c.sn = zeros(16 * 3);
    dl_rope_table(c.cs, c.sn, 16, c.HS, 100.0f);
    c.x = randn(n, 1), c.y = zeros(n), c.dout = randn(n, 1);
    float *dx = malloc(n * sizeof(float));
    memcpy(dx, c.dout, n * sizeof(float));
    dl_rope_backward(dx, c.B, c.T, c.NH, c.HS, (size_t)c.stride, c.pos0, c.cs, c.sn);
    fd_check("rope dx", c.x, n, dx, rope_loss, &c);
    free(c.cs), free(c.sn), free(c.x), free(c.y), free(c.dout), free(dx);
}

/* ---- attention ------------------------------------------------------------------------------ */
typedef struct { float *qkv, *out, *att, *dout; int B, T, NH, NKV, HS; } att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    dl_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->NH, c->NKV, c->HS);
    return wsum(c->dout, c->out, (size_t)c->B * c->T * c->NH * c->HS);
}

static void test_attention_grad(void) {
    att_ctx c = {.B = 2, .T = 5, .NH = 4, .NKV = 2, .HS = 4}; // GQA: two query heads per kv head
    size_t nqkv = (size_t)c.B * c.T * (c.NH + 2 * c.NKV) * c.HS, nout = (size_t)c.B * c.T * c.NH * c.HS;
    c.qkv = randn(nqkv, 1), c.out = zeros(nout), c.dout = randn(nout, 1);
    c.att = zeros((size_t)c.B * c.NH * c.T * c.T);
    float *dqkv = randn(nqkv, 1); // dirty: must be overwritten
    att_loss(&c);
    dl_attention_backward(dqkv, c.dout, c.qkv, c.att, c.B, c.T, c.NH, c.NKV, c.HS);
    fd_check("attention dqkv", c.qkv, nqkv, dqkv, att_loss, &c);
    free(c.qkv), free(c.out), free(c.att), free(c.dout), free(dqkv);
}

/* ---- swiglu --------------------------------------------------------------------------------- */
typedef struct { float *gu, *out, *dout; int N, F; } sw_ctx;
static double sw_loss(void *p) {
    sw_ctx *c = p;
    dl_swiglu_forward(c->out, c->gu, c->gu + c->F, c->N, c->F, 2 * (size_t)c->F);
    return wsum(c->dout, c->out, (size_t)c->N * c->F);
}

static void test_swiglu_grad(void) {
    sw_ctx c = {.N = 3, .F = 9}; // fused rows [gate | up]
    size_t n = (size_t)c.N * c.F;
    c.gu = randn(2 * n, 2), c.out = zeros(n), c.dout = randn(n, 1);
    float *dgu = zeros(2 * n), *again = zeros(n);
    dl_swiglu_backward(dgu, dgu + c.F, NULL, c.dout, c.gu, c.gu + c.F, c.N, c.F, 2 * (size_t)c.F);
    fd_check("swiglu dgate|dup", c.gu, 2 * n, dgu, sw_loss, &c);
    // with out given, the backward hands back the forward's output too, and the same gradients
    float *dgu2 = zeros(2 * n);
    sw_loss(&c);
    dl_swiglu_backward(dgu2, dgu2 + c.F, again, c.dout, c.gu, c.gu + c.F, c.N, c.F, 2 * (size_t)c.F);
    CHECK(memcmp(again, c.out, n * sizeof(float)) == 0 && memcmp(dgu, dgu2, 2 * n * sizeof(float)) == 0);
    free(again), free(dgu2);
    free(c.gu), free(c.out), free(c.dout), free(dgu);
}

/* ---- embedding ------------------------------------------------------------------------------ */
typedef struct { float *table, *out, *dout; const int32_t *tok; int N, C, V; } emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    dl_embedding_forward(c->out, c->tok, c->table, c->N, c->C, c->V);
    return wsum(c->dout, c->out, (size_t)c->N * c->C);
}

static void test_embedding_grad(void) {
    static const int32_t tok[6] = {3, 1, 3, 0, 9, -2}; // a repeat, and two out-of-range ids
    emb_ctx c = {.N = 6, .C = 40, .V = 5, .tok = tok};
    c.table = randn((size_t)c.V * c.C, 1), c.out = zeros((size_t)c.N * c.C), c.dout = randn((size_t)c.N * c.C, 1);
    CHECK(dl_embedding_forward(c.out, tok, c.table, c.N, c.C, c.V) == 2);
    CHECK(c.out[0] == c.table[3 * 40] && c.out[4 * 40] == 0.0f && c.out[5 * 40 + 7] == 0.0f);
    float *dt = zeros((size_t)c.V * c.C);
    dl_embedding_backward(dt, c.dout, tok, c.N, c.C, c.V);
    fd_check("embedding dtable", c.table, (size_t)c.V * c.C, dt, emb_loss, &c);
    free(c.table), free(c.out), free(c.dout), free(dt);
}

/* ---- cross-entropy -------------------------------------------------------------------------- */
typedef struct { float *logits, *losses; const int32_t *tgt; int N, V; float scale; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    dl_crossentropy_forward(c->losses, NULL, c->logits, c->tgt, c->N, c->V);
    double s = 0;
    for (int n = 0; n < c->N; n++) s += c->losses[n];
    return s * c->scale;
}

static void test_crossentropy_grad(void) {
    static const int32_t tgt[4] = {2, -1, 10, 0}; // -1 and 10 (>= V) are ignored
    ce_ctx c = {.N = 4, .V = 6, .tgt = tgt, .scale = 0.5f};
    size_t n = (size_t)c.N * c.V;
    c.logits = randn(n, 2), c.losses = zeros(4);
    float lse[4];
    CHECK(dl_crossentropy_forward(c.losses, lse, c.logits, tgt, c.N, c.V) == 2);
    float *d = malloc(n * sizeof(float));
    memcpy(d, c.logits, n * sizeof(float));
    dl_crossentropy_backward(d, d, lse, tgt, c.N, c.V, c.scale); // in place
    fd_check("crossentropy dlogits", c.logits, n, d, ce_loss, &c);
    CHECK(d[1 * 6 + 2] == 0.0f && d[2 * 6 + 5] == 0.0f); // ignored rows get zero gradient
    free(c.logits), free(c.losses), free(d);
}

int main(void) {
    dl_rng_seed(&rng, 1234);
    test_matmul_grad();
    test_rmsnorm_grad();
    test_rope_grad();
    test_attention_grad();
    test_swiglu_grad();
    test_embedding_grad();
    test_crossentropy_grad();
    TEST_MAIN_END();
}
