/* Tiny random models and watermarked sampling for the provenance tests: the library sampler
 * (dl_sample) over KV-cache decoding, with the watermark's bias applied as distil serve applies
 * it (delta on the green logits after the last H tokens, prompt included, before sampling). */
#ifndef DISTIL_TEST_WM_FIXTURE_H
#define DISTIL_TEST_WM_FIXTURE_H
#include "model/model.h"
#include "model/sampler.h"
#include "provenance/provenance.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static inline void wm_fixture_die(const char *what, const dl_error *err) {
    fprintf(stderr, "fixture: %s: %s\n", what, err->msg);
    exit(2);
}

/* A random Llama model; scale multiplies every weight (sharper or flatter next-token
 * distributions). */
static inline void wm_make_model(dl_model *m, int V, int C, int L, int max_T, float scale, uint64_t seed) {
    dl_config c = {.V = V, .C = C, .F = 2 * C, .L = L, .NH = 4, .NKV = 2, .max_T = max_T, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 1, .bos_id = -1, .eos_id = -1};
    dl_error err;
    if (dl_model_create(m, &c, &err)) wm_fixture_die("model", &err);
    dl_model_init_random(m, seed);
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] *= scale;
}

/* entropy (nats) of softmax(logits / temperature) */
static inline double wm_entropy(const float *logits, int V, float temperature) {
    double mx = -INFINITY, z = 0, s = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i] / temperature);
    for (int i = 0; i < V; i++) z += exp(logits[i] / temperature - mx);
    for (int i = 0; i < V; i++) {
        double p = exp(logits[i] / temperature - mx) / z;
        if (p > 0) s -= p * log(p);
    }
    return s;
}

/* Writes prompt (np ids) then n sampled ids to out (np + n). wm NULL: no watermark. *entropy (may
 * be NULL) receives the summed entropy of the unwatermarked distributions sampled from. */
static inline void wm_sample(const dl_model *m, dl_kv_cache *kv, const dl_wm *wm, const int32_t *prompt, int np, int n,
                      float temperature, uint64_t seed, int32_t *out, double *entropy) {
    dl_error err;
    int V = m->cfg.V;
    float *logits = malloc((size_t)V * sizeof *logits);
    dl_sampler_cfg cfg = {temperature, 0, 1.0f};
    dl_rng r;
    dl_rng_seed(&r, seed);
    dl_kv_cache_reset(kv);
    memcpy(out, prompt, (size_t)np * sizeof *out);
    if (dl_model_decode(m, kv, prompt, np, logits, 0, &err)) wm_fixture_die("decode", &err);
    for (int i = np; i < np + n; i++) {
        if (entropy) *entropy += wm_entropy(logits, V, temperature);
        if (wm && i >= wm->H) dl_wm_bias(wm, out + i - wm->H, logits, V);
        out[i] = dl_sample(logits, V, &cfg, &r);
        if (i + 1 < np + n && dl_model_decode(m, kv, &out[i], 1, logits, 0, &err)) wm_fixture_die("decode", &err);
    }
    free(logits);
}

#endif
