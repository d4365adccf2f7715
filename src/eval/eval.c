/* Loss and perplexity over a token file with the training forward.
 *
 * Positions 0 .. P-1 are scored (position i predicts token i+1 from tokens 0..i of its window),
 * cut into windows of T positions; window w reads tokens [w*T, w*T+T]. A short last window is
 * padded, its padding targets set to -1 so the forward leaves them out of the loss. */
#include "eval.h"
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int dl_eval_check_args(const dl_model *m, const dl_tokfile *f, int B, int T, dl_error *err) {
    if (B <= 0 || T <= 0) return dl_fail(err, "eval: batch %d and sequence length %d must be positive", B, T);
    if (T > m->cfg.max_T)
        return dl_fail(err, "eval: sequence length %d exceeds the model's max_position_embeddings %d", T, m->cfg.max_T);
    if (f->vocab_size > (uint32_t)m->cfg.V)
        return dl_fail(err, "eval: the token file's vocabulary (%u) is larger than the model's (%d): "
                            "was it made with another tokenizer?", f->vocab_size, m->cfg.V);
    if (f->n_tokens < 2) return dl_fail(err, "eval: the token file holds %llu tokens, nothing to score",
                                        (unsigned long long)f->n_tokens);
    return 0;
}

int dl_eval_fill_window(const dl_tokfile *f, uint64_t w, int T, uint64_t P, int32_t *in, int32_t *tg) {
    uint64_t start = w * (uint64_t)T;
    int n = P - start < (uint64_t)T ? (int)(P - start) : T;
    for (int t = 0; t < T; t++) {
        in[t] = t < n ? dl_tokfile_get(f, start + t) : 0;
        tg[t] = t < n ? dl_tokfile_get(f, start + t + 1) : -1;
    }
    return n;
}

int dl_eval_tokens(dl_model *m, const dl_tokfile *f, int B, int T, uint64_t max_tokens, dl_eval_result *res,
                   dl_error *err) {
    memset(res, 0, sizeof *res);
    if (dl_eval_check_args(m, f, B, T, err)) return -1;
    if (!m->acts || m->B < B || m->T < T) {
        if (dl_model_alloc_train(m, B, T, err)) return -1;
    }
    uint64_t P = f->n_tokens - 1;
    if (max_tokens > 0 && max_tokens < P) P = max_tokens;
    uint64_t n_windows = (P + (uint64_t)T - 1) / (uint64_t)T;
    int32_t *in = malloc((size_t)B * T * sizeof *in), *tg = malloc((size_t)B * T * sizeof *tg);
    if (!in || !tg) {
        free(in), free(tg);
        return dl_fail(err, "eval: out of memory");
    }
    dl_progress prog;
    dl_progress_start(&prog, "eval", (long)n_windows);
    double sum = 0, t0 = dl_now();
    uint64_t scored = 0;
    for (uint64_t w = 0; w < n_windows; w += (uint64_t)B) {
        int rows = n_windows - w < (uint64_t)B ? (int)(n_windows - w) : B, count = 0;
        for (int b = 0; b < rows; b++)
            count += dl_eval_fill_window(f, w + (uint64_t)b, T, P, in + (size_t)b * T, tg + (size_t)b * T);
        float loss = dl_model_forward(m, in, tg, rows, T);
        sum += (double)loss * count; /* the forward's mean is over the counted targets */
        scored += (uint64_t)count;
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", sum / (double)scored);
        dl_progress_update(&prog, (long)(w + (uint64_t)rows), extra);
    }
    dl_progress_finish(&prog);
    free(in);
    free(tg);
    res->seconds = dl_now() - t0;
    res->tokens = scored;
    res->mean_loss = sum / (double)scored;
    res->perplexity = exp(res->mean_loss);
    res->tokens_per_s = res->seconds > 0 ? (double)scored / res->seconds : 0;
    if (!isfinite(res->mean_loss))
        return dl_fail(err, "eval: the loss is not finite (%g): the model's weights may have diverged", res->mean_loss);
    return 0;
}
