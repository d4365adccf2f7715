/* Radioactivity end to end: does the watermark of `distil serve` survive black-box distillation?
 *
 * A teacher (the demo's: a byte-level BPE tokenizer and a ~2M-parameter model trained on the
 * corpus, kept in WORK/teacher and reused by later runs) is served on loopback twice, with the
 * watermark key and without it; the same prompts are harvested from both (text and top-10
 * logprobs). Three students (the demo's student config, ~0.5M parameters) are distilled
 * black-box from a harvest in which 100%, 10% and 0% of the answers come from the watermarked
 * server (prompt id % 10 picks which; the rest from the plain one): forward KL on the harvested
 * top-10 logprobs (--ce-weight 0: no cross-entropy share on the sampled tokens), no weight decay.
 * That recipe carries the most of a 10% watermark into students this small: on one harvest the
 * 10% student reached z 4.75 in model mode against 3.24 with the demo's black-box recipe
 * (--ce-weight 0.2 --weight-decay 0.1). Each student is then tested:
 *   model  distil detect model --unmarked-text: it reads held-out text of the corpus (the last 5%,
 *          which neither the teacher's training nor the harvest prompts come from; not written
 *          with the key, so all its pairs count);
 *   api    distil detect api: it is served (without any watermark) and answers prompts cut from
 *          that held-out text, sampled at --api-temperature 0.5: a lower temperature shows more of
 *          a student's lean per token (on the 10% student: green share 0.274 at 0.5, 0.262 at 1),
 *          a higher one more distinct pairs; 0.5 gave the larger z (6.8 against 5.6).
 * One JSON line: p_model_100, p_model_10, p_model_0, p_api_100, p_api_10, p_api_0 (p-values;
 * log10_p_* too, as p may be below the smallest double), z_*, and the seconds each stage took.
 *   bench_provenance --work DIR [--corpus F] [--teacher-steps 1000] [--prompts 4096]
 *                    [--tokens 128] [--student-steps 1500] [--read-bytes 200000]
 *                    [--api-prompts 2048] [--api-temperature 0.5] [--ce-weight 0]
 *                    [--weight-decay 0] [--threads 0] [--seed 1] */
#include "data/data.h"
#include "demo/demo.h"
#include "distill/distill.h"
#include "harvest/harvest.h"
#include "ops/ops.h"
#include "provenance/provenance.h"
#include "serve/serve.h"
#include "train/train.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *work, *corpus;
    int teacher_steps, prompts, tokens, student_steps, read_bytes, api_prompts, threads, seed;
    double api_temperature, ce_weight, weight_decay;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.teacher_steps = 1000, .prompts = 4096, .tokens = 128, .student_steps = 1500, .read_bytes = 200000,
                .api_prompts = 2048, .api_temperature = 0.5, .seed = 1};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        if (!strcmp(a, "--work")) o->work = v;
        else if (!strcmp(a, "--corpus")) o->corpus = v;
        else if (!strcmp(a, "--teacher-steps")) o->teacher_steps = atoi(v);
        else if (!strcmp(a, "--prompts")) o->prompts = atoi(v);
        else if (!strcmp(a, "--tokens")) o->tokens = atoi(v);
        else if (!strcmp(a, "--student-steps")) o->student_steps = atoi(v);
        else if (!strcmp(a, "--read-bytes")) o->read_bytes = atoi(v);
        else if (!strcmp(a, "--api-prompts")) o->api_prompts = atoi(v);
        else if (!strcmp(a, "--api-temperature")) o->api_temperature = atof(v);
        else if (!strcmp(a, "--ce-weight")) o->ce_weight = atof(v);
        else if (!strcmp(a, "--weight-decay")) o->weight_decay = atof(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = atoi(v);
        else return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
    }
    if (!o->work) return fprintf(stderr, "bench: --work DIR is required\n"), -1;
    if (o->teacher_steps < 1 || o->prompts < 10 || o->tokens < 8 || o->tokens > 200 || o->student_steps < 1 ||
        o->read_bytes < 1000 || o->api_prompts < 1 || o->threads < 0 || !(o->api_temperature >= 0))
        return fprintf(stderr, "bench: bad settings (prompts >= 10, tokens 8..200, read-bytes >= 1000)\n"), -1;
    return 0;
}

