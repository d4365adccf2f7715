/* Model folders: save -> load is bit-identical (tied and untied); half-precision weights load
 * rounded; broken folders fail with the file and tensor named. */
#include "formats/safetensors.h"
#include "model/model.h"
#include "test.h"
#include <jansson.h>

static char g_dir[512];

static dl_config small_config(int tied) {
    dl_config c = {.V = 37, .C = 16, .F = 24, .L = 2, .NH = 4, .NKV = 2, .max_T = 32, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = tied, .bos_id = 1, .eos_id = 2};
    return c;
}

static const char *sub(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void make_model(dl_model *m, int tied, uint64_t seed) {
    dl_config c = small_config(tied);
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    /* norms are all 1 after init; make them distinct so a swapped tensor would show */
    for (size_t i = 0; i < m->lay.total; i++)
        if (m->params[i] == 1.0f) m->params[i] = 1.0f + 0.001f * (float)(i % 97);
}

static void test_round_trip(int tied) {
    dl_model m, back;
    make_model(&m, tied, 42 + (uint64_t)tied);
    const char *dir = sub(tied ? "tied" : "untied");
    dl_error err = {{0}};
    CHECK_MSG(dl_model_save(&m, dir, &err) == 0, "%s", err.msg);
    CHECK_MSG(dl_model_load(&back, dir, &err) == 0, "%s", err.msg);
    CHECK(back.lay.total == m.lay.total);
    CHECK(back.params && memcmp(back.params, m.params, m.lay.total * sizeof(float)) == 0);
    CHECK(back.cfg.V == 37 && back.cfg.NKV == 2 && back.cfg.tied == tied && back.cfg.eos_id == 2);
    CHECK(back.cfg.rms_eps == m.cfg.rms_eps && back.cfg.rope_theta == m.cfg.rope_theta);
    dl_model_free(&back);
    /* the file itself: F32, HF names, lm_head only when untied */
    dl_st_file f;
    CHECK(dl_st_open(&f, sub(tied ? "tied/model.safetensors" : "untied/model.safetensors"), &err) == 0);
    CHECK((dl_st_find(&f, "lm_head.weight") != NULL) == !tied);
    const dl_st_tensor *t = dl_st_find(&f, "model.layers.1.self_attn.k_proj.weight");
    CHECK(t && t->dtype == DL_F32 && t->ndim == 2 && t->shape[0] == 8 && t->shape[1] == 16);
    t = dl_st_find(&f, "model.norm.weight");
    CHECK(t && t->ndim == 1 && t->shape[0] == 16);
    CHECK(f.n == m.lay.n_views);
    CHECK(f.metadata && strcmp(json_string_value(json_object_get(f.metadata, "format")), "pt") == 0);
    dl_st_close(&f);
    dl_model_free(&m);
}

/* Writes dir/config.json for m and dir/model.safetensors from m's views, with edits:
 * skip names the view to leave out, retype writes every tensor as dtype, extra adds a tensor. */
typedef struct {
    const char *skip, *reshape, *extra;
    dl_dtype dtype;
} edit;

static void write_edited(const dl_model *m, const char *dir, edit e) {
    dl_error err;
    char p[1024];
    dl_mkdir_p(dir, &err);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (dl_config_save(&m->cfg, p, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_st_tensor *ts = calloc((size_t)m->lay.n_views + 1, sizeof *ts);
    uint16_t *half = calloc(m->lay.total, sizeof *half);
    int n = 0;
    for (int i = 0; i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        if (e.skip && strcmp(v->name, e.skip) == 0) continue;
        dl_st_tensor t = {.name = (char *)v->name, .dtype = DL_F32, .ndim = v->ndim, .shape = {v->shape[0], v->shape[1]},
                          .data = m->params + v->offset, .nbytes = v->numel * 4};
        if (e.reshape && strcmp(v->name, e.reshape) == 0) t.shape[0] = v->shape[1], t.shape[1] = v->shape[0];
        if (e.dtype == DL_F16 || e.dtype == DL_BF16) {
            for (size_t j = 0; j < v->numel; j++) {
                float x = m->params[v->offset + j];
                half[v->offset + j] = e.dtype == DL_F16 ? dl_f32_to_f16(x) : dl_f32_to_bf16(x);
            }
            t.dtype = e.dtype, t.data = half + v->offset, t.nbytes = v->numel * 2;
        } else if (e.dtype == DL_I32) {
            t.dtype = DL_I32;
        }
        ts[n++] = t;
    }
    if (e.extra) ts[n++] = (dl_st_tensor){.name = (char *)e.extra, .dtype = DL_F32, .ndim = 1, .shape = {16},
                                          .data = m->params, .nbytes = 64};
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (dl_st_write(p, ts, n, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    free(ts);
    free(half);
}

static void expect_load_error(const char *dir, const char *want1, const char *want2, int line) {
    dl_model m;
    dl_error err = {{0}};
    int rc = dl_model_load(&m, dir, &err);
    if (rc == 0) dl_model_free(&m);
    if (rc == 0 || !strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2))) {
        t_fail++;
        fprintf(stderr, "line %d: expected an error with '%s' '%s', got rc=%d '%s'\n", line, want1, want2 ? want2 : "",
                rc, err.msg);
    } else {
        t_pass++;
    }
}
#define EXPECT_LOAD_ERROR(dir, a, b) expect_load_error(dir, a, b, __LINE__)

static void test_half_weights(dl_dtype dt) {
    dl_model m, back;
    make_model(&m, 0, 9);
    const char *dir = sub(dt == DL_F16 ? "f16" : "bf16");
    write_edited(&m, dir, (edit){.dtype = dt});
    dl_error err = {{0}};
    CHECK_MSG(dl_model_load(&back, dir, &err) == 0, "%s", err.msg);
    int bad = 0;
    for (size_t i = 0; i < m.lay.total && back.params; i++) {
        float x = m.params[i], want = dt == DL_F16 ? dl_f16_to_f32(dl_f32_to_f16(x)) : dl_bf16_to_f32(dl_f32_to_bf16(x));
        float rel = dt == DL_F16 ? 1.0f / 1024 : 1.0f / 128;
        bad += back.params[i] != want || fabsf(back.params[i] - x) > rel * fabsf(x) + 1e-7f;
    }
    CHECK_MSG(bad == 0, "%d weights differ", bad);
    dl_model_free(&back);
    dl_model_free(&m);
}

static void test_errors(void) {
    dl_model m;
    make_model(&m, 0, 5);
    dl_model tm;
    make_model(&tm, 1, 6);

    write_edited(&m, sub("missing"), (edit){.skip = "model.layers.1.mlp.up_proj.weight"});
    EXPECT_LOAD_ERROR(sub("missing"), "missing/model.safetensors", "'model.layers.1.mlp.up_proj.weight' is missing");

    write_edited(&m, sub("nohead"), (edit){.skip = "lm_head.weight"});
    EXPECT_LOAD_ERROR(sub("nohead"), "model.safetensors", "'lm_head.weight' is missing");

    write_edited(&m, sub("shape"), (edit){.reshape = "model.layers.0.mlp.down_proj.weight"});
    EXPECT_LOAD_ERROR(sub("shape"), "'model.layers.0.mlp.down_proj.weight' has shape [24, 16]", "needs [16, 24]");

    write_edited(&m, sub("ints"), (edit){.dtype = DL_I32});
    EXPECT_LOAD_ERROR(sub("ints"), "model.embed_tokens.weight", "not a float");

    write_edited(&m, sub("extra"), (edit){.extra = "model.layers.2.input_layernorm.weight"});
    EXPECT_LOAD_ERROR(sub("extra"), "unexpected tensor 'model.layers.2.input_layernorm.weight'", NULL);

    /* tied: a tied copy of lm_head and a rotary table are tolerated */
    write_edited(&tm, sub("tiedextra"), (edit){.extra = "lm_head.weight"});
    dl_error err = {{0}};
    dl_model back;
    CHECK_MSG(dl_model_load(&back, sub("tiedextra"), &err) == 0, "%s", err.msg);
    dl_model_free(&back);
    write_edited(&m, sub("rotary"), (edit){.extra = "model.layers.0.self_attn.rotary_emb.inv_freq"});
    CHECK_MSG(dl_model_load(&back, sub("rotary"), &err) == 0, "%s", err.msg);
    dl_model_free(&back);

    /* truncated weights */
    CHECK(dl_model_save(&m, sub("trunc"), &err) == 0);
    char *data;
    size_t len;
    CHECK(dl_read_file(sub("trunc/model.safetensors"), &data, &len, &err) == 0);
    CHECK(dl_write_file_atomic(sub("trunc/model.safetensors"), data, len - 100, &err) == 0);
    free(data);
    EXPECT_LOAD_ERROR(sub("trunc"), "trunc/model.safetensors", "past the end");

    /* missing files and folders */
    CHECK(dl_model_save(&m, sub("nofile"), &err) == 0);
    remove(sub("nofile/model.safetensors"));
    EXPECT_LOAD_ERROR(sub("nofile"), "nofile/model.safetensors", "missing");
    CHECK(dl_write_file_atomic(sub("nofile/model.safetensors.index.json"), "{}", 2, &err) == 0);
    EXPECT_LOAD_ERROR(sub("nofile"), "model.safetensors.index.json", "'weight_map' is missing");
    CHECK(dl_model_save(&m, sub("noconfig"), &err) == 0);
    remove(sub("noconfig/config.json"));
    EXPECT_LOAD_ERROR(sub("noconfig"), "noconfig/config.json", NULL);
    EXPECT_LOAD_ERROR(sub("nowhere"), "nowhere", "not a model folder");

    /* config says 3 layers, the file has 2 */
    CHECK(dl_model_save(&m, sub("layers"), &err) == 0);
    dl_config c3 = small_config(0);
    c3.L = 3;
    CHECK(dl_config_save(&c3, sub("layers/config.json"), &err) == 0);
    EXPECT_LOAD_ERROR(sub("layers"), "'model.layers.2.input_layernorm.weight' is missing", NULL);

    /* a config with huge (valid) dimensions next to a small file fails before allocating */
    CHECK(dl_model_save(&m, sub("huge"), &err) == 0);
    dl_config big = small_config(0);
    big.V = 1 << 24, big.C = 4096, big.F = 16384, big.NH = 32, big.NKV = 8;
    CHECK(dl_config_save(&big, sub("huge/config.json"), &err) == 0);
    EXPECT_LOAD_ERROR(sub("huge"), "'model.embed_tokens.weight' has shape [37, 16]", "needs [16777216, 4096]");

    dl_model_free(&m);
    dl_model_free(&tm);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("model-io"));
    test_round_trip(0);
    test_round_trip(1);
    test_half_weights(DL_F16);
    test_half_weights(DL_BF16);
    test_errors();
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
