/* Batched decoding against per-sequence decoding: sequences with different prompts, lengths and
 * cache sizes stepped together through dl_model_decode_batch must get the logits that
 * dl_model_decode gives each of them alone, step after step. A bad row fails the call and
 * leaves every cache where it was. Tolerance as in test_decode.c (sgemm and sgemv sum in
 * different orders). */
#include "model/model.h"
#include "model/sampler.h"
#include "test.h"

#define TOL_ABS 1e-4
#define TOL_REL 1e-4

static void make_model(dl_model *m, int NH, int NKV, uint64_t seed) {
    /* F = 36 and V = 61: matrix sides that are not multiples of the kernels' blocks */
    dl_config c = {.V = 61, .C = 32, .F = 36, .L = 2, .NH = NH, .NKV = NKV, .max_T = 32, .rms_eps = 1e-5f,
                   .rope_theta = 500.0f, .tied = 0, .bos_id = -1, .eos_id = -1};
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    /* peaked attention so a wrong position or a neighbour's cache would show */
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] *= 6.0f;
}

static double worst(const float *got, const float *want, int V) {
    double w = 0;
    for (int i = 0; i < V; i++) {
        double s = fabs((double)got[i] - want[i]) / (TOL_ABS + TOL_REL * fabs((double)want[i]));
        if (!(s <= w)) w = s;
    }
    return w;
}

#define NSEQ 5

static void test_matches_single(int NH, int NKV) {
    dl_model m;
    make_model(&m, NH, NKV, 7 + (uint64_t)NKV);
    const int V = m.cfg.V, prompt_len[NSEQ] = {1, 3, 7, 2, 12}, cache_T[NSEQ] = {16, 32, 20, 10, 24};
    dl_kv_cache batch_kv[NSEQ], single_kv[NSEQ];
    dl_kv_cache *ptrs[NSEQ];
    int32_t next[NSEQ];
    float *logits = malloc((size_t)NSEQ * V * sizeof(float)), *want = malloc((size_t)V * sizeof(float));
    dl_error err = {{0}};
    dl_rng r;
    dl_rng_seed(&r, 99);
    for (int b = 0; b < NSEQ; b++) {
        int32_t prompt[16];
        for (int t = 0; t < prompt_len[b]; t++) prompt[t] = (int32_t)dl_rng_below(&r, (uint64_t)V);
        CHECK(dl_kv_cache_create(&batch_kv[b], &m.cfg, cache_T[b], &err) == 0);
        CHECK(dl_kv_cache_create(&single_kv[b], &m.cfg, cache_T[b], &err) == 0);
        CHECK(dl_model_decode(&m, &batch_kv[b], prompt, prompt_len[b], want, 0, &err) == 0);
        CHECK(dl_model_decode(&m, &single_kv[b], prompt, prompt_len[b], want, 0, &err) == 0);
        ptrs[b] = &batch_kv[b];
        next[b] = (int32_t)dl_rng_below(&r, (uint64_t)V);
    }
    /* the smallest cache (10 positions, 2 used) bounds the steps a full batch can take */
    double w = 0;
    for (int step = 0; step < 8; step++) {
        CHECK_MSG(dl_model_decode_batch(&m, ptrs, next, NSEQ, logits, &err) == 0, "%s", err.msg);
        for (int b = 0; b < NSEQ; b++) {
            CHECK(dl_model_decode(&m, &single_kv[b], &next[b], 1, want, 0, &err) == 0);
            CHECK(batch_kv[b].pos == single_kv[b].pos);
            double s = worst(logits + (size_t)b * V, want, V);
            if (!(s <= w)) w = s;
            next[b] = dl_argmax(want, V); /* feed each row its own greedy token */
        }
    }
    CHECK_MSG(w <= 1.0, "NH %d NKV %d: batched logits differ from single decoding (scaled error %.3g)", NH, NKV, w);

    /* a subset of rows in another order still matches */
    dl_kv_cache *sub[2] = {&batch_kv[4], &batch_kv[1]};
    int32_t sub_tok[2] = {next[4], next[1]};
    CHECK(dl_model_decode_batch(&m, sub, sub_tok, 2, logits, &err) == 0);
    CHECK(dl_model_decode(&m, &single_kv[4], &next[4], 1, want, 0, &err) == 0);
    CHECK(worst(logits, want, V) <= 1.0);
    CHECK(dl_model_decode(&m, &single_kv[1], &next[1], 1, want, 0, &err) == 0);
    CHECK(worst(logits + V, want, V) <= 1.0);

    for (int b = 0; b < NSEQ; b++) {
        dl_kv_cache_free(&batch_kv[b]);
        dl_kv_cache_free(&single_kv[b]);
    }
    free(logits);
    free(want);
    dl_model_free(&m);
}

