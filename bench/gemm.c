/* GEMM microbenchmark: our AVX-512 kernel (dl_gemm_avx512) against OpenBLAS (cblas_sgemm) on
 * the products of one training step of a model config, and on square 1024^3 and 2048^3.
 * The two take turns rep by rep in this process, so a burst of load from other processes
 * lands on both; each side's best rep counts. Prints one JSON line.
 *
 * Products per linear layer (weight (OC,IC), N = batch * seq rows), as src/ops/matmul.c calls
 * them: forward out = inp @ W^T (NT: M=N, N=OC, K=IC), input gradient dinp = dout @ W (NN:
 * M=N, N=IC, K=OC), weight gradient dW += dout^T @ inp (TN: M=OC, N=IC, K=N, accumulating).
 * The layers: fused q|k|v, o, fused gate|up, down (each L times) and the lm_head (once).
 *
 * --small instead compares them on small cubes n^3 (A @ B^T), to place dl_gemm's size
 * threshold below which it leaves products to OpenBLAS (src/ops/gemm.c). */
#include "model/model.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *config;
    int threads, rows, reps, small;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.config = "configs/bench-5m.json", .threads = 2, .rows = 2048, .reps = 7};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--small")) { o->small = 1; continue; }
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        if (!strcmp(a, "--config")) o->config = v;
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--rows")) o->rows = atoi(v);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
        i++;
    }
    if (o->threads <= 0 || o->rows <= 0 || o->reps <= 0)
        return fprintf(stderr, "bench: --threads, --rows, --reps must be positive\n"), -1;
    return 0;
}

typedef struct product {
    const char *name; /* layer and pass */
    int ta, tb, M, N, K, acc, count; /* count: times per training step */
    double ours_s, blas_s;           /* best seconds per call */
} product;

static float *random_floats(size_t n) {
    float *x = malloc(n * sizeof(float));
    if (!x) return NULL;
    dl_rng rng;
    dl_rng_seed(&rng, n);
    for (size_t i = 0; i < n; i++) x[i] = dl_rng_normal(&rng);
    return x;
}

/* Best seconds of reps calls each, ours and OpenBLAS alternating. Returns -1 on failure. */
static int time_product(product *p, int reps) {
    size_t a = (size_t)p->M * p->K, b = (size_t)p->K * p->N, c = (size_t)p->M * p->N;
    float *A = random_floats(a), *B = random_floats(b), *C = random_floats(c);
    int lda = p->ta ? p->M : p->K, ldb = p->tb ? p->K : p->N, rc = A && B && C ? 0 : -1;
    p->ours_s = p->blas_s = 1e30;
    for (int r = 0; r <= reps && rc == 0; r++) { // rep 0 warms caches and scratch, not timed
        double t0 = dl_now();
        rc = dl_gemm_avx512(p->ta, p->tb, p->M, p->N, p->K, A, lda, B, ldb, C, p->N, p->acc);
        double t1 = dl_now();
        dl_gemm_blas(p->ta, p->tb, p->M, p->N, p->K, A, lda, B, ldb, C, p->N, p->acc);
        double t2 = dl_now();
        if (r > 0 && t1 - t0 < p->ours_s) p->ours_s = t1 - t0;
        if (r > 0 && t2 - t1 < p->blas_s) p->blas_s = t2 - t1;
    }
    free(A), free(B), free(C);
    return rc;
}

static double gflops(const product *p, double s) { return 2.0 * p->M * p->N * (double)p->K / s / 1e9; }

static void print_product(const product *p, int first) {
    static const char *tr[] = {"NN", "NT", "TN", "TT"};
    printf("%s{\"name\": \"%s\", \"op\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"ours_gflops\": %.1f, "
           "\"blas_gflops\": %.1f, \"ratio\": %.2f}",
           first ? "" : ", ", p->name, tr[p->ta * 2 + p->tb], p->M, p->N, p->K, gflops(p, p->ours_s),
           gflops(p, p->blas_s), p->blas_s / p->ours_s);
}

