/* The state of one distillation run, private to src/distill: distill.c sets it up and checks
 * everything before training, step.c is the trainer's hooks. */
#ifndef DISTIL_DISTILL_KDRUN_H
#define DISTIL_DISTILL_KDRUN_H

#include "distill.h"
#include "harvest_data.h"
#include "rollout.h"

typedef enum { BATCH_CORPUS, BATCH_TEACHER_TEXT, BATCH_STUDENT_TEXT } batch_kind;

typedef struct kd_run {
    const dl_distill_opts *o;
    int B, T, V;                 /* the student's batch shape and vocabulary */
    dl_model teacher;            /* loaded when o->teacher; activations (chunk,T) */
    int chunk;                   /* sequences per teacher forward */
    int have_teacher, have_cache;
    dl_tcache cache;
    int *layers;                 /* --init-from-teacher: teacher layer of each student layer */
    int student_weights;         /* o->train.config is a model folder with weights to start from */
    /* generated batches */
    dl_kv_cache kv_teacher, kv_student;
    dl_rollout gen_teacher, gen_student;
    float *gen_logits;           /* max(V_teacher, V) floats */
    int32_t *gen_in, *gen_tg, *gen_seq; /* (B,T), (B,T), (T+1) */
    /* cache rows of one batch */
    int32_t *ids;                /* (B,T,K) */
    float *logp, *rest;          /* (B,T,K), (B,T) */
    /* this update's micro-batches, for its metrics line */
    double kd_sum, ce_sum;
    int n_micro, n_student;
    /* black-box: the harvest, its data folder, one batch's rows (B,T) and their counts */
    hd_set *harvest;
    char harvest_dir[4096];
    int32_t *hv_target;
    uint8_t *hv_nalt;
    size_t *hv_at;
    float *hv_rest;
    hd_work hv_work;
    long hv_rows, hv_topk;       /* this update's target positions and those with top-k targets, all ranks */
} kd_run;

/* step.c */
void kd_hooks(kd_run *k, dl_train_hooks *h);

/* harvest_run.c: builds the harvest's data folder and points run->train.data at it */
int kd_harvest_setup(kd_run *k, dl_distill_opts *run, dl_error *err);
int kd_harvest_loss(kd_run *k, const dl_train_batch *b, dl_kd_stats *st, dl_error *err);
int kd_harvest_eval(kd_run *k, struct dl_model *m, int B, int T, uint64_t max_tokens, struct dl_eval_result *res,
                    char *extra, size_t n, dl_error *err);
void kd_harvest_free(kd_run *k);

#endif
