/* SentencePiece-style tokenizer: the fixture vocabularies against the Python reference and the
 * straightforward encoder in spm_util.h, on fixed cases and on 1,200 generated strings; the
 * same through tokenizer.json; hand-made vocabularies for ties, specials, user-defined tokens,
 * byte fallback and the dummy prefix. */
#include "spm_util.h"
#include <jansson.h>

static int same_ids(const dl_ivec *a, const dl_ivec *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len * sizeof *a->data) == 0);
}

/* tests/fixtures/llama2c/tokenizer_cases.json: ids computed by the Python reference. */
static void test_python_cases(const dl_tokenizer *t320, const dl_tokenizer *t1024) {
    dl_error err;
    json_t *cases = dl_json_load(FIXTURES "tokenizer_cases.json", &err);
    CHECK_MSG(cases && json_array_size(cases) >= 15, "%s", cases ? "too few cases" : err.msg);
    for (size_t i = 0; cases && i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *text = json_string_value(json_object_get(c, "text"));
        for (int k = 0; k < 2; k++) {
            const json_t *want = json_object_get(c, k ? "ids1024" : "ids320");
            dl_ivec got = {0};
            CHECK(dl_tok_encode(k ? t1024 : t320, text, strlen(text), 0, &got, &err) == 0);
            int ok = got.len == json_array_size(want);
            for (size_t j = 0; ok && j < got.len; j++) ok = got.data[j] == json_integer_value(json_array_get(want, j));
            CHECK_MSG(ok, "vocab %d, \"%s\"", k ? 1024 : 320, text);
            CHECK_MSG(roundtrips(k ? t1024 : t320, text, strlen(text), 0), "round trip of \"%s\"", text);
            dl_ivec_free(&got);
        }
    }
    json_decref(cases);
}

