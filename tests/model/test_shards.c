/* Sharded model folders (model.safetensors.index.json + shard files): a good folder loads the
 * same parameters as one file; a broken index or shard fails with the index or shard and the
 * tensor named, never a crash, an access outside the folder, or a huge allocation. */
#include "formats/safetensors.h"
#include "model/model.h"
#include "test.h"

static char g_dir[512];

static const char *sub_dir(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static void make_model(dl_model *m) {
    dl_config c = {.V = 37, .C = 16, .F = 24, .L = 2, .NH = 4, .NKV = 2, .max_T = 32, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 0, .bos_id = -1, .eos_id = -1, .qkv_bias = 1};
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_rng r;
    dl_rng_seed(&r, 4);
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] = dl_rng_normal(&r);
}

/* How a folder deviates from the good one: shard A holds views [0, split), shard B the rest. */
typedef struct {
    const char *dup;        /* this view is also written into shard B (and indexed in A) */
    const char *extra;      /* an extra 4-float tensor in shard B, indexed there */
    const char *unindexed;  /* this view is left out of the index */
    const char *misplaced;  /* the index puts this view (of shard A) in shard B */
    const char *phantom;    /* the index lists this name in shard A, which does not hold it */
    const char *drop;       /* this view is in neither shard nor the index */
    const char *reshape;    /* this view is written with its dimensions swapped */
    const char *name_b;     /* the index's name for shard B (default: the real one) */
    const char *index_text; /* the whole index, verbatim */
    int no_b;               /* shard B is not written */
} edit;

#define SHARD_A "model-00001-of-00002.safetensors"
#define SHARD_B "model-00002-of-00002.safetensors"

static int is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

