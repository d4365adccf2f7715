/* The exact binomial p-value and the z-score of the watermark test, against
 *  - tests/fixtures/binom_tail.txt: exact rational sums (tools/make_binom_fixtures.py), n up to
 *    20000, p down to e^-27726 (far below the smallest double);
 *  - an independent long-double sum of C(n, k) gamma^k (1 - gamma)^(n - k) for n <= 300;
 *  - closed forms: g = n gives gamma^n, g = 1 gives 1 - (1 - gamma)^n, g = 0 and n = 0 give 1,
 *    g > n gives 0; gamma = 1/2 is symmetric. */
#include "provenance/provenance.h"
#include "test.h"

static void test_fixture(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/binom_tail.txt", DISTIL_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[256];
    int cases = 0, tiny = 0;
    while (fgets(line, sizeof line, f)) {
        long n, g, a, d;
        double ln_p, z;
        if (line[0] == '#' || sscanf(line, "%ld %ld %ld %ld %lf %lf", &n, &g, &a, &d, &ln_p, &z) != 6) continue;
        double gamma = (double)a / (double)d, got = dl_binom_log_sf(g, n, gamma);
        /* the fixture's ln p is a difference of two logs of huge integers: ~1e-12 absolute */
        CHECK_MSG(fabs(got - ln_p) <= 1e-9 + 1e-10 * fabs(ln_p), "n %ld g %ld gamma %g: ln p %.15g, exact %.15g", n, g,
                  gamma, got, ln_p);
        CHECK_CLOSE(dl_binom_z(g, n, gamma), z, 1e-12, 1e-12);
        cases++;
        tiny += ln_p < -708;
    }
    fclose(f);
    CHECK_MSG(cases > 250 && tiny > 10, "%d cases, %d of them below 1e-308", cases, tiny);
}

/* P[X >= g] by the textbook sum, in long double (an independent implementation) */
static long double tail_ref(long g, long n, long double gamma) {
    long double sum = 0, c = 1; /* c = C(n, k) */
    for (long k = 0; k <= n; k++) {
        if (k >= g) sum += c * powl(gamma, (long double)k) * powl(1 - gamma, (long double)(n - k));
        c = c * (long double)(n - k) / (long double)(k + 1);
    }
    return sum;
}

static void test_small_n(void) {
    const double gammas[] = {0.25, 0.1, 0.5, 0.7};
    const long ns[] = {1, 3, 8, 20, 64, 150, 300};
    double worst = 0;
    for (int gi = 0; gi < 4; gi++)
        for (int ni = 0; ni < 7; ni++)
            for (long g = 0; g <= ns[ni]; g++) {
                long double want = tail_ref(g, ns[ni], gammas[gi]);
                double got = exp(dl_binom_log_sf(g, ns[ni], gammas[gi]));
                double rel = fabs((double)((got - want) / want));
                if (rel > worst) worst = rel;
                CHECK_MSG(rel < 1e-10, "n %ld g %ld gamma %g: %.17g vs %.17Lg", ns[ni], g, gammas[gi], got, want);
            }
    printf("small n: worst relative error %.3g\n", worst);
}

static void test_closed_forms(void) {
    const double gammas[] = {0.25, 0.01, 0.5, 0.9};
    for (int gi = 0; gi < 4; gi++) {
        double gm = gammas[gi];
        for (long n = 1; n <= 10000000; n *= 10) {
            CHECK_CLOSE(dl_binom_log_sf(n, n, gm), (double)n * log(gm), 0, 1e-12);  /* all green */
            CHECK(dl_binom_log_sf(0, n, gm) == 0.0);                                /* P[X >= 0] = 1 */
            CHECK(dl_binom_log_sf(-3, n, gm) == 0.0);
            CHECK(isinf(dl_binom_log_sf(n + 1, n, gm)) && dl_binom_log_sf(n + 1, n, gm) < 0);
            double one = log(-expm1((double)n * log1p(-gm))); /* P[X >= 1] = 1 - (1 - gamma)^n */
            CHECK_CLOSE(dl_binom_log_sf(1, n, gm), one, 1e-13, 1e-9);
        }
        CHECK(dl_binom_log_sf(0, 0, gm) == 0.0 && dl_binom_z(0, 0, gm) == 0.0); /* nothing scored: p = 1, z = 0 */
    }
    /* gamma 1/2: P[X >= g] + P[X >= n - g + 1] = 1 */
    for (long n = 1; n < 400; n += 37)
        for (long g = 0; g <= n + 1; g++)
            CHECK_CLOSE(exp(dl_binom_log_sf(g, n, 0.5)) + exp(dl_binom_log_sf(n - g + 1, n, 0.5)), 1.0, 1e-11, 0);
}

static void test_monotone_and_fast(void) {
    long n = 5000000;
    double prev = 0.0;
    int ok = 1;
    for (long g = 1200000; g <= 1400000; g += 1000) {
        double l = dl_binom_log_sf(g, n, 0.25);
        ok &= isfinite(l) && l <= prev;
        prev = l;
    }
    CHECK_MSG(ok, "ln p must fall as g rises (n = %ld)", n);
    CHECK(prev < -5000);
}

int main(void) {
    test_fixture();
    test_small_n();
    test_closed_forms();
    test_monotone_and_fast();
    TEST_MAIN_END();
}
