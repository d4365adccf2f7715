/* distil distill: every check that can fail happens here, before the first update; then the
 * trainer runs with the hooks of step.c. */
#include "kdrun.h"
#include "train/dist.h"
#include <stdlib.h>
#include <string.h>

static int data_file(const dl_distill_opts *o, const char *name, char *out, size_t n, dl_error *err) {
    if (dl_path_join(out, n, o->train.data, name, err)) return -1;
    if (!dl_path_exists(out)) return dl_fail(err, "%s is missing (prepare the data folder with: distil data prepare)", out);
    return 0;
}

/* The student: a config, or a model folder (its tokenizer, if it has one, must be the data's). */
static int load_student_config(kd_run *k, dl_config *s, const char *data_tok, dl_error *err) {
    const char *p = k->o->train.config;
    if (!p) return dl_fail(err, "distill: --student is required");
    if (dl_config_load_any(p, s, err)) return -1;
    if (!dl_is_dir(p)) return 0;
    char t[4096];
    if (dl_path_join(t, sizeof t, p, "tokenizer.json", err)) return -1;
    k->student_weights = dl_model_has_weights(p); /* model.safetensors, or the shards of an index */
    if (dl_path_exists(t)) {
        uint64_t a, b;
        if (dl_tok_fingerprint_file(t, &a, NULL, err) || dl_tok_fingerprint_file(data_tok, &b, NULL, err)) return -1;
        if (a != b) return dl_fail(err, "the student %s has another tokenizer than the data (%s)", p, data_tok);
    }
    if (k->student_weights && k->o->init_from_teacher)
        return dl_fail(err, "the student folder %s has weights of its own: --init-from-teacher would overwrite them "
                            "(give a config.json instead)", p);
    return 0;
}

static int setup_teacher(kd_run *k, const dl_config *s, const char *data_tok, dl_error *err) {
    const dl_distill_opts *o = k->o;
    int tok_vocab;
    if (dl_teacher_check_tokenizer(o->teacher, data_tok, &tok_vocab, err)) return -1;
    if (dl_model_load(&k->teacher, o->teacher, err)) return -1;
    k->have_teacher = 1;
    if (dl_teacher_check_vocab(&k->teacher.cfg, s, tok_vocab, err)) return -1;
    if (k->T > k->teacher.cfg.max_T)
        return dl_fail(err, "--seq-len %d exceeds the teacher's max_position_embeddings %d", k->T,
                       k->teacher.cfg.max_T);
    if (o->init_from_teacher) {
        if (dl_init_check(&k->teacher.cfg, s, err)) return -1;
        if (!(k->layers = malloc((size_t)s->L * sizeof *k->layers))) return dl_fail(err, "out of memory");
        if (dl_parse_layers(o->layers, k->teacher.cfg.L, s->L, k->layers, err)) return -1;
    }
    /* one sequence per teacher forward: the smallest teacher buffers; 4 at a time measured no
     * faster (bench-5m teacher, B=16, T=128, 2 cores) */
    k->chunk = 1;
    return dl_model_alloc_train(&k->teacher, k->chunk, k->T, err);
}

static int setup_cache(kd_run *k, const char *data_tok, dl_error *err) {
    char tp[4096];
    uint64_t th;
    int tok_vocab;
    dl_tokfile f;
    if (dl_tcache_open(&k->cache, k->o->cache, err)) return -1;
    k->have_cache = 1;
    if (dl_tok_fingerprint_file(data_tok, &th, &tok_vocab, err) || data_file(k->o, "train.bin", tp, sizeof tp, err) ||
        dl_tokfile_open(&f, tp, err))
        return -1;
    int rc = dl_tcache_check_run(&k->cache, th, &f, dl_tokfile_fingerprint(&f), k->T, k->V, err);
    dl_tokfile_close(&f);
    if (rc) return dl_fail_ctx(err, "%s", k->o->cache);
    size_t n = (size_t)k->B * k->T * k->cache.K;
    k->ids = malloc(n * sizeof *k->ids);
    k->logp = malloc(n * sizeof *k->logp);
    k->rest = malloc((size_t)k->B * k->T * sizeof *k->rest);
    return k->ids && k->logp && k->rest ? 0 : dl_fail(err, "out of memory for the cache rows of a batch");
}

