/* detect model: the reading-mode radioactivity test. A model trained on watermarked text leans
 * towards the green tokens of the contexts it saw; reading a text, its top-1 guesses of the next
 * token are then green more often than gamma. */
#include "detect_internal.h"
#include "model/sampler.h"
#include <stdlib.h>
#include <string.h>

/* logits held by one forward: windows are read this many floats' worth at a time */
#define LOGIT_BUDGET ((size_t)1 << 24)

/* window w reads ids[w T .. w T + T) and its position t guesses ids[w T + t + 1] */
static void fill_window(const int32_t *ids, size_t n, size_t w, int T, int32_t *in) {
    size_t start = w * (size_t)T;
    for (int t = 0; t < T; t++) in[t] = start + (size_t)t < n ? ids[start + (size_t)t] : 0;
}

static void take_guesses(const dl_model *m, size_t n, size_t w, int b, int T, int32_t *pred) {
    int V = m->cfg.V;
    for (int t = 0; t < T; t++) {
        size_t at = w * (size_t)T + (size_t)t + 1;
        if (at >= n) break;
        pred[at] = dl_argmax(m->logits + ((size_t)b * T + (size_t)t) * V, V);
    }
}

int dl_detect_predict(dl_model *m, const int32_t *ids, size_t n, int B, int T, int32_t *pred, dl_error *err) {
    if (B < 1 || T < 1 || T > m->cfg.max_T)
        return dl_fail(err, "detect: batch %d and window %d must be >= 1, the window at most the model's context %d", B, T,
                       m->cfg.max_T);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.V)
            return dl_fail(err, "detect: token %d at %zu is outside the model's vocabulary (%d)", ids[i], i, m->cfg.V);
    if (n == 0) return 0;
    pred[0] = -1;
    size_t windows = (n - 1 + (size_t)T - 1) / (size_t)T;
    if (windows == 0) return 0;
    if ((!m->acts || m->B < B || m->T < T) && dl_model_alloc_train(m, B, T, err)) return -1;
    int32_t *in = malloc((size_t)B * T * sizeof *in);
    if (!in) return dl_fail(err, "detect: out of memory");
    dl_progress prog;
    dl_progress_start(&prog, "detect model", (long)windows);
    for (size_t w = 0; w < windows; w += (size_t)B) {
        int rows = windows - w < (size_t)B ? (int)(windows - w) : B;
        for (int b = 0; b < rows; b++) fill_window(ids, n, w + (size_t)b, T, in + (size_t)b * T);
        dl_model_forward(m, in, NULL, rows, T);
        for (int b = 0; b < rows; b++) take_guesses(m, n, w + (size_t)b, b, T, pred);
        dl_progress_update(&prog, (long)(w + (size_t)rows), NULL);
    }
    dl_progress_finish(&prog);
    free(in);
    return 0;
}

/* The suspect's tokenizer must be the watermark's: the same bytes for every id. */
static int same_tokenizer(const dl_tokenizer *a, const dl_tokenizer *b, const char *pa, const char *pb, dl_error *err) {
    int V = dl_tok_vocab_size(a);
    if (V != dl_tok_vocab_size(b))
        return dl_fail(err, "the suspect's tokenizer %s (%d ids) is not the watermark's tokenizer %s (%d ids)", pa, V, pb,
                       dl_tok_vocab_size(b));
    for (int id = 0; id < V; id++) {
        size_t na = 0, nb = 0;
        const char *sa = dl_tok_token(a, id, &na), *sb = dl_tok_token(b, id, &nb);
        if ((sa == NULL) != (sb == NULL) || na != nb || (sa && memcmp(sa, sb, na)))
            return dl_fail(err, "the suspect's tokenizer %s differs from the watermark's tokenizer %s at id %d", pa, pb, id);
    }
    return 0;
}

static int load_suspect(const dl_detect_cfg *cfg, dl_model *m, dl_tokenizer **tok, char *tok_path, size_t n,
                        dl_error *err) {
    if (!cfg->suspect) return dl_fail(err, "no suspect model folder given");
    if (!dl_is_dir(cfg->suspect)) return dl_fail(err, "suspect %s is not a folder", cfg->suspect);
    if (dl_model_load(m, cfg->suspect, err)) return dl_fail_ctx(err, "suspect %s is not a model folder", cfg->suspect);
    if (dl_path_join(tok_path, n, cfg->suspect, "tokenizer.json", err)) return -1;
    if (!(*tok = dl_tok_load(tok_path, err))) return dl_fail_ctx(err, "suspect %s has no usable tokenizer", cfg->suspect);
    if (!cfg->tokenizer) return 0;
    dl_tokenizer *want = dl_tok_load(cfg->tokenizer, err);
    int rc = want ? same_tokenizer(*tok, want, tok_path, cfg->tokenizer, err) : -1;
    dl_tok_free(want);
    return rc;
}

/* windows per forward: what LOGIT_BUDGET allows, at most the windows there are */
static int pick_batch(const dl_detect_cfg *cfg, const dl_model *m, size_t n, int T) {
    if (cfg->batch > 0) return cfg->batch;
    size_t per = (size_t)T * (size_t)m->cfg.V, windows = n > 1 ? (n - 2) / (size_t)T + 1 : 1;
    size_t B = per < LOGIT_BUDGET ? LOGIT_BUDGET / per : 1;
    if (B > windows) B = windows;
    return B > 64 ? 64 : (int)B;
}

/* ids of the text, the suspect's guesses, and the windows it read */
static int read_and_guess(const dl_detect_cfg *cfg, dl_model *m, const dl_tokenizer *tok, dl_ivec *ids, int32_t **pred,
                          long *windows, dl_error *err) {
    if (detect_read_ids(cfg->input, "text", tok, ids, err)) return -1;
    if (!(*pred = malloc((ids->len ? ids->len : 1) * sizeof **pred))) return dl_fail(err, "out of memory");
    int T = ids->len > 1 && ids->len - 1 < (size_t)m->cfg.max_T ? (int)ids->len - 1 : m->cfg.max_T;
    *windows = ids->len > 1 ? (long)((ids->len - 2) / (size_t)T) + 1 : 0;
    return dl_detect_predict(m, ids->data, ids->len, pick_batch(cfg, m, ids->len, T), T, *pred, err);
}

int dl_detect_model(const dl_detect_cfg *cfg, dl_detect_result *res, dl_error *err) {
    *res = (dl_detect_result){.mode = DL_DETECT_MODEL};
    dl_wm wm;
    if (detect_load_wm(cfg, &wm, err)) return -1;
    dl_model m = {0};
    dl_tokenizer *tok = NULL;
    char tok_path[4096];
    dl_ivec ids = {0};
    int32_t *pred = NULL;
    dl_wm_scorer *s = NULL;
    int rc = load_suspect(cfg, &m, &tok, tok_path, sizeof tok_path, err);
    if (rc == 0) {
        detect_note_tokenizer(res, tok_path, dl_tok_vocab_size(tok));
        rc = read_and_guess(cfg, &m, tok, &ids, &pred, &res->sequences, err);
    }
    if (rc == 0 && !(s = dl_wm_scorer_new(&wm))) rc = dl_fail(err, "out of memory");
    if (rc == 0) rc = dl_wm_score(s, ids.data, pred, ids.len, cfg->unmarked_text ? NULL : ids.data, ids.len, err);
    if (rc == 0) dl_wm_scorer_stats(s, &res->st);
    dl_wm_scorer_free(s);
    free(pred);
    dl_ivec_free(&ids);
    dl_tok_free(tok);
    dl_model_free(&m);
    dl_wm_wipe(&wm);
    return rc;
}
