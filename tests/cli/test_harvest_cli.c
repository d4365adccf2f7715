/* distil harvest through the binary, against the fake server of tests/harvest: flags, a
 * malformed prompts file (no request sent), a run with one failing prompt (exit 1, the key
 * never printed), resume, the key from the environment. */
#include "cli_util.h"
#include "harvest/fake_server.h"

static const char *tmp;
static fake_server srv;
static char path_buf[4][700];

static const char *p(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tmp, name);
    return path_buf[slot];
}

static int count_lines(const char *path) {
    char buf[65536];
    slurp(path, buf, sizeof buf);
    int n = 0;
    for (char *c = buf; *c; c++) n += *c == '\n';
    return n;
}

static void test_flags(void) {
    run_result *r = run_distil(tmp, "harvest --help");
    CHECK_MSG(r->status == 0 && strstr(r->out, "usage: distil harvest") && strstr(r->out, "--top-logprobs"),
              "status %d out %s", r->status, r->out);
    r = run_distil(tmp, "harvest --prompts x.jsonl --out y.jsonl");
    CHECK_CLEAN_ERROR(r, "--endpoint is required");
    char a[2400];
    snprintf(a, sizeof a, "harvest --endpoint http://127.0.0.1:%d --prompts %s --out %s --concurrency 0", srv.port,
             p(0, "none.jsonl"), p(1, "o.jsonl"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--concurrency 0 must be in 1..1024");
    snprintf(a, sizeof a, "harvest --endpoint http://127.0.0.1:%d --prompts %s --out %s --seed -2", srv.port,
             p(0, "none.jsonl"), p(1, "o.jsonl"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--seed -2 must be >= 0");
    snprintf(a, sizeof a, "harvest --endpoint ftp://x --prompts %s --out %s", p(0, "none.jsonl"), p(1, "o.jsonl"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "must start with http:// or https://");
    snprintf(a, sizeof a, "harvest --endpoint http://127.0.0.1:%d --prompts %s --out %s", srv.port,
             p(0, "none.jsonl"), p(1, "o.jsonl"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "cannot open the prompts file");
}

static void test_bad_prompts(void) {
    fs_reset(&srv);
    write_text(p(0, "bad.jsonl"), "{\"id\": 1, \"prompt\": \"ok\"}\n{\"id\": 2, \"prompt\": [\"ok\"]}\n");
    char a[2400];
    snprintf(a, sizeof a, "harvest --endpoint http://127.0.0.1:%d --api-key sk-cli-789 --prompts %s --out %s",
             srv.port, p(0, "bad.jsonl"), p(1, "bad_out.jsonl"));
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "bad.jsonl:2: 'prompt' must be a string");
    CHECK(srv.n_reqs == 0);
    CHECK(!strstr(r->err, "sk-cli-789"));
}

static void test_run_and_resume(void) {
    fs_reset(&srv);
    write_text(p(0, "p.jsonl"), "{\"id\": \"a\", \"prompt\": \"ok a\"}\n"
                                "{\"id\": \"b\", \"prompt\": \"bad400\"}\n"
                                "{\"id\": \"c\", \"prompt\": \"r500\"}\n"
                                "{\"id\": \"d\", \"prompt\": \"ok d\"}\n");
    char a[2400];
    snprintf(a, sizeof a,
             "harvest --endpoint http://127.0.0.1:%d/v1/ --api-key sk-cli-789 --prompts %s --out %s --concurrency 2"
             " --top-logprobs 2 --max-tokens 9 --temperature 0.5 --retries 3 --backoff 0.01 --timeout 10",
             srv.port, p(0, "p.jsonl"), p(1, "out.jsonl"));
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "1 prompts failed");
    CHECK_MSG(r->status == 1, "status %d", r->status);
    CHECK(strstr(r->err, "out.jsonl.failures.jsonl") != NULL);
    CHECK_MSG(strstr(r->err, "harvest 4/4") != NULL, "no progress line: %s", r->err);
    CHECK(strstr(r->err, "id \"b\" failed: HTTP 400") != NULL);
    CHECK_MSG(!strstr(r->err, "sk-cli-789") && !strstr(r->out, "sk-cli-789"), "the key was printed: %s", r->err);
    CHECK(count_lines(p(1, "out.jsonl")) == 3);
    CHECK(count_lines(p(2, "out.jsonl.failures.jsonl")) == 1);
    CHECK(fs_count(&srv, "r500") == 3);
    int authed = 0;
    for (int i = 0; i < srv.n_reqs; i++) authed += !strcmp(srv.reqs[i].auth, "Bearer sk-cli-789");
    CHECK(authed == srv.n_reqs && authed > 0);
    json_t *b = json_loads(srv.reqs[srv.n_reqs - 1].body, 0, NULL);
    CHECK(json_integer_value(json_object_get(b, "max_tokens")) == 9);
    CHECK(json_real_value(json_object_get(b, "temperature")) == 0.5);
    json_decref(b);
    /* resume: only b is asked again, with the key from the environment */
    fs_reset(&srv);
    setenv("DISTIL_API_KEY", "sk-env-456", 1);
    snprintf(a, sizeof a, "harvest --endpoint http://127.0.0.1:%d --prompts %s --out %s --model fake-model",
             srv.port, p(0, "p.jsonl"), p(1, "out.jsonl"));
    r = run_distil(tmp, a);
    unsetenv("DISTIL_API_KEY");
    CHECK_CLEAN_ERROR(r, "1 prompts failed");
    CHECK(srv.n_reqs == 1 && fs_count(&srv, "bad400") == 1);
    CHECK(srv.n_reqs == 1 && !strcmp(srv.reqs[0].auth, "Bearer sk-env-456"));
    CHECK(!strstr(r->err, "sk-env-456"));
    /* the failing prompt fixed: the run completes and exits 0 */
    write_text(p(0, "p.jsonl"), "{\"id\": \"a\", \"prompt\": \"ok a\"}\n"
                                "{\"id\": \"b\", \"prompt\": \"ok b\"}\n"
                                "{\"id\": \"c\", \"prompt\": \"r500\"}\n"
                                "{\"id\": \"d\", \"prompt\": \"ok d\"}\n");
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d err %s", r->status, r->err);
    CHECK(count_lines(p(1, "out.jsonl")) == 4);
    CHECK(!dl_path_exists(p(2, "out.jsonl.failures.jsonl")));
}

int main(void) {
    tmp = test_tmpdir("harvest-cli");
    const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++) unsetenv(proxies[i]); /* loopback only */
    unsetenv("DISTIL_API_KEY");
    if (fs_start(&srv)) {
        fprintf(stderr, "cannot start the fake server\n");
        return 2;
    }
    test_flags();
    test_bad_prompts();
    test_run_and_resume();
    fs_stop(&srv);
    TEST_MAIN_END();
}
