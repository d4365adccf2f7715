/* trainer_state.json: what a checkpoint needs beyond weights and moments to continue exactly,
 * and the options that define the run (checked on resume). */
#include "dist.h"
#include "run.h"
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { STATE_VERSION = 1 };

static json_t *u64_json(uint64_t x) {
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, x); /* a string: JSON integers stop at 2^63 */
    return json_string(s);
}

static int u64_get(json_t *o, const char *key, uint64_t *out, dl_error *err) {
    json_t *v = json_object_get(o, key);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    char *end;
    if (!s || !*s || *s == '-') return dl_fail(err, "'%s' must be a decimal string", key);
    *out = strtoull(s, &end, 10);
    if (*end) return dl_fail(err, "'%s' must be a decimal string", key);
    return 0;
}

json_t *dl_run_state_json(const dl_run *r, double elapsed_s) {
    const dl_train_opts *o = r->o;
    json_t *rng = json_array();
    for (int i = 0; i < 4; i++) json_array_append_new(rng, u64_json(r->rng.s[i]));
    json_t *opts = json_object();
    json_object_set_new(opts, "batch", json_integer(o->batch));
    json_object_set_new(opts, "seq_len", json_integer(o->seq_len));
    json_object_set_new(opts, "grad_accum", json_integer(o->grad_accum));
    json_object_set_new(opts, "world_size", json_integer(dl_dist_world()));
    json_object_set_new(opts, "seed", u64_json(o->seed));
    json_object_set_new(opts, "steps", json_integer(o->steps));
    json_object_set_new(opts, "lr", json_real(o->lr));
    json_object_set_new(opts, "min_lr", json_real(o->min_lr));
    json_object_set_new(opts, "warmup", json_integer(o->warmup));
    json_object_set_new(opts, "weight_decay", json_real(o->weight_decay));
    json_object_set_new(opts, "beta1", json_real(o->beta1));
    json_object_set_new(opts, "beta2", json_real(o->beta2));
    json_object_set_new(opts, "grad_clip", json_real(o->grad_clip));
    json_object_set_new(opts, "threads", json_integer(dl_get_threads()));
    json_t *s = json_object();
    json_object_set_new(s, "version", json_integer(STATE_VERSION));
    json_object_set_new(s, "step", json_integer(r->step));
    json_object_set_new(s, "data_position", u64_json(r->data_position));
    json_object_set_new(s, "rng", rng);
    json_object_set_new(s, "elapsed_s", json_real(elapsed_s));
    json_object_set_new(s, "train_tokens", u64_json(r->train.n_tokens));
    json_object_set_new(s, "options", opts);
    if (r->hooks->kind) {
        json_t *h = r->hooks->state ? r->hooks->state(r->hooks->user) : NULL;
        if (!json_is_object(h)) {
            json_decref(h);
            h = json_object();
        }
        json_object_set_new(h, "kind", json_string(r->hooks->kind));
        json_object_set_new(s, "hook", h);
    }
    return s;
}

/* Options that change which batches or which model the run sees: a resume must match them. The
 * data position is global, so a run may resume on another number of processes as long as the
 * global batch (batch per rank x ranks) is the same. */
static int check_fixed(json_t *opts, const dl_train_opts *o, dl_error *err) {
    static const char *const names[] = {"seq_len", "grad_accum"};
    const int now[] = {o->seq_len, o->grad_accum};
    for (int i = 0; i < 2; i++) {
        long long v;
        if (dl_json_get_int(opts, names[i], &v, err)) return -1;
        if (v != now[i])
            return dl_fail(err, "the checkpoint was trained with %s %lld but this run asks for %d; batch, "
                                "seq_len, grad_accum and seed must match to resume",
                           names[i], v, now[i]);
    }
    long long batch, world = 1;
    if (dl_json_get_int(opts, "batch", &batch, err)) return -1;
    if (json_object_get(opts, "world_size") && dl_json_get_int(opts, "world_size", &world, err)) return -1;
    long long now_global = (long long)o->batch * dl_dist_world();
    if (batch * world != now_global)
        return dl_fail(err, "the checkpoint was trained with a global batch of %lld (batch %lld x %lld processes) "
                            "but this run asks for %lld (batch %d x %d processes); the global batch must match to "
                            "resume",
                       batch * world, batch, world, now_global, o->batch, dl_dist_world());
    if (world != dl_dist_world())
        dl_log("note: resuming a %lld-process run on %d processes with the same global batch", world,
               dl_dist_world());
    uint64_t seed;
    if (u64_get(opts, "seed", &seed, err)) return -1;
    if (seed != o->seed)
        return dl_fail(err, "the checkpoint was trained with seed %" PRIu64 " but this run asks for %" PRIu64
                            "; batch, seq_len, grad_accum and seed must match to resume",
                       seed, o->seed);
    return 0;
}

