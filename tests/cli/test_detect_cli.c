/* distil detect end to end, against `distil serve --watermark-key-file` on loopback (a tiny
 * random model made here):
 *  - detect api finds the watermark in what the server generates (p < 1e-6), writes its report
 *    and keeps the harvest; with another key the same completions are not flagged;
 *  - detect text on those completions (a file, stdin, --json) finds it too; detect model runs
 *    the served model as a suspect over them (and with --unmarked-text excludes nothing);
 *  - errors are clean: no or empty key file, bad settings (exit 2), a text that is not UTF-8, a
 *    suspect folder that is not a model, a tokenizer that differs; a text with nothing to score
 *    is reported as p = 1 (exit 0); --help tells every flag. */
#include "cli_util.h"
#include "tiny_model.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include <jansson.h>
#include <signal.h>
#include <time.h>


static char tmp[512], model_dir[700], url[128];
static pid_t server = -1;

static const char *path_of(int slot, const char *name) {
    static char p[8][800];
    snprintf(p[slot], sizeof p[slot], "%s/%s", tmp, name);
    return p[slot];
}

static int make_model(void) { return make_tiny_model(model_dir, 256, 4.0f); }

/* The server in the background with the watermark, and its URL. */
static int start_server(void) {
    const char *args[] = {"serve", "--model", model_dir, "--db", path_of(2, "usage.db"), "--port", "0", "--threads",
                          "1", "--no-auth", "--watermark-key-file", path_of(3, "wm.key"), NULL};
    const char *out = path_of(0, "serve.out");
    server = spawn_distil(out, path_of(1, "serve.err"), args);
    int port = wait_serve_port(out, server);
    if (port > 0) return snprintf(url, sizeof url, "http://127.0.0.1:%d", port), 0;
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    server = -1;
    return -1;
}

static void stop_server(void) {
    if (server > 0) stop_distil(server);
}

static json_t *json_out(const run_result *r) {
    json_error_t je;
    json_t *o = json_loads(r->out, 0, &je);
    CHECK_MSG(o != NULL, "not JSON: %s", r->out);
    return o;
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* the completions of the harvest, one after another, into a text file */
static void completions_text(const char *harvest, const char *path) {
    FILE *in = fopen(harvest, "rb"), *out = fopen(path, "wb");
    char *line = NULL;
    size_t cap = 0;
    while (in && out && getline(&line, &cap, in) > 0) {
        json_t *o = json_loads(line, JSON_ALLOW_NUL, NULL), *c = json_object_get(o, "completion");
        if (json_is_string(c)) fwrite(json_string_value(c), 1, json_string_length(c), out);
        json_decref(o);
    }
    free(line);
    if (in) fclose(in);
    if (out) fclose(out);
}

static void test_api_and_text(void) {
    const char *prompts = path_of(4, "prompts.jsonl"), *harvest = path_of(5, "harvest.jsonl"),
               *report = path_of(6, "api.md"), *text = path_of(7, "completions.txt");
    write_text(prompts, "{\"id\": 1, \"prompt\": \"the cat\"}\n{\"id\": 2, \"prompt\": \"the dog sat\"}\n"
                        "{\"id\": 3, \"prompt\": \"a fox\"}\n{\"id\": 4, \"prompt\": \"on the mat\"}\n"
                        "{\"id\": 5, \"prompt\": \"the lazy\"}\n{\"id\": 6, \"prompt\": \"quick brown\"}\n");
    char a[8000];
    snprintf(a, sizeof a, "detect api --key-file %s --endpoint %s --prompts %s --tokenizer %s/tokenizer.json "
             "--max-tokens 100 --seed 7 --json --report %s --harvest-out %s --wm-delta 2",
             path_of(3, "wm.key"), url, prompts, model_dir, report, harvest);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "detect api: status %d: %s", r->status, r->err);
    json_t *o = json_out(r);
    printf("detect api: %s", r->out);
    CHECK(!strcmp(json_string_value(json_object_get(o, "mode")), "api") && num(o, "sequences") == 6);
    CHECK(num(o, "scored") > 300 && num(o, "log10_p") < -6 && num(o, "z") > 5 && num(o, "failed") == 0);
    json_decref(o);
    char *md = NULL;
    size_t n;
    CHECK(dl_read_file(report, &md, &n, NULL) == 0 && strstr(md, "# distil detect api") && strstr(md, "| delta") &&
          strstr(md, "not the probability"));
    free(md);

    /* the same completions as one text: detect text, from a file and from stdin */
    completions_text(harvest, text);
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json --json %s", path_of(3, "wm.key"),
             model_dir, text);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "detect text: %s", r->err);
    o = json_out(r);
    CHECK(num(o, "log10_p") < -6 && num(o, "tokens") > 500);
    static char first[sizeof r->out];
    memcpy(first, r->out, sizeof first);
    json_decref(o);
    /* run_distil gives the program /dev/null as stdin: this one is run by hand */
    snprintf(a, sizeof a, "%s detect text --key-file %s --tokenizer %s/tokenizer.json --json - < %s > %s", DISTIL_BIN,
             path_of(3, "wm.key"), model_dir, text, path_of(0, "stdin.out"));
    CHECK(system(a) == 0);
    static char from_stdin[sizeof r->out];
    slurp(path_of(0, "stdin.out"), from_stdin, sizeof from_stdin);
    CHECK_MSG(!strcmp(from_stdin, first), "stdin gives '%s', the file '%s'", from_stdin, first);
    /* the human lines */
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json %s", path_of(3, "wm.key"), model_dir, text);
    r = run_distil(tmp, a);
    CHECK(r->status == 0 && strstr(r->out, "green: ") && strstr(r->out, "z-score: ") && strstr(r->out, "p-value: "));

    /* another key: nothing to see */
    write_text(path_of(0, "other.key"), "some other key");
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json --json %s", path_of(0, "other.key"),
             model_dir, text);
    r = run_distil(tmp, a);
    o = json_out(r);
    CHECK_MSG(r->status == 0 && num(o, "z") < 5, "another key: %s", r->out);
    json_decref(o);

    /* detect model: the served model as the suspect, reading the completions */
    snprintf(a, sizeof a, "detect model --key-file %s --suspect %s --text %s --tokenizer %s/tokenizer.json --json "
             "--report %s", path_of(3, "wm.key"), model_dir, text, model_dir, path_of(6, "model.md"));
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "detect model: %s", r->err);
    o = json_out(r);
    CHECK(!strcmp(json_string_value(json_object_get(o, "mode")), "model") && num(o, "scored") > 0 &&
          num(o, "excluded") > 0);
    json_decref(o);
    CHECK(dl_path_exists(path_of(6, "model.md")));
    snprintf(a, sizeof a, "detect model --key-file %s --suspect %s --text %s --unmarked-text --json", path_of(3, "wm.key"),
             model_dir, text);
    r = run_distil(tmp, a);
    o = json_out(r);
    CHECK_MSG(r->status == 0 && num(o, "excluded") == 0 && num(o, "scored") > 0, "--unmarked-text: %s", r->out);
    json_decref(o);
}

