/* Batched decoding: one new token for each of B independent sequences, each with its own KV
 * cache at its own position. The B rows go through every linear layer together (one sgemm),
 * so the weights are read once per step instead of once per sequence; that is what lets a
 * server decode many requests nearly as fast as one. Attention stays per row: each row reads
 * only its own cache. The arithmetic is the same as dl_model_decode (decode.c) for n = 1. */
#include "model.h"
#include "ops/ops.h"
#include <cblas.h>
#include <math.h>
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

/* A few rows times a weight matrix. OpenBLAS's sgemm packs the whole weight matrix before it
 * multiplies, which for a handful of rows costs 3-4x a matrix-vector product (measured on
 * 512x1536 weights: 0.13-0.2 ms for one row by sgemv, 0.5-0.9 ms for 2-8 rows by sgemm). Here
 * each pair of weight rows is read from memory once and, while it sits in L1, multiplied with
 * every input row, 4 rows at a time, a vector (8 or 16 floats) a step. The block is always 2x4 so the eight
 * accumulators stay in registers; missing rows repeat a real one and are not stored. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
typedef __m512 vf;
static vf vf_zero(void) { return _mm512_setzero_ps(); }
static vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static vf vf_fma(vf a, vf b, vf acc) { return _mm512_fmadd_ps(a, b, acc); }
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VL 8
typedef __m256 vf;
static vf vf_zero(void) { return _mm256_setzero_ps(); }
static vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static vf vf_fma(vf a, vf b, vf acc) { return _mm256_fmadd_ps(a, b, acc); }
#else
#define VL 8
typedef float vf __attribute__((vector_size(32)));
static vf vf_zero(void) { return (vf){0}; }
static vf vf_load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static vf vf_fma(vf a, vf b, vf acc) { return acc + a * b; }
#endif

static float vf_sum(vf v) {
    float f[VL], s = 0;
    memcpy(f, &v, sizeof f);
    for (int k = 0; k < VL; k++) s += f[k];
    return s;
}

// out rows b0..b0+nb-1 (nb <= 4), columns o0..o0+no-1 (no <= 2)
static void dot_block(float *out, const float *inp, const float *w, int b0, int nb, int o0, int no, int IC, int OC,
                      int accumulate) {
    const float *w0 = w + (size_t)o0 * IC, *w1 = no > 1 ? w0 + IC : w0;
    const float *x0 = inp + (size_t)b0 * IC, *x1 = nb > 1 ? x0 + IC : x0, *x2 = nb > 2 ? x0 + 2 * (size_t)IC : x0,
                *x3 = nb > 3 ? x0 + 3 * (size_t)IC : x0;
    vf a00 = vf_zero(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    int i = 0;
    for (; i + VL <= IC; i += VL) {
        /* the hardware prefetcher falls behind a stream read this slowly: ask for it ahead */
        __builtin_prefetch(w0 + i + 128);
        __builtin_prefetch(w1 + i + 128);
        vf u = vf_load(w0 + i), v = vf_load(w1 + i), x;
        x = vf_load(x0 + i), a00 = vf_fma(u, x, a00), a10 = vf_fma(v, x, a10);
        x = vf_load(x1 + i), a01 = vf_fma(u, x, a01), a11 = vf_fma(v, x, a11);
        x = vf_load(x2 + i), a02 = vf_fma(u, x, a02), a12 = vf_fma(v, x, a12);
        x = vf_load(x3 + i), a03 = vf_fma(u, x, a03), a13 = vf_fma(v, x, a13);
    }
    float s[2][4] = {{vf_sum(a00), vf_sum(a01), vf_sum(a02), vf_sum(a03)}, {vf_sum(a10), vf_sum(a11), vf_sum(a12), vf_sum(a13)}};
    const float *xs[4] = {x0, x1, x2, x3}, *ws[2] = {w0, w1};
    for (int o = 0; o < no; o++)
        for (int b = 0; b < nb; b++) {
            float t = s[o][b];
            for (int k = i; k < IC; k++) t += ws[o][k] * xs[b][k];
            float *dst = out + (size_t)(b0 + b) * OC + o0 + o;
            *dst = accumulate ? *dst + t : t;
        }
}

// out (B,OC) = (or +=) inp (B,IC) @ w^T, w (OC,IC) read once
static void few_rows_matmul(float *out, const float *inp, const float *w, int B, int IC, int OC, int accumulate) {
    long work = (long)B * IC * OC;
#pragma omp parallel for schedule(static) if (work > 65536)
    for (int o = 0; o < OC; o += 2)
        for (int b = 0; b < B; b += 4)
            dot_block(out, inp, w, b, B - b < 4 ? B - b : 4, o, OC - o < 2 ? OC - o : 2, IC, OC, accumulate);
}

#define FEW_ROWS 32 /* above this, sgemm's packing pays for itself */

// out (B,OC) = (or +=) inp (B,IC) @ w^T with w (OC,IC)
static void linear(float *out, const float *inp, const float *w, int B, int IC, int OC, int accumulate) {
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, w, IC, inp, 1, accumulate ? 1.0f : 0.0f, out, 1);
    else if (B <= FEW_ROWS)
        few_rows_matmul(out, inp, w, B, IC, OC, accumulate);
    else
        dl_matmul_forward(out, inp, w, B, IC, OC, accumulate);
}

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
    int B = s->B, C = s->C, F = s->F, KVD = s->NKV * s->HS;
    float eps = m->cfg.rms_eps;
    dl_rmsnorm_forward(s->ln, NULL, s->x, P(m, lv->ln1), B, C, eps);
    linear(s->qkv, s->ln, P(m, lv->wq), B, C, s->QKV, 0);
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
    linear(s->x, s->atty, P(m, lv->wo), B, C, C, 1);
    dl_rmsnorm_forward(s->ln, NULL, s->x, P(m, lv->ln2), B, C, eps);
    linear(s->gateup, s->ln, P(m, lv->wgate), B, C, 2 * F, 0);
    dl_swiglu_forward(s->act, s->gateup, s->gateup + F, B, F, (size_t)(2 * F));
    linear(s->x, s->act, P(m, lv->wdown), B, F, C, 1);
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
    linear(logits_out, s.ln, P(m, m->lay.lm_head), B, c->C, c->V, 0);
    for (int b = 0; b < B; b++) kvs[b]->pos++;
    free(mem);
    return 0;
}
