/* gemm: which implementation a product goes to (gemm.h). */
#include "gemm.h"
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Below this many multiply-adds OpenBLAS is as fast or faster: `bench/gemm --small` put the
 * crossing at 16^3 on 1 and 2 threads (8^3: OpenBLAS 15-20% faster, 24^3 and up: ours 1.4x+). */
#define SMALL_WORK (16.0 * 16 * 16)

static pthread_once_t choice_once = PTHREAD_ONCE_INIT;
static int use_own;

static void choose(void) {
    const char *env = getenv("DISTIL_GEMM");
    use_own = dl_gemm_avx512_available() && !(env && !strcmp(env, "blas"));
}

const char *dl_gemm_backend(void) {
    pthread_once(&choice_once, choose);
    return use_own ? "avx512" : "blas";
}

void dl_gemm_blas(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
                  int ldb, float *C, int ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
}

void dl_gemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
             float *C, int ldc, int accumulate) {
    pthread_once(&choice_once, choose);
    if (use_own && (double)M * N * K >= SMALL_WORK &&
        dl_gemm_avx512(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate) == 0)
        return;
    dl_gemm_blas(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}
