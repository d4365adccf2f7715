/* Reads the usage db of `distil serve` (written by src/serve/usage_sqlite.c) with SQLite directly:
 * provenance sits below serve and does not link it. The audit needs these columns of the table
 * `usage`, and nothing else:
 *   time REAL (unix seconds), key_id INTEGER (NULL: no key), key_name TEXT, status INTEGER,
 *   max_tokens, n, logprobs INTEGER (NULL: not given), prompt_tokens, completion_tokens INTEGER,
 *   prompt_hash TEXT, prompt TEXT (NULL with --no-log-prompts), client TEXT.
 * The file is opened read-only (a running server keeps writing; WAL lets both go on). A row whose
 * values have the wrong type or an impossible size is counted and skipped, never trusted. */
#include "audit_internal.h"
#include <math.h>
#include <sqlite3.h>
#include <string.h>

static const char *COLUMNS[] = {"time",   "key_id",        "key_name",          "status",      "max_tokens", "n",
                                "logprobs", "prompt_tokens", "completion_tokens", "prompt_hash", "prompt",     "client"};
enum { C_TIME, C_KEY, C_NAME, C_STATUS, C_MAX_TOKENS, C_N, C_LOGPROBS, C_PT, C_CT, C_HASH, C_PROMPT, C_CLIENT, C_COUNT };

#define MAX_TOKENS_SANE 1000000000LL /* counts above this are damage, not traffic */
#define TOKENS_SANE 1000000000000LL

static int check_columns(sqlite3 *db, const char *path, dl_error *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('usage')", -1, &st, NULL) != SQLITE_OK)
        return dl_fail(err, "%s: cannot read it as a usage db: %s", path, sqlite3_errmsg(db));
    int found[C_COUNT] = {0}, any = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        any = 1;
        for (int c = 0; name && c < C_COUNT; c++) found[c] |= strcmp(name, COLUMNS[c]) == 0;
    }
    int rc = step == SQLITE_DONE ? 0 : dl_fail(err, "%s: cannot read it as a usage db: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (rc) return rc;
    if (!any) return dl_fail(err, "%s: has no usage table (is it the --db of distil serve?)", path);
    for (int c = 0; c < C_COUNT; c++)
        if (!found[c]) return dl_fail(err, "%s: the usage table has no column '%s'", path, COLUMNS[c]);
    return 0;
}

static int int_in(sqlite3_stmt *st, int c, long long lo, long long hi, int null_ok, long long *out) {
    int type = sqlite3_column_type(st, c);
    if (type == SQLITE_NULL && null_ok) {
        *out = -1;
        return 0;
    }
    if (type != SQLITE_INTEGER) return -1;
    *out = sqlite3_column_int64(st, c);
    return *out < lo || *out > hi ? -1 : 0;
}

static const char *text_or_null(sqlite3_stmt *st, int c) {
    return sqlite3_column_type(st, c) == SQLITE_TEXT ? (const char *)sqlite3_column_text(st, c) : NULL;
}

/* The row as a request; -1 when a value has the wrong type or range. */
static int read_row(sqlite3_stmt *st, dl_audit_request *r) {
    int tt = sqlite3_column_type(st, C_TIME);
    long long key, status, max_tokens, n, logprobs, pt, ct;
    if (tt != SQLITE_INTEGER && tt != SQLITE_FLOAT) return -1;
    double t = sqlite3_column_double(st, C_TIME);
    if (!isfinite(t) || int_in(st, C_KEY, 1, INT64_MAX, 1, &key) || int_in(st, C_STATUS, 0, 999, 0, &status) ||
        int_in(st, C_MAX_TOKENS, 0, MAX_TOKENS_SANE, 1, &max_tokens) || int_in(st, C_N, 0, MAX_TOKENS_SANE, 1, &n) ||
        int_in(st, C_LOGPROBS, 0, MAX_TOKENS_SANE, 1, &logprobs) || int_in(st, C_PT, 0, TOKENS_SANE, 0, &pt) ||
        int_in(st, C_CT, 0, TOKENS_SANE, 0, &ct))
        return -1;
    *r = (dl_audit_request){.time = t, .key_id = key < 0 ? 0 : key, .key_name = text_or_null(st, C_NAME),
                            .client = text_or_null(st, C_CLIENT), .prompt_hash = text_or_null(st, C_HASH),
                            .prompt = text_or_null(st, C_PROMPT), .status = (int)status, .max_tokens = (int)max_tokens,
                            .n = (int)n, .logprobs = (int)logprobs, .prompt_tokens = pt, .completion_tokens = ct};
    return 0;
}

static int read_rows(sqlite3 *db, dl_audit_log *L, const char *path, double since, double until, dl_error *err) {
    sqlite3_stmt *st;
    /* rows whose time is not a number pass the filter, to be counted as skipped */
    const char *sql = "SELECT time, key_id, key_name, status, max_tokens, n, logprobs, prompt_tokens, completion_tokens,"
                      " prompt_hash, prompt, client FROM usage"
                      " WHERE typeof(time) NOT IN ('integer', 'real') OR (time >= ?1 AND time < ?2)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return dl_fail(err, "%s: cannot read the usage table: %s", path, sqlite3_errmsg(db));
    sqlite3_bind_double(st, 1, isfinite(since) ? since : -1e300);
    sqlite3_bind_double(st, 2, isfinite(until) ? until : 1e300);
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        dl_audit_request r;
        if (read_row(st, &r)) L->skipped++;
        else rc = dl_audit_log_add(L, &r, err);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = dl_fail(err, "%s: reading the usage table: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int dl_audit_read_db(dl_audit_log *L, const char *path, double since, double until, dl_error *err) {
    if (!dl_path_exists(path)) return dl_fail(err, "%s: no such file", path);
    if (dl_is_dir(path)) return dl_fail(err, "%s: is a folder, not a usage db", path);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        dl_fail(err, "%s: cannot open the usage db: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    int rc = check_columns(db, path, err);
    if (rc == 0) rc = read_rows(db, L, path, since, until, err);
    sqlite3_close(db);
    return rc;
}