/* ---- a varied corpus ----------------------------------------------------------------------- */
static const char *const PIECES[] = {
    "once", "upon", "a", "time", "lily", "liked", "the", "big", "red", "ball", "happily", "ever", "after", "Tom",
    "caf\xc3\xa9", "na\xc3\xafve", "\xc3\xbc" "ber", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe4\xb8\xad\xe6\x96\x87",
    "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "\xe2\x9d\xa4\xef\xb8\x8f", "\xd0\x96\xd0\xb8",
    "\xce\xa9", "42", "3.14", "don't", "!", "?", ",", ".", "(", ")", "<s", "s>", "</", "<0x41>", SP, "x\xff", "\xc3",
    "\xed\xa0\x80", "ABC", "zzz", "q",
};
static const char *const SPACES[] = {" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "      "};

static size_t make_string(dl_rng *r, char *buf, size_t cap) {
    size_t n = 0, k = 1 + dl_rng_below(r, 12);
    if (dl_rng_below(r, 8) == 0) n += (size_t)snprintf(buf, cap, "%s", SPACES[dl_rng_below(r, 9)]);
    for (size_t i = 0; i < k && n + 64 < cap; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s", PIECES[dl_rng_below(r, sizeof PIECES / sizeof PIECES[0])]);
        if (i + 1 < k || dl_rng_below(r, 6) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s", dl_rng_below(r, 4) ? " " : SPACES[dl_rng_below(r, 9)]);
    }
    return n;
}

/* Each string: the fast encoder equals the straightforward one and the tokenizer read back from
 * its tokenizer.json; decoding gives the text back unless it holds U+2581. */
static void test_corpus(const dl_tokenizer *t, const dl_tokenizer *back, int n_strings, uint64_t seed) {
    dl_rng r;
    dl_rng_seed(&r, seed);
    int ref_ok = 0, back_ok = 0, rt_ok = 0, rt_n = 0;
    char buf[1024];
    dl_error err;
    for (int i = 0; i < n_strings; i++) {
        size_t n = make_string(&r, buf, sizeof buf);
        dl_ivec fast = {0}, ref = {0}, via = {0};
        dl_tok_encode(t, buf, n, 0, &fast, &err);
        ref_encode(t, buf, n, &ref);
        dl_tok_encode(back, buf, n, 0, &via, &err);
        ref_ok += same_ids(&fast, &ref);
        back_ok += same_ids(&fast, &via);
        if (!same_ids(&fast, &ref) && ref_ok + 3 > i) {
            fprintf(stderr, "differs from the reference: \"%.*s\"\n", (int)n, buf);
            print_ids("fast", &fast);
            print_ids("reference", &ref);
        }
        if (!memmem(buf, n, SP, 3)) rt_n++, rt_ok += roundtrips(t, buf, n, 0);
        dl_ivec_free(&fast);
        dl_ivec_free(&ref);
        dl_ivec_free(&via);
    }
    CHECK_MSG(ref_ok == n_strings, "%d of %d strings match the straightforward encoder", ref_ok, n_strings);
    CHECK_MSG(back_ok == n_strings, "%d of %d strings match through tokenizer.json", back_ok, n_strings);
    CHECK_MSG(rt_ok == rt_n && rt_n > n_strings / 2, "%d of %d round trips", rt_ok, rt_n);
}

static dl_tokenizer *through_json(const dl_tokenizer *t, const char *dir, const char *name) {
    char path[600];
    dl_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_MSG(dl_tok_save(t, path, &err) == 0, "%s", err.msg);
    dl_tokenizer *back = dl_tok_load(path, &err);
    if (!back) { fprintf(stderr, "reload: %s\n", err.msg); exit(2); }
    return back;
}

/* The reloaded tokenizer has the same tokens, merges and score order. */
static void test_same_tokenizer(const dl_tokenizer *t, const dl_tokenizer *back) {
    CHECK(dl_tok_vocab_size(back) == dl_tok_vocab_size(t));
    CHECK(dl_tok_n_merges(back) == dl_tok_n_merges(t) && dl_tok_n_merges(t) > 0);
    int same = 1, order = 1;
    for (int r = 0; r < dl_tok_n_merges(t); r++) {
        int a, b, a2, b2, c = dl_tok_merge(t, r, &a, &b), c2 = dl_tok_merge(back, r, &a2, &b2);
        same &= c == c2 && a == a2 && b == b2;
        if (r > 0) {
            int p = dl_tok_merge(t, r - 1, NULL, NULL);
            order &= (dl_tok_score(t, p) > dl_tok_score(t, c)) == (dl_tok_score(back, p) > dl_tok_score(back, c));
        }
    }
    CHECK(same);
    CHECK(order);
    dl_spm_opts o1, o2;
    CHECK(dl_tok_is_spm(back, &o2) && dl_tok_is_spm(t, &o1));
    CHECK(memcmp(&o1, &o2, sizeof o1) == 0);
    for (int id = 0; id < dl_tok_vocab_size(t); id++) {
        size_t l1, l2;
        const char *s1 = dl_tok_token(t, id, &l1), *s2 = dl_tok_token(back, id, &l2);
        same &= l1 == l2 && memcmp(s1, s2, l1) == 0 && dl_tok_type(t, id) == dl_tok_type(back, id);
    }
    CHECK(same);
}

/* ---- hand-made vocabularies ------------------------------------------------------------------ */
static dl_tokenizer *vocab_or_die(const spm_piece *p, int n, int add_prefix) {
    dl_error err;
    dl_tokenizer *t = make_vocab(p, n, add_prefix, &err);
    if (!t) { fprintf(stderr, "make_vocab: %s\n", err.msg); exit(2); }
    return t;
}

static void test_ties_and_scores(void) {
    /* ids 259.. : a b c bc ab, SP; "ab" and "bc" tie, so "abc" merges the leftmost pair (though
     * "bc" has the smaller id and ranks first in the merge list) */
    spm_piece tie[] = {{"a", -10, 0}, {"b", -11, 0}, {"c", -12, 0}, {"bc", -1, 0}, {"ab", -1, 0}, {SP, -13, 0}};
    dl_tokenizer *t = vocab_or_die(tie, 6, 0);
    CHECK_IDS(t, "abc", 0, 263, 261);
    CHECK_IDS(t, "cabc", 0, 261, 263, 261); /* c+a is no token: ab, then c stays */
    CHECK_IDS(t, "bcab", 0, 262, 263);
    dl_tok_free(t);
    spm_piece hi[] = {{"a", -10, 0}, {"b", -11, 0}, {"c", -12, 0}, {"ab", -2, 0}, {"bc", -1, 0}, {SP, -13, 0}};
    t = vocab_or_die(hi, 6, 0);
    CHECK_IDS(t, "abc", 0, 259, 263); /* bc scores higher */
    CHECK_IDS(t, "abcabc", 0, 259, 263, 259, 263);
    CHECK_IDS(t, "ab", 0, 262);
    dl_tok_free(t);
}

static void test_specials_and_bytes(void) {
    spm_piece p[] = {{SP, -1, 0},          {"h", -2, 0},  {"i", -3, 0},          {SP "h", -4, 0},
                     {SP "hi", -5, 0},     {"<", -6, 0},  {"s", -7, 0},          {">", -8, 0},
                     {"<|user|>", 0, DL_TOK_USER_DEFINED}, {"/", -9, 0}};
    dl_tokenizer *t = vocab_or_die(p, 10, 1);
    CHECK_IDS(t, "hi", 0, 263);
    CHECK_IDS(t, "hi hi", 0, 263, 263);
    CHECK_IDS(t, " hi", 0, 259, 263);
    dl_ivec none = encode_str(t, "", 1);
    CHECK(none.len == 0); /* nothing, not even the dummy prefix */
    dl_ivec_free(&none);
    CHECK_IDS(t, "</s>", 0, 259, 264, 268, 265, 266); /* never the control token from text */
    CHECK_IDS(t, "</s>", 1, 2);
    CHECK_IDS(t, "hi</s>hi", 1, 263, 2, 263); /* each run of text gets the dummy prefix */
    CHECK_IDS(t, "<|user|>hi", 0, 267, 263); /* user-defined tokens are matched without allow_special */
    /* "\xe2\x82\xac" (euro) is no token: its three bytes; "h" merges with the prefix */
    CHECK_IDS(t, "\xe2\x82\xac" "h", 0, 259, 3 + 0xE2, 3 + 0x82, 3 + 0xAC, 260);
    CHECK_IDS(t, "\xff", 0, 259, 3 + 0xFF); /* invalid UTF-8: a byte of its own */
    CHECK(ROUNDTRIPS_LIT(t, "x\xff\xc3(\xe2\x82\xac) hi  \n\t\xf0\x9f\x98\x80", 0));
    CHECK(dl_tok_eot_id(t) == 2);
    CHECK(dl_tok_id(t, "</s>") == 2 && dl_tok_id(t, SP "hi") == 263 && dl_tok_id(t, "<0x41>") == 3 + 0x41);
    /* by the text a token decodes to: a normal token before a byte token */
    CHECK(dl_tok_id(t, " hi") == 263 && dl_tok_id(t, " ") == 259 && dl_tok_id(t, "\n") == 3 + '\n' && dl_tok_id(t, "h") == 260);
    CHECK(dl_tok_id(t, "hi") == -1 && dl_tok_id(t, "") == -1);
    CHECK(dl_tok_is_special(t, 1) && dl_tok_is_special(t, 0) && !dl_tok_is_special(t, 267) && !dl_tok_is_special(t, 263));
    CHECK(dl_tok_type(t, 0) == DL_TOK_UNKNOWN && dl_tok_type(t, 2) == DL_TOK_CONTROL && dl_tok_type(t, 10) == DL_TOK_BYTE &&
          dl_tok_type(t, 263) == DL_TOK_NORMAL && dl_tok_type(t, 267) == DL_TOK_USER_DEFINED && dl_tok_type(t, 999) == 0);
    CHECK(dl_tok_score(t, 263) == -5.0f);
    size_t n;
    const char *s = dl_tok_token(t, 263, &n);
    CHECK(n == 3 && memcmp(s, " hi", 3) == 0);
    s = dl_tok_token(t, 3 + '\n', &n);
    CHECK(n == 1 && s[0] == '\n');
    s = dl_tok_token(t, 2, &n);
    CHECK(n == 4 && memcmp(s, "</s>", 4) == 0);
    dl_buf b = {0};
    dl_error err;
    CHECK(dl_tok_spelling(t, 263, &b, &err) == 0 && strcmp(b.data, SP "hi") == 0);
    /* decode drops one leading space, that of the dummy prefix */
    int32_t ids[] = {259, 263, 263};
    b.len = 0;
    CHECK(dl_tok_decode(t, ids, 3, &b, &err) == 0 && b.len == 6 && memcmp(b.data, " hi hi", 6) == 0);
    int32_t bad[] = {263, 320};
    CHECK(dl_tok_decode(t, bad, 2, &b, &err) == -1 && strstr(err.msg, "token id 320 at position 1"));
    dl_buf_free(&b);
    dl_tok_free(t);
    /* no dummy prefix: nothing is prepended and nothing stripped */
    t = vocab_or_die(p, 10, 0);
    CHECK_IDS(t, "hi", 0, 260, 261);
    CHECK_IDS(t, " hi", 0, 263);
    CHECK(ROUNDTRIPS_LIT(t, " hi", 0));
    dl_tok_free(t);
}

static void expect_bad(const spm_piece *p, int n, const char *want, int line) {
    dl_error err = {{0}};
    dl_tokenizer *t = make_vocab(p, n, 1, &err);
    CHECK_MSG(!t && strstr(err.msg, want), "line %d: want '%s', got '%s'", line, want, t ? "success" : err.msg);
    dl_tok_free(t);
}
#define EXPECT_BAD(want, ...)                                                                      \
    do {                                                                                           \
        spm_piece _p[] = {__VA_ARGS__};                                                            \
        expect_bad(_p, (int)(sizeof _p / sizeof _p[0]), want, __LINE__);                           \
    } while (0)

static void test_bad_vocab(void) {
    EXPECT_BAD("tokens 259 and 260 are both spelt 'a'", {"a", 0, 0}, {"a", 0, 0});
    EXPECT_BAD("tokens 3 and 259 are both spelt '<0x00>'", {"<0x00>", 0, 0});
    EXPECT_BAD("token 259 has score nan", {"a", NAN, 0});
    EXPECT_BAD("token 259 has score inf", {"a", INFINITY, 0});
    EXPECT_BAD("token 259 is not valid UTF-8", {"\xff", 0, 0});
    EXPECT_BAD("token 259: length 0 is out of range", {"", 0, 0});
    EXPECT_BAD("token 259 has unknown type 7", {"a", 0, 7});
    EXPECT_BAD("token 259 has type BYTE but is spelt 'a'", {"a", 0, DL_TOK_BYTE});
    dl_error err;
    const char *p[2] = {"a", "b"};
    size_t len[2] = {1, 1};
    float score[2] = {0, 0};
    dl_spm_opts o = {-1, -1, -1, 1, 0};
    CHECK(!dl_tok_spm_new(2, p, len, score, NULL, &o, &err) && strstr(err.msg, "no byte token <0x00>"));
    o.eos_id = 2;
    CHECK(!dl_tok_spm_new(2, p, len, score, NULL, &o, &err) && strstr(err.msg, "eos token id 2 is outside"));
    o.eos_id = -1;
    CHECK(!dl_tok_spm_new(0, p, len, score, NULL, &o, &err) && strstr(err.msg, "vocabulary of 0 tokens"));
    CHECK(!dl_tok_spm_new(2, p, len, NULL, NULL, &o, &err) && strstr(err.msg, "needs scores"));
}

int main(void) {
    const char *dir = test_tmpdir("spm");
    dl_tokenizer *t320 = fixture_tokenizer(320), *t1024 = fixture_tokenizer(1024);
    test_python_cases(t320, t1024);
    dl_tokenizer *b320 = through_json(t320, dir, "t320.json"), *b1024 = through_json(t1024, dir, "t1024.json");
    test_same_tokenizer(t320, b320);
    test_same_tokenizer(t1024, b1024);
    test_corpus(t1024, b1024, 1200, 1);
    test_corpus(t320, b320, 300, 2);
    test_ties_and_scores();
    test_specials_and_bytes();
    test_bad_vocab();
    dl_tok_free(t320);
    dl_tok_free(t1024);
    dl_tok_free(b320);
    dl_tok_free(b1024);
    TEST_MAIN_END();
}