static void write_shard(const dl_model *m, const char *dir, const char *file, int from, int to, const edit *e) {
    dl_st_tensor *ts = calloc((size_t)m->lay.n_views + 2, sizeof *ts);
    static const float four[4] = {1, 2, 3, 4};
    int n = 0;
    for (int i = from; i < to; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        if (is(e->drop, v->name)) continue;
        dl_st_tensor t = {.name = (char *)v->name, .dtype = DL_F32, .ndim = v->ndim, .shape = {v->shape[0], v->shape[1]},
                          .data = m->params + v->offset, .nbytes = v->numel * 4};
        if (is(e->reshape, v->name)) t.shape[0] = v->shape[1], t.shape[1] = v->shape[0];
        ts[n++] = t;
    }
    if (from > 0 && e->dup) {
        const dl_tensor_view *v = &m->lay.views[dl_layout_find(&m->lay, e->dup)];
        ts[n++] = (dl_st_tensor){.name = (char *)v->name, .dtype = DL_F32, .ndim = v->ndim,
                                 .shape = {v->shape[0], v->shape[1]}, .data = m->params + v->offset,
                                 .nbytes = v->numel * 4};
    }
    if (from > 0 && e->extra)
        ts[n++] = (dl_st_tensor){.name = (char *)e->extra, .dtype = DL_F32, .ndim = 1, .shape = {4}, .data = four,
                                 .nbytes = 16};
    char p[2200];
    dl_error err;
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (dl_st_write(p, ts, n, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    free(ts);
}

static void add_entry(dl_buf *b, const char *name, const char *file) {
    dl_buf_printf(b, "%s\"%s\": \"%s\"", b->data[b->len - 1] == '{' ? "" : ", ", name, file);
}

static void write_index(const dl_model *m, const char *dir, int split, const edit *e) {
    dl_buf b = {0};
    dl_buf_printf(&b, "{\"metadata\": {\"total_size\": %zu}, \"weight_map\": {", m->lay.total * 4);
    for (int i = 0; i < m->lay.n_views; i++) {
        const char *name = m->lay.views[i].name;
        if (is(e->drop, name) || is(e->unindexed, name)) continue;
        const char *file = i < split ? SHARD_A : e->name_b ? e->name_b : SHARD_B;
        add_entry(&b, name, is(e->misplaced, name) ? SHARD_B : file);
    }
    if (e->extra) add_entry(&b, e->extra, SHARD_B);
    if (e->phantom) add_entry(&b, e->phantom, SHARD_A);
    dl_buf_printf(&b, "}}");
    char p[1024];
    dl_error err;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    const char *text = e->index_text ? e->index_text : b.data;
    if (dl_write_file_atomic(p, text, strlen(text), &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_buf_free(&b);
}

static const char *write_folder(const dl_model *m, const char *name, edit e) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, name);
    dl_error err;
    char p[1100];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (dl_mkdir_p(dir, &err) || dl_config_save(&m->cfg, p, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    int split = m->lay.layers[1].ln1;
    write_shard(m, dir, SHARD_A, 0, split, &e);
    if (!e.no_b) write_shard(m, dir, SHARD_B, split, m->lay.n_views, &e);
    write_index(m, dir, split, &e);
    return dir;
}

static void expect_error(const char *dir, const char *want1, const char *want2, int line) {
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
#define EXPECT_ERROR(dir, a, b) expect_error(dir, a, b, __LINE__)

static void test_good(const dl_model *m) {
    dl_model back;
    dl_error err = {{0}};
    const char *dir = write_folder(m, "good", (edit){0});
    CHECK_MSG(dl_model_load(&back, dir, &err) == 0, "%s", err.msg);
    CHECK(back.lay.total == m->lay.total && memcmp(back.params, m->params, m->lay.total * 4) == 0);
    CHECK(back.cfg.qkv_bias == 1 && dl_model_has_weights(dir));
    dl_model_free(&back);
    /* rotary inv_freq buffers (older checkpoints) are ignored */
    dir = write_folder(m, "rotary", (edit){.extra = "model.layers.1.self_attn.rotary_emb.inv_freq"});
    CHECK_MSG(dl_model_load(&back, dir, &err) == 0, "%s", err.msg);
    dl_model_free(&back);
    /* model.safetensors wins over an index beside it (as transformers does) */
    CHECK(dl_model_save(m, sub_dir("both"), &err) == 0);
    write_index(m, sub_dir("both"), 1, &(edit){.index_text = "not json"});
    CHECK_MSG(dl_model_load(&back, sub_dir("both"), &err) == 0, "%s", err.msg);
    dl_model_free(&back);
}

static void test_bad_index(const dl_model *m) {
    static const struct { const char *text, *want; } cases[] = {
        {"not json", "invalid JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"metadata\": {}}", "'weight_map' is missing"},
        {"{\"weight_map\": []}", "'weight_map' must be an object"},
        {"{\"weight_map\": {}}", "'weight_map' is empty"},
        {"{\"metadata\": \"x\", \"weight_map\": {\"a\": \"b\"}}", "'metadata' must be an object"},
        {"{\"weight_map\": {\"model.norm.weight\": 3}}", "weight_map['model.norm.weight'] must be a shard file name"},
        {"{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", "duplicate"},
        {"{\"weight_map\": {\"a\": \"../model.safetensors\"}}", "not a plain file name"},
        {"{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a plain file name"},
        {"{\"weight_map\": {\"a\": \"sub/x.safetensors\"}}", "not a plain file name"},
        {"{\"weight_map\": {\"a\": \"..\"}}", "not a plain file name"},
        {"{\"weight_map\": {\"a\": \"\"}}", "not a plain file name"},
        {"{\"weight_map\": {\"a\": \"nothere.safetensors\"}}", "shard 'nothere.safetensors'"},
        {"{\"weight_map\": {\"a\": \"config.json\"}}", "config.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *dir = write_folder(m, "badindex", (edit){.index_text = cases[i].text});
        EXPECT_ERROR(dir, "model.safetensors.index.json", cases[i].want);
    }
    /* thousands of distinct shard names are refused before anything is opened */
    dl_buf b = {0};
    dl_buf_printf(&b, "{\"weight_map\": {");
    for (int i = 0; i < 5000; i++) dl_buf_printf(&b, "%s\"t%d\": \"s%d.safetensors\"", i ? ", " : "", i, i);
    dl_buf_printf(&b, "}}");
    EXPECT_ERROR(write_folder(m, "manyshards", (edit){.index_text = b.data}), "5000 shard files", NULL);
    dl_buf_free(&b);
}

static void test_disagreements(const dl_model *m) {
    const char *q = "model.layers.0.self_attn.q_proj.bias", *up = "model.layers.1.mlp.up_proj.weight";
    EXPECT_ERROR(write_folder(m, "noshard", (edit){.no_b = 1}), "shard '" SHARD_B "'", "missing");
    EXPECT_ERROR(write_folder(m, "dotdot", (edit){.name_b = "../" SHARD_B}), "not a plain file name", NULL);
    EXPECT_ERROR(write_folder(m, "dup", (edit){.dup = q}), "'model.layers.0.self_attn.q_proj.bias' is in two shards",
                 SHARD_B);
    EXPECT_ERROR(write_folder(m, "unindexed", (edit){.unindexed = up}), "not in the index's weight_map", up);
    EXPECT_ERROR(write_folder(m, "misplaced", (edit){.misplaced = q}), "the index puts tensor", q);
    EXPECT_ERROR(write_folder(m, "phantom", (edit){.phantom = "model.layers.9.mlp.up_proj.weight"}),
                 "lists tensor 'model.layers.9.mlp.up_proj.weight'", "does not hold it");
    EXPECT_ERROR(write_folder(m, "drop", (edit){.drop = up}), "model.safetensors.index.json", "'model.layers.1.mlp.up_proj.weight' is missing");
    EXPECT_ERROR(write_folder(m, "extra", (edit){.extra = "model.layers.1.mlp.fc.weight"}), "unexpected tensor 'model.layers.1.mlp.fc.weight'", NULL);
    EXPECT_ERROR(write_folder(m, "shape", (edit){.reshape = up}), "has shape [16, 24]", "needs [24, 16]");
    /* a truncated shard is caught by the safetensors checks, naming the shard */
    const char *dir = write_folder(m, "trunc", (edit){0});
    char p[1100], *data;
    size_t len;
    dl_error err;
    snprintf(p, sizeof p, "%s/%s", dir, SHARD_B);
    CHECK(dl_read_file(p, &data, &len, &err) == 0);
    CHECK(dl_write_file_atomic(p, data, len - 9, &err) == 0);
    free(data);
    EXPECT_ERROR(dir, SHARD_B, "past the end");
    /* no weights at all */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    remove(p);
    CHECK(!dl_model_has_weights(dir));
    EXPECT_ERROR(dir, "model.safetensors: missing", "model.safetensors.index.json");
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("shards"));
    dl_model m;
    make_model(&m);
    test_good(&m);
    test_bad_index(&m);
    test_disagreements(&m);
    dl_model_free(&m);
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
