/* Distillation quality: a teacher (configs/bench-5m.json) trained on a corpus, and a student about
 * a fifth its size (configs/student-1m.json) trained (a) from scratch on cross-entropy and (b) by
 * distillation from the teacher, with the same steps, data, seed and schedule. Prints one JSON line
 * (bench/README.md): the three validation losses, each student's top-1 agreement with the teacher,
 * the share of the scratch-to-teacher loss gap that distillation closed, and the time of a
 * distillation step with the live teacher and with the top-k cache.
 *
 * The tokenizer, the data, the teacher and its top-k cache are kept under --work in a folder named
 * by a hash of what makes them (corpus, teacher config, their options), so a second run only trains
 * the students. */
#include "distill/distill.h"
#include "eval/eval.h"
#include "ops/ops.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *corpus, *work, *teacher_cfg, *student_cfg, *loss, *source;
    int teacher_steps, steps, B, T, threads, seed, vocab, top_k, timing_steps;
    double teacher_lr, lr, temperature, ce_weight;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.corpus = "../shared/data/tinyshakespeare.txt", .work = "build/bench/kd_quality",
                .teacher_cfg = "configs/bench-5m.json", .student_cfg = "configs/student-1m.json", .loss = "fkl",
                .source = "cache", .teacher_steps = 800, .steps = 600, .B = 16, .T = 128, .threads = 2, .seed = 1,
                .vocab = 4096, .top_k = 32, .timing_steps = 8, .teacher_lr = 2e-3, .lr = 3e-3, .temperature = 1.0,
                .ce_weight = 0.5};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "kd_quality: %s needs a value\n", a), -1;
        if (!strcmp(a, "--corpus")) o->corpus = v;
        else if (!strcmp(a, "--work")) o->work = v;
        else if (!strcmp(a, "--teacher-config")) o->teacher_cfg = v;
        else if (!strcmp(a, "--student-config")) o->student_cfg = v;
        else if (!strcmp(a, "--loss")) o->loss = v;
        else if (!strcmp(a, "--source")) o->source = v;
        else if (!strcmp(a, "--teacher-steps")) o->teacher_steps = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--batch")) o->B = atoi(v);
        else if (!strcmp(a, "--seq")) o->T = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = atoi(v);
        else if (!strcmp(a, "--top-k")) o->top_k = atoi(v);
        else if (!strcmp(a, "--timing-steps")) o->timing_steps = atoi(v);
        else if (!strcmp(a, "--teacher-lr")) o->teacher_lr = atof(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--temperature")) o->temperature = atof(v);
        else if (!strcmp(a, "--ce-weight")) o->ce_weight = atof(v);
        else return fprintf(stderr, "kd_quality: unknown flag %s (see bench/README.md)\n", a), -1;
    }
    if (o->teacher_steps <= 0 || o->steps <= 0 || o->B <= 0 || o->T <= 0 || o->threads < 0 || o->seed < 0 ||
        o->top_k <= 0 || o->timing_steps < 2)
        return fprintf(stderr, "kd_quality: steps, batch, seq, top-k must be positive, timing-steps >= 2\n"), -1;
    if (strcmp(o->source, "cache") && strcmp(o->source, "live"))
        return fprintf(stderr, "kd_quality: --source is cache or live\n"), -1;
    return 0;
}

/* ---- the cached part: tokenizer, data, teacher, top-k cache --------------------------------- */
typedef struct paths { char key[600], tok[700], data[700], teacher[700], cache[800], val[800], runs[700]; } paths;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int hash_file(uint64_t *h, const char *path, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(path, &text, &len, err)) return -1;
    *h = fnv(*h, text, len);
    free(text);
    return 0;
}

