/* train: the pretraining loop (AdamW, LR schedule, gradient accumulation), checkpoints and
 * bit-for-bit resume, metrics.
 *
 * A run folder OUT holds:
 *   config.json, tokenizer.json       from the start
 *   metrics.jsonl                      one JSON object per logged step
 *                                      {"step","loss","lr","grad_norm","tokens_per_s","elapsed_s"}
 *                                      and per evaluation {"step","val_loss","val_ppl"}
 *   checkpoints/step_NNNNNNNN/        model.safetensors, config.json, tokenizer.json,
 *                                      optimizer.safetensors (exp_avg.NAME, exp_avg_sq.NAME),
 *                                      trainer_state.json; the newest two are kept
 *   model.safetensors                  at the end, so OUT is a model folder */
#ifndef DISTIL_TRAIN_H
#define DISTIL_TRAIN_H

#include "base/base.h"

typedef struct dl_train_opts {
    const char *config; /* LlamaConfig config.json (or a folder holding one) */
    const char *data;   /* folder from dl_data_prepare: train.bin, val.bin, tokenizer.json */
    const char *out;    /* run folder, created if needed */
    int steps;          /* optimizer updates in the whole run */
    int batch;          /* B: sequences per micro-batch */
    int seq_len;        /* T: tokens per sequence, at most max_position_embeddings */
    int grad_accum;     /* micro-batches per update; the loss of each is scaled by 1/grad_accum */
    double lr;          /* peak learning rate, reached after warmup */
    double min_lr;      /* cosine decay ends here at the last step */
    int warmup;         /* linear warmup updates */
    double weight_decay, beta1, beta2;
    double grad_clip;   /* max global gradient L2 norm; 0: no clipping */
    int eval_interval;  /* evaluate on val.bin every N updates and at the end; 0: never */
    long eval_tokens;   /* at most this many validation positions per evaluation; 0: all */
    int save_interval;  /* checkpoint every N updates; a checkpoint is always written at the end */
    int log_interval;   /* a metrics line every N updates (and at the first and last) */
    uint64_t seed;      /* initial weights and data order */
    int threads;        /* 0: OpenMP / OpenBLAS defaults */
    int resume;         /* continue from the newest checkpoint in OUT (start fresh if none) */
    int stop_at;        /* stop after this update with a checkpoint, as if interrupted (exit 0);
                           0: run to the end. For chunked jobs and tests. */
    int dist_timeout;   /* under mpirun: seconds one rank waits for the others before the job
                           stops with an error (a rank died or hangs); 0: wait forever */
} dl_train_opts;

/* Fills the defaults (the ones `distil train --help` shows); config/data/out are NULL. */
void dl_train_opts_default(dl_train_opts *o);

/* Trains. Returns 0 when the run reached o->steps (or o->stop_at); -1 with err filled on bad
 * options or data, on a loss that turned NaN, or when SIGINT/SIGTERM stopped it (after the
 * current update, with a checkpoint written, so --resume continues). */
int dl_train(const dl_train_opts *o, dl_error *err);

/* ---- hooks: the same loop for other objectives (distillation) --------------------------------
 * Everything a hook leaves NULL keeps what dl_train does. */
struct json_t;
struct dl_model;
struct dl_tokfile;
struct dl_eval_result;
struct dl_rng;

typedef struct dl_train_batch {
    struct dl_model *model;          /* sized for (B,T); grads accumulate (+=) */
    struct dl_rng *rng;              /* the run's rng, saved and restored with every checkpoint */
    const int32_t *inputs, *targets; /* (B,T) from the loader */
    const uint64_t *starts;          /* (B) each row's window start: token index in train.bin */
    int B, T;
    float grad_scale;                /* 1/grad_accum: multiplies the micro-batch loss gradient */
} dl_train_batch;

typedef struct dl_train_hooks {
    void *user;
    const char *kind; /* saved in trainer_state.json ("hook": {"kind": ...}); a run made with hooks
                         resumes only through the same kind, and one made without, only without */
    /* Replaces the forward and backward of one micro-batch; *loss gets the micro-batch loss. */
    int (*micro_batch)(void *user, const dl_train_batch *b, double *loss, dl_error *err);
    /* Called after a fresh model is made and randomly initialised (not when resuming). */
    int (*init_model)(void *user, struct dl_model *m, dl_error *err);
    /* Extra keys for the step's metrics line, written as ",\"key\":value,..." into out (n bytes);
     * called once per update (whether or not the line is logged). */
    void (*step_metrics)(void *user, char *out, size_t n);
    /* Replaces the validation pass: fills res like dl_eval_tokens and may add keys to the line
     * (as step_metrics). */
    int (*evaluate)(void *user, struct dl_model *m, const struct dl_tokfile *val, int B, int T, uint64_t max_tokens,
                    struct dl_eval_result *res, char *extra, size_t n, dl_error *err);
    /* Saved under "hook" in trainer_state.json; check_state sees it again on resume. */
    struct json_t *(*state)(void *user);
    int (*check_state)(void *user, struct json_t *saved, dl_error *err);
} dl_train_hooks;

/* dl_train with hooks (NULL: exactly dl_train). */
int dl_train_with_hooks(const dl_train_opts *o, const dl_train_hooks *h, dl_error *err);

/* Learning rate of update `step` (0-based) in a run of `steps` updates:
 *   step < warmup:             lr * (step + 1) / warmup
 *   warmup <= step < steps-1:  min_lr + (lr - min_lr) * (1 + cos(pi * (step - warmup) / (steps - 1 - warmup))) / 2
 *   step >= steps-1:           min_lr   (lr instead when no update follows the warmup: steps-1 <= warmup) */
double dl_lr_at(long step, long steps, long warmup, double lr, double min_lr);

#endif
