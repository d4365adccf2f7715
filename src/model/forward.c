/* The training forward and backward passes over a whole (B,T) batch.
 *
 * Activations live in one allocation, cut into named arrays (llm.c's habit). What the backward
 * needs is kept per layer; what is cheap to redo (the rmsnorm outputs and the swiglu output) is
 * recomputed in the backward into shared scratch, which saves three (N,C)/(N,F) arrays a layer.
 *
 * The layout puts q,k,v and gate,up next to each other, so each pair (triple) is one matmul
 * with OC = QKV or 2F, and rows of its output are [q | k | v] and [gate | up]; the q,k,v
 * biases (when the config has them) are adjacent too, one bias of QKV floats. */
#include "bias.h"
#include "model.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dl_acts {
    float *mem;
    size_t n_floats;
    /* kept for the backward, per layer l */
    float *res;     // (L+1,N,C) residual stream entering layer l; res[L] enters the final norm
    float *res_mid; // (L,N,C) residual after attention
    float *rstd1;   // (L,N)
    float *rstd2;   // (L,N)
    float *qkv;     // (L,N,QKV) q and k rotated
    float *att;     // (L,B,NH,T,T) softmax probabilities
    float *atty;    // (L,N,C) attention output before o_proj
    float *gateup;  // (L,N,2F)
    float *lnf;     // (N,C) final norm output
    float *rstdf;   // (N)
    float *logits;  // (N,V), turned into dlogits in place by dl_model_backward
    float *lse;     // (N)
    float *losses;  // (N)
    float *rope_cos, *rope_sin; // (max_T, HS/2)
    /* scratch shared by all layers */
    float *ln;      // (N,C) an rmsnorm output
    float *act;     // (N,F) swiglu output
    float *dres;    // (N,C) gradient of the residual stream
    float *dc;      // (N,C)
    float *dact;    // (N,F)
    float *dwide;   // (N, max(QKV, 2F)) dqkv or dgateup
    int32_t *inputs, *targets; // (N) copies from the last forward
    int B, T;       // shape of the last forward
    int count;      // targets counted in the loss
    int have_targets; // the last forward had targets and logits still hold logits
    int have_forward; // a forward ran since the last backward
};

typedef struct dims {
    int B, T, C, F, V, L, NH, NKV, HS, QKV;
    size_t N;
} dims;

static dims get_dims(const dl_model *m, int B, int T) {
    const dl_config *c = &m->cfg;
    dims d = {.B = B, .T = T, .C = c->C, .F = c->F, .V = c->V, .L = c->L, .NH = c->NH, .NKV = c->NKV};
    d.HS = c->C / c->NH;
    d.QKV = (c->NH + 2 * c->NKV) * d.HS;
    d.N = (size_t)B * T;
    return d;
}

/* ---- allocation --------------------------------------------------------------------------- */

enum { A_RES, A_RES_MID, A_RSTD1, A_RSTD2, A_QKV, A_ATT, A_ATTY, A_GATEUP, A_LNF, A_RSTDF, A_LOGITS, A_LSE,
       A_LOSSES, A_COS, A_SIN, A_LN, A_ACT, A_DRES, A_DC, A_DACT, A_DWIDE, A_INPUTS, A_TARGETS, A_COUNT };

/* Sizes in floats (int32 arrays count as floats: same size). Returns -1 on overflow. */
static int act_sizes(const dims *d, int max_T, size_t sz[A_COUNT]) {
    size_t N = d->N, L = (size_t)d->L, C = (size_t)d->C, F = (size_t)d->F, V = (size_t)d->V;
    size_t wide = (size_t)d->QKV > 2 * F ? (size_t)d->QKV : 2 * F;
    size_t tt;
    if (dl_mul_size((size_t)d->T, (size_t)d->T, &tt) || dl_mul_size(tt, (size_t)d->B * d->NH, &tt) ||
        dl_mul_size(tt, L, &sz[A_ATT]))
        return -1;
    size_t rows[][3] = {
        [A_RES] = {L + 1, N, C}, [A_RES_MID] = {L, N, C}, [A_RSTD1] = {L, N, 1}, [A_RSTD2] = {L, N, 1},
        [A_QKV] = {L, N, (size_t)d->QKV}, [A_ATT] = {1, 1, 1}, [A_ATTY] = {L, N, C}, [A_GATEUP] = {L, N, 2 * F},
        [A_LNF] = {1, N, C}, [A_RSTDF] = {1, N, 1}, [A_LOGITS] = {1, N, V}, [A_LSE] = {1, N, 1},
        [A_LOSSES] = {1, N, 1}, [A_COS] = {1, (size_t)max_T, (size_t)d->HS / 2},
        [A_SIN] = {1, (size_t)max_T, (size_t)d->HS / 2}, [A_LN] = {1, N, C}, [A_ACT] = {1, N, F},
        [A_DRES] = {1, N, C}, [A_DC] = {1, N, C}, [A_DACT] = {1, N, F}, [A_DWIDE] = {1, N, wide},
        [A_INPUTS] = {1, N, 1}, [A_TARGETS] = {1, N, 1},
    };
    for (int i = 0; i < A_COUNT; i++) {
        if (i == A_ATT) continue;
        size_t s;
        if (dl_mul_size(rows[i][0], rows[i][1], &s) || dl_mul_size(s, rows[i][2], &sz[i])) return -1;
    }
    return 0;
}

