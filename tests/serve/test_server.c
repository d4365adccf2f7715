/* The server end to end over loopback: every route and error status, keys (revoked while the
 * server runs), rate limits and quotas, streaming, concurrent clients decoded in shared batches,
 * a full queue, draining on stop, and the usage log: exactly one row per request made. */
#include "http_client.h"
#include "serve/serve.h"
#include "serve_fixture.h"
#include "test.h"
#include "ops/ops.h"
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>

static char model_dir[600], db_path[600];
static int port;
static atomic_int logged_requests; /* requests to routes that write a usage row */
static char key_a[DL_KEY_TEXT_MAX], key_rpm[DL_KEY_TEXT_MAX], key_quota[DL_KEY_TEXT_MAX], key_tpm[DL_KEY_TEXT_MAX];

static int req(const char *method, const char *path, const char *key, const char *body, http_resp *r) {
    if (strcmp(path, "/health") && strcmp(path, "/metrics")) atomic_fetch_add(&logged_requests, 1);
    int rc = http_request(port, method, path, key, body, r, 30.0);
    CHECK_MSG(rc == 0, "%s %s: no response", method, path);
    return rc;
}

static json_t *body_json(const http_resp *r) {
    json_error_t je;
    json_t *v = r->body ? json_loads(r->body, JSON_ALLOW_NUL, &je) : NULL;
    CHECK_MSG(v != NULL, "not JSON: %s", r->body ? r->body : "");
    return v;
}

/* status and, for errors, OpenAI's error shape with the given code (NULL: any) */
static void expect_error(const http_resp *r, int status, const char *code) {
    CHECK_MSG(r->status == status, "status %d, want %d: %s", r->status, status, r->body ? r->body : "");
    json_t *o = body_json(r), *e = json_object_get(o, "error");
    CHECK(json_is_string(json_object_get(e, "message")) && json_is_string(json_object_get(e, "type")));
    CHECK(json_object_get(e, "param") && json_object_get(e, "code"));
    if (code) CHECK_MSG(json_is_string(json_object_get(e, "code")) && !strcmp(json_string_value(json_object_get(e, "code")), code),
                        "code: %s", r->body);
    json_decref(o);
}

static const char *choice_text(json_t *o, int i, int chat) {
    json_t *c = json_array_get(json_object_get(o, "choices"), (size_t)i);
    return json_string_value(chat ? json_object_get(json_object_get(c, "message"), "content") : json_object_get(c, "text"));
}

/* The text of a completions stream: its chunks' texts in order (single choice). */
static int stream_text(const char *sse, dl_buf *text, int chat, json_t **usage) {
    int events = 0;
    for (const char *p = sse; (p = strstr(p, "data: ")); events++) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        if (!end) return -1;
        if (!strncmp(p, "[DONE]", 6)) return end[2] == 0 ? events : -1; /* [DONE] is last */
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(end - p), JSON_ALLOW_NUL, &je);
        if (!o) return -1;
        json_t *c = json_array_get(json_object_get(o, "choices"), 0);
        json_t *t = chat ? json_object_get(json_object_get(c, "delta"), "content") : json_object_get(c, "text");
        if (json_is_string(t)) dl_buf_append(text, json_string_value(t), json_string_length(t));
        if (usage && json_object_get(o, "usage")) *usage = json_incref(json_object_get(o, "usage"));
        json_decref(o);
        p = end;
    }
    return -1; /* no [DONE] */
}

static double drain_seconds = 30;

static dl_server *start(int max_batch, int max_queue, int no_auth, int log_prompts) {
    dl_serve_cfg cfg;
    dl_serve_cfg_default(&cfg);
    cfg.drain_seconds = drain_seconds;
    cfg.model_dir = model_dir;
    cfg.db_path = db_path;
    cfg.port = 0;
    cfg.max_batch = max_batch;
    cfg.max_queue = max_queue;
    cfg.no_auth = no_auth;
    cfg.log_prompts = log_prompts;
    cfg.max_body = 8192;
    dl_error err;
    dl_server *s = dl_serve_start(&cfg, &err);
    if (!s) { fprintf(stderr, "start: %s\n", err.msg); exit(2); }
    port = dl_serve_port(s);
    return s;
}

