/* dl_harvest_run against a fake OpenAI-compatible server on loopback: output lines, retries
 * (429 with Retry-After, 500, timeouts), permanent failures, concurrency, auth, resume. */
#include "harvest/internal.h"
#include "harvest/fake_server.h"
#include "test.h"
#include <fcntl.h>
#include <sys/file.h>

static const char *tmp;
static fake_server srv;
static char endpoint[64];

static const char *path_of(int slot, const char *name) {
    static char p[4][600];
    snprintf(p[slot], sizeof p[slot], "%s/%s", tmp, name);
    return p[slot];
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
}

/* Every line of a JSONL file, parsed (NULL entries for lines that do not parse). */
static json_t *read_lines(const char *path, int *bad) {
    json_t *a = json_array();
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    *bad = 0;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)n, 0, NULL);
        if (!o || line[n - 1] != '\n') (*bad)++;
        json_array_append_new(a, o ? o : json_null());
    }
    free(line);
    if (f) fclose(f);
    return a;
}

/* The OUT line whose id is the string s, or NULL. */
static json_t *line_with_id(json_t *lines, const char *s) {
    size_t i;
    json_t *o;
    json_array_foreach(lines, i, o) {
        json_t *id = json_object_get(o, "id");
        if (json_is_string(id) && !strcmp(json_string_value(id), s)) return o;
    }
    return NULL;
}

static void base_opts(dl_harvest_opts *o, const char *prompts, const char *out) {
    dl_harvest_opts_default(o);
    o->endpoint = endpoint;
    o->api_key = "sk-test-123";
    o->prompts_path = prompts;
    o->out_path = out;
    o->backoff_s = 0.01;
    o->max_backoff_s = 5;
    o->timeout_s = 10;
}

/* The arrival time of the n-th (0-based) request with prompt p. */
static double nth_arrival(const char *p, int n) {
    for (int i = 0; i < srv.n_reqs; i++)
        if (!strcmp(srv.reqs[i].prompt, p) && n-- == 0) return srv.reqs[i].t;
    return -1;
}

static void test_completions(void) {
    fs_reset(&srv);
    const char *prompts = path_of(0, "c.jsonl"), *out = path_of(1, "c_out.jsonl");
    put(prompts, "{\"id\": \"ok1\", \"prompt\": \"ok one\"}\n"
                 "{\"id\": \"r429\", \"prompt\": \"r429\"}\n"
                 "{\"id\": \"r500\", \"prompt\": \"r500\"}\n"
                 "{\"id\": \"bad400\", \"prompt\": \"bad400\"}\n"
                 "{\"id\": \"junk\", \"prompt\": \"junk\"}\n"
                 "{\"id\": \"nolp\", \"prompt\": \"nolp\"}\n"
                 "{\"prompt\": \"ok two\"}\n");
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    o.top_logprobs = 2;
    o.retries = 3;
    dl_harvest_result res;
    dl_error err = {{0}};
    CHECK_MSG(dl_harvest_run(&o, &res, &err) == 0, "%s", err.msg);
    CHECK(res.total == 7 && res.skipped == 0);
    CHECK_MSG(res.written == 4 && res.failed == 3, "written %ld failed %ld", res.written, res.failed);
    CHECK_MSG(res.retries == 3, "retries %ld", res.retries); /* r429 once, r500 twice */
    CHECK(res.completion_tokens == 8);
    /* what the server saw */
    CHECK(fs_count(&srv, "r429") == 2 && fs_count(&srv, "r500") == 3);
    CHECK(fs_count(&srv, "bad400") == 1 && fs_count(&srv, "junk") == 1 && fs_count(&srv, "nolp") == 1);
    double gap = nth_arrival("r429", 1) - nth_arrival("r429", 0);
    CHECK_MSG(gap >= 0.95 && gap < 3, "Retry-After: 1 honoured? gap %.3f s", gap);
    int saw_models = 0;
    for (int i = 0; i < srv.n_reqs; i++) {
        fs_request *q = &srv.reqs[i];
        CHECK_MSG(!strcmp(q->auth, "Bearer sk-test-123"), "request %d auth '%s'", i, q->auth);
        if (!strcmp(q->method, "GET")) {
            saw_models += !strcmp(q->path, "/v1/models");
            continue;
        }
        CHECK(!strcmp(q->method, "POST") && !strcmp(q->path, "/v1/completions"));
        json_t *b = json_loads(q->body, 0, NULL);
        CHECK(!strcmp(json_string_value(json_object_get(b, "model")), "fake-model")); /* from /v1/models */
        CHECK(json_integer_value(json_object_get(b, "logprobs")) == 2);
        CHECK(json_integer_value(json_object_get(b, "max_tokens")) == 128);
        json_decref(b);
    }
    CHECK(saw_models == 1);
    /* what OUT holds */
    int bad;
    json_t *lines = read_lines(out, &bad);
    CHECK(bad == 0 && json_array_size(lines) == 4);
    json_t *l = line_with_id(lines, "ok1");
    CHECK(l && !strcmp(json_string_value(json_object_get(l, "prompt")), "ok one"));
    CHECK(l && !strcmp(json_string_value(json_object_get(l, "completion")), "echo:ok one"));
    CHECK(l && !strcmp(json_string_value(json_object_get(l, "finish_reason")), "length"));
    CHECK(l && json_integer_value(json_object_get(json_object_get(l, "usage"), "completion_tokens")) == 2);
    json_t *lp = json_object_get(l, "logprobs");
    CHECK(json_array_size(json_object_get(lp, "tokens")) == 2 && json_array_size(json_object_get(lp, "top_logprobs")) == 2);
    CHECK(line_with_id(lines, "r429") && line_with_id(lines, "r500"));
    int found7 = 0;
    size_t i;
    json_t *o7;
    json_array_foreach(lines, i, o7) found7 += json_integer_value(json_object_get(o7, "id")) == 7;
    CHECK(found7 == 1); /* no id: the line number */
    json_decref(lines);
    /* the failures file */
    json_t *fails = read_lines(path_of(2, "c_out.jsonl.failures.jsonl"), &bad);
    CHECK(bad == 0 && json_array_size(fails) == 3);
    json_t *f400 = line_with_id(fails, "bad400"), *fj = line_with_id(fails, "junk"), *fn = line_with_id(fails, "nolp");
    CHECK(f400 && json_integer_value(json_object_get(f400, "status")) == 400);
    CHECK(f400 && json_integer_value(json_object_get(f400, "tries")) == 1);
    CHECK(f400 && strstr(json_string_value(json_object_get(f400, "error")), "'max_tokens' is too large"));
    CHECK(fj && strstr(json_string_value(json_object_get(fj, "error")), "not valid JSON"));
    CHECK(fn && strstr(json_string_value(json_object_get(fn, "error")), "logprobs"));
    json_decref(fails);
}