/* b follows a in the flat buffer */
static int adjacent(const dl_tensor_view *v, int a, int b) { return v[b].offset == v[a].offset + v[a].numel; }

/* q,k,v (weights and biases) and gate,up must be adjacent in the flat buffer for the fused matmuls. */
static int check_fused_layout(const dl_layout *lay, int L, dl_error *err) {
    const dl_tensor_view *v = lay->views;
    for (int l = 0; l < L; l++) {
        const dl_layer_views *lv = &lay->layers[l];
        int bias_ok = lv->bq < 0 || (adjacent(v, lv->bq, lv->bk) && adjacent(v, lv->bk, lv->bv));
        if (!adjacent(v, lv->wq, lv->wk) || !adjacent(v, lv->wk, lv->wv) || !adjacent(v, lv->wgate, lv->wup) ||
            !bias_ok)
            return dl_fail(err, "parameter layout: layer %d q/k/v or gate/up views are not adjacent", l);
    }
    return 0;
}

int dl_model_alloc_train(dl_model *m, int B, int T, dl_error *err) {
    if (B <= 0 || T <= 0) return dl_fail(err, "alloc_train: batch %d x sequence %d must be positive", B, T);
    if (T > m->cfg.max_T)
        return dl_fail(err, "alloc_train: sequence length %d exceeds max_position_embeddings %d", T, m->cfg.max_T);
    if (check_fused_layout(&m->lay, m->cfg.L, err)) return -1;
    dl_model_free_train(m);
    dims d = get_dims(m, B, T);
    size_t sz[A_COUNT], total = 0;
    if (act_sizes(&d, m->cfg.max_T, sz)) return dl_fail(err, "alloc_train: activation sizes overflow");
    dl_acts *a = calloc(1, sizeof *a);
    if (!a) return dl_fail(err, "alloc_train: out of memory");
    float **views[A_COUNT] = {&a->res, &a->res_mid, &a->rstd1, &a->rstd2, &a->qkv, &a->att, &a->atty, &a->gateup,
                              &a->lnf, &a->rstdf, &a->logits, &a->lse, &a->losses, &a->rope_cos, &a->rope_sin,
                              &a->ln, &a->act, &a->dres, &a->dc, &a->dact, &a->dwide, NULL, NULL};
    float *mem = dl_alloc_floats(views, sz, A_COUNT, &total);
    float *grads = calloc(m->lay.total, sizeof(float));
    if (!mem || !grads) {
        free(a), free(mem), free(grads);
        return dl_fail(err, "alloc_train: out of memory for %zu activation floats (B=%d, T=%d)", total, B, T);
    }
    a->mem = mem;
    a->n_floats = total;
    /* the last two regions hold the batch's token ids */
    a->inputs = (int32_t *)(mem + total - sz[A_TARGETS] - sz[A_INPUTS]);
    a->targets = (int32_t *)(mem + total - sz[A_TARGETS]);
    dl_rope_table(a->rope_cos, a->rope_sin, m->cfg.max_T, d.HS, m->cfg.rope_theta);
    m->acts = a;
    m->grads = grads;
    m->B = B;
    m->T = T;
    m->logits = a->logits;
    return 0;
}

void dl_model_free_train(dl_model *m) {
    if (m->acts) free(m->acts->mem);
    free(m->acts);
    free(m->grads);
    m->acts = NULL;
    m->grads = NULL;
    m->logits = NULL;
    m->B = m->T = 0;
}

void dl_model_zero_grad(dl_model *m) {
    if (m->grads) memset(m->grads, 0, m->lay.total * sizeof(float));
}

/* ---- forward ------------------------------------------------------------------------------- */

static float *P(const dl_model *m, int view) { return m->params + m->lay.views[view].offset; }
static float *G(const dl_model *m, int view) { return m->grads + m->lay.views[view].offset; }

