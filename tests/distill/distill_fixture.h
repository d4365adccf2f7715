/* Shared by the distillation tests: a small trained tokenizer, a data folder made with it, and
 * tiny teacher / student models (random weights; the teacher's scaled up so its distributions
 * are peaked and there is something to learn). */
#ifndef DISTILL_FIXTURE_H
#define DISTILL_FIXTURE_H

#include "data/data.h"
#include "distill/distill.h"
#include "model/model.h"
#include "test.h"
#include <jansson.h>

static const char *const FX_WORDS[] = {"the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "log",
                                       "and", "fox", "saw", "big", "red", "hen", "in", "sun", "of", "day"};

/* A text of n words drawn by a fixed LCG, with line breaks. */
static inline char *fx_corpus(int n, unsigned salt) {
    char *s = malloc((size_t)n * 5 + 1), *p = s;
    unsigned x = 12345u + salt;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        const char *w = FX_WORDS[(x >> 16) % 20];
        p += sprintf(p, "%s%s", w, i % 12 == 11 ? ".\n" : " ");
    }
    *p = 0;
    return s;
}

static inline void fx_die(const char *what, const dl_error *err) {
    fprintf(stderr, "fixture: %s: %s\n", what, err->msg);
    exit(2);
}

/* DIR/tokenizer.json (vocab_size tokens, trained on a corpus of the given salt), DIR/train.bin,
 * DIR/val.bin. Returns the tokenizer's size. */
static inline int fx_data(const char *dir, int vocab_size, unsigned salt) {
    dl_error err;
    char p[1024];
    char *text = fx_corpus(3000, salt);
    dl_tokenizer *tok = dl_tok_train(text, strlen(text), vocab_size, NULL, &err);
    if (!tok) fx_die("tokenizer", &err);
    dl_ivec ids = {0};
    if (dl_tok_encode(tok, text, strlen(text), 1, &ids, &err)) fx_die("encode", &err);
    int V = dl_tok_vocab_size(tok);
    size_t n_val = ids.len / 6;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (dl_mkdir_p(dir, &err) || dl_tok_save(tok, p, &err)) fx_die("save tokenizer", &err);
    snprintf(p, sizeof p, "%s/train.bin", dir);
    if (dl_tokfile_write(p, ids.data, ids.len - n_val, (uint32_t)V, &err)) fx_die("train.bin", &err);
    snprintf(p, sizeof p, "%s/val.bin", dir);
    if (dl_tokfile_write(p, ids.data + ids.len - n_val, n_val, (uint32_t)V, &err)) fx_die("val.bin", &err);
    dl_ivec_free(&ids);
    dl_tok_free(tok);
    free(text);
    return V;
}

static inline dl_config fx_config(int V, int L) {
    return (dl_config){.V = V, .C = 32, .F = 64, .L = L, .NH = 4, .NKV = 2, .max_T = 64, .rms_eps = 1e-5f,
                       .rope_theta = 10000.0f, .tied = 0, .bos_id = -1, .eos_id = -1};
}

/* A model folder: random weights times `gain`, plus the tokenizer.json of data_dir. */
static inline void fx_model(const char *dir, dl_config c, uint64_t seed, float gain, const char *data_dir) {
    dl_error err;
    dl_model m;
    char src[1024], dst[1024];
    if (dl_model_create(&m, &c, &err)) fx_die("model", &err);
    dl_model_init_random(&m, seed);
    for (size_t i = 0; i < m.lay.total; i++) m.params[i] *= gain;
    snprintf(src, sizeof src, "%s/tokenizer.json", data_dir);
    snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
    if (dl_model_save(&m, dir, &err) || dl_copy_file(src, dst, &err)) fx_die("save model", &err);
    dl_model_free(&m);
}

/* A teacher trained for `steps` on the data (a run folder is a model folder with tokenizer.json). */
static inline void fx_trained_teacher(const char *dir, dl_config c, const char *data_dir, int steps) {
    dl_error err;
    char cfg[1100];
    snprintf(cfg, sizeof cfg, "%s.config.json", dir);
    if (dl_config_save(&c, cfg, &err)) fx_die("config", &err);
    dl_train_opts o;
    dl_train_opts_default(&o);
    o.config = cfg, o.data = data_dir, o.out = dir, o.steps = steps;
    o.batch = 8, o.seq_len = 32, o.lr = 1e-2, o.min_lr = 1e-3, o.warmup = 5;
    o.eval_interval = 0, o.save_interval = 0, o.seed = 99, o.threads = 1;
    if (dl_train(&o, &err)) fx_die("train teacher", &err);
}

static inline void fx_write_config(const char *path, dl_config c) {
    dl_error err;
    if (dl_config_save(&c, path, &err)) fx_die("config", &err);
}

static inline dl_distill_opts fx_opts(const char *teacher, const char *student, const char *data, const char *out,
                                      int steps) {
    dl_distill_opts o;
    dl_distill_opts_default(&o);
    o.teacher = teacher;
    o.train.config = student;
    o.train.data = data;
    o.train.out = out;
    o.train.steps = steps;
    o.train.batch = 4;
    o.train.seq_len = 32;
    o.train.lr = 1e-2;
    o.train.min_lr = 1e-3;
    o.train.warmup = 2;
    o.train.eval_interval = 0;
    o.train.save_interval = 0;
    o.train.log_interval = 1;
    o.train.seed = 5;
    o.train.threads = 1;
    return o;
}

/* The lines of RUN/metrics.jsonl as a JSON array; NULL if unreadable. */
static inline json_t *fx_metrics(const char *run) {
    char p[1024], *text;
    size_t len;
    dl_error err;
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    if (dl_read_file(p, &text, &len, &err)) return NULL;
    json_t *all = json_array();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (o) json_array_append_new(all, o);
    }
    free(text);
    return all;
}

/* metrics[step][key], NaN when absent. */
static inline double fx_metric(json_t *lines, long step, const char *key) {
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *o = json_array_get(lines, i), *v = json_object_get(o, key);
        if (json_integer_value(json_object_get(o, "step")) == step && v) return json_number_value(v);
    }
    return NAN;
}

/* 1 when the model folders a and b hold the same parameters, bit for bit. */
static inline int fx_same_params(const char *a, const char *b) {
    dl_error err;
    dl_model x, y;
    if (dl_model_load(&x, a, &err)) return 0;
    if (dl_model_load(&y, b, &err)) return dl_model_free(&x), 0;
    int same = x.lay.total == y.lay.total && memcmp(x.params, y.params, x.lay.total * sizeof(float)) == 0;
    dl_model_free(&x);
    dl_model_free(&y);
    return same;
}

static inline int fx_has_checkpoint(const char *run) {
    char p[1024];
    snprintf(p, sizeof p, "%s/checkpoints", run);
    return dl_is_dir(p);
}

#endif
