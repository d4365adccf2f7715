/* distil audit end to end: a usage db written by serve's own usage store (dl_usage_log, the code
 * the server logs with) and one by a real in-process server, read by the binary: the table, --json,
 * --report, --since/--until, and clean errors for bad flags and bad files. */
#include "cli_util.h"
#include "serve/http_client.h"
#include "serve/serve.h"
#include "serve/serve_fixture.h"
#include "serve/usage.h"
#include <jansson.h>

static const char *tmp;

static const char *path_of(int slot, const char *name) {
    static char p[4][800];
    snprintf(p[slot], sizeof p[slot], "%s/%s", tmp, name);
    return p[slot];
}

static void log_row(dl_usage *u, double t, long long key, const char *name, const char *client, const char *prompt,
                    int logprobs, long long completion, int with_text) {
    char hash[32];
    unsigned long long h = 1469598103934665603ull;
    for (const char *p = prompt; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(hash, sizeof hash, "%016llx", h);
    dl_usage_row r = {.time = t, .key_id = key, .key_name = name, .endpoint = "/v1/completions", .model = "m",
                      .status = 200, .max_tokens = 32, .temperature = 1, .top_p = 1, .n = 1, .logprobs = logprobs,
                      .stream = 0, .prompt_tokens = 12, .completion_tokens = completion, .prompt_hash = hash,
                      .prompt = with_text ? prompt : NULL, .latency_ms = 5, .client = client};
    dl_error err;
    if (dl_usage_log(u, &r, &err)) {
        fprintf(stderr, "log: %s\n", err.msg);
        exit(2);
    }
}

static const char *TOPICS[] = {"volcanoes", "tax law", "sourdough", "jazz piano", "orbital mechanics", "beekeeping",
                               "roman roads", "tidal power", "chess openings", "glaciers", "violin making", "lichens"};
static const char *WORDS[] = {"where", "did", "i", "leave", "my", "keys", "the", "weather", "looks", "grim", "today",
                              "can", "you", "fix", "this", "bug", "in", "loop", "please", "thanks", "what", "time",
                              "is", "dinner", "call", "mom", "later", "about", "trip", "plans"};

/* Twelve people (free-form prompts, no logprobs, random pace, own addresses) and a harvester
 * behind six keys (one template, logprobs always, two shared addresses, a steady pace). */
static void write_log(const char *db, int with_text) {
    dl_error err;
    dl_usage *u = dl_usage_open(db, &err);
    if (!u) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(2);
    }
    dl_rng r;
    dl_rng_seed(&r, 42);
    char prompt[512], name[32], client[32];
    for (int k = 1; k <= 12; k++) {
        snprintf(name, sizeof name, "person-%d", k);
        snprintf(client, sizeof client, "10.0.0.%d", k);
        double t = 1767225600 + k * 1000.0; /* 2026-01-01 */
        for (int i = 0; i < 20; i++) {
            t += -300 * log(1 - dl_rng_float(&r));
            int n = 0;
            for (int w = 0; w < 8; w++) n += sprintf(prompt + n, "%s%s", w ? " " : "", WORDS[dl_rng_below(&r, 30)]);
            log_row(u, t, k, name, client, prompt, -1, 5 + (long long)dl_rng_below(&r, 20), with_text);
        }
    }
    for (int k = 0; k < 6; k++) {
        snprintf(name, sizeof name, "svc-%d", k);
        snprintf(client, sizeof client, "172.16.0.%d", k % 2);
        double t = 1767225600 + 11.0 * k;
        for (int i = 0; i < 6; i++) {
            t += 600 + 20 * dl_rng_float(&r);
            snprintf(prompt, sizeof prompt,
                     "write a thorough textbook section on %s for chapter %d covering definitions worked examples and "
                     "common mistakes",
                     TOPICS[dl_rng_below(&r, 12)], (int)dl_rng_below(&r, 90));
            log_row(u, t, 100 + k, name, client, prompt, 5, 32, with_text);
        }
    }
    dl_usage_close(u);
}

