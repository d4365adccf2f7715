/* Bias add and its gradient. Both are one pass over an (N,OC) array that a matmul has just
 * written or read, so they cost a small fraction of that matmul. */
#include "bias.h"
#include <stddef.h>

void dl_bias_forward(float *out, const float *bias, int N, int OC) {
    long work = (long)N * OC;
#pragma omp parallel for schedule(static) if (work > 65536)
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * OC;
        for (int o = 0; o < OC; o++) row[o] += bias[o];
    }
}

#define COLS 64 /* columns per task: a block of sums stays in registers/L1 */

void dl_bias_backward(float *dbias, const float *dout, int N, int OC) {
    long work = (long)N * OC;
#pragma omp parallel for schedule(static) if (work > 65536)
    for (int o0 = 0; o0 < OC; o0 += COLS) {
        int w = OC - o0 < COLS ? OC - o0 : COLS;
        double s[COLS] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC + o0;
            for (int o = 0; o < w; o++) s[o] += row[o];
        }
        for (int o = 0; o < w; o++) dbias[o0 + o] += (float)s[o];
    }
}
