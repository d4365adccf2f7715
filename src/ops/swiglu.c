/* swiglu: out = silu(gate) * up, the gated MLP's nonlinearity. Rows go in chunks through the
 * vectorised exp (dl_exp_sum) for the sigmoids. */
#include "ops.h"
#include <math.h>

#define CHUNK 256

// e[i] = exp(-g[i]) for i < k
static void exp_neg(float *e, const float *g, int k) {
#pragma omp simd
    for (int i = 0; i < k; i++) e[i] = -g[i];
    dl_exp_sum(e, e, k, 0.0f, 1.0f);
}

// gate, up rows `stride` floats apart, F used per row; out is (N,F)
void dl_swiglu_forward(float *out, const float *gate, const float *up, int N, int F, size_t stride) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gate + (size_t)n * stride, *u = up + (size_t)n * stride;
        float *o = out + (size_t)n * F;
        for (int i0 = 0; i0 < F; i0 += CHUNK) {
            int k = F - i0 < CHUNK ? F - i0 : CHUNK;
            float e[CHUNK];
            exp_neg(e, g + i0, k);
#pragma omp simd
            for (int i = 0; i < k; i++) o[i0 + i] = g[i0 + i] / (1.0f + e[i]) * u[i0 + i];
        }
    }
}

/* silu'(g) = s + g s (1 - s) with s = sigmoid(g). */
void dl_swiglu_backward(float *dgate, float *dup, float *out, const float *dout, const float *gate,
                        const float *up, int N, int F, size_t stride) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gate + (size_t)n * stride, *u = up + (size_t)n * stride, *d = dout + (size_t)n * F;
        float *dg = dgate + (size_t)n * stride, *du = dup + (size_t)n * stride;
        for (int i0 = 0; i0 < F; i0 += CHUNK) {
            int k = F - i0 < CHUNK ? F - i0 : CHUNK;
            float e[CHUNK];
            exp_neg(e, g + i0, k);
#pragma omp simd
            for (int j = 0; j < k; j++) {
                int i = i0 + j;
                float s = 1.0f / (1.0f + e[j]), silu = g[i] * s;
                du[i] = d[i] * silu;
                dg[i] = d[i] * u[i] * (s + g[i] * s * (1.0f - s));
            }
            if (out)
#pragma omp simd
                for (int j = 0; j < k; j++) out[(size_t)n * F + i0 + j] = g[i0 + j] / (1.0f + e[j]) * u[i0 + j];
        }
    }
}
