/* The top-k teacher cache: rows read back equal the top-k recomputed here from the teacher's
 * logits; the file has the documented size; a run on a cache with K = V has the loss of a run
 * with the live teacher; damaged files are refused with a message. */
#include "distill_fixture.h"
#include "formats/safetensors.h"
#include <sys/stat.h>

static char root[512], data[700], teacher[700], padded[700], student_cfg[700], cache5[800], cachev[800];
static int V;

static void build(const char *teacher_dir, const char *out, int K, int T) {
    dl_error err = {{0}};
    dl_tcache_build_opts o;
    dl_tcache_build_opts_default(&o);
    o.teacher = teacher_dir, o.data = data, o.out = out, o.top_k = K, o.seq_len = T, o.batch = 3, o.threads = 1;
    CHECK_MSG(dl_tcache_build(&o, &err) == 0, "%s", err.msg);
}

typedef struct { int id; double lp; } entry;
static int by_prob(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->lp != y->lp) return x->lp > y->lp ? -1 : 1;
    return x->id - y->id;
}

/* Windows of T tokens through the padded teacher's training forward, sorted in double here. */
static void test_round_trip(void) {
    enum { K = 5, T = 16 };
    dl_error err = {{0}};
    build(padded, cache5, K, T);
    dl_tcache c;
    CHECK_MSG(dl_tcache_open(&c, cache5, &err) == 0, "%s", err.msg);
    dl_tokfile f;
    char p[1024];
    snprintf(p, sizeof p, "%s/train.bin", data);
    if (dl_tokfile_open(&f, p, &err)) fx_die("train.bin", &err);
    CHECK(c.K == K && c.vocab == V && c.seq_len == T && c.n_tokens == f.n_tokens);
    CHECK(c.n_rows == (f.n_tokens - 1) / T * T);
    struct stat st;
    CHECK(stat(cache5, &st) == 0 && (uint64_t)st.st_size == 64 + c.n_rows * (4 * K + 4));
    CHECK(dl_tcache_bytes_per_token(&c) == 4 * K + 4);

    dl_model t;
    if (dl_model_load(&t, padded, &err) || dl_model_alloc_train(&t, 1, T, &err)) fx_die("teacher", &err);
    int32_t in[T], ids[T * K];
    float logp[T * K], rest[T];
    entry *e = malloc((size_t)V * sizeof *e);
    int bad_id = 0, bad_lp = 0, bad_rest = 0;
    uint64_t windows[3] = {0, 7, c.n_rows / T - 1};
    for (int w = 0; w < 3; w++) {
        uint64_t start = windows[w] * T;
        for (int i = 0; i < T; i++) in[i] = dl_tokfile_get(&f, start + (uint64_t)i);
        dl_model_forward(&t, in, NULL, 1, T);
        dl_tcache_read(&c, start, T, ids, logp, rest);
        for (int i = 0; i < T; i++) {
            const float *z = t.logits + (size_t)i * t.cfg.V;
            double mx = z[0], s = 0, kept = 0;
            for (int v = 0; v < V; v++) mx = fmax(mx, z[v]);
            for (int v = 0; v < V; v++) s += exp(z[v] - mx);
            for (int v = 0; v < V; v++) e[v] = (entry){v, z[v] - mx - log(s)}; /* over the tokenizer's ids only */
            qsort(e, (size_t)V, sizeof *e, by_prob);
            for (int k = 0; k < K; k++) {
                bad_id += ids[i * K + k] != e[k].id;
                bad_lp += fabs(logp[i * K + k] - e[k].lp) > 1e-3 * (1 + fabs(e[k].lp));
                kept += exp(e[k].lp);
            }
            bad_rest += fabs(rest[i] - (1 - kept)) > 2e-3;
        }
    }
    CHECK_MSG(bad_id == 0 && bad_lp == 0 && bad_rest == 0, "ids %d, logp %d, rest %d wrong", bad_id, bad_lp,
              bad_rest);
    free(e);
    dl_model_free(&t);
    dl_tokfile_close(&f);
    dl_tcache_close(&c);
}