static void test_errors(void) {
    char a[8000];
    const char *text = path_of(7, "completions.txt");
    run_result *r = run_distil(tmp, "detect text --tokenizer x.json");
    CHECK(r->status == 2 && strstr(r->err, "--key-file is required"));
    snprintf(a, sizeof a, "detect text --key-file %s/none --tokenizer %s/tokenizer.json %s", tmp, model_dir, text);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "none");
    write_text(path_of(0, "empty.key"), "");
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json %s", path_of(0, "empty.key"), model_dir,
             text);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "empty");
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json --wm-gamma 1 %s", path_of(3, "wm.key"),
             model_dir, text);
    r = run_distil(tmp, a);
    CHECK(r->status == 2 && strstr(r->err, "gamma"));
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json --wm-context 0 %s", path_of(3, "wm.key"),
             model_dir, text);
    r = run_distil(tmp, a);
    CHECK(r->status == 2 && strstr(r->err, "context"));
    r = run_distil(tmp, "detect sideways");
    CHECK(r->status == 2 && strstr(r->err, "unknown command"));

    write_text(path_of(1, "latin1.txt"), "na\xefve text");
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json %s", path_of(3, "wm.key"), model_dir,
             path_of(1, "latin1.txt"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "not valid UTF-8");

    write_text(path_of(1, "one.txt"), "a");
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json --json %s", path_of(3, "wm.key"),
             model_dir, path_of(1, "one.txt"));
    r = run_distil(tmp, a);
    json_t *o = json_out(r);
    CHECK(r->status == 0 && num(o, "scored") == 0 && num(o, "p") == 1.0);
    json_decref(o);
    snprintf(a, sizeof a, "detect text --key-file %s --tokenizer %s/tokenizer.json %s", path_of(3, "wm.key"), model_dir,
             path_of(1, "one.txt"));
    r = run_distil(tmp, a);
    CHECK(r->status == 0 && strstr(r->out, "no pair could be scored"));

    snprintf(a, sizeof a, "detect model --key-file %s --suspect %s --text %s", path_of(3, "wm.key"), tmp, text);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "not a model folder");
    dl_error err;
    dl_tokenizer *other = dl_tok_train("zz yy xx zz yy", 14, 262, NULL, &err);
    CHECK(other && dl_tok_save(other, path_of(2, "other.json"), &err) == 0);
    dl_tok_free(other);
    snprintf(a, sizeof a, "detect model --key-file %s --suspect %s --text %s --tokenizer %s", path_of(3, "wm.key"),
             model_dir, text, path_of(2, "other.json"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "not the watermark's tokenizer");
    snprintf(a, sizeof a, "detect api --key-file %s --endpoint http://127.0.0.1:1 --prompts %s --tokenizer %s/tokenizer.json "
             "--retries 0 --timeout 2", path_of(3, "wm.key"), path_of(4, "prompts.jsonl"), model_dir);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "detect api");
}

static void test_help(void) {
    run_result *r = run_distil(tmp, "detect --help");
    CHECK(r->status == 0 && strstr(r->out, "text") && strstr(r->out, "model") && strstr(r->out, "api"));
    const char *modes[] = {"text", "model", "api"};
    for (int i = 0; i < 3; i++) {
        char a[64];
        snprintf(a, sizeof a, "detect %s --help", modes[i]);
        r = run_distil(tmp, a);
        CHECK(r->status == 0 && strstr(r->out, "--key-file") && strstr(r->out, "--wm-gamma") &&
              strstr(r->out, "default 0.25") && strstr(r->out, "--report") && strstr(r->out, "p-value"));
    }
    r = run_distil(tmp, "serve --help");
    CHECK(strstr(r->out, "--watermark-key-file") && strstr(r->out, "--wm-delta") && strstr(r->out, "default 2") &&
          strstr(r->out, "--wm-context"));
    r = run_distil(tmp, "serve --model x --db y --wm-delta 3");
    CHECK(r->status == 2 && strstr(r->err, "need --watermark-key-file"));
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("detect-cli"));
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    write_text(path_of(3, "wm.key"), "the teacher's watermark key\n");
    if (make_model() || start_server()) {
        fprintf(stderr, "cannot start the server\n");
        stop_server();
        return 1;
    }
    test_api_and_text();
    stop_server();
    test_errors();
    test_help();
    TEST_MAIN_END();
}
