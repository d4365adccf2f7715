/* config.json parsing and the parameter layout. */
#include "model/model.h"
#include "test.h"

static const char *tmp;

static int load_text(const char *text, dl_config *c, dl_error *err) {
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", tmp);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    return dl_config_load(path, c, err);
}

static void test_parse(void) {
    dl_config c;
    dl_error err;
    CHECK(load_text("{\"vocab_size\": 4096, \"hidden_size\": 256, \"intermediate_size\": 704,"
                    " \"num_hidden_layers\": 6, \"num_attention_heads\": 8, \"num_key_value_heads\": 4,"
                    " \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0,"
                    " \"tie_word_embeddings\": true, \"model_type\": \"llama\"}", &c, &err) == 0);
    CHECK(c.V == 4096 && c.C == 256 && c.F == 704 && c.L == 6 && c.NH == 8 && c.NKV == 4 && c.max_T == 256);
    CHECK(c.tied == 1 && fabsf(c.rms_eps - 1e-5f) < 1e-12f && c.rope_theta == 10000.0f);

    /* defaults: kv heads = heads, untied */
    CHECK(load_text("{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2}", &c, &err) == 0);
    CHECK(c.NKV == 2 && c.tied == 0 && c.max_T == 2048);

    /* round trip through dl_config_save */
    char path[700];
    snprintf(path, sizeof path, "%s/saved.json", tmp);
    c.tied = 1;
    c.eos_id = 3;
    CHECK(dl_config_save(&c, path, &err) == 0);
    dl_config d;
    CHECK(dl_config_load(path, &d, &err) == 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);
}

static void test_reject(void) {
    dl_config c;
    dl_error err;
    CHECK(load_text("{\"vocab_size\": 10, \"hidden_size\": 10, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 3}", &c, &err) == -1);
    CHECK(strstr(err.msg, "not divisible") != NULL);
    CHECK(load_text("{\"vocab_size\": 10, \"hidden_size\": 12, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 3}", &c,
                    &err) == -1);
    CHECK(strstr(err.msg, "num_key_value_heads") != NULL);
    CHECK(load_text("{\"vocab_size\": 10, \"hidden_size\": 6, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2}", &c, &err) == -1);
    CHECK(strstr(err.msg, "even") != NULL); /* head size 3 */
    CHECK(load_text("{\"vocab_size\": -1, \"hidden_size\": 8, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2}", &c, &err) == -1);
    CHECK(strstr(err.msg, "vocab_size") != NULL);
    CHECK(load_text("{\"hidden_size\": 8}", &c, &err) == -1);
    CHECK(strstr(err.msg, "vocab_size") != NULL && strstr(err.msg, "missing") != NULL);
    CHECK(load_text("[1,2,3]", &c, &err) == -1);
    CHECK(load_text("{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"tie_word_embeddings\": 1}", &c,
                    &err) == -1);
    CHECK(strstr(err.msg, "tie_word_embeddings") != NULL);
    CHECK(load_text("{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16,"
                    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"model_type\": \"gpt2\"}", &c,
                    &err) == -1);
    CHECK(load_text("{\"vocab_size\": 1e30, \"hidden_size\": 8}", &c, &err) == -1);
}

/* Qwen2 and Llama-with-biases configs: the family decides the biases, save/load keeps them. */
#define DIMS "\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, " \
             "\"num_attention_heads\": 2"

static void test_families(void) {
    dl_config c, d;
    dl_error err;
    CHECK(load_text("{" DIMS ", \"model_type\": \"qwen2\", \"architectures\": [\"Qwen2ForCausalLM\"],"
                    " \"use_sliding_window\": false, \"sliding_window\": 4096, \"max_window_layers\": 21,"
                    " \"rope_scaling\": null, \"hidden_act\": \"silu\", \"attention_dropout\": 0.0}", &c, &err) == 0);
    CHECK(c.qkv_bias == 1 && c.o_bias == 0 && c.max_T == 32768); /* Qwen2Config's default context */
    CHECK(load_text("{" DIMS ", \"architectures\": [\"Qwen2ForCausalLM\"]}", &c, &err) == 0);
    CHECK(c.qkv_bias == 1 && c.o_bias == 0);
    CHECK(load_text("{" DIMS ", \"model_type\": \"llama\", \"attention_bias\": true, \"mlp_bias\": false,"
                    " \"head_dim\": 4}", &c, &err) == 0);
    CHECK(c.qkv_bias == 1 && c.o_bias == 1 && c.max_T == 2048);
    CHECK(load_text("{" DIMS ", \"model_type\": \"llama\", \"attention_bias\": false}", &c, &err) == 0);
    CHECK(c.qkv_bias == 0 && c.o_bias == 0);
    /* round trips: q/k/v biases save as Qwen2, all four as Llama's attention_bias */
    char path[700];
    snprintf(path, sizeof path, "%s/family.json", tmp);
    for (int o = 0; o < 2; o++) {
        c.qkv_bias = 1, c.o_bias = o;
        CHECK(dl_config_save(&c, path, &err) == 0 && dl_config_load(path, &d, &err) == 0);
        CHECK(memcmp(&c, &d, sizeof c) == 0);
    }
    c.qkv_bias = 0, c.o_bias = 1;
    CHECK(dl_config_save(&c, path, &err) == -1 && strstr(err.msg, "o_proj bias"));
}

