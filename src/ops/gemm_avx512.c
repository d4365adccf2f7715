/* gemm_avx512: our fp32 GEMM for x86-64 CPUs with AVX-512F (see gemm.h for the contract).
 *
 * The Goto/BLIS scheme. For each NC-wide column block of op(B) and KC-deep slice of K, the
 * slice of op(B) is packed into NR-wide panels ([panel][k][NR]); for each MC-tall row block of
 * op(A), that block is packed into MR-tall panels ([panel][k][AS], rows MR..AS-1 zero). The
 * microkernel multiplies one A panel by one B panel into an MR x NR tile of C held in
 * registers: 14 x 32 floats = 28 of the 32 zmm registers, 2 more for the B row, the A values
 * broadcast from memory. One B panel (KC x NR, 48 KB) is reused from L1 by all the A panels
 * of a block, which are reused from L2 (MC x KC, 590 KB) by all the B panels. Packing is where
 * the transpositions go: a transposed operand is read in 16 x 16 tiles turned in registers.
 * Edges: panels are padded with zeros, C tiles are written with masked stores.
 *
 * Sizes were measured on the development machine (AMD EPYC, Zen 5: 48 KB L1d, 1 MB L2):
 * 14 x 32 against 12 x 32, 8 x 48 and 6 x 64 tiles, KC 256-512, MC 168-504, NC 1024-4096 were
 * within the noise of each other on the model's shapes. On one thread (CPU time, so other
 * processes matter less) the kernel alone on cached panels runs at 97% of the FMA peak
 * (~257 GFLOP/s a core), whole products at 80-94%; what is lost goes to packing and to C
 * tiles and packed rows fetched from memory (both prefetched: that took 190 to 215+).
 *
 * Threads: C is cut into a tm x tn grid of tiles, one per OpenMP thread, and each thread runs
 * the blocked loops on its tile with its own packing buffers: no barriers. The operand a
 * thread shares with its grid neighbours is packed by each of them (the grid is chosen to keep
 * that small); on 2 threads that costs ~10% on the weight gradients with 256-512 rows, where
 * both threads pack all of B. Every element of C sums its K products in the same order
 * whatever the grid, so results do not depend on the thread count. */
#include "gemm.h"
#include <stddef.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The whole file is compiled for AVX-512 whatever the build flags; only called when the CPU
 * has it (dl_gemm_avx512_available). */
#define AVX512 __attribute__((target("avx512f,avx512vl,fma")))

#define MR 14       /* rows of the C tile */
#define AS 16       /* floats per k in a packed A panel: MR rounded up to a vector */
#define NV 2        /* vectors per row of the C tile */
#define NR (16 * NV) /* columns of the C tile */
#define KC 384      /* depth of a packed slice */
#define MC (MR * 24) /* rows of a packed A block */
#define NC (NR * 64) /* columns of a packed B block */
#define PREFETCH_ROWS 8 /* rows ahead the straight-copy packing prefetches */
#define PACK_COST 16 /* packing one float costs about this many tile (row, column) products */
/* Multiply-adds per thread, at least. Waking an OpenMP thread costs 40-60 us on the development
 * VM with OMP_WAIT_POLICY=PASSIVE (dl_ops_tune_runtime's setting); `bench/gemm --small` had 2
 * threads slower than 1 up to 256^3 and faster from 384^3. */
#define MIN_THREAD_WORK (1 << 24)

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

AVX512 static inline __mmask16 lanes(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* ---- microkernel ----------------------------------------------------------------------------
 * c (mr,nr) (+)= a panel (kc,AS) x b panel (kc,NR); mr <= MR, nr <= NR. */
AVX512 static void kernel(int kc, const float *a, const float *b, float *c, size_t ldc, int mr, int nr, int add) {
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    // the C tile is read or written only at the end: ask for it now, it arrives meanwhile
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++) {
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += AS, b += NR;
    }
    __mmask16 mk[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) mk[v] = lanes(nr - 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            float *p = c + i * ldc + 16 * v;
            __m512 x = acc[i][v];
            if (add) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk[v], p));
            _mm512_mask_storeu_ps(p, mk[v], x);
        }
    }
}

/* ---- packing -------------------------------------------------------------------------------- */

/* In place: r[i] lane j becomes r[j] lane i. */
AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
    }
}

/* Up to 16 rows of kc floats (row stride ld) turned into kc vectors: dst[k*dstep + r] =
 * src[r*ld + k] for r < 16, zero for r >= rows. */
