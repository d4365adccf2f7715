/* usage: the store behind the server. One row per API request (the usage log) and the API keys
 * (only their hashes). The server speaks to it through the operations below only, so another
 * database is one more implementation of dl_usage_ops; SQLite (usage_sqlite.c, WAL mode) is
 * the embedded default. Calls on one store may come from several threads. */
#ifndef DISTIL_SERVE_USAGE_H
#define DISTIL_SERVE_USAGE_H

#include "base/base.h"
#include <stdint.h>

#define DL_KEY_HASH_BYTES 32
#define DL_KEY_SALT_BYTES 32
#define DL_KEY_NAME_MAX 64

/* One request. Strings may be NULL (stored as NULL). */
typedef struct dl_usage_row {
    double time;               /* unix seconds when the request arrived */
    long long key_id;          /* 0: no key (unauthenticated or --no-auth) */
    const char *key_name;
    const char *endpoint;      /* the URL path */
    const char *model;
    int status;                /* HTTP status */
    int max_tokens;            /* -1: not given */
    double temperature, top_p;
    int n, logprobs, stream;   /* logprobs: alternatives asked, -1 none */
    long long prompt_tokens, completion_tokens;
    const char *prompt_hash;   /* hex BLAKE2b-256 of the prompt text */
    const char *prompt;        /* NULL with --no-log-prompts */
    double latency_ms;
    const char *client;        /* client address */
    const char *error;         /* the error message of a failed request */
} dl_usage_row;

typedef struct dl_key_info {
    long long id;
    char name[DL_KEY_NAME_MAX];
    char prefix[16];           /* the first characters of the key, to recognise it in a list */
    uint8_t hash[DL_KEY_HASH_BYTES];
    double created, revoked;   /* unix seconds; revoked 0 = active */
    long long rpm, tpm, quota_tokens; /* 0 = unlimited */
    long long tokens_used;
} dl_key_info;

typedef struct dl_usage dl_usage;
typedef struct dl_usage_ops {
    /* Appends a row; with key_id > 0 also adds its tokens to that key's tokens_used. */
    int (*log)(dl_usage *u, const dl_usage_row *row, dl_error *err);
    /* The store's random salt for key hashes, made on first use. */
    int (*salt)(dl_usage *u, uint8_t salt[DL_KEY_SALT_BYTES], dl_error *err);
    int (*key_add)(dl_usage *u, const dl_key_info *k, long long *id, dl_error *err);
    /* All keys, in id order; *keys is malloc'ed. */
    int (*key_list)(dl_usage *u, dl_key_info **keys, int *n, dl_error *err);
    /* Revokes the key with this name (or id, when the text is a number); fails if none. */
    int (*key_revoke)(dl_usage *u, const char *name_or_id, dl_error *err);
    /* A number that changes when another process changed the store (keys created or revoked). */
    long long (*version)(dl_usage *u);
    void (*close)(dl_usage *u); /* also frees u */
} dl_usage_ops;

struct dl_usage {
    const dl_usage_ops *ops;
};

/* Opens (creating if needed) the store at path: a SQLite file. */
dl_usage *dl_usage_open(const char *path, dl_error *err);
dl_usage *dl_usage_open_sqlite(const char *path, dl_error *err);

static inline int dl_usage_log(dl_usage *u, const dl_usage_row *row, dl_error *err) { return u->ops->log(u, row, err); }
static inline void dl_usage_close(dl_usage *u) {
    if (u) u->ops->close(u);
}

#endif