static void make_keys(void) {
    dl_error err;
    long long id;
    dl_key_limits none = {0}, rpm = {.rpm = 2}, quota = {.quota_tokens = 40}, tpm = {.tpm = 20};
    if (dl_keys_create(db_path, "alice", &none, key_a, &id, &err) || dl_keys_create(db_path, "slow", &rpm, key_rpm, &id, &err) ||
        dl_keys_create(db_path, "small", &quota, key_quota, &id, &err) || dl_keys_create(db_path, "tpm", &tpm, key_tpm, &id, &err)) {
        fprintf(stderr, "keys: %s\n", err.msg);
        exit(2);
    }
    CHECK(strlen(key_a) == 46 && !strncmp(key_a, "dk-", 3) && strcmp(key_a, key_rpm) != 0);
    char again[DL_KEY_TEXT_MAX];
    CHECK(dl_keys_create(db_path, "alice", &none, again, &id, &err) == -1 && strstr(err.msg, "already exists"));
    CHECK(dl_keys_create(db_path, "123", &none, again, &id, &err) == -1 && strstr(err.msg, "digits"));
    CHECK(dl_keys_create(db_path, "", &none, again, &id, &err) == -1);
}

static void test_routes(void) {
    http_resp r;
    req("GET", "/health", NULL, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body, "ok"));
    http_resp_free(&r);
    req("GET", "/v1/models", key_a, NULL, &r);
    json_t *o = body_json(&r);
    CHECK(r.status == 200 && !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(o, "data"), 0), "id")), "tiny"));
    json_decref(o);
    http_resp_free(&r);

    const char *greedy = "{\"model\":\"tiny\",\"prompt\":\"the cat\",\"max_tokens\":12,\"temperature\":0,\"logprobs\":3}";
    req("POST", "/v1/completions", key_a, greedy, &r);
    o = body_json(&r);
    CHECK_MSG(r.status == 200, "%s", r.body);
    char *text = strdup(choice_text(o, 0, 0) ? choice_text(o, 0, 0) : "");
    json_t *lp = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "logprobs");
    size_t ntok = json_array_size(json_object_get(lp, "tokens"));
    long long completion = json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens"));
    CHECK(ntok > 0 && (long long)ntok == completion && completion <= 12);
    for (size_t k = 0; k < ntok; k++) {
        /* greedy: the chosen token is the most likely one */
        json_t *tops = json_array_get(json_object_get(lp, "top_logprobs"), k);
        double best = -1e9, chosen = json_real_value(json_array_get(json_object_get(lp, "token_logprobs"), k));
        const char *kk;
        json_t *v;
        json_object_foreach(tops, kk, v) best = fmax(best, json_real_value(v));
        CHECK(chosen <= 0 && fabs(chosen - best) < 1e-5 && json_object_size(tops) >= 1 && json_object_size(tops) <= 3);
    }
    CHECK(!strncmp(json_string_value(json_object_get(o, "id")), "cmpl-", 5));
    json_decref(o);
    http_resp_free(&r);

    /* the same request streamed gives the same text, chunk by chunk, then [DONE] */
    req("POST", "/v1/completions", key_a,
        "{\"model\":\"tiny\",\"prompt\":\"the cat\",\"max_tokens\":12,\"temperature\":0,\"stream\":true}", &r);
    dl_buf st = {0};
    dl_buf_append(&st, "", 0);
    char ct[64];
    CHECK(r.status == 200 && http_header(&r, "Content-Type", ct, sizeof ct) && !strcmp(ct, "text/event-stream"));
    CHECK_MSG(stream_text(r.body, &st, 0, NULL) > 1, "stream: %s", r.body);
    CHECK_MSG(!strcmp(st.data, text), "streamed '%s' vs whole '%s'", st.data, text);
    dl_buf_free(&st);
    http_resp_free(&r);
    free(text);

    req("POST", "/v1/chat/completions", key_a,
        "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":6,\"seed\":3,"
        "\"logprobs\":true,\"top_logprobs\":2,\"n\":2}", &r);
    o = body_json(&r);
    CHECK_MSG(r.status == 200 && json_array_size(json_object_get(o, "choices")) == 2, "%s", r.body);
    CHECK(!strcmp(json_string_value(json_object_get(o, "object")), "chat.completion"));
    json_t *content = json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 1), "logprobs"), "content");
    CHECK(json_array_size(content) >= 1 && json_array_size(json_object_get(json_array_get(content, 0), "top_logprobs")) == 2);
    char *chat_text = strdup(choice_text(o, 0, 1) ? choice_text(o, 0, 1) : "");
    json_decref(o);
    http_resp_free(&r);

    /* a seed fixes the text, streamed or not; the usage chunk comes before [DONE] */
    req("POST", "/v1/chat/completions", key_a,
        "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":6,\"seed\":3,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &r);
    json_t *usage = NULL;
    dl_buf_append(&st, "", 0);
    CHECK(stream_text(r.body, &st, 1, &usage) > 0 && !strcmp(st.data, chat_text));
    CHECK(usage && json_integer_value(json_object_get(usage, "total_tokens")) > 0);
    json_decref(usage);
    dl_buf_free(&st);
    free(chat_text);
    http_resp_free(&r);

    /* a prompt of token ids, a list of prompts, n, stop */
    req("POST", "/v1/completions", key_a, "{\"model\":\"tiny\",\"prompt\":[[116,104],\"a dog\"],\"n\":2,\"max_tokens\":4,\"stop\":[\"zzz\"]}", &r);
    o = body_json(&r);
    CHECK_MSG(r.status == 200 && json_array_size(json_object_get(o, "choices")) == 4, "%s", r.body);
    CHECK(json_integer_value(json_object_get(json_object_get(o, "usage"), "prompt_tokens")) >= 3);
    json_decref(o);
    http_resp_free(&r);

    req("GET", "/metrics", NULL, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body, "distil_requests_total{route=\"/v1/completions\",status=\"200\"}"));
    CHECK(strstr(r.body, "distil_request_duration_seconds_bucket{le=\"+Inf\"}") && strstr(r.body, "distil_queue_depth 0"));
    http_resp_free(&r);
}

