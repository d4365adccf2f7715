/* matmul: the linear layers, on dl_gemm (our AVX-512 kernel, or OpenBLAS sgemm; gemm.h).
 * Weights are (OC,IC), HF's [out, in]. */
#include "ops.h"
#include "gemm.h"
#include <string.h>

// inp is (N,IC), weight is (OC,IC), out is (N,OC)
void dl_matmul_forward(float *out, const float *inp, const float *weight, int N, int IC, int OC,
                       int accumulate) {
    dl_gemm(0, 1, N, OC, IC, inp, IC, weight, IC, out, OC, accumulate);
}

// dout is (N,OC); dinp (N,IC) = dout @ weight; dweight (OC,IC) += dout^T @ inp
void dl_matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                        const float *weight, int N, int IC, int OC) {
    if (dinp)
        dl_gemm(0, 0, N, IC, OC, dout, OC, weight, IC, dinp, IC, 0);
    if (dweight)
        dl_gemm(1, 0, OC, IC, N, dout, OC, inp, IC, dweight, IC, 1);
}

/* The references accumulate in double so tests can tell kernel error from reference error. */
void dl_matmul_forward_ref(float *out, const float *inp, const float *weight, int N, int IC, int OC,
                           int accumulate) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = accumulate ? out[(size_t)n * OC + o] : 0.0;
            for (int i = 0; i < IC; i++) s += (double)inp[(size_t)n * IC + i] * weight[(size_t)o * IC + i];
            out[(size_t)n * OC + o] = (float)s;
        }
}

void dl_matmul_backward_ref(float *dinp, float *dweight, const float *dout, const float *inp,
                            const float *weight, int N, int IC, int OC) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double s = 0;
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * weight[(size_t)o * IC + i];
                dinp[(size_t)n * IC + i] = (float)s;
            }
    if (dweight)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < IC; i++) {
                double s = dweight[(size_t)o * IC + i];
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * IC + i];
                dweight[(size_t)o * IC + i] = (float)s;
            }
}