// x (N,C) is res[l]; fills res_mid[l] and res[l+1]
static void layer_forward(dl_model *m, const dims *d, int l) {
    dl_acts *a = m->acts;
    const dl_layer_views *lv = &m->lay.layers[l];
    size_t N = d->N, C = (size_t)d->C, F = (size_t)d->F;
    float *x = a->res + l * N * C, *mid = a->res_mid + l * N * C, *out = a->res + (l + 1) * N * C;
    float *qkv = a->qkv + l * N * d->QKV, *atty = a->atty + l * N * C, *gateup = a->gateup + l * N * 2 * F;
    float *att = a->att + (size_t)l * d->B * d->NH * d->T * d->T;
    // attention block
    dl_rmsnorm_forward(a->ln, a->rstd1 + l * N, x, P(m, lv->ln1), (int)N, d->C, m->cfg.rms_eps);
    dl_matmul_forward(qkv, a->ln, P(m, lv->wq), (int)N, d->C, d->QKV, 0);
    if (lv->bq >= 0) dl_bias_forward(qkv, P(m, lv->bq), (int)N, d->QKV);
    dl_rope_forward(qkv, d->B, d->T, d->NH, d->HS, d->QKV, 0, a->rope_cos, a->rope_sin);
    dl_rope_forward(qkv + C, d->B, d->T, d->NKV, d->HS, d->QKV, 0, a->rope_cos, a->rope_sin);
    dl_attention_forward(atty, att, qkv, d->B, d->T, d->NH, d->NKV, d->HS);
    memcpy(mid, x, N * C * sizeof(float));
    dl_matmul_forward(mid, atty, P(m, lv->wo), (int)N, d->C, d->C, 1);
    if (lv->bo >= 0) dl_bias_forward(mid, P(m, lv->bo), (int)N, d->C);
    // mlp block
    dl_rmsnorm_forward(a->ln, a->rstd2 + l * N, mid, P(m, lv->ln2), (int)N, d->C, m->cfg.rms_eps);
    dl_matmul_forward(gateup, a->ln, P(m, lv->wgate), (int)N, d->C, 2 * d->F, 0);
    dl_swiglu_forward(a->act, gateup, gateup + F, (int)N, d->F, 2 * F);
    memcpy(out, mid, N * C * sizeof(float));
    dl_matmul_forward(out, a->act, P(m, lv->wdown), (int)N, d->F, d->C, 1);
}

float dl_model_forward(dl_model *m, const int32_t *inputs, const int32_t *targets, int B, int T) {
    dl_acts *a = m->acts;
    m->loss = 0.0f;
    if (!a || B <= 0 || T <= 0 || B > m->B || T > m->T) {
        dl_log("model forward: batch %dx%d does not fit the activations (%dx%d)", B, T, m->B, m->T);
        m->loss = NAN;
        return m->loss;
    }
    dims d = get_dims(m, B, T);
    a->B = B;
    a->T = T;
    a->have_targets = 0;
    a->have_forward = 0;
    memcpy(a->inputs, inputs, d.N * sizeof(int32_t));
    if (dl_embedding_forward(a->res, inputs, P(m, m->lay.embed), (int)d.N, d.C, d.V)) {
        dl_log("model forward: an input token is outside the vocabulary [0, %d)", d.V);
        m->loss = NAN;
        return m->loss;
    }
    for (int l = 0; l < d.L; l++) layer_forward(m, &d, l);
    dl_rmsnorm_forward(a->lnf, a->rstdf, a->res + (size_t)d.L * d.N * d.C, P(m, m->lay.norm), (int)d.N, d.C,
                       m->cfg.rms_eps);
    dl_matmul_forward(a->logits, a->lnf, P(m, m->lay.lm_head), (int)d.N, d.C, d.V, 0);
    a->have_forward = 1;
    if (!targets) return 0.0f;
    memcpy(a->targets, targets, d.N * sizeof(int32_t));
    a->count = dl_crossentropy_forward(a->losses, a->lse, a->logits, targets, (int)d.N, d.V);
    double sum = 0.0; // in order, in double: the same bits at any thread count
    for (size_t n = 0; n < d.N; n++) sum += a->losses[n];
    m->loss = a->count ? (float)(sum / a->count) : 0.0f;
    a->have_targets = 1;
    return m->loss;
}

/* ---- backward ------------------------------------------------------------------------------ */

