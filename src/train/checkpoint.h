/* Checkpoint folders OUT/checkpoints/step_NNNNNNNN/, private to src/train. A checkpoint is
 * written under a hidden temp name, fsynced, then renamed, so a folder named step_* is always
 * complete. */
#ifndef DISTIL_CHECKPOINT_H
#define DISTIL_CHECKPOINT_H

#include "model/model.h"

struct json_t;

typedef struct dl_ckpt {
    const dl_model *model;
    const float *exp_avg, *exp_avg_sq; /* lay.total floats each */
    struct json_t *state;              /* written as trainer_state.json */
    const char *tokenizer;             /* path of the tokenizer.json to copy in */
} dl_ckpt;

/* Writes checkpoint `step` of run_dir; dir_out (n bytes) receives its folder. */
int dl_ckpt_write(const char *run_dir, long step, const dl_ckpt *c, char *dir_out, size_t n, dl_error *err);
/* Finds the newest complete checkpoint: returns 1 and fills dir/step, 0 when there is none. */
int dl_ckpt_find_newest(const char *run_dir, char *dir, size_t n, long *step, dl_error *err);
/* Deletes all but the newest `keep` checkpoints and any leftover temp folders. */
int dl_ckpt_prune(const char *run_dir, int keep, dl_error *err);
/* Fills exp_avg / exp_avg_sq (lay->total floats each) from DIR/optimizer.safetensors, by name. */
int dl_ckpt_read_optimizer(const char *dir, const dl_layout *lay, float *exp_avg, float *exp_avg_sq,
                           dl_error *err);

#endif