static int make_paths(const opts *o, paths *p, dl_error *err) {
    uint64_t h = 0xcbf29ce484222325ULL;
    char extra[256];
    snprintf(extra, sizeof extra, "v%d s%d b%d t%d lr%g seed%d", o->vocab, o->teacher_steps, o->B, o->T,
             o->teacher_lr, o->seed);
    if (hash_file(&h, o->corpus, err) || hash_file(&h, o->teacher_cfg, err)) return -1;
    h = fnv(h, extra, strlen(extra));
    snprintf(p->key, sizeof p->key, "%s/teacher-%016llx", o->work, (unsigned long long)h);
    snprintf(p->tok, sizeof p->tok, "%s/tokenizer.json", p->key);
    snprintf(p->data, sizeof p->data, "%s/data", p->key);
    snprintf(p->teacher, sizeof p->teacher, "%s/teacher", p->key);
    snprintf(p->cache, sizeof p->cache, "%s/train.k%d.t%d.cache", p->key, o->top_k, o->T);
    snprintf(p->val, sizeof p->val, "%s/val.bin", p->data);
    snprintf(p->runs, sizeof p->runs, "%s/runs", o->work);
    return dl_mkdir_p(p->key, err);
}

static void train_opts(dl_train_opts *t, const opts *o, const char *cfg, const char *data, const char *out,
                       int steps, double lr) {
    dl_train_opts_default(t);
    t->config = cfg, t->data = data, t->out = out, t->steps = steps, t->batch = o->B, t->seq_len = o->T;
    t->lr = lr, t->min_lr = lr / 10, t->warmup = steps / 20 > 0 ? steps / 20 : 1;
    t->eval_interval = 0, t->save_interval = 0, t->log_interval = 1, t->seed = (uint64_t)o->seed;
    t->threads = o->threads;
}

static int ensure_teacher(const opts *o, const paths *p, dl_error *err) {
    char done[800];
    snprintf(done, sizeof done, "%s/model.safetensors", p->teacher);
    if (!dl_path_exists(p->tok)) {
        dl_tokenizer *t = dl_tok_train_file(o->corpus, o->vocab, NULL, p->tok, err);
        if (!t) return -1;
        dl_tok_free(t);
    }
    if (!dl_path_exists(p->val) && dl_data_prepare(o->corpus, p->tok, 0.1, p->data, err)) return -1;
    if (dl_path_exists(done)) {
        dl_log("kd_quality: teacher from %s", p->teacher);
        return 0;
    }
    dl_train_opts t;
    train_opts(&t, o, o->teacher_cfg, p->data, p->teacher, o->teacher_steps, o->teacher_lr);
    t.resume = 1; /* an interrupted cold run continues where it stopped */
    t.save_interval = 200;
    t.eval_interval = 200; /* the teacher's validation curve, in its metrics.jsonl */
    t.eval_tokens = 16384;
    return dl_train(&t, err);
}

static int ensure_cache(const opts *o, const paths *p, dl_error *err) {
    if (dl_path_exists(p->cache)) return 0;
    dl_tcache_build_opts c;
    dl_tcache_build_opts_default(&c);
    c.teacher = p->teacher, c.data = p->data, c.out = p->cache, c.top_k = o->top_k, c.seq_len = o->T, c.batch = o->B;
    c.threads = o->threads;
    return dl_tcache_build(&c, err);
}

/* ---- students ---------------------------------------------------------------------------------- */
static int run_scratch(const opts *o, const paths *p, const char *out, dl_error *err) {
    dl_train_opts t;
    train_opts(&t, o, o->student_cfg, p->data, out, o->steps, o->lr);
    return dl_rm_rf(out, err) || dl_train(&t, err);
}

static int run_kd(const opts *o, const paths *p, const char *out, int steps, int live, dl_error *err) {
    dl_distill_opts d;
    dl_distill_opts_default(&d);
    train_opts(&d.train, o, o->student_cfg, p->data, out, steps, o->lr);
    d.teacher = live ? p->teacher : NULL;
    d.cache = live ? NULL : p->cache;
    d.kd.tau = (float)o->temperature;
    d.kd.ce_weight = (float)o->ce_weight;
    if (dl_kd_parse(o->loss, &d.kd.kind, err)) return -1;
    return dl_rm_rf(out, err) || dl_distill(&d, err);
}

