/* Checkpoint folders: complete, optimizer keyed by parameter name, the last two kept; refusals
 * (fresh start over a run, mismatched resume, bad options and data); SIGINT mid-run. */
#include "formats/safetensors.h"
#include "train_fixture.h"
#include <signal.h>
#include <sys/wait.h>

static char root[512], data[600];

static void run_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", root, name); }

static void check_complete(const char *run, long step) {
    char dir[800];
    snprintf(dir, sizeof dir, "%s/checkpoints/step_%08ld", run, step);
    const char *files[] = {"model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors",
                           "trainer_state.json"};
    for (int i = 0; i < 5; i++) CHECK_MSG(fixture_exists(dir, files[i]), "%s/%s", dir, files[i]);

    dl_error err = {{0}};
    char p[900];
    snprintf(p, sizeof p, "%s/optimizer.safetensors", dir);
    dl_st_file f;
    CHECK_MSG(dl_st_open(&f, p, &err) == 0, "%s", err.msg);
    const dl_st_tensor *q = dl_st_find(&f, "exp_avg.model.layers.0.self_attn.q_proj.weight");
    const dl_st_tensor *k = dl_st_find(&f, "exp_avg_sq.model.layers.1.self_attn.k_proj.weight");
    CHECK(q && q->dtype == DL_F32 && q->ndim == 2 && q->shape[0] == 64 && q->shape[1] == 64);
    CHECK(k && k->dtype == DL_F32 && k->ndim == 2 && k->shape[0] == 32 && k->shape[1] == 64); /* NKV 2 x HS 16 */
    CHECK(dl_st_find(&f, "exp_avg.lm_head.weight") && dl_st_find(&f, "exp_avg_sq.model.norm.weight"));
    /* tiny.json: embed, lm_head, final norm and 9 tensors per layer, two moments each */
    CHECK(f.n == 2 * (3 + 9 * 2));
    int nonzero = 0;
    if (q)
        for (size_t i = 0; i < q->numel; i++) nonzero |= ((const float *)q->data)[i] != 0.0f;
    CHECK(nonzero);
    dl_st_close(&f);

    snprintf(p, sizeof p, "%s/trainer_state.json", dir);
    json_t *s = dl_json_load(p, &err);
    CHECK(s && json_integer_value(json_object_get(s, "step")) == step);
    json_t *pos = json_object_get(s, "data_position");
    CHECK(pos && json_is_string(pos) && strtoll(json_string_value(pos), NULL, 10) == step * 2); /* grad_accum 2 */
    json_t *opts = json_object_get(s, "options");
    CHECK(opts && json_integer_value(json_object_get(opts, "batch")) == 4 &&
          json_integer_value(json_object_get(opts, "seq_len")) == 32);
    json_decref(s);
}

static int count_entries(const char *dir) {
    char cmd[900];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 2", dir);
    return system(cmd) == 0 ? 2 : -1;
}

static void test_folder(void) {
    char run[700], ckroot[800];
    run_path(run, sizeof run, "folder");
    dl_error err = {{0}};
    dl_train_opts o = fixture_opts(data, run, 9);
    o.save_interval = 3;
    CHECK_MSG(dl_train(&o, &err) == 0, "%s", err.msg);
    check_complete(run, 9);
    check_complete(run, 6);
    snprintf(ckroot, sizeof ckroot, "%s/checkpoints", run);
    CHECK(count_entries(ckroot) == 2); /* step 3 pruned, no temp folder left */
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl"};
    for (int i = 0; i < 4; i++) CHECK_MSG(fixture_exists(run, files[i]), "%s", files[i]);
    dl_model m = {0};
    CHECK_MSG(dl_model_load(&m, run, &err) == 0, "%s", err.msg); /* the run folder is a model folder */
    dl_model_free(&m);

    /* the same command again without --resume must not overwrite the run */
    CHECK(dl_train(&o, &err) == -1);
    CHECK(strstr(err.msg, "--resume") && strstr(err.msg, "step 9"));

    /* resumes that would not continue the same run */
    o.resume = 1;
    o.steps = 12;
    dl_train_opts bad = o;
    bad.batch = 8;
    CHECK(dl_train(&bad, &err) == -1 && strstr(err.msg, "batch 4") && strstr(err.msg, "asks for 8"));
    bad = o;
    bad.seq_len = 16;
    CHECK(dl_train(&bad, &err) == -1 && strstr(err.msg, "seq_len 32"));
    bad = o;
    bad.grad_accum = 1;
    CHECK(dl_train(&bad, &err) == -1 && strstr(err.msg, "grad_accum 2"));
    bad = o;
    bad.seed = 8;
    CHECK(dl_train(&bad, &err) == -1 && strstr(err.msg, "seed 7"));

    char cfg[800];
    snprintf(cfg, sizeof cfg, "%s/other.json", root);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"vocab_size\":512,\"hidden_size\":32,\"intermediate_size\":64,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"max_position_embeddings\":256}");
    fclose(f);
    bad = o;
    bad.config = cfg;
    CHECK(dl_train(&bad, &err) == -1 && strstr(err.msg, "config"));

    /* a damaged trainer_state.json is an error naming the file, not a crash */
    char st[900];
    snprintf(st, sizeof st, "%s/checkpoints/step_00000009/trainer_state.json", run);
    CHECK(dl_write_file_atomic(st, "{\"version\": 1, \"step\": 9}", 25, &err) == 0);
    CHECK(dl_train(&o, &err) == -1 && strstr(err.msg, "trainer_state.json") && strstr(err.msg, "options"));
}

