/* rmsnorm: out = inp / sqrt(mean(inp^2) + eps) * weight, row by row. */
#include "ops.h"
#include <math.h>
#include <string.h>

// inp is (N,C), weight (C), out (N,C), rstd (N)
void dl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                        float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        if (rstd) rstd[n] = r;
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
    }
}

/* d(x_i r w_i)/dx_j = r w_i [i==j] - r^3 x_i w_i x_j / C, so
 * dx_j = r w_j dy_j - r^3 x_j / C * sum_i(dy_i w_i x_i). */
static void rmsnorm_backward_inputs(float *dinp, const float *dout, const float *inp, const float *weight,
                                    const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float r = rstd[n], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += dy[c] * weight[c] * x[c];
        float k = r * r * r * dot / (float)C;
#pragma omp simd
        for (int c = 0; c < C; c++) dx[c] += r * weight[c] * dy[c] - k * x[c];
    }
}

/* Each thread owns a block of columns and sums over all rows in order: the result does not
 * depend on the thread count. */
#define RMS_COLS 64
static void rmsnorm_backward_weight(float *dweight, const float *dout, const float *inp, const float *rstd,
                                    int N, int C) {
    int nblocks = (C + RMS_COLS - 1) / RMS_COLS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * RMS_COLS, c1 = c0 + RMS_COLS < C ? c0 + RMS_COLS : C;
        float acc[RMS_COLS] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float r = rstd[n];
#pragma omp simd
            for (int c = c0; c < c1; c++) acc[c - c0] += dy[c] * x[c] * r;
        }
        for (int c = c0; c < c1; c++) dweight[c] += acc[c - c0];
    }
}

void dl_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C) {
    if (dweight) rmsnorm_backward_weight(dweight, dout, inp, rstd, N, C);
    if (dinp) rmsnorm_backward_inputs(dinp, dout, inp, weight, rstd, N, C);
}
