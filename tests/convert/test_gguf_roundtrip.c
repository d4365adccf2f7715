/* Model folder -> GGUF -> model folder: the keys and tensors llama.cpp reads, the Q/K
 * permutation checked against both RoPE conventions, f32 bit-identical (weights, tokenizer,
 * greedy tokens), f16 within f16 rounding, q8_0 within the Q8_0 bound, Llama 3's pre-tokenizer
 * and a non-special added token. */
#include "convert_util.h"
#include "formats/safetensors.h"
#include <jansson.h>

static char g_dir[512];

static void pathf(char *out, const char *name) { snprintf(out, 1024, "%s/%s", g_dir, name); }

/* ---- Q/K permutation ------------------------------------------------------------------- */
/* Hugging Face: dimension i rotates with i + HS/2. */
static void rope_hf(float *x, int HS, int pos, float base) {
    for (int i = 0; i < HS / 2; i++) {
        double th = pos * pow(base, -2.0 * i / HS), a = x[i], b = x[i + HS / 2];
        x[i] = (float)(a * cos(th) - b * sin(th));
        x[i + HS / 2] = (float)(a * sin(th) + b * cos(th));
    }
}

/* llama.cpp's "normal" RoPE: dimension 2i rotates with 2i + 1. */
static void rope_adjacent(float *x, int HS, int pos, float base) {
    for (int i = 0; i < HS / 2; i++) {
        double th = pos * pow(base, -2.0 * i / HS), a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = (float)(a * cos(th) - b * sin(th));
        x[2 * i + 1] = (float)(a * sin(th) + b * cos(th));
    }
}

static void matvec(const float *w, const float *x, float *y, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)w[r * cols + c] * x[c];
        y[r] = (float)s;
    }
}

