/* SentencePiece-style tokenizer.json: a hand-written file in the form Hugging Face writes for
 * Llama 2 loads and encodes as its merges say; what dl_tok_save writes has that form and reads
 * back to the same file; malformed files are refused naming the field. */
#include "spm_util.h"
#include <jansson.h>

static char g_dir[512];
static int g_no;

static const char *write_doc(const json_t *doc) {
    static char path[700];
    snprintf(path, sizeof path, "%s/t%d.json", g_dir, g_no++);
    json_dump_file(doc, path, JSON_INDENT(1));
    return path;
}

static json_t *replace(const char *from, const char *to) {
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", from, "content", to);
}

/* <unk> <s> </s>, the byte tokens, then ▁ h i e l o ▁h ▁hi he ll hell hello ▁hello, and the
 * merges in the order the Llama 2 conversion would list them for these scores. */
static const char *const PIECES[] = {SP, "h", "i", "e", "l", "o", SP "h", SP "hi", "he", "ll", "hell", "hello", SP "hello"};
static const char *const MERGES[] = {SP " h", SP "h i", "h e", "l l", "he ll", "hell o", SP " hello"};
static json_t *llama_doc(void) {
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        json_object_set_new(vocab, specials[i], json_integer(i));
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", i, "content", specials[i],
                                               "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    }
    for (int b = 0; b < 256; b++) {
        char k[8];
        snprintf(k, sizeof k, "<0x%02X>", b);
        json_object_set_new(vocab, k, json_integer(3 + b));
    }
    for (int i = 0; i < 13; i++) json_object_set_new(vocab, PIECES[i], json_integer(259 + i));
    for (int i = 0; i < 7; i++) json_array_append_new(merges, json_string(MERGES[i]));
    json_t *model = json_pack("{s:s, s:n, s:s, s:n, s:n, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                              "<unk>", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1,
                              "byte_fallback", 1, "vocab", vocab, "merges", merges);
    json_t *post = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}]}", "type", "TemplateProcessing", "single",
                             "SpecialToken", "id", "<s>", "type_id", 0, "Sequence", "id", "A", "type_id", 0);
    json_t *norm = json_pack("{s:s, s:[{s:s, s:s}, o]}", "type", "Sequence", "normalizers", "type", "Prepend", "prepend",
                             SP, replace(" ", SP));
    json_t *dec = json_pack("{s:s, s:[o, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence", "decoders",
                            replace(SP, " "), "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ",
                            "start", 1, "stop", 0);
    return json_pack("{s:s, s:n, s:n, s:o, s:o, s:n, s:o, s:o, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added, "normalizer", norm, "pre_tokenizer", "post_processor", post, "decoder", dec,
                     "model", model);
}

static json_t *model_of(json_t *d) { return json_object_get(d, "model"); }

static void test_hand_written(void) {
    json_t *d = llama_doc();
    dl_error err;
    dl_tokenizer *t = dl_tok_load(write_doc(d), &err);
    json_decref(d);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    dl_spm_opts o;
    CHECK(dl_tok_is_spm(t, &o) && o.add_prefix && o.add_bos && o.unk_id == 0 && o.bos_id == 1 && o.eos_id == 2);
    CHECK(dl_tok_vocab_size(t) == 272 && dl_tok_n_merges(t) == 7 && dl_tok_eot_id(t) == 2);
    /* "hi hello": ▁ h i ▁ h e l l o -> ▁h (rank 0) twice -> ▁hi (1) -> he? no: ▁h took the h;
     * l l -> ll (3); ▁h e: no merge, so [▁hi, ▁h, e, ll, o] */
    CHECK_IDS(t, "hi hello", 0, 266, 265, 262, 268, 264);
    /* "hello": ▁ h e l l o -> ▁h (0) -> ll (3) -> [▁h e ll o]; "ello" needs the missing merge */
    CHECK_IDS(t, "hello", 0, 265, 262, 268, 264);
    CHECK_IDS(t, "ohi", 0, 259, 264, 260, 261); /* ▁o is no token */
    CHECK_IDS(t, "<s>hi", 1, 1, 266);
    CHECK(ROUNDTRIPS_LIT(t, "hi hello \xe2\x82\xac\n", 0));
    CHECK(dl_tok_score(t, 265) > dl_tok_score(t, 266) && dl_tok_score(t, 266) > dl_tok_score(t, 268));
    CHECK(dl_tok_score(t, 259) == 0.0f); /* made by no merge */
    dl_tok_free(t);
}

