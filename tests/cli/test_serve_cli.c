/* `distil keys` and `distil serve` as a user runs them: a key is printed once and never stored
 * or logged in clear; revoking works once; bad flags and files fail cleanly. The server started
 * as a process answers, and on SIGTERM finishes the requests in flight, logs them, closes the
 * database cleanly (no WAL left) and exits 0. */
#include "cli_util.h"
#include "ops/ops.h"
#include "serve/http_client.h"
#include "serve/serve_fixture.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

static const char *tmp;
static char db[700], model[700];

static int file_contains(const char *path, const char *needle) {
    char *data;
    size_t len;
    dl_error err;
    if (dl_read_file(path, &data, &len, &err)) return -1;
    int found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static void test_keys(void) {
    char args[2048], key[128];
    snprintf(args, sizeof args, "keys create --db '%s' --name alice --rpm 60 --quota-tokens 1000", db);
    run_result *r = run_distil(tmp, args);
    CHECK_MSG(r->status == 0, "%s", r->err);
    snprintf(key, sizeof key, "%.127s", r->out);
    key[strcspn(key, "\n")] = 0;
    CHECK_MSG(strlen(key) == 46 && !strncmp(key, "dk-", 3) && strlen(r->out) == 47, "key line: [%s]", r->out);
    CHECK(strstr(r->err, "shown only this once") && !strstr(r->err, key));
    CHECK(file_contains(db, key) == 0); /* only a hash is stored */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.10s", key);

    snprintf(args, sizeof args, "keys list --db '%s'", db);
    r = run_distil(tmp, args);
    CHECK(r->status == 0 && strstr(r->out, "alice") && strstr(r->out, prefix) && strstr(r->out, "active"));
    CHECK(!strstr(r->out, key) && strstr(r->out, "1000"));

    snprintf(args, sizeof args, "keys create --db '%s' --name alice", db);
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "already exists");
    snprintf(args, sizeof args, "keys create --db '%s' --name bob --rpm -1", db);
    r = run_distil(tmp, args);
    CHECK(r->status == 2 && strstr(r->err, "--rpm"));
    snprintf(args, sizeof args, "keys revoke --db '%s'", db);
    r = run_distil(tmp, args);
    CHECK(r->status == 2 && strstr(r->err, "--name or --id"));

    snprintf(args, sizeof args, "keys revoke --db '%s' --name alice", db);
    r = run_distil(tmp, args);
    CHECK_MSG(r->status == 0, "%s", r->err);
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "no active key named 'alice'");
    snprintf(args, sizeof args, "keys list --db '%s'", db);
    r = run_distil(tmp, args);
    CHECK(r->status == 0 && strstr(r->out, "revoked"));

    char notdb[700];
    snprintf(notdb, sizeof notdb, "%s/not.db", tmp);
    write_text(notdb, "this is a text file, not a database, and it is long enough to have a header......\n");
    snprintf(args, sizeof args, "keys list --db '%s'", notdb);
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "not a database");
    r = run_distil(tmp, "keys frobnicate");
    CHECK(r->status == 2 && strstr(r->err, "unknown command"));
}

static void test_serve_bad_flags(void) {
    char args[2048];
    snprintf(args, sizeof args, "serve --model '%s/nope' --db '%s' --port 0", tmp, db);
    run_result *r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "nope");
    snprintf(args, sizeof args, "serve --model '%s' --db '%s' --port 70000", model, db);
    r = run_distil(tmp, args);
    CHECK(r->status == 2 && strstr(r->err, "--port"));
    snprintf(args, sizeof args, "serve --model '%s' --db '%s' --host not-an-ip --port 0", model, db);
    r = run_distil(tmp, args);
    CHECK_CLEAN_ERROR(r, "not-an-ip");
    r = run_distil(tmp, "serve --db x.db");
    CHECK(r->status == 2 && strstr(r->err, "--model is required"));
}

