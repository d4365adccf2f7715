/* The watermark's key and green list: the derivation and byte layout documented in
 * provenance.h (recomputed here with libsodium directly), the green share, the logit bias,
 * its effect on sampling, and refused keys and settings. */
#include "model/sampler.h"
#include "provenance/provenance.h"
#include "test.h"
#include <sodium.h>

static const char *tmp;

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    fclose(f);
}

/* the documented PRF, written out: SipHash-2-4 under BLAKE2b-128(secret) of LE32 ids */
static int green_ref(const unsigned char *secret, size_t n, double gamma, const int32_t *ctx, int H, int32_t t) {
    unsigned char key[16], msg[64], h[8];
    crypto_generichash(key, 16, secret, n, NULL, 0);
    for (int i = 0; i <= H; i++) {
        uint32_t v = (uint32_t)(i < H ? ctx[i] : t);
        for (int b = 0; b < 4; b++) msg[4 * i + b] = (unsigned char)(v >> (8 * b));
    }
    crypto_shorthash(h, msg, 4 * ((size_t)H + 1), key);
    uint64_t x = 0;
    for (int b = 7; b >= 0; b--) x = x << 8 | h[b];
    return (long double)x < (long double)gamma * 18446744073709551616.0L;
}

static void test_layout(void) {
    const unsigned char secret[] = "a key file may hold any bytes\x00\xff\n";
    char path[600];
    snprintf(path, sizeof path, "%s/key", tmp);
    write_bytes(path, secret, sizeof secret - 1);
    dl_wm a, b;
    dl_error err;
    CHECK(dl_wm_load(&a, path, 0.25, 2.0, 1, &err) == 0);
    CHECK(dl_wm_init(&b, secret, sizeof secret - 1, 0.25, 2.0, 1, &err) == 0);
    CHECK(memcmp(a.key, b.key, sizeof a.key) == 0);
    CHECK(a.threshold == (uint64_t)1 << 62); /* 0.25 * 2^64 */
    dl_rng r;
    dl_rng_seed(&r, 5);
    int mismatches = 0;
    for (int H = 1; H <= DL_WM_MAX_CONTEXT; H += 3) {
        dl_wm w;
        CHECK(dl_wm_init(&w, secret, sizeof secret - 1, 0.3, 1.0, H, &err) == 0);
        for (int i = 0; i < 2000; i++) {
            int32_t ctx[DL_WM_MAX_CONTEXT], t = (int32_t)dl_rng_below(&r, 100000);
            for (int k = 0; k < H; k++) ctx[k] = (int32_t)dl_rng_below(&r, 100000);
            mismatches += dl_wm_green(&w, ctx, t) != green_ref(secret, sizeof secret - 1, 0.3, ctx, H, t);
        }
    }
    CHECK_MSG(mismatches == 0, "%d pairs differ from the documented layout", mismatches);
    dl_wm_wipe(&a);
    unsigned char zero[sizeof a] = {0};
    CHECK(memcmp(&a, zero, sizeof a) == 0);
}

/* The share of green pairs is gamma (within 4 standard deviations over 400k pairs), and another
 * key gives another green list (agreement gamma^2 + (1 - gamma)^2 for independent lists). */
static void test_green_share(void) {
    dl_wm a, b;
    dl_error err;
    const double gamma = 0.25;
    CHECK(dl_wm_init(&a, "k1", 2, gamma, 2.0, 1, &err) == 0 && dl_wm_init(&b, "k2", 2, gamma, 2.0, 1, &err) == 0);
    long n = 0, green = 0, same = 0;
    for (int32_t c = 0; c < 400; c++)
        for (int32_t t = 0; t < 1000; t++, n++) {
            int ga = dl_wm_green(&a, &c, t);
            green += ga;
            same += ga == dl_wm_green(&b, &c, t);
        }
    double sd = sqrt(n * gamma * (1 - gamma)), agree = gamma * gamma + (1 - gamma) * (1 - gamma);
    CHECK_MSG(fabs(green - gamma * n) < 4 * sd, "%ld green of %ld", green, n);
    CHECK_MSG(fabs(same - agree * n) < 4 * sqrt(n * agree * (1 - agree)), "%ld of %ld agree across keys", same, n);
}

