/* dl_gemm, our AVX-512 kernel and the OpenBLAS fallback against a straightforward
 * double-accumulating product written here.
 *
 * Two kinds of data:
 * - small integers (-4..4): every product and partial sum is an exact float, so each result
 *   must equal the reference exactly; a lost, doubled or misplaced term cannot hide;
 * - normal floats: each result within the worst-case rounding bound of a K-term fp32 dot
 *   product, K * eps * sum_k |a_ik| |b_kj| (+ eps |c_ij| when accumulating onto c).
 * C is allocated with extra columns (ldc > N) and a row past the end, filled with a sentinel
 * that must survive: the kernel's masked stores are invisible to AddressSanitizer. */
#include "base/base.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "test.h"
#include <float.h>
#include <omp.h>
#include <sys/wait.h>

static dl_rng rng;
static const float SENTINEL = -12345.0f;

typedef int (*gemm_fn)(int, int, int, int, int, const float *, int, const float *, int, float *, int, int);

static int own(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
               int ldc, int acc) {
    return dl_gemm_avx512(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
}

static int blas(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int acc) {
    dl_gemm_blas(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
    return 0;
}

static int dispatch(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int acc) {
    dl_gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
    return 0;
}

static float *fill(size_t n, int integers) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = integers ? (float)((int)dl_rng_below(&rng, 9) - 4) : dl_rng_normal(&rng);
    return x;
}

typedef struct shape { int ta, tb, M, N, K, pad, acc; } shape;

/* One product through fn against the reference; returns 1 when every element passes. */
static int check_one(gemm_fn fn, shape s, int integers) {
    int ar = s.ta ? s.K : s.M, ac = s.ta ? s.M : s.K, br = s.tb ? s.N : s.K, bc = s.tb ? s.K : s.N;
    int lda = ac + s.pad, ldb = bc + s.pad, ldc = s.N + s.pad;
    float *A = fill((size_t)ar * lda, integers), *B = fill((size_t)br * ldb, integers);
    size_t csize = (size_t)(s.M + 1) * ldc;
    float *C = malloc(csize * sizeof(float)), *C0 = malloc(csize * sizeof(float));
    for (size_t i = 0; i < csize; i++) C[i] = SENTINEL;
    for (int i = 0; i < s.M; i++)
        for (int j = 0; j < s.N; j++) C[(size_t)i * ldc + j] = integers ? (float)(i % 5) - 2 : dl_rng_normal(&rng);
    memcpy(C0, C, csize * sizeof(float));
    int ok = fn(s.ta, s.tb, s.M, s.N, s.K, A, lda, B, ldb, C, ldc, s.acc) == 0, bad = 0;
    for (int i = 0; ok && i < s.M + 1; i++)
        for (int j = 0; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (i == s.M || j >= s.N) { // outside C: untouched
                if (C[at] != SENTINEL) bad++;
                continue;
            }
            double sum = s.acc ? C0[at] : 0.0, mag = 0.0;
            for (int k = 0; k < s.K; k++) {
                double a = s.ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = s.tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                sum += a * b, mag += fabs(a * b);
            }
            double tol = integers ? 0.0 : s.K * (double)FLT_EPSILON * mag + (s.acc ? FLT_EPSILON * fabs(C0[at]) : 0.0);
            if (fabs(C[at] - sum) > tol) bad++;
        }
    if (!ok || bad)
        fprintf(stderr, "  %s: ta=%d tb=%d M=%d N=%d K=%d pad=%d acc=%d %s: %d bad elements\n", ok ? "wrong" : "failed",
                s.ta, s.tb, s.M, s.N, s.K, s.pad, s.acc, integers ? "integers" : "floats", bad);
    free(A), free(B), free(C), free(C0);
    return ok && !bad;
}

/* All four transposition cases, beta 0 and 1, both kinds of data: 16 products per shape. */
static int check_all_cases(gemm_fn fn, int M, int N, int K, int pad) {
    int good = 1;
    for (int c = 0; c < 16; c++) {
        shape s = {c & 1, (c >> 1) & 1, M, N, K, pad, (c >> 2) & 1};
        good &= check_one(fn, s, (c >> 3) & 1);
    }
    return good;
}

/* Every combination of the small edge sizes (around the 14 x 32 tile and 16-wide vectors). */
static void test_small_edges(gemm_fn fn, const char *name) {
    static const int sizes[] = {1, 7, 15, 17, 31, 33};
    int n = sizeof sizes / sizeof sizes[0], failures = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            for (int c = 0; c < n; c++) failures += !check_all_cases(fn, sizes[a], sizes[b], sizes[c], (a + b + c) % 3);
    CHECK_MSG(failures == 0, "%s: %d of %d small shapes wrong", name, failures, n * n * n);
}

/* Shapes that cross the blocking: M past MC (336), K past KC (384, twice), N past NC (2048),
 * and slices of the model's products (C = 256, F = 704, V = 4096). Each transposition case
 * once per shape, beta and the kind of data taking turns. */
static void test_blocked_shapes(gemm_fn fn, const char *name) {
    static const int shapes[][3] = {{63, 65, 255}, {65, 63, 257}, {255, 257, 65}, {257, 255, 385},
                                    {700, 33, 17}, {17, 33, 769}, {9, 2085, 20}, {33, 704, 256},
                                    {64, 256, 704}, {16, 4096, 64}, {64, 32, 4096}};
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++)
        for (int c = 0; c < 4; c++) {
            shape s = {c & 1, c >> 1, shapes[i][0], shapes[i][1], shapes[i][2], i % 2, (c + i) & 1};
            CHECK_MSG(check_one(fn, s, ((c >> 1) + i) & 1), "%s: %dx%dx%d", name, s.M, s.N, s.K);
        }
}