/* Ties go to the lower id; K = V keeps everything and leaves no mass over. */
static void test_topk_row(void) {
    float z[6] = {1, 3, 3, 0, 2, 3}, scratch[6], rest;
    int32_t ids[6];
    uint16_t lp[6];
    dl_topk_row(z, 6, 2, scratch, ids, lp, &rest);
    CHECK(ids[0] == 1 && ids[1] == 2);
    double s = 0;
    for (int v = 0; v < 6; v++) s += exp(z[v]);
    CHECK_CLOSE(dl_f16_to_f32(lp[0]), 3 - log(s), 2e-3, 0);
    CHECK_CLOSE(rest, 1 - 2 * exp(3) / s, 2e-3, 0);
    dl_topk_row(z, 6, 6, scratch, ids, lp, &rest);
    CHECK(ids[2] == 5 && ids[3] == 4 && ids[4] == 0 && ids[5] == 3);
    CHECK(rest >= 0 && rest < 2e-3);
}

/* Same start, same batches: the first update's loss from a K = V cache is the live teacher's up
 * to the cache's fp16 log-probabilities (rounding errors of ~5e-4 per value that average out: the
 * losses agree to ~1e-6 relative; 1e-4 is asserted). Both teachers are the padded one. */
static void test_cache_matches_live(void) {
    dl_error err = {{0}};
    char a[800], b[800];
    build(padded, cachev, V, 32);
    snprintf(a, sizeof a, "%s/live", root);
    snprintf(b, sizeof b, "%s/cached", root);
    dl_distill_opts o = fx_opts(padded, student_cfg, data, a, 3);
    o.kd.tau = 2.0f;
    o.kd.ce_weight = 0.25f;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o.teacher = NULL;
    o.cache = cachev;
    o.train.out = b;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    json_t *ma = fx_metrics(a), *mb = fx_metrics(b);
    for (long s = 1; s <= 3; s++) {
        CHECK_CLOSE(fx_metric(mb, s, "loss"), fx_metric(ma, s, "loss"), 0, 1e-4);
        CHECK_CLOSE(fx_metric(mb, s, "kd"), fx_metric(ma, s, "kd"), 0, 1e-4);
    }
    CHECK(fx_metric(ma, 1, "ce") == fx_metric(mb, 1, "ce")); /* the same student saw the same tokens */
    json_decref(ma);
    json_decref(mb);
}

/* A top-k cache trains too (K much smaller than V), and resumes bit-for-bit. */
static void test_cache_run_resume(void) {
    dl_error err = {{0}};
    char a[800], b[800], small[800];
    snprintf(small, sizeof small, "%s/k8.cache", root);
    build(teacher, small, 8, 32);
    snprintf(a, sizeof a, "%s/ca", root);
    snprintf(b, sizeof b, "%s/cb", root);
    dl_distill_opts o = fx_opts(NULL, student_cfg, data, a, 6);
    o.cache = small;
    o.kd.kind = DL_KD_SKL;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o.train.out = b;
    o.train.stop_at = 4;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o.train.stop_at = 0;
    o.train.resume = 1;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    json_t *ma = fx_metrics(a), *mb = fx_metrics(b);
    CHECK(fx_metric(ma, 6, "loss") == fx_metric(mb, 6, "loss") && fx_metric(ma, 6, "loss") < fx_metric(ma, 1, "loss"));
    json_decref(ma);
    json_decref(mb);
}

/* ---- damaged files ------------------------------------------------------------------------- */
static unsigned char *g_bytes;
static size_t g_len;

static void put32(unsigned char *p, uint32_t x) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(x >> (8 * i));
}

/* Writes the valid cache with one change, opens it, expects a failure naming `needle`. */
static void expect_bad(const char *what, size_t len, size_t at, const void *patch, size_t n, const char *needle) {
    char p[900];
    dl_error err = {{0}};
    snprintf(p, sizeof p, "%s/bad.cache", root);
    unsigned char *b = malloc(g_len + 16);
    memcpy(b, g_bytes, g_len);
    if (patch) memcpy(b + at, patch, n);
    FILE *f = fopen(p, "wb");
    if (len) fwrite(b, 1, len, f);
    fclose(f);
    free(b);
    dl_tcache c;
    int rc = dl_tcache_open(&c, p, &err);
    CHECK_MSG(rc != 0 && strstr(err.msg, needle) != NULL, "%s: rc %d, '%s'", what, rc, err.msg);
    if (rc == 0) dl_tcache_close(&c);
}

