/* attention: causal softmax attention with grouped-query heads, for training (the whole
 * sequence at once). qkv rows are [q (NH*HS) | k (NKV*HS) | v (NKV*HS)].
 *
 * Per head everything is a small matrix product (scores = Q K^T, out = P V, and in the
 * backward dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q). They run through one
 * register-tiled kernel on thread-private transposed copies of the head's operands, block by
 * block along the causal edge, so little beyond the lower triangle is computed. No BLAS here:
 * these run inside OpenMP regions, one task per head (forward) or per kv head (backward). */
/* ISO C mode (-std=c17) turns off a*b+c contraction; the tiles want fused multiply-adds. */
#pragma GCC optimize("fp-contract=fast")
#include "ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- a small register-tiled matrix product ------------------------------------------------ */

typedef float v16 __attribute__((vector_size(64)));

static inline v16 load16(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store16(float *p, v16 v, int acc) {
    if (acc) v += load16(p);
    memcpy(p, &v, sizeof v);
}

/* Rows per tile: 8 rows by 32 columns take 16 accumulators, which fit AVX-512's 32 registers;
 * with 16 registers (AVX2, where a v16 is two of them) 4 rows do. */
#ifdef __AVX512F__
#define TILE_ROWS 8
#else
#define TILE_ROWS 4
#endif

/* R rows of C by 32 columns: 2R vector accumulators, per k two loads of B and R scalars of A. */
static inline __attribute__((always_inline)) void tile_rx32(const int R, int K, const float *A, size_t lda,
                                                             const float *B, size_t ldb, float *C, size_t ldc,
                                                             int acc) {
    v16 c[TILE_ROWS][2] = {{{0}}};
    for (int k = 0; k < K; k++) {
        v16 b0 = load16(B + (size_t)k * ldb), b1 = load16(B + (size_t)k * ldb + 16);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            float a = A[(size_t)r * lda + k];
            c[r][0] += a * b0;
            c[r][1] += a * b1;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        store16(C + (size_t)r * ldc, c[r][0], acc);
        store16(C + (size_t)r * ldc + 16, c[r][1], acc);
    }
}

/* R rows by N < 32 leftover columns, plainly. */
static void tile_tail(int R, int N, int K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                      size_t ldc, int acc) {
    for (int r = 0; r < R; r++) {
        float row[32] = {0};
        for (int k = 0; k < K; k++) {
            float a = A[(size_t)r * lda + k];
            const float *b = B + (size_t)k * ldb;
#pragma omp simd
            for (int n = 0; n < N; n++) row[n] += a * b[n];
        }
        for (int n = 0; n < N; n++) C[(size_t)r * ldc + n] = (acc ? C[(size_t)r * ldc + n] : 0.0f) + row[n];
    }
}

// rows [m0, m0+R) of C = A @ B: whole 32-column tiles, then the leftover columns
static inline __attribute__((always_inline)) void gemm_rows(const int R, int N, int K, const float *A, size_t lda,
                                                             const float *B, size_t ldb, float *C, size_t ldc,
                                                             int acc) {
    int n = 0;
    for (; n + 32 <= N; n += 32) tile_rx32(R, K, A, lda, B + n, ldb, C + n, ldc, acc);
    if (n < N) tile_tail(R, N - n, K, A, lda, B + n, ldb, C + n, ldc, acc);
}

/* C (M,N) = A (M,K) @ B (K,N), or += with acc; row-major, leading dimensions lda, ldb, ldc. */
static void small_gemm(int M, int N, int K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                       size_t ldc, int acc) {
    int m = 0;
    for (; m + TILE_ROWS <= M; m += TILE_ROWS)
        gemm_rows(TILE_ROWS, N, K, A + (size_t)m * lda, lda, B, ldb, C + (size_t)m * ldc, ldc, acc);
    for (; m + 4 <= M; m += 4) gemm_rows(4, N, K, A + (size_t)m * lda, lda, B, ldb, C + (size_t)m * ldc, ldc, acc);
    for (; m < M; m++) gemm_rows(1, N, K, A + (size_t)m * lda, lda, B, ldb, C + (size_t)m * ldc, ldc, acc);
}

// src rows (T, HS) `ld` floats apart -> dst (HS, T)
static void transpose_in(float *dst, const float *src, size_t ld, int T, int HS) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < HS; i++) dst[(size_t)i * T + t] = src[(size_t)t * ld + i];
}