static void test_permutation(void) {
    /* the row orders on small heads: [0, HS/2, 1, HS/2+1, ...] */
    float w4[8] = {0, 1, 2, 3, 4, 5, 6, 7}, g4[8], w6[6] = {0, 1, 2, 3, 4, 5}, g6[6], back[8];
    dl_qk_to_gguf(w4, g4, 2, 4, 1);
    const float want4[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    CHECK(memcmp(g4, want4, sizeof g4) == 0);
    dl_qk_to_gguf(w6, g6, 1, 6, 1);
    const float want6[6] = {0, 3, 1, 4, 2, 5};
    CHECK(memcmp(g6, want6, sizeof g6) == 0);
    dl_qk_from_gguf(g4, back, 2, 4, 1);
    CHECK(memcmp(back, w4, sizeof w4) == 0);

    /* the point of it: llama.cpp's RoPE on the permuted weights gives the permuted result of
     * HF's RoPE on the original weights, so attention scores are the same */
    enum { NH = 3, HS = 8, COLS = 5 };
    float w[NH * HS * COLS], wg[NH * HS * COLS], x[COLS], qh[NH * HS], qg[NH * HS];
    dl_rng r;
    dl_rng_seed(&r, 7);
    for (int i = 0; i < NH * HS * COLS; i++) w[i] = dl_rng_normal(&r);
    for (int i = 0; i < COLS; i++) x[i] = dl_rng_normal(&r);
    dl_qk_to_gguf(w, wg, NH, HS, COLS);
    matvec(w, x, qh, NH * HS, COLS);
    matvec(wg, x, qg, NH * HS, COLS);
    int ok = 1;
    for (int h = 0; h < NH; h++) {
        rope_hf(qh + h * HS, HS, 5, 10000.0f);
        rope_adjacent(qg + h * HS, HS, 5, 10000.0f);
        for (int i = 0; i < HS / 2; i++)
            for (int j = 0; j < 2; j++) ok &= fabsf(qg[h * HS + 2 * i + j] - qh[h * HS + j * HS / 2 + i]) < 1e-5f;
    }
    CHECK(ok);
}

static void test_names(void) {
    char n[64];
    dl_error err;
    CHECK(dl_gguf_name_of("model.embed_tokens.weight", n, sizeof n, &err) == 0 && !strcmp(n, "token_embd.weight"));
    CHECK(dl_gguf_name_of("model.layers.11.self_attn.o_proj.weight", n, sizeof n, &err) == 0 &&
          !strcmp(n, "blk.11.attn_output.weight"));
    CHECK(dl_gguf_name_of("model.layers.0.post_attention_layernorm.weight", n, sizeof n, &err) == 0 &&
          !strcmp(n, "blk.0.ffn_norm.weight"));
    CHECK(dl_gguf_name_of("model.norm.weight", n, sizeof n, &err) == 0 && !strcmp(n, "output_norm.weight"));
    CHECK(dl_gguf_name_of("lm_head.weight", n, sizeof n, &err) == 0 && !strcmp(n, "output.weight"));
    CHECK(dl_gguf_name_of("model.layers.0.mlp.nope.weight", n, sizeof n, &err) == -1);
}

/* ---- what the file says ------------------------------------------------------------------ */
static int64_t get_i(const dl_gguf_file *f, const char *key) {
    int64_t v = -999;
    dl_error err;
    if (dl_gguf_get_int(f, key, &v, &err)) fprintf(stderr, "%s\n", err.msg);
    return v;
}

static int str_is(const dl_gguf_file *f, const char *key, const char *want) {
    const char *s;
    size_t n;
    dl_error err;
    return dl_gguf_get_str(f, key, &s, &n, &err) == 0 && n == strlen(want) && memcmp(s, want, n) == 0;
}

static int arr_str_is(const dl_gguf_kv *kv, uint64_t i, const char *want, size_t wn) {
    const char *s;
    size_t n;
    dl_gguf_arr_str(kv, i, &s, &n);
    return n == wn && memcmp(s, want, n) == 0;
}

static void check_vocab_keys(const dl_gguf_file *f, const dl_tokenizer *tok, int V) {
    dl_error err;
    int ntok = dl_tok_vocab_size(tok), eot = dl_tok_eot_id(tok), user = dl_tok_id(tok, "<|user|>");
    const dl_gguf_kv *tokens, *types, *merges;
    CHECK(str_is(f, "tokenizer.ggml.model", "gpt2") && str_is(f, "tokenizer.ggml.pre", "gpt-2"));
    CHECK(dl_gguf_get_arr(f, "tokenizer.ggml.tokens", DL_GGUF_STRING, &tokens, &err) == 0 && tokens->n == (uint64_t)V);
    CHECK(dl_gguf_get_arr(f, "tokenizer.ggml.token_type", DL_GGUF_I32, &types, &err) == 0 && types->n == (uint64_t)V);
    CHECK(dl_gguf_get_arr(f, "tokenizer.ggml.merges", DL_GGUF_STRING, &merges, &err) == 0 &&
          merges->n == (uint64_t)dl_tok_n_merges(tok));
    /* GPT-2's byte-to-unicode: printable ASCII is itself, space is U+0120, newline U+010A */
    CHECK(arr_str_is(tokens, (uint64_t)dl_tok_id(tok, "A"), "A", 1));
    CHECK(arr_str_is(tokens, (uint64_t)dl_tok_id(tok, " "), "\xc4\xa0", 2));
    CHECK(arr_str_is(tokens, (uint64_t)dl_tok_id(tok, "\n"), "\xc4\x8a", 2));
    CHECK(arr_str_is(tokens, (uint64_t)eot, DL_EOT, strlen(DL_EOT)));
    char pad[32];
    snprintf(pad, sizeof pad, "[PAD%d]", ntok);
    CHECK(arr_str_is(tokens, (uint64_t)ntok, pad, strlen(pad)));
    int64_t ty;
    CHECK(dl_gguf_arr_int(types, (uint64_t)eot, &ty) == 0 && ty == 3);  /* CONTROL */
    CHECK(dl_gguf_arr_int(types, (uint64_t)user, &ty) == 0 && ty == 3);
    CHECK(dl_gguf_arr_int(types, 65, &ty) == 0 && ty == 1);              /* NORMAL */
    CHECK(dl_gguf_arr_int(types, (uint64_t)V - 1, &ty) == 0 && ty == 5); /* UNUSED padding */
    int same = 1;
    dl_buf want = {0};
    for (int r = 0; r < dl_tok_n_merges(tok); r++) {
        int a, b;
        want.len = 0;
        dl_tok_merge(tok, r, &a, &b);
        dl_tok_spelling(tok, a, &want, &err);
        dl_buf_append(&want, " ", 1);
        dl_tok_spelling(tok, b, &want, &err);
        same &= arr_str_is(merges, (uint64_t)r, want.data, want.len);
    }
    dl_buf_free(&want);
    CHECK(same);
    CHECK(get_i(f, "tokenizer.ggml.bos_token_id") == eot && get_i(f, "tokenizer.ggml.eos_token_id") == eot);
    int b = -1;
    CHECK(dl_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, &err) == 0 && b == 0);
}

