/* Linear layers for decoding and the post-attention half of a layer, shared by decode.c and
 * decode_batch.c. */
#include "bias.h"
#include "decode_internal.h"
#include "ops/ops.h"
#include <cblas.h>
#include <string.h>

/* A few rows times a weight matrix. OpenBLAS's sgemm packs the whole weight matrix before it
 * multiplies, which for a handful of rows costs 3-4x a matrix-vector product (measured on
 * 512x1536 weights: 0.13-0.2 ms for one row by sgemv, 0.5-0.9 ms for 2-8 rows by sgemm). Here
 * each pair of weight rows is read from memory once and, while it sits in L1, multiplied with
 * every input row, 4 rows at a time, a vector (8 or 16 floats) a step. The block is always 2x4 so the eight
 * accumulators stay in registers; missing rows repeat a real one and are not stored. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
typedef __m512 vf;
static vf vf_zero(void) { return _mm512_setzero_ps(); }
static vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static vf vf_fma(vf a, vf b, vf acc) { return _mm512_fmadd_ps(a, b, acc); }
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VL 8
typedef __m256 vf;
static vf vf_zero(void) { return _mm256_setzero_ps(); }
static vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static vf vf_fma(vf a, vf b, vf acc) { return _mm256_fmadd_ps(a, b, acc); }
#else
#define VL 8
typedef float vf __attribute__((vector_size(32)));
static vf vf_zero(void) { return (vf){0}; }
static vf vf_load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static vf vf_fma(vf a, vf b, vf acc) { return acc + a * b; }
#endif

static float vf_sum(vf v) {
    float f[VL], s = 0;
    memcpy(f, &v, sizeof f);
    for (int k = 0; k < VL; k++) s += f[k];
    return s;
}

// out rows b0..b0+nb-1 (nb <= 4), columns o0..o0+no-1 (no <= 2)
static void dot_block(float *out, const float *inp, const float *w, int b0, int nb, int o0, int no, int IC, int OC,
                      int accumulate) {
    const float *w0 = w + (size_t)o0 * IC, *w1 = no > 1 ? w0 + IC : w0;
    const float *x0 = inp + (size_t)b0 * IC, *x1 = nb > 1 ? x0 + IC : x0, *x2 = nb > 2 ? x0 + 2 * (size_t)IC : x0,
                *x3 = nb > 3 ? x0 + 3 * (size_t)IC : x0;
    vf a00 = vf_zero(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    int i = 0;
    for (; i + VL <= IC; i += VL) {
        /* the hardware prefetcher falls behind a stream read this slowly: ask for it ahead */
        __builtin_prefetch(w0 + i + 128);
        __builtin_prefetch(w1 + i + 128);
        vf u = vf_load(w0 + i), v = vf_load(w1 + i), x;
        x = vf_load(x0 + i), a00 = vf_fma(u, x, a00), a10 = vf_fma(v, x, a10);
        x = vf_load(x1 + i), a01 = vf_fma(u, x, a01), a11 = vf_fma(v, x, a11);
        x = vf_load(x2 + i), a02 = vf_fma(u, x, a02), a12 = vf_fma(v, x, a12);
        x = vf_load(x3 + i), a03 = vf_fma(u, x, a03), a13 = vf_fma(v, x, a13);
    }
    float s[2][4] = {{vf_sum(a00), vf_sum(a01), vf_sum(a02), vf_sum(a03)}, {vf_sum(a10), vf_sum(a11), vf_sum(a12), vf_sum(a13)}};
    const float *xs[4] = {x0, x1, x2, x3}, *ws[2] = {w0, w1};
    for (int o = 0; o < no; o++)
        for (int b = 0; b < nb; b++) {
            float t = s[o][b];
            for (int k = i; k < IC; k++) t += ws[o][k] * xs[b][k];
            float *dst = out + (size_t)(b0 + b) * OC + o0 + o;
            *dst = accumulate ? *dst + t : t;
        }
}

// out (B,OC) = (or +=) inp (B,IC) @ w^T, w (OC,IC) read once
static void few_rows_matmul(float *out, const float *inp, const float *w, int B, int IC, int OC, int accumulate) {
    long work = (long)B * IC * OC;
#pragma omp parallel for schedule(static) if (work > 65536)
    for (int o = 0; o < OC; o += 2)
        for (int b = 0; b < B; b += 4)
            dot_block(out, inp, w, b, B - b < 4 ? B - b : 4, o, OC - o < 2 ? OC - o : 2, IC, OC, accumulate);
}

#define FEW_ROWS 32 /* above this, sgemm's packing pays for itself */

void dl_decode_linear(float *out, const float *inp, const float *w, const float *bias, int B, int IC, int OC,
                      int accumulate) {
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, w, IC, inp, 1, accumulate ? 1.0f : 0.0f, out, 1);
    else if (B <= FEW_ROWS)
        few_rows_matmul(out, inp, w, B, IC, OC, accumulate);
    else
        dl_matmul_forward(out, inp, w, B, IC, OC, accumulate);
    if (bias) dl_bias_forward(out, bias, B, OC);
}

static const float *P(const dl_model *m, int view) { return m->params + m->lay.views[view].offset; }

void dl_decode_layer_tail(const dl_model *m, const dl_layer_views *lv, float *x, const float *atty, float *ln,
                          float *gateup, float *act, int n) {
    int C = m->cfg.C, F = m->cfg.F;
    dl_decode_linear(x, atty, P(m, lv->wo), dl_bias_view(m, lv->bo), n, C, C, 1);
    dl_rmsnorm_forward(ln, NULL, x, P(m, lv->ln2), n, C, m->cfg.rms_eps);
    dl_decode_linear(gateup, ln, P(m, lv->wgate), NULL, n, C, 2 * F, 0);
    dl_swiglu_forward(act, gateup, gateup + F, n, F, (size_t)(2 * F));
    dl_decode_linear(x, act, P(m, lv->wdown), NULL, n, F, C, 1);
}
