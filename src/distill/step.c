/* The trainer's hooks for distillation: one micro-batch's loss and gradient, the extra metrics,
 * the validation against the teacher, the student's initialisation and the saved state. */
#include "eval/eval.h"
#include "kdrun.h"
#include "train/dist.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static batch_kind pick_batch(kd_run *k, dl_rng *rng) {
    // draw only when on-policy batches are possible, so other runs keep the rng untouched
    if (k->o->lmbda > 0 && dl_rng_float(rng) < (float)k->o->lmbda) return BATCH_STUDENT_TEXT;
    return k->o->seq_kd ? BATCH_TEACHER_TEXT : BATCH_CORPUS;
}

static int counted(const int32_t *tg, int n, int V) {
    int c = 0;
    for (int i = 0; i < n; i++) c += tg[i] >= 0 && tg[i] < V;
    return c;
}

/* Live teacher, k->chunk sequences at a time: their (chunk,T,V_teacher) logits, then the loss of
 * those rows turns the student's logits rows into gradients in place. Each chunk's mean is
 * weighted by its share of the counted rows, so the result is the mean over the micro-batch. */
static int loss_live(kd_run *k, const dl_train_batch *b, const int32_t *in, const int32_t *tg, dl_kd_stats *st,
                     dl_error *err) {
    int B = b->B, T = b->T, V = k->V, total = counted(tg, B * T, V);
    double loss = 0, kd = 0, ce = 0;
    float *z = b->model->logits;
    for (int r = 0; r < B; r += k->chunk) {
        int nb = B - r < k->chunk ? B - r : k->chunk, n = nb * T;
        const int32_t *tr = tg + (size_t)r * T;
        int c = counted(tr, n, V);
        dl_model_forward(&k->teacher, in + (size_t)r * T, NULL, nb, T);
        float scale = total > 0 ? b->grad_scale * (float)c / (float)total : 0.0f;
        float *zr = z + (size_t)r * T * V;
        dl_kd_stats s;
        if (dl_kd_full(&k->o->kd, zr, k->teacher.logits, (size_t)k->teacher.cfg.V, tr, zr, n, V, scale, &s, err))
            return -1;
        loss += (double)s.loss * c, kd += (double)s.kd * c, ce += (double)s.ce * c;
    }
    *st = (dl_kd_stats){0};
    if (total > 0) *st = (dl_kd_stats){(float)(loss / total), (float)(kd / total), (float)(ce / total), total};
    return 0;
}

/* Cache: the rows of each window, read where the loader says the window starts (a token position
 * in train.bin, so under mpirun each rank reads the rows of its own windows). */
static int loss_cache(kd_run *k, const dl_train_batch *b, const int32_t *tg, dl_kd_stats *st, dl_error *err) {
    int B = b->B, T = b->T, K = k->cache.K;
    for (int r = 0; r < B; r++) {
        if (b->starts[r] + (uint64_t)T > k->cache.n_rows)
            return dl_fail(err, "window at token %llu lies past the cache's %llu rows",
                           (unsigned long long)b->starts[r], (unsigned long long)k->cache.n_rows);
        size_t o = (size_t)r * T;
        dl_tcache_read(&k->cache, b->starts[r], T, k->ids + o * K, k->logp + o * K, k->rest + o);
    }
    float *z = b->model->logits;
    return dl_kd_topk(&k->o->kd, z, k->ids, k->logp, k->rest, K, tg, z, B * T, k->V, b->grad_scale, st, err);
}

/* Generated text, one row at a time, each row sampled with its own rng keyed by one draw of the
 * run's rng and the row's place in the global batch (rank * B + r). So under mpirun every rank
 * samples exactly the rows one process would for the same global batch, and the run's rng, which
 * all ranks share, advances alike everywhere. */
static int generate(kd_run *k, batch_kind kind, const dl_train_batch *b, dl_error *err) {
    dl_rollout g = kind == BATCH_STUDENT_TEXT ? k->gen_student : k->gen_teacher;
    if (kind == BATCH_STUDENT_TEXT) g.model = b->model; /* on-policy: the student as it is now writes */
    uint64_t key = dl_rng_u64(b->rng);
    size_t T = (size_t)b->T;
    for (int r = 0; r < b->B; r++) {
        dl_rng row;
        dl_rng_seed(&row, key ^ (uint64_t)((int64_t)dl_dist_rank() * b->B + r));
        if (dl_rollout_batch(&g, b->inputs + r * T, 1, b->T, &row, k->gen_seq, k->gen_in + r * T, k->gen_tg + r * T,
                             err))
            return -1;
    }
    return 0;
}

/* Under mpirun each rank computes the mean loss of its own rows and the trainer averages the
 * ranks' gradients with equal weights: the mean over the global batch, since every rank's rows
 * count alike (all T positions of a corpus row, T - P + 1 of a generated one). A harvest's rows
 * do not: kd_harvest_loss weights each rank by its count. */