/* Products big enough for 2 threads (over 2 x 2^24 multiply-adds), one cut along M and one
 * along N: exact on integers in every transposition case, and the same bits on 1 and 2
 * threads on floats (the K sums keep their order whatever the grid). */
static void test_two_thread_grids(void) {
    static const int shapes[][3] = {{700, 97, 513}, {30, 2100, 600}};
    int saved = omp_get_max_threads();
    for (int i = 0; i < 2; i++) {
        int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        omp_set_num_threads(2);
        for (int c = 0; c < 4; c++)
            CHECK_MSG(check_one(own, (shape){c & 1, c >> 1, M, N, K, 1, c & 1}, 1), "%dx%dx%d", M, N, K);
        float *A = fill((size_t)M * K, 0), *B = fill((size_t)N * K, 0);
        float *c1 = malloc((size_t)M * N * sizeof(float)), *c2 = malloc((size_t)M * N * sizeof(float));
        omp_set_num_threads(1);
        CHECK(dl_gemm_avx512(0, 1, M, N, K, A, K, B, K, c1, N, 0) == 0);
        omp_set_num_threads(2);
        CHECK(dl_gemm_avx512(0, 1, M, N, K, A, K, B, K, c2, N, 0) == 0);
        CHECK(memcmp(c1, c2, (size_t)M * N * sizeof(float)) == 0);
        free(A), free(B), free(c1), free(c2);
    }
    omp_set_num_threads(saved);
}

/* Called from inside a parallel region, by two threads at once, each on its own output:
 * one thread each, separate scratch, right answers. */
static void test_inside_parallel_region(void) {
    int M = 90, N = 70, K = 130, ok[2] = {0, 0};
    float *A = fill((size_t)M * K, 1), *B = fill((size_t)K * N, 1);
    float *C = malloc(2 * (size_t)M * N * sizeof(float)), *R = calloc((size_t)M * N, sizeof(float));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            for (int k = 0; k < K; k++) R[(size_t)i * N + j] += A[(size_t)i * K + k] * B[(size_t)k * N + j];
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num();
        float *c = C + (size_t)t * M * N;
        for (int rep = 0; rep < 20; rep++)
            ok[t] = dl_gemm_avx512(0, 0, M, N, K, A, K, B, N, c, N, 0) == 0 &&
                    memcmp(c, R, (size_t)M * N * sizeof(float)) == 0;
    }
    CHECK(ok[0] && ok[1]);
    free(A), free(B), free(C), free(R);
}