/* more rows than the few-rows kernel takes (sgemm's side of the switch), at mixed positions */
static void test_many_rows(void) {
    enum { N = 40 };
    dl_model m;
    make_model(&m, 4, 2, 21);
    const int V = m.cfg.V;
    dl_kv_cache *kb = calloc(N, sizeof *kb), *ks = calloc(N, sizeof *ks);
    dl_kv_cache *ptrs[N];
    int32_t tok[N];
    float *logits = malloc((size_t)N * V * sizeof(float)), *want = malloc((size_t)V * sizeof(float));
    dl_error err = {{0}};
    for (int b = 0; b < N; b++) {
        int32_t prompt[3] = {b % V, (3 * b + 1) % V, (7 * b + 2) % V};
        int len = 1 + b % 3;
        dl_kv_cache_create(&kb[b], &m.cfg, 8, &err);
        dl_kv_cache_create(&ks[b], &m.cfg, 8, &err);
        dl_model_decode(&m, &kb[b], prompt, len, want, 0, &err);
        dl_model_decode(&m, &ks[b], prompt, len, want, 0, &err);
        ptrs[b] = &kb[b];
        tok[b] = (5 * b + 3) % V;
    }
    CHECK_MSG(dl_model_decode_batch(&m, ptrs, tok, N, logits, &err) == 0, "%s", err.msg);
    double w = 0;
    for (int b = 0; b < N; b++) {
        CHECK(dl_model_decode(&m, &ks[b], &tok[b], 1, want, 0, &err) == 0);
        double s = worst(logits + (size_t)b * V, want, V);
        if (!(s <= w)) w = s;
        dl_kv_cache_free(&kb[b]);
        dl_kv_cache_free(&ks[b]);
    }
    CHECK_MSG(w <= 1.0, "%d rows: scaled error %.3g", N, w);
    free(kb);
    free(ks);
    free(logits);
    free(want);
    dl_model_free(&m);
}

static void test_bad_rows(void) {
    dl_model m;
    make_model(&m, 4, 2, 3);
    dl_kv_cache a, b;
    dl_error err = {{0}};
    CHECK(dl_kv_cache_create(&a, &m.cfg, 8, &err) == 0);
    CHECK(dl_kv_cache_create(&b, &m.cfg, 4, &err) == 0);
    float *logits = malloc((size_t)2 * m.cfg.V * sizeof(float));
    int32_t prompt[4] = {1, 2, 3, 4};
    CHECK(dl_model_decode(&m, &b, prompt, 4, logits, 0, &err) == 0); /* b is now full */
    dl_kv_cache *rows[2] = {&a, &b};
    int32_t tok[2] = {5, 6};
    CHECK(dl_model_decode_batch(&m, rows, tok, 2, logits, &err) == -1);
    CHECK_MSG(strstr(err.msg, "row 1") && strstr(err.msg, "overflow"), "%s", err.msg);
    CHECK(a.pos == 0 && b.pos == 4); /* untouched */

    dl_kv_cache_reset(&b);
    int32_t bad[2] = {5, m.cfg.V};
    CHECK(dl_model_decode_batch(&m, rows, bad, 2, logits, &err) == -1);
    CHECK_MSG(strstr(err.msg, "vocabulary") != NULL, "%s", err.msg);
    int32_t neg[2] = {-1, 2};
    CHECK(dl_model_decode_batch(&m, rows, neg, 2, logits, &err) == -1);

    dl_kv_cache *shared[2] = {&a, &a};
    CHECK(dl_model_decode_batch(&m, shared, tok, 2, logits, &err) == -1);
    CHECK_MSG(strstr(err.msg, "share") != NULL, "%s", err.msg);
    CHECK(dl_model_decode_batch(&m, rows, tok, 0, logits, &err) == -1);
    CHECK(a.pos == 0 && b.pos == 0);

    dl_model other;
    dl_config oc = m.cfg;
    oc.NKV = 4;
    CHECK(dl_model_create(&other, &oc, &err) == 0);
    dl_kv_cache wrong;
    CHECK(dl_kv_cache_create(&wrong, &oc, 8, &err) == 0);
    dl_kv_cache *mixed[2] = {&a, &wrong};
    CHECK(dl_model_decode_batch(&m, mixed, tok, 2, logits, &err) == -1);
    CHECK_MSG(strstr(err.msg, "another model shape") != NULL, "%s", err.msg);

    CHECK(dl_model_decode_batch(&m, rows, tok, 2, logits, &err) == 0);
    CHECK(a.pos == 1 && b.pos == 1);
    dl_kv_cache_free(&wrong);
    dl_model_free(&other);
    dl_kv_cache_free(&a);
    dl_kv_cache_free(&b);
    free(logits);
    dl_model_free(&m);
}

int main(void) {
    test_matches_single(4, 4);
    test_matches_single(4, 2);
    test_matches_single(4, 1);
    test_many_rows();
    test_bad_rows();
    TEST_MAIN_END();
}