/* Median milliseconds of the logged steps after the first (which pays for first-touch memory). */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double step_ms(const char *run, const opts *o) {
    char path[900], *text;
    size_t len, n = 0;
    dl_error err;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    if (dl_read_file(path, &text, &len, &err)) return -1;
    double *ms = malloc((len / 16 + 1) * sizeof *ms);
    for (char *line = strtok(text, "\n"); line && ms; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        double tps = json_number_value(json_object_get(j, "tokens_per_s"));
        if (json_integer_value(json_object_get(j, "step")) > 1 && tps > 0) ms[n++] = 1000.0 * o->B * o->T / tps;
        json_decref(j);
    }
    free(text);
    double med = -1;
    if (ms && n > 0) {
        qsort(ms, n, sizeof *ms, cmp_double);
        med = ms[n / 2];
    }
    free(ms);
    return med;
}

static int measure(const char *model, const paths *p, dl_eval_teacher_result *r, dl_error *err) {
    dl_model s, t;
    dl_tokfile f;
    if (dl_model_load(&s, model, err)) return -1;
    if (dl_model_load(&t, p->teacher, err)) {
        dl_model_free(&s);
        return -1;
    }
    int rc = dl_tokfile_open(&f, p->val, err);
    if (rc == 0) {
        rc = dl_eval_teacher(&s, &t, &f, 8, 128, 0, r, err);
        dl_tokfile_close(&f);
    }
    dl_model_free(&t);
    dl_model_free(&s);
    return rc;
}

typedef struct results {
    dl_eval_teacher_result scratch, kd;
    double live_ms, cache_ms, scratch_ms, kd_ms, seconds;
} results;

static void print_json(const opts *o, const results *r) {
    double gap = r->scratch.student.mean_loss - r->scratch.teacher_loss;
    double closed = gap > 0 ? (r->scratch.student.mean_loss - r->kd.student.mean_loss) / gap : 0;
    json_t *j = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:s, s:i, s:i, s:f}",
                          "teacher_val_loss", r->scratch.teacher_loss, "scratch_val_loss", r->scratch.student.mean_loss,
                          "kd_val_loss", r->kd.student.mean_loss, "scratch_agreement", r->scratch.agreement,
                          "kd_agreement", r->kd.agreement, "gap_closed", closed, "live_teacher_step_ms", r->live_ms,
                          "cache_step_ms", r->cache_ms, "scratch_kl", r->scratch.kl, "kd_kl", r->kd.kl,
                          "scratch_step_ms", r->scratch_ms, "kd_step_ms", r->kd_ms, "loss", o->loss, "source",
                          o->source, "steps", o->steps, "top_k", o->top_k, "seconds", r->seconds);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

static int run(const opts *o, dl_error *err) {
    paths p;
    results r = {0};
    char scratch[800], kd[800], live[800], cached[800];
    double t0 = dl_now();
    if (make_paths(o, &p, err) || ensure_teacher(o, &p, err) || ensure_cache(o, &p, err)) return -1;
    snprintf(scratch, sizeof scratch, "%s/scratch", p.runs);
    snprintf(kd, sizeof kd, "%s/kd", p.runs);
    snprintf(live, sizeof live, "%s/timing-live", p.runs);
    snprintf(cached, sizeof cached, "%s/timing-cache", p.runs);
    /* the two timing runs back to back, under the same load */
    if (run_kd(o, &p, live, o->timing_steps, 1, err) || run_kd(o, &p, cached, o->timing_steps, 0, err)) return -1;
    r.live_ms = step_ms(live, o), r.cache_ms = step_ms(cached, o);
    if (run_scratch(o, &p, scratch, err) || run_kd(o, &p, kd, o->steps, !strcmp(o->source, "live"), err)) return -1;
    r.scratch_ms = step_ms(scratch, o), r.kd_ms = step_ms(kd, o);
    if (measure(scratch, &p, &r.scratch, err) || measure(kd, &p, &r.kd, err)) return -1;
    r.seconds = dl_now() - t0;
    print_json(o, &r);
    return 0;
}

int main(int argc, char **argv) {
    dl_ops_tune_runtime(argv);
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    dl_set_threads(o.threads);
    dl_error err;
    if (run(&o, &err)) {
        fprintf(stderr, "kd_quality: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