static void test_refuse_keys(void) {
    static const struct { const char *extra, *needle; } cases[] = {
        {"\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}", "rope_scaling"},
        {"\"model_type\": \"qwen2\", \"use_sliding_window\": true", "use_sliding_window"},
        {"\"use_sliding_window\": \"no\"", "use_sliding_window"},
        {"\"sliding_window\": \"4096\"", "sliding_window"},
        {"\"max_window_layers\": 1.5", "max_window_layers"},
        {"\"hidden_act\": \"gelu\"", "hidden_act 'gelu'"},
        {"\"hidden_act\": 3", "hidden_act"},
        {"\"mlp_bias\": true", "mlp_bias"},
        {"\"head_dim\": 8", "head_dim 8"},
        {"\"head_dim\": \"4\"", "head_dim"},
        {"\"attention_bias\": 1", "attention_bias"},
        {"\"model_type\": \"mistral\"", "model_type 'mistral'"},
        {"\"model_type\": 7", "model_type"},
        {"\"architectures\": [\"MistralForCausalLM\"]", "architectures[0] 'MistralForCausalLM'"},
        {"\"architectures\": \"LlamaForCausalLM\"", "architectures"},
        {"\"architectures\": [1]", "architectures[0]"},
        {"\"model_type\": \"llama\", \"architectures\": [\"Qwen2ForCausalLM\"]", "disagrees"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "{" DIMS ", %s}", cases[i].extra);
        dl_config c;
        dl_error err = {{0}};
        int rc = load_text(text, &c, &err);
        CHECK_MSG(rc == -1 && strstr(err.msg, cases[i].needle), "%s: rc %d, '%s'", cases[i].extra, rc, err.msg);
    }
}

static void test_layout(void) {
    /* count by hand: V*C embed; per layer 2C norms + C*C q + 2*KVD*C k,v + C*C o + 3*F*C mlp;
     * C final norm; V*C lm_head when untied */
    dl_config c = {.V = 100, .C = 16, .F = 40, .L = 3, .NH = 4, .NKV = 2, .max_T = 32, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 0};
    int KVD = 2 * 4;
    size_t per_layer = 2 * 16 + 16 * 16 + 2 * (size_t)KVD * 16 + 16 * 16 + 3 * 40 * 16;
    size_t want = 100 * 16 + 3 * per_layer + 16 + 100 * 16;
    dl_layout lay;
    dl_error err;
    CHECK(dl_layout_build(&lay, &c, &err) == 0);
    CHECK(lay.total == want);
    CHECK(lay.n_views == 1 + 9 * 3 + 2);
    int k = dl_layout_find(&lay, "model.layers.2.self_attn.k_proj.weight");
    CHECK(k >= 0 && lay.views[k].shape[0] == KVD && lay.views[k].shape[1] == 16);
    CHECK(k == lay.layers[2].wk);
    CHECK(dl_layout_find(&lay, "lm_head.weight") == lay.lm_head && lay.lm_head != lay.embed);
    /* views tile the buffer without gaps or overlaps */
    size_t off = 0;
    int tiled = 1;
    for (int i = 0; i < lay.n_views; i++) {
        tiled &= lay.views[i].offset == off;
        off += lay.views[i].numel;
    }
    CHECK(tiled && off == lay.total);
    dl_layout_free(&lay);
    c.tied = 1;
    CHECK(dl_layout_build(&lay, &c, &err) == 0);
    CHECK(lay.total == want - 100 * 16 && lay.lm_head == lay.embed && dl_layout_find(&lay, "lm_head.weight") < 0);
    dl_layout_free(&lay);
    /* with q/k/v biases (KVD-sized for k and v) and an o bias: 4 more views a layer, in fused order */
    c.tied = 0, c.qkv_bias = 1, c.o_bias = 1;
    CHECK(dl_layout_build(&lay, &c, &err) == 0);
    CHECK(lay.n_views == 1 + 13 * 3 + 2 && lay.total == want + 3 * (size_t)(16 + 2 * KVD + 16));
    const dl_layer_views *lv = &lay.layers[1];
    CHECK(lv->bq == lv->wv + 1 && lv->bk == lv->bq + 1 && lv->bv == lv->bk + 1 && lv->wo == lv->bv + 1 && lv->bo == lv->wo + 1);
    CHECK(lay.views[lv->bk].ndim == 1 && lay.views[lv->bk].shape[0] == KVD);
    CHECK(strcmp(lay.views[lv->bo].name, "model.layers.1.self_attn.o_proj.bias") == 0);
    dl_layout_free(&lay);
    c.o_bias = 0;
    CHECK(dl_layout_build(&lay, &c, &err) == 0);
    CHECK(lay.n_views == 1 + 12 * 3 + 2 && lay.layers[0].bo == -1 && lay.layers[0].bq >= 0);
    dl_layout_free(&lay);
}

int main(void) {
    tmp = test_tmpdir("config");
    test_parse();
    test_reject();
    test_families();
    test_refuse_keys();
    test_layout();
    TEST_MAIN_END();
}
