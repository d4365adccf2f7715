/* Every bad pairing is refused with a clear message before anything trains: the run folder is
 * not even created. */
#include "distill_fixture.h"

static char root[512], data[700], other_data[700], short_data[700], teacher[700], foreign[700], other_teacher[700],
    untok[700], student_cfg[700], out[700];
static int V;

static void expect_fail(const char *what, const dl_distill_opts *o, const char *needle) {
    dl_error err = {{0}};
    int rc = dl_distill(o, &err);
    CHECK_MSG(rc != 0 && strstr(err.msg, needle) != NULL, "%s: rc %d, message '%s' (wanted '%s')", what, rc, err.msg,
              needle);
    CHECK_MSG(!dl_path_exists(out), "%s: the run folder was created", what);
}

static void cache_of(const char *teacher_dir, const char *data_dir, int T, const char *path) {
    dl_error err = {{0}};
    dl_tcache_build_opts c;
    dl_tcache_build_opts_default(&c);
    c.teacher = teacher_dir, c.data = data_dir, c.out = path, c.top_k = 4, c.seq_len = T, c.threads = 1;
    if (dl_tcache_build(&c, &err)) fx_die("cache", &err);
}

static void test_pairing(void) {
    char cfg[900];
    dl_distill_opts o = fx_opts(foreign, student_cfg, data, out, 2);
    expect_fail("other tokenizer", &o, "black-box");
    expect_fail("other tokenizer", &o, "distil harvest");
    o.teacher = untok;
    expect_fail("teacher without tokenizer.json", &o, "no tokenizer.json");
    o.teacher = teacher;
    snprintf(cfg, sizeof cfg, "%s/big.json", root);
    fx_write_config(cfg, fx_config(V + 13, 2));
    o.train.config = cfg;
    expect_fail("student vocab above the teacher's", &o, "larger than the teacher's");
    snprintf(cfg, sizeof cfg, "%s/small.json", root);
    fx_write_config(cfg, fx_config(V - 10, 2));
    o.train.config = cfg;
    expect_fail("student vocab below the tokenizer's", &o, "smaller than the tokenizer");
    o.train.config = student_cfg;
    o.train.data = root; /* no tokenizer.json, train.bin */
    expect_fail("not a data folder", &o, "is missing");
}

static void test_cache_mismatch(void) {
    char c1[900], c2[900], c3[900];
    snprintf(c1, sizeof c1, "%s/foreign.cache", root);
    snprintf(c2, sizeof c2, "%s/short.cache", root);
    snprintf(c3, sizeof c3, "%s/t16.cache", root);
    cache_of(other_teacher, other_data, 32, c1);
    cache_of(teacher, short_data, 32, c2);
    cache_of(teacher, data, 16, c3);
    dl_distill_opts o = fx_opts(NULL, student_cfg, data, out, 2);
    o.cache = c1;
    expect_fail("cache of another tokenizer", &o, "another tokenizer");
    o.cache = c2;
    expect_fail("cache of another token file", &o, "another token file");
    o.cache = c3;
    expect_fail("cache of another seq-len", &o, "--seq-len 16");
    o.seq_kd = 1;
    expect_fail("seq-kd without a teacher", &o, "need a live --teacher");
    o.seq_kd = 0;
    o.cache = data; /* a folder, not a cache */
    expect_fail("not a cache", &o, "teacher cache");
}

