#include "model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int add_view(dl_layout *lay, const char *name, int rows, int cols) {
    dl_tensor_view *v = &lay->views[lay->n_views];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->ndim = cols > 0 ? 2 : 1;
    v->shape[0] = rows;
    v->shape[1] = cols > 0 ? cols : 0;
    v->numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    v->offset = lay->total;
    lay->total += v->numel;
    return lay->n_views++;
}

int dl_layout_build(dl_layout *lay, const dl_config *c, dl_error *err) {
    memset(lay, 0, sizeof *lay);
    if (dl_config_validate(c, err)) return -1;
    int HS = c->C / c->NH, KVD = c->NKV * HS;
    int max_views = 3 + 13 * c->L;
    lay->views = calloc((size_t)max_views, sizeof *lay->views);
    lay->layers = calloc((size_t)c->L, sizeof *lay->layers);
    if (!lay->views || !lay->layers) { dl_layout_free(lay); return dl_fail(err, "out of memory"); }
    char n[DL_NAME_MAX];
    lay->embed = add_view(lay, "model.embed_tokens.weight", c->V, c->C);
    for (int l = 0; l < c->L; l++) {
        dl_layer_views *lv = &lay->layers[l];
#define V_(field, suffix, r, k)                                                   \
        snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                   \
        lv->field = add_view(lay, n, r, k)
        V_(ln1, "input_layernorm.weight", c->C, 0);
        V_(wq, "self_attn.q_proj.weight", c->C, c->C);
        V_(wk, "self_attn.k_proj.weight", KVD, c->C);
        V_(wv, "self_attn.v_proj.weight", KVD, c->C);
        lv->bq = lv->bk = lv->bv = lv->bo = -1;
        if (c->qkv_bias) {
            V_(bq, "self_attn.q_proj.bias", c->C, 0);
            V_(bk, "self_attn.k_proj.bias", KVD, 0);
            V_(bv, "self_attn.v_proj.bias", KVD, 0);
        }
        V_(wo, "self_attn.o_proj.weight", c->C, c->C);
        if (c->o_bias) { V_(bo, "self_attn.o_proj.bias", c->C, 0); }
        V_(ln2, "post_attention_layernorm.weight", c->C, 0);
        V_(wgate, "mlp.gate_proj.weight", c->F, c->C);
        V_(wup, "mlp.up_proj.weight", c->F, c->C);
        V_(wdown, "mlp.down_proj.weight", c->C, c->F);
#undef V_
    }
    lay->norm = add_view(lay, "model.norm.weight", c->C, 0);
    lay->lm_head = c->tied ? lay->embed : add_view(lay, "lm_head.weight", c->V, c->C);
    return 0;
}

void dl_layout_free(dl_layout *lay) {
    free(lay->views);
    free(lay->layers);
    memset(lay, 0, sizeof *lay);
}

int dl_layout_find(const dl_layout *lay, const char *name) {
    for (int i = 0; i < lay->n_views; i++)
        if (strcmp(lay->views[i].name, name) == 0) return i;
    return -1;
}

int dl_model_create(dl_model *m, const dl_config *cfg, dl_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (dl_layout_build(&m->lay, cfg, err)) return -1;
    m->params = calloc(m->lay.total, sizeof(float));
    if (!m->params) {
        dl_layout_free(&m->lay);
        return dl_fail(err, "out of memory for %zu parameters", m->lay.total);
    }
    return 0;
}

void dl_model_init_random(dl_model *m, uint64_t seed) {
    dl_rng r;
    dl_rng_seed(&r, seed);
    float resid_scale = 1.0f / sqrtf(2.0f * (float)m->cfg.L);
    for (int i = 0; i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        float *p = m->params + v->offset;
        if (v->ndim == 1) {
            float one = strstr(v->name, ".bias") ? 0.0f : 1.0f; /* biases start at 0, norm weights at 1 */
            for (size_t j = 0; j < v->numel; j++) p[j] = one;
            continue;
        }
        int resid = strstr(v->name, "o_proj") || strstr(v->name, "down_proj");
        float std = 0.02f * (resid ? resid_scale : 1.0f);
        for (size_t j = 0; j < v->numel; j++) p[j] = std * dl_rng_normal(&r);
    }
}

void dl_model_free(dl_model *m) {
    dl_model_free_train(m);
    free(m->params);
    dl_layout_free(&m->lay);
    memset(m, 0, sizeof *m);
}