/* ---- paths --------------------------------------------------------------------------------------- */

static char *at(const opts *o, const char *name) {
    static char buf[16][4096];
    static int next;
    char *p = buf[next++ % 16];
    snprintf(p, sizeof buf[0], "%s/%s", o->work, name);
    return p;
}

/* ---- the teacher (cached in WORK/teacher) ---------------------------------------------------------- */

static int make_teacher(const opts *o, const char *corpus, dl_error *err) {
    char done[4096];
    snprintf(done, sizeof done, "%s/model.safetensors", at(o, "teacher"));
    if (dl_path_exists(done)) return dl_log("bench: reusing the teacher in %s", at(o, "teacher")), 0;
    dl_tokenizer *tok = dl_tok_train_file(corpus, 2048, NULL, at(o, "tokenizer.json"), err);
    if (!tok) return -1;
    dl_tok_free(tok);
    if (dl_data_prepare(corpus, at(o, "tokenizer.json"), 0.05, at(o, "data"), err)) return -1;
    dl_config t = {.V = 2048, .C = 192, .F = 512, .L = 4, .NH = 6, .NKV = 2, .max_T = 256, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 1, .bos_id = -1, .eos_id = -1};
    dl_config s = t;
    s.C = 96, s.F = 256, s.L = 3, s.NH = 3, s.NKV = 1;
    if (dl_config_save(&t, at(o, "teacher.json"), err) || dl_config_save(&s, at(o, "student.json"), err)) return -1;
    dl_demo_opts d;
    dl_demo_opts_default(&d);
    d.seed = (uint64_t)o->seed, d.threads = o->threads;
    dl_train_opts to;
    dl_demo_train_defaults(&to, &d, at(o, "teacher.json"), at(o, "data"), at(o, "teacher"), o->teacher_steps);
    dl_log("bench: training the teacher, %d steps", o->teacher_steps);
    return dl_train(&to, err);
}

/* ---- serving and harvesting ------------------------------------------------------------------------- */

static dl_server *serve(const char *model, const char *db, const char *key_file, char *url, size_t n, dl_error *err) {
    dl_serve_cfg c;
    dl_demo_serve_cfg(&c, model, db);
    c.wm_key_file = key_file;
    dl_server *s = dl_serve_start(&c, err);
    if (s) snprintf(url, n, "http://127.0.0.1:%d", dl_serve_port(s));
    return s;
}

static int harvest(const opts *o, const char *key_file, const char *out, dl_error *err) {
    char url[64];
    dl_server *s = serve(at(o, "teacher"), at(o, "usage.sqlite"), key_file, url, sizeof url, err);
    if (!s) return -1;
    dl_harvest_opts h;
    dl_harvest_opts_default(&h);
    h.endpoint = url, h.prompts_path = at(o, "prompts.jsonl"), h.out_path = out;
    h.max_tokens = o->tokens, h.top_logprobs = 10, h.concurrency = 16;
    dl_harvest_result r;
    int rc = dl_harvest_run(&h, &r, err);
    if (rc == 0 && r.failed) rc = dl_fail(err, "bench: %ld prompts failed", r.failed);
    dl_serve_stop(s);
    return rc;
}

/* ---- the mixes ---------------------------------------------------------------------------------- */

/* line of each prompt id (ids are 0..n-1 from dl_demo_write_prompts), as text */
static char **lines_by_id(const char *path, int n, dl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return dl_fail(err, "%s: cannot open", path), NULL;
    char **by = calloc((size_t)n, sizeof *by), *line = NULL;
    size_t cap = 0;
    while (by && getline(&line, &cap, f) > 0) {
        json_t *v = json_loads(line, 0, NULL);
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (v && id >= 0 && id < n && !by[id]) by[id] = strdup(line);
        json_decref(v);
    }
    free(line);
    fclose(f);
    return by;
}

