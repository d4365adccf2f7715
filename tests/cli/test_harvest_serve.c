/* End to end: `distil harvest` against a real `distil serve` on loopback (a tiny random model
 * made here, an API key from `distil keys create`): completions and chat with logprobs come
 * back as OUT lines of the documented shapes, and a wrong key is a clean error that does not
 * print the key. */
#include "cli_util.h"
#include "tiny_model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include <jansson.h>
#include <signal.h>
#include <time.h>


static char tmp[512], model_dir[700], db[700], key[256], url[128];
static pid_t server = -1;

static const char *path_of(int slot, const char *name) {
    static char p[4][800];
    snprintf(p[slot], sizeof p[slot], "%s/%s", tmp, name);
    return p[slot];
}

static int make_model(void) { return make_tiny_model(model_dir, 128, 1.0f); }

/* Starts the server in the background and learns its URL. */
static int start_server(void) {
    const char *args[] = {"serve", "--model", model_dir, "--db", db, "--port", "0", "--threads", "1", NULL};
    const char *out = path_of(0, "serve.out");
    server = spawn_distil(out, path_of(1, "serve.err"), args);
    int port = wait_serve_port(out, server);
    if (port > 0) return snprintf(url, sizeof url, "http://127.0.0.1:%d", port), 0;
    kill(server, SIGKILL); /* it died before listening, or never said where */
    waitpid(server, NULL, 0);
    server = -1;
    return -1;
}

static void stop_server(void) {
    if (server <= 0) return;
    int st = stop_distil(server);
    CHECK_MSG(st != -1, "serve did not stop on SIGTERM");
    CHECK_MSG(st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) == 0), "serve ended with status %d", st);
}

static json_t *read_lines(const char *path) {
    json_t *a = json_array();
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, NULL);
        json_array_append_new(a, o ? o : json_null());
    }
    free(line);
    if (f) fclose(f);
    return a;
}

static void test_completions(void) {
    const char *prompts = path_of(0, "p.jsonl"), *out = path_of(1, "out.jsonl");
    write_text(prompts, "{\"id\": \"a\", \"prompt\": \"the cat\"}\n{\"id\": \"b\", \"prompt\": \"the dog\"}\n"
                        "{\"id\": \"c\", \"prompt\": \"a fox\"}\n{\"id\": \"d\", \"prompt\": \"the mat\"}\n"
                        "{\"id\": \"e\", \"prompt\": \"on the\"}\n{\"id\": \"f\", \"prompt\": \"the log\"}\n");
    char a[3000];
    snprintf(a, sizeof a, "harvest --endpoint %s --api-key %s --prompts %s --out %s --concurrency 3 --top-logprobs 3 "
             "--max-tokens 6 --temperature 0",
             url, key, prompts, out);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK(!strstr(r->err, key));
    json_t *lines = read_lines(out), *l;
    CHECK_MSG(json_array_size(lines) == 6, "%zu lines", json_array_size(lines));
    size_t i;
    json_array_foreach(lines, i, l) {
        json_t *lp = json_object_get(l, "logprobs"), *usage = json_object_get(l, "usage");
        json_int_t n = json_integer_value(json_object_get(usage, "completion_tokens"));
        CHECK(json_is_string(json_object_get(l, "completion")) && json_is_string(json_object_get(l, "prompt")));
        CHECK(json_is_string(json_object_get(l, "finish_reason")));
        CHECK_MSG(n >= 1 && n <= 6, "completion_tokens %lld", (long long)n);
        CHECK((json_int_t)json_array_size(json_object_get(lp, "tokens")) == n);
        CHECK((json_int_t)json_array_size(json_object_get(lp, "token_logprobs")) == n);
        json_t *top0 = json_array_get(json_object_get(lp, "top_logprobs"), 0);
        CHECK(json_object_size(top0) >= 1 && json_object_size(top0) <= 4);
        CHECK(json_real_value(json_array_get(json_object_get(lp, "token_logprobs"), 0)) <= 0);
    }
    json_decref(lines);
}

static void test_chat(void) {
    const char *prompts = path_of(0, "pc.jsonl"), *out = path_of(1, "outc.jsonl");
    write_text(prompts, "{\"id\": 1, \"messages\": [{\"role\": \"user\", \"content\": \"the cat\"}]}\n"
                        "{\"id\": 2, \"prompt\": \"the dog\"}\n");
    char a[3000];
    snprintf(a, sizeof a, "harvest --endpoint %s/v1 --api-key %s --prompts %s --out %s --chat --top-logprobs 2 "
             "--max-tokens 4",
             url, key, prompts, out);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    json_t *lines = read_lines(out), *l;
    CHECK(json_array_size(lines) == 2);
    size_t i;
    json_array_foreach(lines, i, l) {
        json_t *content = json_object_get(json_object_get(l, "logprobs"), "content");
        CHECK(json_is_array(json_object_get(l, "messages")));
        CHECK(json_array_size(content) >= 1 && json_array_size(content) <= 4);
        json_t *t0 = json_array_get(content, 0);
        CHECK(json_is_string(json_object_get(t0, "token")) && json_is_number(json_object_get(t0, "logprob")));
        CHECK(json_array_size(json_object_get(t0, "top_logprobs")) == 2);
    }
    json_decref(lines);
}

static void test_wrong_key(void) {
    char a[3000];
    snprintf(a, sizeof a, "harvest --endpoint %s --api-key dk-wrong-key-0000 --prompts %s --out %s", url,
             path_of(0, "p.jsonl"), path_of(1, "out_wrong.jsonl"));
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "HTTP 401");
    CHECK(!strstr(r->err, "dk-wrong-key-0000"));
    /* with --model the request itself is refused: a permanent failure, not retried */
    snprintf(a, sizeof a, "harvest --endpoint %s --api-key dk-wrong-key-0000 --prompts %s --out %s --model model", url,
             path_of(0, "p.jsonl"), path_of(1, "out_wrong.jsonl"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "6 prompts failed");
    CHECK(strstr(r->err, "0 retries") != NULL);
    CHECK(!strstr(r->err, "dk-wrong-key-0000"));
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("harvest-serve"));
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    snprintf(db, sizeof db, "%s/usage.sqlite", tmp);
    const char *proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++) unsetenv(proxies[i]);
    unsetenv("DISTIL_API_KEY");
    if (make_model()) return 2;
    char a[1200];
    snprintf(a, sizeof a, "keys create --db %s --name harvest-test", db);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && sscanf(r->out, "%255s", key) == 1, "keys create: %s", r->err);
    if (start_server()) {
        CHECK_MSG(0, "distil serve did not start");
        stop_server();
        TEST_MAIN_END();
    }
    test_completions();
    test_chat();
    test_wrong_key();
    stop_server();
    TEST_MAIN_END();
}
