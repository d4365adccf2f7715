/* The training loop: updates, metrics, evaluation, checkpoints, the final model folder. */
#include "checkpoint.h"
#include "dist.h"
#include "eval/eval.h"
#include "run.h"
#include "stop.h"
#include "train/adamw.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct loop {
    dl_run *r;
    dl_progress prog;
    double t_session;          /* dl_now() when this session started */
    double tok_since_log, sec_since_log;
    long last_ckpt;            /* step of the newest checkpoint written or loaded */
} loop;

static double elapsed(const loop *lp) { return lp->r->elapsed_before + (dl_now() - lp->t_session); }

/* A log line must not land on top of the progress line of a terminal. */
static void clear_progress(loop *lp) {
    if (lp->prog.tty && lp->prog.t_last_print > 0 && dl_log_get_level() >= DL_LOG_INFO) fputs("\r\033[K", stderr);
}

/* One micro-batch: the hook's objective, or next-token cross-entropy. */
static int micro_batch(dl_run *r, double *loss, dl_error *err) {
    const dl_train_opts *o = r->o;
    float scale = 1.0f / (float)o->grad_accum;
    dl_loader_next_starts(&r->loader, r->inputs, r->targets, r->starts);
    if (r->hooks->micro_batch) {
        dl_train_batch b = {&r->model, &r->rng, r->inputs, r->targets, r->starts, o->batch, o->seq_len, scale};
        return r->hooks->micro_batch(r->hooks->user, &b, loss, err);
    }
    *loss = dl_model_forward(&r->model, r->inputs, r->targets, o->batch, o->seq_len);
    dl_model_backward(&r->model, scale);
    return 0;
}

/* One update: grad_accum micro-batches, clipping, AdamW. *loss gets the mean micro-batch loss. */
static int update(dl_run *r, double lr, double *loss, float *grad_norm, dl_error *err) {
    const dl_train_opts *o = r->o;
    dl_model *m = &r->model;
    dl_model_zero_grad(m);
    double sum = 0;
    for (int a = 0; a < o->grad_accum; a++) {
        double l;
        if (micro_batch(r, &l, err)) return dl_fail_ctx(err, "step %ld", r->step + 1);
        sum += l;
    }
    r->data_position = r->loader.batch_index;
    /* data parallel: every rank holds the mean gradient of its rows; their mean is the gradient
     * of the whole global batch (before clipping, so all ranks clip and step alike) */
    dl_dist_allreduce_mean(m->grads, m->lay.total);
    *grad_norm = dl_clip_grad_norm(m->grads, m->lay.total, (float)o->grad_clip);
    dl_adamw_cfg ac = {(float)o->beta1, (float)o->beta2, 1e-8f, (float)o->weight_decay};
    dl_adamw_step(&m->lay, m->params, m->grads, r->exp_avg, r->exp_avg_sq, &ac, (float)lr, r->step + 1);
    *loss = dl_dist_mean_double(sum / o->grad_accum);
    return 0;
}

static int log_step(loop *lp, double loss, double lr, float norm, dl_error *err) {
    dl_run *r = lp->r;
    double tps = lp->sec_since_log > 0 ? lp->tok_since_log / lp->sec_since_log : 0;
    char line[1024], extra[160], more[512] = "";
    snprintf(extra, sizeof extra, "loss %.4f lr %.2e tok/s %.0f", loss, lr, tps);
    dl_progress_update(&lp->prog, r->step, extra);
    if (r->hooks->step_metrics) r->hooks->step_metrics(r->hooks->user, more, sizeof more);
    if (r->step % r->o->log_interval != 0 && r->step != 1 && r->step != r->o->steps) return 0;
    if (dl_dist_rank() != 0) return 0; /* rank 0 alone writes the run folder */
    snprintf(line, sizeof line,
             "{\"step\":%ld,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.1f,\"elapsed_s\":%.3f%s}",
             r->step, loss, lr, (double)norm, tps, elapsed(lp), more);
    lp->tok_since_log = lp->sec_since_log = 0;
    return dl_metrics_write(&r->metrics, line, err);
}

