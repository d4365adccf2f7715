/* SentencePiece-style vocabularies through GGUF (tokenizer.ggml.model "llama"): export of a
 * llama2c-imported folder writes tokens, scores, token types and the special ids; importing it
 * gives the same folder back (also with padding rows and without token types); broken
 * vocabularies (arrays of other lengths or types, NaN scores, bad types, duplicates, ids out of
 * range) are refused with nothing written. */
#include "convert_util.h"

#define FIX DISTIL_SOURCE_DIR "/tests/fixtures/llama2c/"
#define SP "\xe2\x96\x81"

static char g_dir[512], g_folder[600], g_good[600];

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

static int same_in(const char *dir_a, const char *dir_b, const char *name) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/%s", dir_a, name);
    snprintf(b, sizeof b, "%s/%s", dir_b, name);
    return same_file(a, b);
}

static int64_t int_key(const dl_gguf_file *f, const char *key) {
    int64_t v = -99;
    dl_error err;
    dl_gguf_get_int(f, key, &v, &err);
    return v;
}

static int bool_key(const dl_gguf_file *f, const char *key) {
    int v = -1;
    dl_error err;
    dl_gguf_get_bool(f, key, &v, &err);
    return v;
}

static void test_export_keys(void) {
    dl_gguf_file f;
    dl_error err;
    CHECK(dl_gguf_open(&f, g_good, &err) == 0);
    const char *s;
    size_t n;
    CHECK(dl_gguf_get_str(&f, "tokenizer.ggml.model", &s, &n, &err) == 0 && n == 5 && memcmp(s, "llama", 5) == 0);
    CHECK(!dl_gguf_find(&f, "tokenizer.ggml.merges"));
    const dl_gguf_kv *tokens, *scores, *types;
    CHECK(dl_gguf_get_arr(&f, "tokenizer.ggml.tokens", DL_GGUF_STRING, &tokens, &err) == 0 && tokens->n == 320);
    CHECK(dl_gguf_get_arr(&f, "tokenizer.ggml.scores", DL_GGUF_F32, &scores, &err) == 0 && scores->n == 320);
    CHECK(dl_gguf_get_arr(&f, "tokenizer.ggml.token_type", DL_GGUF_I64, &types, &err) == 0 && types->n == 320);
    dl_gguf_arr_str(tokens, 1, &s, &n);
    CHECK(n == 3 && memcmp(s, "<s>", 3) == 0);
    dl_gguf_arr_str(tokens, 3 + 0x0A, &s, &n);
    CHECK(n == 6 && memcmp(s, "<0x0A>", 6) == 0);
    int64_t ty[4];
    dl_gguf_arr_int(types, 0, &ty[0]), dl_gguf_arr_int(types, 2, &ty[1]), dl_gguf_arr_int(types, 100, &ty[2]),
        dl_gguf_arr_int(types, 300, &ty[3]);
    CHECK(ty[0] == 2 && ty[1] == 3 && ty[2] == 6 && ty[3] == 1);
    /* the scores rank the merges as the tokenizer does */
    char tp[700];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", g_folder);
    dl_tokenizer *tok = dl_tok_load(tp, &err);
    int ordered = tok != NULL;
    for (int r = 1; tok && r < dl_tok_n_merges(tok); r++) {
        float a, b;
        memcpy(&a, scores->data + 4 * (size_t)dl_tok_merge(tok, r - 1, NULL, NULL), 4);
        memcpy(&b, scores->data + 4 * (size_t)dl_tok_merge(tok, r, NULL, NULL), 4);
        ordered &= a >= b;
    }
    CHECK(ordered);
    dl_tok_free(tok);
    CHECK(int_key(&f, "tokenizer.ggml.bos_token_id") == 1 && int_key(&f, "tokenizer.ggml.eos_token_id") == 2 &&
          int_key(&f, "tokenizer.ggml.unknown_token_id") == 0);
    CHECK(bool_key(&f, "tokenizer.ggml.add_bos_token") == 1 && bool_key(&f, "tokenizer.ggml.add_space_prefix") == 1);
    dl_gguf_close(&f);
}

static void test_roundtrip(void) {
    char out[700];
    snprintf(out, sizeof out, "%s/back", g_dir);
    dl_error err;
    CHECK_MSG(dl_import_gguf(g_good, out, &err) == 0, "%s", err.msg);
    CHECK(same_in(g_folder, out, "tokenizer.json"));
    CHECK(same_in(g_folder, out, "model.safetensors"));
    CHECK(same_in(g_folder, out, "config.json"));
}

