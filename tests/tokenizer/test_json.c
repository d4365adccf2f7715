/* tokenizer.json: a hand-written file in both merge forms, the Split pre-tokenizer form,
 * ignore_merges, save -> load -> identical encodings and bytes, and malformed files (each must
 * fail with a message, never crash). */
#include "tok_util.h"
#include <jansson.h>

static const char *g_dir;
static int g_file_no;

/* GPT-2 bytes_to_unicode, written out again here so the test does not trust the library's. */
static void spell_byte(int b, char out[3]) {
    int self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255), cp = b;
    if (!self) {
        int k = 0;
        for (int x = 0; x < b; x++) k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255));
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* Bytes, then he (256) ll (257) hell (258) Ġw (259), [hello (260) when with_hello], then
 * <|endoftext|> as an added special that is also in the vocab, as GPT-2's file has it. */
static json_t *base_doc(int pair_form, int with_hello) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char s[3];
        spell_byte(b, s);
        json_object_set_new(vocab, s, json_integer(b));
    }
    json_object_set_new(vocab, "he", json_integer(256));
    json_object_set_new(vocab, "ll", json_integer(257));
    json_object_set_new(vocab, "hell", json_integer(258));
    json_object_set_new(vocab, "\xc4\xa0w", json_integer(259)); /* Ġw */
    int eot = 260;
    if (with_hello) json_object_set_new(vocab, "hello", json_integer(eot++));
    json_object_set_new(vocab, DL_EOT, json_integer(eot));
    static const char *const m[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"\xc4\xa0", "w"}};
    json_t *merges = json_array();
    for (int i = 0; i < 4; i++) {
        if (pair_form) json_array_append_new(merges, json_pack("[s, s]", m[i][0], m[i][1]));
        else {
            char s[32];
            snprintf(s, sizeof s, "%s %s", m[i][0], m[i][1]);
            json_array_append_new(merges, json_string(s));
        }
    }
    return json_pack("{s:s, s:n, s:n, s:[{s:i, s:s, s:b, s:b, s:b, s:b, s:b}], s:n, s:{s:s, s:b, s:b, s:b}, s:n, "
                     "s:{s:s, s:b, s:b, s:b}, s:{s:s, s:n, s:n, s:b, s:b, s:b, s:o, s:o}}",
                     "version", "1.0", "truncation", "padding", "added_tokens", "id", eot, "content", DL_EOT,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1, "normalizer",
                     "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 1,
                     "post_processor", "decoder", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                     "use_regex", 1, "model", "type", "BPE", "dropout", "unk_token", "fuse_unk", 0, "byte_fallback", 0,
                     "ignore_merges", 0, "vocab", vocab, "merges", merges);
}

static const char *write_doc(const json_t *doc) {
    static char path[700];
    snprintf(path, sizeof path, "%s/t%d.json", g_dir, g_file_no++);
    json_dump_file(doc, path, JSON_INDENT(1));
    return path;
}

static const char *write_text(const char *text, size_t n) {
    static char path[700];
    snprintf(path, sizeof path, "%s/t%d.json", g_dir, g_file_no++);
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
    return path;
}

static dl_tokenizer *load_doc(json_t *doc) {
    dl_error err;
    dl_tokenizer *t = dl_tok_load(write_doc(doc), &err);
    if (!t) fprintf(stderr, "load failed: %s\n", err.msg);
    json_decref(doc);
    return t;
}

static json_t *model_of(json_t *doc) { return json_object_get(doc, "model"); }
static json_t *vocab_of(json_t *doc) { return json_object_get(model_of(doc), "vocab"); }
static json_t *merges_of(json_t *doc) { return json_object_get(model_of(doc), "merges"); }

/* Loading doc must fail with a message that contains needle. */
static void expect_fail_path(const char *path, const char *needle, int line) {
    dl_error err;
    err.msg[0] = 0;
    dl_tokenizer *t = dl_tok_load(path, &err);
    int ok = t == NULL && err.msg[0] && strstr(err.msg, needle) && strstr(err.msg, path);
    if (!ok) fprintf(stderr, "test_json.c:%d: expected failure mentioning '%s', got %s: '%s'\n", line, needle,
                     t ? "success" : "failure", err.msg);
    CHECK(ok);
    dl_tok_free(t);
}
#define EXPECT_FAIL(doc, needle)                                                                   \
    do {                                                                                           \
        json_t *_d = (doc);                                                                        \
        expect_fail_path(write_doc(_d), (needle), __LINE__);                                       \
        json_decref(_d);                                                                           \
    } while (0)

