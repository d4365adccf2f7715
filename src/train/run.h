/* The state of one training run, private to src/train: setup.c fills it (fresh or from a
 * checkpoint), state.c turns it into trainer_state.json and back, trainer.c runs the loop. */
#ifndef DISTIL_RUN_H
#define DISTIL_RUN_H

#include "data/data.h"
#include "metrics.h"
#include "model/model.h"
#include "train.h"

struct json_t;

typedef struct dl_run {
    const dl_train_opts *o;
    const dl_train_hooks *hooks; /* never NULL: an empty set for plain training */
    dl_config cfg;
    dl_model model;
    float *exp_avg, *exp_avg_sq; /* AdamW moments, model.lay.total floats each */
    dl_tokfile train, val;       /* val is open only when evaluating */
    dl_loader loader;
    /* Saved and restored with every checkpoint although nothing draws from it yet (no dropout):
     * whatever stochastic part is added later then resumes exactly. */
    dl_rng rng;
    long step;                   /* updates done */
    uint64_t data_position;      /* next global batch of the loader */
    double elapsed_before;       /* seconds spent in earlier sessions of this run */
    char tokenizer[4096];        /* DATA/tokenizer.json */
    dl_metrics metrics;
    int32_t *inputs, *targets;   /* (B,T) */
    uint64_t *starts;            /* (B) window starts of the last batch */
} dl_run;

/* opts.c */
int dl_train_check_opts(const dl_train_opts *o, dl_error *err);

/* setup.c: config, data, then a fresh model or the newest checkpoint; run folder files. */
int dl_run_setup(dl_run *r, const dl_train_opts *o, const dl_train_hooks *h, dl_error *err);
void dl_run_free(dl_run *r);

/* state.c */
struct json_t *dl_run_state_json(const dl_run *r, double elapsed_s);
/* Checks a checkpoint's trainer_state.json against this run and restores step, data position,
 * rng and elapsed time from it. */
int dl_run_state_restore(dl_run *r, struct json_t *state, long ckpt_step, dl_error *err);

#endif
