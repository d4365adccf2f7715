/* THE resume test: 20 updates in one go, and the same run stopped after 13 updates, its step-13
 * checkpoint lost (as in a crash), resumed from step 10 and finished, give the same metrics and
 * bit-identical weights and optimizer state. */
#include "train_fixture.h"

static char root[512], data[600], run_a[600], run_b[600];

/* The numbers that depend on the computation, not on the clock. */
static const char *const KEYS[] = {"step", "loss", "lr", "grad_norm", "val_loss", "val_ppl", NULL};

static int same_metrics(json_t *a, json_t *b) {
    if (!a || !b || json_array_size(a) != json_array_size(b)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        for (const char *const *k = KEYS; *k; k++) {
            json_t *x = json_object_get(json_array_get(a, i), *k), *y = json_object_get(json_array_get(b, i), *k);
            if (!x != !y || (x && json_number_value(x) != json_number_value(y))) {
                fprintf(stderr, "metrics line %zu differs in '%s'\n", i, *k);
                return 0;
            }
        }
    return 1;
}

static long count_with(json_t *lines, const char *key) {
    long n = 0;
    for (size_t i = 0; i < json_array_size(lines); i++) n += json_object_get(json_array_get(lines, i), key) != NULL;
    return n;
}

static double loss_at(json_t *lines, long step) {
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *o = json_array_get(lines, i);
        if (json_integer_value(json_object_get(o, "step")) == step && json_object_get(o, "loss"))
            return json_number_value(json_object_get(o, "loss"));
    }
    return NAN;
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

static void test_resume_matches(void) {
    dl_error err = {{0}};
    dl_train_opts a = fixture_opts(data, run_a, 20);
    CHECK_MSG(dl_train(&a, &err) == 0, "%s", err.msg);

    dl_train_opts b = fixture_opts(data, run_b, 20);
    b.stop_at = 13;
    CHECK_MSG(dl_train(&b, &err) == 0, "%s", err.msg);
    char ck[800];
    snprintf(ck, sizeof ck, "%s/checkpoints/step_00000013", run_b);
    CHECK(dl_is_dir(ck));
    CHECK(!fixture_exists(run_b, "model.safetensors")); /* not finished, so not a model folder yet */
    CHECK(dl_rm_rf(ck, &err) == 0); /* the crash: updates 11..13 are in the log, not in a checkpoint */
    json_t *partial = fixture_metrics(run_b);
    CHECK(loss_at(partial, 13) == loss_at(partial, 13)); /* present (not NaN) before the resume */
    json_decref(partial);

    b.stop_at = 0;
    b.resume = 1;
    CHECK_MSG(dl_train(&b, &err) == 0, "%s", err.msg);

    json_t *ma = fixture_metrics(run_a), *mb = fixture_metrics(run_b);
    CHECK(ma && json_array_size(ma) == 20 + 4); /* 20 updates, evaluations at 5, 10, 15, 20 */
    CHECK(count_with(mb, "val_loss") == 4);
    CHECK(same_metrics(ma, mb));
    CHECK(loss_at(ma, 20) < loss_at(ma, 1)); /* it learned something */
    json_decref(ma);
    json_decref(mb);

    dl_model ma_m = {0}, mb_m = {0};
    CHECK_MSG(dl_model_load(&ma_m, run_a, &err) == 0, "%s", err.msg);
    CHECK_MSG(dl_model_load(&mb_m, run_b, &err) == 0, "%s", err.msg);
    CHECK(ma_m.lay.total > 0 && ma_m.lay.total == mb_m.lay.total);
    CHECK(ma_m.params && mb_m.params && memcmp(ma_m.params, mb_m.params, ma_m.lay.total * sizeof(float)) == 0);
    dl_model_free(&ma_m);
    dl_model_free(&mb_m);

    char pa[800], pb[800];
    snprintf(pa, sizeof pa, "%s/checkpoints/step_00000020/optimizer.safetensors", run_a);
    snprintf(pb, sizeof pb, "%s/checkpoints/step_00000020/optimizer.safetensors", run_b);
    CHECK(same_file(pa, pb));
}

/* Resuming a finished run does nothing but rewrite the final model folder. */
static void test_resume_finished(void) {
    dl_error err = {{0}};
    dl_train_opts b = fixture_opts(data, run_b, 20);
    b.resume = 1;
    CHECK_MSG(dl_train(&b, &err) == 0, "%s", err.msg);
    json_t *m = fixture_metrics(run_b);
    CHECK(m && json_array_size(m) == 24);
    json_decref(m);
}

/* A shorter run that stops at its first checkpoint and resumes with a longer schedule: the
 * first updates agree with the 20-update run only where the schedules agree (warmup). */
static void test_extend(void) {
    dl_error err = {{0}};
    char run_c[700];
    snprintf(run_c, sizeof run_c, "%s/c", root);
    dl_train_opts c = fixture_opts(data, run_c, 20);
    c.steps = 3;
    c.eval_interval = 0;
    CHECK_MSG(dl_train(&c, &err) == 0, "%s", err.msg);
    c.steps = 6;
    c.resume = 1;
    CHECK_MSG(dl_train(&c, &err) == 0, "%s", err.msg);
    /* a --stop-at the run is already past stops at once, without an update */
    c.steps = 9;
    c.stop_at = 4;
    CHECK_MSG(dl_train(&c, &err) == 0, "%s", err.msg);
    json_t *m = fixture_metrics(run_c), *ma = fixture_metrics(run_a);
    CHECK(m && json_array_size(m) == 6);
    CHECK(loss_at(m, 1) == loss_at(ma, 1) && loss_at(m, 3) == loss_at(ma, 3));
    json_decref(m);
    json_decref(ma);
}

/* The same with two threads (kernels split their loops; reductions must still repeat exactly).
 * Short, because OpenMP barriers crawl on a loaded machine. */
static void test_resume_threaded(void) {
    dl_error err = {{0}};
    char run_t1[700], run_t2[700];
    snprintf(run_t1, sizeof run_t1, "%s/t1", root);
    snprintf(run_t2, sizeof run_t2, "%s/t2", root);
    dl_train_opts o = fixture_opts(data, run_t1, 6);
    o.threads = 2;
    o.eval_interval = 0;
    o.save_interval = 0;
    CHECK_MSG(dl_train(&o, &err) == 0, "%s", err.msg);
    o.out = run_t2;
    o.stop_at = 3;
    CHECK_MSG(dl_train(&o, &err) == 0, "%s", err.msg);
    o.stop_at = 0;
    o.resume = 1;
    CHECK_MSG(dl_train(&o, &err) == 0, "%s", err.msg);
    dl_model m1 = {0}, m2 = {0};
    CHECK(dl_model_load(&m1, run_t1, &err) == 0 && dl_model_load(&m2, run_t2, &err) == 0);
    CHECK(m1.params && m2.params && m1.lay.total == m2.lay.total &&
          memcmp(m1.params, m2.params, m1.lay.total * sizeof(float)) == 0);
    dl_model_free(&m1);
    dl_model_free(&m2);
}

/* A resume whose config differs from the checkpoint's only in its attention biases is refused
 * (Llama's attention_bias: q/k/v and o; Qwen2: q/k/v only), as any other config change is. */
static void test_resume_other_biases(void) {
    dl_error err = {{0}};
    char run_d[700], cfg[700];
    snprintf(run_d, sizeof run_d, "%s/d", root);
    snprintf(cfg, sizeof cfg, "%s/biased.json", root);
    dl_train_opts d = fixture_opts(data, run_d, 4);
    d.eval_interval = 0;
    d.save_interval = 2;
    d.stop_at = 2;
    CHECK_MSG(dl_train(&d, &err) == 0, "%s", err.msg);
    dl_config c;
    if (dl_config_load(TINY_CONFIG, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    const int qkv[2] = {1, 1}, o[2] = {1, 0};
    for (int i = 0; i < 2; i++) {
        c.qkv_bias = qkv[i], c.o_bias = o[i];
        CHECK(dl_config_save(&c, cfg, &err) == 0);
        dl_train_opts r = d;
        r.config = cfg, r.resume = 1, r.stop_at = 0;
        CHECK_MSG(dl_train(&r, &err) != 0 && strstr(err.msg, "config.json differs"), "biases %d/%d: %s", qkv[i], o[i],
                  err.msg);
    }
    /* the run's own config still resumes */
    d.resume = 1, d.stop_at = 0;
    CHECK_MSG(dl_train(&d, &err) == 0, "%s", err.msg);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(root, sizeof root, "%s", test_tmpdir("resume"));
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(run_a, sizeof run_a, "%s/a", root);
    snprintf(run_b, sizeof run_b, "%s/b", root);
    fixture_data(data, 6000, 1200, 512);
    test_resume_matches();
    test_resume_finished();
    test_extend();
    test_resume_threaded();
    test_resume_other_biases();
    dl_error err;
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
