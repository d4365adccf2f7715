/* rope, Hugging Face's rotate-half convention: dims i and i+HS/2 of each head are a pair. */
#include "ops.h"
#include <math.h>

/* Same float32 steps as HF's LlamaRotaryEmbedding (inv_freq in float, angle = pos * inv_freq
 * in float), so the tables agree with PyTorch to the last bits. */
void dl_rope_table(float *cos_t, float *sin_t, int max_T, int HS, float theta) {
    int half = HS / 2;
    for (int i = 0; i < half; i++) {
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)HS);
        for (int p = 0; p < max_T; p++) {
            float a = (float)p * inv_freq;
            cos_t[(size_t)p * half + i] = cosf(a);
            sin_t[(size_t)p * half + i] = sinf(a);
        }
    }
}

// x rows are (B,T) with NH heads of HS each, rows `stride` floats apart; sign = +1 forward,
// -1 for the inverse rotation (the backward: a rotation's transpose is its inverse)
static void rope_apply(float *x, int B, int T, int NH, int HS, size_t stride, int pos0, const float *cos_t,
                       const float *sin_t, float sign) {
    int half = HS / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *row = x + ((size_t)b * T + t) * stride;
            const float *cs = cos_t + (size_t)(pos0 + t) * half, *sn = sin_t + (size_t)(pos0 + t) * half;
            for (int h = 0; h < NH; h++) {
                float *v = row + (size_t)h * HS;
#pragma omp simd
                for (int i = 0; i < half; i++) {
                    float x1 = v[i], x2 = v[i + half], s = sign * sn[i];
                    v[i] = x1 * cs[i] - x2 * s;
                    v[i + half] = x2 * cs[i] + x1 * s;
                }
            }
        }
}

void dl_rope_forward(float *x, int B, int T, int NH, int HS, size_t stride, int pos0, const float *cos_t,
                     const float *sin_t) {
    rope_apply(x, B, T, NH, HS, stride, pos0, cos_t, sin_t, 1.0f);
}

void dl_rope_backward(float *dx, int B, int T, int NH, int HS, size_t stride, int pos0, const float *cos_t,
                      const float *sin_t) {
    rope_apply(dx, B, T, NH, HS, stride, pos0, cos_t, sin_t, -1.0f);
}

void dl_rope_forward_ref(float *x, int B, int T, int NH, int HS, size_t stride, int pos0, float theta) {
    int half = HS / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                float *v = x + ((size_t)b * T + t) * stride + (size_t)h * HS;
                for (int i = 0; i < half; i++) {
                    double a = (double)(pos0 + t) * pow((double)theta, -2.0 * i / HS);
                    double x1 = v[i], x2 = v[i + half];
                    v[i] = (float)(x1 * cos(a) - x2 * sin(a));
                    v[i + half] = (float)(x2 * cos(a) + x1 * sin(a));
                }
            }
}
