/* The state of one distillation run, private to src/distill: distill.c sets it up and checks
 * everything before training, step.c is the trainer's hooks. */
#ifndef DISTIL_DISTILL_KDRUN_H
#define DISTIL_DISTILL_KDRUN_H

#include "distill.h"
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
} kd_run;

/* step.c */
void kd_hooks(kd_run *k, dl_train_hooks *h);

#endif