static void test_table_json_report(void) {
    const char *db = path_of(0, "usage.db");
    write_log(db, 1);
    char args[2048];
    snprintf(args, sizeof args, "audit --db '%s'", db);
    run_result *r = run_distil(tmp, args);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK(strstr(r->out, "276 requests from 18 keys") && strstr(r->out, "prompt texts logged"));
    /* the six harvesting keys come first, flagged through their group; no person is flagged */
    const char *line = strstr(r->out, "\nscore");
    for (int i = 0; line && i < 6; i++) {
        line = strchr(line + 1, '\n');
        CHECK_MSG(line && strstr(line, "svc-") && strstr(line, " g1 ") && (strstr(line, " key ") || strstr(line, " group ")),
                  "line %d: %.120s", i, line ? line : "");
    }
    CHECK(!strstr(r->out, "person-1 (id"));
    CHECK(strstr(r->out, "group g1, score") && strstr(r->out, "asks for logprobs on 100%"));

    snprintf(args, sizeof args, "audit --db '%s' --json --report '%s'", db, path_of(1, "report.md"));
    r = run_distil(tmp, args);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    json_t *o = json_loads(r->out, 0, NULL);
    CHECK(o && json_integer_value(json_object_get(o, "requests")) == 276);
    json_t *keys = json_object_get(o, "keys");
    CHECK(json_array_size(keys) == 18);
    int flagged = 0, people_flagged = 0;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        int f = json_is_true(json_object_get(k, "flagged"));
        flagged += f;
        people_flagged += f && strncmp(json_string_value(json_object_get(k, "name")), "person-", 7) == 0;
    }
    CHECK_MSG(flagged == 6 && people_flagged == 0, "flagged %d people %d", flagged, people_flagged);
    json_t *g = json_array_get(json_object_get(o, "groups"), 0);
    CHECK(g && json_array_size(json_object_get(g, "keys")) == 6 && json_is_true(json_object_get(g, "flagged")));
    json_decref(o);
    char *report;
    size_t len;
    dl_error err;
    CHECK(dl_read_file(path_of(1, "report.md"), &report, &len, &err) == 0);
    CHECK(strstr(report, "# Harvest audit") && strstr(report, "## Flagged groups") && strstr(report, "svc-3"));
    free(report);

    /* --since / --until: before the harvester started there is nobody to flag */
    snprintf(args, sizeof args, "audit --db '%s' --until 2026-01-01T01:00:00Z --json", db);
    r = run_distil(tmp, args);
    o = json_loads(r->out, 0, NULL);
    CHECK_MSG(r->status == 0 && o, "status %d: %s", r->status, r->err);
    long long n = json_integer_value(json_object_get(o, "requests"));
    CHECK_MSG(n > 0 && n < 276, "requests %lld", n);
    json_decref(o);
}

static void test_without_texts(void) {
    const char *db = path_of(2, "hashes.db");
    write_log(db, 0);
    char args[1024];
    snprintf(args, sizeof args, "audit --db '%s'", db);
    run_result *r = run_distil(tmp, args);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK(strstr(r->out, "no prompt texts") && strstr(r->out, "hashes"));
    CHECK(!strstr(r->out, "person-1 (id"));
}

