/* distil teacher-cache, distil distill and distil eval --teacher through the binary: they run,
 * write what their help says, and bad pairings end in "distil: error: ..." before training. */
#include "cli_util.h"
#include "distill/distill_fixture.h"

static char tmp[512], data[700], teacher[700], foreign[700], other_data[700], student[700], cache[700];

static void test_help(void) {
    run_result *r = run_distil(tmp, "distill --help");
    CHECK(r->status == 0);
    static const char *const flags[] = {"--teacher", "--cache", "--student", "--loss", "--temperature", "--beta",
                                        "--skew-alpha", "--ce-weight", "--seq-kd", "--lmbda", "--init-from-teacher",
                                        "--layers", "--steps", "--grad-accum", "--resume", "--stop-at", NULL};
    for (const char *const *f = flags; *f; f++) CHECK_MSG(strstr(r->out, *f) != NULL, "%s missing from help", *f);
    r = run_distil(tmp, "teacher-cache --help");
    CHECK(r->status == 0 && strstr(r->out, "--top-k") && strstr(r->out, "4K + 4 bytes"));
    r = run_distil(tmp, "--help");
    CHECK(strstr(r->out, "distill") && strstr(r->out, "teacher-cache"));
}

static void test_cache_and_distill(void) {
    char a[6000], run1[800], run2[800];
    snprintf(a, sizeof a, "teacher-cache --teacher %s --data %s --top-k 8 --seq-len 32 --out %s --threads 1", teacher,
             data, cache);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strstr(r->err, "36 bytes per token"), "status %d: %s", r->status, r->err);

    snprintf(run1, sizeof run1, "%s/run1", tmp);
    snprintf(a, sizeof a, "distill --cache %s --student %s --data %s --out %s --steps 4 --batch 4 --seq-len 32 "
                          "--eval-interval 0 --threads 1 --log-interval 1 --loss srkl --skew-alpha 0.2", cache, student,
             data, run1);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK(fx_has_checkpoint(run1));
    json_t *m = fx_metrics(run1);
    CHECK(json_array_size(m) == 4 && fx_metric(m, 4, "kd") > 0);
    json_decref(m);

    snprintf(run2, sizeof run2, "%s/run2", tmp);
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --steps 3 --batch 4 --seq-len 32 "
                          "--eval-interval 3 --eval-tokens 128 --threads 1 --loss jsd --beta 0.3 --temperature 2 "
                          "--ce-weight 0.1", teacher, student, data, run2);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    m = fx_metrics(run2);
    CHECK(fx_metric(m, 3, "val_kl") > 0 && fx_metric(m, 3, "val_agreement") >= 0);
    json_decref(m);

    /* eval --teacher: the student against the teacher, and the teacher against itself */
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32 --json", run2, teacher, data);
    r = run_distil(tmp, a);
    json_error_t je;
    json_t *o = json_loads(r->out, 0, &je);
    CHECK_MSG(r->status == 0 && o, "status %d: %s", r->status, r->err);
    double kl = json_number_value(json_object_get(o, "kl"));
    CHECK(kl > 0 && json_object_get(o, "agreement") && json_object_get(o, "top5") && json_object_get(o, "mean_loss"));
    json_decref(o);
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32 --json", teacher, teacher, data);
    r = run_distil(tmp, a);
    o = json_loads(r->out, 0, &je);
    CHECK(o && fabs(json_number_value(json_object_get(o, "kl"))) < 1e-9 &&
          json_number_value(json_object_get(o, "agreement")) == 1.0 &&
          json_number_value(json_object_get(o, "top5")) == 1.0);
    json_decref(o);
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32", run2, teacher, data);
    r = run_distil(tmp, a);
    CHECK(r->status == 0 && strstr(r->out, "agreement") && strstr(r->out, "perplexity"));
}

static void test_errors(void) {
    char a[6000], out[800];
    snprintf(out, sizeof out, "%s/bad", tmp);
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --steps 2", foreign, student, data, out);
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "distil harvest");
    CHECK(!dl_path_exists(out));
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --loss kl", teacher, student, data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "fkl");
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --seq-len 32 --init-from-teacher --layers 0,7",
             teacher, student, data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "layer 7 does not exist");
    snprintf(a, sizeof a, "distill --cache %s --student %s --data %s --out %s --seq-len 16", cache, student, data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--seq-len 32");
    snprintf(a, sizeof a, "distill --cache %s --student %s --data %s --out %s --seq-len 32", cache, student,
             other_data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "another tokenizer");
    CHECK(!dl_path_exists(out));
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s", teacher, foreign, data);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "black-box");
    snprintf(a, sizeof a, "teacher-cache --teacher %s --data %s --out %s/c --top-k 0", teacher, data, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--top-k");
    r = run_distil(tmp, "distill --student x --data y --out z");
    CHECK_CLEAN_ERROR(r, "--teacher");
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    (void)write_text;
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("distill-cli"));
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(other_data, sizeof other_data, "%s/data2", tmp);
    snprintf(teacher, sizeof teacher, "%s/teacher", tmp);
    snprintf(foreign, sizeof foreign, "%s/foreign", tmp);
    snprintf(student, sizeof student, "%s/student.json", tmp);
    snprintf(cache, sizeof cache, "%s/k8.cache", tmp);
    int V = fx_data(data, 300, 0), V2 = fx_data(other_data, 290, 1);
    fx_trained_teacher(teacher, fx_config(V, 2), data, 30);
    fx_model(foreign, fx_config(V2, 2), 1, 1.0f, other_data);
    fx_write_config(student, fx_config(V, 2));
    test_help();
    test_cache_and_distill();
    test_errors();
    dl_error err;
    CHECK(dl_rm_rf(tmp, &err) == 0);
    TEST_MAIN_END();
}
