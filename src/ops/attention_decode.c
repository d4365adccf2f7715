/* Attention of one query row over a KV cache: the inner loop of KV-cache decoding, shared by
 * single-sequence and batched decoding. */
#include "ops.h"
#include <math.h>
#include <string.h>

void dl_attention_decode_row(float *out, const float *q, const float *kc, const float *vc, int p, int NKV, int HS,
                             int kh, float *scores) {
    size_t row = (size_t)NKV * HS;
    float scale = 1.0f / sqrtf((float)HS), mx = -INFINITY;
    for (int j = 0; j <= p; j++) {
        const float *k = kc + (size_t)j * row + (size_t)kh * HS;
        float s = 0.0f;
        for (int i = 0; i < HS; i++) s += q[i] * k[i];
        scores[j] = s * scale;
        if (scores[j] > mx) mx = scores[j];
    }
    float sum = 0.0f;
    for (int j = 0; j <= p; j++) sum += scores[j] = expf(scores[j] - mx);
    memset(out, 0, (size_t)HS * sizeof(float));
    for (int j = 0; j <= p; j++) {
        const float *v = vc + (size_t)j * row + (size_t)kh * HS;
        float w = scores[j] / sum;
        for (int i = 0; i < HS; i++) out[i] += w * v[i];
    }
}
