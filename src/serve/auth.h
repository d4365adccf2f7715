/* auth: API keys as the server sees them, with their rate limits and quotas. The key table is
 * held in memory and read again from the store whenever another process changed it (a key
 * made or revoked with `distil keys` counts from the next request on).
 *
 * Rate limits are token buckets refilled continuously: requests per minute (each request
 * takes 1) and tokens per minute (a request is let in while the bucket holds at least 1 and is
 * charged its prompt + completion tokens when it ends, so the bucket can go below zero and the
 * next request waits until it has refilled). The quota is a total: a request first reserves
 * prompt + max_tokens, and is refused if that would pass the quota; the reservation is
 * replaced by the tokens actually used when it ends. */
#ifndef DISTIL_SERVE_AUTH_H
#define DISTIL_SERVE_AUTH_H

#include "api.h"
#include "usage.h"

typedef struct dl_auth dl_auth;
typedef struct dl_key_ref {
    long long id; /* 0: no key */
    char name[DL_KEY_NAME_MAX];
} dl_key_ref;

dl_auth *dl_auth_open(dl_usage *store, dl_error *err);
void dl_auth_free(dl_auth *a);

/* The key's hash under the store's salt. */
void dl_key_hash(const uint8_t salt[DL_KEY_SALT_BYTES], const char *key, size_t len, uint8_t out[DL_KEY_HASH_BYTES]);

/* Checks an Authorization header ("Bearer KEY") and takes one request from the key's bucket.
 * ref names the key whenever it was recognised, even when the request is refused.
 * Fails with 401 (missing, unknown or revoked key) or 429 (rate limit, with retry_after; or
 * the quota used up). now: monotonic seconds. */
int dl_auth_admit(dl_auth *a, const char *authorization, double now, dl_key_ref *ref, dl_api_error *e);
/* Reserves tokens of the key's quota; 429 insufficient_quota when they do not fit. */
int dl_auth_reserve(dl_auth *a, const dl_key_ref *ref, long long tokens, dl_api_error *e);
/* A request of the key ended: releases `reserved`, counts `used` against quota and tokens/min. */
void dl_auth_settle(dl_auth *a, const dl_key_ref *ref, long long reserved, long long used, double now);

#endif
