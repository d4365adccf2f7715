/* Defaults and range checks of the distillation options. */
#include "distill.h"
#include <math.h>

void dl_distill_opts_default(dl_distill_opts *o) {
    *o = (dl_distill_opts){0};
    dl_train_opts_default(&o->train);
    o->kd = (dl_kd_cfg){.kind = DL_KD_FKL, .beta = 0.5f, .alpha = 0.1f, .tau = 1.0f, .ce_weight = 0.0f};
    o->gen_temperature = 1.0;
}

/* Black-box runs have no teacher model: the modes that need one are refused by name. */
static int check_harvest(const dl_distill_opts *o, dl_error *err) {
    const char *other = o->teacher ? "--teacher" : o->cache ? "--cache" : o->train.data ? "--data" : o->seq_kd ? "--seq-kd"
                        : o->lmbda > 0 ? "--lmbda" : o->init_from_teacher ? "--init-from-teacher"
                        : o->layers ? "--layers" : NULL;
    if (other)
        return dl_fail(err, "distill: --harvest trains on a harvest alone; %s needs a teacher model and its data", other);
    return dl_kd_check(&o->kd, err) ? dl_fail_ctx(err, "distill") : 0;
}

int dl_distill_check_opts(const dl_distill_opts *o, dl_error *err) {
    if (o->harvest) return check_harvest(o, err);
    if (o->tokenizer) return dl_fail(err, "distill: --tokenizer is the student's tokenizer of a --harvest run");
    if (!o->teacher && !o->cache)
        return dl_fail(err, "distill: a --teacher folder, a --cache file or a --harvest file is required");
    if (!o->train.data) return dl_fail(err, "distill: --data is required (the folder of distil data prepare)");
    if (dl_kd_check(&o->kd, err)) return dl_fail_ctx(err, "distill");
    if (!(o->lmbda >= 0 && o->lmbda <= 1)) return dl_fail(err, "distill: --lmbda must be in [0, 1] (got %g)", o->lmbda);
    if (!(o->gen_temperature >= 0 && isfinite(o->gen_temperature)))
        return dl_fail(err, "distill: --gen-temperature must be >= 0 (got %g)", o->gen_temperature);
    if (o->prompt_len < 0 || o->prompt_len > o->train.seq_len)
        return dl_fail(err, "distill: --prompt-len must be in [0, seq-len = %d] (got %d)", o->train.seq_len,
                       o->prompt_len);
    if ((o->seq_kd || o->lmbda > 0) && !o->teacher)
        return dl_fail(err, "distill: --seq-kd and --lmbda need a live --teacher to generate and score new text; a "
                            "cache only covers the corpus");
    if (o->init_from_teacher && !o->teacher)
        return dl_fail(err, "distill: --init-from-teacher needs the --teacher folder");
    if (o->layers && !o->init_from_teacher)
        return dl_fail(err, "distill: --layers chooses the teacher layers of --init-from-teacher; pass both");
    return 0;
}