/* One linear layer's three products. */
static int add_layer(product *ps, int n, const char *name, int rows, int IC, int OC, int count) {
    static char names[3 * 8][32];
    const char *pass[3] = {"fwd", "dinp", "dweight"};
    int shapes[3][6] = {{0, 1, rows, OC, IC, 0}, {0, 0, rows, IC, OC, 0}, {1, 0, OC, IC, rows, 1}};
    for (int i = 0; i < 3; i++, n++) {
        snprintf(names[n], sizeof names[n], "%s.%s", name, pass[i]);
        int *s = shapes[i];
        ps[n] = (product){names[n], s[0], s[1], s[2], s[3], s[4], s[5], count, 0, 0};
    }
    return n;
}

static int run_model(const opts *o) {
    dl_error err;
    dl_config cfg;
    if (dl_config_load(o->config, &cfg, &err)) return fprintf(stderr, "bench: %s\n", err.msg), 1;
    int QKV = (cfg.NH + 2 * cfg.NKV) * (cfg.C / cfg.NH), n = 0;
    product ps[3 * 5 + 2];
    n = add_layer(ps, n, "qkv", o->rows, cfg.C, QKV, cfg.L);
    n = add_layer(ps, n, "o", o->rows, cfg.C, cfg.C, cfg.L);
    n = add_layer(ps, n, "gate_up", o->rows, cfg.C, 2 * cfg.F, cfg.L);
    n = add_layer(ps, n, "down", o->rows, cfg.F, cfg.C, cfg.L);
    n = add_layer(ps, n, "lm_head", o->rows, cfg.C, cfg.V, 1);
    ps[n++] = (product){"square1024", 0, 0, 1024, 1024, 1024, 0, 0, 0, 0};
    ps[n++] = (product){"square2048", 0, 0, 2048, 2048, 2048, 0, 0, 0, 0};
    double step_ours = 0, step_blas = 0, peak_ours = 0, peak_blas = 0;
    for (int i = 0; i < n; i++) {
        if (time_product(&ps[i], o->reps)) return fprintf(stderr, "bench: %s failed (AVX-512F? memory?)\n", ps[i].name), 1;
        step_ours += ps[i].count * ps[i].ours_s, step_blas += ps[i].count * ps[i].blas_s;
        if (ps[i].count == 0) {
            if (gflops(&ps[i], ps[i].ours_s) > peak_ours) peak_ours = gflops(&ps[i], ps[i].ours_s);
            if (gflops(&ps[i], ps[i].blas_s) > peak_blas) peak_blas = gflops(&ps[i], ps[i].blas_s);
        }
    }
    printf("{\"threads\": %d, \"rows\": %d, \"reps\": %d, \"blas_core\": \"%s\", \"step_matmul_ms_ours\": %.2f, "
           "\"step_matmul_ms_blas\": %.2f, \"step_matmul_speedup\": %.2f, \"peak_gflops_ours\": %.1f, "
           "\"peak_gflops_blas\": %.1f, \"products\": [",
           o->threads, o->rows, o->reps, openblas_get_corename(), step_ours * 1e3, step_blas * 1e3,
           step_blas / step_ours, peak_ours, peak_blas);
    for (int i = 0; i < n; i++) print_product(&ps[i], i == 0);
    printf("]}\n");
    return 0;
}

/* Small cubes, to see where our packing and threads stop paying. */
static int run_small(const opts *o) {
    static const int sizes[] = {8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 320, 384, 512};
    printf("{\"threads\": %d, \"blas_core\": \"%s\", \"small\": [", o->threads, openblas_get_corename());
    for (int i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++) {
        int s = sizes[i];
        product p = {"cube", 0, 1, s, s, s, 0, 0, 0, 0};
        if (time_product(&p, 20 * o->reps)) return fprintf(stderr, "bench: our kernel failed\n"), 1;
        printf("%s{\"n\": %d, \"ours_us\": %.2f, \"blas_us\": %.2f, \"ratio\": %.2f}", i ? ", " : "", s, p.ours_s * 1e6,
               p.blas_s * 1e6, p.blas_s / p.ours_s);
    }
    printf("]}\n");
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    dl_ops_tune_runtime(argv); // the OpenMP/OpenBLAS settings training runs with (src/ops/runtime.c)
    dl_set_threads(o.threads);
    if (!dl_gemm_avx512_available()) return fprintf(stderr, "bench: this CPU has no AVX-512F\n"), 1;
    return o.small ? run_small(&o) : run_model(&o);
}