static void test_layers(void) {
    char wide[900], narrow[900];
    snprintf(wide, sizeof wide, "%s/wide3", root);
    snprintf(narrow, sizeof narrow, "%s/narrow.json", root);
    fx_model(wide, fx_config(V, 3), 4, 1.0f, data);
    dl_config n = fx_config(V, 2);
    n.C = 16, n.F = 32;
    fx_write_config(narrow, n);
    dl_distill_opts o = fx_opts(wide, student_cfg, data, out, 2);
    o.init_from_teacher = 1;
    static const char *const bad[][2] = {{"0,5", "does not exist"}, {"1,0", "strictly increasing"},
                                         {"1,1", "strictly increasing"}, {"0", "names 1 layers"},
                                         {"0,1,2", "more than"}, {"a,b", "expected"}, {"0,1,", "comma"},
                                         {"0;1", "unexpected"}, {"-1,0", "expected"}, {"", "names 0 layers"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.layers = bad[i][0];
        expect_fail(bad[i][0], &o, bad[i][1]);
    }
    o.layers = NULL;
    o.train.config = narrow;
    expect_fail("narrower student", &o, "as wide as the teacher");
    o.train.config = student_cfg;
    o.init_from_teacher = 0;
    o.layers = "0,1";
    expect_fail("--layers alone", &o, "pass both");
    o.layers = NULL;
    o.init_from_teacher = 1;
    o.teacher = NULL;
    o.cache = "x";
    expect_fail("--init-from-teacher without a teacher", &o, "needs the --teacher");
}

static void test_options(void) {
    dl_distill_opts o = fx_opts(teacher, student_cfg, data, out, 2);
    o.teacher = NULL;
    expect_fail("no teacher", &o, "required");
    o = fx_opts(teacher, student_cfg, data, out, 2);
    o.kd.beta = 1.5f;
    expect_fail("beta", &o, "beta");
    o = fx_opts(teacher, student_cfg, data, out, 2);
    o.kd.tau = 0;
    expect_fail("tau", &o, "temperature");
    o = fx_opts(teacher, student_cfg, data, out, 2);
    o.lmbda = 1.5;
    expect_fail("lmbda", &o, "--lmbda");
    o = fx_opts(teacher, student_cfg, data, out, 2);
    o.prompt_len = 33;
    expect_fail("prompt-len", &o, "--prompt-len");
    o = fx_opts(teacher, student_cfg, data, out, 2);
    o.train.seq_len = 65;
    expect_fail("seq-len past the teacher", &o, "max_position_embeddings");
}

static void test_cache_build_errors(void) {
    dl_error err = {{0}};
    char p[900];
    snprintf(p, sizeof p, "%s/c.cache", root);
    dl_tcache_build_opts c;
    dl_tcache_build_opts_default(&c);
    c.teacher = foreign, c.data = data, c.out = p, c.top_k = 4, c.seq_len = 32;
    CHECK(dl_tcache_build(&c, &err) != 0 && strstr(err.msg, "black-box") != NULL);
    c.teacher = teacher, c.top_k = V + 1;
    CHECK(dl_tcache_build(&c, &err) != 0 && strstr(err.msg, "--top-k") != NULL);
    c.top_k = 0;
    CHECK(dl_tcache_build(&c, &err) != 0 && strstr(err.msg, "--top-k") != NULL);
    c.top_k = 4, c.seq_len = 65;
    CHECK(dl_tcache_build(&c, &err) != 0 && strstr(err.msg, "max_position_embeddings") != NULL);
    c.seq_len = 32, c.teacher = untok;
    CHECK(dl_tcache_build(&c, &err) != 0 && strstr(err.msg, "tokenizer.json") != NULL);
    CHECK(!dl_path_exists(p));
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(root, sizeof root, "%s", test_tmpdir("distill-errors"));
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(other_data, sizeof other_data, "%s/data2", root);
    snprintf(short_data, sizeof short_data, "%s/data3", root);
    snprintf(teacher, sizeof teacher, "%s/teacher", root);
    snprintf(foreign, sizeof foreign, "%s/foreign", root);
    snprintf(other_teacher, sizeof other_teacher, "%s/teacher2", root);
    snprintf(untok, sizeof untok, "%s/untok", root);
    snprintf(student_cfg, sizeof student_cfg, "%s/student.json", root);
    snprintf(out, sizeof out, "%s/run", root);
    V = fx_data(data, 300, 0);
    int V2 = fx_data(other_data, 290, 1);
    fx_model(teacher, fx_config(V, 2), 1, 1.0f, data);
    fx_model(foreign, fx_config(V, 2), 1, 1.0f, other_data);
    fx_model(other_teacher, fx_config(V2, 2), 1, 1.0f, other_data);
    fx_model(untok, fx_config(V, 2), 1, 1.0f, data);
    char p[900], q[900];
    snprintf(p, sizeof p, "%s/tokenizer.json", untok);
    unlink(p);
    /* the same tokenizer, a shorter train.bin */
    dl_error err;
    snprintf(p, sizeof p, "%s/train.bin", data);
    snprintf(q, sizeof q, "%s/train.bin", short_data);
    dl_tokfile f;
    if (dl_mkdir_p(short_data, &err) || dl_tokfile_open(&f, p, &err)) fx_die("short data", &err);
    int32_t *ids = malloc((size_t)f.n_tokens * sizeof *ids);
    for (uint64_t i = 0; i < f.n_tokens; i++) ids[i] = dl_tokfile_get(&f, i);
    if (dl_tokfile_write(q, ids, (size_t)f.n_tokens - 100, f.vocab_size, &err)) fx_die("short train.bin", &err);
    dl_tokfile_close(&f);
    free(ids);
    snprintf(p, sizeof p, "%s/tokenizer.json", data);
    snprintf(q, sizeof q, "%s/tokenizer.json", short_data);
    if (dl_copy_file(p, q, &err)) fx_die("copy", &err);
    fx_write_config(student_cfg, fx_config(V, 2));
    test_pairing();
    test_cache_mismatch();
    test_layers();
    test_options();
    test_cache_build_errors();
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
