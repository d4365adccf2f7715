/* distil import llama2c against tools/make_llama2c_fixtures.py: both checkpoint formats of a
 * shared- and an unshared-classifier model give the PyTorch logits of llama2.c's model (with
 * its interleaved RoPE); generation runs; hostile checkpoints fail cleanly with nothing
 * written. */
#include "cli/cli_util.h"
#include "convert/convert.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#define FIX DISTIL_SOURCE_DIR "/tests/fixtures/llama2c/"
enum { V = 320, T = 8 };

static char g_dir[512];

static void import_ok(const char *ckpt, const char *out) {
    dl_error err;
    CHECK_MSG(dl_import_llama2c(ckpt, FIX "tok320.bin", out, &err) == 0, "%s", err.msg);
}

/* The folder's logits on the fixture's tokens against the reference: the largest error, and a
 * check with fp32 tolerances (|d| <= 1e-5 + 1e-5 |ref|). */
static void check_logits(const char *dir, const char *ref_name) {
    dl_error err;
    dl_st_file f;
    dl_model m;
    if (dl_st_open(&f, FIX "logits.safetensors", &err) || dl_model_load(&m, dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(2);
    }
    const dl_st_tensor *tok = dl_st_find(&f, "tokens"), *ref = dl_st_find(&f, ref_name);
    CHECK(tok && ref && tok->numel == T && ref->numel == (size_t)T * V);
    int32_t ids[T];
    memcpy(ids, tok->data, sizeof ids);
    const float *want = ref->data;
    CHECK(dl_model_alloc_train(&m, 1, T, &err) == 0);
    dl_model_forward(&m, ids, NULL, 1, T);
    double worst = 0;
    int ok = 1;
    for (size_t i = 0; i < (size_t)T * V; i++) {
        double d = fabs((double)m.logits[i] - want[i]);
        if (d > worst) worst = d;
        ok &= d <= 1e-5 + 1e-5 * fabs(want[i]);
    }
    CHECK_MSG(ok, "%s vs %s: largest error %.3g", dir, ref_name, worst);
    printf("%s: largest logit error %.2g\n", ref_name, worst);
    dl_model_free(&m);
    dl_st_close(&f);
}

static void check_config(const char *dir, int tied) {
    dl_config c;
    dl_error err;
    CHECK(dl_config_load_any(dir, &c, &err) == 0);
    CHECK(c.V == V && c.C == 8 && c.F == 16 && c.L == 2 && c.NH == 2 && c.NKV == 1 && c.max_T == 16);
    CHECK(c.tied == tied && c.bos_id == 1 && c.eos_id == 2 && c.rope_theta == 10000.0f && fabsf(c.rms_eps - 1e-5f) < 1e-9f);
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx, ny;
    dl_error err;
    int same = dl_read_file(a, &x, &nx, &err) == 0 && dl_read_file(b, &y, &ny, &err) == 0 && nx == ny &&
               memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_formats(void) {
    static const char *const names[4] = {"shared_legacy", "shared_v1", "unshared_legacy", "unshared_v1"};
    char ckpt[700], out[4][700], a[4096], b[4096];
    for (int k = 0; k < 4; k++) {
        snprintf(ckpt, sizeof ckpt, FIX "%s.bin", names[k]);
        snprintf(out[k], sizeof out[k], "%s/%s", g_dir, names[k]);
        import_ok(ckpt, out[k]);
        check_config(out[k], k < 2);
        check_logits(out[k], k < 2 ? "logits_shared" : "logits_unshared");
    }
    for (int k = 0; k < 4; k += 2) { /* the two formats of one model make the same folder */
        snprintf(a, sizeof a, "%s/model.safetensors", out[k]);
        snprintf(b, sizeof b, "%s/model.safetensors", out[k + 1]);
        CHECK(same_file(a, b));
        snprintf(a, sizeof a, "%s/tokenizer.json", out[k]);
        snprintf(b, sizeof b, "%s/tokenizer.json", out[k + 1]);
        CHECK(same_file(a, b));
    }
}

/* Greedy decoding from a prompt with the KV cache, then the text of what came out. */
static void test_generation(void) {
    char dir[700], tp[800];
    snprintf(dir, sizeof dir, "%s/shared_legacy", g_dir);
    snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
    dl_error err;
    dl_model m;
    dl_tokenizer *tok = dl_tok_load(tp, &err);
    CHECK(tok && dl_model_load(&m, dir, &err) == 0);
    if (!tok) return;
    dl_ivec ids = {0};
    CHECK(dl_ivec_push(&ids, m.cfg.bos_id) == 0 && dl_tok_encode(tok, "Once upon", 9, 0, &ids, &err) == 0);
    dl_kv_cache kv;
    float logits[V];
    CHECK(dl_kv_cache_create(&kv, &m.cfg, 0, &err) == 0);
    CHECK(dl_model_decode(&m, &kv, ids.data, (int)ids.len, logits, 0, &err) == 0);
    int n0 = (int)ids.len;
    while (kv.pos < m.cfg.max_T) {
        int32_t best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        dl_ivec_push(&ids, best);
        CHECK(dl_model_decode(&m, &kv, &best, 1, logits, 0, &err) == 0);
    }
    CHECK(kv.pos == 16 && (int)ids.len == 16 && n0 < 16);
    dl_buf text = {0};
    CHECK_MSG(dl_tok_decode(tok, ids.data + n0, ids.len - (size_t)n0, &text, &err) == 0, "%s", err.msg);
    printf("greedy continuation of 'Once upon': '%.*s'\n", (int)text.len, text.data);
    dl_buf_free(&text);
    dl_ivec_free(&ids);
    dl_kv_cache_free(&kv);
    dl_model_free(&m);
    dl_tok_free(tok);
}

/* ---- hostile checkpoints -------------------------------------------------------------------- */
static char *g_legacy, *g_v1;
static size_t g_legacy_len, g_v1_len;

static void expect_read_error(const void *data, size_t len, const char *want, int line) {
    dl_model m;
    dl_error err = {{0}};
    int rc = dl_llama2c_read(&m, data, len, &err);
    CHECK_MSG(rc == -1 && strstr(err.msg, want), "line %d: want '%s', got '%s'", line, want, rc ? err.msg : "success");
    if (rc == 0) dl_model_free(&m);
}
#define EXPECT_READ_ERROR(data, len, want) expect_read_error((data), (len), (want), __LINE__)

/* A copy of the legacy (or v1) file with the int32 header field at byte off set to v (valid
 * until the next call). */
static char *g_edit;
static char *edited(const char *src, size_t len, size_t off, int32_t v) {
    free(g_edit);
    g_edit = malloc(len);
    memcpy(g_edit, src, len);
    memcpy(g_edit + off, &v, 4);
    return g_edit;
}

static void test_bad_headers(void) {
    /* legacy header fields at 0..24: dim hidden layers heads kv_heads vocab seq_len; v1 adds 8 */
    const char *L = g_legacy;
    size_t n = g_legacy_len;
    EXPECT_READ_ERROR(edited(L, n, 0, 0), n, "dim = 0 is out of range");
    EXPECT_READ_ERROR(edited(L, n, 0, 1 << 20), n, "dim = 1048576 is out of range");
    EXPECT_READ_ERROR(edited(L, n, 4, -16), n, "hidden_dim = -16 is out of range");
    EXPECT_READ_ERROR(edited(L, n, 8, 5000), n, "n_layers = 5000 is out of range");
    EXPECT_READ_ERROR(edited(L, n, 12, 3), n, "dim 8 is not divisible by n_heads 3");
    EXPECT_READ_ERROR(edited(L, n, 16, 3), n, "n_kv_heads = 3 is out of range (1 to 2)");
    EXPECT_READ_ERROR(edited(L, n, 20, INT32_MIN), n, "vocab_size = -2147483648 is out of range");
    EXPECT_READ_ERROR(edited(L, n, 24, 1 << 21), n, "seq_len = 2097152 is out of range");
    EXPECT_READ_ERROR(edited(L, n, 20, -V), n, "an unshared classifier need"); /* the file has none */
    EXPECT_READ_ERROR(edited(L, n, 20, V + 1), n, "bytes of weights");
    EXPECT_READ_ERROR(edited(L, n, 24, 17), n, "bytes of weights"); /* RoPE tables of another length */
    /* every factor at its bound: the size cannot match and nothing is allocated */
    char *big = edited(L, n, 0, 1 << 16);
    memcpy(big + 4, &(int32_t){1 << 18}, 4);
    memcpy(big + 8, &(int32_t){1024}, 4);
    memcpy(big + 12, &(int32_t){1 << 15}, 4);
    memcpy(big + 16, &(int32_t){1}, 4);
    memcpy(big + 20, &(int32_t){-(1 << 24)}, 4);
    memcpy(big + 24, &(int32_t){1 << 20}, 4);
    EXPECT_READ_ERROR(big, n, "bytes of weights");
    const char *V1 = g_v1;
    size_t m = g_v1_len;
    EXPECT_READ_ERROR(edited(V1, m, 4, 2), m, "version 2 (llama2.c's int8 format) is not supported");
    EXPECT_READ_ERROR(edited(V1, m, 4, 7), m, "unknown checkpoint version 7");
    EXPECT_READ_ERROR(edited(V1, m, 8, 6), m, "head size 3 must be even");
    EXPECT_READ_ERROR(edited(V1, m, 8 + 20, -V), m, "vocab_size = -320 is out of range");
    char *flag = edited(V1, m, 0, 0x616b3432);
    flag[36] = 2;
    EXPECT_READ_ERROR(flag, m, "shared_classifier flag is 2");
    flag[36] = 0; /* says unshared, but the file has no classifier */
    EXPECT_READ_ERROR(flag, m, "an unshared classifier need");
    EXPECT_READ_ERROR(V1, 200, "a version-1 header alone is 256");
    EXPECT_READ_ERROR(L, 27, "the legacy header alone is 28");
    EXPECT_READ_ERROR(NULL, 0, "truncated: 0 bytes");
}

static void test_sizes(void) {
    int fails = 0, total = 0; /* every proper prefix of both files fails, and so does one more byte */
    for (int k = 0; k < 2; k++) {
        const char *d = k ? g_v1 : g_legacy;
        size_t len = k ? g_v1_len : g_legacy_len;
        for (size_t i = 0; i < len; i += 1 + (i > 300) * 3, total++) {
            dl_model m;
            dl_error err;
            if (dl_llama2c_read(&m, d, i, &err) == 0) dl_model_free(&m);
            else fails++;
        }
        char *more = malloc(len + 1);
        memcpy(more, d, len);
        more[len] = 0;
        EXPECT_READ_ERROR(more, len + 1, "bytes of weights");
        free(more);
    }
    CHECK_MSG(fails == total, "%d of %d prefixes failed", fails, total);
}

static void test_import_errors(void) {
    char out[700], model[800];
    snprintf(out, sizeof out, "%s/bad", g_dir);
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    dl_error err;
    CHECK(dl_import_llama2c(FIX "shared_v1.bin", FIX "tok1024.bin", out, &err) == -1);
    CHECK_MSG(strstr(err.msg, "tok1024.bin: tokenizer.bin:") && strstr(err.msg, "follow the 320 tokens"), "%s", err.msg);
    CHECK(!dl_path_exists(model));
    CHECK(dl_import_llama2c(FIX "tok320.bin", FIX "tok320.bin", out, &err) == -1 && strstr(err.msg, "tok320.bin: "));
    CHECK(!dl_path_exists(model));
    CHECK(dl_import_llama2c(FIX "nope.bin", FIX "tok320.bin", out, &err) == -1 && strstr(err.msg, "nope.bin"));
}

static void test_cli(void) {
    char args[2000];
    snprintf(args, sizeof args, "import llama2c --checkpoint " FIX "shared_v1.bin --tokenizer " FIX "tok320.bin --out %s/cli",
             g_dir);
    run_result *r = run_distil(g_dir, args);
    CHECK_MSG(r->status == 0, "%s", r->err);
    snprintf(args, sizeof args, "import llama2c --checkpoint " FIX "shared_v1.bin --tokenizer " FIX "tok1024.bin --out %s/cli2",
             g_dir);
    r = run_distil(g_dir, args);
    CHECK_CLEAN_ERROR(r, "vocabulary sizes differ");
    CHECK(r->status == 1);
    snprintf(args, sizeof args, "import llama2c --checkpoint " FIX "shared_v1.bin --out %s/cli3", g_dir);
    r = run_distil(g_dir, args);
    CHECK_CLEAN_ERROR(r, "--tokenizer");
    CHECK(r->status == 2);
    snprintf(args, sizeof args, "import llama2c --checkpoint a --tokenizer b --out %s/cli3 --dtype f16", g_dir);
    r = run_distil(g_dir, args);
    CHECK_CLEAN_ERROR(r, "--dtype 'f16'");
    CHECK(r->status == 2);
    char text[700];
    snprintf(text, sizeof text, "%s/text.bin", g_dir);
    write_text(text, "this is not a checkpoint\n");
    snprintf(args, sizeof args, "import llama2c --checkpoint %s --tokenizer " FIX "tok320.bin --out %s/cli4", text, g_dir);
    r = run_distil(g_dir, args);
    CHECK_CLEAN_ERROR(r, "text.bin: truncated: 25 bytes");
    r = run_distil(g_dir, "import llama2c --help");
    CHECK(r->status == 0 && strstr(r->out, "--checkpoint") && strstr(r->out, "--tokenizer") && strstr(r->out, "--dtype"));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("llama2c"));
    dl_error err;
    if (dl_read_file(FIX "shared_legacy.bin", &g_legacy, &g_legacy_len, &err) ||
        dl_read_file(FIX "shared_v1.bin", &g_v1, &g_v1_len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    test_formats();
    test_generation();
    test_bad_headers();
    test_sizes();
    test_import_errors();
    test_cli();
    free(g_legacy);
    free(g_v1);
    free(g_edit);
    TEST_MAIN_END();
}