static void test_bias(void) {
    dl_wm w;
    dl_error err;
    CHECK(dl_wm_init(&w, "bias", 4, 0.5, 1.5, 2, &err) == 0);
    enum { V = 3000 };
    static float logits[V], orig[V];
    for (int i = 0; i < V; i++) orig[i] = logits[i] = i == 7 ? -INFINITY : (float)(i % 13) - 6.0f;
    const int32_t ctx[2] = {42, 1234};
    dl_wm_bias(&w, ctx, logits, V);
    int wrong = 0, greens = 0;
    for (int i = 0; i < V; i++) {
        int g = dl_wm_green(&w, ctx, i);
        greens += g;
        if (i == 7) wrong += !(isinf(logits[i]) && logits[i] < 0);
        else wrong += logits[i] != orig[i] + (g ? 1.5f : 0.0f);
    }
    CHECK_MSG(wrong == 0 && greens > 1300 && greens < 1700, "%d wrong, %d green", wrong, greens);
}

/* Sampling uniform logits with the bias draws green with probability
 * gamma e^delta / (gamma e^delta + 1 - gamma); greedy decoding sees the bias too. */
static void test_sampling(void) {
    dl_wm w;
    dl_error err;
    const double gamma = 0.25, delta = 2.0;
    CHECK(dl_wm_init(&w, "sample", 6, gamma, delta, 1, &err) == 0);
    enum { V = 500, N = 20000 };
    static float logits[V];
    dl_sampler_cfg cfg = dl_sampler_default();
    dl_rng r;
    dl_rng_seed(&r, 9);
    long green = 0;
    for (int i = 0; i < N; i++) {
        int32_t c = i;
        for (int k = 0; k < V; k++) logits[k] = 0.0f;
        dl_wm_bias(&w, &c, logits, V);
        green += dl_wm_green(&w, &c, dl_sample(logits, V, &cfg, &r));
    }
    double want = gamma * exp(delta) / (gamma * exp(delta) + 1 - gamma);
    CHECK_MSG(fabs((double)green / N - want) < 4 * sqrt(want * (1 - want) / N), "green share %.4f, want %.4f",
              (double)green / N, want);
    /* greedy: a red argmax loses to a green token within delta of it */
    int32_t c = 77;
    int red = -1, grn = -1;
    for (int t = 0; t < V && (red < 0 || grn < 0); t++) {
        if (dl_wm_green(&w, &c, t)) grn = grn < 0 ? t : grn;
        else red = red < 0 ? t : red;
    }
    for (int k = 0; k < V; k++) logits[k] = -10.0f;
    logits[red] = 1.0f;
    logits[grn] = 0.0f;
    dl_wm_bias(&w, &c, logits, V);
    CHECK(dl_argmax(logits, V) == grn);
}

static void test_refused(void) {
    dl_wm w;
    dl_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/missing", tmp);
    CHECK(dl_wm_load(&w, path, 0.25, 2, 1, &err) != 0 && strstr(err.msg, "missing") && strstr(err.msg, "key file"));
    snprintf(path, sizeof path, "%s/empty", tmp);
    write_bytes(path, "", 0);
    CHECK(dl_wm_load(&w, path, 0.25, 2, 1, &err) != 0 && strstr(err.msg, "empty"));
    CHECK(dl_wm_load(&w, tmp, 0.25, 2, 1, &err) != 0 && strstr(err.msg, "not a regular file")); /* a folder */
    snprintf(path, sizeof path, "%s/huge", tmp);
    FILE *f = fopen(path, "wb");
    CHECK(f && ftruncate(fileno(f), 64 << 20) == 0); /* sparse: 64 MiB */
    if (f) fclose(f);
    CHECK(dl_wm_load(&w, path, 0.25, 2, 1, &err) != 0 && strstr(err.msg, "too large"));
    CHECK(dl_wm_load(&w, NULL, 0.25, 2, 1, &err) != 0);
    CHECK(dl_wm_init(&w, "k", 0, 0.25, 2, 1, &err) != 0 && strstr(err.msg, "empty"));
    const double bad_gamma[] = {0, 1, -0.5, 1.5, NAN};
    for (int i = 0; i < 5; i++) CHECK(dl_wm_init(&w, "k", 1, bad_gamma[i], 2, 1, &err) != 0 && strstr(err.msg, "gamma"));
    CHECK(dl_wm_init(&w, "k", 1, 0.25, -1, 1, &err) != 0 && strstr(err.msg, "delta"));
    CHECK(dl_wm_init(&w, "k", 1, 0.25, INFINITY, 1, &err) != 0 && strstr(err.msg, "delta"));
    CHECK(dl_wm_init(&w, "k", 1, 0.25, 2, 0, &err) != 0 && strstr(err.msg, "context"));
    CHECK(dl_wm_init(&w, "k", 1, 0.25, 2, DL_WM_MAX_CONTEXT + 1, &err) != 0 && strstr(err.msg, "context"));
}

int main(void) {
    tmp = test_tmpdir("watermark");
    test_layout();
    test_green_share();
    test_bias();
    test_sampling();
    test_refused();
    TEST_MAIN_END();
}
