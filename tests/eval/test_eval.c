/* eval: the mean loss over a token file equals the cross-entropy computed here another way
 * (KV-cache decoding of each window, log-softmax in double); an all-zero model scores ln(V);
 * max_tokens, reallocation and bad arguments. */
#include "eval/eval.h"
#include "test.h"

static char g_dir[512];

static void make_model(dl_model *m, int V, uint64_t seed) {
    dl_config c = {.V = V, .C = 16, .F = 32, .L = 2, .NH = 4, .NKV = 2, .max_T = 16, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 0, .bos_id = -1, .eos_id = -1};
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] *= 10.0f; /* confident, so the loss varies */
}

/* Sum of -log p(token[s+t+1] | tokens[s..s+t]) over windows of T positions, for positions < P. */
static double reference_sum(const dl_model *m, const int32_t *tok, uint64_t P, int T) {
    dl_kv_cache kv;
    dl_error err;
    if (dl_kv_cache_create(&kv, &m->cfg, T, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    int V = m->cfg.V;
    float *logits = malloc((size_t)T * V * sizeof(float));
    double sum = 0;
    for (uint64_t s = 0; s < P; s += (uint64_t)T) {
        int n = P - s < (uint64_t)T ? (int)(P - s) : T;
        dl_kv_cache_reset(&kv);
        if (dl_model_decode(m, &kv, tok + s, n, logits, 1, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
        for (int t = 0; t < n; t++) {
            const float *row = logits + (size_t)t * V;
            double mx = row[0], z = 0;
            for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
            for (int i = 0; i < V; i++) z += exp(row[i] - mx);
            sum += mx + log(z) - row[tok[s + (uint64_t)t + 1]];
        }
    }
    free(logits);
    dl_kv_cache_free(&kv);
    return sum;
}

static void open_tokens(dl_tokfile *f, const char *name, const int32_t *tok, size_t n, uint32_t vocab) {
    char p[1024];
    dl_error err;
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    if (dl_tokfile_write(p, tok, n, vocab, &err) || dl_tokfile_open(f, p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(2);
    }
}

static void test_matches_reference(void) {
    enum { N = 101, V = 40 };
    int32_t tok[N];
    dl_rng r;
    dl_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) tok[i] = (int32_t)dl_rng_below(&r, V);
    dl_tokfile f;
    open_tokens(&f, "val.bin", tok, N, V);
    dl_model m;
    make_model(&m, V, 21);
    dl_eval_result res;
    dl_error err = {{0}};
    /* 100 positions in windows of 8: 12 full windows and one of 4, batches of 3 */
    CHECK_MSG(dl_eval_tokens(&m, &f, 3, 8, 0, &res, &err) == 0, "%s", err.msg);
    double want = reference_sum(&m, tok, 100, 8) / 100;
    CHECK(res.tokens == 100);
    CHECK_CLOSE(res.mean_loss, want, 1e-5, 1e-5);
    CHECK_CLOSE(res.perplexity, exp(want), 0, 1e-4);
    CHECK(res.tokens_per_s > 0 && res.seconds >= 0);
    CHECK(res.mean_loss > 1.0); /* random weights: far from a perfect model */
    /* at most 20 positions; a model allocated for (3,8) is reallocated for (4,10) */
    CHECK_MSG(dl_eval_tokens(&m, &f, 4, 10, 20, &res, &err) == 0, "%s", err.msg);
    CHECK(m.B == 4 && m.T == 10);
    CHECK(res.tokens == 20);
    CHECK_CLOSE(res.mean_loss, reference_sum(&m, tok, 20, 10) / 20, 1e-5, 1e-5);
    /* a smaller shape reuses the buffers */
    CHECK_MSG(dl_eval_tokens(&m, &f, 1, 5, 7, &res, &err) == 0, "%s", err.msg);
    CHECK(m.B == 4 && m.T == 10 && res.tokens == 7);
    CHECK_CLOSE(res.mean_loss, reference_sum(&m, tok, 7, 5) / 7, 1e-5, 1e-5);
    /* max_tokens past the end scores the whole file */
    CHECK(dl_eval_tokens(&m, &f, 2, 16, 1000, &res, &err) == 0 && res.tokens == 100);
    dl_model_free(&m);
    dl_tokfile_close(&f);
}

static void test_uniform_model(void) {
    /* every weight zero: the final norm sees zeros, every logit is 0, the loss is ln V */
    enum { N = 30, V = 40 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (i * 7) % V;
    dl_tokfile f;
    open_tokens(&f, "uniform.bin", tok, N, V);
    dl_model m;
    make_model(&m, V, 1);
    memset(m.params, 0, m.lay.total * sizeof(float));
    dl_eval_result res;
    dl_error err = {{0}};
    CHECK_MSG(dl_eval_tokens(&m, &f, 2, 4, 0, &res, &err) == 0, "%s", err.msg);
    CHECK(res.tokens == 29);
    CHECK_CLOSE(res.mean_loss, log(40.0), 1e-6, 0);
    CHECK_CLOSE(res.perplexity, 40.0, 0, 1e-5);
    dl_model_free(&m);
    dl_tokfile_close(&f);
}

static void test_errors(void) {
    int32_t tok[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 45};
    dl_tokfile f;
    open_tokens(&f, "big.bin", tok, 10, 50);
    dl_model m;
    make_model(&m, 40, 2);
    dl_eval_result res;
    dl_error err = {{0}};
    CHECK(dl_eval_tokens(&m, &f, 1, 4, 0, &res, &err) == -1 && strstr(err.msg, "vocabulary (50)"));
    dl_tokfile_close(&f);
    open_tokens(&f, "ok.bin", tok, 9, 40);
    CHECK(dl_eval_tokens(&m, &f, 1, 17, 0, &res, &err) == -1 && strstr(err.msg, "max_position_embeddings"));
    CHECK(dl_eval_tokens(&m, &f, 0, 4, 0, &res, &err) == -1 && strstr(err.msg, "positive"));
    dl_tokfile_close(&f);
    open_tokens(&f, "one.bin", tok, 1, 40);
    CHECK(dl_eval_tokens(&m, &f, 1, 4, 0, &res, &err) == -1 && strstr(err.msg, "nothing to score"));
    dl_tokfile_close(&f);
    dl_model_free(&m);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("eval"));
    test_matches_reference();
    test_uniform_model();
    test_errors();
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
