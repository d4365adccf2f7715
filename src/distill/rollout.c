/* Generated batches for sequence-level KD (the teacher writes) and on-policy KD (the student
 * writes): each window keeps its first P corpus tokens as the prompt and the rest is sampled. */
#include "rollout.h"
#include <string.h>

// one row: seq (T+1) = prompt (P) + sampled tokens, fed through the KV cache
static int sample_row(const dl_rollout *g, int32_t *seq, int T, dl_rng *rng, dl_error *err) {
    dl_kv_cache_reset(g->kv);
    if (dl_model_decode(g->model, g->kv, seq, g->P, g->logits, 0, err)) return -1;
    for (int i = g->P; i <= T; i++) {
        int id = dl_sample(g->logits, g->V, &g->sampler, rng);
        if (id < 0) return dl_fail(err, "generation: no finite logit to sample from (diverged weights?)");
        seq[i] = id;
        if (i < T && dl_model_decode(g->model, g->kv, &seq[i], 1, g->logits, 0, err)) return -1;
    }
    return 0;
}

int dl_rollout_batch(const dl_rollout *g, const int32_t *inputs, int B, int T, dl_rng *rng, int32_t *seq,
                     int32_t *out_in, int32_t *out_tg, dl_error *err) {
    for (int b = 0; b < B; b++) {
        memcpy(seq, inputs + (size_t)b * T, (size_t)g->P * sizeof *seq);
        if (sample_row(g, seq, T, rng, err)) return -1;
        // position t predicts token t+1: only generated tokens (t+1 >= P) are targets
        for (int t = 0; t < T; t++) {
            out_in[(size_t)b * T + t] = seq[t];
            out_tg[(size_t)b * T + t] = t + 1 >= g->P ? seq[t + 1] : -1;
        }
    }
    return 0;
}
