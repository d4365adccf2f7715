/* Reading usage dbs: the columns the audit needs, read-only; hostile files give clear errors and
 * malformed rows are counted and skipped, never trusted. (tests/cli/test_audit_cli.c reads a db
 * written by serve's own usage store.) */
#include "provenance/audit.h"
#include "test.h"
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

static const char *dir;

static void exec_sql(const char *path, const char *sql) {
    sqlite3 *db;
    char *msg = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sql: %s\n", msg ? msg : sqlite3_errmsg(db));
        exit(2);
    }
    sqlite3_close(db);
}

static const char *USAGE_COLUMNS =
    "CREATE TABLE usage(id INTEGER PRIMARY KEY, time REAL NOT NULL, key_id INTEGER, key_name TEXT, endpoint TEXT,"
    " status INTEGER, max_tokens INTEGER, n INTEGER, logprobs INTEGER, prompt_tokens INTEGER,"
    " completion_tokens INTEGER, prompt_hash TEXT, prompt TEXT, client TEXT);";

static char *db_path(const char *name) {
    static char path[4][600];
    static int i;
    char *p = path[i++ % 4];
    snprintf(p, 600, "%s/%s", dir, name);
    return p;
}

/* Reads path; returns the status, the log in *out (freed by the caller) or NULL, err filled. */
static int read_db(const char *path, double since, double until, dl_audit_log **out, dl_error *err) {
    dl_audit_log *L = dl_audit_log_new(err);
    int rc = dl_audit_read_db(L, path, since, until, err);
    if (out && rc == 0) *out = L;
    else dl_audit_log_free(L);
    return rc;
}

static void expect_error(const char *path, const char *needle) {
    dl_error err = {{0}};
    CHECK_MSG(read_db(path, -INFINITY, INFINITY, NULL, &err) != 0 && strstr(err.msg, needle), "%s: '%s'", path, err.msg);
}

static void test_hostile_files(void) {
    expect_error(db_path("missing.db"), "no such file");
    expect_error(dir, "is a folder");
    char *text = db_path("text.db");
    FILE *f = fopen(text, "w");
    fprintf(f, "this is not a database, just some text that is long enough to look like a header......\n");
    fclose(f);
    expect_error(text, "cannot read it as a usage db");
    char *empty = db_path("empty.db");
    fclose(fopen(empty, "w"));
    expect_error(empty, "has no usage table");
    char *other = db_path("other.db");
    exec_sql(other, "CREATE TABLE things(a, b); INSERT INTO things VALUES(1, 2);");
    expect_error(other, "has no usage table");
    char *partial = db_path("partial.db");
    exec_sql(partial, "CREATE TABLE usage(time REAL, key_id INTEGER, status INTEGER);");
    expect_error(partial, "has no column 'key_name'");
}

/* A valid db cut short: SQLite notices, the audit reports it. */
static void test_truncated(void) {
    char *full = db_path("full.db"), *cut = db_path("cut.db");
    exec_sql(full, USAGE_COLUMNS);
    char sql[600];
    dl_buf b = {0};
    dl_buf_printf(&b, "BEGIN;");
    for (int i = 0; i < 3000; i++)
        dl_buf_printf(&b, "INSERT INTO usage(time, key_id, status, prompt_tokens, completion_tokens, prompt_hash, prompt)"
                          " VALUES(%d, %d, 200, 10, 10, 'h%d', 'some prompt text number %d with padding words');",
                      1000 + i, i % 7 + 1, i, i);
    dl_buf_printf(&b, "COMMIT;");
    exec_sql(full, b.data);
    dl_buf_free(&b);
    struct stat st;
    CHECK(stat(full, &st) == 0 && st.st_size > 8192);
    snprintf(sql, sizeof sql, "head -c %lld '%s' > '%s'", (long long)st.st_size / 2, full, cut);
    CHECK(system(sql) == 0);
    dl_error err = {{0}};
    dl_audit_log *L = NULL;
    int rc = read_db(cut, -INFINITY, INFINITY, &L, &err);
    CHECK_MSG(rc != 0 && (strstr(err.msg, "malformed") || strstr(err.msg, "cannot read")), "rc %d: %s", rc, err.msg);
    if (L) dl_audit_log_free(L);
    /* the full one reads */
    CHECK(read_db(full, -INFINITY, INFINITY, &L, &err) == 0);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, &err) == 0 && res.requests == 3000 && res.n_keys == 7);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Every malformed value skips its row; NULLs where the server writes them are fine. */