static void test_chat(void) {
    fs_reset(&srv);
    const char *prompts = path_of(0, "chat.jsonl"), *out = path_of(1, "chat_out.jsonl");
    put(prompts, "{\"id\": \"m1\", \"messages\": [{\"role\": \"system\", \"content\": \"x\"},"
                 " {\"role\": \"user\", \"content\": \"ok chat\"}]}\n"
                 "{\"id\": \"m2\", \"prompt\": \"ok plain\"}\n");
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    o.chat = 1;
    o.model = "my-model";
    o.top_logprobs = 1;
    o.api_key = NULL;
    dl_harvest_result res;
    dl_error err = {{0}};
    CHECK_MSG(dl_harvest_run(&o, &res, &err) == 0, "%s", err.msg);
    CHECK(res.written == 2 && res.failed == 0);
    CHECK(srv.n_reqs == 2); /* --model given: no model list asked */
    for (int i = 0; i < srv.n_reqs; i++) {
        CHECK(!strcmp(srv.reqs[i].path, "/v1/chat/completions"));
        CHECK(srv.reqs[i].auth[0] == 0); /* no key, no header */
        json_t *b = json_loads(srv.reqs[i].body, 0, NULL);
        CHECK(json_is_true(json_object_get(b, "logprobs")) && json_integer_value(json_object_get(b, "top_logprobs")) == 1);
        CHECK(!strcmp(json_string_value(json_object_get(b, "model")), "my-model"));
        json_decref(b);
    }
    int bad;
    json_t *lines = read_lines(out, &bad), *l = line_with_id(lines, "m1");
    CHECK(bad == 0 && json_array_size(lines) == 2);
    CHECK(l && json_array_size(json_object_get(l, "messages")) == 2);
    CHECK(l && !strcmp(json_string_value(json_object_get(l, "completion")), "echo:ok chat"));
    json_t *c0 = json_array_get(json_object_get(json_object_get(l, "logprobs"), "content"), 0);
    CHECK(c0 && json_array_size(json_object_get(c0, "top_logprobs")) == 2);
    CHECK(c0 && json_array_size(json_object_get(c0, "bytes")) == 4);
    l = line_with_id(lines, "m2");
    CHECK(l && json_array_size(json_object_get(l, "messages")) == 1);
    json_decref(lines);
    CHECK(!dl_path_exists(path_of(2, "chat_out.jsonl.failures.jsonl")));
}

