/* `distil keys`: make, list and revoke API keys in the usage db. */
#include "auth.h"
#include "serve.h"
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check_name(const char *name, dl_error *err) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= DL_KEY_NAME_MAX) return dl_fail(err, "key name must be 1 to %d bytes", DL_KEY_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return dl_fail(err, "key name '%s' holds a control character", name);
    /* all digits would read as an id in `keys revoke` */
    if (strspn(name, "0123456789") == n) return dl_fail(err, "key name '%s' must not be only digits", name);
    return 0;
}

int dl_keys_create(const char *db_path, const char *name, const dl_key_limits *lim, char key_out[DL_KEY_TEXT_MAX],
                   long long *id, dl_error *err) {
    if (check_name(name, err)) return -1;
    if (lim->rpm < 0 || lim->tpm < 0 || lim->quota_tokens < 0)
        return dl_fail(err, "key limits must be >= 0 (0 = unlimited)");
    dl_usage *u = dl_usage_open(db_path, err);
    if (!u) return -1;
    uint8_t salt[DL_KEY_SALT_BYTES], raw[32];
    int rc = u->ops->salt(u, salt, err);
    if (rc == 0) {
        randombytes_buf(raw, sizeof raw);
        memcpy(key_out, "dk-", 3);
        sodium_bin2base64(key_out + 3, DL_KEY_TEXT_MAX - 3, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        dl_key_info k = {.created = (double)time(NULL), .rpm = lim->rpm, .tpm = lim->tpm, .quota_tokens = lim->quota_tokens};
        snprintf(k.name, sizeof k.name, "%s", name);
        snprintf(k.prefix, sizeof k.prefix, "%.10s", key_out);
        dl_key_hash(salt, key_out, strlen(key_out), k.hash);
        rc = u->ops->key_add(u, &k, id, err);
    }
    sodium_memzero(raw, sizeof raw);
    if (rc) sodium_memzero(key_out, DL_KEY_TEXT_MAX);
    dl_usage_close(u);
    return rc;
}

static void limit_text(char *buf, size_t n, long long x) {
    if (x > 0) snprintf(buf, n, "%lld", x);
    else snprintf(buf, n, "-");
}

int dl_keys_list(const char *db_path, FILE *out, dl_error *err) {
    dl_usage *u = dl_usage_open(db_path, err);
    if (!u) return -1;
    dl_key_info *keys;
    int n;
    int rc = u->ops->key_list(u, &keys, &n, err);
    dl_usage_close(u);
    if (rc) return -1;
    fprintf(out, "%-5s %-20s %-12s %-8s %-20s %8s %10s %12s %12s\n", "id", "name", "prefix", "status", "created", "rpm",
            "tpm", "quota", "used");
    for (int i = 0; i < n; i++) {
        const dl_key_info *k = &keys[i];
        char created[32], rpm[24], tpm[24], quota[24];
        time_t t = (time_t)k->created;
        struct tm tm;
        strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
        limit_text(rpm, sizeof rpm, k->rpm);
        limit_text(tpm, sizeof tpm, k->tpm);
        limit_text(quota, sizeof quota, k->quota_tokens);
        fprintf(out, "%-5lld %-20s %-12s %-8s %-20s %8s %10s %12s %12lld\n", k->id, k->name, k->prefix,
                k->revoked != 0 ? "revoked" : "active", created, rpm, tpm, quota, k->tokens_used);
    }
    free(keys);
    return 0;
}

int dl_keys_revoke(const char *db_path, const char *name_or_id, dl_error *err) {
    if (!name_or_id || !*name_or_id) return dl_fail(err, "which key? give its name or id");
    dl_usage *u = dl_usage_open(db_path, err);
    if (!u) return -1;
    int rc = u->ops->key_revoke(u, name_or_id, err);
    dl_usage_close(u);
    return rc;
}
