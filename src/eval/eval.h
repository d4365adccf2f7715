/* eval: loss, perplexity and speed of a model on a token file. */
#ifndef DISTIL_EVAL_H
#define DISTIL_EVAL_H

#include "data/data.h"
#include "model/model.h"

typedef struct dl_eval_result {
    double mean_loss;  /* mean next-token cross-entropy (nats) */
    double perplexity; /* exp(mean_loss) */
    double tokens_per_s;
    uint64_t tokens;   /* positions scored */
    double seconds;
} dl_eval_result;

/* Scores consecutive non-overlapping windows of T+1 tokens from the start of the file, B at a
 * time, at most max_tokens positions (0: the whole file). The model's training buffers are
 * (re)allocated for (B,T) if needed. */
int dl_eval_tokens(dl_model *m, const dl_tokfile *f, int B, int T, uint64_t max_tokens, dl_eval_result *res,
                   dl_error *err);

#endif
