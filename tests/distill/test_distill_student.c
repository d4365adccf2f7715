/* Where a student starts:
 * - a sharded Hugging Face folder given as --student (tests/fixtures/tiny_qwen2: an index and two
 *   shards, no model.safetensors) starts from its own weights, with a live teacher and with a
 *   harvest alike;
 * - --init-from-teacher copies a teacher's attention biases (q/k/v, o) with its weights, and
 *   refuses a student whose biases are not the teacher's. */
#include "distill_fixture.h"

#define QWEN DISTIL_SOURCE_DIR "/tests/fixtures/tiny_qwen2"

static char root[512], data[700], qwen_cfg[700], harvest[700];

/* A data folder tokenized with the fixture's tokenizer (its tokenizer.json copied alongside). */
static void qwen_data(void) {
    dl_error err;
    char p[1024];
    dl_tokenizer *tok = dl_tok_load(QWEN "/tokenizer.json", &err);
    if (!tok) fx_die("tokenizer", &err);
    char *text = fx_corpus(600, 3);
    dl_ivec ids = {0};
    if (dl_tok_encode(tok, text, strlen(text), 1, &ids, &err)) fx_die("encode", &err);
    size_t n_val = ids.len / 6;
    uint32_t V = (uint32_t)dl_tok_vocab_size(tok);
    snprintf(p, sizeof p, "%s/train.bin", data);
    if (dl_mkdir_p(data, &err) || dl_tokfile_write(p, ids.data, ids.len - n_val, V, &err)) fx_die("train.bin", &err);
    snprintf(p, sizeof p, "%s/val.bin", data);
    if (dl_tokfile_write(p, ids.data + ids.len - n_val, n_val, V, &err)) fx_die("val.bin", &err);
    snprintf(p, sizeof p, "%s/tokenizer.json", data);
    if (dl_copy_file(QWEN "/tokenizer.json", p, &err)) fx_die("tokenizer copy", &err);
    dl_ivec_free(&ids);
    dl_tok_free(tok);
    free(text);
}

/* A harvest of plain completions (no logprobs): the student trains on their text. */
static void qwen_harvest(void) {
    dl_error err;
    dl_buf b = {0};
    for (int i = 0; i < 24; i++)
        dl_buf_printf(&b, "{\"prompt\": \"the %s\", \"completion\": \" %s %s on the mat.\", \"finish_reason\": \"stop\"}\n",
                      FX_WORDS[i % 20], FX_WORDS[(i * 7) % 20], FX_WORDS[(i * 3 + 1) % 20]);
    if (dl_write_file_atomic(harvest, b.data, b.len, &err)) fx_die("harvest", &err);
    dl_buf_free(&b);
}

/* The largest difference between the weights of two model folders (1e9 when their shapes differ). */
static double weights_diff(const char *a, const char *b) {
    dl_error err;
    dl_model x, y;
    if (dl_model_load(&x, a, &err) || dl_model_load(&y, b, &err)) fx_die("load", &err);
    double d = x.lay.total == y.lay.total ? 0 : 1e9;
    for (size_t i = 0; i < x.lay.total && i < y.lay.total; i++) d = fmax(d, fabs((double)x.params[i] - y.params[i]));
    dl_model_free(&x);
    dl_model_free(&y);
    return d;
}

/* One update too small to move a weight (lr 1e-12). */
static dl_distill_opts one_step(const char *teacher, const char *student, const char *out) {
    dl_distill_opts o = fx_opts(teacher, student, data, out, 1);
    o.train.batch = 2;
    o.train.seq_len = 16;
    o.train.lr = 1e-12;
    o.train.min_lr = 0;
    o.train.warmup = 0;
    return o;
}

/* The fixture distilled into itself: a student that starts from the folder's weights matches the
 * teacher exactly (KL 0 at the first update); one that starts from the config alone does not. */
static void test_sharded_student_live(void) {
    dl_error err = {{0}};
    char out[800], fresh[800];
    snprintf(out, sizeof out, "%s/live", root);
    snprintf(fresh, sizeof fresh, "%s/live-fresh", root);
    dl_distill_opts o = one_step(QWEN, QWEN, out);
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    json_t *m = fx_metrics(out);
    double kd = fx_metric(m, 1, "kd");
    CHECK_MSG(fabs(kd) < 1e-5, "first-update KL %g: the student did not start from %s", kd, QWEN);
    json_decref(m);
    double d = weights_diff(out, QWEN);
    CHECK_MSG(d < 1e-6, "the student's weights differ from the folder's by %g", d);

    o = one_step(QWEN, qwen_cfg, fresh); /* the same config, random weights */
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    m = fx_metrics(fresh);
    CHECK_MSG(fx_metric(m, 1, "kd") > 1e-2, "a random student's KL %g", fx_metric(m, 1, "kd"));
    json_decref(m);
    CHECK(weights_diff(fresh, QWEN) > 1e-3);

    /* a folder with weights and --init-from-teacher: which weights to start from is ambiguous */
    snprintf(out, sizeof out, "%s/live-init", root);
    o = one_step(QWEN, QWEN, out);
    o.init_from_teacher = 1;
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "has weights of its own"));
}

static void test_sharded_student_harvest(void) {
    dl_error err = {{0}};
    char out[800];
    snprintf(out, sizeof out, "%s/harvest-run", root);
    dl_distill_opts o = one_step(NULL, QWEN, out);
    o.harvest = harvest;
    o.train.data = NULL;
    o.train.eval_interval = 0;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    double d = weights_diff(out, QWEN);
    CHECK_MSG(d < 1e-6, "the harvest student's weights differ from the folder's by %g", d);
}

