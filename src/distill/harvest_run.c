/* A black-box run: the harvest read and checked, its data folder written, and the trainer hooks'
 * harvest halves (the loss of a batch, the validation). Rules in distill.h and harvest_data.h. */
#include "eval/eval.h"
#include "kdrun.h"
#include "model/sampler.h"
#include "train/dist.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The student's tokenizer: --tokenizer, else the student folder's; both given must agree. */
static int student_tokenizer(const dl_distill_opts *o, char *path, size_t n, dl_error *err) {
    char own[4096] = "";
    const char *s = o->train.config;
    if (!s) return dl_fail(err, "distill: --student is required");
    if (dl_is_dir(s) && dl_path_join(own, sizeof own, s, "tokenizer.json", err)) return -1;
    int has_own = own[0] && dl_path_exists(own);
    const char *t = o->tokenizer ? o->tokenizer : has_own ? own : NULL;
    if (!t)
        return dl_fail(err, "distill: the student %s has no tokenizer.json: pass --tokenizer (for a teacher's "
                            "harvest, the teacher's tokenizer.json aligns every position)", s);
    if ((size_t)snprintf(path, n, "%s", t) >= n) return dl_fail(err, "distill: --tokenizer path is too long");
    if (!dl_path_exists(path)) return dl_fail(err, "distill: tokenizer %s does not exist", path);
    if (o->tokenizer && has_own) {
        uint64_t a, b;
        if (dl_tok_fingerprint_file(own, &a, NULL, err) || dl_tok_fingerprint_file(path, &b, NULL, err)) return -1;
        if (a != b) return dl_fail(err, "the student %s has another tokenizer than --tokenizer %s", s, path);
    }
    return 0;
}

static void log_counts(const kd_run *k) {
    const hd_counts *c = &k->harvest->n;
    dl_log("harvest %s: %ld records (%ld with completions: %ld train, %ld held out), %ld target tokens, %ld with "
           "top-k targets (up to %d), %ld unaligned, %ld of %ld alternatives unmapped, %ld records as the teacher's "
           "own tokens, %ld truncated to seq-len + 1",
           k->o->harvest, c->records, c->used, c->train, c->val, c->tokens, c->topk, k->harvest->K, c->unaligned,
           c->unmapped, c->alts, c->direct, c->truncated);
}

static int build_set(kd_run *k, const dl_config *s, const char *tok_path, dl_error *err) {
    dl_tokenizer *tok = dl_tok_load(tok_path, err);
    if (!tok) return dl_fail_ctx(err, "%s", tok_path);
    int rc = 0, eot = dl_tok_eot_id(tok);
    if (dl_tok_vocab_size(tok) > s->V)
        rc = dl_fail(err, "the tokenizer %s has %d ids but the student's vocab_size is %d", tok_path,
                     dl_tok_vocab_size(tok), s->V);
    hd_vocab v = {tok, s->V, eot, s->bos_id >= 0 && s->bos_id < s->V ? s->bos_id : eot};
    if (rc == 0 && !(k->harvest = calloc(1, sizeof *k->harvest))) rc = dl_fail(err, "out of memory");
    if (rc == 0) rc = hd_set_build(k->harvest, k->o->harvest, &v, k->T, err);
    dl_tok_free(tok);
    return rc;
}

/* RUN/harvest/: under mpirun every rank built the same set, rank 0 alone writes it and the
 * others wait (the all-reduce of rank 0's outcome is the barrier), so no rank reads a file
 * that is being written, and all of them stop when rank 0 could not write. */
static int write_folder(kd_run *k, int V, const char *tok_path, dl_error *err) {
    int rc = dl_dist_rank() == 0 ? hd_set_write(k->harvest, k->harvest_dir, V, tok_path, err) : 0;
    dl_dist_set_timeout(k->o->train.dist_timeout);
    if (dl_dist_max_int(rc != 0) && rc == 0) return dl_fail(err, "rank 0 could not write %s", k->harvest_dir);
    return rc;
}

static int alloc_rows(kd_run *k, dl_error *err) {
    size_t n = (size_t)k->B * k->T;
    k->hv_target = malloc(n * sizeof *k->hv_target);
    k->hv_nalt = malloc(n);
    k->hv_at = malloc(n * sizeof *k->hv_at);
    k->hv_rest = malloc(n * sizeof *k->hv_rest);
    return k->hv_target && k->hv_nalt && k->hv_at && k->hv_rest ? 0 : dl_fail(err, "out of memory");
}

int kd_harvest_setup(kd_run *k, dl_distill_opts *run, dl_error *err) {
    const dl_distill_opts *o = k->o;
    char tok_path[4096];
    dl_config s;
    if (!o->train.out) return dl_fail(err, "distill: --out is required");
    if (student_tokenizer(o, tok_path, sizeof tok_path, err) || dl_config_load_any(o->train.config, &s, err)) return -1;
    k->student_weights = dl_is_dir(o->train.config) && dl_model_has_weights(o->train.config);
    k->B = o->train.batch, k->T = o->train.seq_len, k->V = s.V;
    if (k->B <= 0 || k->T <= 0) return dl_fail(err, "distill: batch and seq-len must be positive");
    if (k->T > s.max_T) /* before the harvest is laid out in windows of T */
        return dl_fail(err, "seq-len %d exceeds the student's max_position_embeddings %d", k->T, s.max_T);
    if (build_set(k, &s, tok_path, err)) return -1;
    if (dl_dist_rank() == 0) log_counts(k); /* every rank counted the same */
    if (o->train.eval_interval > 0 && k->harvest->n.val == 0)
        return dl_fail(err, "%s has one record with a completion: none is left to hold out for validation (pass "
                            "--eval-interval 0, or harvest more)", o->harvest);
    if (dl_path_join(k->harvest_dir, sizeof k->harvest_dir, o->train.out, "harvest", err) ||
        write_folder(k, s.V, tok_path, err))
        return -1;
    run->train.data = k->harvest_dir;
    return alloc_rows(k, err);
}

