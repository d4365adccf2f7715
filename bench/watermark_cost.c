/* What the watermark costs: text quality and decoding speed, on a trained model folder.
 *   bench_watermark_cost --model DIR [--samples 32] [--tokens 128] [--threads 1] [--gamma 0.25]
 *                        [--delta 2] [--context 1] [--batch 8] [--seed 1]
 * Samples continue short prompts at temperature 1, the same seeds with and without the
 * watermark (its bias applied as distil serve applies it). Prints one JSON line:
 *   ppl_plain, ppl_watermarked  perplexity of the sampled tokens under the model WITHOUT the bias
 *                               (exp of their mean cross-entropy; one batched forward per sample)
 *   z_plain, z_watermarked      mean detect-text z-score of the samples (the signal bought)
 *   decode_tps_plain, decode_tps_watermarked, decode_cost   one stream: tokens/s of the sampling
 *                               loop (decode + bias + sample), and 1 - watermarked/plain
 *   batch_tps_plain, batch_tps_watermarked   the serving scheduler with --batch choices at once
 * and the settings. */
#include "provenance/provenance.h"
#include "model/sampler.h"
#include "ops/ops.h"
#include "serve/sched.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *model;
    int samples, tokens, threads, context, batch, seed;
    double gamma, delta;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.samples = 32, .tokens = 128, .threads = 1, .context = 1, .batch = 8, .seed = 1, .gamma = 0.25,
                .delta = 2.0};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--samples")) o->samples = atoi(v);
        else if (!strcmp(a, "--tokens")) o->tokens = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--context")) o->context = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = atoi(v);
        else if (!strcmp(a, "--gamma")) o->gamma = atof(v);
        else if (!strcmp(a, "--delta")) o->delta = atof(v);
        else return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
    }
    if (!o->model) return fprintf(stderr, "bench: --model DIR is required (a trained model folder)\n"), -1;
    if (o->samples < 1 || o->tokens < 1 || o->threads < 1 || o->batch < 1)
        return fprintf(stderr, "bench: --samples, --tokens, --threads, --batch must be positive\n"), -1;
    return 0;
}

static const char *PROMPTS[] = {"And the", "In the beginning", "The king said", "Then he", "For the Lord", "And it came",
                                "Behold,", "They went"};
#define N_PROMPTS (int)(sizeof PROMPTS / sizeof PROMPTS[0])

typedef struct run {
    int32_t *ids; /* (samples, np_max + tokens): prompt then sample, row by row */
    int *np;      /* prompt length of each row */
    double seconds;
} run;

/* samples one row: the prompt's ids, then o->tokens sampled (bias applied when wm) */
static int sample_row(const dl_model *m, dl_kv_cache *kv, const dl_wm *wm, const opts *o, const dl_ivec *prompt,
                      uint64_t seed, int32_t *row, float *logits, dl_error *err) {
    int np = (int)prompt->len, V = m->cfg.V;
    dl_sampler_cfg cfg = dl_sampler_default();
    dl_rng r;
    dl_rng_seed(&r, seed);
    dl_kv_cache_reset(kv);
    memcpy(row, prompt->data, (size_t)np * sizeof *row);
    if (dl_model_decode(m, kv, row, np, logits, 0, err)) return -1;
    for (int i = np; i < np + o->tokens; i++) {
        if (wm && i >= wm->H) dl_wm_bias(wm, row + i - wm->H, logits, V);
        row[i] = dl_sample(logits, V, &cfg, &r);
        if (i + 1 < np + o->tokens && dl_model_decode(m, kv, &row[i], 1, logits, 0, err)) return -1;
    }
    return 0;
}

static int sample_all(const dl_model *m, const dl_tokenizer *tok, const dl_wm *wm, const opts *o, int width, run *out,
                      dl_error *err) {
    dl_kv_cache kv;
    if (dl_kv_cache_create(&kv, &m->cfg, width, err)) return -1;
    float *logits = malloc((size_t)m->cfg.V * sizeof *logits);
    out->ids = calloc((size_t)o->samples * width, sizeof *out->ids);
    out->np = calloc((size_t)o->samples, sizeof *out->np);
    int rc = logits && out->ids && out->np ? 0 : dl_fail(err, "out of memory");
    double t0 = dl_now();
    for (int s = 0; rc == 0 && s < o->samples; s++) {
        dl_ivec p = {0};
        rc = dl_tok_encode(tok, PROMPTS[s % N_PROMPTS], strlen(PROMPTS[s % N_PROMPTS]), 0, &p, err);
        out->np[s] = (int)p.len;
        if (rc == 0 && p.len + (size_t)o->tokens > (size_t)width) rc = dl_fail(err, "prompt %d is too long", s);
        if (rc == 0) rc = sample_row(m, &kv, wm, o, &p, (uint64_t)o->seed * 1000003u + (uint64_t)s, out->ids + (size_t)s * width, logits, err);
        dl_ivec_free(&p);
    }
    out->seconds = dl_now() - t0;
    free(logits);
    dl_kv_cache_free(&kv);
    return rc;
}