static void run_hold(int n, int concurrency, int hold_ms, dl_harvest_result *res, double *secs) {
    fs_reset(&srv);
    srv.hold_ms = hold_ms;
    const char *prompts = path_of(0, "hold.jsonl"), *out = path_of(1, "hold_out.jsonl");
    unlink(out);
    dl_buf b = {0};
    for (int i = 0; i < n; i++) dl_buf_printf(&b, "{\"prompt\": \"hold %d\"}\n", i);
    put(prompts, b.data);
    dl_buf_free(&b);
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    o.model = "m";
    o.concurrency = concurrency;
    dl_error err = {{0}};
    double t0 = dl_now();
    CHECK_MSG(dl_harvest_run(&o, res, &err) == 0, "%s", err.msg);
    *secs = dl_now() - t0;
}

static void test_concurrency(void) {
    dl_harvest_result res;
    double secs;
    run_hold(8, 4, 300, &res, &secs);
    CHECK(res.written == 8);
    CHECK_MSG(srv.open_max == 4, "the server saw %d requests at once, expected 4", srv.open_max);
    CHECK_MSG(secs < 8 * 0.3, "8 requests of 0.3 s took %.2f s: not concurrent", secs);
    run_hold(3, 1, 50, &res, &secs);
    CHECK(res.written == 3);
    CHECK_MSG(srv.open_max == 1, "concurrency 1: %d at once", srv.open_max);
}

static void test_timeouts_and_give_up(void) {
    fs_reset(&srv);
    srv.slow_ms = 1000;
    const char *prompts = path_of(0, "t.jsonl"), *out = path_of(1, "t_out.jsonl");
    put(prompts, "{\"id\": \"slow\", \"prompt\": \"slow\"}\n{\"id\": \"down\", \"prompt\": \"down\"}\n");
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    o.model = "m";
    o.timeout_s = 0.3;
    o.retries = 2;
    dl_harvest_result res;
    dl_error err = {{0}};
    CHECK_MSG(dl_harvest_run(&o, &res, &err) == 0, "%s", err.msg);
    CHECK_MSG(res.written == 1 && res.failed == 1, "written %ld failed %ld", res.written, res.failed);
    CHECK(fs_count(&srv, "slow") == 2 && fs_count(&srv, "down") == 3);
    CHECK(res.retries == 3);
    int bad;
    json_t *fails = read_lines(path_of(2, "t_out.jsonl.failures.jsonl"), &bad), *f = line_with_id(fails, "down");
    CHECK(f && json_integer_value(json_object_get(f, "status")) == 503 && json_integer_value(json_object_get(f, "tries")) == 3);
    CHECK(f && strstr(json_string_value(json_object_get(f, "error")), "HTTP 503: overloaded (gave up after 3 tries)"));
    json_decref(fails);
    /* a second run asks only the failed one; the failures file is rewritten */
    fs_reset(&srv);
    o.retries = 0;
    CHECK(dl_harvest_run(&o, &res, &err) == 0 && res.skipped == 1 && res.failed == 1 && res.written == 0);
    CHECK(fs_count(&srv, "slow") == 0 && fs_count(&srv, "down") == 1);
    fails = read_lines(path_of(2, "t_out.jsonl.failures.jsonl"), &bad);
    CHECK(json_array_size(fails) == 1);
    json_decref(fails);
}

