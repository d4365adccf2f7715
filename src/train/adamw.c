/* AdamW over the flat parameter buffer, step for step what torch.optim.AdamW (single-tensor
 * path) computes: the scalars in double, the per-element updates in float. */
#include "adamw.h"
#include <math.h>

static void adamw_view(float *p, const float *g, float *m, float *v, size_t n, const dl_adamw_cfg *cfg,
                       float decay, float step_size, float bc2_sqrt) {
    float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    float a1 = (float)(1.0 - (double)b1), a2 = (float)(1.0 - (double)b2);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * decay;
        float mi = m[i] * b1 + g[i] * a1;
        float vi = v[i] * b2 + a2 * g[i] * g[i];
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

void dl_adamw_step(const dl_layout *lay, float *params, const float *grads, float *m, float *v,
                   const dl_adamw_cfg *cfg, float lr, long t) {
    double bc1 = 1.0 - pow((double)cfg->beta1, (double)t);
    double bc2 = 1.0 - pow((double)cfg->beta2, (double)t);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int i = 0; i < lay->n_views; i++) {
        const dl_tensor_view *w = &lay->views[i];
        // decoupled weight decay on matrices and embeddings only, as the usual param groups do
        float decay = w->ndim == 2 ? (float)(1.0 - (double)lr * cfg->weight_decay) : 1.0f;
        size_t o = w->offset;
        adamw_view(params + o, grads + o, m + o, v + o, w->numel, cfg, decay, step_size, bc2_sqrt);
    }
}

/* Fixed chunks summed in order: the norm has the same bits whatever the thread count. */
#define NORM_CHUNKS 64
float dl_clip_grad_norm(float *grads, size_t n, float max_norm) {
    double part[NORM_CHUNKS];
    size_t per = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        size_t lo = (size_t)c * per, hi = lo + per < n ? lo + per : n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (size_t i = lo; i < hi; i++) s += (double)grads[i] * grads[i];
        part[c] = s;
    }
    double sum = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++) sum += part[c];
    float norm = (float)sqrt(sum);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        float coef = (float)((double)max_norm / ((double)norm + 1e-6));
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= coef;
    }
    return norm;
}
