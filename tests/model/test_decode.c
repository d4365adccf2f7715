/* KV-cache decoding against the training forward: feeding a sequence in chunks (a prefill,
 * more chunks, then one token at a time) must give the logits dl_model_forward gives for the
 * whole sequence, at every position. Tolerance: |diff| <= 1e-4 + 1e-4*|logit| (float32 sums
 * taken in different orders; logits here are of order 1-10). */
#include "model/model.h"
#include "test.h"

#define TOL_ABS 1e-4
#define TOL_REL 1e-4

static void make_model(dl_model *m, int tied, int NH, int NKV, uint64_t seed) {
    dl_config c = {.V = 50, .C = 32, .F = 48, .L = 2, .NH = NH, .NKV = NKV, .max_T = 24, .rms_eps = 1e-5f,
                   .rope_theta = 500.0f, .tied = tied, .bos_id = -1, .eos_id = -1};
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    /* larger weights than the init so attention is peaked and positions matter; norm weights
     * away from 1 so a skipped norm weight would show */
    dl_rng r;
    dl_rng_seed(&r, seed + 1);
    for (int i = 0; i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        float *p = m->params + v->offset;
        for (size_t j = 0; j < v->numel; j++) p[j] = v->ndim == 1 ? 0.5f + dl_rng_float(&r) : p[j] * 8.0f;
    }
}

/* max over rows [r0, r0+rows) of the tolerance-scaled error between got (rows,V) and the
 * reference rows of want (T,V); > 1 means out of tolerance */
static double worst(const float *got, const float *want, int r0, int rows, int V, double *max_abs) {
    double w = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < V; i++) {
            double a = got[(size_t)r * V + i], b = want[(size_t)(r0 + r) * V + i], d = fabs(a - b);
            if (d > *max_abs) *max_abs = d;
            double s = d / (TOL_ABS + TOL_REL * fabs(b));
            if (!(s <= w)) w = s; /* a NaN makes it fail */
        }
    return w;
}

static void test_matches_forward(int tied, int NH, int NKV) {
    dl_model m;
    make_model(&m, tied, NH, NKV, 100 + (uint64_t)(tied * 10 + NKV));
    const int T = 20, V = m.cfg.V;
    int32_t tok[20];
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
    CHECK_MSG(dl_kv_cache_create(&kv, &m.cfg, 0, &err) == 0, "%s", err.msg);
    CHECK(kv.max_T == 24 && kv.pos == 0);
    double w = 0, max_abs = 0, s;
    /* chunks: prefill 6 (all rows), then 4 more (all rows) at position 6, then singles */
    CHECK(dl_model_decode(&m, &kv, tok, 6, got, 1, &err) == 0);
    if ((s = worst(got, ref, 0, 6, V, &max_abs)) > w) w = s;
    CHECK(dl_model_decode(&m, &kv, tok + 6, 4, got, 1, &err) == 0);
    if ((s = worst(got, ref, 6, 4, V, &max_abs)) > w) w = s;
    CHECK(kv.pos == 10);
    for (int t = 10; t < T; t++) {
        CHECK(dl_model_decode(&m, &kv, tok + t, 1, got, 0, &err) == 0);
        if ((s = worst(got, ref, t, 1, V, &max_abs)) > w) w = s;
    }
    CHECK(kv.pos == T);
    /* again from scratch: a prefill that keeps only the last row, then singles from position 0 */
    dl_kv_cache_reset(&kv);
    CHECK(dl_model_decode(&m, &kv, tok, 13, got, 0, &err) == 0);
    if ((s = worst(got, ref, 12, 1, V, &max_abs)) > w) w = s;
    dl_kv_cache_reset(&kv);
    for (int t = 0; t < 3; t++) {
        CHECK(dl_model_decode(&m, &kv, tok + t, 1, got, 0, &err) == 0);
        if ((s = worst(got, ref, t, 1, V, &max_abs)) > w) w = s;
    }
    printf("tied=%d NH=%d NKV=%d: max |decode - forward| = %.3g (%.3g of tolerance)\n", tied, NH, NKV, max_abs, w);
    CHECK_MSG(w <= 1.0, "decode differs from forward by %.3g (tolerance units)", w);
    /* the logits must depend on the context: the position-19 logits differ from position 0's */
    double diff = 0;
    for (int i = 0; i < V; i++) diff += fabs(ref[(size_t)19 * V + i] - ref[i]);
    CHECK(diff > 1e-2);
    dl_kv_cache_free(&kv);
    free(ref);
    free(got);
    dl_model_free(&m);
}

static void test_errors(void) {
    dl_model m;
    make_model(&m, 0, 4, 2, 7);
    dl_kv_cache kv;
    dl_error err = {{0}};
    CHECK(dl_kv_cache_create(&kv, &m.cfg, 25, &err) == -1 && strstr(err.msg, "max_position_embeddings"));
    CHECK(dl_kv_cache_create(&kv, &m.cfg, 8, &err) == 0);
    int32_t tok[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    float *logits = malloc(10 * 50 * sizeof(float)), first[50];
    CHECK(dl_model_decode(&m, &kv, tok, 9, logits, 1, &err) == -1 && strstr(err.msg, "overflow"));
    CHECK(kv.pos == 0);
    CHECK(dl_model_decode(&m, &kv, tok, 8, logits, 0, &err) == 0 && kv.pos == 8);
    memcpy(first, logits, sizeof first);
    CHECK(dl_model_decode(&m, &kv, tok, 1, logits, 0, &err) == -1 && strstr(err.msg, "overflow"));
    CHECK(kv.pos == 8);
    dl_kv_cache_reset(&kv);
    CHECK(dl_model_decode(&m, &kv, tok, 8, logits, 0, &err) == 0);
    CHECK(memcmp(first, logits, sizeof first) == 0); /* same input, same bits */
    dl_kv_cache_reset(&kv);
    int32_t bad[2] = {3, 50};
    CHECK(dl_model_decode(&m, &kv, bad, 2, logits, 0, &err) == -1 && strstr(err.msg, "vocabulary"));
    bad[1] = -1;
    CHECK(dl_model_decode(&m, &kv, bad, 2, logits, 0, &err) == -1 && strstr(err.msg, "vocabulary"));
    CHECK(dl_model_decode(&m, &kv, tok, 0, logits, 0, &err) == -1);
    CHECK(kv.pos == 0);
    /* a cache made for a different shape is refused */
    dl_model other;
    make_model(&other, 0, 4, 4, 8);
    CHECK(dl_model_decode(&other, &kv, tok, 1, logits, 0, &err) == -1 && strstr(err.msg, "shape"));
    dl_model_free(&other);
    dl_kv_cache_free(&kv);
    free(logits);
    dl_model_free(&m);
}

int main(void) {
    test_matches_forward(0, 4, 2); /* untied, grouped-query */
    test_matches_forward(1, 4, 4); /* tied, multi-head */
    test_matches_forward(0, 4, 1); /* untied, one kv head */
    test_matches_forward(1, 2, 1); /* tied, grouped-query */
    test_errors();
    TEST_MAIN_END();
}
