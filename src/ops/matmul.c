/* matmul: the linear layers, on OpenBLAS sgemm. Weights are (OC,IC), HF's [out, in]. */
#include "ops.h"
#include <cblas.h>
#include <string.h>

// inp is (N,IC), weight is (OC,IC), out is (N,OC)
void dl_matmul_forward(float *out, const float *inp, const float *weight, int N, int IC, int OC,
                       int accumulate) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC,
                accumulate ? 1.0f : 0.0f, out, OC);
}

// dout is (N,OC); dinp (N,IC) = dout @ weight; dweight (OC,IC) += dout^T @ inp
void dl_matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                        const float *weight, int N, int IC, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC, 0.0f,
                    dinp, IC);
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f,
                    dweight, IC);
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
