/* Sampled continuations of corpus prompts, private to src/distill. */
#ifndef DISTIL_DISTILL_ROLLOUT_H
#define DISTIL_DISTILL_ROLLOUT_H

#include "model/model.h"
#include "model/sampler.h"

typedef struct dl_rollout {
    const dl_model *model; /* the writer: teacher (seq-kd) or student (on-policy) */
    dl_kv_cache *kv;       /* for model, at least T positions */
    float *logits;         /* model's V floats of scratch */
    int V;                 /* sample among ids [0, V): the student's vocabulary */
    int P;                 /* prompt tokens kept, 1..T */
    dl_sampler_cfg sampler;
} dl_rollout;

/* inputs (B,T): corpus windows. out_in, out_tg (B,T): prompt + samples, with targets -1 where the
 * next token is still the prompt. seq: T+1 ints of scratch. Draws from rng in row order. */
int dl_rollout_batch(const dl_rollout *g, const int32_t *inputs, int B, int T, dl_rng *rng, int32_t *seq,
                     int32_t *out_in, int32_t *out_tg, dl_error *err);

#endif