static void expect_fail(dl_train_opts o, const char *phrase) {
    dl_error err = {{0}};
    CHECK_MSG(dl_train(&o, &err) == -1 && strstr(err.msg, phrase), "wanted '%s', got '%s'", phrase, err.msg);
}

static void test_bad_options(void) {
    char run[700], small[700], p[800];
    run_path(run, sizeof run, "bad");
    dl_train_opts o = fixture_opts(data, run, 5);
    dl_train_opts b = o;
    b.steps = 0;
    expect_fail(b, "steps");
    b = o;
    b.seq_len = 257;
    expect_fail(b, "max_position_embeddings 256");
    b = o;
    b.min_lr = 1.0;
    expect_fail(b, "min-lr");
    b = o;
    b.beta2 = 1.0;
    expect_fail(b, "beta2");
    b = o;
    b.data = "/nonexistent/data";
    expect_fail(b, "/nonexistent/data");
    b = o;
    b.config = "/nonexistent/config.json";
    expect_fail(b, "/nonexistent/config.json");

    run_path(small, sizeof small, "smalldata");
    fixture_data(small, 2000, 20, 512); /* val.bin shorter than one window of 33 */
    b = o;
    b.data = small;
    expect_fail(b, "val.bin holds 20 tokens");
    b.eval_interval = 0; /* without evaluation it does not matter */
    dl_error err = {{0}};
    CHECK_MSG(dl_train(&b, &err) == 0, "%s", err.msg);

    run_path(small, sizeof small, "bigvocab");
    fixture_data(small, 2000, 200, 1000); /* tokenized with 1000 ids, the config has 512 */
    b = o;
    b.data = small;
    expect_fail(b, "vocabulary of 1000");

    snprintf(p, sizeof p, "%s/val.bin", data);
    char saved[800];
    snprintf(saved, sizeof saved, "%s/val.bin.saved", data);
    CHECK(rename(p, saved) == 0);
    expect_fail(o, "val.bin is missing");
    CHECK(rename(saved, p) == 0);
}

/* The child of test_sigint: a long run, in a fresh process (libgomp does not survive fork). */
static int sigint_child(const char *data_dir, const char *run) {
    dl_train_opts o = fixture_opts(data_dir, run, 1000000);
    o.save_interval = 0;
    o.eval_interval = 0;
    dl_error err;
    int rc = dl_train(&o, &err);
    if (rc != 0) fprintf(stderr, "(expected) %s\n", err.msg);
    return rc == 0 ? 0 : 3;
}

/* SIGINT in the middle: the update finishes, a checkpoint is written, the exit is an error,
 * and --resume continues from there. */
static void test_sigint(void) {
    char run[700], ck[800];
    run_path(run, sizeof run, "sigint");
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_checkpoint", "--sigint-child", data, run, (char *)NULL);
        _exit(127);
    }
    /* wait until a few updates are logged */
    int lines = 0;
    for (int i = 0; i < 2000 && lines < 3; i++) {
        usleep(10000);
        json_t *m = fixture_metrics(run);
        lines = m ? (int)json_array_size(m) : 0;
        json_decref(m);
    }
    CHECK(lines >= 3);
    kill(pid, SIGINT);
    int status = 0, done = 0;
    for (int i = 0; i < 3000 && !done; i++) {
        done = waitpid(pid, &status, WNOHANG) == pid;
        if (!done) usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(done && WIFEXITED(status) && WEXITSTATUS(status) == 3);

    json_t *m = fixture_metrics(run);
    long last = m ? (long)json_integer_value(json_object_get(json_array_get(m, json_array_size(m) - 1), "step")) : -1;
    json_decref(m);
    snprintf(ck, sizeof ck, "%s/checkpoints/step_%08ld", run, last);
    CHECK_MSG(dl_is_dir(ck), "%s", ck); /* the checkpoint is of the last logged update */

    dl_error err = {{0}};
    dl_train_opts o = fixture_opts(data, run, (int)last + 2);
    o.save_interval = 0;
    o.eval_interval = 0;
    o.resume = 1;
    CHECK_MSG(dl_train(&o, &err) == 0, "%s", err.msg);
    m = fixture_metrics(run);
    CHECK(m && (long)json_array_size(m) == last + 2);
    json_decref(m);
}

int main(int argc, char **argv) {
    dl_log_set_level(DL_LOG_QUIET);
    if (argc == 4 && strcmp(argv[1], "--sigint-child") == 0) return sigint_child(argv[2], argv[3]);
    snprintf(root, sizeof root, "%s", test_tmpdir("ckpt"));
    snprintf(data, sizeof data, "%s/data", root);
    fixture_data(data, 6000, 1200, 512);
    test_folder();
    test_bad_options();
    test_sigint();
    dl_error err;
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
