/* Sampler: greedy at temperature 0 and top-k 1; empirical frequencies against softmax
 * probabilities computed here in double; top-k and top-p keep exactly the expected sets;
 * a seed fixes the sequence. */
#include "model/sampler.h"
#include "test.h"

#define DRAWS 200000

/* p[i] = softmax(logits / temp) restricted to keep[i], renormalised */
static void expected(const float *logits, int V, double temp, const int *keep, double *p) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++)
        if (keep[i] && logits[i] > mx) mx = logits[i];
    for (int i = 0; i < V; i++) sum += p[i] = keep[i] ? exp((logits[i] - mx) / temp) : 0.0;
    for (int i = 0; i < V; i++) p[i] /= sum;
}

/* Draws DRAWS samples; every empirical frequency must be within 5 standard errors of p. */
static void check_frequencies(const float *logits, int V, dl_sampler_cfg cfg, const double *p, uint64_t seed,
                              const char *what) {
    long *count = calloc((size_t)V, sizeof *count);
    dl_rng r;
    dl_rng_seed(&r, seed);
    int bad_id = 0;
    for (int d = 0; d < DRAWS; d++) {
        int t = dl_sample(logits, V, &cfg, &r);
        if (t < 0 || t >= V) bad_id++;
        else count[t]++;
    }
    CHECK_MSG(bad_id == 0, "%s: %d ids out of range", what, bad_id);
    int bad = 0;
    for (int i = 0; i < V; i++) {
        double f = (double)count[i] / DRAWS, se = sqrt(p[i] * (1 - p[i]) / DRAWS);
        if (p[i] == 0 ? count[i] != 0 : fabs(f - p[i]) > 5 * se + 1e-9) {
            bad++;
            fprintf(stderr, "%s: token %d frequency %.5f, expected %.5f\n", what, i, f, p[i]);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d tokens off", what, bad);
    free(count);
}

static void test_greedy(void) {
    dl_rng r;
    dl_rng_seed(&r, 1);
    float logits[100];
    for (int trial = 0; trial < 50; trial++) {
        int V = 1 + (int)dl_rng_below(&r, 100), want = 0;
        for (int i = 0; i < V; i++) {
            logits[i] = 4 * dl_rng_normal(&r);
            if (logits[i] > logits[want]) want = i;
        }
        dl_sampler_cfg g = {.temperature = 0, .top_k = 0, .top_p = 1};
        CHECK(dl_sample(logits, V, &g, &r) == want);
        dl_sampler_cfg k1 = {.temperature = 1.5f, .top_k = 1, .top_p = 1};
        CHECK(dl_sample(logits, V, &k1, &r) == want);
        CHECK(dl_argmax(logits, V) == want);
    }
    float tie[4] = {1, 3, 3, -2};
    dl_sampler_cfg g = {0, 0, 1};
    CHECK(dl_sample(tie, 4, &g, &r) == 1); /* ties go to the lower id */
    float odd[4] = {NAN, -INFINITY, -5, INFINITY};
    CHECK(dl_sample(odd, 4, &g, &r) == 2); /* only finite logits count */
    float none[2] = {NAN, -INFINITY};
    CHECK(dl_sample(none, 2, &g, &r) == -1);
    dl_sampler_cfg t1 = dl_sampler_default();
    CHECK(dl_sample(none, 2, &t1, &r) == -1);
}

static void test_softmax_frequencies(void) {
    const float logits[6] = {1.0f, 2.0f, 0.5f, -1.0f, 1.7f, 0.0f};
    const int all[6] = {1, 1, 1, 1, 1, 1};
    double p[6];
    expected(logits, 6, 1.0, all, p);
    check_frequencies(logits, 6, dl_sampler_default(), p, 3, "T=1");
    expected(logits, 6, 0.5, all, p);
    check_frequencies(logits, 6, (dl_sampler_cfg){0.5f, 0, 1}, p, 4, "T=0.5");
    expected(logits, 6, 2.0, all, p);
    check_frequencies(logits, 6, (dl_sampler_cfg){2.0f, 6, 1}, p, 5, "T=2 top-k=V");
    /* a -inf logit is never drawn */
    const float masked[4] = {0.0f, -INFINITY, 0.0f, 1.0f};
    const int keep[4] = {1, 0, 1, 1};
    expected(masked, 4, 1.0, keep, p);
    check_frequencies(masked, 4, dl_sampler_default(), p, 6, "masked");
}

static void test_top_k(void) {
    const float logits[6] = {1.0f, 2.0f, 0.5f, -1.0f, 1.7f, 0.0f};
    const int keep3[6] = {1, 1, 0, 0, 1, 0}; /* the three largest: 2.0, 1.7, 1.0 */
    double p[6];
    expected(logits, 6, 1.0, keep3, p);
    check_frequencies(logits, 6, (dl_sampler_cfg){1.0f, 3, 1}, p, 7, "top-k=3");
    expected(logits, 6, 0.7, keep3, p);
    check_frequencies(logits, 6, (dl_sampler_cfg){0.7f, 3, 1}, p, 8, "top-k=3 T=0.7");
    /* a large vocabulary: only the top 5 ever appear */
    enum { BIG = 5000 };
    float *big = malloc(BIG * sizeof(float));
    dl_rng r;
    dl_rng_seed(&r, 9);
    for (int i = 0; i < BIG; i++) big[i] = dl_rng_normal(&r);
    int top[5];
    for (int j = 0; j < 5; j++) {
        int b = -1;
        for (int i = 0; i < BIG; i++) {
            int taken = 0;
            for (int q = 0; q < j; q++) taken |= top[q] == i;
            if (!taken && (b < 0 || big[i] > big[b])) b = i;
        }
        top[j] = b;
    }
    int outside = 0, seen[5] = {0};
    dl_sampler_cfg k5 = {1.0f, 5, 1};
    for (int d = 0; d < 5000; d++) {
        int t = dl_sample(big, BIG, &k5, &r), in = 0;
        for (int q = 0; q < 5; q++)
            if (t == top[q]) in = 1, seen[q] = 1;
        outside += !in;
    }
    CHECK(outside == 0);
    CHECK(seen[0] && seen[1] && seen[2] && seen[3] && seen[4]);
    free(big);
}

static void test_top_p(void) {
    /* probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (logs of them as logits) */
    const float logits[5] = {logf(0.5f), logf(0.25f), logf(0.125f), logf(0.0625f), logf(0.0625f)};
    double p[5];
    const int k1[5] = {1, 0, 0, 0, 0}, k2[5] = {1, 1, 0, 0, 0}, k3[5] = {1, 1, 1, 0, 0};
    expected(logits, 5, 1.0, k2, p);
    check_frequencies(logits, 5, (dl_sampler_cfg){1.0f, 0, 0.7f}, p, 10, "top-p=0.7");
    expected(logits, 5, 1.0, k3, p);
    check_frequencies(logits, 5, (dl_sampler_cfg){1.0f, 0, 0.8f}, p, 11, "top-p=0.8");
    expected(logits, 5, 1.0, k1, p);
    check_frequencies(logits, 5, (dl_sampler_cfg){1.0f, 0, 0.3f}, p, 12, "top-p=0.3");
    /* top-k then top-p on the renormalised top-k: top-2 holds 2/3 and 1/3, p=0.6 keeps one */
    check_frequencies(logits, 5, (dl_sampler_cfg){1.0f, 2, 0.6f}, p, 13, "top-k=2 top-p=0.6");
    /* a long flat tail beyond the nucleus is never drawn */
    enum { BIG = 2000 };
    float *big = malloc(BIG * sizeof(float));
    for (int i = 0; i < BIG; i++) big[i] = i < 3 ? 10.0f : 0.0f; /* top three hold ~0.97 */
    dl_rng r;
    dl_rng_seed(&r, 14);
    int tail = 0;
    dl_sampler_cfg c = {1.0f, 0, 0.9f};
    for (int d = 0; d < 5000; d++) tail += dl_sample(big, BIG, &c, &r) >= 3;
    CHECK(tail == 0);
    /* without top-p, the tail holds ~2.9% and does appear */
    dl_sampler_cfg all = dl_sampler_default();
    for (int d = 0; d < 5000; d++) tail += dl_sample(big, BIG, &all, &r) >= 3;
    CHECK(tail > 80 && tail < 230);
    free(big);
}

static void test_seed(void) {
    float logits[50];
    dl_rng r;
    dl_rng_seed(&r, 15);
    for (int i = 0; i < 50; i++) logits[i] = dl_rng_normal(&r);
    dl_sampler_cfg cfgs[3] = {{1.0f, 0, 1.0f}, {0.8f, 10, 1.0f}, {1.2f, 0, 0.9f}};
    for (int c = 0; c < 3; c++) {
        dl_rng a, b, o;
        dl_rng_seed(&a, 77);
        dl_rng_seed(&b, 77);
        dl_rng_seed(&o, 78);
        int same = 1, differ = 0;
        for (int i = 0; i < 200; i++) {
            int x = dl_sample(logits, 50, &cfgs[c], &a), y = dl_sample(logits, 50, &cfgs[c], &b);
            same &= x == y;
            differ |= x != dl_sample(logits, 50, &cfgs[c], &o);
        }
        CHECK(same);
        CHECK(differ);
    }
}

static void test_check(void) {
    dl_error err = {{0}};
    dl_sampler_cfg c = dl_sampler_default();
    CHECK(dl_sampler_check(&c, &err) == 0);
    c.temperature = -1;
    CHECK(dl_sampler_check(&c, &err) == -1 && strstr(err.msg, "temperature"));
    c = dl_sampler_default();
    c.temperature = NAN;
    CHECK(dl_sampler_check(&c, &err) == -1 && strstr(err.msg, "temperature"));
    c = dl_sampler_default();
    c.top_k = -3;
    CHECK(dl_sampler_check(&c, &err) == -1 && strstr(err.msg, "top-k"));
    c = dl_sampler_default();
    c.top_p = 0;
    CHECK(dl_sampler_check(&c, &err) == -1 && strstr(err.msg, "top-p"));
    c.top_p = 1.5f;
    CHECK(dl_sampler_check(&c, &err) == -1 && strstr(err.msg, "top-p"));
}

int main(void) {
    test_greedy();
    test_softmax_frequencies();
    test_top_k();
    test_top_p();
    test_seed();
    test_check();
    TEST_MAIN_END();
}