static void make_model(dl_model *m, dl_config c, uint64_t seed) {
    dl_error err;
    if (dl_model_create(m, &c, &err)) fx_die("model", &err);
    dl_model_init_random(m, seed);
}

/* The largest difference between view sv of s and view tv of t. */
static double view_diff(const dl_model *s, int sv, const dl_model *t, int tv) {
    const dl_tensor_view *a = &s->lay.views[sv], *b = &t->lay.views[tv];
    if (a->numel != b->numel) return 1e9;
    double d = 0;
    for (size_t i = 0; i < a->numel; i++) d = fmax(d, fabs((double)s->params[a->offset + i] - t->params[b->offset + i]));
    return d;
}

/* Biases set to sin(k): init_random leaves them at zero, which a missed copy would also leave. */
static void fill_biases(dl_model *m) {
    size_t k = 1;
    for (int l = 0; l < m->cfg.L; l++) {
        const int v[4] = {m->lay.layers[l].bq, m->lay.layers[l].bk, m->lay.layers[l].bv, m->lay.layers[l].bo};
        for (int j = 0; j < 4; j++) {
            if (v[j] < 0) continue;
            const dl_tensor_view *b = &m->lay.views[v[j]];
            for (size_t i = 0; i < b->numel; i++) m->params[b->offset + i] = sinf((float)k++);
        }
    }
}

static void test_init_biases(void) {
    dl_error err = {{0}};
    dl_config tc = fx_config(64, 3), sc = fx_config(64, 2);
    /* Llama's attention_bias (q/k/v and o), then Qwen2's (q/k/v only) */
    const int qkv[2] = {1, 1}, ob[2] = {1, 0};
    const int pick[2] = {0, 2};
    for (int c = 0; c < 2; c++) {
        tc.qkv_bias = sc.qkv_bias = qkv[c], tc.o_bias = sc.o_bias = ob[c];
        dl_model t, s;
        make_model(&t, tc, 1);
        make_model(&s, sc, 2);
        fill_biases(&t);
        CHECK_MSG(dl_init_from_teacher(&s, &t, pick, &err) == 0, "%s", err.msg);
        double d = 0;
        for (int l = 0; l < 2; l++) {
            const dl_layer_views *a = &s.lay.layers[l], *b = &t.lay.layers[pick[l]];
            d = fmax(d, view_diff(&s, a->bq, &t, b->bq));
            d = fmax(d, view_diff(&s, a->bk, &t, b->bk));
            d = fmax(d, view_diff(&s, a->bv, &t, b->bv));
            if (ob[c]) d = fmax(d, view_diff(&s, a->bo, &t, b->bo));
            else CHECK(a->bo < 0 && b->bo < 0);
            d = fmax(d, view_diff(&s, a->wq, &t, b->wq));
        }
        CHECK_MSG(d == 0, "case %d: the student's biases differ from the teacher's layers by %g", c, d);
        /* the student's second layer holds the teacher's third, not its second */
        CHECK(view_diff(&s, s.lay.layers[1].bq, &t, t.lay.layers[1].bq) > 1e-3);
        dl_model_free(&t);
        dl_model_free(&s);
    }
    /* biases on one side only (or of another kind) are refused, both ways */
    const int t_b[4][2] = {{1, 1}, {0, 0}, {1, 1}, {1, 0}}, s_b[4][2] = {{0, 0}, {1, 0}, {1, 0}, {1, 1}};
    for (int c = 0; c < 4; c++) {
        tc.qkv_bias = t_b[c][0], tc.o_bias = t_b[c][1];
        sc.qkv_bias = s_b[c][0], sc.o_bias = s_b[c][1];
        err.msg[0] = 0;
        CHECK_MSG(dl_init_check(&tc, &sc, &err) != 0 && strstr(err.msg, "biases"), "case %d: '%s'", c, err.msg);
        dl_model t, s;
        make_model(&t, tc, 1);
        make_model(&s, sc, 2);
        CHECK(dl_init_from_teacher(&s, &t, pick, &err) != 0 && strstr(err.msg, "biases"));
        dl_model_free(&t);
        dl_model_free(&s);
    }
}

/* The same refusal before anything trains: a biased teacher's layers into a student without. */
static void test_init_biases_run(void) {
    dl_error err = {{0}};
    char plain[800], out[800];
    snprintf(plain, sizeof plain, "%s/plain.json", root);
    snprintf(out, sizeof out, "%s/init-run", root);
    /* the teacher's own config, biases and all: the student is the teacher */
    dl_distill_opts o = one_step(QWEN, qwen_cfg, out);
    o.init_from_teacher = 1;
    o.layers = "0,1";
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    double d = weights_diff(out, QWEN);
    CHECK_MSG(d < 1e-6, "the student differs from its teacher by %g", d);
    /* the fixture's shape as a Llama without biases */
    dl_config c;
    if (dl_config_load_any(QWEN, &c, &err)) fx_die("config", &err);
    c.qkv_bias = c.o_bias = 0;
    fx_write_config(plain, c);
    snprintf(out, sizeof out, "%s/init-run-refused", root);
    o.train.out = out;
    o.train.config = plain;
    CHECK_MSG(dl_distill(&o, &err) != 0 && strstr(err.msg, "biases"), "%s", err.msg);
    CHECK(!fx_has_checkpoint(out));
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(root, sizeof root, "%s", test_tmpdir("distill-student"));
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(qwen_cfg, sizeof qwen_cfg, "%s/config.json", QWEN);
    snprintf(harvest, sizeof harvest, "%s/harvest.jsonl", root);
    qwen_data();
    qwen_harvest();
    test_sharded_student_live();
    test_sharded_student_harvest();
    test_init_biases();
    test_init_biases_run();
    dl_error err;
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