static void test_resume(void) {
    fs_reset(&srv);
    const char *prompts = path_of(0, "r.jsonl"), *out = path_of(1, "r_out.jsonl");
    dl_buf b = {0};
    for (int i = 0; i < 10; i++) dl_buf_printf(&b, "{\"id\": \"k%d\", \"prompt\": \"ok %d\"}\n", i, i);
    put(prompts, b.data);
    dl_buf_free(&b);
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    o.model = "m";
    o.top_logprobs = 2;
    dl_harvest_result res;
    dl_error err = {{0}};
    CHECK(dl_harvest_run(&o, &res, &err) == 0 && res.written == 10);
    /* a crash mid-write: 4 whole lines and half of the 5th */
    char *text;
    size_t len, cut = 0;
    CHECK(dl_read_file(out, &text, &len, &err) == 0);
    for (int nl = 0; cut < len && nl < 4; cut++) nl += text[cut] == '\n';
    size_t fifth = (size_t)(strchr(text + cut, '\n') - text) - cut;
    int bad;
    json_t *kept = json_array(); /* the ids of the 4 whole lines */
    for (size_t i = 0, s = 0; i < cut; i++)
        if (text[i] == '\n') {
            json_t *o4 = json_loadb(text + s, i - s, 0, NULL);
            json_array_append(kept, json_object_get(o4, "id"));
            json_decref(o4);
            s = i + 1;
        }
    FILE *f = fopen(out, "wb");
    fwrite(text, 1, cut + fifth / 2, f);
    fclose(f);
    free(text);
    fs_reset(&srv);
    CHECK_MSG(dl_harvest_run(&o, &res, &err) == 0, "%s", err.msg);
    CHECK_MSG(res.skipped == 4 && res.written == 6, "skipped %ld written %ld", res.skipped, res.written);
    CHECK(srv.n_reqs == 6);
    for (int i = 0; i < srv.n_reqs; i++) { /* none of the kept ids was asked again */
        size_t k;
        json_t *id;
        json_array_foreach(kept, k, id) {
            char p[32];
            snprintf(p, sizeof p, "ok %s", json_string_value(id) + 1);
            CHECK(strcmp(srv.reqs[i].prompt, p) != 0);
        }
    }
    json_t *lines = read_lines(out, &bad);
    CHECK(bad == 0 && json_array_size(lines) == 10);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        int seen = 0;
        size_t k;
        json_t *l;
        json_array_foreach(lines, k, l) seen += !strcmp(json_string_value(json_object_get(l, "id")), id);
        CHECK_MSG(seen == 1, "%s appears %d times", id, seen);
    }
    json_decref(lines);
    json_decref(kept);
    /* all done: nothing is asked */
    fs_reset(&srv);
    CHECK(dl_harvest_run(&o, &res, &err) == 0 && res.skipped == 10 && res.written == 0 && srv.n_reqs == 0);
}

static void test_refusals(void) {
    fs_reset(&srv);
    const char *prompts = path_of(0, "bad.jsonl"), *out = path_of(1, "bad_out.jsonl");
    put(prompts, "{\"prompt\": \"ok a\"}\n{\"prompt\": \"ok b\"\n");
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    dl_harvest_result res;
    dl_error err = {{0}};
    CHECK(dl_harvest_run(&o, &res, &err) == -1 && strstr(err.msg, "bad.jsonl:2: invalid JSON"));
    CHECK(srv.n_reqs == 0 && !dl_path_exists(out)); /* nothing sent, nothing written */
    /* another harvest holds OUT */
    put(prompts, "{\"prompt\": \"ok a\"}\n");
    int fd = open(out, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    CHECK(dl_harvest_run(&o, &res, &err) == -1 && strstr(err.msg, "another harvest"));
    close(fd);
    CHECK(srv.n_reqs == 0);
    /* options */
    o.concurrency = 0;
    CHECK(dl_harvest_run(&o, &res, &err) == -1 && strstr(err.msg, "--concurrency"));
    base_opts(&o, prompts, out);
    o.api_key = "sk-1\r\nX-Evil: 1";
    CHECK(dl_harvest_run(&o, &res, &err) == -1 && strstr(err.msg, "control character") && !strstr(err.msg, "sk-1"));
    base_opts(&o, prompts, out);
    o.model = "\xff";
    CHECK(dl_harvest_run(&o, &res, &err) == -1 && strstr(err.msg, "--model"));
    CHECK(srv.n_reqs == 0);
}

static void test_unreachable(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s); /* a port nobody listens on */
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
    const char *prompts = path_of(0, "u.jsonl"), *out = path_of(1, "u_out.jsonl");
    put(prompts, "{\"prompt\": \"ok\"}\n");
    dl_harvest_opts o;
    base_opts(&o, prompts, out);
    o.endpoint = ep;
    o.retries = 1;
    dl_harvest_result res;
    dl_error err = {{0}};
    /* without --model the model list is asked first, and its failure stops the run */
    CHECK(dl_harvest_run(&o, &res, &err) == -1 && strstr(err.msg, "/v1/models") && !strstr(err.msg, "sk-test"));
    o.model = "m";
    CHECK(dl_harvest_run(&o, &res, &err) == 0 && res.failed == 1 && res.retries == 1);
}

int main(void) {
    tmp = test_tmpdir("harvest-client");
    const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++) unsetenv(proxies[i]); /* loopback only */
    if (fs_start(&srv)) {
        fprintf(stderr, "cannot start the fake server\n");
        return 2;
    }
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", srv.port);
    dl_log_set_level(DL_LOG_QUIET);
    test_completions();
    test_chat();
    test_concurrency();
    test_timeouts_and_give_up();
    test_resume();
    test_refusals();
    test_unreachable();
    fs_stop(&srv);
    TEST_MAIN_END();
}
