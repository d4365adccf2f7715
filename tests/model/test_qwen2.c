/* Attention biases (Qwen2's q/k/v, Llama's attention_bias adds o) against PyTorch and against
 * themselves:
 *  - tests/fixtures/tiny_qwen2 (tools/make_qwen_fixtures.py), read straight from its Hugging
 *    Face form (config.json of Qwen2ForCausalLM, two BF16 shards and an index): logits, loss and
 *    every gradient, the bias gradients included, match torch. The BF16 weights widen to F32
 *    exactly and torch ran in F32 on those values, so the tolerances of test_forward.c apply:
 *    logits 2e-5 + 1e-5 |ref|, loss 1e-5 relative, gradients 1e-4 of each tensor's largest entry;
 *  - the bias gradients against central finite differences of the loss (h = 1e-2 in float32:
 *    |fd - g| <= 1e-4 + 1e-2 |g|; observed <= 2e-5 on gradients up to 6e-2);
 *  - KV-cache decoding (sgemm prefill, few-row kernel, single rows) and batched decoding give
 *    the full forward's logits (1e-4 + 1e-4 |logit|, as test_decode.c);
 *  - save and load keep the biases, and write a Qwen2 or a Llama (attention_bias) config. */
#include "model/test_forward_fixture.h"
#include <jansson.h>

static char g_dir[512];

static int open_qwen_fixture(fixture *fx) {
    char dir[1024], path[1100];
    dl_error err;
    memset(fx, 0, sizeof *fx);
    snprintf(dir, sizeof dir, "%s/tests/fixtures/tiny_qwen2", DISTIL_SOURCE_DIR);
    snprintf(path, sizeof path, "%s/fixture.safetensors", dir);
    if (dl_model_load(&fx->m, dir, &err) || dl_st_open(&fx->st, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const dl_st_tensor *in = dl_st_find(&fx->st, "inputs");
    if (!in || in->ndim != 2) return -1;
    fx->B = (int)in->shape[0];
    fx->T = (int)in->shape[1];
    fx->inputs = fixture_i32(fx, "inputs", (size_t)fx->B * fx->T);
    fx->targets = fixture_i32(fx, "targets", (size_t)fx->B * fx->T);
    return fx->inputs && fx->targets ? 0 : -1;
}

static void test_fixture_config(const fixture *fx) {
    const dl_config *c = &fx->m.cfg;
    CHECK(c->qkv_bias == 1 && c->o_bias == 0 && c->tied == 1);
    CHECK(c->V == 272 && c->C == 16 && c->L == 2 && c->NH == 2 && c->NKV == 1 && c->F == 24 && c->max_T == 32);
    CHECK(c->bos_id == 263 && c->eos_id == 265 && c->rope_theta == 500.0f);
    const dl_layer_views *lv = &fx->m.lay.layers[1];
    CHECK(lv->bq >= 0 && lv->bk >= 0 && lv->bv >= 0 && lv->bo == -1);
    CHECK(fx->m.lay.views[lv->bk].numel == 8 && strcmp(fx->m.lay.views[lv->bv].name, "model.layers.1.self_attn.v_proj.bias") == 0);
}

static void test_against_torch(fixture *fx) {
    dl_error err;
    dl_model *m = &fx->m;
    CHECK(dl_model_alloc_train(m, fx->B, fx->T, &err) == 0);
    float loss = dl_model_forward(m, fx->inputs, fx->targets, fx->B, fx->T);
    float *ref_loss = fixture_f32(fx, "loss", 1);
    size_t nl = (size_t)fx->B * fx->T * m->cfg.V;
    float *ref = fixture_f32(fx, "logits", nl);
    CHECK(ref_loss && ref);
    if (!ref_loss || !ref) return;
    CHECK_CLOSE(loss, ref_loss[0], 0, 1e-5);
    int bad = 0;
    for (size_t i = 0; i < nl; i++) bad += !(fabsf(m->logits[i] - ref[i]) <= 2e-5f + 1e-5f * fabsf(ref[i]));
    CHECK_MSG(bad == 0, "%d logits differ from torch", bad);
    dl_model_zero_grad(m);
    dl_model_backward(m, 1.0f);
    int bad_views = 0, biases = 0;
    for (int i = 0; i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        char gname[DL_NAME_MAX + 8];
        snprintf(gname, sizeof gname, "grad.%s", v->name);
        float *g = fixture_f32(fx, gname, v->numel);
        if (!g) { bad_views++; continue; }
        float big = 0, worst = 0;
        for (size_t j = 0; j < v->numel; j++) big = fmaxf(big, fabsf(g[j]));
        for (size_t j = 0; j < v->numel; j++) worst = fmaxf(worst, fabsf(m->grads[v->offset + j] - g[j]));
        if (!(worst <= 1e-4f * big) || big == 0) {
            bad_views++;
            fprintf(stderr, "%s: max |c - torch| %.3g, largest %.3g\n", gname, worst, big);
        }
        biases += strstr(v->name, ".bias") != NULL;
        free(g);
    }
    CHECK_MSG(bad_views == 0, "%d parameter gradients differ from torch", bad_views);
    CHECK(biases == 6);
    free(ref_loss);
    free(ref);
}

/* ---- random biased models --------------------------------------------------------------- */
static void make_model(dl_model *m, int o_bias, int V, int max_T, uint64_t seed) {
    dl_config c = {.V = V, .C = 32, .F = 36, .L = 2, .NH = 4, .NKV = 2, .max_T = max_T, .rms_eps = 1e-5f,
                   .rope_theta = 500.0f, .tied = 0, .bos_id = -1, .eos_id = -1, .qkv_bias = 1, .o_bias = o_bias};
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    dl_rng r;
    dl_rng_seed(&r, seed + 1);
    for (int i = 0; i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        float *p = m->params + v->offset;
        int bias = strstr(v->name, ".bias") != NULL;
        for (size_t j = 0; j < v->numel; j++)
            p[j] = bias ? dl_rng_normal(&r) : v->ndim == 1 ? 0.5f + dl_rng_float(&r) : p[j] * 8.0f;
    }
}

static double tol_units(const float *got, const float *want, size_t n, double *max_abs) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), s = d / (1e-4 + 1e-4 * fabs((double)want[i]));
        if (d > *max_abs) *max_abs = d;
        if (!(s <= w)) w = s;
    }
    return w;
}