static void test_hand_written(void) {
    /* "hello": h e l l o -> he (rank 0) -> ll (1) -> hell (2) -> [hell, o];
     * " world": Ġ w o r l d -> Ġw (3) -> [Ġw, o, r, l, d] */
    for (int pair_form = 0; pair_form < 2; pair_form++) {
        dl_tokenizer *t = load_doc(base_doc(pair_form, 0));
        CHECK(t != NULL);
        if (!t) continue;
        CHECK(dl_tok_vocab_size(t) == 261);
        CHECK(dl_tok_eot_id(t) == 260);
        CHECK(dl_tok_is_special(t, 260));
        CHECK(dl_tok_id(t, "hell") == 258 && dl_tok_id(t, " w") == 259);
        CHECK_IDS(t, "hello world", 0, 258, 'o', 259, 'o', 'r', 'l', 'd');
        CHECK_IDS(t, "hello<|endoftext|>", 1, 258, 'o', 260);
        CHECK(ROUNDTRIPS_LIT(t, "hello world \xff\xfe<|endoftext|>", 1));
        dl_tok_free(t);
    }
}

static void test_ignore_merges(void) {
    json_t *doc = base_doc(0, 1);
    json_object_set_new(model_of(doc), "ignore_merges", json_true());
    dl_tokenizer *t = load_doc(doc);
    CHECK(t != NULL);
    if (t) {
        CHECK_IDS(t, "hello", 0, 260);            /* in the vocab: taken whole */
        CHECK_IDS(t, "hell", 0, 258);
        CHECK_IDS(t, "helloo", 0, 258, 'o', 'o'); /* not in the vocab: merges */
        dl_tok_free(t);
    }
    t = load_doc(base_doc(0, 1));
    CHECK(t != NULL);
    if (t) {
        CHECK_IDS(t, "hello", 0, 258, 'o'); /* ignore_merges false: merges only */
        dl_tok_free(t);
    }
}

static int file_equal(const char *a, const char *b) {
    char *da, *db;
    size_t la, lb;
    dl_error err;
    if (dl_read_file(a, &da, &la, &err) || dl_read_file(b, &db, &lb, &err)) return 0;
    int eq = la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return eq;
}

/* save -> load gives the same encodings, and saving again the same bytes. */
static void check_save_load(const dl_tokenizer *t, const char *tag) {
    dl_error err;
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/%s-1.json", g_dir, tag);
    snprintf(p2, sizeof p2, "%s/%s-2.json", g_dir, tag);
    CHECK_MSG(dl_tok_save(t, p1, &err) == 0, "%s", err.msg);
    dl_tokenizer *u = dl_tok_load(p1, &err);
    CHECK_MSG(u != NULL, "%s: %s", tag, err.msg);
    if (!u) return;
    CHECK(dl_tok_vocab_size(u) == dl_tok_vocab_size(t) && dl_tok_n_merges(u) == dl_tok_n_merges(t));
    CHECK(dl_tok_eot_id(u) == dl_tok_eot_id(t));
    dl_rng r;
    dl_rng_seed(&r, 99);
    static const char *const words[] = {"hello", " world", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "12345", "<|endoftext|>",
                                        "\xff", "\n\n", "IT'S", "  ", "aaab", "<|pad|>"};
    int same = 1;
    for (int it = 0; it < 300; it++) {
        dl_buf s = {0};
        int nw = (int)dl_rng_below(&r, 12);
        for (int k = 0; k < nw; k++) {
            const char *w = words[dl_rng_below(&r, 12)];
            dl_buf_append(&s, w, strlen(w));
        }
        dl_buf_append(&s, "", 0);
        for (int allow = 0; allow < 2; allow++) {
            dl_ivec a = {0}, b = {0};
            dl_tok_encode(t, s.data, s.len, allow, &a, &err);
            dl_tok_encode(u, s.data, s.len, allow, &b, &err);
            same &= a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len * 4) == 0);
            dl_ivec_free(&a);
            dl_ivec_free(&b);
        }
        dl_buf_free(&s);
    }
    CHECK_MSG(same, "%s: encodings differ after save -> load", tag);
    CHECK(dl_tok_save(u, p2, &err) == 0);
    CHECK_MSG(file_equal(p1, p2), "%s: saving the loaded tokenizer gives other bytes", tag);
    dl_tok_free(u);
}

