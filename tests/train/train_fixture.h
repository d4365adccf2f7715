/* Shared by the trainer tests: a tiny synthetic data folder, options for configs/tiny.json,
 * and readers for metrics.jsonl and safetensors files. */
#ifndef TRAIN_FIXTURE_H
#define TRAIN_FIXTURE_H

#include "data/data.h"
#include "model/model.h"
#include "test.h"
#include "train/train.h"
#include <jansson.h>

#define TINY_CONFIG DISTIL_SOURCE_DIR "/configs/tiny.json"

/* A stream with structure a model can pick up in a few steps: a fixed walk over 200 ids with
 * a jump every 17 tokens. */
static inline void fixture_tokens(int32_t *ids, size_t n, uint32_t salt) {
    uint32_t x = 1 + salt;
    for (size_t i = 0; i < n; i++) {
        x = (x * 31u + 7u) % 200u;
        if (i % 17 == 0) x = (x + salt + (uint32_t)(i / 17)) % 200u;
        ids[i] = (int32_t)x;
    }
}

/* DIR/train.bin (n_train tokens), DIR/val.bin (n_val), DIR/tokenizer.json (a stand-in: the
 * trainer copies it without reading it). */
static inline void fixture_data(const char *dir, size_t n_train, size_t n_val, uint32_t vocab) {
    char p[1024];
    dl_error err;
    int32_t *ids = malloc((n_train + n_val) * sizeof *ids);
    fixture_tokens(ids, n_train + n_val, 3);
    snprintf(p, sizeof p, "%s/train.bin", dir);
    if (dl_mkdir_p(dir, &err) || dl_tokfile_write(p, ids, n_train, vocab, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    snprintf(p, sizeof p, "%s/val.bin", dir);
    if (dl_tokfile_write(p, ids + n_train, n_val, vocab, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (dl_write_file_atomic(p, "{\"fixture\": true}\n", 18, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    free(ids);
}

static inline dl_train_opts fixture_opts(const char *data, const char *out, int steps) {
    dl_train_opts o;
    dl_train_opts_default(&o);
    o.config = TINY_CONFIG;
    o.data = data;
    o.out = out;
    o.steps = steps;
    o.batch = 4;
    o.seq_len = 32;
    o.grad_accum = 2;
    o.lr = 1e-2;
    o.min_lr = 1e-3;
    o.warmup = 3;
    o.eval_interval = 5;
    o.eval_tokens = 256;
    o.save_interval = 5;
    o.log_interval = 1;
    o.seed = 7;
    o.threads = 1; /* a loaded 2-core machine makes OpenMP barriers slow; test_resume also tries 2 */
    return o;
}

/* The lines of RUN/metrics.jsonl as JSON objects (an array); NULL if unreadable. */
static inline json_t *fixture_metrics(const char *run) {
    char p[1024], *text;
    size_t len;
    dl_error err;
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    if (dl_read_file(p, &text, &len, &err)) return NULL;
    json_t *all = json_array();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o) { json_decref(all); free(text); return NULL; }
        json_array_append_new(all, o);
    }
    free(text);
    return all;
}

static inline int fixture_exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return dl_path_exists(p);
}

#endif
