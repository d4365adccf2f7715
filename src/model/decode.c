/* Inference with a KV cache: the same model as the training forward (forward.c), fed a few
 * tokens at a time. Keys and values of every past position stay in the cache, so each new
 * token costs one pass over the weights plus attention over the cache.
 *
 * Linear layers go through dl_decode_linear (sgemv for one token, a weights-read-once kernel
 * for a few, sgemm for a long prefill). Attention is private here because the training kernel (ops/attention.c) wants the
 * whole sequence in one qkv buffer, while decoding reads past keys and values from the cache. */
#include "decode_internal.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int dl_kv_cache_create(dl_kv_cache *kv, const dl_config *c, int max_T, dl_error *err) {
    memset(kv, 0, sizeof *kv);
    if (dl_config_validate(c, err)) return -1;
    if (max_T <= 0) max_T = c->max_T;
    if (max_T > c->max_T)
        return dl_fail(err, "kv cache: %d positions exceed max_position_embeddings %d", max_T, c->max_T);
    int HS = c->C / c->NH;
    size_t n;
    if (dl_mul_size((size_t)c->L * (size_t)max_T, (size_t)c->NKV * (size_t)HS, &n) || n > SIZE_MAX / sizeof(float))
        return dl_fail(err, "kv cache: size overflows");
    kv->k = malloc(n * sizeof(float));
    kv->v = malloc(n * sizeof(float));
    kv->rope_cos = malloc((size_t)max_T * (size_t)(HS / 2) * sizeof(float));
    kv->rope_sin = malloc((size_t)max_T * (size_t)(HS / 2) * sizeof(float));
    if (!kv->k || !kv->v || !kv->rope_cos || !kv->rope_sin) {
        dl_kv_cache_free(kv);
        return dl_fail(err, "kv cache: out of memory (%zu floats for keys and values each)", n);
    }
    dl_rope_table(kv->rope_cos, kv->rope_sin, max_T, HS, c->rope_theta);
    kv->L = c->L;
    kv->max_T = max_T;
    kv->NKV = c->NKV;
    kv->HS = HS;
    kv->pos = 0;
    return 0;
}

void dl_kv_cache_free(dl_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    free(kv->rope_cos);
    free(kv->rope_sin);
    memset(kv, 0, sizeof *kv);
}

void dl_kv_cache_reset(dl_kv_cache *kv) { kv->pos = 0; }

static const float *P(const dl_model *m, int view) { return m->params + m->lay.views[view].offset; }


typedef struct {
    int n, C, F, V, NH, NKV, HS, QKV, pos;
    float *x, *ln, *qkv, *atty, *gateup, *act, *scores; /* scratch, see decode_scratch */
    int n_threads;
} step;

// atty (n,C): row t, head h attends over cache positions 0..pos+t (causal)
static void attention(step *s, const float *kc, const float *vc) {
    int group = s->NH / s->NKV, kv_len = s->pos + s->n;
    /* threads cost more than they save on a short cache */
    long work = (long)s->n * s->NH * kv_len * s->HS;
#pragma omp parallel for collapse(2) schedule(static) if (work > 65536)
    for (int t = 0; t < s->n; t++)
        for (int h = 0; h < s->NH; h++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            dl_attention_decode_row(s->atty + (size_t)t * s->C + (size_t)h * s->HS, s->qkv + (size_t)t * s->QKV + (size_t)h * s->HS,
                       kc, vc, s->pos + t, s->NKV, s->HS, h / group, s->scores + (size_t)tid * kv_len);
        }
}