/* What dl_tok_save writes: the Llama 2 form; saving what was read gives the same file. */
static void test_written_form(void) {
    dl_tokenizer *t = fixture_tokenizer(320);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/w1.json", g_dir);
    snprintf(p2, sizeof p2, "%s/w2.json", g_dir);
    dl_error err;
    CHECK(dl_tok_save(t, p1, &err) == 0);
    json_t *d = dl_json_load(p1, &err);
    CHECK(d != NULL);
    if (!d) return;
    json_t *m = model_of(d), *norm = json_object_get(d, "normalizer"), *dec = json_object_get(d, "decoder");
    CHECK(json_is_true(json_object_get(m, "byte_fallback")) && json_is_true(json_object_get(m, "fuse_unk")));
    CHECK(strcmp(json_string_value(json_object_get(m, "type")), "BPE") == 0);
    CHECK(strcmp(json_string_value(json_object_get(m, "unk_token")), "<unk>") == 0);
    CHECK(json_object_size(json_object_get(m, "vocab")) == 320);
    CHECK(json_array_size(json_object_get(m, "merges")) == (size_t)dl_tok_n_merges(t));
    CHECK(json_is_null(json_object_get(d, "pre_tokenizer")));
    CHECK(strcmp(json_string_value(json_object_get(norm, "type")), "Sequence") == 0);
    json_t *n0 = json_array_get(json_object_get(norm, "normalizers"), 0);
    CHECK(strcmp(json_string_value(json_object_get(n0, "type")), "Prepend") == 0 &&
          strcmp(json_string_value(json_object_get(n0, "prepend")), SP) == 0);
    json_t *decs = json_object_get(dec, "decoders");
    CHECK(json_array_size(decs) == 4);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(decs, 1), "type")), "ByteFallback") == 0);
    CHECK(json_integer_value(json_object_get(json_array_get(decs, 3), "start")) == 1);
    json_t *post = json_object_get(d, "post_processor");
    CHECK(strcmp(json_string_value(json_object_get(post, "type")), "TemplateProcessing") == 0);
    json_t *added = json_object_get(d, "added_tokens");
    CHECK(json_array_size(added) == 3 && json_is_true(json_object_get(json_array_get(added, 2), "special")));
    /* the first merge makes the best-scoring token, as "a b" */
    int a, b, c = dl_tok_merge(t, 0, &a, &b);
    dl_buf want = {0};
    dl_tok_spelling(t, a, &want, &err);
    dl_buf_append(&want, " ", 1);
    dl_tok_spelling(t, b, &want, &err);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(m, "merges"), 0)), want.data) == 0);
    for (int r = 1; r < dl_tok_n_merges(t); r++) CHECK(dl_tok_score(t, dl_tok_merge(t, r, NULL, NULL)) <= dl_tok_score(t, c));
    dl_buf_free(&want);
    json_decref(d);
    dl_tokenizer *back = dl_tok_load(p1, &err);
    CHECK(back && dl_tok_save(back, p2, &err) == 0);
    char *x, *y;
    size_t nx, ny;
    CHECK(dl_read_file(p1, &x, &nx, &err) == 0 && dl_read_file(p2, &y, &ny, &err) == 0 && nx == ny &&
          memcmp(x, y, nx) == 0);
    free(x);
    free(y);
    dl_tok_free(back);
    dl_tok_free(t);
}

/* ---- malformed files ----------------------------------------------------------------------- */
static void expect_fail(json_t *d, const char *want, int line) {
    const char *path = write_doc(d);
    json_decref(d);
    dl_error err = {{0}};
    dl_tokenizer *t = dl_tok_load(path, &err);
    CHECK_MSG(!t && strstr(err.msg, want) && strstr(err.msg, path), "line %d: want '%s', got '%s'", line, want,
              t ? "success" : err.msg);
    dl_tok_free(t);
}
#define EXPECT_FAIL(d, want) expect_fail((d), (want), __LINE__)

/* llama_doc() with root[key] (or model[key] when in_model) set to v (NULL removes it). */
static json_t *with(const char *key, json_t *v, int in_model) {
    json_t *d = llama_doc(), *o = in_model ? model_of(d) : d;
    if (v) json_object_set_new(o, key, v);
    else json_object_del(o, key);
    return d;
}