static void test_damaged(void) {
    dl_error err;
    char *text;
    if (dl_read_file(cache5, &text, &g_len, &err)) fx_die("read cache", &err);
    g_bytes = (unsigned char *)text;
    dl_tcache c;
    if (dl_tcache_open(&c, cache5, &err)) fx_die("open", &err);
    uint64_t rows = c.n_rows;
    dl_tcache_close(&c);
    unsigned char v[8];
    uint16_t nan16 = 0x7e00, inf16 = 0xfc00;
    float two = 2.0f;
    expect_bad("empty", 0, 0, NULL, 0, "too short");
    expect_bad("header cut", 40, 0, NULL, 0, "too short");
    expect_bad("truncated", g_len - 3, 0, NULL, 0, "truncated");
    expect_bad("magic", g_len, 0, "DSTLTOK", 7, "magic");
    put32(v, 2);
    expect_bad("version", g_len, 8, v, 4, "version");
    put32(v, 0);
    expect_bad("K = 0", g_len, 12, v, 4, "K = 0");
    put32(v, (uint32_t)V + 1);
    expect_bad("K > V", g_len, 12, v, 4, "must be in");
    put32(v, 0xffffffffu);
    expect_bad("huge vocab", g_len, 16, v, 4, "out of range");
    put32(v, 4);
    expect_bad("id width", g_len, 20, v, 4, "id width");
    put32(v, 0);
    expect_bad("seq_len 0", g_len, 24, v, 4, "seq_len");
    put32(v, 0xffffffffu), put32(v + 4, 0x0fffffffu);
    expect_bad("rows that do not match the tokens", g_len, 32, v, 8, "rows");
    expect_bad("huge tokens", g_len, 56, v, 8, "rows");
    unsigned char h[32]; /* consistent but absurd: 2^60 rows of 2^60 + 1 tokens */
    memcpy(h, g_bytes + 32, 32);
    put32(h, 0), put32(h + 4, 1u << 28), put32(h + 24, 1), put32(h + 28, 1u << 28);
    expect_bad("huge rows", g_len, 32, h, 32, "overflow");
    put32(v, (uint32_t)V), v[0] = (unsigned char)V, v[1] = (unsigned char)(V >> 8);
    expect_bad("id >= V", g_len, 64 + 2 * 7, v, 2, "outside");
    size_t logp_at = 64 + (size_t)rows * 5 * 2, rest_at = logp_at + (size_t)rows * 5 * 2;
    expect_bad("nan logp", g_len, logp_at + 2 * 3, &nan16, 2, "not finite");
    expect_bad("-inf logp", g_len, logp_at, &inf16, 2, "not finite");
    expect_bad("rest > 1", g_len, rest_at + 4 * 5, &two, 4, "leftover");
    free(text);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(root, sizeof root, "%s", test_tmpdir("distill-cache"));
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(teacher, sizeof teacher, "%s/teacher", root);
    snprintf(padded, sizeof padded, "%s/padded", root);
    snprintf(student_cfg, sizeof student_cfg, "%s/student.json", root);
    snprintf(cache5, sizeof cache5, "%s/k5.cache", root);
    snprintf(cachev, sizeof cachev, "%s/kv.cache", root);
    V = fx_data(data, 300, 0);
    fx_trained_teacher(teacher, fx_config(V, 2), data, 40);
    fx_model(padded, fx_config(V + 13, 2), 11, 3.0f, data);
    fx_write_config(student_cfg, fx_config(V, 2));
    test_topk_row();
    test_round_trip();
    test_cache_matches_live();
    test_cache_run_resume();
    test_damaged();
    dl_error err;
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
