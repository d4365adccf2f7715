/* AdamW over the flat parameter buffer, with PyTorch's torch.optim.AdamW semantics:
 *   p -= lr * wd * p   (decoupled decay, only for views with ndim == 2: matrices and embeddings)
 *   m = b1*m + (1-b1)*g ; v = b2*v + (1-b2)*g^2
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * t counts from 1. m and v have lay->total floats each, keyed by the same views as params. */
#ifndef DISTIL_ADAMW_H
#define DISTIL_ADAMW_H

#include "model/model.h"

typedef struct dl_adamw_cfg {
    float beta1, beta2, eps, weight_decay;
} dl_adamw_cfg;

void dl_adamw_step(const dl_layout *lay, float *params, const float *grads, float *m, float *v,
                   const dl_adamw_cfg *cfg, float lr, long t);

/* Global L2 norm of grads; when max_norm > 0 and the norm exceeds it, scales grads by
 * max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. */
float dl_clip_grad_norm(float *grads, size_t n, float max_norm);

#endif
