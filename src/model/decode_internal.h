/* Private to src/model: the pieces single-sequence (decode.c) and batched (decode_batch.c)
 * decoding share. */
#ifndef DISTIL_DECODE_INTERNAL_H
#define DISTIL_DECODE_INTERNAL_H

#include "model.h"

/* out (n,OC) = (or +=, with accumulate) inp (n,IC) @ w^T + bias, w (OC,IC), bias (OC) or NULL:
 * sgemv for one row, a kernel that reads the weights once for a few rows, sgemm above that. */
void dl_decode_linear(float *out, const float *inp, const float *w, const float *bias, int n, int IC, int OC,
                      int accumulate);

/* The parameters of bias view `view`, or NULL when it is -1 (the config has no such bias). */
static inline const float *dl_bias_view(const dl_model *m, int view) {
    return view >= 0 ? m->params + m->lay.views[view].offset : NULL;
}

/* The part of layer lv after attention, for n rows: x += atty Wo^T (+ bo), then x += the SwiGLU
 * MLP of rmsnorm(x). x, atty, ln (n,C); gateup (n,2F) and act (n,F) are scratch. */
void dl_decode_layer_tail(const dl_model *m, const dl_layer_views *lv, float *x, const float *atty, float *ln,
                          float *gateup, float *act, int n);

#endif