static void test_errors(void) {
    http_resp r;
    const char *ok = "{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":2}";
    req("POST", "/v1/completions", NULL, ok, &r), expect_error(&r, 401, "invalid_api_key"), http_resp_free(&r);
    req("POST", "/v1/completions", "dk-not-a-key", ok, &r), expect_error(&r, 401, "invalid_api_key"), http_resp_free(&r);
    req("GET", "/v1/nothing", key_a, NULL, &r), expect_error(&r, 404, NULL), http_resp_free(&r);
    req("GET", "/v1/completions", key_a, NULL, &r), expect_error(&r, 405, NULL), http_resp_free(&r);
    req("POST", "/v1/completions", key_a, "{\"model\":\"other\",\"prompt\":\"x\"}", &r);
    expect_error(&r, 404, "model_not_found"), http_resp_free(&r);
    req("POST", "/v1/completions", key_a, "{\"model\":\"tiny\",\"prompt\":\"x\",\"temperature\":\"hot\"}", &r);
    expect_error(&r, 400, NULL);
    CHECK(strstr(r.body, "temperature") != NULL);
    http_resp_free(&r);
    req("POST", "/v1/completions", key_a, "{\"model\":\"tiny\",\"prompt\":", &r), expect_error(&r, 400, NULL), http_resp_free(&r);
    req("POST", "/v1/completions", key_a, "{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":100000}", &r);
    expect_error(&r, 400, "context_length_exceeded"), http_resp_free(&r);
    req("POST", "/v1/completions", key_a, "{\"model\":\"tiny\",\"prompt\":[99999]}", &r);
    expect_error(&r, 400, NULL), http_resp_free(&r);

    /* bodies over the limit: announced by Content-Length, or sent chunked */
    char *big = malloc(9001);
    memset(big, ' ', 9000);
    big[9000] = 0;
    req("POST", "/v1/completions", key_a, big, &r), expect_error(&r, 413, NULL), http_resp_free(&r);
    dl_buf chunked = {0};
    dl_buf_printf(&chunked, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", key_a);
    for (int i = 0; i < 3; i++) dl_buf_printf(&chunked, "%x\r\n%.4000s\r\n", 4000, big);
    dl_buf_printf(&chunked, "0\r\n\r\n");
    atomic_fetch_add(&logged_requests, 1);
    CHECK(http_raw(port, chunked.data, chunked.len, &r, 10.0) == 0);
    expect_error(&r, 413, NULL), http_resp_free(&r);
    dl_buf_free(&chunked);
    free(big);

    /* requests per minute: 2, then 429 with Retry-After */
    for (int i = 0; i < 2; i++) {
        req("GET", "/v1/models", key_rpm, NULL, &r);
        CHECK(r.status == 200);
        http_resp_free(&r);
    }
    req("GET", "/v1/models", key_rpm, NULL, &r);
    expect_error(&r, 429, "rate_limit_exceeded");
    char ra[32];
    CHECK(http_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1 && atoi(ra) <= 60);
    http_resp_free(&r);

    /* quota of 40 tokens: a request reserving more is refused, smaller ones pass until it is used */
    req("POST", "/v1/completions", key_quota, "{\"model\":\"tiny\",\"prompt\":\"the cat\",\"max_tokens\":50}", &r);
    expect_error(&r, 429, "insufficient_quota"), http_resp_free(&r);
    int passed = 0, refused = 0;
    for (int i = 0; i < 8 && !refused; i++) {
        req("POST", "/v1/completions", key_quota, "{\"model\":\"tiny\",\"prompt\":\"the cat\",\"max_tokens\":8}", &r);
        passed += r.status == 200;
        if (r.status == 429) expect_error(&r, 429, "insufficient_quota"), refused = 1;
        http_resp_free(&r);
    }
    CHECK_MSG(passed >= 1 && passed <= 4 && refused, "quota: %d passed, refused %d", passed, refused);

    /* tokens per minute: 20. A request is let in while the bucket holds a token, and pays for
     * what it used when it ends; so the first refusal comes once the requests let in have used
     * the 20, and not before */
    long long used = 0, last = 0;
    int tpm_ok = 0, tpm_refused = 0;
    for (int i = 0; i < 10 && !tpm_refused; i++) {
        req("POST", "/v1/completions", key_tpm, "{\"model\":\"tiny\",\"prompt\":\"the cat\",\"max_tokens\":7}", &r);
        if (r.status == 200) {
            json_t *o = body_json(&r);
            last = json_integer_value(json_object_get(json_object_get(o, "usage"), "total_tokens"));
            used += last;
            tpm_ok++;
            json_decref(o);
        } else {
            expect_error(&r, 429, "rate_limit_exceeded");
            CHECK(http_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1);
            tpm_refused = 1;
        }
        http_resp_free(&r);
    }
    CHECK_MSG(tpm_refused && used >= 19 && used - last < 20, "tpm 20: %d requests used %lld tokens (last %lld), refused %d",
              tpm_ok, used, last, tpm_refused);

    /* a key revoked by another process is refused from the next request on */
    dl_error err;
    char tmp[DL_KEY_TEXT_MAX];
    long long id;
    dl_key_limits none = {0};
    CHECK(dl_keys_create(db_path, "temp", &none, tmp, &id, &err) == 0);
    req("GET", "/v1/models", tmp, NULL, &r); CHECK(r.status == 200); http_resp_free(&r);
    CHECK(dl_keys_revoke(db_path, "temp", &err) == 0);
    req("GET", "/v1/models", tmp, NULL, &r), expect_error(&r, 401, "invalid_api_key"), http_resp_free(&r);
    CHECK(dl_keys_revoke(db_path, "temp", &err) == -1 && strstr(err.msg, "no active key"));

    /* broken HTTP and broken bodies: an error at most, never a dead server */
    const char *raw[] = {"GARBAGE\r\n\r\n", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\"",
                         "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"a\":\"\xff\xfe\"}"};
    for (int i = 0; i < 3; i++) {
        if (i > 0) atomic_fetch_add(&logged_requests, 1);
        http_raw(port, raw[i], strlen(raw[i]), &r, 5.0);
        http_resp_free(&r);
    }
    req("GET", "/health", NULL, NULL, &r); CHECK(r.status == 200); http_resp_free(&r);
}