// src (HS, T) -> dst rows (T, HS) `ld` floats apart
static void transpose_out(float *dst, size_t ld, const float *src, int T, int HS) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < HS; i++) dst[(size_t)t * ld + i] = src[(size_t)i * T + t];
}

static int scratch_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- forward ------------------------------------------------------------------------------- */

#define ROWS TILE_ROWS /* query rows per block */

/* Columns 0..n-1 rounded up to whole 32-wide tiles (at most T): computing a few masked
 * columns past the diagonal is cheaper than the scalar tail. */
static int whole_tiles(int n, int T) {
    int r = (n + 31) / 32 * 32;
    return r < T ? r : T;
}

// a: rows [t0, t0+R) of the scores, T apart; softmax over columns <= t, zeros after
static void softmax_rows(float *a, int t0, int R, int T, float scale) {
    for (int r = 0; r < R; r++) {
        float *row = a + (size_t)r * T;
        int t = t0 + r;
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int s = 0; s <= t; s++) {
            row[s] *= scale;
            m = row[s] > m ? row[s] : m;
        }
        float inv = 1.0f / dl_exp_sum(row, row, t + 1, m, 1.0f);
#pragma omp simd
        for (int s = 0; s <= t; s++) row[s] *= inv;
        for (int s = t + 1; s < T; s++) row[s] = 0.0f;
    }
}

// one (b, h): kt is HS*T floats of scratch
static void attention_forward_head(float *out, float *att, const float *qkv, int b, int h, int T, int NH,
                                   int NKV, int HS, float *kt) {
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, C = (size_t)NH * HS;
    int kvh = h / (NH / NKV);
    const float *base = qkv + (size_t)b * T * QKV;
    const float *q = base + (size_t)h * HS, *k = base + C + (size_t)kvh * HS, *v = k + (size_t)NKV * HS;
    float *a = att + ((size_t)b * NH + h) * T * T, *o = out + (size_t)b * T * C + (size_t)h * HS;
    float scale = 1.0f / sqrtf((float)HS);
    transpose_in(kt, k, QKV, T, HS);
    for (int t0 = 0; t0 < T; t0 += ROWS) {
        int R = T - t0 < ROWS ? T - t0 : ROWS, keys = t0 + R; // causal: keys 0 .. t0+R-1
        float *arow = a + (size_t)t0 * T;
        small_gemm(R, whole_tiles(keys, T), HS, q + t0 * QKV, QKV, kt, (size_t)T, arow, (size_t)T, 0);
        softmax_rows(arow, t0, R, T, scale);
        small_gemm(R, HS, keys, arow, (size_t)T, v, QKV, o + t0 * C, C, 0);
    }
}

// qkv is (B,T,QKV), out (B,T,NH*HS), att (B,NH,T,T)
void dl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS) {
    size_t per = (size_t)HS * T;
    float *scratch = malloc((size_t)scratch_threads() * per * sizeof(float));
    if (!scratch) {
        dl_attention_forward_ref(out, att, qkv, B, T, NH, NKV, HS);
        return;
    }
#pragma omp parallel
    {
        float *kt = scratch + (size_t)thread_id() * per;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) attention_forward_head(out, att, qkv, b, h, T, NH, NKV, HS, kt);
    }
    free(scratch);
}

/* ---- backward ------------------------------------------------------------------------------ */

typedef struct bwd_scratch {
    float *vt, *qt, *dot, *dkt, *dvt; // (HS,T) each
    float *dp;                        // (ROWS,T)
} bwd_scratch;

static size_t bwd_scratch_floats(int T, int HS) { return (5 * (size_t)HS + ROWS) * T; }

static bwd_scratch bwd_scratch_at(float *p, int T, int HS) {
    size_t n = (size_t)HS * T;
    bwd_scratch s = {p, p + n, p + 2 * n, p + 3 * n, p + 4 * n, p + 5 * n};
    return s;
}