/* ---- a server process ------------------------------------------------------------------------ */

static int port;
static const char *KEY;

static pid_t spawn_server(const char *out_path, const char *err_path) {
    const char *args[] = {"serve", "--model", model, "--db", db, "--port", "0", "--max-batch", "4", NULL};
    return spawn_distil(out_path, err_path, args);
}

static void *long_stream(void *arg) {
    http_request(port, "POST", "/v1/completions", KEY,
                 "{\"model\":\"m\",\"prompt\":\"the\",\"max_tokens\":700,\"stream\":true}", arg, 60.0);
    return NULL;
}

static void *long_whole(void *arg) {
    http_request(port, "POST", "/v1/chat/completions", KEY,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":700}", arg, 60.0);
    return NULL;
}

static int active_choices(void) {
    http_resp r;
    if (http_request(port, "GET", "/metrics", NULL, NULL, &r, 5.0)) return -1;
    const char *p = strstr(r.body, "\ndistil_active_choices ");
    int n = p ? atoi(p + strlen("\ndistil_active_choices ")) : -1;
    http_resp_free(&r);
    return n;
}

static long long rows(void) {
    sqlite3 *h;
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM usage WHERE status = 200 AND completion_tokens = 700", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return n;
}

static void test_sigterm_drains(void) {
    char args[2048], key[128], out_path[700], err_path[700], wal[720];
    snprintf(args, sizeof args, "keys create --db '%s' --name carol", db);
    run_result *r = run_distil(tmp, args);
    snprintf(key, sizeof key, "%.46s", r->out);
    KEY = key;
    snprintf(out_path, sizeof out_path, "%s/serve.out", tmp);
    snprintf(err_path, sizeof err_path, "%s/serve.err", tmp);
    pid_t pid = spawn_server(out_path, err_path);
    port = wait_serve_port(out_path, pid);
    CHECK_MSG(port > 0, "the server did not start");
    if (port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    http_resp h, a, b;
    CHECK(http_request(port, "GET", "/health", NULL, NULL, &h, 5.0) == 0 && h.status == 200);
    http_resp_free(&h);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, long_stream, &a);
    pthread_create(&tb, NULL, long_whole, &b);
    int both = 0;
    for (int i = 0; i < 3000 && !both; i++) {
        both = active_choices() == 2;
        if (!both) usleep(2000);
    }
    CHECK_MSG(both, "the two requests were never in flight together");
    kill(pid, SIGTERM);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    CHECK_MSG(a.status == 200 && a.body && strstr(a.body, "data: [DONE]\n\n"), "stream: %d", a.status);
    CHECK_MSG(b.status == 200 && b.body && strstr(b.body, "\"completion_tokens\":700"), "whole: %d %s", b.status, b.body ? b.body : "");
    http_resp_free(&a);
    http_resp_free(&b);
    char log[65536];
    slurp(err_path, log, sizeof log);
    CHECK_MSG(strstr(log, "SIGTERM: draining") && strstr(log, "stopped") && !strstr(log, key), "server log: %s", log);
    /* checked before anything else opens the db: the last connection to close removes the WAL */
    snprintf(wal, sizeof wal, "%s-wal", db);
    struct stat sb;
    CHECK_MSG(stat(wal, &sb) != 0, "the WAL file is still there: the db was not closed cleanly");
    CHECK(rows() == 2); /* both finished requests logged */
    CHECK(http_connect(port, 1.0) < 0);
}

int main(int argc, char **argv) {
    (void)argc;
    dl_ops_tune_runtime(argv);
    tmp = test_tmpdir("serve-cli");
    snprintf(db, sizeof db, "%s/usage.db", tmp);
    snprintf(model, sizeof model, "%s/m", tmp);
    make_model_dir(model, 96, 3, 192, 800, 3.0f, 0, 9);
    test_keys();
    test_serve_bad_flags();
    test_sigterm_drains();
    TEST_MAIN_END();
}
