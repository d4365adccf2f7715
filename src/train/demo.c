#include "demo.h"
#include "data/data.h"
#include "eval/eval.h"
#include "eval/generate.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train.h"
#include <stdlib.h>
#include <string.h>

void dl_demo_opts_default(dl_demo_opts *o) {
    memset(o, 0, sizeof *o);
    o->out = "runs/demo";
    o->vocab_size = 2048;
    o->steps = 1000;
    o->threads = 0;
    o->seed = 1;
    o->samples = 3;
    o->sample_tokens = 60;
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

/* A ~3M-parameter model: small enough to learn something in a few minutes on 2 cores. */
static int write_config(const char *path, int vocab, dl_error *err) {
    dl_config c = {.V = vocab, .C = 192, .F = 512, .L = 4, .NH = 6, .NKV = 2, .max_T = 256,
                   .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = 1, .bos_id = -1, .eos_id = -1};
    return dl_config_save(&c, path, err);
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
        printf("\n--- sample %d ---\n%s", i + 1, prompts[i]);
        dl_generate_result res;
        rc = dl_generate(&m, tok, prompts[i], o->sample_tokens, &sc, o->seed + (uint64_t)i, print_token, NULL,
                         &res, err);
        printf("\n");
    }
    dl_tok_free(tok);
    dl_model_free(&m);
    return rc;
}

static int report_val(const char *model_dir, const char *val_path, dl_error *err) {
    dl_model m;
    if (dl_model_load(&m, model_dir, err)) return -1;
    dl_tokfile f;
    if (dl_tokfile_open(&f, val_path, err)) { dl_model_free(&m); return -1; }
    dl_eval_result r;
    int rc = dl_eval_tokens(&m, &f, 8, 128, 0, &r, err);
    if (rc == 0)
        printf("validation loss %.4f (perplexity %.2f) over %llu tokens\n", r.mean_loss, r.perplexity,
               (unsigned long long)r.tokens);
    dl_tokfile_close(&f);
    dl_model_free(&m);
    return rc;
}

int dl_demo_run(const dl_demo_opts *o, dl_error *err) {
    char corpus[4096], tok[4096], data[4096], cfg[4096], model[4096], val[4096];
    if (o->corpus) snprintf(corpus, sizeof corpus, "%s", o->corpus);
    else if (dl_demo_default_corpus(corpus, sizeof corpus, err)) return -1;
    if (dl_mkdir_p(o->out, err) || dl_path_join(tok, sizeof tok, o->out, "tokenizer.json", err) ||
        dl_path_join(data, sizeof data, o->out, "data", err) ||
        dl_path_join(cfg, sizeof cfg, o->out, "config.json", err) ||
        dl_path_join(model, sizeof model, o->out, "model", err) ||
        dl_path_join(val, sizeof val, data, "val.bin", err))
        return -1;
    dl_set_threads(o->threads);
    double t0 = dl_now();
    dl_log("demo: corpus %s, run folder %s", corpus, o->out);
    if (train_tokenizer(corpus, o->vocab_size, tok, err)) return -1;
    if (dl_data_prepare(corpus, tok, 0.05, data, err)) return -1;
    dl_tokfile f;
    if (dl_tokfile_open(&f, val, err)) return -1;
    int vocab = (int)f.vocab_size;
    dl_tokfile_close(&f);
    if (write_config(cfg, vocab, err)) return -1;

    dl_train_opts to;
    dl_train_opts_default(&to);
    to.config = cfg;
    to.data = data;
    to.out = model;
    to.steps = o->steps;
    to.batch = 16;
    to.seq_len = 128;
    to.lr = 2e-3;
    to.min_lr = 2e-4;
    to.warmup = o->steps / 20 > 0 ? o->steps / 20 : 1;
    to.eval_interval = o->steps / 4 > 0 ? o->steps / 4 : 1;
    to.eval_tokens = 32768;
    to.save_interval = o->steps;
    to.seed = o->seed;
    to.threads = o->threads;
    if (dl_train(&to, err)) return -1;
    if (report_val(model, val, err) || show_samples(model, o, err)) return -1;
    dl_log("demo: done in %.0f s; the model is in %s (try: distil generate --model %s --prompt \"And God\")",
           dl_now() - t0, model, model);
    return 0;
}