static json_t *with_vocab(const char *key, json_int_t id) {
    json_t *d = llama_doc();
    json_object_set_new(json_object_get(model_of(d), "vocab"), key, json_integer(id));
    return d;
}

static json_t *with_merge(json_t *m) {
    json_t *d = llama_doc();
    json_array_append_new(json_object_get(model_of(d), "merges"), m);
    return d;
}

static void test_malformed(void) {
    EXPECT_FAIL(with("normalizer", NULL, 0), "normalizer: a byte-fallback BPE needs");
    EXPECT_FAIL(with("normalizer", json_pack("{s:s}", "type", "NFKC"), 0), "normalizer");
    EXPECT_FAIL(with("pre_tokenizer", json_pack("{s:s}", "type", "Metaspace"), 0), "pre_tokenizer: must be null");
    EXPECT_FAIL(with("decoder", json_pack("{s:s}", "type", "ByteLevel"), 0), "decoder: a byte-fallback BPE needs");
    EXPECT_FAIL(with("post_processor", json_pack("{s:s}", "type", "BertProcessing"), 0), "post_processor: only null");
    EXPECT_FAIL(with("post_processor", json_pack("{s:s, s:[{s:{s:s}}]}", "type", "TemplateProcessing", "single",
                                                 "SpecialToken", "id", "<bos>"), 0),
                "post_processor: token '<bos>' is not in model.vocab");
    EXPECT_FAIL(with("version", json_string("2.0"), 0), "version");
    EXPECT_FAIL(with("ignore_merges", json_true(), 1), "model.ignore_merges");
    EXPECT_FAIL(with("dropout", json_real(0.5), 1), "model.dropout");
    EXPECT_FAIL(with("vocab", json_array(), 1), "model.vocab: expected an object");
    EXPECT_FAIL(with("merges", json_object(), 1), "model.merges: expected an array");
    EXPECT_FAIL(with("unk_token", json_string("<nope>"), 1), "model.unk_token '<nope>' is not in model.vocab");
    EXPECT_FAIL(with_vocab("extra", 300), "expected an id from 0 to 272");
    EXPECT_FAIL(with_vocab("extra", -1), "model.vocab['extra']");
    EXPECT_FAIL(with_vocab("extra", 5), "id 5 is used by both");
    json_t *d = llama_doc(), *v = json_object_get(model_of(d), "vocab");
    json_object_del(v, "<0x41>");
    json_object_set_new(v, "<0x41x>", json_integer(3 + 0x41));
    EXPECT_FAIL(d, "no byte token <0x41>");
    EXPECT_FAIL(with_merge(json_string("h i x")), "model.merges[7]");
    EXPECT_FAIL(with_merge(json_string("q i")), "model.merges[7]: unknown token 'q'");
    EXPECT_FAIL(with_merge(json_string("i h")), "model.merges[7]: 'i' + 'h' is not in model.vocab");
    EXPECT_FAIL(with_merge(json_integer(3)), "model.merges[7]: expected");
    /* a merge that makes a control token */
    d = llama_doc(), v = json_object_get(model_of(d), "vocab");
    json_object_set_new(v, "<", json_integer(272));
    json_object_set_new(v, "s>", json_integer(273));
    json_array_append_new(json_object_get(model_of(d), "merges"), json_string("< s>"));
    EXPECT_FAIL(d, "merge 7 makes '<s>', which is not a normal token");
    /* added tokens */
    d = llama_doc();
    json_object_set_new(json_array_get(json_object_get(d, "added_tokens"), 1), "lstrip", json_true());
    EXPECT_FAIL(d, "added_tokens[1]: single_word, lstrip and rstrip must be false");
    d = llama_doc();
    json_array_append_new(json_object_get(d, "added_tokens"), json_pack("{s:i, s:s}", "id", 300, "content", "<pad>"));
    EXPECT_FAIL(d, "added_tokens[3] ('<pad>', id 300) is not in model.vocab");
    d = llama_doc();
    json_object_set_new(json_array_get(json_object_get(d, "added_tokens"), 0), "special", json_string("yes"));
    EXPECT_FAIL(d, "added_tokens[0].special: expected a boolean");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("spm_json"));
    test_hand_written();
    test_written_form();
    test_malformed();
    TEST_MAIN_END();
}
