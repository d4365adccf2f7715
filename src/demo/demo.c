/* distil demo: tokenizer, data, teacher, samples, then a white-box student, a black-box student
 * (blackbox.c) and the comparison. */
#include "demo/demo.h"
#include "data/data.h"
#include "distill/distill.h"
#include "eval/eval.h"
#include "eval/generate.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/train.h"
#include <stdlib.h>
#include <string.h>

#define TABLE_PROMPT "And it came to pass"

void dl_demo_opts_default(dl_demo_opts *o) {
    memset(o, 0, sizeof *o);
    o->out = "runs/demo";
    o->vocab_size = 2048;
    o->steps = 1000;
    o->student_steps = 1500;
    o->threads = 0;
    o->seed = 1;
    o->samples = 3;
    o->sample_tokens = 60;
    o->harvest_prompts = 2048;
    o->harvest_tokens = 48;
    o->bb_steps = 600;
}

int dl_demo_default_corpus(char *path, size_t n, dl_error *err) {
    const char *env = getenv("DISTIL_DATA_DIR"), *home = getenv("HOME");
    const char *dirs[3] = {env, "/usr/local/share/distil", NULL};
    char homedir[2048];
    if (home && (size_t)snprintf(homedir, sizeof homedir, "%s/.local/share/distil", home) < sizeof homedir)
        dirs[2] = homedir;
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !*dirs[i]) continue;
        if (dl_path_join(path, n, dirs[i], "kjv.txt", err)) return -1;
        if (dl_path_exists(path)) return 0;
    }
    return dl_fail(err, "no default corpus: run scripts/install-deps.sh (it writes the King James Bible to "
                        "/usr/local/share/distil/kjv.txt) or pass --corpus FILE");
}

static int train_tokenizer(const char *corpus, int vocab, const char *out_path, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(corpus, &text, &len, err)) return -1;
    double t0 = dl_now();
    dl_tokenizer *tok = dl_tok_train(text, len, vocab, NULL, err);
    free(text);
    if (!tok) return dl_fail_ctx(err, "%s", corpus);
    int rc = dl_tok_save(tok, out_path, err);
    dl_log("demo: tokenizer with %d tokens trained in %.1f s", dl_tok_vocab_size(tok), dl_now() - t0);
    dl_tok_free(tok);
    return rc;
}

/* The teacher, ~2M parameters: small enough to learn something in a few minutes on 2 cores.
 * The student, ~1/4 of it: half the width, one layer fewer, one kv head. */
static int write_configs(const char *teacher_path, const char *student_path, int vocab, dl_error *err) {
    dl_config t = {.V = vocab, .C = 192, .F = 512, .L = 4, .NH = 6, .NKV = 2, .max_T = 256,
                   .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = 1, .bos_id = -1, .eos_id = -1};
    dl_config s = t;
    s.C = 96, s.F = 256, s.L = 3, s.NH = 3, s.NKV = 1;
    return dl_config_save(&t, teacher_path, err) || dl_config_save(&s, student_path, err) ? -1 : 0;
}

static int print_token(const char *text, size_t len, void *user) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int show_samples(const char *model_dir, const dl_demo_opts *o, dl_error *err) {
    static const char *prompts[] = {"In the beginning", "And the LORD said unto Moses,", "Blessed are",
                                    "The kingdom of heaven", "And it came to pass"};
    dl_model m;
    if (dl_model_load(&m, model_dir, err)) return -1;
    char tp[4096];
    if (dl_path_join(tp, sizeof tp, model_dir, "tokenizer.json", err)) { dl_model_free(&m); return -1; }
    dl_tokenizer *tok = dl_tok_load(tp, err);
    if (!tok) { dl_model_free(&m); return -1; }
    dl_sampler_cfg sc = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f};
    int n = o->samples < 5 ? o->samples : 5, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        printf("\n--- teacher sample %d ---\n%s", i + 1, prompts[i]);
        dl_generate_result res;
        rc = dl_generate(&m, tok, prompts[i], o->sample_tokens, &sc, o->seed + (uint64_t)i, print_token, NULL,
                         &res, err);
        printf("\n");
    }
    dl_tok_free(tok);
    dl_model_free(&m);
    return rc;
}

void dl_demo_train_defaults(dl_train_opts *to, const dl_demo_opts *o, const char *cfg, const char *data,
                            const char *out, int steps) {
    dl_train_opts_default(to);
    to->config = cfg;
    to->data = data;
    to->out = out;
    to->steps = steps;
    to->batch = DL_DEMO_BATCH;
    to->seq_len = DL_DEMO_SEQ;
    to->lr = 2e-3;
    to->min_lr = 2e-4;
    to->warmup = steps / 20 > 0 ? steps / 20 : 1;
    to->eval_interval = steps / 4 > 0 ? steps / 4 : 1;
    to->eval_tokens = 32768;
    to->save_interval = steps;
    to->seed = o->seed;
    to->threads = o->threads;
}

/* A live teacher with pure forward KL: in bench/kd_quality (README there) it gave the lowest
 * student loss and the best agreement. A top-k cache would need a teacher pass over all of
 * train.bin first, more teacher forwards than the few hundred batches the student sees. */