// dres holds d res[l+1] on entry and d res[l] on return
static void layer_backward(dl_model *m, const dims *d, int l) {
    dl_acts *a = m->acts;
    const dl_layer_views *lv = &m->lay.layers[l];
    size_t N = d->N, C = (size_t)d->C, F = (size_t)d->F;
    float *x = a->res + l * N * C, *mid = a->res_mid + l * N * C;
    float *qkv = a->qkv + l * N * d->QKV, *atty = a->atty + l * N * C, *gateup = a->gateup + l * N * 2 * F;
    float *att = a->att + (size_t)l * d->B * d->NH * d->T * d->T;
    // mlp block: out = mid + swiglu(rmsnorm(mid) Wgu^T) Wdown^T; the swiglu backward also
    // recomputes the swiglu output that down_proj's weight gradient needs
    dl_matmul_backward(a->dact, NULL, a->dres, NULL, P(m, lv->wdown), (int)N, d->F, d->C);
    dl_swiglu_backward(a->dwide, a->dwide + F, a->act, a->dact, gateup, gateup + F, (int)N, d->F, 2 * F);
    dl_matmul_backward(NULL, G(m, lv->wdown), a->dres, a->act, NULL, (int)N, d->F, d->C);
    dl_rmsnorm_forward(a->ln, NULL, mid, P(m, lv->ln2), (int)N, d->C, m->cfg.rms_eps);
    dl_matmul_backward(a->dc, G(m, lv->wgate), a->dwide, a->ln, P(m, lv->wgate), (int)N, d->C, 2 * d->F);
    dl_rmsnorm_backward(a->dres, G(m, lv->ln2), a->dc, mid, P(m, lv->ln2), a->rstd2 + l * N, (int)N, d->C);
    // attention block: mid = x + attention(rope(rmsnorm(x) Wqkv^T + bqkv)) Wo^T + bo
    if (lv->bo >= 0) dl_bias_backward(G(m, lv->bo), a->dres, (int)N, d->C);
    dl_matmul_backward(a->dc, G(m, lv->wo), a->dres, atty, P(m, lv->wo), (int)N, d->C, d->C);
    dl_attention_backward(a->dwide, a->dc, qkv, att, d->B, d->T, d->NH, d->NKV, d->HS);
    dl_rope_backward(a->dwide, d->B, d->T, d->NH, d->HS, d->QKV, 0, a->rope_cos, a->rope_sin);
    dl_rope_backward(a->dwide + C, d->B, d->T, d->NKV, d->HS, d->QKV, 0, a->rope_cos, a->rope_sin);
    if (lv->bq >= 0) dl_bias_backward(G(m, lv->bq), a->dwide, (int)N, d->QKV);
    dl_rmsnorm_forward(a->ln, NULL, x, P(m, lv->ln1), (int)N, d->C, m->cfg.rms_eps);
    dl_matmul_backward(a->dc, G(m, lv->wq), a->dwide, a->ln, P(m, lv->wq), (int)N, d->C, d->QKV);
    dl_rmsnorm_backward(a->dres, G(m, lv->ln1), a->dc, x, P(m, lv->ln1), a->rstd1 + l * N, (int)N, d->C);
}

static void backward_core(dl_model *m, const float *dlogits) {
    dl_acts *a = m->acts;
    dims d = get_dims(m, a->B, a->T);
    // logits = rmsnorm(res[L]) lm_head^T
    dl_matmul_backward(a->dc, G(m, m->lay.lm_head), dlogits, a->lnf, P(m, m->lay.lm_head), (int)d.N, d.C, d.V);
    memset(a->dres, 0, d.N * d.C * sizeof(float));
    dl_rmsnorm_backward(a->dres, G(m, m->lay.norm), a->dc, a->res + (size_t)d.L * d.N * d.C, P(m, m->lay.norm),
                        a->rstdf, (int)d.N, d.C);
    for (int l = d.L - 1; l >= 0; l--) layer_backward(m, &d, l);
    dl_embedding_backward(G(m, m->lay.embed), a->dres, a->inputs, (int)d.N, d.C, d.V);
    a->have_forward = 0;
}

void dl_model_backward(dl_model *m, float grad_scale) {
    dl_acts *a = m->acts;
    if (!a || !m->grads || !a->have_forward || !a->have_targets) {
        dl_log("model backward: no forward with targets to differentiate; skipped");
        return;
    }
    dims d = get_dims(m, a->B, a->T);
    float scale = a->count ? grad_scale / (float)a->count : 0.0f;
    dl_crossentropy_backward(a->logits, a->logits, a->lse, a->targets, (int)d.N, d.V, scale);
    a->have_targets = 0; // logits now hold dlogits
    backward_core(m, a->logits);
}

void dl_model_backward_from_logits(dl_model *m, const float *dlogits) {
    dl_acts *a = m->acts;
    if (!a || !m->grads || !a->have_forward || !dlogits) {
        dl_log("model backward: no forward to differentiate; skipped");
        return;
    }
    a->have_targets = 0;
    backward_core(m, dlogits);
}

size_t dl_model_act_floats(const dl_model *m) { return m->acts ? m->acts->n_floats : 0; }
