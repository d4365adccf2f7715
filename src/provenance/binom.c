/* The exact one-sided binomial tail, in log space.
 *
 * term(k) = C(n, k) gamma^k (1 - gamma)^(n - k). Above the mean the terms fall from k = g on, so
 * P[X >= g] = term(g) * (1 + r_g + r_g r_{g+1} + ...), with r_k = term(k+1)/term(k) =
 * (n - k) gamma / ((k + 1)(1 - gamma)) < 1: the sum is of numbers <= 1 and stops once they no
 * longer change it, and only ln term(g) (lgamma) can be tiny. At or below the mean the lower tail
 * P[X <= g - 1] is summed the same way downwards and P[X >= g] = 1 - it (log1p). */
#include "provenance.h"
#include <math.h>

static double log_term(long k, long n, double gamma) {
    return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1) + (double)k * log(gamma) +
           (double)(n - k) * log1p(-gamma);
}

/* sum of term(k)/term(from) for k = from, from+step, ... while inside [0, n] */
static double relative_sum(long from, long n, double gamma, int step) {
    double odds = gamma / (1.0 - gamma), sum = 1.0, t = 1.0;
    for (long k = from; step > 0 ? k < n : k > 0; k += step) {
        t *= step > 0 ? (double)(n - k) / (double)(k + 1) * odds : (double)k / ((double)(n - k + 1) * odds);
        double before = sum;
        sum += t;
        if (sum == before) break;
    }
    return sum;
}

double dl_binom_log_sf(long g, long n, double gamma) {
    if (g <= 0) return 0.0;
    if (g > n) return -INFINITY;
    if ((double)g > (double)n * gamma) return log_term(g, n, gamma) + log(relative_sum(g, n, gamma, 1));
    double lower = exp(log_term(g - 1, n, gamma)) * relative_sum(g - 1, n, gamma, -1);
    return log1p(-lower);
}

double dl_binom_z(long g, long n, double gamma) {
    if (n <= 0) return 0.0;
    return ((double)g - (double)n * gamma) / sqrt((double)n * gamma * (1.0 - gamma));
}