static int setup_rollout(kd_run *k, const dl_config *s, dl_error *err) {
    const dl_distill_opts *o = k->o;
    int P = o->prompt_len > 0 ? o->prompt_len : (k->T / 2 > 0 ? k->T / 2 : 1);
    dl_sampler_cfg sc = {(float)o->gen_temperature, 0, 1.0f};
    k->gen_teacher = (dl_rollout){&k->teacher, &k->kv_teacher, NULL, k->V, P, sc};
    k->gen_student = k->gen_teacher;
    k->gen_student.model = NULL; /* the student being trained, set for each batch (step.c) */
    k->gen_student.kv = &k->kv_student;
    if (!o->seq_kd && o->lmbda <= 0) return 0;
    int Vmax = k->teacher.cfg.V > s->V ? k->teacher.cfg.V : s->V;
    k->gen_logits = malloc((size_t)Vmax * sizeof(float));
    k->gen_in = malloc((size_t)k->B * k->T * sizeof(int32_t));
    k->gen_tg = malloc((size_t)k->B * k->T * sizeof(int32_t));
    k->gen_seq = malloc(((size_t)k->T + 1) * sizeof(int32_t));
    if (!k->gen_logits || !k->gen_in || !k->gen_tg || !k->gen_seq) return dl_fail(err, "out of memory");
    k->gen_teacher.logits = k->gen_student.logits = k->gen_logits;
    if (o->seq_kd && dl_kv_cache_create(&k->kv_teacher, &k->teacher.cfg, k->T, err)) return -1;
    if (o->lmbda > 0 && dl_kv_cache_create(&k->kv_student, s, k->T, err)) return -1;
    return 0;
}

static int setup(kd_run *k, dl_distill_opts *run, dl_error *err) {
    const dl_distill_opts *o = k->o;
    char data_tok[4096];
    dl_config s;
    if (dl_distill_check_opts(o, err)) return -1;
    if (o->harvest) return kd_harvest_setup(k, run, err);
    if (!o->train.data || !dl_is_dir(o->train.data))
        return dl_fail(err, "data folder %s does not exist", o->train.data ? o->train.data : "(none)");
    if (data_file(o, "tokenizer.json", data_tok, sizeof data_tok, err) || load_student_config(k, &s, data_tok, err))
        return -1;
    k->B = o->train.batch, k->T = o->train.seq_len, k->V = s.V;
    if (k->B <= 0 || k->T <= 0) return dl_fail(err, "distill: batch and seq-len must be positive");
    if (o->teacher && setup_teacher(k, &s, data_tok, err)) return -1;
    if (o->cache && setup_cache(k, data_tok, err)) return -1;
    return setup_rollout(k, &s, err);
}

static void teardown(kd_run *k) {
    dl_model_free(&k->teacher);
    dl_tcache_close(&k->cache);
    dl_kv_cache_free(&k->kv_teacher);
    dl_kv_cache_free(&k->kv_student);
    free(k->layers);
    free(k->gen_logits), free(k->gen_in), free(k->gen_tg), free(k->gen_seq);
    free(k->ids), free(k->logp), free(k->rest);
    kd_harvest_free(k);
}

int dl_distill(const dl_distill_opts *o, dl_error *err) {
    kd_run k;
    dl_distill_opts run = *o; /* a harvest run points run.train.data at the folder it writes */
    memset(&k, 0, sizeof k);
    k.o = &run;
    if (o->train.threads > 0) dl_set_threads(o->train.threads);
    int rc = setup(&k, &run, err);
    if (rc == 0) {
        const char *teacher = o->teacher ? o->teacher : o->harvest ? o->harvest : "(cache)";
        const char *how = o->harvest ? "harvest" : k.have_cache ? "cache " : "live";
        if (dl_dist_rank() == 0) /* the other ranks would repeat it */
            dl_log("distilling %s into %s: loss %s, temperature %g, teacher %s%s%s", teacher, o->train.config,
                   dl_kd_name(o->kd.kind), (double)o->kd.tau, how, o->seq_kd ? ", sequence-level" : "",
                   o->lmbda > 0 ? ", on-policy" : "");
        dl_train_hooks h;
        kd_hooks(&k, &h);
        rc = dl_train_with_hooks(&run.train, &h, err);
    }
    teardown(&k);
    return rc;
}