AVX512 static void pack_turned(float *dst, size_t dstep, const float *src, size_t ld, int rows, int kc) {
    for (int k = 0; k < kc; k += 16) {
        __mmask16 m = lanes(kc - k);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + i * ld + k) : _mm512_setzero_ps();
        transpose16(r);
        int n = imin(16, kc - k);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            if (i < n) _mm512_storeu_ps(dst + (size_t)(k + i) * dstep, r[i]);
    }
}

/* width (<= 16) floats of src into a whole vector at dst, zeros after */
AVX512 static inline void copy16(float *dst, const float *src, int width) {
    _mm512_storeu_ps(dst, width > 0 ? _mm512_maskz_loadu_ps(lanes(width), src) : _mm512_setzero_ps());
}

/* op(A) rows [0,mc), k [0,kc) from a (the block's first element) into MR-tall panels. */
AVX512 static void pack_a(float *ap, const float *a, size_t lda, int ta, int mc, int kc) {
    if (!ta) { // rows of A are rows of op(A): turn each panel
        for (int p = 0; p < mc; p += MR)
            pack_turned(ap + (size_t)(p / MR) * kc * AS, AS, a + (size_t)p * lda, lda, imin(MR, mc - p), kc);
        return;
    }
    for (int k = 0; k < kc; k++) { // A^T: row k of A holds op(A)'s column k, a straight copy
        const float *src = a + (size_t)k * lda;
        if (k + PREFETCH_ROWS < kc)
            for (int p = 0; p < mc; p += 16) _mm_prefetch((const char *)(src + PREFETCH_ROWS * lda + p), _MM_HINT_T0);
        for (int p = 0; p < mc; p += MR) copy16(ap + ((size_t)(p / MR) * kc + k) * AS, src + p, imin(MR, mc - p));
    }
}

/* op(B) k [0,kc), columns [0,nc) from b (the block's first element) into NR-wide panels. */
AVX512 static void pack_b(float *bp, const float *b, size_t ldb, int tb, int kc, int nc) {
    if (tb) { // B^T: rows of B are columns of op(B): turn 16 at a time
        for (int p = 0; p < nc; p += NR)
            for (int h = 0; h < NR; h += 16) {
                int rows = imin(16, nc - p - h);
                pack_turned(bp + (size_t)p * kc + h, NR, rows > 0 ? b + (size_t)(p + h) * ldb : b, ldb, rows, kc);
            }
        return;
    }
    for (int k = 0; k < kc; k++) {
        const float *src = b + (size_t)k * ldb;
        if (k + PREFETCH_ROWS < kc)
            for (int p = 0; p < nc; p += 16) _mm_prefetch((const char *)(src + PREFETCH_ROWS * ldb + p), _MM_HINT_T0);
        for (int p = 0; p < nc; p += NR)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                int width = nc - p - 16 * v;
                copy16(bp + (size_t)p * kc + (size_t)k * NR + 16 * v, width > 0 ? src + p + 16 * v : src, width);
            }
    }
}

/* ---- blocked loops over one thread's tile of C ---------------------------------------------- */

typedef struct problem {
    int ta, tb, K, acc;
    const float *A, *B;
    float *C;
    size_t lda, ldb, ldc;
} problem;

static const float *a_at(const problem *p, int i, int k) {
    return p->ta ? p->A + (size_t)k * p->lda + i : p->A + (size_t)i * p->lda + k;
}

static const float *b_at(const problem *p, int k, int j) {
    return p->tb ? p->B + (size_t)j * p->ldb + k : p->B + (size_t)k * p->ldb + j;
}

// C rows [m0,m1), columns [n0,n1); ap holds MC x KC of packed A, bp KC x NC of packed B
AVX512 static void gemm_tile(const problem *p, int m0, int m1, int n0, int n1, float *ap, float *bp) {
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = imin(NC, n1 - jc);
        for (int pc = 0; pc < p->K; pc += KC) {
            int kc = imin(KC, p->K - pc), add = p->acc || pc > 0;
            pack_b(bp, b_at(p, pc, jc), p->ldb, p->tb, kc, nc);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = imin(MC, m1 - ic);
                pack_a(ap, a_at(p, ic, pc), p->lda, p->ta, mc, kc);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR)
                        kernel(kc, ap + (size_t)(ir / MR) * kc * AS, bp + (size_t)jr * kc,
                               p->C + (size_t)(ic + ir) * p->ldc + jc + jr, p->ldc, imin(MR, mc - ir),
                               imin(NR, nc - jr), add);
            }
        }
    }
}

/* ---- threads -------------------------------------------------------------------------------- */

typedef struct grid {
    int tm, tn;              /* threads along M and along N */
    int rows, cols;          /* the largest tile */
} grid;

/* The grid of at most nt threads whose largest tile costs least: its products plus its
 * packing, with tiles whole MR x NR panels. */