/* K = 0: C = 0 with beta 0, C unchanged with beta 1 (cblas's convention). */
static void test_empty_k(gemm_fn fn, const char *name) {
    float c[6] = {1, 2, 3, 4, 5, 6}, a = 7, b = 8;
    CHECK_MSG(fn(0, 0, 2, 3, 0, &a, 1, &b, 3, c, 3, 1) == 0 && c[5] == 6.0f, "%s", name);
    CHECK_MSG(fn(0, 0, 2, 3, 0, &a, 1, &b, 3, c, 3, 0) == 0 && c[0] == 0.0f && c[5] == 0.0f, "%s", name);
}

/* The linear layers (now on dl_gemm) still match ops.h's references at model-like sizes. */
static void test_matmul_layers(void) {
    int N = 96, IC = 256, OC = 704;
    float *inp = fill((size_t)N * IC, 0), *w = fill((size_t)OC * IC, 0), *dout = fill((size_t)N * OC, 0);
    float *o1 = fill((size_t)N * OC, 0), *o2 = malloc((size_t)N * OC * sizeof(float));
    memcpy(o2, o1, (size_t)N * OC * sizeof(float));
    dl_matmul_forward(o1, inp, w, N, IC, OC, 1);
    dl_matmul_forward_ref(o2, inp, w, N, IC, OC, 1);
    // normal data: sum |a b| ~ K * 0.64, so K * eps * that is ~ 0.01 for K = 704; 1e-3 is tight enough
    float worst = 0;
    for (size_t i = 0; i < (size_t)N * OC; i++) worst = fmaxf(worst, fabsf(o1[i] - o2[i]));
    CHECK_MSG(worst < 1e-3f, "forward: worst %g", worst);
    float *di1 = malloc((size_t)N * IC * 4), *di2 = malloc((size_t)N * IC * 4);
    float *dw1 = fill((size_t)OC * IC, 0), *dw2 = malloc((size_t)OC * IC * 4);
    memcpy(dw2, dw1, (size_t)OC * IC * 4);
    dl_matmul_backward(di1, dw1, dout, inp, w, N, IC, OC);
    dl_matmul_backward_ref(di2, dw2, dout, inp, w, N, IC, OC);
    worst = 0;
    for (size_t i = 0; i < (size_t)N * IC; i++) worst = fmaxf(worst, fabsf(di1[i] - di2[i]));
    for (size_t i = 0; i < (size_t)OC * IC; i++) worst = fmaxf(worst, fabsf(dw1[i] - dw2[i]));
    CHECK_MSG(worst < 1e-3f, "backward: worst %g", worst);
    free(inp), free(w), free(dout), free(o1), free(o2), free(di1), free(di2), free(dw1), free(dw2);
}

/* DISTIL_GEMM=blas, read at the first call, sends dl_gemm to OpenBLAS; checked in a child
 * process that has not called dl_gemm yet. */
static void test_env_forces_blas(void) {
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DISTIL_GEMM", "blas", 1);
        _exit(strcmp(dl_gemm_backend(), "blas") == 0 ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
    test_env_forces_blas(); // first: the choice is made once per process
    dl_rng_seed(&rng, 42);
    int have = dl_gemm_avx512_available();
    CHECK(strcmp(dl_gemm_backend(), have ? "avx512" : "blas") == 0);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        if (have) {
            test_small_edges(own, "avx512");
            test_blocked_shapes(own, "avx512");
            test_empty_k(own, "avx512");
        } else {
            float c = 0, one = 1;
            CHECK(dl_gemm_avx512(0, 0, 1, 1, 1, &one, 1, &one, 1, &c, 1, 0) == -1 && c == 0);
        }
        test_blocked_shapes(dispatch, "dl_gemm");
        test_empty_k(dispatch, "dl_gemm");
    }
    if (have) {
        test_two_thread_grids();
        test_inside_parallel_region();
    } else
        printf("no AVX-512F on this CPU: the kernel's own checks did not run\n");
    test_small_edges(blas, "blas"); // the fallback, on the same shapes
    test_blocked_shapes(blas, "blas");
    test_empty_k(blas, "blas");
    test_matmul_layers();
    TEST_MAIN_END();
}