// x (n,C) is the residual stream; q,k,v and gate,up sit next to each other in the parameter
// buffer (see forward.c), so each group is one product
static void layer_step(const dl_model *m, dl_kv_cache *kv, step *s, int l) {
    const dl_layer_views *lv = &m->lay.layers[l];
    int n = s->n, C = s->C, KVD = s->NKV * s->HS;
    dl_rmsnorm_forward(s->ln, NULL, s->x, P(m, lv->ln1), n, C, m->cfg.rms_eps);
    dl_decode_linear(s->qkv, s->ln, P(m, lv->wq), dl_bias_view(m, lv->bq), n, C, s->QKV, 0);
    dl_rope_forward(s->qkv, 1, n, s->NH, s->HS, (size_t)s->QKV, s->pos, kv->rope_cos, kv->rope_sin);
    dl_rope_forward(s->qkv + C, 1, n, s->NKV, s->HS, (size_t)s->QKV, s->pos, kv->rope_cos, kv->rope_sin);
    float *kc = kv->k + (size_t)l * kv->max_T * KVD, *vc = kv->v + (size_t)l * kv->max_T * KVD;
    for (int t = 0; t < n; t++) {
        const float *row = s->qkv + (size_t)t * s->QKV;
        memcpy(kc + (size_t)(s->pos + t) * KVD, row + C, (size_t)KVD * sizeof(float));
        memcpy(vc + (size_t)(s->pos + t) * KVD, row + C + KVD, (size_t)KVD * sizeof(float));
    }
    attention(s, kc, vc);
    dl_decode_layer_tail(m, lv, s->x, s->atty, s->ln, s->gateup, s->act, n);
}

static float *decode_scratch(step *s) {
    size_t n = (size_t)s->n, kv_len = (size_t)(s->pos + s->n);
#ifdef _OPENMP
    s->n_threads = omp_get_max_threads();
#else
    s->n_threads = 1;
#endif
    size_t sizes[7] = {n * s->C, n * s->C, n * s->QKV, n * s->C, n * 2 * s->F, n * s->F, (size_t)s->n_threads * kv_len};
    float **views[7] = {&s->x, &s->ln, &s->qkv, &s->atty, &s->gateup, &s->act, &s->scores};
    return dl_alloc_floats(views, sizes, 7, NULL);
}

static int check_decode_args(const dl_model *m, const dl_kv_cache *kv, const int32_t *tokens, int n,
                             const float *logits_out, dl_error *err) {
    const dl_config *c = &m->cfg;
    if (!m->params || !kv->k || !tokens || !logits_out) return dl_fail(err, "decode: missing model, cache or buffers");
    if (kv->L != c->L || kv->NKV != c->NKV || kv->HS != c->C / c->NH)
        return dl_fail(err, "decode: the kv cache was made for another model shape");
    if (n <= 0) return dl_fail(err, "decode: %d tokens (need at least 1)", n);
    if (kv->pos < 0 || n > kv->max_T - kv->pos)
        return dl_fail(err, "decode: kv cache overflow: %d tokens at position %d exceed its %d positions", n, kv->pos,
                       kv->max_T);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= c->V)
            return dl_fail(err, "decode: token %d at index %d is outside the vocabulary [0, %d)", tokens[t], t, c->V);
    return 0;
}

int dl_model_decode(const dl_model *m, dl_kv_cache *kv, const int32_t *tokens, int n, float *logits_out,
                    int all_logits, dl_error *err) {
    if (check_decode_args(m, kv, tokens, n, logits_out, err)) return -1;
    const dl_config *c = &m->cfg;
    step s = {.n = n, .C = c->C, .F = c->F, .V = c->V, .NH = c->NH, .NKV = c->NKV, .HS = c->C / c->NH, .pos = kv->pos};
    s.QKV = (s.NH + 2 * s.NKV) * s.HS;
    float *mem = decode_scratch(&s);
    if (!mem) return dl_fail(err, "decode: out of memory for %d tokens", n);
    dl_embedding_forward(s.x, tokens, P(m, m->lay.embed), n, c->C, c->V);
    for (int l = 0; l < c->L; l++) layer_step(m, kv, &s, l);
    // only the rows whose logits are wanted go through the final norm and lm_head
    int first = all_logits ? 0 : n - 1, rows = n - first;
    dl_rmsnorm_forward(s.ln, NULL, s.x + (size_t)first * c->C, P(m, m->lay.norm), rows, c->C, c->rms_eps);
    dl_decode_linear(logits_out, s.ln, P(m, m->lay.lm_head), NULL, rows, c->C, c->V, 0);
    kv->pos += n;
    free(mem);
    return 0;
}
