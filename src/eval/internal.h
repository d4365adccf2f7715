/* Shared by eval.c and teacher.c, private to src/eval. */
#ifndef DISTIL_EVAL_INTERNAL_H
#define DISTIL_EVAL_INTERNAL_H

#include "eval.h"

/* B, T positive, T within the model's context, the file's ids within its vocabulary, >= 2 tokens. */
int dl_eval_check_args(const dl_model *m, const dl_tokfile *f, int B, int T, dl_error *err);
/* Fills one row of inputs/targets (T each) with window w of positions 0..P-1 (tokens w*T ..
 * w*T+T); padding past P gets input 0 and target -1. Returns the positions it scores. */
int dl_eval_fill_window(const dl_tokfile *f, uint64_t w, int T, uint64_t P, int32_t *in, int32_t *tg);

#endif