/* ---- concurrency ------------------------------------------------------------------------------ */

typedef struct {
    int id, ok, bad;
    char text[512];
} client;

static const char *SOLO_BODY = "{\"model\":\"tiny\",\"prompt\":\"the quick\",\"max_tokens\":24,\"temperature\":0}";

static void *client_main(void *arg) {
    client *c = arg;
    for (int i = 0; i < 5; i++) {
        http_resp r;
        const char *body = i == 0 ? SOLO_BODY
                           : i == 1 ? "{\"model\":\"tiny\",\"prompt\":\"a dog\",\"max_tokens\":16,\"stream\":true}"
                           : i == 2 ? "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"yo\"}],\"max_tokens\":16}"
                           : i == 3 ? "{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":-1}"
                                    : "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":20,\"logprobs\":2}";
        const char *path = i == 2 ? "/v1/chat/completions" : "/v1/completions";
        atomic_fetch_add(&logged_requests, 1);
        if (http_request(port, "POST", path, key_a, body, &r, 30.0)) {
            c->bad++;
            continue;
        }
        int want = i == 3 ? 400 : 200;
        if (r.status == want) c->ok++;
        else c->bad++;
        if (i == 0 && r.status == 200) {
            json_error_t je;
            json_t *o = json_loads(r.body, JSON_ALLOW_NUL, &je);
            const char *t = o ? choice_text(o, 0, 0) : NULL;
            snprintf(c->text, sizeof c->text, "%s", t ? t : "");
            json_decref(o);
        }
        http_resp_free(&r);
    }
    return NULL;
}