static grid choose_grid(int M, int N, int nt) {
    int mp = ceil_div(M, MR), np = ceil_div(N, NR);
    grid best = {1, 1, M, N};
    double best_cost = -1;
    for (int n = 1; n <= nt; n++)
        for (int tm = 1; tm <= n; tm++) {
            int tn = n / tm;
            if (tm * tn != n || tm > mp || tn > np) continue;
            int rows = imin(M, ceil_div(mp, tm) * MR), cols = imin(N, ceil_div(np, tn) * NR);
            double cost = (double)rows * cols + PACK_COST * ((double)rows + cols);
            if (best_cost < 0 || cost < best_cost) best = (grid){tm, tn, rows, cols}, best_cost = cost;
        }
    return best;
}

/* Thread t's tile: panel ranges cut as evenly as whole panels allow. */
static void run_tile(const problem *p, const grid *g, int M, int N, int t, float *ap, float *bp) {
    int mp = ceil_div(M, MR), np = ceil_div(N, NR), ti = t / g->tn, tj = t % g->tn;
    int m0 = (int)((long)mp * ti / g->tm) * MR, m1 = imin(M, (int)((long)mp * (ti + 1) / g->tm) * MR);
    int n0 = (int)((long)np * tj / g->tn) * NR, n1 = imin(N, (int)((long)np * (tj + 1) / g->tn) * NR);
    if (m0 < m1 && n0 < n1) gemm_tile(p, m0, m1, n0, n1, ap, bp);
}

/* ---- scratch: packing buffers kept between calls --------------------------------------------
 * A few slots, each one caller's buffers for all its threads, grown when a call needs more and
 * never freed (reachable from here: no leak). Concurrent callers take different slots; when all
 * are taken the call falls back to BLAS. */
#define SLOTS 8
static struct { float *mem; size_t floats; int busy; } slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static int scratch_take(size_t floats, float **mem) {
    int got = -1;
    pthread_mutex_lock(&slots_lock);
    for (int s = 0; s < SLOTS && got < 0; s++) // a free slot big enough, else any free one
        if (!slots[s].busy && slots[s].floats >= floats) got = s;
    for (int s = 0; s < SLOTS && got < 0; s++)
        if (!slots[s].busy) {
            float *m = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
            if (m) free(slots[s].mem), slots[s].mem = m, slots[s].floats = floats, got = s;
            else break;
        }
    if (got >= 0) slots[got].busy = 1, *mem = slots[got].mem;
    pthread_mutex_unlock(&slots_lock);
    return got;
}

static void scratch_give(int s) {
    pthread_mutex_lock(&slots_lock);
    slots[s].busy = 0;
    pthread_mutex_unlock(&slots_lock);
}

/* ---- entry ---------------------------------------------------------------------------------- */

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static int cpu_has_avx512;

static void check_cpu(void) {
    __builtin_cpu_init();
    cpu_has_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
}

int dl_gemm_avx512_available(void) {
    pthread_once(&cpu_once, check_cpu);
    return cpu_has_avx512;
}

/* OpenMP's thread count, one inside a parallel region, and no more than the work is worth. */
static int threads_for(int M, int N, int K) {
#ifdef _OPENMP
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    int nt = 1;
#endif
    double worth = (double)M * N * K / MIN_THREAD_WORK;
    return worth < nt ? (worth < 1 ? 1 : (int)worth) : nt;
}

int dl_gemm_avx512(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc, int accumulate) {
    if (!dl_gemm_avx512_available()) return -1;
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) { // C = 0 @ 0 (+ C)
        if (!accumulate)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return 0;
    }
    problem p = {transA, transB, K, accumulate, A, B, C, (size_t)lda, (size_t)ldb, (size_t)ldc};
    grid g = choose_grid(M, N, threads_for(M, N, K));
    int nt = g.tm * g.tn, kc = imin(KC, K);
    size_t a_floats = (size_t)ceil_div(imin(MC, g.rows), MR) * AS * kc;
    size_t b_floats = (size_t)kc * ceil_div(imin(NC, g.cols), NR) * NR, per = a_floats + b_floats;
    float *mem;
    int slot = scratch_take(per * nt, &mem);
    if (slot < 0) return -1;
    if (nt == 1) run_tile(&p, &g, M, N, 0, mem, mem + a_floats);
    else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        // a team smaller than asked for (thread limits) shares the tiles out
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads())
            run_tile(&p, &g, M, N, t, mem + t * per, mem + t * per + a_floats);
#endif
    }
    scratch_give(slot);
    return 0;
}

#else /* not x86-64: OpenBLAS only */

int dl_gemm_avx512_available(void) { return 0; }

int dl_gemm_avx512(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc, int accumulate) {
    return -1;
}

#endif