static int micro_batch(void *user, const dl_train_batch *b, double *loss, dl_error *err) {
    kd_run *k = user;
    const int32_t *in = b->inputs, *tg = b->targets;
    batch_kind kind = pick_batch(k, b->rng);
    if (kind != BATCH_CORPUS) {
        if (generate(k, kind, b, err)) return -1;
        in = k->gen_in, tg = k->gen_tg;
    }
    if (isnan(dl_model_forward(b->model, in, NULL, b->B, b->T)))
        return dl_fail(err, "the student's forward failed (a token outside its vocabulary?)");
    dl_kd_stats st;
    int rc = k->harvest                           ? kd_harvest_loss(k, b, &st, err)
             : kind == BATCH_CORPUS && k->have_cache ? loss_cache(k, b, tg, &st, err)
                                                     : loss_live(k, b, in, tg, &st, err);
    if (rc) return -1;
    dl_model_backward_from_logits(b->model, b->model->logits);
    k->kd_sum += st.kd, k->ce_sum += st.ce;
    k->n_micro++, k->n_student += kind == BATCH_STUDENT_TEXT;
    *loss = st.loss;
    return 0;
}

static void step_metrics(void *user, char *out, size_t n) {
    kd_run *k = user;
    int m = k->n_micro > 0 ? k->n_micro : 1;
    /* every rank calls this once per update; on_policy is the same on all (the shared rng) */
    double kd = dl_dist_mean_double(k->kd_sum / m), ce = dl_dist_mean_double(k->ce_sum / m);
    int len = snprintf(out, n, ",\"kd\":%.9g,\"ce\":%.9g,\"on_policy\":%.4g", kd, ce, (double)k->n_student / m);
    if (k->harvest && len > 0 && (size_t)len < n) { // share of the trained positions that had top-k targets
        double share = dl_dist_mean_double(k->hv_rows > 0 ? (double)k->hv_topk / (double)k->hv_rows : 0.0);
        snprintf(out + len, n - (size_t)len, ",\"topk_share\":%.4g", share);
    }
    k->hv_rows = k->hv_topk = 0;
    k->kd_sum = k->ce_sum = 0;
    k->n_micro = k->n_student = 0;
}

static int evaluate(void *user, dl_model *m, const dl_tokfile *val, int B, int T, uint64_t max_tokens,
                    dl_eval_result *res, char *extra, size_t n, dl_error *err) {
    kd_run *k = user;
    if (k->harvest) return kd_harvest_eval(k, m, B, T, max_tokens, res, extra, n, err);
    if (!k->have_teacher) return dl_eval_tokens(m, val, B, T, max_tokens, res, err);
    dl_eval_teacher_result r;
    if (dl_eval_teacher(m, &k->teacher, val, B, T, max_tokens, &r, err)) return -1;
    *res = r.student;
    snprintf(extra, n, ",\"val_kl\":%.9g,\"val_agreement\":%.9g,\"val_top5\":%.9g,\"teacher_val_loss\":%.9g", r.kl,
             r.agreement, r.top5, r.teacher_loss);
    return 0;
}

static int init_model(void *user, dl_model *m, dl_error *err) {
    kd_run *k = user;
    if (k->o->init_from_teacher) return dl_init_from_teacher(m, &k->teacher, k->layers, err);
    if (!k->student_weights) return 0;
    dl_model w;
    if (dl_model_load(&w, k->o->train.config, err)) return -1;
    int rc = w.lay.total == m->lay.total ? 0 : dl_fail(err, "%s: its weights do not fit its config", k->o->train.config);
    if (rc == 0) memcpy(m->params, w.params, m->lay.total * sizeof(float));
    dl_model_free(&w);
    return rc;
}

static json_t *state(void *user) {
    const kd_run *k = user;
    const dl_distill_opts *o = k->o;
    const char *source = k->harvest ? "harvest" : k->have_cache ? "cache" : "teacher";
    json_t *s = json_pack("{s:s, s:f, s:f, s:f, s:f, s:s, s:b, s:f, s:i}", "loss", dl_kd_name(o->kd.kind),
                          "temperature", (double)o->kd.tau, "beta", (double)o->kd.beta, "skew_alpha",
                          (double)o->kd.alpha, "ce_weight", (double)o->kd.ce_weight, "source", source, "seq_kd",
                          o->seq_kd, "lmbda", o->lmbda, "prompt_len", k->gen_student.P);
    if (s && k->harvest) {
        char h[24];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)k->harvest->hash);
        json_object_set_new(s, "harvest_fingerprint", json_string(h));
    }
    return s;
}

/* The objective may change on resume (as the learning rate may): say so. */
static int check_state(void *user, json_t *saved, dl_error *err) {
    json_t *now = state(user);
    json_t *hv = json_object_get(now, "harvest_fingerprint");
    if (hv && !json_equal(hv, json_object_get(saved, "harvest_fingerprint"))) {
        json_decref(now);
        return dl_fail(err, "the harvest file is not the one this run was trained on (its fingerprint differs "
                            "from the checkpoint's)");
    }
    const char *key;
    json_t *v;
    json_object_foreach(now, key, v) {
        json_t *old = json_object_get(saved, key);
        if (old && !json_equal(old, v)) {
            char *a = json_dumps(old, JSON_ENCODE_ANY), *b = json_dumps(v, JSON_ENCODE_ANY);
            dl_log("note: %s changes from %s (checkpoint) to %s from here on", key, a ? a : "?", b ? b : "?");
            free(a), free(b);
        }
    }
    json_decref(now);
    return 0;
}

void kd_hooks(kd_run *k, dl_train_hooks *h) {
    *h = (dl_train_hooks){.user = k, .kind = "distill", .micro_batch = micro_batch, .init_model = init_model,
                          .step_metrics = step_metrics, .evaluate = evaluate, .state = state,
                          .check_state = check_state};
}
