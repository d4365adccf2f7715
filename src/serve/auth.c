/* Keys, buckets and quotas in memory (see auth.h). A presented key is hashed and compared with
 * every stored hash in constant time (sodium_memcmp, and no early exit), so the time taken
 * tells nothing about which stored hash came close. The key itself is never stored or logged. */
#include "auth.h"
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_state {
    dl_key_info info;
    double rpm_level, tpm_level, t; /* bucket contents and when they were last refilled */
    long long reserved;
} key_state;

struct dl_auth {
    pthread_mutex_t mu;
    dl_usage *store;
    uint8_t salt[DL_KEY_SALT_BYTES];
    key_state *keys;
    int n;
    long long version;
};

void dl_key_hash(const uint8_t salt[DL_KEY_SALT_BYTES], const char *key, size_t len, uint8_t out[DL_KEY_HASH_BYTES]) {
    crypto_generichash(out, DL_KEY_HASH_BYTES, (const unsigned char *)key, len, salt, DL_KEY_SALT_BYTES);
}

static key_state *find_id(dl_auth *a, long long id) {
    for (int i = 0; i < a->n; i++)
        if (a->keys[i].info.id == id) return &a->keys[i];
    return NULL;
}

/* Reads the key table again, keeping the buckets and reservations of keys already known. */
static int reload(dl_auth *a, double now, dl_error *err) {
    dl_key_info *list;
    int n;
    if (a->store->ops->key_list(a->store, &list, &n, err)) return -1;
    key_state *fresh = calloc(n > 0 ? (size_t)n : 1, sizeof *fresh);
    if (!fresh) {
        free(list);
        return dl_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        key_state *old = find_id(a, list[i].id), *k = &fresh[i];
        k->info = list[i];
        if (old) {
            /* the store's total lags tokens settled but not yet logged */
            if (old->info.tokens_used > k->info.tokens_used) k->info.tokens_used = old->info.tokens_used;
            k->rpm_level = old->rpm_level;
            k->tpm_level = old->tpm_level;
            k->t = old->t;
            k->reserved = old->reserved;
        } else {
            k->rpm_level = (double)k->info.rpm;
            k->tpm_level = (double)k->info.tpm;
            k->t = now;
        }
    }
    free(list);
    free(a->keys);
    a->keys = fresh;
    a->n = n;
    return 0;
}

static int refresh(dl_auth *a, double now, dl_error *err) {
    long long v = a->store->ops->version(a->store);
    if (v == a->version && a->keys) return 0;
    a->version = v;
    return reload(a, now, err);
}

dl_auth *dl_auth_open(dl_usage *store, dl_error *err) {
    dl_auth *a = calloc(1, sizeof *a);
    if (!a) return dl_fail(err, "out of memory"), NULL;
    pthread_mutex_init(&a->mu, NULL);
    a->store = store;
    a->version = -2;
    if (store->ops->salt(store, a->salt, err) || refresh(a, 0, err)) {
        dl_auth_free(a);
        return NULL;
    }
    return a;
}

void dl_auth_free(dl_auth *a) {
    if (!a) return;
    free(a->keys);
    pthread_mutex_destroy(&a->mu);
    sodium_memzero(a->salt, sizeof a->salt);
    free(a);
}

static void refill(key_state *k, double now) {
    double dt = now > k->t ? now - k->t : 0;
    k->t = now;
    if (k->info.rpm > 0) k->rpm_level = fmin((double)k->info.rpm, k->rpm_level + dt * (double)k->info.rpm / 60.0);
    if (k->info.tpm > 0) k->tpm_level = fmin((double)k->info.tpm, k->tpm_level + dt * (double)k->info.tpm / 60.0);
}

// "Bearer KEY" -> KEY (the scheme is case-insensitive, spaces around the key are dropped)
static const char *bearer(const char *h, size_t *len) {
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return NULL;
    h += 7;
    while (*h == ' ') h++;
    size_t n = strlen(h);
    while (n > 0 && isspace((unsigned char)h[n - 1])) n--;
    *len = n;
    return n ? h : NULL;
}