/* Options that only shape the rest of the run may change; say so, since the result then differs
 * from an uninterrupted run. */
static void note_changed(json_t *opts, const dl_train_opts *o) {
    static const char *const names[] = {"lr", "min_lr", "weight_decay", "beta1", "beta2", "grad_clip"};
    const double now[] = {o->lr, o->min_lr, o->weight_decay, o->beta1, o->beta2, o->grad_clip};
    for (int i = 0; i < 6; i++) {
        double v;
        if (dl_json_get_double(opts, names[i], &v, NULL) == 0 && fabs(v - now[i]) > 1e-6 * fabs(now[i]))
            dl_log("note: %s changes from %g (checkpoint) to %g from here on", names[i], v, now[i]);
    }
    long long v;
    if (dl_json_get_int(opts, "steps", &v, NULL) == 0 && v != o->steps)
        dl_log("note: steps changes from %lld (checkpoint) to %d: the learning-rate schedule stretches", v, o->steps);
    if (dl_json_get_int(opts, "warmup", &v, NULL) == 0 && v != o->warmup)
        dl_log("note: warmup changes from %lld (checkpoint) to %d", v, o->warmup);
    /* threaded kernels split sums differently for another thread count: still correct, but no
     * longer bit-identical to a run that was never stopped */
    if (dl_json_get_int(opts, "threads", &v, NULL) == 0 && v != dl_get_threads())
        dl_log("note: %d threads now, %lld when the checkpoint was written: the run continues correctly but "
               "not bit-for-bit as an uninterrupted one", dl_get_threads(), v);
}

static int restore_rng(json_t *state, dl_rng *rng, dl_error *err) {
    json_t *a = json_object_get(state, "rng");
    if (!json_is_array(a) || json_array_size(a) != 4) return dl_fail(err, "'rng' must be an array of 4 words");
    for (int i = 0; i < 4; i++) {
        json_t *wrap = json_pack("{sO}", "rng", json_array_get(a, (size_t)i));
        int rc = u64_get(wrap, "rng", &rng->s[i], err);
        json_decref(wrap);
        if (rc) return -1;
    }
    return 0;
}

/* A run continues only with the loop that made it: distil train cannot resume a distillation. */
static int check_hook(const dl_run *r, json_t *state, dl_error *err) {
    json_t *h = json_object_get(state, "hook");
    const char *saved = json_string_value(json_object_get(h, "kind")), *now = r->hooks->kind;
    if (h && !saved) return dl_fail(err, "'hook' has no 'kind'");
    if (!saved && !now) return 0;
    if (!saved || !now || strcmp(saved, now) != 0)
        return dl_fail(err, "the checkpoint was written by %s%s but this is %s%s; resume it with the command that "
                            "started it",
                       saved ? "distil " : "", saved ? saved : "distil train", now ? "distil " : "",
                       now ? now : "distil train");
    if (r->hooks->check_state) return r->hooks->check_state(r->hooks->user, h, err);
    return 0;
}

int dl_run_state_restore(dl_run *r, json_t *state, long ckpt_step, dl_error *err) {
    long long version, step;
    uint64_t tokens;
    if (!json_is_object(state)) return dl_fail(err, "expected a JSON object");
    if (dl_json_get_int(state, "version", &version, err)) return -1;
    if (version != STATE_VERSION)
        return dl_fail(err, "version %lld is not supported (this build reads %d)", version, STATE_VERSION);
    if (dl_json_get_int(state, "step", &step, err)) return -1;
    if (step != ckpt_step)
        return dl_fail(err, "says step %lld but lives in the folder of step %ld", step, ckpt_step);
    json_t *opts = json_object_get(state, "options");
    if (!json_is_object(opts)) return dl_fail(err, "'options' is missing");
    if (check_fixed(opts, r->o, err) || check_hook(r, state, err)) return -1;
    if (u64_get(state, "train_tokens", &tokens, err)) return -1;
    if (tokens != r->train.n_tokens)
        return dl_fail(err, "the checkpoint was trained on a train.bin of %" PRIu64 " tokens, but %s/train.bin now "
                            "holds %" PRIu64 "; resuming on other data would not continue the same run",
                       tokens, r->o->data, r->train.n_tokens);
    if (u64_get(state, "data_position", &r->data_position, err) || restore_rng(state, &r->rng, err) ||
        dl_json_get_double(state, "elapsed_s", &r->elapsed_before, err))
        return -1;
    note_changed(opts, r->o);
    r->step = (long)step;
    return 0;
}
