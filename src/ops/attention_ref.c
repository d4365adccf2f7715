/* attention references: the plain float kernels (one query row at a time, dot products over
 * the head) and a double-precision forward straight from the definition. The tiled kernels in
 * attention.c are tested against these and fall back to them if their scratch cannot be
 * allocated. */
#include "ops.h"
#include <math.h>
#include <string.h>

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* One task per (b, kv head): the query heads sharing a kv head add into the same dk, dv rows,
 * so keeping them in one task keeps the sums in a fixed order without atomics. */
static void attention_backward_group(float *dqkv, const float *dout, const float *qkv, float *att, int b,
                                     int kvh, int T, int NH, int NKV, int HS) {
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, C = (size_t)NH * HS;
    int group = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
    const float *base = qkv + (size_t)b * T * QKV;
    float *dbase = dqkv + (size_t)b * T * QKV;
    const float *k = base + C + (size_t)kvh * HS, *v = k + (size_t)NKV * HS;
    float *dk = dbase + C + (size_t)kvh * HS, *dv = dk + (size_t)NKV * HS;
    for (int h = kvh * group; h < (kvh + 1) * group; h++)
        for (int t = 0; t < T; t++) {
            const float *q = base + t * QKV + (size_t)h * HS;
            float *dq = dbase + t * QKV + (size_t)h * HS;
            const float *dy = dout + ((size_t)b * T + t) * C + (size_t)h * HS;
            float *a = att + (((size_t)b * NH + h) * T + t) * T;
            // softmax backward: dpre_s = a_s (da_s - sum_j a_j da_j), with da_s = dy . v_s
            float sum = 0.0f;
            for (int s = 0; s <= t; s++) sum += a[s] * dot(dy, v + s * QKV, HS);
            for (int s = 0; s <= t; s++) {
                float da = dot(dy, v + s * QKV, HS);
                axpy(dv + s * QKV, a[s], dy, HS);
                float dpre = a[s] * (da - sum) * scale;
                axpy(dq, dpre, k + s * QKV, HS);
                axpy(dk + s * QKV, dpre, q, HS);
            }
        }
}

void dl_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, float *att, int B, int T,
                           int NH, int NKV, int HS) {
    size_t QKV = (size_t)(NH + 2 * NKV) * HS;
    memset(dqkv, 0, (size_t)B * T * QKV * sizeof(float));
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < NKV; kvh++) attention_backward_group(dqkv, dout, qkv, att, b, kvh, T, NH, NKV, HS);
}

/* Straight from the definition, in double. */
void dl_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS) {
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, C = (size_t)NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kvh = h / (NH / NKV);
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * QKV + (size_t)h * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                double m = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    const float *k = qkv + ((size_t)b * T + s) * QKV + C + (size_t)kvh * HS;
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    a[s] = (float)(d * scale);
                    if (a[s] > m) m = a[s];
                }
                for (int s = 0; s <= t; s++) sum += exp((double)a[s] - m);
                for (int s = 0; s <= t; s++) a[s] = (float)(exp((double)a[s] - m) / sum);
                for (int s = t + 1; s < T; s++) a[s] = 0.0f;
                for (int i = 0; i < HS; i++) {
                    double o = 0;
                    for (int s = 0; s <= t; s++)
                        o += (double)a[s] * qkv[((size_t)b * T + s) * QKV + C + (size_t)(NKV + kvh) * HS + i];
                    out[((size_t)b * T + t) * C + (size_t)h * HS + i] = (float)o;
                }
            }
        }
}