static void test_save_load(void) {
    const char *text = "hello world, hello there. aaab aaab IT'S 12345 \xe6\x97\xa5\xe6\x97\xa5 \xf0\x9f\x98\x80!";
    const char *specials[] = {DL_EOT, "<|pad|>", NULL};
    dl_error err;
    dl_tokenizer *t = dl_tok_train(text, strlen(text), 300, specials, &err);
    CHECK(t != NULL);
    if (t) {
        check_save_load(t, "trained");
        /* the written file is what HF tokenizers expects in the places that matter */
        char p[700];
        snprintf(p, sizeof p, "%s/trained-1.json", g_dir);
        json_t *doc = dl_json_load(p, &err);
        CHECK(doc && json_is_object(doc));
        if (doc) {
            json_t *model = model_of(doc);
            CHECK(!strcmp(json_string_value(json_object_get(doc, "version")), "1.0"));
            CHECK(!strcmp(json_string_value(json_object_get(model, "type")), "BPE"));
            CHECK(json_is_false(json_object_get(model, "ignore_merges")));
            CHECK(json_is_false(json_object_get(model, "byte_fallback")));
            CHECK(json_is_null(json_object_get(model, "dropout")));
            CHECK(json_integer_value(json_object_get(vocab_of(doc), "\xc4\xa0")) == ' '); /* Ġ is the space byte */
            CHECK(json_integer_value(json_object_get(vocab_of(doc), DL_EOT)) == dl_tok_eot_id(t));
            json_t *a0 = json_array_get(json_object_get(doc, "added_tokens"), 0);
            CHECK(json_is_true(json_object_get(a0, "special")) &&
                  !strcmp(json_string_value(json_object_get(a0, "content")), DL_EOT));
            CHECK(!strcmp(json_string_value(json_object_get(json_object_get(doc, "pre_tokenizer"), "type")), "ByteLevel"));
            CHECK(!strcmp(json_string_value(json_object_get(json_object_get(doc, "decoder"), "type")), "ByteLevel"));
            CHECK(json_is_string(json_array_get(merges_of(doc), 0))); /* legacy "a b": readable by every version */
            json_decref(doc);
        }
        dl_tok_free(t);
    }
    t = load_doc(base_doc(1, 0));
    if (t) {
        check_save_load(t, "handwritten");
        dl_tok_free(t);
    }
}

/* Newer models: Sequence [Split(Regex, Isolated), ByteLevel(use_regex false)]; here Llama 3's
 * pattern, whose \p{N}{1,3} cuts digits in threes and whose contractions ignore case. */
