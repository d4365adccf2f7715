/* A tiny test harness: CHECK records a failure and goes on; TEST_MAIN_END prints the totals
 * ("N passed, N failed") and returns non-zero if anything failed. */
#ifndef DISTIL_TEST_H
#define DISTIL_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) t_pass++;                                                                \
        else { t_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

#define CHECK_MSG(cond, ...)                                                               \
    do {                                                                                   \
        if (cond) t_pass++;                                                                \
        else {                                                                             \
            t_fail++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                                      \
    do {                                                                                   \
        double _a = (a), _b = (b);                                                         \
        CHECK_MSG(fabs(_a - _b) <= (atol) + (rtol) * fabs(_b), "%s = %.9g, %s = %.9g", #a, _a, #b, _b); \
    } while (0)

#define TEST_MAIN_END()                                                                    \
    do {                                                                                   \
        printf("%d passed, %d failed\n", t_pass, t_fail);                                  \
        return t_fail ? 1 : 0;                                                             \
    } while (0)

/* A fresh scratch folder under /tmp for one test program. */
static inline const char *test_tmpdir(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "/tmp/distil-test-%s-%d", name, (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) { fprintf(stderr, "cannot create %s\n", buf); exit(2); }
    return buf;
}
#endif
