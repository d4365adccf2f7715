/* The usage store in SQLite: WAL journal (readers such as `distil keys list` or an auditor
 * never block the server, and a crash loses no committed row), synchronous=NORMAL (a commit
 * does not wait for fsync; WAL keeps the file consistent), one connection guarded by a mutex. */
#include "usage.h"
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    dl_usage base;
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *insert_row, *add_tokens;
} sq_usage;

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS api_keys("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, hash BLOB NOT NULL UNIQUE,"
    " created REAL NOT NULL, revoked REAL, rpm INTEGER NOT NULL DEFAULT 0, tpm INTEGER NOT NULL DEFAULT 0,"
    " quota_tokens INTEGER NOT NULL DEFAULT 0, tokens_used INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS usage("
    " id INTEGER PRIMARY KEY, time REAL NOT NULL, key_id INTEGER, key_name TEXT, endpoint TEXT NOT NULL,"
    " model TEXT, status INTEGER NOT NULL, max_tokens INTEGER, temperature REAL, top_p REAL, n INTEGER,"
    " logprobs INTEGER, stream INTEGER, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    " prompt_hash TEXT, prompt TEXT, latency_ms REAL NOT NULL, client TEXT, error TEXT);"
    "CREATE INDEX IF NOT EXISTS usage_key_time ON usage(key_id, time);";

