/* llama2.c's tokenizer.bin: what the reader makes of it, and hostile files (truncated, wrong
 * counts, negative and oversized lengths, NaN scores, random mutations): a clear error or a
 * working tokenizer, never a crash. */
#include "spm_util.h"

static char *g_data;
static size_t g_len;

static void read_fixture(int n) {
    char path[512];
    dl_error err;
    snprintf(path, sizeof path, FIXTURES "tok%d.bin", n);
    if (dl_read_file(path, &g_data, &g_len, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
}

static void put32(char *p, uint32_t v) { memcpy(p, &v, 4); }

/* A file of the 256 byte tokens, then <unk>/<s>/</s> and the given tokens in llama2.c's spelling. */
static size_t build(char *buf, uint32_t max_len, const char *const *extra, int n_extra, const float *scores) {
    size_t n = 4;
    put32(buf, max_len);
    for (int i = 0; i < 256 + n_extra; i++) {
        char tok[64];
        if (i < 256) snprintf(tok, sizeof tok, "<0x%02X>", i);
        else snprintf(tok, sizeof tok, "%s", extra[i - 256]);
        float s = scores && i >= 256 ? scores[i - 256] : 0.0f;
        memcpy(buf + n, &s, 4);
        put32(buf + n + 4, (uint32_t)strlen(tok));
        memcpy(buf + n + 8, tok, strlen(tok));
        n += 8 + strlen(tok);
    }
    return n;
}

static void expect_error(const void *data, size_t len, int n_vocab, const char *want, int line) {
    dl_error err = {{0}};
    dl_tokenizer *t = dl_tok_load_llama2c(data, len, n_vocab, &err);
    CHECK_MSG(!t && strstr(err.msg, want) && strncmp(err.msg, "tokenizer.bin: ", 15) == 0,
              "line %d: want '%s', got '%s'", line, want, t ? "success" : err.msg);
    dl_tok_free(t);
}
#define EXPECT_ERROR(data, len, n, want) expect_error((data), (len), (n), (want), __LINE__)

static void test_reads_fixture(void) {
    dl_error err;
    dl_tokenizer *t = dl_tok_load_llama2c(g_data, g_len, 320, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    dl_spm_opts o;
    CHECK(dl_tok_is_spm(t, &o) && o.unk_id == 0 && o.bos_id == 1 && o.eos_id == 2 && o.add_prefix && o.add_bos);
    CHECK(dl_tok_vocab_size(t) == 320);
    CHECK(dl_tok_id(t, "<s>") == 1 && dl_tok_id(t, "</s>") == 2 && dl_tok_id(t, "<0x0A>") == 3 + 10);
    CHECK(dl_tok_type(t, 1) == DL_TOK_CONTROL && dl_tok_type(t, 0) == DL_TOK_UNKNOWN && dl_tok_type(t, 3) == DL_TOK_BYTE);
    CHECK(dl_tok_id(t, SP) > 258 && dl_tok_type(t, dl_tok_id(t, SP)) == DL_TOK_NORMAL); /* ' ' in the file */
    size_t n;
    const char *s = dl_tok_token(t, dl_tok_id(t, SP), &n);
    CHECK(n == 1 && s[0] == ' ');
    dl_tok_free(t);
}

static void test_counts(void) {
    EXPECT_ERROR(g_data, g_len, 319, "bytes follow");
    EXPECT_ERROR(g_data, g_len, 321, "truncated at token 320");
    EXPECT_ERROR(g_data, g_len, 100000, "cannot hold the model's 100000 tokens");
    EXPECT_ERROR(g_data, g_len, 0, "vocabulary size 0");
    EXPECT_ERROR(g_data, g_len, -5, "vocabulary size -5");
    EXPECT_ERROR(g_data, g_len, 1 << 30, "vocabulary size");
    EXPECT_ERROR(g_data, 3, 320, "3 bytes is too short");
    EXPECT_ERROR(NULL, 0, 320, "0 bytes is too short");
    int fails = 0; /* every proper prefix fails cleanly */
    for (size_t len = 0; len < g_len; len++) {
        dl_error err;
        dl_tokenizer *t = dl_tok_load_llama2c(g_data, len, 320, &err);
        fails += t == NULL;
        dl_tok_free(t);
    }
    CHECK(fails == (int)g_len);
}

static void test_fields(void) {
    static char buf[1 << 14];
    static const char *const extra[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", " a"};
    float scores[] = {0, 0, 0, -3, -2, -1};
    size_t n = build(buf, 16, extra, 6, scores);
    dl_error err;
    dl_tokenizer *t = dl_tok_load_llama2c(buf, n, 262, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        dl_spm_opts o;
        dl_tok_is_spm(t, &o);
        CHECK(o.unk_id == 256 && o.bos_id == 257 && o.eos_id == 258);
        CHECK(dl_tok_id(t, SP "a") == 261);
        CHECK_IDS(t, "a", 0, 261);
        dl_tok_free(t);
    }
    scores[4] = NAN;
    n = build(buf, 16, extra, 6, scores);
    EXPECT_ERROR(buf, n, 262, "token 260 has score nan");
    n = build(buf, 4, extra, 6, NULL);
    EXPECT_ERROR(buf, n, 262, "token 0 has length 6 (1 to max_token_length 4)");
    put32(buf, 0);
    EXPECT_ERROR(buf, n, 262, "max_token_length 0 is out of range");
    put32(buf, 0x7fffffff);
    EXPECT_ERROR(buf, n, 262, "max_token_length 2147483647 is out of range");
    n = build(buf, 16, extra, 6, NULL);
    put32(buf + 4 + 4, 0xffffffffu); /* token 0's length */
    EXPECT_ERROR(buf, n, 262, "token 0 has length -1");
    put32(buf + 4 + 4, 0);
    EXPECT_ERROR(buf, n, 262, "token 0 has length 0");
    n = build(buf, 16, extra, 6, NULL);
    put32(buf + n - 2 - 4, 16); /* the last token ("\x20a", 2 bytes) claims 16 */
    EXPECT_ERROR(buf, n, 262, "token 261 runs past the end of the file");
    static const char *const dup[] = {"a", "a"};
    n = build(buf, 16, dup, 2, NULL);
    EXPECT_ERROR(buf, n, 258, "tokens 256 and 257 are both spelt 'a'");
    static const char *const bad_utf8[] = {"\xff"};
    n = build(buf, 16, bad_utf8, 1, NULL);
    EXPECT_ERROR(buf, n, 257, "token 256 is not valid UTF-8");
    /* no byte tokens: only three tokens */
    put32(buf, 8);
    size_t k = 4;
    for (int i = 0; i < 3; i++) {
        float s = 0;
        memcpy(buf + k, &s, 4);
        put32(buf + k + 4, 1);
        buf[k + 8] = (char)('a' + i);
        k += 9;
    }
    EXPECT_ERROR(buf, k, 3, "no byte token <0x00>");
}

/* Random mutations of the fixture: loads or fails, and a tokenizer that loads still works. */
static void test_mutations(void) {
    dl_rng r;
    dl_rng_seed(&r, 7);
    char *m = malloc(g_len);
    int loaded = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(m, g_data, g_len);
        int flips = 1 + (int)dl_rng_below(&r, 8);
        for (int f = 0; f < flips; f++) m[dl_rng_below(&r, g_len)] = (char)dl_rng_below(&r, 256);
        size_t len = dl_rng_below(&r, 4) ? g_len : dl_rng_below(&r, g_len + 1);
        dl_error err;
        dl_tokenizer *t = dl_tok_load_llama2c(m, len, 320, &err);
        if (t) {
            loaded++;
            dl_ivec ids = {0};
            dl_buf out = {0};
            CHECK(dl_tok_encode(t, "lily \xe2\x82\xac saw\n", 13, 1, &ids, &err) == 0 &&
                  dl_tok_decode(t, ids.data, ids.len, &out, &err) == 0);
            dl_ivec_free(&ids);
            dl_buf_free(&out);
            dl_tok_free(t);
        }
    }
    CHECK(loaded > 0); /* some mutations (scores, say) leave a valid file */
    free(m);
}

int main(void) {
    read_fixture(320);
    test_reads_fixture();
    test_counts();
    test_fields();
    test_mutations();
    free(g_data);
    TEST_MAIN_END();
}
