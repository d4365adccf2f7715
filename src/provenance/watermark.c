/* The keyed green list: key derivation, the PRF and the logit bias (layout in provenance.h). */
#include "provenance.h"
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(DL_WM_KEY_BYTES == crypto_shorthash_KEYBYTES, "the PRF key is SipHash's");
_Static_assert(crypto_shorthash_BYTES == 8, "SipHash-2-4 gives 64 bits");

int dl_wm_check(double gamma, double delta, int H, dl_error *err) {
    if (!(gamma > 0.0 && gamma < 1.0)) return dl_fail(err, "watermark gamma %g must be in (0, 1)", gamma);
    if (!(delta >= 0.0) || !isfinite(delta)) return dl_fail(err, "watermark delta %g must be a finite number >= 0", delta);
    if (H < 1 || H > DL_WM_MAX_CONTEXT)
        return dl_fail(err, "watermark context %d must be in 1..%d tokens", H, DL_WM_MAX_CONTEXT);
    return 0;
}

int dl_wm_init(dl_wm *wm, const void *secret, size_t n, double gamma, double delta, int H, dl_error *err) {
    memset(wm, 0, sizeof *wm);
    if (dl_wm_check(gamma, delta, H, err)) return -1;
    if (n == 0) return dl_fail(err, "the watermark key is empty");
    if (sodium_init() < 0) return dl_fail(err, "libsodium failed to initialise");
    crypto_generichash(wm->key, sizeof wm->key, secret, n, NULL, 0);
    wm->gamma = gamma;
    wm->delta = (float)delta;
    wm->H = H;
    /* gamma < 1, so gamma * 2^64 < 2^64 - 2^11 and the conversion is exact and in range */
    wm->threshold = (uint64_t)ldexp(gamma, 64);
    return 0;
}

int dl_wm_load(dl_wm *wm, const char *key_file, double gamma, double delta, int H, dl_error *err) {
    memset(wm, 0, sizeof *wm);
    struct stat st;
    if (!key_file) return dl_fail(err, "no watermark key file");
    if (stat(key_file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > DL_WM_MAX_KEY_FILE)
        return dl_fail(err, "%s: a key file of %lld bytes is too large (at most %d)", key_file, (long long)st.st_size,
                       DL_WM_MAX_KEY_FILE);
    char *bytes;
    size_t n;
    if (dl_read_file(key_file, &bytes, &n, err)) return dl_fail_ctx(err, "watermark key file");
    if (n == 0) {
        free(bytes);
        return dl_fail(err, "watermark key file %s is empty", key_file);
    }
    int rc = dl_wm_init(wm, bytes, n, gamma, delta, H, err);
    sodium_memzero(bytes, n);
    free(bytes);
    return rc;
}

void dl_wm_wipe(dl_wm *wm) { sodium_memzero(wm, sizeof *wm); }

static void put_le32(unsigned char *p, int32_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (unsigned char)u;
    p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16);
    p[3] = (unsigned char)(u >> 24);
}

static uint64_t get_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* msg holds the context's 4H bytes; the token goes in the last 4 */
static int green_msg(const dl_wm *wm, unsigned char *msg, int32_t t) {
    unsigned char h[crypto_shorthash_BYTES];
    size_t len = 4 * ((size_t)wm->H + 1);
    put_le32(msg + len - 4, t);
    crypto_shorthash(h, msg, len, wm->key);
    return get_le64(h) < wm->threshold;
}

static void context_msg(const dl_wm *wm, const int32_t *ctx, unsigned char *msg) {
    for (int i = 0; i < wm->H; i++) put_le32(msg + 4 * i, ctx[i]);
}

int dl_wm_green(const dl_wm *wm, const int32_t *ctx, int32_t t) {
    unsigned char msg[4 * (DL_WM_MAX_CONTEXT + 1)];
    context_msg(wm, ctx, msg);
    return green_msg(wm, msg, t);
}

void dl_wm_bias(const dl_wm *wm, const int32_t *ctx, float *logits, int V) {
    unsigned char msg[4 * (DL_WM_MAX_CONTEXT + 1)];
    context_msg(wm, ctx, msg);
    for (int t = 0; t < V; t++)
        if (green_msg(wm, msg, t)) logits[t] += wm->delta;
}