static void test_split_form(void) {
    const char *pat = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json_t *doc = base_doc(1, 0);
    json_object_set_new(doc, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                                  "pretokenizers", "type", "Split", "pattern", "Regex", pat, "behavior", "Isolated",
                                  "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                                  "use_regex", 0));
    dl_tokenizer *t = load_doc(doc);
    CHECK(t != NULL);
    if (!t) return;
    dl_error err;
    dl_ivec ends = {0};
    const char *s = "12345 IT'S"; /* "123" "45" " IT" "'S" */
    CHECK(dl_tok_pretokenize(t, s, strlen(s), &ends, &err) == 0);
    CHECK(ends.len == 4 && ends.data[0] == 3 && ends.data[1] == 5 && ends.data[2] == 8 && ends.data[3] == 10);
    dl_ivec_free(&ends);
    CHECK(ROUNDTRIPS_LIT(t, "12345 IT'S \xff\x80 <|endoftext|>", 1));
    check_save_load(t, "split");
    char p[700];
    snprintf(p, sizeof p, "%s/split-1.json", g_dir);
    json_t *saved = dl_json_load(p, &err);
    json_t *pt = json_object_get(saved, "pre_tokenizer");
    CHECK(!strcmp(json_string_value(json_object_get(pt, "type")), "Sequence"));
    json_t *split = json_array_get(json_object_get(pt, "pretokenizers"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex")), pat));
    json_decref(saved);
    dl_tok_free(t);

    /* use_regex false alone: no splitting at all */
    doc = base_doc(0, 0);
    json_object_set_new(json_object_get(doc, "pre_tokenizer"), "use_regex", json_false());
    t = load_doc(doc);
    CHECK(t != NULL);
    if (t) {
        CHECK(dl_tok_pretokenize(t, "hello world 123", 15, &ends, &err) == 0 && ends.len == 1);
        dl_ivec_free(&ends);
        dl_tok_free(t);
    }
}

/* Unused ids between tokens (cl100k has them between its specials) are holes: they load,
 * never come out of encode, fail to decode, and stay holes through save -> load. */
static void test_id_gaps(void) {
    json_t *d = base_doc(0, 0);
    json_object_set_new(vocab_of(d), "zz", json_integer(262)); /* 261 unused */
    json_array_append_new(json_object_get(d, "added_tokens"),
                          json_pack("{s:i, s:s, s:b}", "id", 300, "content", "<x>", "special", 1)); /* 263..299 */
    dl_tokenizer *t = load_doc(d);
    CHECK(t != NULL);
    if (!t) return;
    dl_error err;
    CHECK(dl_tok_vocab_size(t) == 301);
    CHECK(dl_tok_token(t, 261, NULL) == NULL && dl_tok_token(t, 280, NULL) == NULL);
    size_t n;
    const char *zz = dl_tok_token(t, 262, &n);
    CHECK(zz && n == 2 && memcmp(zz, "zz", 2) == 0);
    CHECK(dl_tok_id(t, "<x>") == 300 && dl_tok_is_special(t, 300));
    dl_buf out = {0};
    int32_t hole = 261, ok[2] = {262, 300};
    CHECK(dl_tok_decode(t, &hole, 1, &out, &err) == -1 && strstr(err.msg, "261"));
    out.len = 0;
    CHECK(dl_tok_decode(t, ok, 2, &out, &err) == 0 && out.len == 5 && memcmp(out.data, "zz<x>", 5) == 0);
    dl_ivec ids = {0};
    CHECK(dl_tok_encode(t, "hello <x>", 9, 1, &ids, &err) == 0 && ids.len == 4 && ids.data[3] == 300);
    for (size_t i = 0; i < ids.len; i++) CHECK(ids.data[i] != 261);
    char path[700];
    snprintf(path, sizeof path, "%s/gaps.json", g_dir);
    CHECK(dl_tok_save(t, path, &err) == 0);
    dl_tokenizer *t2 = dl_tok_load(path, &err);
    CHECK(t2 && dl_tok_vocab_size(t2) == 301 && dl_tok_token(t2, 261, NULL) == NULL && dl_tok_id(t2, "<x>") == 300);
    dl_tok_free(t2);
    dl_ivec_free(&ids);
    dl_buf_free(&out);
    dl_tok_free(t);
}

static void test_malformed(void) {
    /* not JSON, or not the right JSON */
    json_t *good = base_doc(0, 0);
    char *text = json_dumps(good, JSON_INDENT(1));
    size_t n = strlen(text);
    json_decref(good);
    expect_fail_path(write_text(text, n / 2), "invalid JSON", __LINE__);
    expect_fail_path(write_text(text, 1), "invalid JSON", __LINE__);
    expect_fail_path(write_text("", 0), "invalid JSON", __LINE__);
    free(text);
    char deep[20001];
    memset(deep, '[', 20000);
    expect_fail_path(write_text(deep, 20000), "invalid JSON", __LINE__);
    expect_fail_path(write_text("[1, 2]", 6), "top level", __LINE__);
    {
        dl_error err;
        char p[700];
        snprintf(p, sizeof p, "%s/does-not-exist.json", g_dir);
        CHECK(dl_tok_load(p, &err) == NULL && strstr(err.msg, "does-not-exist.json"));
    }

    json_t *d;
    /* top level */
    d = base_doc(0, 0); json_object_del(d, "model"); EXPECT_FAIL(d, "model: missing");
    d = base_doc(0, 0); json_object_set_new(d, "model", json_string("BPE")); EXPECT_FAIL(d, "model: expected an object");
    d = base_doc(0, 0); json_object_set_new(d, "version", json_string("2.0")); EXPECT_FAIL(d, "version");
    d = base_doc(0, 0); json_object_set_new(d, "normalizer", json_pack("{s:s}", "type", "NFKC")); EXPECT_FAIL(d, "normalizer");
    d = base_doc(0, 0); json_object_del(d, "decoder"); EXPECT_FAIL(d, "decoder: missing");
    d = base_doc(0, 0); json_object_set_new(d, "decoder", json_pack("{s:s}", "type", "WordPiece")); EXPECT_FAIL(d, "decoder");
    d = base_doc(0, 0); json_object_set_new(d, "post_processor", json_pack("{s:s}", "type", "TemplateProcessing"));
    EXPECT_FAIL(d, "post_processor");
    /* pre-tokenizer */
    d = base_doc(0, 0); json_object_del(d, "pre_tokenizer"); EXPECT_FAIL(d, "pre_tokenizer: missing");
    d = base_doc(0, 0); json_object_set_new(d, "pre_tokenizer", json_pack("{s:s}", "type", "Whitespace"));
    EXPECT_FAIL(d, "pre_tokenizer");
    d = base_doc(0, 0); json_object_set_new(json_object_get(d, "pre_tokenizer"), "add_prefix_space", json_true());
    EXPECT_FAIL(d, "add_prefix_space");
    d = base_doc(0, 0); json_object_set_new(json_object_get(d, "pre_tokenizer"), "add_prefix_space", json_string("no"));
    EXPECT_FAIL(d, "add_prefix_space");
    d = base_doc(0, 0);
    json_object_set_new(d, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s, s:b, s:b}]}", "type", "Sequence", "pretokenizers",
                                  "type", "Split", "pattern", "Regex", "(unclosed", "behavior", "Isolated", "type",
                                  "ByteLevel", "add_prefix_space", 0, "use_regex", 0));
    EXPECT_FAIL(d, "regex");
    d = base_doc(0, 0);
    json_object_set_new(d, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s, s:b, s:b}]}", "type", "Sequence", "pretokenizers",
                                  "type", "Split", "pattern", "Regex", "\\s+", "behavior", "Removed", "type",
                                  "ByteLevel", "add_prefix_space", 0, "use_regex", 0));
    EXPECT_FAIL(d, "Removed");
    /* model fields */
    d = base_doc(0, 0); json_object_set_new(model_of(d), "type", json_string("WordPiece")); EXPECT_FAIL(d, "WordPiece");
    d = base_doc(0, 0); json_object_set_new(model_of(d), "type", json_integer(3)); EXPECT_FAIL(d, "model.type");
    d = base_doc(0, 0); json_object_set_new(model_of(d), "byte_fallback", json_true());
    EXPECT_FAIL(d, "normalizer: a byte-fallback BPE needs"); /* read as SentencePiece-style, which this is not */
    d = base_doc(0, 0); json_object_set_new(model_of(d), "dropout", json_real(0.1)); EXPECT_FAIL(d, "dropout");
    d = base_doc(0, 0); json_object_set_new(model_of(d), "end_of_word_suffix", json_string("</w>"));
    EXPECT_FAIL(d, "end_of_word_suffix");
    /* vocab */
    d = base_doc(0, 0); json_object_del(model_of(d), "vocab"); EXPECT_FAIL(d, "model.vocab: missing");
    d = base_doc(0, 0); json_object_set_new(model_of(d), "vocab", json_array()); EXPECT_FAIL(d, "model.vocab: expected an object");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "zz", json_string("5")); EXPECT_FAIL(d, "expected an integer");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "zz", json_real(261.0)); EXPECT_FAIL(d, "expected an integer");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "zz", json_integer(1000000000000LL)); EXPECT_FAIL(d, "out of range");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "zz", json_integer(-1)); EXPECT_FAIL(d, "out of range");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "zz", json_integer(5)); EXPECT_FAIL(d, "used by both");
    /* gaps are allowed (test_id_gaps) but bounded: ids stay below 2 * tokens + 1024 */
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "zz", json_integer(5000)); EXPECT_FAIL(d, "out of range");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "\xe2\x82\xac", json_integer(261)); /* € */
    EXPECT_FAIL(d, "byte-level alphabet");
    d = base_doc(0, 0); json_object_set_new(vocab_of(d), "", json_integer(261)); EXPECT_FAIL(d, "empty");
    d = base_doc(0, 0); /* the byte 'z' (id 122) becomes the token "zz": no token is left for 'z' */
    json_object_del(vocab_of(d), "z");
    json_object_set_new(vocab_of(d), "zz", json_integer('z'));
    EXPECT_FAIL(d, "byte 0x7a");
    /* merges */
    d = base_doc(0, 0); json_object_del(model_of(d), "merges"); EXPECT_FAIL(d, "model.merges: missing");
    d = base_doc(0, 0); json_object_set_new(model_of(d), "merges", json_object()); EXPECT_FAIL(d, "model.merges");
    d = base_doc(0, 0); json_array_append_new(merges_of(d), json_string("h qq")); EXPECT_FAIL(d, "unknown token 'qq'");
    d = base_doc(1, 0); json_array_append_new(merges_of(d), json_pack("[s, s]", "qq", "h")); EXPECT_FAIL(d, "unknown token 'qq'");
    d = base_doc(0, 0); json_array_append_new(merges_of(d), json_string("e h")); EXPECT_FAIL(d, "not in model.vocab");
    d = base_doc(0, 0); json_array_append_new(merges_of(d), json_string("h e l")); EXPECT_FAIL(d, "one space");
    d = base_doc(0, 0); json_array_append_new(merges_of(d), json_string("he")); EXPECT_FAIL(d, "one space");
    d = base_doc(0, 0); json_array_append_new(merges_of(d), json_integer(7)); EXPECT_FAIL(d, "model.merges[4]");
    d = base_doc(1, 0); json_array_append_new(merges_of(d), json_pack("[s, s, s]", "h", "e", "l")); EXPECT_FAIL(d, "model.merges[4]");
    d = base_doc(1, 0); json_array_append_new(merges_of(d), json_pack("[s, i]", "h", 3)); EXPECT_FAIL(d, "model.merges[4]");
    /* added tokens */
    d = base_doc(0, 0); json_object_set_new(d, "added_tokens", json_object()); EXPECT_FAIL(d, "added_tokens");
    d = base_doc(0, 0); json_array_append_new(json_object_get(d, "added_tokens"), json_string("<x>")); EXPECT_FAIL(d, "added_tokens[1]");
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:s, s:b}", "id", 5, "content", "<x>", "special", 1));
    EXPECT_FAIL(d, "used by both");
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:s, s:b}", "id", 260, "content", "<x>", "special", 1));
    EXPECT_FAIL(d, "twice");
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:I, s:s}", "id", (json_int_t)1 << 40, "content", "<x>"));
    EXPECT_FAIL(d, "out of range");
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:s}", "id", 5000, "content", "<x>"));
    EXPECT_FAIL(d, "out of range");
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:i}", "id", 261, "content", 3));
    EXPECT_FAIL(d, "content");
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:s, s:b}", "id", 261, "content", "<x>", "lstrip", 1));
    EXPECT_FAIL(d, "lstrip");
    d = base_doc(0, 0); /* the added token's id disagrees with the vocab's */
    json_object_set_new(json_array_get(json_object_get(d, "added_tokens"), 0), "id", json_integer(3));
    EXPECT_FAIL(d, "model.vocab gives it 260");

    /* a non-special added token that is not in the vocab gets the next id and always matches */
    d = base_doc(0, 0);
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:s, s:b}", "id", 261, "content", "<x>", "special", 0));
    dl_tokenizer *t = load_doc(d);
    CHECK(t != NULL);
    if (t) {
        CHECK(dl_tok_vocab_size(t) == 262);
        CHECK_IDS(t, "h<x>", 0, 'h', 261);
        CHECK(ROUNDTRIPS_LIT(t, "a<x>b<|endoftext|>", 0));
        dl_tok_free(t);
    }
}

int main(void) {
    g_dir = test_tmpdir("tokjson");
    test_hand_written();
    test_ignore_merges();
    test_save_load();
    test_split_form();
    test_id_gaps();
    test_malformed();
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
