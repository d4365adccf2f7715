/* Batched decoding: one new token for each of B independent sequences, each with its own KV
 * cache at its own position. The B rows go through every linear layer together (one sgemm),
 * so the weights are read once per step instead of once per sequence; that is what lets a
 * server decode many requests nearly as fast as one. Attention stays per row: each row reads
 * only its own cache. The arithmetic is the same as dl_model_decode (decode.c) for n = 1. */
#include "decode_internal.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int B, C, F, V, NH, NKV, HS, QKV, max_len;
    float *x, *ln, *qkv, *atty, *gateup, *act, *scores;
} batch_step;

static const float *P(const dl_model *m, int view) { return m->params + m->lay.views[view].offset; }


// atty (B,C): row b, head h attends over its own cache, positions 0..kvs[b]->pos
static void attention(batch_step *s, dl_kv_cache *const *kvs, int l) {
    int group = s->NH / s->NKV, KVD = s->NKV * s->HS;
    long work = 0;
    for (int b = 0; b < s->B; b++) work += (long)(kvs[b]->pos + 1) * s->NH * s->HS;
#pragma omp parallel for collapse(2) schedule(static) if (work > 65536)
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->NH; h++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            const dl_kv_cache *kv = kvs[b];
            const float *kc = kv->k + (size_t)l * kv->max_T * KVD, *vc = kv->v + (size_t)l * kv->max_T * KVD;
            dl_attention_decode_row(s->atty + (size_t)b * s->C + (size_t)h * s->HS, s->qkv + (size_t)b * s->QKV + (size_t)h * s->HS,
                   kc, vc, kv->pos, s->NKV, s->HS, h / group, s->scores + (size_t)tid * s->max_len);
        }
}

// x (B,C) is the residual stream; row b sits at position kvs[b]->pos
static void layer_step(const dl_model *m, dl_kv_cache *const *kvs, batch_step *s, int l) {
    const dl_layer_views *lv = &m->lay.layers[l];
    int B = s->B, C = s->C, KVD = s->NKV * s->HS;
    dl_rmsnorm_forward(s->ln, NULL, s->x, P(m, lv->ln1), B, C, m->cfg.rms_eps);
    dl_decode_linear(s->qkv, s->ln, P(m, lv->wq), dl_bias_view(m, lv->bq), B, C, s->QKV, 0);
    for (int b = 0; b < B; b++) {
        dl_kv_cache *kv = kvs[b];
        float *row = s->qkv + (size_t)b * s->QKV;
        dl_rope_forward(row, 1, 1, s->NH, s->HS, (size_t)s->QKV, kv->pos, kv->rope_cos, kv->rope_sin);
        dl_rope_forward(row + C, 1, 1, s->NKV, s->HS, (size_t)s->QKV, kv->pos, kv->rope_cos, kv->rope_sin);
        size_t at = ((size_t)l * kv->max_T + (size_t)kv->pos) * KVD;
        memcpy(kv->k + at, row + C, (size_t)KVD * sizeof(float));
        memcpy(kv->v + at, row + C + KVD, (size_t)KVD * sizeof(float));
    }
    attention(s, kvs, l);
    dl_decode_layer_tail(m, lv, s->x, s->atty, s->ln, s->gateup, s->act, B);
}

static float *batch_scratch(batch_step *s) {
    size_t B = (size_t)s->B, threads = 1;
#ifdef _OPENMP
    threads = (size_t)omp_get_max_threads();
#endif
    size_t sizes[7] = {B * s->C, B * s->C, B * s->QKV, B * s->C, B * 2 * s->F, B * s->F, threads * s->max_len};
    float **views[7] = {&s->x, &s->ln, &s->qkv, &s->atty, &s->gateup, &s->act, &s->scores};
    return dl_alloc_floats(views, sizes, 7, NULL);
}

/* Every row is checked before any cache is touched, so a failure leaves all caches as they were. */
static int check_batch_args(const dl_model *m, dl_kv_cache *const *kvs, const int32_t *tokens, int B,
                            const float *logits_out, int *max_len, dl_error *err) {
    const dl_config *c = &m->cfg;
    if (!m->params || !kvs || !tokens || !logits_out)
        return dl_fail(err, "decode batch: missing model, caches or buffers");
    if (B <= 0) return dl_fail(err, "decode batch: %d rows (need at least 1)", B);
    *max_len = 0;
    for (int b = 0; b < B; b++) {
        const dl_kv_cache *kv = kvs[b];
        if (!kv || !kv->k) return dl_fail(err, "decode batch: row %d has no kv cache", b);
        if (kv->L != c->L || kv->NKV != c->NKV || kv->HS != c->C / c->NH)
            return dl_fail(err, "decode batch: row %d: the kv cache was made for another model shape", b);
        if (kv->pos < 0 || kv->pos >= kv->max_T)
            return dl_fail(err, "decode batch: row %d: kv cache overflow: position %d of %d", b, kv->pos, kv->max_T);
        for (int a = 0; a < b; a++)
            if (kvs[a] == kv) return dl_fail(err, "decode batch: rows %d and %d share one kv cache", a, b);
        if (tokens[b] < 0 || tokens[b] >= c->V)
            return dl_fail(err, "decode batch: token %d of row %d is outside the vocabulary [0, %d)", tokens[b], b,
                            c->V);
        if (kv->pos + 1 > *max_len) *max_len = kv->pos + 1;
    }
    return 0;
}

int dl_model_decode_batch(const dl_model *m, dl_kv_cache *const *kvs, const int32_t *tokens, int B,
                          float *logits_out, dl_error *err) {
    int max_len = 0;
    if (check_batch_args(m, kvs, tokens, B, logits_out, &max_len, err)) return -1;
    const dl_config *c = &m->cfg;
    batch_step s = {.B = B, .C = c->C, .F = c->F, .V = c->V, .NH = c->NH, .NKV = c->NKV, .HS = c->C / c->NH,
                    .max_len = max_len};
    s.QKV = (s.NH + 2 * s.NKV) * s.HS;
    float *mem = batch_scratch(&s);
    if (!mem) return dl_fail(err, "decode batch: out of memory for %d rows", B);
    dl_embedding_forward(s.x, tokens, P(m, m->lay.embed), B, c->C, c->V);
    for (int l = 0; l < c->L; l++) layer_step(m, kvs, &s, l);
    dl_rmsnorm_forward(s.ln, NULL, s.x, P(m, m->lay.norm), B, c->C, c->rms_eps);
    dl_decode_linear(logits_out, s.ln, P(m, m->lay.lm_head), NULL, B, c->C, c->V, 0);
    for (int b = 0; b < B; b++) kvs[b]->pos++;
    free(mem);
    return 0;
}