static key_state *match(dl_auth *a, const uint8_t hash[DL_KEY_HASH_BYTES]) {
    key_state *found = NULL;
    for (int i = 0; i < a->n; i++) {
        int same = sodium_memcmp(a->keys[i].info.hash, hash, DL_KEY_HASH_BYTES) == 0;
        found = same ? &a->keys[i] : found;
    }
    return found;
}

static int rate_limited(dl_api_error *e, const char *what, long long limit, double level, long long per_minute) {
    dl_api_fail(e, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                "Rate limit reached for %s per minute (limit %lld). Retry after the Retry-After header's seconds.", what,
                limit);
    e->retry_after = ceil((1.0 - level) * 60.0 / (double)per_minute);
    if (e->retry_after < 1) e->retry_after = 1;
    return -1;
}

static int check_limits(key_state *k, double now, dl_api_error *e) {
    refill(k, now);
    if (k->info.quota_tokens > 0 && k->info.tokens_used + k->reserved >= k->info.quota_tokens)
        return dl_api_fail(e, 429, "insufficient_quota", "insufficient_quota", NULL,
                           "This key has used its quota of %lld tokens.", k->info.quota_tokens);
    if (k->info.rpm > 0 && k->rpm_level < 1.0) return rate_limited(e, "requests", k->info.rpm, k->rpm_level, k->info.rpm);
    if (k->info.tpm > 0 && k->tpm_level < 1.0) return rate_limited(e, "tokens", k->info.tpm, k->tpm_level, k->info.tpm);
    if (k->info.rpm > 0) k->rpm_level -= 1.0;
    return 0;
}

int dl_auth_admit(dl_auth *a, const char *authorization, double now, dl_key_ref *ref, dl_api_error *e) {
    memset(ref, 0, sizeof *ref);
    size_t len;
    const char *key = bearer(authorization, &len);
    if (!key)
        return dl_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL,
                           "You didn't provide an API key. Send it in an Authorization header: "
                           "'Authorization: Bearer YOUR_KEY'.");
    uint8_t hash[DL_KEY_HASH_BYTES];
    dl_key_hash(a->salt, key, len, hash);
    pthread_mutex_lock(&a->mu);
    dl_error err;
    int rc = 0;
    if (refresh(a, now, &err))
        rc = dl_api_fail(e, 500, "server_error", NULL, NULL, "cannot read the keys: %s", err.msg);
    key_state *k = rc ? NULL : match(a, hash);
    if (rc == 0 && !k)
        rc = dl_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL, "Incorrect API key provided.");
    else if (rc == 0 && k->info.revoked != 0)
        rc = dl_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL, "This API key has been revoked.");
    else if (rc == 0)
        rc = check_limits(k, now, e);
    if (k) { /* a known key is named in the log even when refused */
        ref->id = k->info.id;
        snprintf(ref->name, sizeof ref->name, "%s", k->info.name);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int dl_auth_reserve(dl_auth *a, const dl_key_ref *ref, long long tokens, dl_api_error *e) {
    if (ref->id <= 0) return 0;
    pthread_mutex_lock(&a->mu);
    key_state *k = find_id(a, ref->id);
    int rc = 0;
    if (k && k->info.quota_tokens > 0) {
        long long left = k->info.quota_tokens - k->info.tokens_used - k->reserved;
        if (tokens > left)
            rc = dl_api_fail(e, 429, "insufficient_quota", "insufficient_quota", NULL,
                             "This request may use up to %lld tokens (prompt + max_tokens), more than the %lld left "
                             "of this key's quota.",
                             tokens, left > 0 ? left : 0);
    }
    if (k && rc == 0) k->reserved += tokens;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void dl_auth_settle(dl_auth *a, const dl_key_ref *ref, long long reserved, long long used, double now) {
    if (ref->id <= 0) return;
    pthread_mutex_lock(&a->mu);
    key_state *k = find_id(a, ref->id);
    if (k) {
        refill(k, now);
        k->reserved -= reserved;
        if (k->reserved < 0) k->reserved = 0;
        k->info.tokens_used += used;
        if (k->info.tpm > 0) k->tpm_level -= (double)used;
    }
    pthread_mutex_unlock(&a->mu);
}
