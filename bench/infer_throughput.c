/* Inference throughput of distil on one model folder: prompt processing (prefill, one
 * dl_model_decode call over the whole prompt) and single-stream greedy decoding (one token a
 * call, argmax of the logits). bench/infer_throughput runs it beside llama.cpp.
 *   bench_infer_throughput make --config CONFIG.json --out DIR [--seed S]
 *       random weights + a bytes-only tokenizer, written as a model folder (to export as GGUF)
 *   bench_infer_throughput run --model DIR [--threads N] [--prompt P] [--gen G] [--reps R]
 *       prints {"distil_prefill_tps": ..., "distil_decode_tps": ...}: the best of R repetitions */
#include "model/model.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *config, *out, *model;
    int seed, threads, prompt, gen, reps;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.threads = 2, .prompt = 128, .gen = 128, .reps = 3, .seed = 1};
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        if (!strcmp(a, "--config")) o->config = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--seed")) o->seed = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--prompt")) o->prompt = atoi(v);
        else if (!strcmp(a, "--gen")) o->gen = atoi(v);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
    }
    if (o->threads <= 0 || o->prompt <= 0 || o->gen <= 0 || o->reps <= 0)
        return fprintf(stderr, "bench: --threads, --prompt, --gen, --reps must be positive\n"), -1;
    return 0;
}

static int make_model(const opts *o) {
    dl_error err;
    dl_config c;
    dl_model m;
    char path[4096];
    if (!o->config || !o->out) return fprintf(stderr, "bench: make needs --config and --out\n"), 2;
    if (dl_config_load(o->config, &c, &err) || dl_model_create(&m, &c, &err)) goto fail;
    dl_model_init_random(&m, (uint64_t)o->seed);
    dl_tokenizer *t = dl_tok_train("", 0, 257, NULL, &err); /* the 256 bytes and <|endoftext|> */
    int rc = !t || dl_model_save(&m, o->out, &err) || dl_path_join(path, sizeof path, o->out, "tokenizer.json", &err) ||
             dl_tok_save(t, path, &err);
    dl_tok_free(t);
    dl_model_free(&m);
    if (!rc) return 0;
fail:
    fprintf(stderr, "bench: %s\n", err.msg);
    return 1;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* One repetition: prefill P tokens, then G greedy steps; seconds of each part. */
static int one_rep(const dl_model *m, dl_kv_cache *kv, const int32_t *prompt, const opts *o, float *logits,
                   double *t_prefill, double *t_decode, dl_error *err) {
    dl_kv_cache_reset(kv);
    double t0 = dl_now();
    if (dl_model_decode(m, kv, prompt, o->prompt, logits, 0, err)) return -1;
    double t1 = dl_now();
    for (int i = 0; i < o->gen; i++) {
        int32_t id = argmax(logits, m->cfg.V);
        if (dl_model_decode(m, kv, &id, 1, logits, 0, err)) return -1;
    }
    *t_prefill = t1 - t0;
    *t_decode = dl_now() - t1;
    return 0;
}

static int run(const opts *o) {
    dl_error err;
    dl_model m;
    dl_kv_cache kv = {0};
    if (!o->model) return fprintf(stderr, "bench: run needs --model\n"), 2;
    if (dl_model_load(&m, o->model, &err)) return fprintf(stderr, "bench: %s\n", err.msg), 1;
    int rc = 1;
    int32_t *prompt = malloc((size_t)o->prompt * sizeof *prompt);
    float *logits = malloc((size_t)m.cfg.V * sizeof *logits);
    if (!prompt || !logits) {
        fprintf(stderr, "bench: out of memory\n");
        goto done;
    }
    /* the same prompt as the llama.cpp side: byte tokens, (i * 37 + 11) % 256 */
    for (int i = 0; i < o->prompt; i++) prompt[i] = (i * 37 + 11) % 256;
    if (dl_kv_cache_create(&kv, &m.cfg, o->prompt + o->gen, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        goto done;
    }
    double best_p = 1e30, best_d = 1e30;
    for (int r = 0; r <= o->reps; r++) { /* repetition 0 warms up */
        double tp, td;
        if (one_rep(&m, &kv, prompt, o, logits, &tp, &td, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            goto done;
        }
        if (r > 0 && tp < best_p) best_p = tp;
        if (r > 0 && td < best_d) best_d = td;
    }
    printf("{\"distil_prefill_tps\": %.1f, \"distil_decode_tps\": %.1f, \"params\": %zu}\n", o->prompt / best_p,
           o->gen / best_d, m.lay.total);
    rc = 0;
done:
    dl_kv_cache_free(&kv);
    free(prompt);
    free(logits);
    dl_model_free(&m);
    return rc;
}

int main(int argc, char **argv) {
    opts o;
    if (argc < 2 || parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_infer_throughput make --config C --out DIR | run --model DIR [--threads N] "
                        "[--prompt P] [--gen G] [--reps R]\n");
        return 2;
    }
    if (!strcmp(argv[1], "make")) return make_model(&o);
    if (strcmp(argv[1], "run") != 0) return fprintf(stderr, "bench: unknown mode %s (make or run)\n", argv[1]), 2;
    dl_ops_tune_runtime(argv); // OpenMP/OpenBLAS settings, see src/ops/runtime.c
    dl_set_threads(o.threads);
    return run(&o);
}