/* WORK/mix-P.jsonl: prompt id i from the watermarked harvest when i % 10 < P / 10 */
static int write_mix(const opts *o, char **marked, char **plain, int percent, char *path, size_t n, dl_error *err) {
    char name[64];
    snprintf(name, sizeof name, "mix-%d.jsonl", percent);
    snprintf(path, n, "%s", at(o, name));
    dl_buf b = {0};
    for (int i = 0; i < o->prompts; i++) {
        const char *l = i % 10 < percent / 10 ? marked[i] : plain[i];
        if (l) dl_buf_append(&b, l, strlen(l));
    }
    int rc = b.len ? dl_write_file_atomic(path, b.data, b.len, err) : dl_fail(err, "bench: the harvests are empty");
    dl_buf_free(&b);
    return rc;
}

static int distil_student(const opts *o, const char *mix, const char *out, dl_error *err) {
    dl_distill_opts d;
    dl_distill_opts_default(&d);
    dl_demo_opts demo;
    dl_demo_opts_default(&demo);
    demo.seed = (uint64_t)o->seed, demo.threads = o->threads;
    dl_demo_train_defaults(&d.train, &demo, at(o, "student.json"), NULL, out, o->student_steps);
    d.train.seq_len = o->tokens + 32 < 256 ? o->tokens + 32 : 256; /* prompt + completion, whole (max_T 256) */
    d.train.eval_interval = o->student_steps;
    d.train.weight_decay = o->weight_decay;
    d.harvest = mix;
    d.tokenizer = at(o, "tokenizer.json");
    d.kd.kind = DL_KD_FKL;
    d.kd.ce_weight = (float)o->ce_weight;
    return dl_distill(&d, err);
}

/* ---- detection ------------------------------------------------------------------------------------ */

/* WORK/read.txt: read_bytes of the corpus's last 5% (data prepare's validation part), from a line start */
static int write_reading(const opts *o, const char *corpus, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(corpus, &text, &len, err)) return -1;
    size_t from = len - len / 20;
    while (from < len && text[from - 1] != '\n') from++;
    size_t n = len - from < (size_t)o->read_bytes ? len - from : (size_t)o->read_bytes;
    while (n > 0 && (text[from + n] & 0xc0) == 0x80) n--; /* do not cut a character */
    int rc = dl_write_file_atomic(at(o, "read.txt"), text + from, n, err);
    free(text);
    return rc;
}

typedef struct score { double log_p, z; } score;

static int detect_model(const opts *o, const char *student, score *s, dl_error *err) {
    dl_detect_cfg c;
    dl_detect_cfg_default(&c);
    c.key_file = at(o, "wm.key"), c.suspect = student, c.input = at(o, "read.txt"), c.tokenizer = at(o, "tokenizer.json");
    c.unmarked_text = 1; /* the corpus: not written with the key */
    dl_detect_result r;
    if (dl_detect_model(&c, &r, err)) return -1;
    *s = (score){r.st.log_p, r.st.z};
    return 0;
}

static int detect_api(const opts *o, const char *student, score *s, dl_error *err) {
    char url[64];
    dl_server *srv = serve(student, at(o, "student-usage.sqlite"), NULL, url, sizeof url, err);
    if (!srv) return -1;
    dl_detect_cfg c;
    dl_detect_cfg_default(&c);
    c.key_file = at(o, "wm.key"), c.tokenizer = at(o, "tokenizer.json");
    c.harvest.endpoint = url, c.harvest.prompts_path = at(o, "api-prompts.jsonl");
    c.harvest.max_tokens = o->tokens, c.harvest.concurrency = 16, c.harvest.temperature = o->api_temperature;
    dl_detect_result r;
    int rc = dl_detect_api(&c, &r, err);
    if (rc == 0) *s = (score){r.st.log_p, r.st.z};
    dl_serve_stop(srv);
    return rc;
}

/* ---- the run -------------------------------------------------------------------------------------- */

static const int PERCENT[3] = {100, 10, 0};