static int distil_student(const dl_demo_opts *o, const char *teacher, const char *cfg, const char *data,
                          const char *out, dl_error *err) {
    dl_distill_opts d;
    dl_distill_opts_default(&d);
    dl_demo_train_defaults(&d.train, o, cfg, data, out, o->student_steps);
    d.train.eval_interval = o->student_steps; // each evaluation runs the teacher too: once, at the end
    d.teacher = teacher;
    d.kd.kind = DL_KD_FKL;
    d.kd.tau = 1.0f;
    d.kd.ce_weight = 0.0f;
    dl_log("demo: distilling a student from the teacher, %d steps", o->student_steps);
    return dl_distill(&d, err);
}

typedef struct {
    char corpus[4096], tok[4096], data[4096], cfg[4096], model[4096], val[4096], scfg[4096], student[4096];
    char db[4096], prompts[4096], harvest[4096], student_bb[4096], key[4096], marked[4096];
} demo_paths;

static int make_paths(demo_paths *p, const dl_demo_opts *o, dl_error *err) {
    if (o->corpus) {
        if ((size_t)snprintf(p->corpus, sizeof p->corpus, "%s", o->corpus) >= sizeof p->corpus)
            return dl_fail(err, "demo: --corpus path is too long");
    } else if (dl_demo_default_corpus(p->corpus, sizeof p->corpus, err))
        return -1;
    if (dl_path_join(p->tok, sizeof p->tok, o->out, "tokenizer.json", err) ||
        dl_path_join(p->data, sizeof p->data, o->out, "data", err) ||
        dl_path_join(p->cfg, sizeof p->cfg, o->out, "config.json", err) ||
        dl_path_join(p->model, sizeof p->model, o->out, "model", err) ||
        dl_path_join(p->val, sizeof p->val, p->data, "val.bin", err) ||
        dl_path_join(p->scfg, sizeof p->scfg, o->out, "student.json", err) ||
        dl_path_join(p->student, sizeof p->student, o->out, "student", err) ||
        dl_path_join(p->db, sizeof p->db, o->out, "usage.sqlite", err) ||
        dl_path_join(p->prompts, sizeof p->prompts, o->out, "prompts.jsonl", err) ||
        dl_path_join(p->harvest, sizeof p->harvest, o->out, "harvest.jsonl", err) ||
        dl_path_join(p->student_bb, sizeof p->student_bb, o->out, "student-bb", err) ||
        dl_path_join(p->key, sizeof p->key, o->out, "watermark.key", err) ||
        dl_path_join(p->marked, sizeof p->marked, o->out, "heldout.txt", err))
        return -1;
    return 0;
}

/* The table: the teacher against the white-box and the black-box student. */
static const char *const STUDENT_NAMES[2] = {"white-box", "black-box"};

static int compare(const demo_paths *p, const dl_demo_opts *o, dl_error *err) {
    const char *dirs[2] = {p->student, p->student_bb};
    return dl_demo_compare(p->model, dirs, STUDENT_NAMES, 2, p->val, TABLE_PROMPT, o->sample_tokens, err);
}

/* The proof: which student learned from the watermarked API. */
static int proof(const demo_paths *p, dl_error *err) {
    const char *dirs[2] = {p->student, p->student_bb};
    return dl_demo_proof(p->key, p->corpus, p->marked, dirs, STUDENT_NAMES, 2, err);
}

int dl_demo_run(const dl_demo_opts *o, dl_error *err) {
    demo_paths p;
    if (make_paths(&p, o, err)) return -1;
    if (!dl_path_exists(p.corpus)) return dl_fail(err, "demo: corpus %s does not exist", p.corpus);
    if (dl_mkdir_p(o->out, err)) return -1;
    dl_set_threads(o->threads);
    double t0 = dl_now();
    dl_log("demo: corpus %s, run folder %s", p.corpus, o->out);
    if (train_tokenizer(p.corpus, o->vocab_size, p.tok, err)) return -1;
    if (dl_data_prepare(p.corpus, p.tok, 0.05, p.data, err)) return -1;
    dl_tokfile f;
    if (dl_tokfile_open(&f, p.val, err)) return -1;
    int vocab = (int)f.vocab_size;
    dl_tokfile_close(&f);
    if (write_configs(p.cfg, p.scfg, vocab, err)) return -1;

    dl_train_opts to;
    dl_demo_train_defaults(&to, o, p.cfg, p.data, p.model, o->steps);
    dl_log("demo: training the teacher, %d steps", o->steps);
    if (dl_train(&to, err)) return -1;
    if (show_samples(p.model, o, err)) return -1;
    double t1 = dl_now();
    if (distil_student(o, p.model, p.scfg, p.data, p.student, err)) return -1;
    dl_log("demo: white-box student distilled in %.0f s", dl_now() - t1);
    dl_demo_bb bb = {p.corpus, p.model, p.tok, p.scfg, p.key, p.db, p.prompts, p.harvest, p.student_bb};
    if (dl_demo_write_key(p.key, err) || dl_demo_blackbox(o, &bb, err) || compare(&p, o, err) || proof(&p, err))
        return -1;
    dl_log("demo: done in %.0f s; teacher in %s, white-box student in %s, black-box student in %s, its harvest in %s "
           "(try: distil generate --model %s --prompt \"And God\")",
           dl_now() - t0, p.model, p.student, p.student_bb, p.harvest, p.student);
    return 0;
}