static long long metric(const char *name) {
    http_resp r;
    if (http_request(port, "GET", "/metrics", NULL, NULL, &r, 10.0)) return -1;
    const char *p = strstr(r.body, name);
    long long v = -1;
    while (p && p > r.body && p[-1] != '\n') p = strstr(p + 1, name);
    if (p) sscanf(p + strlen(name), " %lld", &v);
    http_resp_free(&r);
    return v;
}

static void test_concurrent_clients(void) {
    http_resp r;
    req("POST", "/v1/completions", key_a, SOLO_BODY, &r);
    json_t *o = body_json(&r);
    char *solo = strdup(choice_text(o, 0, 0) ? choice_text(o, 0, 0) : "");
    json_decref(o);
    http_resp_free(&r);
    long long steps0 = metric("distil_decode_steps_total"), rows0 = metric("distil_decode_rows_total");
    enum { NC = 8 };
    client cl[NC];
    pthread_t th[NC];
    for (int i = 0; i < NC; i++) {
        cl[i] = (client){.id = i};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    int ok = 0, bad = 0, same = 0;
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        ok += cl[i].ok;
        bad += cl[i].bad;
        same += !strcmp(cl[i].text, solo);
    }
    CHECK_MSG(ok == NC * 5 && bad == 0, "%d ok, %d bad", ok, bad);
    /* greedy text does not depend on who else was in the batch */
    CHECK_MSG(same == NC, "%d of %d concurrent greedy answers equal the solo one", same, NC);
    long long steps = metric("distil_decode_steps_total") - steps0, rows = metric("distil_decode_rows_total") - rows0;
    CHECK_MSG(steps > 0 && rows > steps * 3 / 2, "concurrent requests were not batched: %lld rows in %lld steps", rows, steps);
    free(solo);
}

/* One slot and one queue place: with both taken, the next request gets 503. */
static void *long_request(void *arg) {
    http_resp *r = arg;
    atomic_fetch_add(&logged_requests, 1);
    http_request(port, "POST", "/v1/completions", key_a,
                 "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":1000,\"temperature\":1}", r, 60.0);
    return NULL;
}

static int wait_metric(const char *name, long long want) {
    for (int i = 0; i < 2000; i++) {
        if (metric(name) == want) return 1;
        usleep(2000);
    }
    return 0;
}

static void test_queue_full(void) {
    http_resp r1, r2, r3;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, long_request, &r1);
    CHECK(wait_metric("distil_active_choices", 1));
    pthread_create(&t2, NULL, long_request, &r2);
    CHECK(wait_metric("distil_queue_depth", 1));
    req("POST", "/v1/completions", key_a, "{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":2}", &r3);
    expect_error(&r3, 503, "overloaded");
    http_resp_free(&r3);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(r1.status == 200 && r2.status == 200);
    http_resp_free(&r1);
    http_resp_free(&r2);
}

/* ---- drain ------------------------------------------------------------------------------------ */

static void *stream_request(void *arg) {
    http_resp *r = arg;
    atomic_fetch_add(&logged_requests, 1);
    http_request(port, "POST", "/v1/completions", key_a,
                 "{\"model\":\"tiny\",\"prompt\":\"a\",\"max_tokens\":900,\"stream\":true}", r, 60.0);
    return NULL;
}

static void test_drain(dl_server *s) {
    http_resp r1, r2;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, long_request, &r1);
    pthread_create(&t2, NULL, stream_request, &r2);
    CHECK(wait_metric("distil_active_choices", 2));
    int old_port = port;
    CHECK(dl_serve_stop(s) == 0); /* nothing had to be cancelled */
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    json_t *o = body_json(&r1);
    CHECK_MSG(r1.status == 200 &&
              json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens")) == 1000, "%s", r1.body);
    json_decref(o);
    dl_buf t = {0};
    CHECK(r2.status == 200 && stream_text(r2.body, &t, 0, NULL) > 100); /* ended with [DONE] */
    dl_buf_free(&t);
    http_resp_free(&r1);
    http_resp_free(&r2);
    CHECK(http_connect(old_port, 1.0) < 0); /* no longer listening */
}