// dV^T += dO^T P and dK^T += Q^T dS over causal column blocks: P[t][s] = 0 for s > t, so the
// products for columns [s0, s0+32) only need rows t >= s0
static void accumulate_transposed(float *dxt, const float *xt, const float *p, int T, int HS) {
    for (int s0 = 0; s0 < T; s0 += 32) {
        int nc = T - s0 < 32 ? T - s0 : 32;
        small_gemm(HS, nc, T - s0, xt + s0, (size_t)T, p + (size_t)s0 * T + s0, (size_t)T, dxt + s0, (size_t)T, 1);
    }
}

// P rows [t0, t0+R) become dS = P * (dP - rowsum(P * dP)) * scale, in place
static void softmax_backward_rows(float *p, const float *dp, int t0, int R, int T, float scale) {
    for (int r = 0; r < R; r++) {
        float *row = p + (size_t)r * T;
        const float *drow = dp + (size_t)r * T;
        int t = t0 + r;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int s = 0; s <= t; s++) sum += row[s] * drow[s];
#pragma omp simd
        for (int s = 0; s <= t; s++) row[s] = row[s] * (drow[s] - sum) * scale;
    }
}

/* One task per (b, kv head): the query heads sharing a kv head add into the same dK, dV, so
 * one task keeps those sums in a fixed order without atomics. */
static void attention_backward_group(float *dqkv, const float *dout, const float *qkv, float *att, int b,
                                     int kvh, int T, int NH, int NKV, int HS, bwd_scratch *s) {
    size_t QKV = (size_t)(NH + 2 * NKV) * HS, C = (size_t)NH * HS;
    int group = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
    const float *base = qkv + (size_t)b * T * QKV, *k = base + C + (size_t)kvh * HS, *v = k + (size_t)NKV * HS;
    float *dbase = dqkv + (size_t)b * T * QKV;
    transpose_in(s->vt, v, QKV, T, HS);
    memset(s->dkt, 0, (size_t)HS * T * sizeof(float));
    memset(s->dvt, 0, (size_t)HS * T * sizeof(float));
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        float *p = att + ((size_t)b * NH + h) * T * T;
        const float *dy = dout + (size_t)b * T * C + (size_t)h * HS;
        transpose_in(s->qt, base + (size_t)h * HS, QKV, T, HS);
        transpose_in(s->dot, dy, C, T, HS);
        accumulate_transposed(s->dvt, s->dot, p, T, HS);
        for (int t0 = 0; t0 < T; t0 += ROWS) {
            int R = T - t0 < ROWS ? T - t0 : ROWS;
            small_gemm(R, whole_tiles(t0 + R, T), HS, dy + t0 * C, C, s->vt, (size_t)T, s->dp, (size_t)T, 0);
            softmax_backward_rows(p + (size_t)t0 * T, s->dp, t0, R, T, scale);
        }
        for (int t0 = 0; t0 < T; t0 += ROWS) {
            int R = T - t0 < ROWS ? T - t0 : ROWS;
            small_gemm(R, HS, t0 + R, p + (size_t)t0 * T, (size_t)T, k, QKV, dbase + t0 * QKV + (size_t)h * HS,
                       QKV, 0);
        }
        accumulate_transposed(s->dkt, s->qt, p, T, HS);
    }
    transpose_out(dbase + C + (size_t)kvh * HS, QKV, s->dkt, T, HS);
    transpose_out(dbase + C + (size_t)(NKV + kvh) * HS, QKV, s->dvt, T, HS);
}

void dl_attention_backward(float *dqkv, const float *dout, const float *qkv, float *att, int B, int T,
                           int NH, int NKV, int HS) {
    size_t per = bwd_scratch_floats(T, HS);
    float *scratch = malloc((size_t)scratch_threads() * per * sizeof(float));
    if (!scratch) {
        dl_attention_backward_ref(dqkv, dout, qkv, att, B, T, NH, NKV, HS);
        return;
    }
#pragma omp parallel
    {
        bwd_scratch s = bwd_scratch_at(scratch + (size_t)thread_id() * per, T, HS);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int kvh = 0; kvh < NKV; kvh++)
                attention_backward_group(dqkv, dout, qkv, att, b, kvh, T, NH, NKV, HS, &s);
    }
    free(scratch);
}