static int run(const opts *o, score *model, score *api, double *secs, dl_error *err) {
    char corpus[4096], mix[3][4096], student[3][4096];
    if (o->corpus) snprintf(corpus, sizeof corpus, "%s", o->corpus);
    else if (dl_demo_default_corpus(corpus, sizeof corpus, err)) return -1;
    double t = dl_now();
    if (dl_mkdir_p(o->work, err) || make_teacher(o, corpus, err)) return -1;
    secs[0] = dl_now() - t, t = dl_now();
    const char key[] = "bench/provenance: the teacher's watermark key\n";
    if (dl_write_file_atomic(at(o, "wm.key"), key, sizeof key - 1, err) ||
        dl_demo_write_prompts(corpus, at(o, "prompts.jsonl"), o->prompts, err))
        return -1;
    dl_rm_rf(at(o, "harvest-wm.jsonl"), NULL), dl_rm_rf(at(o, "harvest-plain.jsonl"), NULL); /* harvests resume */
    if (harvest(o, at(o, "wm.key"), at(o, "harvest-wm.jsonl"), err) || harvest(o, NULL, at(o, "harvest-plain.jsonl"), err))
        return -1;
    secs[1] = dl_now() - t, t = dl_now();
    char **marked = lines_by_id(at(o, "harvest-wm.jsonl"), o->prompts, err),
         **plain = marked ? lines_by_id(at(o, "harvest-plain.jsonl"), o->prompts, err) : NULL;
    int rc = plain ? 0 : -1;
    for (int k = 0; rc == 0 && k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "student-%d", PERCENT[k]);
        snprintf(student[k], sizeof student[k], "%s", at(o, name));
        dl_rm_rf(student[k], NULL);
        dl_log("bench: distilling the student of the %d%% watermarked harvest", PERCENT[k]);
        rc = write_mix(o, marked, plain, PERCENT[k], mix[k], sizeof mix[k], err) || distil_student(o, mix[k], student[k], err);
    }
    for (int i = 0; i < o->prompts; i++) free(marked ? marked[i] : NULL), free(plain ? plain[i] : NULL);
    free(marked), free(plain);
    if (rc) return -1;
    secs[2] = dl_now() - t, t = dl_now();
    if (write_reading(o, corpus, err)) return -1;
    /* the API test's prompts: lines of the held-out text, which no harvest prompt came from */
    if (dl_demo_write_prompts(at(o, "read.txt"), at(o, "api-prompts.jsonl"), o->api_prompts, err)) return -1;
    for (int k = 0; k < 3; k++)
        if (detect_model(o, student[k], &model[k], err) || detect_api(o, student[k], &api[k], err)) return -1;
    secs[3] = dl_now() - t;
    return 0;
}

int main(int argc, char **argv) {
    dl_ops_tune_runtime(argv);
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    dl_set_threads(o.threads);
    if (!getenv("no_proxy") && !getenv("NO_PROXY")) setenv("no_proxy", "127.0.0.1", 0);
    score model[3], api[3];
    double secs[4] = {0}, t0 = dl_now();
    dl_error err;
    if (run(&o, model, api, secs, &err)) return fprintf(stderr, "bench: %s\n", err.msg), 1;
    printf("{");
    for (int k = 0; k < 3; k++)
        printf("\"p_model_%d\": %.4g, \"p_api_%d\": %.4g, \"log10_p_model_%d\": %.2f, \"log10_p_api_%d\": %.2f, "
               "\"z_model_%d\": %.2f, \"z_api_%d\": %.2f, ",
               PERCENT[k], exp(model[k].log_p), PERCENT[k], exp(api[k].log_p), PERCENT[k], model[k].log_p / log(10.0),
               PERCENT[k], api[k].log_p / log(10.0), PERCENT[k], model[k].z, PERCENT[k], api[k].z);
    printf("\"ce_weight\": %g, \"weight_decay\": %g, ", o.ce_weight, o.weight_decay);
    printf("\"prompts\": %d, \"tokens\": %d, \"student_steps\": %d, \"api_prompts\": %d, \"api_temperature\": %g, "
           "\"teacher_s\": %.0f, \"harvest_s\": %.0f, \"students_s\": %.0f, \"detect_s\": %.0f, \"total_s\": %.0f}\n",
           o.prompts, o.tokens, o.student_steps, o.api_prompts, o.api_temperature, secs[0], secs[1], secs[2], secs[3],
           dl_now() - t0);
    return 0;
}