static int sq_fail(sq_usage *s, dl_error *err, const char *what) {
    return dl_fail(err, "usage db: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(sq_usage *s, const char *sql, dl_error *err) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    dl_fail(err, "usage db: %s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double x) {
    if (isfinite(x)) sqlite3_bind_double(st, i, x);
    else sqlite3_bind_null(st, i);
}

static void bind_opt_int(sqlite3_stmt *st, int i, long long x) {
    if (x >= 0) sqlite3_bind_int64(st, i, x);
    else sqlite3_bind_null(st, i);
}

static void bind_row(sqlite3_stmt *st, const dl_usage_row *r) {
    sqlite3_bind_double(st, 1, r->time);
    bind_opt_int(st, 2, r->key_id > 0 ? r->key_id : -1);
    bind_text(st, 3, r->key_name);
    bind_text(st, 4, r->endpoint ? r->endpoint : "");
    bind_text(st, 5, r->model);
    sqlite3_bind_int(st, 6, r->status);
    bind_opt_int(st, 7, r->max_tokens);
    bind_real(st, 8, r->temperature);
    bind_real(st, 9, r->top_p);
    bind_opt_int(st, 10, r->n);
    bind_opt_int(st, 11, r->logprobs);
    bind_opt_int(st, 12, r->stream);
    sqlite3_bind_int64(st, 13, r->prompt_tokens);
    sqlite3_bind_int64(st, 14, r->completion_tokens);
    bind_text(st, 15, r->prompt_hash);
    bind_text(st, 16, r->prompt);
    sqlite3_bind_double(st, 17, r->latency_ms);
    bind_text(st, 18, r->client);
    bind_text(st, 19, r->error);
}

/* The row and the key's running total commit together, so the quota a restarted server
 * reads back always matches the log. */
static int sq_log(dl_usage *u, const dl_usage_row *row, dl_error *err) {
    sq_usage *s = (sq_usage *)u;
    pthread_mutex_lock(&s->mu);
    int rc = exec(s, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        bind_row(s->insert_row, row);
        if (sqlite3_step(s->insert_row) != SQLITE_DONE) rc = sq_fail(s, err, "logging a request");
        sqlite3_reset(s->insert_row);
        sqlite3_clear_bindings(s->insert_row);
    }
    if (rc == 0 && row->key_id > 0 && row->prompt_tokens + row->completion_tokens > 0) {
        sqlite3_bind_int64(s->add_tokens, 1, row->prompt_tokens + row->completion_tokens);
        sqlite3_bind_int64(s->add_tokens, 2, row->key_id);
        if (sqlite3_step(s->add_tokens) != SQLITE_DONE) rc = sq_fail(s, err, "counting a key's tokens");
        sqlite3_reset(s->add_tokens);
    }
    if (rc == 0) rc = exec(s, "COMMIT", err);
    else exec(s, "ROLLBACK", NULL);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int read_salt(sq_usage *s, uint8_t salt[DL_KEY_SALT_BYTES], int *found, dl_error *err) {
    sqlite3_stmt *st;
    *found = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name = 'key_salt'", -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "reading the key salt");
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != DL_KEY_SALT_BYTES) rc = dl_fail(err, "usage db: the key salt is damaged");
        else {
            memcpy(salt, sqlite3_column_blob(st, 0), DL_KEY_SALT_BYTES);
            *found = 1;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_salt(dl_usage *u, uint8_t salt[DL_KEY_SALT_BYTES], dl_error *err) {
    sq_usage *s = (sq_usage *)u;
    pthread_mutex_lock(&s->mu);
    int found, rc = read_salt(s, salt, &found, err);
    if (rc == 0 && !found) {
        /* INSERT OR IGNORE then read back: two processes creating the first key agree on one salt */
        uint8_t fresh[DL_KEY_SALT_BYTES];
        randombytes_buf(fresh, sizeof fresh);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO meta(name, value) VALUES('key_salt', ?)", -1, &st, NULL) !=
            SQLITE_OK)
            rc = sq_fail(s, err, "storing the key salt");
        else {
            sqlite3_bind_blob(st, 1, fresh, sizeof fresh, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_DONE) rc = sq_fail(s, err, "storing the key salt");
            sqlite3_finalize(st);
        }
        if (rc == 0) rc = read_salt(s, salt, &found, err);
        if (rc == 0 && !found) rc = dl_fail(err, "usage db: the key salt did not stick");
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sq_key_add(dl_usage *u, const dl_key_info *k, long long *id, dl_error *err) {
    sq_usage *s = (sq_usage *)u;
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO api_keys(name, prefix, hash, created, rpm, tpm, quota_tokens)"
                           " VALUES(?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        rc = sq_fail(s, err, "adding a key");
    else {
        sqlite3_bind_text(st, 1, k->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, k->prefix, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 3, k->hash, DL_KEY_HASH_BYTES, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 4, k->created);
        sqlite3_bind_int64(st, 5, k->rpm);
        sqlite3_bind_int64(st, 6, k->tpm);
        sqlite3_bind_int64(st, 7, k->quota_tokens);
        int step = sqlite3_step(st);
        if (step == SQLITE_CONSTRAINT) rc = dl_fail(err, "a key named '%s' already exists", k->name);
        else if (step != SQLITE_DONE) rc = sq_fail(s, err, "adding a key");
        else if (id) *id = sqlite3_last_insert_rowid(s->db);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void read_key(sqlite3_stmt *st, dl_key_info *k) {
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(st, 0);
    snprintf(k->name, sizeof k->name, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(k->prefix, sizeof k->prefix, "%s", (const char *)sqlite3_column_text(st, 2));
    if (sqlite3_column_bytes(st, 3) == DL_KEY_HASH_BYTES) memcpy(k->hash, sqlite3_column_blob(st, 3), DL_KEY_HASH_BYTES);
    else k->revoked = -1; /* a damaged hash matches nothing */
    k->created = sqlite3_column_double(st, 4);
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) k->revoked = sqlite3_column_double(st, 5);
    k->rpm = sqlite3_column_int64(st, 6);
    k->tpm = sqlite3_column_int64(st, 7);
    k->quota_tokens = sqlite3_column_int64(st, 8);
    k->tokens_used = sqlite3_column_int64(st, 9);
}

static int sq_key_list(dl_usage *u, dl_key_info **keys, int *n, dl_error *err) {
    sq_usage *s = (sq_usage *)u;
    sqlite3_stmt *st;
    *keys = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    int rc = 0, cap = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, name, prefix, hash, created, revoked, rpm, tpm, quota_tokens, tokens_used"
                           " FROM api_keys ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        rc = sq_fail(s, err, "listing keys");
    else {
        int step;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                dl_key_info *grown = realloc(*keys, (size_t)cap * sizeof **keys);
                if (!grown) {
                    rc = dl_fail(err, "out of memory listing keys");
                    break;
                }
                *keys = grown;
            }
            read_key(st, &(*keys)[(*n)++]);
        }
        if (rc == 0 && step != SQLITE_DONE) rc = sq_fail(s, err, "listing keys");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

static int sq_key_revoke(dl_usage *u, const char *name_or_id, dl_error *err) {
    sq_usage *s = (sq_usage *)u;
    sqlite3_stmt *st;
    char *end;
    long long id = strtoll(name_or_id, &end, 10);
    if (*name_or_id == 0 || *end) id = -1;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, "UPDATE api_keys SET revoked = ? WHERE (name = ? OR id = ?) AND revoked IS NULL", -1,
                           &st, NULL) != SQLITE_OK)
        rc = sq_fail(s, err, "revoking a key");
    else {
        sqlite3_bind_double(st, 1, (double)time(NULL));
        sqlite3_bind_text(st, 2, name_or_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, id);
        if (sqlite3_step(st) != SQLITE_DONE) rc = sq_fail(s, err, "revoking a key");
        else if (sqlite3_changes(s->db) == 0)
            rc = dl_fail(err, "no active key named '%s' (see distil keys list)", name_or_id);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static long long sq_version(dl_usage *u) {
    sq_usage *s = (sq_usage *)u;
    sqlite3_stmt *st;
    long long v = -1;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void sq_close(dl_usage *u) {
    sq_usage *s = (sq_usage *)u;
    sqlite3_finalize(s->insert_row);
    sqlite3_finalize(s->add_tokens);
    /* the last connection to close checkpoints the WAL into the main file and removes it */
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const dl_usage_ops SQLITE_OPS = {sq_log, sq_salt, sq_key_add, sq_key_list, sq_key_revoke, sq_version, sq_close};

static int prepare_all(sq_usage *s, dl_error *err) {
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)) return -1;
    if (exec(s, SCHEMA, err)) return -1;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO usage(time, key_id, key_name, endpoint, model, status, max_tokens, temperature,"
                           " top_p, n, logprobs, stream, prompt_tokens, completion_tokens, prompt_hash, prompt,"
                           " latency_ms, client, error) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &s->insert_row, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "UPDATE api_keys SET tokens_used = tokens_used + ? WHERE id = ?", -1, &s->add_tokens,
                           NULL) != SQLITE_OK)
        return sq_fail(s, err, "preparing statements");
    return 0;
}

dl_usage *dl_usage_open_sqlite(const char *path, dl_error *err) {
    if (sodium_init() < 0) {
        dl_fail(err, "libsodium failed to initialise");
        return NULL;
    }
    sq_usage *s = calloc(1, sizeof *s);
    if (!s) {
        dl_fail(err, "out of memory");
        return NULL;
    }
    s->base.ops = &SQLITE_OPS;
    pthread_mutex_init(&s->mu, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        dl_fail(err, "%s: cannot open the usage db: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sq_close(&s->base);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (prepare_all(s, err)) {
        dl_fail_ctx(err, "%s", path);
        sq_close(&s->base);
        return NULL;
    }
    return &s->base;
}

dl_usage *dl_usage_open(const char *path, dl_error *err) { return dl_usage_open_sqlite(path, err); }