static void test_decode(int o_bias) {
    dl_model m;
    make_model(&m, o_bias, 53, 48, 11 + (uint64_t)o_bias);
    enum { T = 44 };
    const int V = m.cfg.V;
    int32_t tok[T];
    dl_rng r;
    dl_rng_seed(&r, 5);
    for (int t = 0; t < T; t++) tok[t] = (int32_t)dl_rng_below(&r, (uint64_t)V);
    dl_error err = {{0}};
    CHECK_MSG(dl_model_alloc_train(&m, 1, T, &err) == 0, "%s", err.msg);
    dl_model_forward(&m, tok, NULL, 1, T);
    float *ref = malloc((size_t)T * V * sizeof(float)), *got = malloc((size_t)T * V * sizeof(float));
    memcpy(ref, m.logits, (size_t)T * V * sizeof(float));
    dl_model_free_train(&m);
    dl_kv_cache kv;
    CHECK(dl_kv_cache_create(&kv, &m.cfg, 0, &err) == 0);
    double w = 0, max_abs = 0, s;
    /* 36 rows go through sgemm, 5 through the few-row kernel, then one row at a time (sgemv) */
    CHECK(dl_model_decode(&m, &kv, tok, 36, got, 1, &err) == 0);
    if ((s = tol_units(got, ref, (size_t)36 * V, &max_abs)) > w) w = s;
    CHECK(dl_model_decode(&m, &kv, tok + 36, 5, got, 1, &err) == 0);
    if ((s = tol_units(got, ref + (size_t)36 * V, (size_t)5 * V, &max_abs)) > w) w = s;
    for (int t = 41; t < T; t++) {
        CHECK(dl_model_decode(&m, &kv, tok + t, 1, got, 0, &err) == 0);
        if ((s = tol_units(got, ref + (size_t)t * V, (size_t)V, &max_abs)) > w) w = s;
    }
    printf("o_bias=%d: max |decode - forward| = %.3g (%.3g of tolerance)\n", o_bias, max_abs, w);
    CHECK_MSG(w <= 1.0, "decode differs from forward by %.3g tolerance units", w);

    /* batched: three sequences at positions 3, 10 and 20 step together; each row gets the full
     * forward's logits at its position */
    dl_kv_cache kvs[3];
    dl_kv_cache *ptrs[3] = {&kvs[0], &kvs[1], &kvs[2]};
    const int start[3] = {3, 10, 20};
    float *rows = malloc((size_t)3 * V * sizeof(float));
    w = 0;
    for (int b = 0; b < 3; b++) {
        CHECK(dl_kv_cache_create(&kvs[b], &m.cfg, 0, &err) == 0);
        CHECK(dl_model_decode(&m, &kvs[b], tok, start[b], got, 0, &err) == 0);
    }
    for (int step = 0; step < 4; step++) {
        int32_t next[3] = {tok[start[0] + step], tok[start[1] + step], tok[start[2] + step]};
        CHECK_MSG(dl_model_decode_batch(&m, ptrs, next, 3, rows, &err) == 0, "%s", err.msg);
        for (int b = 0; b < 3; b++)
            if ((s = tol_units(rows + (size_t)b * V, ref + (size_t)(start[b] + step) * V, (size_t)V, &max_abs)) > w)
                w = s;
    }
    CHECK_MSG(w <= 1.0, "batched decode differs from forward by %.3g tolerance units", w);
    for (int b = 0; b < 3; b++) dl_kv_cache_free(&kvs[b]);
    /* the biases matter: zeroing them changes the logits */
    for (int l = 0; l < m.cfg.L; l++) {
        const dl_tensor_view *v = &m.lay.views[m.lay.layers[l].bk];
        memset(m.params + v->offset, 0, v->numel * sizeof(float));
    }
    dl_kv_cache_reset(&kv);
    CHECK(dl_model_decode(&m, &kv, tok, T, got, 1, &err) == 0);
    max_abs = 0;
    tol_units(got, ref, (size_t)T * V, &max_abs);
    CHECK(max_abs > 1e-2);
    dl_kv_cache_free(&kv);
    free(rows);
    free(ref);
    free(got);
    dl_model_free(&m);
}

