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
}

int main(void) {
    tmp = test_tmpdir("config");
    test_parse();
    test_reject();
    test_layout();
    TEST_MAIN_END();
}
