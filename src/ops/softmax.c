/* softmax and cross-entropy, streaming over rows: one (N,V) buffer, optionally in place. */
#include "ops.h"
#include <math.h>

static float row_max(const float *x, int V) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// inp, out are (N,V)
void dl_softmax_forward(float *out, const float *inp, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * V;
        float *y = out + (size_t)n * V;
        float m = row_max(x, V);
        float inv = 1.0f / dl_exp_sum(y, x, V, m, 1.0f);
#pragma omp simd
        for (int i = 0; i < V; i++) y[i] *= inv;
    }
}

static int counted(int32_t target, int V) { return target >= 0 && target < V; }

// logits (N,V), targets (N); losses (N), lse (N)
int dl_crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N,
                            int V) {
    int count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float m = row_max(x, V);
        float l = m + logf(dl_exp_sum(NULL, x, V, m, 1.0f));
        if (lse) lse[n] = l;
        if (counted(targets[n], V)) {
            losses[n] = l - x[targets[n]];
            count++;
        } else {
            losses[n] = 0.0f;
        }
    }
    return count;
}

void dl_crossentropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                              int N, int V, float scale) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        if (!counted(targets[n], V)) {
            for (int i = 0; i < V; i++) d[i] = 0.0f;
            continue;
        }
        dl_exp_sum(d, x, V, lse[n], scale); // softmax = exp(x - logsumexp)
        d[targets[n]] -= scale;
    }
}
