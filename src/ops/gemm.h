/* gemm: single-precision matrix products for the linear layers, row-major, alpha = 1.
 *
 *   C (M,N) = op(A) (M,K) @ op(B) (K,N)        (accumulate == 0)
 *   C (M,N) += op(A) (M,K) @ op(B) (K,N)       (accumulate != 0)
 *
 * op(A) is A (M,K), row stride lda, when transA == 0, and A^T with A stored (K,M), row stride
 * lda, when transA != 0; likewise op(B) with B (K,N) or B stored (N,K). The leading dimensions
 * are cblas's (row strides in floats, at least the stored row width).
 *
 * dl_gemm runs our AVX-512 kernel (gemm_avx512.c) when the CPU has AVX-512F and the product is
 * big enough to pay for packing, and OpenBLAS's cblas_sgemm otherwise. DISTIL_GEMM=blas in the
 * environment (read once, at the first call) sends everything to OpenBLAS.
 * Threads: OpenMP, omp_get_max_threads() of them (dl_set_threads sets it); one thread when
 * called inside an OpenMP parallel region. */
#ifndef DISTIL_OPS_GEMM_H
#define DISTIL_OPS_GEMM_H

void dl_gemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
             float *C, int ldc, int accumulate);

/* The same through cblas_sgemm, always. */
void dl_gemm_blas(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
                  int ldb, float *C, int ldc, int accumulate);

/* The same through our kernel, whatever the size (M, N, K >= 1). Returns 0, or -1 with C
 * untouched when the CPU lacks AVX-512F (or this is not an x86-64 build) or scratch memory
 * cannot be had. Results do not depend on the number of threads. */
int dl_gemm_avx512(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
                   int ldb, float *C, int ldc, int accumulate);

/* 1 when this CPU can run dl_gemm_avx512. */
int dl_gemm_avx512_available(void);

/* What dl_gemm uses for large products here: "avx512" or "blas". */
const char *dl_gemm_backend(void);

#endif
