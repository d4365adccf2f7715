/* sampler: picks the next token from logits with temperature, top-k and top-p (nucleus),
 * reproducibly from a seeded dl_rng. Temperature 0 (or top-k 1) is greedy: the argmax. */
#ifndef DISTIL_SAMPLER_H
#define DISTIL_SAMPLER_H

#include "base/base.h"

typedef struct dl_sampler_cfg {
    float temperature; /* >= 0; 0 = greedy */
    int top_k;         /* keep the k most likely tokens; 0 = all */
    float top_p;       /* in (0, 1]: keep the smallest most-likely set whose mass >= top_p; 1 = all */
} dl_sampler_cfg;

/* temperature 1, no top-k, no top-p */
dl_sampler_cfg dl_sampler_default(void);
/* Fails with a message naming the bad setting. */
int dl_sampler_check(const dl_sampler_cfg *cfg, dl_error *err);

/* Returns a token id in [0, V), or -1 when no logit is finite or memory runs out.
 * Order as in Hugging Face: logits / temperature, softmax, top-k, then top-p on the
 * renormalised top-k probabilities. Ties between equal probabilities go to the lower id. */
int dl_sample(const float *logits, int V, const dl_sampler_cfg *cfg, dl_rng *rng);
/* Index of the largest finite logit (the lowest such index on ties); -1 if none is finite. */
int dl_argmax(const float *logits, int V);

#endif