static long long db_count(const char *where) {
    sqlite3 *db;
    sqlite3_stmt *st;
    long long n = -1;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM usage WHERE %s", where);
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static void test_usage_log(void) {
    /* first, before this test opens the db: closing the server's connection removed the WAL */
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    struct stat sb;
    CHECK_MSG(stat(wal, &sb) != 0, "the WAL is still there: the db was not closed cleanly");
    long long rows = db_count("1");
    CHECK_MSG(rows == atomic_load(&logged_requests), "%lld usage rows for %d requests", rows, atomic_load(&logged_requests));
    CHECK(db_count("endpoint = '/health' OR endpoint = '/metrics'") == 0);
    CHECK(db_count("status = 200 AND key_name = 'alice' AND prompt IS NOT NULL AND length(prompt_hash) = 64") > 40);
    CHECK(db_count("status = 401 AND key_id IS NULL") >= 2);
    CHECK(db_count("status = 401 AND key_name = 'temp'") == 1); /* the revoked key is named */
    CHECK(db_count("status = 429 AND key_name = 'slow' AND error LIKE 'Rate limit%'") == 1);
    CHECK(db_count("status = 413") == 2 && db_count("status = 503") == 1);
    CHECK(db_count("endpoint = '/v1/completions' AND status = 200 AND max_tokens = 12 AND temperature = 0 AND logprobs = 3 "
                   "AND completion_tokens > 0 AND latency_ms > 0 AND client = '127.0.0.1'") == 1);
    CHECK(db_count("completion_tokens = 1000") == 3);
    /* the key's running total matches its rows */
    sqlite3 *db;
    sqlite3_stmt *st;
    long long used = -1, sum = -2;
    sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
    if (sqlite3_prepare_v2(db, "SELECT (SELECT tokens_used FROM api_keys WHERE name = 'alice'), (SELECT sum(prompt_tokens + "
                               "completion_tokens) FROM usage WHERE key_name = 'alice')", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        used = sqlite3_column_int64(st, 0);
        sum = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECK_MSG(used == sum && used > 0, "tokens_used %lld, rows say %lld", used, sum);
}

static void test_no_auth_no_prompts(void) {
    dl_server *s = start(4, 8, 1, 0);
    http_resp r;
    req("POST", "/v1/completions", NULL, "{\"model\":\"tiny\",\"prompt\":\"secret words\",\"max_tokens\":3}", &r);
    CHECK_MSG(r.status == 200, "%s", r.body);
    http_resp_free(&r);
    dl_serve_stop(s);
    CHECK(db_count("prompt IS NULL AND prompt_hash IS NOT NULL AND key_id IS NULL AND status = 200") == 1);
    CHECK(db_count("prompt LIKE '%secret%'") == 0);
}

/* Past the drain deadline, what is still running is cancelled: a 503 for a whole response, an
 * error event and [DONE] for a stream; both are still logged. */
static void test_drain_deadline(void) {
    drain_seconds = 0.05;
    dl_server *s = start(4, 8, 0, 1);
    http_resp r1, r2;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, long_request, &r1);
    pthread_create(&t2, NULL, stream_request, &r2);
    CHECK(wait_metric("distil_active_choices", 2));
    CHECK(dl_serve_stop(s) == 2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    expect_error(&r1, 503, "shutting_down");
    CHECK_MSG(r2.status == 200 && strstr(r2.body, "\"shutting_down\"") && strstr(r2.body, "data: [DONE]\n\n"), "%s", r2.body);
    http_resp_free(&r1);
    http_resp_free(&r2);
    CHECK(db_count("status = 503 AND error LIKE '%cancelled%'") == 1);
    CHECK(db_count("status = 200 AND stream = 1 AND error LIKE '%cancelled%' AND completion_tokens < 900") == 1);
}

int main(int argc, char **argv) {
    (void)argc;
    dl_ops_tune_runtime(argv); /* idle OpenMP and OpenBLAS threads sleep instead of spinning */
    const char *tmp = test_tmpdir("serve");
    snprintf(model_dir, sizeof model_dir, "%s/tiny", tmp);
    snprintf(db_path, sizeof db_path, "%s/usage.db", tmp);
    make_model_dir(model_dir, 96, 3, 192, 1100, 3.0f, 0, 5);
    make_keys();
    dl_server *s = start(1, 1, 0, 1);
    test_queue_full();
    dl_serve_stop(s);
    s = start(16, 64, 0, 1);
    test_routes();
    test_errors();
    test_concurrent_clients();
    test_drain(s);
    test_usage_log();
    test_no_auth_no_prompts();
    test_drain_deadline();
    TEST_MAIN_END();
}