/* A model with more rows than the tokenizer has tokens: export pads, import drops the pads. */
static void test_padded(void) {
    char dir[700], file[700], out[700], tp[800];
    snprintf(dir, sizeof dir, "%s/padded", g_dir);
    snprintf(file, sizeof file, "%s/padded.gguf", g_dir);
    snprintf(out, sizeof out, "%s/padded-back", g_dir);
    snprintf(tp, sizeof tp, "%s/tokenizer.json", g_folder);
    dl_error err;
    dl_tokenizer *tok = dl_tok_load(tp, &err);
    dl_config cfg = small_config(330, 16, 32, 1);
    cfg.bos_id = 1, cfg.eos_id = 2;
    dl_model m;
    random_model(&m, &cfg, 3);
    save_folder(&m, tok, dir);
    CHECK_MSG(dl_export_gguf(dir, file, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == 0, "%s", err.msg);
    dl_gguf_file f;
    const dl_gguf_kv *tokens;
    const char *s;
    size_t n;
    CHECK(dl_gguf_open(&f, file, &err) == 0 && dl_gguf_get_arr(&f, "tokenizer.ggml.tokens", DL_GGUF_STRING, &tokens, &err) == 0);
    CHECK(tokens->n == 330);
    dl_gguf_arr_str(tokens, 325, &s, &n);
    CHECK(n == 8 && memcmp(s, "[PAD325]", 8) == 0);
    dl_gguf_close(&f);
    CHECK_MSG(dl_import_gguf(file, out, &err) == 0, "%s", err.msg);
    CHECK(same_in(dir, out, "tokenizer.json"));
    dl_model_free(&m);
    dl_tok_free(tok);
}

/* ---- broken vocabularies ---------------------------------------------------------------------- */
typedef struct {
    int drop_scores, drop_types, scores_short, types_short, extra_token;
    int scores_as_i32, tokens_as_i32;
    int nan_at, type_at, type_val, dup_at; /* token ids to edit, 0 for none (token 0 is never edited) */
    const char *u32_key; /* set this key (a token id) ... */
    uint32_t u32_val;    /* ... to this */
    const char *str_key; /* set this key to a string */
} spm_edit;

static int is_vocab_array(const char *k) {
    return strcmp(k, "tokenizer.ggml.tokens") == 0 || strcmp(k, "tokenizer.ggml.scores") == 0 ||
           strcmp(k, "tokenizer.ggml.token_type") == 0;
}

static int write_arrays(dl_gguf_writer *w, const dl_gguf_file *f, const spm_edit *e, dl_error *err) {
    const dl_gguf_kv *tokens = dl_gguf_find(f, "tokenizer.ggml.tokens"), *scores = dl_gguf_find(f, "tokenizer.ggml.scores"),
                     *types = dl_gguf_find(f, "tokenizer.ggml.token_type");
    uint64_t n = tokens->n + (uint64_t)e->extra_token;
    const char *s;
    size_t len;
    int rc = dl_gguf_begin_arr(w, "tokenizer.ggml.tokens", e->tokens_as_i32 ? DL_GGUF_I32 : DL_GGUF_STRING, n, err);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        dl_gguf_arr_str(tokens, i < tokens->n ? i : 300, &s, &len);
        if (i > 0 && (int)i == e->dup_at) dl_gguf_arr_str(tokens, 300, &s, &len);
        rc = e->tokens_as_i32 ? dl_gguf_push_i32(w, 1, err) : dl_gguf_push_str(w, s, len, err);
    }
    uint64_t ns = n - (uint64_t)e->scores_short;
    if (rc == 0 && !e->drop_scores)
        rc = dl_gguf_begin_arr(w, "tokenizer.ggml.scores", e->scores_as_i32 ? DL_GGUF_I32 : DL_GGUF_F32, ns, err);
    for (uint64_t i = 0; rc == 0 && !e->drop_scores && i < ns; i++) {
        float v = 0;
        if (i < scores->n) memcpy(&v, scores->data + 4 * i, 4);
        if (i > 0 && (int)i == e->nan_at) v = NAN;
        rc = e->scores_as_i32 ? dl_gguf_push_i32(w, (int32_t)v, err) : dl_gguf_push_f32(w, v, err);
    }
    uint64_t nt = n - (uint64_t)e->types_short;
    if (rc == 0 && !e->drop_types) rc = dl_gguf_begin_arr(w, "tokenizer.ggml.token_type", DL_GGUF_I32, nt, err);
    for (uint64_t i = 0; rc == 0 && !e->drop_types && i < nt; i++) {
        int64_t v = 1;
        if (i < types->n) dl_gguf_arr_int(types, i, &v);
        if (i > 0 && (int)i == e->type_at) v = e->type_val;
        rc = dl_gguf_push_i32(w, (int32_t)v, err);
    }
    return rc;
}