/* A real server logs two keys' requests; the audit reads them back. */
static void test_real_server(void) {
    const char *model = path_of(3, "model"), *db = path_of(2, "served.db");
    make_model_dir(model, 32, 1, 64, 128, 1.0f, 0, 3);
    dl_key_limits none = {0};
    char key_a[DL_KEY_TEXT_MAX], key_b[DL_KEY_TEXT_MAX];
    long long id_a, id_b;
    dl_error err;
    CHECK(dl_keys_create(db, "alpha", &none, key_a, &id_a, &err) == 0);
    CHECK(dl_keys_create(db, "beta", &none, key_b, &id_b, &err) == 0);
    dl_serve_cfg cfg;
    dl_serve_cfg_default(&cfg);
    cfg.model_dir = model;
    cfg.model_name = "m";
    cfg.port = 0;
    cfg.db_path = db;
    dl_server *s = dl_serve_start(&cfg, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    for (int i = 0; i < 6; i++) {
        char body[256];
        http_resp resp;
        snprintf(body, sizeof body, "{\"model\":\"m\",\"prompt\":\"the cat %d\",\"max_tokens\":4%s}", i,
                 i % 2 ? ",\"logprobs\":2" : "");
        CHECK(http_request(dl_serve_port(s), "POST", "/v1/completions", i < 4 ? key_a : key_b, body, &resp, 30) == 0);
        CHECK(resp.status == 200);
        http_resp_free(&resp);
    }
    dl_serve_stop(s);
    char args[1024];
    snprintf(args, sizeof args, "audit --db '%s' --json", db);
    run_result *r = run_distil(tmp, args);
    json_t *o = json_loads(r->out, 0, NULL);
    CHECK_MSG(r->status == 0 && o, "status %d: %s", r->status, r->err);
    json_t *keys = json_object_get(o, "keys");
    CHECK(json_array_size(keys) == 2);
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i), *counts = json_object_get(k, "counts"), *f = json_object_get(k, "features");
        int alpha = strcmp(json_string_value(json_object_get(k, "name")), "alpha") == 0;
        CHECK(json_integer_value(json_object_get(counts, "requests")) == (alpha ? 4 : 2));
        CHECK(json_integer_value(json_object_get(counts, "completion_tokens")) == (alpha ? 16 : 8));
        CHECK(json_integer_value(json_object_get(counts, "with_text")) == (alpha ? 4 : 2));
        CHECK(json_real_value(json_object_get(f, "logprobs_share")) == 0.5);
        CHECK(json_real_value(json_object_get(f, "saturation")) == 1.0); /* the model has no end token */
    }
    json_decref(o);
}

static void test_errors(void) {
    run_result *r = run_distil(tmp, "audit");
    CHECK(r->status == 2 && strstr(r->err, "distil: error: ") && strstr(r->err, "--db"));
    r = run_distil(tmp, "audit --db x.db --bogus");
    CHECK(r->status == 2 && strstr(r->err, "distil: error: "));
    char args[1024];
    snprintf(args, sizeof args, "audit --db '%s' --since yesterday", path_of(0, "usage.db"));
    r = run_distil(tmp, args);
    CHECK(r->status == 2);
    CHECK_CLEAN_ERROR(r, "is not a time");
    snprintf(args, sizeof args, "audit --db '%s' --since 2026-02-01 --until 2026-01-01", path_of(0, "usage.db"));
    r = run_distil(tmp, args);
    CHECK(r->status == 2);
    CHECK_CLEAN_ERROR(r, "--since must be before --until");
    write_text(path_of(1, "notadb.txt"), "hello, I am a text file and not a database at all, not even close.\n");
    snprintf(args, sizeof args, "audit --db '%s'", path_of(1, "notadb.txt"));
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "cannot read it as a usage db");
    snprintf(args, sizeof args, "audit --db '%s/none.db'", tmp);
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "no such file");
    /* a report that cannot be written: an error, and no stray output */
    snprintf(args, sizeof args, "audit --db '%s' --report '%s/no/such/dir/r.md'", path_of(0, "usage.db"), tmp);
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "r.md");
    r = run_distil(tmp, "audit --help");
    CHECK(r->status == 0 && strstr(r->out, "--db") && strstr(r->out, "--json") && strstr(r->out, "--report") &&
          strstr(r->out, "--since") && strstr(r->out, "--until"));
}

int main(void) {
    tmp = test_tmpdir("audit-cli");
    test_table_json_report();
    test_without_texts();
    test_real_server();
    test_errors();
    TEST_MAIN_END();
}
