/* Hugging Face folders in (tests/fixtures/tiny_qwen2: Qwen2, q/k/v biases, two BF16 shards, a
 * Qwen2-style tokenizer.json), and attention biases through GGUF:
 *  - dl_import_hf writes the same parameters (f32 and bf16 exactly, f16 within its rounding),
 *    a Qwen2 config and the tokenizer byte for byte; bad input fails before anything is written;
 *  - the Qwen2 tokenizer (NFC normalizer, Split with Qwen2's regex, ByteLevel, specials only in
 *    added_tokens) encodes as worked out by hand below;
 *  - GGUF export of the HF folder itself carries blk.N.attn_{q,k,v}.bias, the q/k ones in
 *    llama.cpp's row order, and "qwen2" as the pre-tokenizer; import gives the parameters back
 *    bit for bit; so does a Llama model with attention_bias (o_proj bias too). */
#include "convert_util.h"
#include "formats/safetensors.h"
#include <jansson.h>

static char g_dir[512];
static char g_fix[1024];

static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int load(dl_model *m, const char *dir) {
    dl_error err;
    if (dl_model_load(m, dir, &err) == 0) return 0;
    fprintf(stderr, "load %s: %s\n", dir, err.msg);
    return -1;
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    dl_error err;
    if (dl_read_file(a, &x, &nx, &err)) return 0;
    if (dl_read_file(b, &y, &ny, &err)) { free(x); return 0; }
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_import(void) {
    dl_model src, out;
    if (load(&src, g_fix)) { CHECK(0); return; }
    static const dl_dtype types[] = {DL_F32, DL_BF16, DL_F16};
    for (int k = 0; k < 3; k++) {
        char name[32], p[1100];
        snprintf(name, sizeof name, "imported_%s", dl_dtype_name(types[k]));
        const char *dir = tmp_path(name);
        dl_error err = {{0}};
        CHECK_MSG(dl_import_hf(g_fix, dir, types[k], &err) == 0, "%s", err.msg);
        if (load(&out, dir)) { CHECK(0); continue; }
        CHECK(out.cfg.qkv_bias == 1 && out.cfg.o_bias == 0 && out.lay.total == src.lay.total);
        int bad = 0;
        for (size_t i = 0; i < src.lay.total; i++) {
            float a = src.params[i], b = out.params[i];
            bad += types[k] == DL_F16 ? !(fabsf(a - b) <= fabsf(a) / 1024 + 6e-8f) : a != b;
        }
        CHECK_MSG(bad == 0, "%s: %d parameters differ", name, bad);
        dl_st_file f;
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        CHECK(dl_st_open(&f, p, &err) == 0);
        const dl_st_tensor *t = dl_st_find(&f, "model.layers.0.self_attn.q_proj.bias");
        CHECK(t && t->dtype == types[k] && t->numel == 16);
        dl_st_close(&f);
        char a[1100], b[1100];
        snprintf(a, sizeof a, "%s/tokenizer.json", g_fix);
        snprintf(b, sizeof b, "%s/tokenizer.json", dir);
        CHECK(same_file(a, b));
        snprintf(p, sizeof p, "%s/config.json", dir);
        json_t *c = dl_json_load(p, &err);
        CHECK(c && strcmp(json_string_value(json_object_get(c, "model_type")), "qwen2") == 0);
        json_decref(c);
        dl_model_free(&out);
    }
    dl_model_free(&src);
}

/* Copies the fixture folder to name, then replaces one file's text (file NULL: no change). */
static const char *fixture_copy(const char *name, const char *file, const char *text) {
    static const char *const files[] = {"config.json", "tokenizer.json", "model.safetensors.index.json",
                                        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    const char *dir = tmp_path(name);
    dl_error err;
    dl_mkdir_p(dir, &err);
    for (int i = 0; i < 5; i++) {
        char a[1100], b[1100];
        snprintf(a, sizeof a, "%s/%s", g_fix, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        if (dl_copy_file(a, b, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    }
    if (file) {
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", dir, file);
        if (text) dl_write_file_atomic(p, text, strlen(text), &err);
        else remove(p);
    }
    return dir;
}

/* The fixture's config.json with one key set to a JSON value. */
static char *config_with(const char *key, const char *value) {
    char p[1100];
    dl_error err;
    snprintf(p, sizeof p, "%s/config.json", g_fix);
    json_t *c = dl_json_load(p, &err), *v = json_loads(value, JSON_DECODE_ANY, NULL);
    json_object_set_new(c, key, v);
    char *s = json_dumps(c, 0);
    json_decref(c);
    return s;
}

static void expect_import_error(const char *dir, const char *out, const char *want, int line) {
    dl_error err = {{0}};
    int rc = dl_import_hf(dir, out, DL_F32, &err);
    int ok = rc == -1 && strstr(err.msg, want) && !dl_path_exists(out);
    if (!ok) fprintf(stderr, "line %d: expected '%s', got rc=%d '%s'\n", line, want, rc, err.msg);
    CHECK(ok);
}
#define EXPECT_IMPORT_ERROR(dir, want) expect_import_error(dir, tmp_path("not_written"), want, __LINE__)

static void test_import_errors(void) {
    static const struct { const char *key, *value, *want; } keys[] = {
        {"rope_scaling", "{\"type\": \"yarn\", \"factor\": 4.0}", "rope_scaling"},
        {"use_sliding_window", "true", "use_sliding_window"},
        {"hidden_act", "\"gelu\"", "hidden_act"},
        {"model_type", "\"qwen2_moe\"", "model_type 'qwen2_moe'"},
        {"num_hidden_layers", "3", "'model.layers.2.input_layernorm.weight' is missing"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *text = config_with(keys[i].key, keys[i].value);
        EXPECT_IMPORT_ERROR(fixture_copy("badconfig", "config.json", text), keys[i].want);
        free(text);
    }
    EXPECT_IMPORT_ERROR(fixture_copy("notok", "tokenizer.json", NULL), "tokenizer.json: missing");
    EXPECT_IMPORT_ERROR(fixture_copy("badtok", "tokenizer.json", "{\"model\": 1}"), "tokenizer.json");
    EXPECT_IMPORT_ERROR(fixture_copy("noshard", "model-00002-of-00002.safetensors", NULL), "is missing");
    /* weights that disagree with the config */
    char *text = config_with("vocab_size", "200");
    EXPECT_IMPORT_ERROR(fixture_copy("smallvocab", "config.json", text), "has shape [272, 16]");
    free(text);
    /* a model with fewer ids than its tokenizer (266) */
    dl_config c = small_config(100, 16, 24, 1);
    dl_model m;
    random_model(&m, &c, 3);
    const char *small = tmp_path("small_model");
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/tokenizer.json", g_fix);
    snprintf(b, sizeof b, "%s/tokenizer.json", small);
    dl_error e2;
    CHECK(dl_model_save(&m, small, &e2) == 0 && dl_copy_file(a, b, &e2) == 0);
    EXPECT_IMPORT_ERROR(small, "266 token ids, more than the model's vocab_size 100");
    dl_model_free(&m);
    /* writing over the folder being read */
    dl_error err = {{0}};
    const char *dir = fixture_copy("self", NULL, NULL);
    CHECK(dl_import_hf(dir, dir, DL_F32, &err) == -1 && strstr(err.msg, "--out is the folder being read"));
    CHECK(dl_import_hf(g_fix, tmp_path("i32"), DL_I32, &err) == -1 && strstr(err.msg, "dtype"));
}

/* Ids by hand: bytes 0..255 in GPT-2's byte-alphabet order (printable ASCII c has id c - 33,
 * space is 220), then the merges in rank order: 256 "Ġt", 257 "he", 258 "Ġthe", 259 "12",
 * 260 "in", 261 "Ġa", 262 "the"; then 263 <|endoftext|>, 264 <|im_start|>, 265 <|im_end|>.
 * Qwen2's regex splits "the 12 the<|im_end|>" into "the", " ", "1", "2", " the" (a digit is a
 * piece of its own, so the merge "1 2" never applies; a space before letters joins them). */
static void test_qwen_tokenizer(void) {
    char p[1100];
    dl_error err;
    snprintf(p, sizeof p, "%s/tokenizer.json", g_fix);
    dl_tokenizer *tok = dl_tok_load(p, &err);
    CHECK_MSG(tok != NULL, "%s", err.msg);
    if (!tok) return;
    CHECK(dl_tok_vocab_size(tok) == 266 && dl_tok_eot_id(tok) == 263 && dl_tok_is_special(tok, 265));
    const char text[] = "the 12 the<|im_end|>";
    const int32_t want[] = {262, 220, 16, 17, 258, 265};
    dl_ivec ids = {0};
    CHECK(dl_tok_encode(tok, text, strlen(text), 1, &ids, &err) == 0);
    CHECK(ids.len == 6 && memcmp(ids.data, want, sizeof want) == 0);
    dl_buf back = {0};
    CHECK(dl_tok_decode(tok, ids.data, ids.len, &back, &err) == 0);
    CHECK(back.len == strlen(text) && memcmp(back.data, text, back.len) == 0);
    /* without specials allowed the marker is plain text: '<' is id 27 */
    ids.len = 0;
    CHECK(dl_tok_encode(tok, "<|im_end|>", 10, 0, &ids, &err) == 0);
    CHECK(ids.len > 1 && ids.data[0] == 27);
    dl_ivec_free(&ids);
    dl_buf_free(&back);
    dl_tok_free(tok);
}

/* GGUF element i of a q/k bias holds HF element (head, half j, pair i) as the rows do. */
static int permuted_as_rows(const float *hf, const float *gg, int heads, int HS) {
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < HS / 2; i++)
            for (int j = 0; j < 2; j++)
                if (gg[h * HS + 2 * i + j] != hf[h * HS + j * HS / 2 + i]) return 0;
    return 1;
}

static void test_gguf_biases_qwen(void) {
    dl_model src, back;
    if (load(&src, g_fix)) { CHECK(0); return; }
    const char *gguf = tmp_path("qwen.gguf"), *dir = tmp_path("qwen_back");
    dl_error err = {{0}};
    CHECK_MSG(dl_export_gguf(g_fix, gguf, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == 0, "%s", err.msg);
    dl_gguf_file f;
    CHECK(dl_gguf_open(&f, gguf, &err) == 0);
    const char *s;
    size_t n;
    CHECK(dl_gguf_get_str(&f, "tokenizer.ggml.pre", &s, &n, &err) == 0 && n == 5 && memcmp(s, "qwen2", 5) == 0);
    const int HS = src.cfg.C / src.cfg.NH;
    const char *names[3] = {"blk.1.attn_q.bias", "blk.1.attn_k.bias", "blk.1.attn_v.bias"};
    const int views[3] = {src.lay.layers[1].bq, src.lay.layers[1].bk, src.lay.layers[1].bv};
    const int heads[3] = {src.cfg.NH, src.cfg.NKV, 0};
    for (int k = 0; k < 3; k++) {
        const dl_gguf_tensor *t = dl_gguf_find_tensor(&f, names[k]);
        const dl_tensor_view *v = &src.lay.views[views[k]];
        float got[16];
        CHECK(t && t->type == DL_GGML_F32 && t->ndim == 1 && t->ne[0] == v->numel);
        if (!t || dl_gguf_tensor_to_f32(t, got, v->numel, &err)) continue;
        const float *hf = src.params + v->offset;
        CHECK(heads[k] ? permuted_as_rows(hf, got, heads[k], HS) : memcmp(got, hf, v->numel * 4) == 0);
    }
    CHECK(dl_gguf_find_tensor(&f, "blk.0.attn_output.bias") == NULL);
    dl_gguf_close(&f);
    CHECK_MSG(dl_import_gguf(gguf, dir, &err) == 0, "%s", err.msg);
    if (load(&back, dir) == 0) {
        CHECK(back.cfg.qkv_bias == 1 && back.cfg.o_bias == 0 && back.lay.total == src.lay.total);
        CHECK(memcmp(back.params, src.params, src.lay.total * 4) == 0);
        dl_model_free(&back);
    }
    /* the tokenizer made from the GGUF keys encodes as the original does */
    char p[1100];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    dl_tokenizer *tok = dl_tok_load(p, &err);
    dl_ivec ids = {0};
    CHECK(tok && dl_tok_encode(tok, "the 12 the<|im_end|>", 20, 1, &ids, &err) == 0);
    const int32_t want[] = {262, 220, 16, 17, 258, 265};
    CHECK(ids.len == 6 && memcmp(ids.data, want, sizeof want) == 0);
    dl_ivec_free(&ids);
    dl_tok_free(tok);
    dl_model_free(&src);
}

/* The Qwen2 fixture as GGUF's qwen2 architecture: qwen2.* keys, no llama.* ones, q/k rows and
 * biases as Hugging Face has them (llama.cpp's qwen2 rotates halves, not pairs), and back bit for
 * bit; a qwen2 file without its q bias is refused. */
static void test_gguf_arch_qwen2(void) {
    dl_model src, back;
    if (load(&src, g_fix)) { CHECK(0); return; }
    const char *gguf = tmp_path("qwen2arch.gguf"), *dir = tmp_path("qwen2arch_back");
    dl_error err = {{0}};
    CHECK_MSG(dl_export_gguf(g_fix, gguf, DL_EXPORT_F32, DL_GGUF_QWEN2, &err) == 0, "%s", err.msg);
    dl_gguf_file f;
    if (dl_gguf_open(&f, gguf, &err)) { CHECK(0); dl_model_free(&src); return; }
    const char *s;
    size_t n;
    int64_t v = 0;
    CHECK(dl_gguf_get_str(&f, "general.architecture", &s, &n, &err) == 0 && n == 5 && memcmp(s, "qwen2", 5) == 0);
    CHECK(dl_gguf_get_int(&f, "qwen2.embedding_length", &v, &err) == 0 && v == src.cfg.C);
    CHECK(dl_gguf_get_int(&f, "qwen2.attention.head_count_kv", &v, &err) == 0 && v == src.cfg.NKV);
    CHECK(!dl_gguf_find(&f, "llama.embedding_length") && !dl_gguf_find(&f, "llama.block_count"));
    const int views[2] = {src.lay.layers[1].wq, src.lay.layers[1].bk};
    const char *names[2] = {"blk.1.attn_q.weight", "blk.1.attn_k.bias"};
    for (int k = 0; k < 2; k++) {
        const dl_tensor_view *tv = &src.lay.views[views[k]];
        const dl_gguf_tensor *t = dl_gguf_find_tensor(&f, names[k]);
        float *got = malloc(tv->numel * sizeof *got);
        CHECK(t && got && dl_gguf_tensor_to_f32(t, got, tv->numel, &err) == 0 &&
              memcmp(got, src.params + tv->offset, tv->numel * 4) == 0); /* not permuted */
        free(got);
    }
    dl_gguf_close(&f);
    CHECK_MSG(dl_import_gguf(gguf, dir, &err) == 0, "%s", err.msg);
    if (load(&back, dir) == 0) {
        CHECK(back.cfg.qkv_bias == 1 && back.cfg.o_bias == 0 && back.cfg.rope_theta == src.cfg.rope_theta);
        CHECK(back.lay.total == src.lay.total && memcmp(back.params, src.params, src.lay.total * 4) == 0);
        dl_model_free(&back);
    }
    const char *broken = tmp_path("qwen2_noqbias.gguf");
    gguf_copy(gguf, broken, &(gguf_edit){.drop_tensor = "blk.0.attn_q.bias"});
    CHECK(dl_import_gguf(broken, tmp_path("qwen2_broken"), &err) == -1 && strstr(err.msg, "qwen2 model has q/k/v biases"));
    dl_model_free(&src);
}

/* A Llama model with attention_bias (q, k, v and o biases) through GGUF and back, and GGUF
 * files whose biases do not add up. */
static void test_gguf_biases_llama(void) {
    dl_tokenizer *tok = train_tokenizer(300);
    dl_config c = small_config(dl_tok_vocab_size(tok), 32, 48, 0);
    c.qkv_bias = c.o_bias = 1;
    dl_model m, back;
    random_model(&m, &c, 17);
    const char *dir = tmp_path("llama_bias"), *gguf = tmp_path("llama_bias.gguf"), *out = tmp_path("llama_back");
    save_folder(&m, tok, dir);
    dl_error err = {{0}};
    CHECK_MSG(dl_export_gguf(dir, gguf, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == 0, "%s", err.msg);
    /* an output bias has no place in GGUF's qwen2 architecture */
    char as_qwen2[1100]; /* not tmp_path: its four buffers hold dir, gguf and out */
    snprintf(as_qwen2, sizeof as_qwen2, "%s/llama_bias_qwen2.gguf", g_dir);
    CHECK(dl_export_gguf(dir, as_qwen2, DL_EXPORT_F32, DL_GGUF_QWEN2, &err) == -1 &&
          strstr(err.msg, "an output bias") && strstr(err.msg, "export it as llama"));
    CHECK_MSG(dl_import_gguf(gguf, out, &err) == 0, "%s", err.msg);
    if (load(&back, out) == 0) {
        CHECK(back.cfg.qkv_bias == 1 && back.cfg.o_bias == 1);
        CHECK(back.lay.total == m.lay.total && memcmp(back.params, m.params, m.lay.total * 4) == 0);
        int32_t prompt[3] = {5, 9, 2}, a[8], b[8];
        greedy(&m, prompt, 3, 8, a);
        greedy(&back, prompt, 3, 8, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
        dl_model_free(&back);
    }
    /* q bias gone: an o_proj bias alone is refused; one v bias gone: named as missing */
    const char *broken = tmp_path("broken.gguf");
    gguf_copy(gguf, broken, &(gguf_edit){.drop_tensor = "blk.0.attn_q.bias"});
    CHECK(dl_import_gguf(broken, tmp_path("broken1"), &err) == -1 && strstr(err.msg, "o_proj bias"));
    gguf_copy(gguf, broken, &(gguf_edit){.drop_tensor = "blk.1.attn_v.bias"});
    CHECK(dl_import_gguf(broken, tmp_path("broken2"), &err) == -1 && strstr(err.msg, "'blk.1.attn_v.bias' is missing"));
    dl_model_free(&m);
    dl_tok_free(tok);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("import-hf"));
    snprintf(g_fix, sizeof g_fix, "%s/tests/fixtures/tiny_qwen2", DISTIL_SOURCE_DIR);
    test_import();
    test_import_errors();
    test_qwen_tokenizer();
    test_gguf_biases_qwen();
    test_gguf_arch_qwen2();
    test_gguf_biases_llama();
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
