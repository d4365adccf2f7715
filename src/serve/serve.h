/* serve: a model behind an OpenAI-compatible HTTP API (libmicrohttpd), with API keys, per-key
 * rate limits and token quotas, a usage log (one row per request), Prometheus metrics and
 * batched decoding across concurrent requests.
 *
 * Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (api.h describes the
 * fields and the chat template), GET /health, GET /metrics. Errors use OpenAI's shape
 * {"error": {"message", "type", "param", "code"}}: 400 bad JSON or parameter, 401 missing,
 * unknown or revoked key, 404 unknown route or model, 405 wrong method, 413 body too large,
 * 429 rate limit (with Retry-After) or quota used up, 503 queue full or shutting down.
 * Every request to a route other than /health and /metrics is logged, whatever its status. */
#ifndef DISTIL_SERVE_H
#define DISTIL_SERVE_H

#include "base/base.h"

typedef struct dl_serve_cfg {
    const char *model_dir;  /* config.json + model.safetensors + tokenizer.json */
    const char *model_name; /* the id clients ask for; NULL: the folder's name */
    const char *host;       /* IPv4 address to listen on (default 127.0.0.1) */
    int port;               /* 0: any free port (dl_serve_port says which) */
    const char *db_path;    /* usage log and keys (SQLite) */
    int no_auth;            /* accept requests without a key (local use) */
    int log_prompts;        /* store prompt texts in the usage log (default on) */
    int max_batch;          /* choices decoded together (default 16) */
    int max_queue;          /* requests waiting for a slot before 503 (default 64) */
    size_t max_body;        /* bytes of a request body before 413 (default 1 MiB) */
    int max_connections;    /* open connections (default 256) */
    double drain_seconds;   /* how long dl_serve_stop waits for in-flight requests (default 30) */
    /* the keyed watermark (src/provenance/provenance.h), on every sampled token when a key file
     * is given; the key itself is never logged, stored or sent */
    const char *wm_key_file; /* NULL: no watermark */
    double wm_gamma;         /* green share (default 0.25) */
    double wm_delta;         /* logit bias of green tokens (default 2) */
    int wm_context;          /* tokens of context H (default 1) */
} dl_serve_cfg;

void dl_serve_cfg_default(dl_serve_cfg *cfg);

typedef struct dl_server dl_server;
/* Loads the model, opens the db, starts the scheduler and listens. */
dl_server *dl_serve_start(const dl_serve_cfg *cfg, dl_error *err);
int dl_serve_port(const dl_server *s);
/* Drains and stops: no new connections, in-flight requests finish (up to drain_seconds, then
 * they are cancelled), their rows are logged, the db is closed cleanly; frees s. Returns the
 * number of requests that had to be cancelled. */
int dl_serve_stop(dl_server *s);

/* ---- API keys (keys.c) ----------------------------------------------------------------------
 * A key is "dk-" and 43 base64url characters (32 random bytes). The db keeps only a keyed
 * BLAKE2b hash of it (the key of the hash is a random salt stored in the db), so the key is
 * shown once, when it is made. Limits: 0 = unlimited. */
typedef struct dl_key_limits {
    long long rpm;          /* requests per minute */
    long long tpm;          /* prompt + completion tokens per minute */
    long long quota_tokens; /* tokens in total */
} dl_key_limits;

#define DL_KEY_TEXT_MAX 64
/* Makes a key named name (names are unique); key_out receives the key text. */
int dl_keys_create(const char *db_path, const char *name, const dl_key_limits *lim, char key_out[DL_KEY_TEXT_MAX],
                   long long *id, dl_error *err);
/* Prints the keys as a table: id, name, prefix, status, limits, tokens used. */
int dl_keys_list(const char *db_path, FILE *out, dl_error *err);
/* Revokes a key by name or id; a running server refuses it from its next request on. */
int dl_keys_revoke(const char *db_path, const char *name_or_id, dl_error *err);

#endif