static int evaluate(loop *lp, dl_error *err) {
    dl_run *r = lp->r;
    dl_eval_result res;
    /* eval's own progress line would interleave with training's; one val line below says it all */
    dl_log_level level = dl_log_get_level();
    if (level == DL_LOG_INFO) dl_log_set_level(DL_LOG_QUIET);
    char line[1024], more[512] = "";
    int B = r->o->batch, T = r->o->seq_len, rc;
    uint64_t max = (uint64_t)r->o->eval_tokens;
    if (r->hooks->evaluate)
        rc = r->hooks->evaluate(r->hooks->user, &r->model, &r->val, B, T, max, &res, more, sizeof more, err);
    else
        rc = dl_eval_tokens(&r->model, &r->val, B, T, max, &res, err);
    dl_log_set_level(level);
    if (rc) return dl_fail_ctx(err, "evaluation at step %ld", r->step);
    if (dl_dist_rank() != 0) return 0; /* every rank evaluated the same weights on the same data */
    snprintf(line, sizeof line, "{\"step\":%ld,\"val_loss\":%.9g,\"val_ppl\":%.9g%s}", r->step, res.mean_loss,
             res.perplexity, more);
    clear_progress(lp);
    dl_log("step %ld: val_loss %.4f val_ppl %.2f (%llu tokens)", r->step, res.mean_loss, res.perplexity,
           (unsigned long long)res.tokens);
    return dl_metrics_write(&r->metrics, line, err);
}

static int checkpoint(loop *lp, dl_error *err) {
    dl_run *r = lp->r;
    if (lp->last_ckpt == r->step) return 0;
    /* rank 0 writes weights every rank confirms it holds: a rank that died or drifted stops the
     * run here, and the previous checkpoint stays the newest */
    if (!dl_dist_same_bytes(r->model.params, r->model.lay.total * sizeof(float)))
        return dl_fail(err, "step %ld: the MPI processes hold different weights; no checkpoint written", r->step);
    if (dl_dist_rank() != 0) { /* rank 0 writes it; all ranks hold the same weights and moments */
        lp->last_ckpt = r->step;
        return 0;
    }
    json_t *state = dl_run_state_json(r, elapsed(lp));
    dl_ckpt c = {&r->model, r->exp_avg, r->exp_avg_sq, state, r->tokenizer};
    char dir[4096];
    /* the log must hold every line up to the checkpoint it will be cut back to on resume */
    int rc = dl_metrics_sync(&r->metrics, err);
    if (rc == 0) rc = dl_ckpt_write(r->o->out, r->step, &c, dir, sizeof dir, err);
    json_decref(state);
    if (rc == 0) rc = dl_ckpt_prune(r->o->out, 2, err);
    if (rc) return -1;
    lp->last_ckpt = r->step;
    clear_progress(lp);
    dl_log("step %ld: checkpoint %s", r->step, dir);
    return 0;
}

static int check_finite(const dl_run *r, double loss, float norm, double lr, dl_error *err) {
    if (isfinite(loss) && isfinite(norm)) return 0;
    return dl_fail(err, "training diverged at step %ld: loss %g, gradient norm %g (lr %g); lower --lr, raise "
                        "--warmup or --grad-clip, and --resume from the last checkpoint",
                   r->step + 1, loss, (double)norm, lr);
}