static void check_hparams(const dl_gguf_file *f, const dl_config *c) {
    dl_error err;
    double d;
    CHECK(str_is(f, "general.architecture", "llama") && str_is(f, "general.name", "tied"));
    CHECK(get_i(f, "general.file_type") == 0 && !dl_gguf_find(f, "general.alignment") &&
          !dl_gguf_find(f, "general.quantization_version"));
    CHECK(get_i(f, "llama.context_length") == c->max_T && get_i(f, "llama.embedding_length") == c->C);
    CHECK(get_i(f, "llama.block_count") == c->L && get_i(f, "llama.feed_forward_length") == c->F);
    CHECK(get_i(f, "llama.attention.head_count") == c->NH && get_i(f, "llama.attention.head_count_kv") == c->NKV);
    CHECK(get_i(f, "llama.rope.dimension_count") == c->C / c->NH && get_i(f, "llama.vocab_size") == c->V);
    CHECK(dl_gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", &d, &err) == 0 && (float)d == c->rms_eps);
    CHECK(dl_gguf_get_float(f, "llama.rope.freq_base", &d, &err) == 0 && d == 500.0);
}

/* Tensor names, shapes, types, llama.cpp's contiguous layout, and the data itself. */
static void check_tensors(const dl_gguf_file *f, const dl_model *m) {
    const dl_config *c = &m->cfg;
    int HS = c->C / c->NH;
    CHECK(f->n_tensors == (size_t)(2 + 9 * c->L) && !dl_gguf_find_tensor(f, "output.weight"));
    uint64_t off = 0;
    for (size_t i = 0; i < f->n_tensors; i++) { /* llama.cpp wants each offset right after the last */
        CHECK_MSG(f->tensors[i].offset == off, "tensor %s at %llu, expected %llu", f->tensors[i].name,
                  (unsigned long long)f->tensors[i].offset, (unsigned long long)off);
        off += (f->tensors[i].nbytes + 31) / 32 * 32;
    }
    CHECK(f->len == f->data_offset + off);
    const dl_gguf_tensor *t = dl_gguf_find_tensor(f, "token_embd.weight");
    const dl_tensor_view *emb = &m->lay.views[m->lay.embed];
    CHECK(t && t->type == DL_GGML_F32 && t->ndim == 2 && t->ne[0] == (uint64_t)c->C && t->ne[1] == (uint64_t)c->V &&
          memcmp(t->data, m->params + emb->offset, emb->numel * 4) == 0);
    t = dl_gguf_find_tensor(f, "blk.1.attn_norm.weight");
    CHECK(t && t->type == DL_GGML_F32 && t->ndim == 1 && t->ne[0] == (uint64_t)c->C);
    t = dl_gguf_find_tensor(f, "blk.1.ffn_down.weight");
    CHECK(t && t->ne[0] == (uint64_t)c->F && t->ne[1] == (uint64_t)c->C);
    t = dl_gguf_find_tensor(f, "blk.0.attn_k.weight");
    CHECK(t && t->ne[0] == (uint64_t)c->C && t->ne[1] == (uint64_t)(c->NKV * HS));
    /* attn_k row h*HS + 2i + j is HF k_proj row h*HS + j*HS/2 + i */
    const float *hf = m->params + m->lay.views[m->lay.layers[0].wk].offset;
    int ok = t != NULL;
    for (int h = 0; ok && h < c->NKV; h++)
        for (int i = 0; i < HS / 2; i++)
            for (int j = 0; j < 2; j++)
                ok &= memcmp(t->data + (size_t)(h * HS + 2 * i + j) * c->C * 4, hf + (size_t)(h * HS + j * HS / 2 + i) * c->C,
                             (size_t)c->C * 4) == 0;
    CHECK(ok);
}

/* ---- round trips ----------------------------------------------------------------------- */
static void same_encoding(const dl_tokenizer *a, const dl_tokenizer *b) {
    static const char *const texts[] = {CORPUS, "hello <|user|> world<|endoftext|>x", "  The  fox's 123456!!\n\n",
                                        "\xff\xfe bytes \xe2\x82", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (int special = 0; special < 2; special++) {
            dl_ivec x = {0}, y = {0};
            dl_error err;
            int rc = dl_tok_encode(a, texts[i], strlen(texts[i]), special, &x, &err) |
                     dl_tok_encode(b, texts[i], strlen(texts[i]), special, &y, &err);
            CHECK_MSG(rc == 0 && x.len == y.len && (x.len == 0 || memcmp(x.data, y.data, x.len * 4) == 0),
                      "text %zu (special %d) encodes differently", i, special);
            dl_ivec_free(&x);
            dl_ivec_free(&y);
        }
}

static void same_config(const dl_config *a, const dl_config *b) {
    CHECK(a->V == b->V && a->C == b->C && a->F == b->F && a->L == b->L && a->NH == b->NH && a->NKV == b->NKV);
    CHECK(a->max_T == b->max_T && a->rms_eps == b->rms_eps && a->rope_theta == b->rope_theta && a->tied == b->tied);
}

static void same_greedy(const dl_model *a, const dl_model *b, const dl_tokenizer *tok) {
    dl_ivec p = {0};
    dl_error err;
    dl_tok_encode(tok, "The quick brown fox", 19, 0, &p, &err);
    int32_t ga[12], gb[12];
    greedy(a, p.data, (int)p.len, 12, ga);
    greedy(b, p.data, (int)p.len, 12, gb);
    CHECK(memcmp(ga, gb, sizeof ga) == 0);
    dl_ivec_free(&p);
}

/* Exports dir as dtype and imports it into dir_back; returns the imported model. */
static void export_import(const char *dir, const char *name, dl_export_dtype dtype, dl_model *back) {
    char file[1100], out[1100];
    snprintf(file, sizeof file, "%s.gguf", dir);
    snprintf(out, sizeof out, "%s/%s-back", g_dir, name);
    dl_error err;
    CHECK_MSG(dl_export_gguf(dir, file, dtype, DL_GGUF_LLAMA, &err) == 0, "export: %s", err.msg);
    CHECK_MSG(dl_import_gguf(file, out, &err) == 0, "import: %s", err.msg);
    CHECK_MSG(dl_model_load(back, out, &err) == 0, "load: %s", err.msg);
}

static dl_tokenizer *load_tok(const char *dir) {
    char p[1024];
    dl_error err;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    dl_tokenizer *t = dl_tok_load(p, &err);
    if (!t) fprintf(stderr, "load_tok: %s\n", err.msg);
    return t;
}

static void test_f32(dl_tokenizer *tok, int tied) {
    int ntok = dl_tok_vocab_size(tok);
    dl_config cfg = small_config(ntok + 3, 64, 96, tied);
    dl_model m, back;
    random_model(&m, &cfg, 11 + (uint64_t)tied);
    char dir[1024], file[1100], out[1100];
    pathf(dir, tied ? "tied" : "untied");
    save_folder(&m, tok, dir);
    export_import(dir, tied ? "tied" : "untied", DL_EXPORT_F32, &back);
    if (tied) {
        dl_gguf_file f;
        dl_error err;
        snprintf(file, sizeof file, "%s.gguf", dir);
        CHECK(dl_gguf_open(&f, file, &err) == 0);
        check_hparams(&f, &cfg);
        check_vocab_keys(&f, tok, cfg.V);
        check_tensors(&f, &m);
        dl_gguf_close(&f);
    }
    same_config(&m.cfg, &back.cfg);
    CHECK(back.cfg.bos_id == dl_tok_eot_id(tok) && back.cfg.eos_id == dl_tok_eot_id(tok));
    CHECK(m.lay.total == back.lay.total && memcmp(m.params, back.params, m.lay.total * sizeof(float)) == 0);
    snprintf(out, sizeof out, "%s/%s-back", g_dir, tied ? "tied" : "untied");
    dl_tokenizer *t2 = load_tok(out);
    CHECK(t2 && dl_tok_vocab_size(t2) == ntok && dl_tok_n_merges(t2) == dl_tok_n_merges(tok));
    if (t2) same_encoding(tok, t2);
    same_greedy(&m, &back, tok);
    dl_tok_free(t2);
    dl_model_free(&m);
    dl_model_free(&back);
}

static void test_f16(dl_tokenizer *tok) {
    dl_config cfg = small_config(dl_tok_vocab_size(tok), 64, 96, 0);
    dl_model m, back;
    random_model(&m, &cfg, 21);
    char dir[1024];
    pathf(dir, "f16");
    save_folder(&m, tok, dir);
    export_import(dir, "f16", DL_EXPORT_F16, &back);
    int ok = m.lay.total == back.lay.total;
    for (int v = 0; ok && v < m.lay.n_views; v++) {
        const dl_tensor_view *w = &m.lay.views[v];
        for (size_t i = 0; i < w->numel; i++) {
            /* norms stay f32; matrices are x rounded to f16 (the Q/K permutation moves whole rows) */
            float x = m.params[w->offset + i];
            ok &= back.params[w->offset + i] == (w->ndim == 1 ? x : dl_f16_to_f32(dl_f32_to_f16(x)));
        }
    }
    CHECK(ok);
    dl_model_free(&m);
    dl_model_free(&back);
}

/* |x - dequant(quant(x))| <= d16/2 + 127 |d16 - d| per element, d = amax/127 of its block of
 * 32 along the row: q is rounded with the f32 scale d, the file keeps d as f16 (d16). */
static int within_q8_0(const float *x, const float *y, size_t n) {
    int ok = 1;
    for (size_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float d = amax / 127.0f, d16 = dl_f16_to_f32(dl_f32_to_f16(d));
        float bound = d16 / 2 + 127 * fabsf(d16 - d) + 1e-6f * amax;
        for (int i = 0; i < 32; i++) ok &= fabsf(x[b * 32 + i] - y[b * 32 + i]) <= bound;
    }
    return ok;
}

static void test_q8_0(dl_tokenizer *tok) {
    dl_config cfg = small_config(dl_tok_vocab_size(tok), 64, 96, 0);
    dl_model m, back;
    random_model(&m, &cfg, 31);
    char dir[1024], file[1100];
    pathf(dir, "q8");
    save_folder(&m, tok, dir);
    export_import(dir, "q8", DL_EXPORT_Q8_0, &back);
    int ok = 1;
    for (int v = 0; v < m.lay.n_views; v++) {
        const dl_tensor_view *w = &m.lay.views[v];
        const float *x = m.params + w->offset, *y = back.params + w->offset;
        ok &= w->ndim == 1 ? memcmp(x, y, w->numel * 4) == 0 : within_q8_0(x, y, w->numel);
    }
    CHECK(ok);
    dl_gguf_file f;
    dl_error err;
    snprintf(file, sizeof file, "%s.gguf", dir);
    CHECK(dl_gguf_open(&f, file, &err) == 0);
    CHECK(get_i(&f, "general.file_type") == 7 && get_i(&f, "general.quantization_version") == 2);
    CHECK(dl_gguf_find_tensor(&f, "blk.0.attn_q.weight")->type == DL_GGML_Q8_0);
    CHECK(dl_gguf_find_tensor(&f, "output.weight")->type == DL_GGML_Q8_0);
    CHECK(dl_gguf_find_tensor(&f, "output_norm.weight")->type == DL_GGML_F32);
    dl_gguf_close(&f);
    dl_model_free(&m);
    dl_model_free(&back);

    /* rows of 48 are not whole Q8_0 blocks: those matrices fall back to F16 */
    cfg = small_config(dl_tok_vocab_size(tok), 48, 64, 1);
    random_model(&m, &cfg, 32);
    pathf(dir, "q8fallback");
    save_folder(&m, tok, dir);
    export_import(dir, "q8fallback", DL_EXPORT_Q8_0, &back);
    snprintf(file, sizeof file, "%s.gguf", dir);
    CHECK(dl_gguf_open(&f, file, &err) == 0);
    CHECK(dl_gguf_find_tensor(&f, "token_embd.weight")->type == DL_GGML_F16);
    CHECK(dl_gguf_find_tensor(&f, "blk.1.attn_v.weight")->type == DL_GGML_F16);
    CHECK(dl_gguf_find_tensor(&f, "blk.1.ffn_down.weight")->type == DL_GGML_Q8_0);
    dl_gguf_close(&f);
    const dl_tensor_view *down = &m.lay.views[m.lay.layers[1].wdown];
    CHECK(within_q8_0(m.params + down->offset, back.params + down->offset, down->numel));
    dl_model_free(&m);
    dl_model_free(&back);
}

/* Llama 3's split regex (with ignore_merges, as llama.cpp uses it) and a non-special added
 * token, written into tokenizer.json by hand. */
static void test_llama3_and_added(dl_tokenizer *tok) {
    dl_config cfg = small_config(dl_tok_vocab_size(tok) + 1, 64, 96, 1);
    dl_model m;
    random_model(&m, &cfg, 41);
    char dir[1024], tj[1100], file[1100], out[1100];
    pathf(dir, "llama3");
    save_folder(&m, tok, dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    dl_error err;
    json_t *root = dl_json_load(tj, &err);
    json_object_set_new(root, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                                  "pretokenizers", "type", "Split", "pattern", "Regex",
                                  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                                  "behavior", "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0,
                                  "trim_offsets", 1, "use_regex", 0));
    json_object_set_new(json_object_get(root, "model"), "ignore_merges", json_true());
    json_array_append_new(json_object_get(root, "added_tokens"),
                          json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", dl_tok_vocab_size(tok), "content",
                                    "<sep>", "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 0));
    CHECK(dl_json_save(root, tj, &err) == 0);
    json_decref(root);
    dl_tokenizer *src = load_tok(dir);
    CHECK(src && dl_tok_vocab_size(src) == cfg.V);
    snprintf(file, sizeof file, "%s.gguf", dir);
    snprintf(out, sizeof out, "%s/llama3-back", g_dir);
    CHECK_MSG(dl_export_gguf(dir, file, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == 0, "%s", err.msg);
    dl_gguf_file f;
    CHECK(dl_gguf_open(&f, file, &err) == 0);
    CHECK(str_is(&f, "tokenizer.ggml.pre", "llama-bpe"));
    const dl_gguf_kv *types;
    int64_t ty = 0;
    CHECK(dl_gguf_get_arr(&f, "tokenizer.ggml.token_type", DL_GGUF_I32, &types, &err) == 0 &&
          dl_gguf_arr_int(types, (uint64_t)cfg.V - 1, &ty) == 0 && ty == 4); /* USER_DEFINED */
    dl_gguf_close(&f);
    CHECK_MSG(dl_import_gguf(file, out, &err) == 0, "%s", err.msg);
    dl_tokenizer *t2 = load_tok(out);
    CHECK(t2 && dl_tok_vocab_size(t2) == cfg.V && dl_tok_is_special(t2, cfg.V - 1) == 0);
    if (src && t2) {
        same_encoding(src, t2);
        dl_ivec a = {0}, b = {0};
        const char *s = "I'M 12345 x<sep>y\r\n\n  don'T";
        dl_tok_encode(src, s, strlen(s), 0, &a, &err);
        dl_tok_encode(t2, s, strlen(s), 0, &b, &err);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len * 4) == 0);
        int has_sep = 0;
        for (size_t i = 0; i < b.len; i++) has_sep |= b.data[i] == cfg.V - 1;
        CHECK(has_sep);
        dl_ivec_free(&a);
        dl_ivec_free(&b);
    }
    dl_tok_free(src);
    dl_tok_free(t2);
    dl_model_free(&m);
}

static void test_export_errors(dl_tokenizer *tok) {
    dl_error err;
    dl_export_dtype d;
    CHECK(dl_export_dtype_parse("q4_0", &d, &err) == -1 && strstr(err.msg, "f32, f16, q8_0"));
    CHECK(dl_export_dtype_parse("q8_0", &d, &err) == 0 && d == DL_EXPORT_Q8_0);
    dl_config cfg = small_config(dl_tok_vocab_size(tok), 64, 96, 1);
    dl_model m;
    random_model(&m, &cfg, 51);
    char dir[1024], file[1100], tj[1100];
    pathf(dir, "notok");
    pathf(file, "notok.gguf");
    CHECK(dl_model_save(&m, dir, &err) == 0);
    CHECK(dl_export_gguf(dir, file, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == -1 && strstr(err.msg, "tokenizer.json: missing"));
    CHECK(!dl_path_exists(file));
    /* a tokenizer bigger than the model's vocabulary */
    dl_model_free(&m);
    cfg.V = dl_tok_vocab_size(tok) - 1;
    random_model(&m, &cfg, 52);
    save_folder(&m, tok, dir);
    CHECK(dl_export_gguf(dir, file, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == -1 && strstr(err.msg, "vocab_size"));
    /* a pre-tokenizer GGUF has no name for */
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    dl_model_free(&m);
    cfg.V = dl_tok_vocab_size(tok);
    random_model(&m, &cfg, 53);
    save_folder(&m, tok, dir);
    json_t *root = dl_json_load(tj, &err);
    json_object_set_new(root, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                                  "pretokenizers", "type", "Split", "pattern", "Regex", "\\p{L}+|[^\\p{L}]+", "behavior",
                                  "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                                  "use_regex", 0));
    dl_json_save(root, tj, &err);
    json_decref(root);
    CHECK(dl_export_gguf(dir, file, DL_EXPORT_F32, DL_GGUF_LLAMA, &err) == -1 && strstr(err.msg, "no name"));
    dl_model_free(&m);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("gguf-convert"));
    dl_set_threads(1);
    dl_tokenizer *tok = train_tokenizer(300);
    test_permutation();
    test_names();
    test_f32(tok, 1);
    test_f32(tok, 0);
    test_f16(tok);
    test_q8_0(tok);
    test_llama3_and_added(tok);
    test_export_errors(tok);
    dl_tok_free(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
