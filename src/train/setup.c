/* Everything before the first update: config, data files, the model (fresh or from the newest
 * checkpoint), the run folder's config.json / tokenizer.json / metrics.jsonl, the loader. */
#include "checkpoint.h"
#include "dist.h"
#include "run.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int open_tokens(dl_tokfile *f, const char *dir, const char *name, const dl_config *cfg, dl_error *err) {
    char p[4096];
    if (dl_path_join(p, sizeof p, dir, name, err)) return -1;
    if (!dl_path_exists(p))
        return dl_fail(err, "%s is missing (prepare the data folder with: distil data prepare)", p);
    if (dl_tokfile_open(f, p, err)) return -1;
    if (f->vocab_size > (uint32_t)cfg->V)
        return dl_fail(err, "%s was tokenized with a vocabulary of %u, larger than the config's vocab_size %d", p,
                       f->vocab_size, cfg->V);
    return 0;
}

static int open_data(dl_run *r, dl_error *err) {
    const dl_train_opts *o = r->o;
    if (!dl_is_dir(o->data)) return dl_fail(err, "data folder %s does not exist", o->data);
    if (open_tokens(&r->train, o->data, "train.bin", &r->cfg, err)) return -1;
    if (o->eval_interval > 0) {
        if (open_tokens(&r->val, o->data, "val.bin", &r->cfg, err)) return -1;
        if (r->val.n_tokens < (uint64_t)o->seq_len + 1)
            return dl_fail(err, "%s/val.bin holds %llu tokens, fewer than one window of seq-len + 1 = %d; "
                                "use a shorter --seq-len, more validation data, or --eval-interval 0",
                           o->data, (unsigned long long)r->val.n_tokens, o->seq_len + 1);
    }
    if (dl_path_join(r->tokenizer, sizeof r->tokenizer, o->data, "tokenizer.json", err)) return -1;
    if (!dl_path_exists(r->tokenizer)) return dl_fail(err, "%s is missing", r->tokenizer);
    return 0;
}

static int same_config(const dl_config *a, const dl_config *b) {
    return a->V == b->V && a->C == b->C && a->F == b->F && a->L == b->L && a->NH == b->NH && a->NKV == b->NKV &&
           a->max_T == b->max_T && a->rms_eps == b->rms_eps && a->rope_theta == b->rope_theta &&
           a->tied == b->tied && a->qkv_bias == b->qkv_bias && a->o_bias == b->o_bias;
}

static int alloc_moments(dl_run *r, dl_error *err) {
    r->exp_avg = calloc(r->model.lay.total, sizeof(float));
    r->exp_avg_sq = calloc(r->model.lay.total, sizeof(float));
    if (!r->exp_avg || !r->exp_avg_sq) return dl_fail(err, "out of memory for the optimizer state");
    return 0;
}

static int start_fresh(dl_run *r, dl_error *err) {
    if (dl_model_create(&r->model, &r->cfg, err)) return -1;
    dl_model_init_random(&r->model, r->o->seed);
    dl_rng_seed(&r->rng, r->o->seed);
    if (r->hooks->init_model && r->hooks->init_model(r->hooks->user, &r->model, err)) return -1;
    return alloc_moments(r, err);
}

static int restore(dl_run *r, const char *dir, long step, dl_error *err) {
    if (dl_model_load(&r->model, dir, err)) return -1;
    if (!same_config(&r->model.cfg, &r->cfg))
        return dl_fail(err, "its config.json differs from %s; resume with the config the run started with",
                       r->o->config);
    if (alloc_moments(r, err) ||
        dl_ckpt_read_optimizer(dir, &r->model.lay, r->exp_avg, r->exp_avg_sq, err))
        return -1;
    char p[4096];
    if (dl_path_join(p, sizeof p, dir, "trainer_state.json", err)) return -1;
    json_t *state = dl_json_load(p, err);
    if (!state) return -1;
    int rc = dl_run_state_restore(r, state, step, err);
    json_decref(state);
    if (rc) return dl_fail_ctx(err, "%s", p);
    dl_log("resuming from %s (step %ld)", dir, step);
    return 0;
}

/* Fresh start or the newest checkpoint, as --resume and the folder's contents say. */
static int load_model(dl_run *r, dl_error *err) {
    char dir[4096];
    long step = 0;
    int found = dl_ckpt_find_newest(r->o->out, dir, sizeof dir, &step, err);
    if (found < 0) return -1;
    if (found && !r->o->resume)
        return dl_fail(err, "%s already holds a run (newest checkpoint: step %ld); pass --resume to continue it, "
                            "or choose another --out",
                       r->o->out, step);
    if (!found) {
        if (r->o->resume) dl_log("%s has no checkpoint yet: starting from step 0", r->o->out);
        return start_fresh(r, err);
    }
    if (restore(r, dir, step, err)) return dl_fail_ctx(err, "cannot resume from %s", dir);
    return 0;
}

static int init_folder(dl_run *r, dl_error *err) {
    char p[4096];
    if (dl_dist_rank() != 0) return 0; /* rank 0 alone writes the run folder */
    if (dl_path_join(p, sizeof p, r->o->out, "config.json", err) || dl_config_save(&r->cfg, p, err)) return -1;
    if (dl_path_join(p, sizeof p, r->o->out, "tokenizer.json", err) || dl_copy_file(r->tokenizer, p, err)) return -1;
    /* on resume, log lines past the checkpoint describe updates that are about to be redone */
    return dl_metrics_open(&r->metrics, r->o->out, r->step > 0 ? r->step : -1, err);
}

static int init_batches(dl_run *r, dl_error *err) {
    const dl_train_opts *o = r->o;
    if (dl_loader_init(&r->loader, &r->train, o->batch, o->seq_len, o->seed, dl_dist_rank(),
                       dl_dist_world(), err))
        return dl_fail_ctx(err, "%s/train.bin", o->data);
    dl_loader_seek(&r->loader, r->data_position);
    size_t n = (size_t)o->batch * (size_t)o->seq_len;
    r->inputs = malloc(n * sizeof *r->inputs);
    r->targets = malloc(n * sizeof *r->targets);
    r->starts = malloc((size_t)o->batch * sizeof *r->starts);
    if (!r->inputs || !r->targets || !r->starts) return dl_fail(err, "out of memory for batches");
    return dl_model_alloc_train(&r->model, o->batch, o->seq_len, err);
}

int dl_run_setup(dl_run *r, const dl_train_opts *o, const dl_train_hooks *h, dl_error *err) {
    static const dl_train_hooks none;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->hooks = h ? h : &none;
    if (dl_train_check_opts(o, err)) return -1;
    if (dl_config_load_any(o->config, &r->cfg, err)) return -1;
    if (o->seq_len > r->cfg.max_T)
        return dl_fail(err, "seq-len %d exceeds the config's max_position_embeddings %d", o->seq_len, r->cfg.max_T);
    if (open_data(r, err) || dl_mkdir_p(o->out, err) || load_model(r, err) || init_folder(r, err) ||
        init_batches(r, err))
        return -1;
    return 0;
}

void dl_run_free(dl_run *r) {
    dl_metrics_close(&r->metrics);
    dl_loader_free(&r->loader);
    dl_tokfile_close(&r->train);
    dl_tokfile_close(&r->val);
    dl_model_free(&r->model);
    free(r->exp_avg);
    free(r->exp_avg_sq);
    free(r->inputs);
    free(r->targets);
    free(r->starts);
    memset(r, 0, sizeof *r);
}