/* After each update: metrics, evaluation, checkpoint, and whether to stop (1) or go on (0). */
static int after_update(loop *lp, double loss, double lr, float norm, dl_error *err) {
    dl_run *r = lp->r;
    const dl_train_opts *o = r->o;
    int last = r->step == o->steps;
    if (log_step(lp, loss, lr, norm, err)) return -1;
    if (o->eval_interval > 0 && (r->step % o->eval_interval == 0 || last) && evaluate(lp, err)) return -1;
    /* at the last step, finishing is the quickest way out; ranks must agree on a stop, or one
     * would wait forever for the others' next all-reduce */
    int sig = last ? 0 : dl_dist_max_int(dl_stop_requested());
    int stop_here = !last && (sig || (o->stop_at > 0 && r->step >= o->stop_at));
    if ((o->save_interval > 0 && r->step % o->save_interval == 0) || last || stop_here)
        if (checkpoint(lp, err)) return -1;
    if (sig)
        return dl_fail(err, "interrupted by signal %d after step %ld; the checkpoint is saved, continue with --resume",
                       sig, r->step);
    return stop_here;
}

static int run_loop(loop *lp, dl_error *err) {
    dl_run *r = lp->r;
    const dl_train_opts *o = r->o;
    double step_tokens = (double)o->batch * o->seq_len * o->grad_accum * dl_dist_world();
    if (o->stop_at > 0 && r->step >= o->stop_at && r->step < o->steps) return 1; /* resumed past it */
    while (r->step < o->steps) {
        double t0 = dl_now();
        double lr = dl_lr_at(r->step, o->steps, o->warmup, o->lr, o->min_lr);
        float norm = 0;
        double loss = 0;
        if (update(r, lr, &loss, &norm, err)) return -1;
        if (check_finite(r, loss, norm, lr, err)) return -1;
        r->step++;
        lp->sec_since_log += dl_now() - t0;
        lp->tok_since_log += step_tokens;
        int rc = after_update(lp, loss, lr, norm, err);
        if (rc) return rc;
    }
    return 0;
}

static int finish(loop *lp, dl_error *err) {
    dl_run *r = lp->r;
    if (dl_dist_rank() == 0 && dl_model_save(&r->model, r->o->out, err)) return -1;
    dl_log("trained %ld steps in %.1f s; model folder: %s", r->step, elapsed(lp), r->o->out);
    return 0;
}

int dl_train(const dl_train_opts *o, dl_error *err) { return dl_train_with_hooks(o, NULL, err); }

int dl_train_with_hooks(const dl_train_opts *o, const dl_train_hooks *h, dl_error *err) {
    dl_run r;
    loop lp;
    memset(&lp, 0, sizeof lp);
    if (!o) return dl_fail(err, "train: no options");
    if (o->threads > 0) dl_set_threads(o->threads);
    dl_dist_set_timeout(o->dist_timeout);
    /* the other ranks repeat rank 0's lines; their errors still reach stderr through the caller */
    dl_log_level level = dl_log_get_level();
    if (dl_dist_rank() != 0) dl_log_set_level(DL_LOG_QUIET);
    if (dl_run_setup(&r, o, h, err)) {
        dl_run_free(&r);
        dl_log_set_level(level);
        return -1;
    }
    lp.r = &r;
    lp.t_session = dl_now();
    lp.last_ckpt = r.step > 0 ? r.step : -1;
    dl_log("training %zu parameters for %d steps of %d x %d x %d tokens (from step %ld)", r.model.lay.total,
           o->steps, o->batch, o->seq_len, o->grad_accum, r.step);
    if (dl_dist_world() > 1)
        dl_log("data parallel over %d MPI processes: a global batch of %d sequences per micro-batch",
               dl_dist_world(), dl_dist_world() * o->batch);
    dl_progress_start(&lp.prog, "step", o->steps);
    lp.prog.t_start -= r.elapsed_before; /* so the ETA counts earlier sessions too */
    dl_stop_install();
    int rc = run_loop(&lp, err);
    dl_stop_restore();
    dl_progress_finish(&lp.prog);
    if (rc == 0 && r.step >= o->steps) rc = finish(&lp, err);
    else if (rc == 1) {
        dl_log("stopped after step %ld as asked (--stop-at); continue with --resume", r.step);
        rc = 0;
    }
    dl_run_free(&r);
    dl_log_set_level(level);
    return rc;
}