/* Central differences of the loss in a few entries of every bias of every layer. */
static void test_bias_grads_fd(void) {
    dl_model m;
    make_model(&m, 1, 29, 8, 21); /* peaked attention: q and k biases get gradients of ~1e-2 */
    enum { B = 2, T = 6 };
    int32_t in[B * T], tg[B * T];
    dl_rng r;
    dl_rng_seed(&r, 8);
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)dl_rng_below(&r, 29), tg[i] = (int32_t)dl_rng_below(&r, 29);
    dl_error err;
    CHECK(dl_model_alloc_train(&m, B, T, &err) == 0);
    dl_model_zero_grad(&m);
    dl_model_forward(&m, in, tg, B, T);
    dl_model_backward(&m, 1.0f);
    const float h = 1e-2f;
    int checked = 0, bad = 0;
    float largest[4] = {0}; /* per kind: q, k, v, o */
    for (int l = 0; l < m.cfg.L; l++) {
        const dl_layer_views *lv = &m.lay.layers[l];
        const int views[4] = {lv->bq, lv->bk, lv->bv, lv->bo};
        for (int k = 0; k < 4; k++) {
            const dl_tensor_view *v = &m.lay.views[views[k]];
            for (size_t j = 0; j < v->numel; j += 3) {
                float *p = m.params + v->offset + j, keep = *p, g = m.grads[v->offset + j];
                *p = keep + h;
                double up = dl_model_forward(&m, in, tg, B, T);
                *p = keep - h;
                double down = dl_model_forward(&m, in, tg, B, T);
                *p = keep;
                double fd = (up - down) / (2 * h);
                if (!(fabs(fd - g) <= 1e-4 + 1e-2 * fabs(g))) {
                    if (bad++ < 5) fprintf(stderr, "%s[%zu]: backward %.6g, finite difference %.6g\n", v->name, j, g, fd);
                }
                largest[k] = fmaxf(largest[k], fabsf(g));
                checked++;
            }
        }
    }
    printf("finite differences: %d bias entries, %d off; largest gradients q %.3g k %.3g v %.3g o %.3g\n", checked,
           bad, largest[0], largest[1], largest[2], largest[3]);
    CHECK(bad == 0 && checked > 40);
    for (int k = 0; k < 4; k++) CHECK(largest[k] > 2e-3); /* big enough for the comparison to mean something */
    dl_model_free(&m);
}

/* ---- save / load -------------------------------------------------------------------------- */
static void check_saved_family(const char *dir, const char *model_type, int attention_bias_key) {
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", dir);
    dl_error err;
    json_t *o = dl_json_load(p, &err);
    CHECK(o != NULL);
    if (!o) return;
    CHECK(strcmp(json_string_value(json_object_get(o, "model_type")), model_type) == 0);
    json_t *ab = json_object_get(o, "attention_bias");
    CHECK(attention_bias_key < 0 ? ab == NULL : (json_is_boolean(ab) && json_is_true(ab) == attention_bias_key));
    json_decref(o);
}

static void test_save_load(int o_bias) {
    dl_model m, back;
    make_model(&m, o_bias, 40, 16, 31);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/saved%d", g_dir, o_bias);
    dl_error err;
    CHECK_MSG(dl_model_save(&m, dir, &err) == 0, "%s", err.msg);
    check_saved_family(dir, o_bias ? "llama" : "qwen2", o_bias ? 1 : -1);
    CHECK_MSG(dl_model_load(&back, dir, &err) == 0, "%s", err.msg);
    CHECK(back.cfg.qkv_bias == 1 && back.cfg.o_bias == o_bias && back.lay.total == m.lay.total);
    CHECK(memcmp(back.params, m.params, m.lay.total * sizeof(float)) == 0);
    dl_model_free(&back);
    /* the same folder with the biases dropped from the config no longer loads */
    dl_config c = m.cfg;
    c.qkv_bias = c.o_bias = 0;
    char p[800];
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(dl_config_save(&c, p, &err) == 0);
    check_saved_family(dir, "llama", 0);
    CHECK(dl_model_load(&back, dir, &err) == -1 && strstr(err.msg, "unexpected tensor") && strstr(err.msg, ".bias"));
    dl_model_free(&m);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("qwen2"));
    fixture fx;
    if (open_qwen_fixture(&fx) == 0) {
        test_fixture_config(&fx);
        test_against_torch(&fx);
    } else {
        CHECK_MSG(0, "cannot open tests/fixtures/tiny_qwen2");
    }
    fixture_close(&fx);
    test_decode(0);
    test_decode(1);
    test_bias_grads_fd();
    test_save_load(0);
    test_save_load(1);
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