static void test_rows(void) {
    char *path = db_path("rows.db");
    exec_sql(path, USAGE_COLUMNS);
    exec_sql(path,
             "INSERT INTO usage(time, key_id, key_name, status, max_tokens, n, logprobs, prompt_tokens,"
             " completion_tokens, prompt_hash, prompt, client) VALUES"
             /* good rows */
             " (100, 1, 'alice', 200, 16, 1, 5, 10, 16, 'h1', 'hello there', '10.0.0.1'),"
             " (101, 1, 'alice', 200, NULL, NULL, NULL, 10, 3, 'h2', NULL, NULL),"
             " (102, NULL, NULL, 401, NULL, NULL, NULL, 0, 0, NULL, NULL, '10.0.0.2'),"
             " (103, 2, 'bob', 200, 16, 1, NULL, 10, 3, 'h3', x'00ff00', 7),"
             /* bad rows */
             " ('yesterday', 1, 'alice', 200, 16, 1, NULL, 10, 3, 'h4', 'p', 'c'),"
             " (104, 'one', 'alice', 200, 16, 1, NULL, 10, 3, 'h4', 'p', 'c'),"
             " (105, -3, 'alice', 200, 16, 1, NULL, 10, 3, 'h4', 'p', 'c'),"
             " (106, 1, 'alice', NULL, 16, 1, NULL, 10, 3, 'h4', 'p', 'c'),"
             " (107, 1, 'alice', 200, 'many', 1, NULL, 10, 3, 'h4', 'p', 'c'),"
             " (108, 1, 'alice', 200, 16, 1, 2.5, 10, 3, 'h4', 'p', 'c'),"
             " (109, 1, 'alice', 200, 16, 1, NULL, -10, 3, 'h4', 'p', 'c'),"
             " (110, 1, 'alice', 200, 16, 1, NULL, 10, 9000000000000000000, 'h4', 'p', 'c'),"
             " (111, 1, 'alice', 200, 16, 99999999999, NULL, 10, 3, 'h4', 'p', 'c'),"
             " (112, 1, 'alice', 200, 16, 1, NULL, NULL, 3, 'h4', 'p', 'c');");
    dl_error err;
    dl_audit_log *L = NULL;
    CHECK(read_db(path, -INFINITY, INFINITY, &L, &err) == 0);
    dl_audit_result res;
    CHECK(L && dl_audit_analyse(L, &res, &err) == 0);
    CHECK_MSG(res.requests == 4 && res.skipped_rows == 10, "requests %lld skipped %lld", res.requests, res.skipped_rows);
    CHECK(res.n_keys == 3);
    int seen_none = 0, seen_bob = 0;
    for (int k = 0; k < res.n_keys; k++) {
        seen_none |= res.keys[k].id == 0 && strcmp(res.keys[k].name, "(no key)") == 0;
        /* a blob prompt is no text; the hash still counts */
        seen_bob |= res.keys[k].id == 2 && res.keys[k].x.with_prompt == 1 && res.keys[k].x.with_text == 0;
        if (res.keys[k].id == 1) CHECK_CLOSE(res.keys[k].x.logprobs_share, 0.5, 1e-12, 0);
    }
    CHECK(seen_none && seen_bob && res.prompts_logged);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
    /* --since / --until: half-open */
    CHECK(read_db(path, 101, 103, &L, &err) == 0);
    CHECK(L && dl_audit_analyse(L, &res, &err) == 0 && res.requests == 2 && res.skipped_rows == 1);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* An empty log, a key name full of control bytes and broken UTF-8, a megabyte prompt. */
static void test_odd_content(void) {
    char *path = db_path("odd.db");
    exec_sql(path, USAGE_COLUMNS);
    dl_error err;
    dl_audit_log *L = NULL;
    dl_audit_result res;
    CHECK(read_db(path, -INFINITY, INFINITY, &L, &err) == 0);
    CHECK(L && dl_audit_analyse(L, &res, &err) == 0 && res.requests == 0 && res.n_keys == 0);
    char *json = dl_audit_json(&res, path);
    CHECK(json && strstr(json, "\"keys\":[]"));
    free(json);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
    exec_sql(path, "INSERT INTO usage(time, key_id, key_name, status, prompt_tokens, completion_tokens, prompt_hash,"
                   " prompt, client) VALUES(5, 9, 'evil' || char(10) || char(27) || '[31m' || x'ff', 200, 1, 1, 'h',"
                   " hex(randomblob(500000)) || ' tail words here', 'ten' || char(0) || 'x');");
    CHECK(read_db(path, -INFINITY, INFINITY, &L, &err) == 0);
    CHECK(L && dl_audit_analyse(L, &res, &err) == 0 && res.n_keys == 1);
    CHECK_MSG(strcmp(res.keys[0].name, "evil??[31m?") == 0, "name '%s'", res.keys[0].name);
    json = dl_audit_json(&res, path);
    CHECK(json && strstr(json, "evil??[31m?"));
    free(json);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

int main(void) {
    dir = test_tmpdir("audit-db");
    test_hostile_files();
    test_truncated();
    test_rows();
    test_odd_content();
    TEST_MAIN_END();
}