void kd_harvest_free(kd_run *k) {
    if (k->harvest) hd_set_free(k->harvest);
    free(k->harvest);
    free(k->hv_target), free(k->hv_nalt), free(k->hv_at), free(k->hv_rest);
    hd_work_free(&k->hv_work);
}

/* The sum of n over all ranks (n itself for one process). */
static long global_count(long n) {
    int w = dl_dist_world();
    return w == 1 ? n : llround(dl_dist_mean_double((double)n) * w);
}

/* The factor that makes the trainer's equal-weight mean over ranks of this rank's mean over its
 * `local` positions the mean over all `global` positions: world * local / global. */
static double rank_weight(long local, long global) {
    return global > 0 ? (double)dl_dist_world() * (double)local / (double)global : 0.0;
}

/* The batch's rows: the labels of each window, read where the loader says it starts. Under
 * mpirun the ranks' rows hold different numbers of targets (completions differ in length), so
 * each rank's mean is weighted by its share of the global batch's targets (the counts summed
 * over ranks before the loss, and after it those of the kd and ce means): the loss and gradient
 * are those of one process with the whole global batch. With one process every weight is 1. */
int kd_harvest_loss(kd_run *k, const dl_train_batch *b, dl_kd_stats *st, dl_error *err) {
    const hd_labels *L = &k->harvest->train;
    for (int r = 0; r < b->B; r++) {
        size_t g = (size_t)b->starts[r], o = (size_t)r * b->T;
        if (g + (size_t)b->T > L->n_pos) return dl_fail(err, "window at token %zu lies past the harvest", g);
        memcpy(k->hv_target + o, L->target + g, (size_t)b->T * sizeof *k->hv_target);
        memcpy(k->hv_nalt + o, L->n_alt + g, (size_t)b->T);
        memcpy(k->hv_at + o, L->alt_at + g, (size_t)b->T * sizeof *k->hv_at);
        memcpy(k->hv_rest + o, L->rest + g, (size_t)b->T * sizeof *k->hv_rest);
    }
    int N = b->B * b->T;
    long rows = 0;
    for (int i = 0; i < N; i++) rows += k->hv_target[i] >= 0 && k->hv_target[i] < k->V;
    long all = global_count(rows);
    double w = rank_weight(rows, all);
    hd_loss h;
    if (hd_rows_loss(&k->o->kd, b->model->logits, N, k->V, k->hv_target, k->hv_nalt, k->hv_at, L->ids, L->logp,
                     k->hv_rest, (float)(b->grad_scale * w), &k->hv_work, &h, err))
        return -1;
    long topk = global_count(h.topk_rows), ce = global_count(h.ce_rows);
    k->hv_rows += all, k->hv_topk += topk; /* the same on every rank */
    *st = (dl_kd_stats){(float)(h.loss * w), (float)(h.kd * rank_weight(h.topk_rows, topk)),
                        (float)(h.ce * rank_weight(h.ce_rows, ce)), h.rows};
    return 0;
}

/* Held-out records B at a time: cross-entropy over completion tokens, and the student's argmax
 * against the teacher's where the harvest tells it. */
int kd_harvest_eval(kd_run *k, dl_model *m, int B, int T, uint64_t max_tokens, dl_eval_result *res, char *extra,
                    size_t n, dl_error *err) {
    const hd_labels *L = &k->harvest->val;
    size_t W = L->n_pos / (size_t)T;
    double sum = 0, t0 = dl_now();
    uint64_t scored = 0, known = 0, agree = 0;
    memset(res, 0, sizeof *res);
    for (size_t w = 0; w < W && (max_tokens == 0 || scored < max_tokens); w += (size_t)B) {
        int rows = W - w < (size_t)B ? (int)(W - w) : B;
        const int32_t *tg = L->target + w * T, *top1 = L->top1 + w * T;
        int count = 0;
        for (int i = 0; i < rows * T; i++) count += tg[i] >= 0;
        float loss = dl_model_forward(m, L->tokens + w * T, tg, rows, T);
        if (count > 0) sum += (double)loss * count, scored += (uint64_t)count; // the forward's mean is over them
        for (int i = 0; i < rows * T; i++)
            if (tg[i] >= 0 && top1[i] >= 0) known++, agree += dl_argmax(m->logits + (size_t)i * k->V, k->V) == top1[i];
    }
    res->seconds = dl_now() - t0;
    res->tokens = scored;
    res->mean_loss = scored ? sum / (double)scored : 0;
    res->perplexity = exp(res->mean_loss);
    res->tokens_per_s = res->seconds > 0 ? (double)scored / res->seconds : 0;
    snprintf(extra, n, ",\"val_agreement\":%.9g,\"val_agreement_positions\":%llu",
             known ? (double)agree / (double)known : 0.0, (unsigned long long)known);
    if (!isfinite(res->mean_loss))
        return dl_fail(err, "eval: the loss is not finite (%g): the model's weights may have diverged", res->mean_loss);
    return 0;
}