static void spm_copy(const char *dst, const spm_edit *e) {
    dl_error err;
    dl_gguf_file f;
    if (dl_gguf_open(&f, g_good, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    gguf_edit none = {0};
    int rc = 0;
    for (size_t i = 0; i < f.n_kv && rc == 0; i++) {
        const char *k = f.kv[i].key;
        if (is_vocab_array(k) || (e->u32_key && strcmp(k, e->u32_key) == 0) || (e->str_key && strcmp(k, e->str_key) == 0))
            continue;
        rc = copy_kv(w, &f, &f.kv[i], &none, &err);
    }
    if (rc == 0) rc = write_arrays(w, &f, e, &err);
    if (rc == 0 && e->u32_key) rc = dl_gguf_add_u32(w, e->u32_key, e->u32_val, &err);
    if (rc == 0 && e->str_key) rc = dl_gguf_add_str(w, e->str_key, "yes", &err);
    for (size_t i = 0; i < f.n_tensors && rc == 0; i++) rc = copy_tensor(w, &f.tensors[i], &none, &err);
    if (rc == 0) rc = dl_gguf_write(w, dst, &err);
    dl_gguf_writer_free(w);
    dl_gguf_close(&f);
    if (rc) { fprintf(stderr, "spm_copy: %s\n", err.msg); exit(2); }
}

static void expect_error(const spm_edit *e, const char *want, int line) {
    char file[700], out[700], model[800], cmd[800];
    snprintf(file, sizeof file, "%s/bad.gguf", g_dir);
    snprintf(out, sizeof out, "%s/bad-out", g_dir);
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    if (system(cmd) != 0) exit(2);
    spm_copy(file, e);
    dl_error err = {{0}};
    int rc = dl_import_gguf(file, out, &err);
    CHECK_MSG(rc == -1 && strstr(err.msg, want) && strstr(err.msg, file) && !dl_path_exists(model),
              "line %d: want '%s', got rc %d '%s'", line, want, rc, err.msg);
}
#define EXPECT_ERROR(want, ...) expect_error(&(spm_edit){__VA_ARGS__}, want, __LINE__)

static void test_broken(void) {
    EXPECT_ERROR("key 'tokenizer.ggml.scores' is missing", .drop_scores = 1);
    EXPECT_ERROR("tokenizer.ggml.scores has 319 entries for 320 tokens", .scores_short = 1);
    EXPECT_ERROR("tokenizer.ggml.token_type has 318 entries for 320 tokens", .types_short = 2);
    EXPECT_ERROR("key 'tokenizer.ggml.scores' must be an array of f32, not an array of i32", .scores_as_i32 = 1);
    EXPECT_ERROR("key 'tokenizer.ggml.tokens' must be an array of string", .tokens_as_i32 = 1);
    EXPECT_ERROR("token 300 has score nan", .nan_at = 300);
    EXPECT_ERROR("token 5 has an unknown token type", .type_at = 5, .type_val = 9);
    EXPECT_ERROR("token 5 has an unknown token type", .type_at = 5, .type_val = -1);
    EXPECT_ERROR("token 68 has type BYTE but is spelt", .dup_at = 68);
    EXPECT_ERROR("tokens 300 and 310 are both spelt", .dup_at = 310);
    EXPECT_ERROR("has 321 tokens, the model's vocabulary is 320", .extra_token = 1);
    EXPECT_ERROR("no byte token <0x0A>", .type_at = 13, .type_val = 1);
    EXPECT_ERROR("'tokenizer.ggml.unknown_token_id' = 320 is outside the vocabulary", .u32_key = "tokenizer.ggml.unknown_token_id",
                 .u32_val = 320);
    EXPECT_ERROR("'tokenizer.ggml.eos_token_id' = 4000 is outside the vocabulary", .u32_key = "tokenizer.ggml.eos_token_id",
                 .u32_val = 4000);
    EXPECT_ERROR("key 'tokenizer.ggml.add_space_prefix' must be a bool", .str_key = "tokenizer.ggml.add_space_prefix");
}

/* Without token types they are inferred (bytes from their spelling, unk/bos/eos from the ids). */
static void test_inferred_types(void) {
    char file[700], out[700];
    snprintf(file, sizeof file, "%s/notypes.gguf", g_dir);
    snprintf(out, sizeof out, "%s/notypes", g_dir);
    spm_copy(file, &(spm_edit){.drop_types = 1});
    dl_error err;
    CHECK_MSG(dl_import_gguf(file, out, &err) == 0, "%s", err.msg);
    CHECK(same_in(g_folder, out, "tokenizer.json"));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("gguf-spm"));
    snprintf(g_folder, sizeof g_folder, "%s/imported", g_dir);
    snprintf(g_good, sizeof g_good, "%s/good.gguf", g_dir);
    dl_error err;
    if (dl_import_llama2c(FIX "shared_legacy.bin", FIX "tok320.bin", g_folder, &err) ||
        dl_export_gguf(g_folder, g_good, DL_EXPORT_F32, DL_GGUF_LLAMA, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    test_export_keys();
    test_roundtrip();
    test_padded();
    test_broken();
    test_inferred_types();
    TEST_MAIN_END();
}