/* exp(mean cross-entropy of the sampled tokens), the model reading each row once */
static double perplexity(dl_model *m, const run *r, const opts *o, int width) {
    int32_t *tg = malloc((size_t)width * sizeof *tg);
    double sum = 0;
    long n = 0;
    for (int s = 0; s < o->samples; s++) {
        const int32_t *row = r->ids + (size_t)s * width;
        int T = r->np[s] + o->tokens - 1;
        for (int t = 0; t < T; t++) tg[t] = t + 1 >= r->np[s] ? row[t + 1] : -1; /* only the sampled tokens count */
        sum += (double)dl_model_forward(m, row, tg, 1, T) * o->tokens;
        n += o->tokens;
    }
    free(tg);
    return exp(sum / (double)n);
}

static double mean_z(const dl_wm *wm, const run *r, const opts *o, int width) {
    double z = 0;
    for (int s = 0; s < o->samples; s++) {
        dl_wm_scorer *sc = dl_wm_scorer_new(wm);
        const int32_t *gen = r->ids + (size_t)s * width + r->np[s];
        dl_wm_stats st;
        dl_wm_score(sc, gen, gen, (size_t)o->tokens, NULL, 0, NULL);
        dl_wm_scorer_stats(sc, &st);
        z += st.z;
        dl_wm_scorer_free(sc);
    }
    return z / o->samples;
}

/* tokens/s of the serving scheduler with o->batch choices of one prompt decoded together */
static double batch_tps(const dl_model *m, const dl_tokenizer *tok, const dl_wm *wm, const opts *o, dl_error *err) {
    dl_sched *s = dl_sched_start(m, tok, o->batch, 4, err);
    if (!s) return -1;
    if (wm) dl_sched_set_watermark(s, wm);
    dl_ivec p = {0};
    dl_tok_encode(tok, PROMPTS[0], strlen(PROMPTS[0]), 0, &p, err);
    dl_sampler_cfg cfg = dl_sampler_default();
    dl_job *j = dl_job_new(&p, 1, o->batch, o->tokens, &cfg, (uint64_t)o->seed, -1, NULL, 0, 0);
    double t0 = dl_now();
    long tokens = 0;
    if (j && dl_sched_submit(s, j) == 0) {
        dl_job_wait(j);
        for (int c = 0; c < j->n_choices; c++) tokens += (long)j->choices[c].tokens.len;
    }
    double secs = dl_now() - t0;
    dl_job_release(j);
    dl_ivec_free(&p);
    dl_sched_free(s);
    return tokens / secs;
}

int main(int argc, char **argv) {
    dl_ops_tune_runtime(argv);
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    dl_set_threads(o.threads);
    dl_log_set_level(DL_LOG_QUIET);
    dl_error err;
    dl_model m;
    char tp[4096];
    dl_tokenizer *tok = NULL;
    if (dl_model_load(&m, o.model, &err) || dl_path_join(tp, sizeof tp, o.model, "tokenizer.json", &err) ||
        !(tok = dl_tok_load(tp, &err)))
        return fprintf(stderr, "bench: %s\n", err.msg), 1;
    int width = 32 + o.tokens;
    if (width > m.cfg.max_T) return fprintf(stderr, "bench: --tokens %d does not fit the context %d\n", o.tokens, m.cfg.max_T), 1;
    dl_wm wm;
    if (dl_wm_init(&wm, "bench key", 9, o.gamma, o.delta, o.context, &err)) return fprintf(stderr, "bench: %s\n", err.msg), 1;
    run plain = {0}, marked = {0};
    if (sample_all(&m, tok, NULL, &o, width, &plain, &err) || sample_all(&m, tok, &wm, &o, width, &marked, &err) ||
        dl_model_alloc_train(&m, 1, width, &err))
        return fprintf(stderr, "bench: %s\n", err.msg), 1;
    double ppl_p = perplexity(&m, &plain, &o, width), ppl_w = perplexity(&m, &marked, &o, width);
    double total = (double)o.samples * o.tokens, tps_p = total / plain.seconds, tps_w = total / marked.seconds;
    double btp = batch_tps(&m, tok, NULL, &o, &err), btw = batch_tps(&m, tok, &wm, &o, &err);
    long params = (long)m.lay.total;
    printf("{\"model\": \"%s\", \"params\": %ld, \"vocab\": %d, \"samples\": %d, \"tokens\": %d, \"gamma\": %g, "
           "\"delta\": %g, \"context\": %d, \"threads\": %d, \"ppl_plain\": %.3f, \"ppl_watermarked\": %.3f, "
           "\"z_plain\": %.2f, \"z_watermarked\": %.2f, \"decode_tps_plain\": %.1f, \"decode_tps_watermarked\": %.1f, "
           "\"decode_cost\": %.3f, \"batch\": %d, \"batch_tps_plain\": %.1f, \"batch_tps_watermarked\": %.1f}\n",
           o.model, params, m.cfg.V, o.samples, o.tokens, o.gamma, o.delta, o.context, o.threads, ppl_p, ppl_w,
           mean_z(&wm, &plain, &o, width), mean_z(&wm, &marked, &o, width), tps_p, tps_w, 1.0 - tps_w / tps_p, o.batch,
           btp, btw);
    free(plain.ids), free(plain.np), free(marked.ids), free(marked.np);
    dl_tok_free(tok);
    dl_model_free(&m);
    return 0;
}
