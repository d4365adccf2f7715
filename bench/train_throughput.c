/* Training throughput: forward + backward + clip + AdamW steps on random tokens, timed after
 * warm-up, plus the sgemm peaks of OpenBLAS and of our own kernel (src/ops/gemm_avx512.c) on
 * the same threads to put the figure in proportion. The matmuls go where dl_gemm sends them
 * (our kernel on AVX-512 CPUs; DISTIL_GEMM=blas: OpenBLAS). Prints one JSON line
 * (bench/train_throughput wraps it with the PyTorch comparison).
 *
 * FLOPs counted per step (bench/README.md):
 *   matmuls:   6 * P * B*T, P = parameters in matmuls = L*(C*QKV + C*C + 3*C*F) + V*C (lm_head)
 *   attention: 12 * L * B * NH * HS * T*(T+1)/2  (causal pairs; QK^T and AV forward, 2x backward) */
#include "step_args.h"
#include "model/model.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "train/adamw.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct opts {
    bench_step_args s;
    double torch_tps;         /* tokens/s of the PyTorch run, when the caller measured it */
    double torch_untuned_tps; /* the same without the OpenMP/OpenBLAS settings */
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.s = {.config = "configs/bench-5m.json", .threads = 2, .B = 8, .T = 256, .steps = 10, .warmup = 2}};
    const char *const extra[] = {"--torch-tokens-per-s", "--torch-untuned-tokens-per-s"};
    double *const val[] = {&o->torch_tps, &o->torch_untuned_tps};
    return bench_step_parse(argc, argv, &o->s, extra, val, 2);
}

static double step_flops(const dl_config *c, int B, int T) {
    double HS = c->C / c->NH, QKV = (c->NH + 2.0 * c->NKV) * HS;
    double P = c->L * ((double)c->C * QKV + (double)c->C * c->C + 3.0 * c->C * c->F) + (double)c->V * c->C;
    double pairs = (double)T * (T + 1) / 2.0;
    return 6.0 * P * B * T + 12.0 * c->L * B * c->NH * HS * pairs;
}

/* Best of several square sgemms, 1024^3 and 2048^3, in GFLOP/s (best-of, so that a run
 * disturbed by other processes does not lower the peak): OpenBLAS's cblas_sgemm in peak[0],
 * our kernel in peak[1] (0 without AVX-512F), the two taking turns. */
static void sgemm_peaks(double peak[2]) {
    int n = 2048;
    peak[0] = peak[1] = 0;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    if (!a || !b || !c) { free(a), free(b), free(c); return; }
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.01f;
    int sizes[] = {1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 2048, 2048, 2048};
    for (int r = 0; r < (int)(sizeof sizes / sizeof sizes[0]); r++) {
        int m = sizes[r];
        double t0 = dl_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, a, m, b, m, 0.0f, c, m);
        double t1 = dl_now(), flops = 2.0 * m * m * (double)m;
        if (flops / (t1 - t0) / 1e9 > peak[0]) peak[0] = flops / (t1 - t0) / 1e9;
        int own = dl_gemm_avx512(0, 0, m, m, m, a, m, b, m, c, m, 0) == 0;
        double t2 = dl_now();
        if (own && flops / (t2 - t1) / 1e9 > peak[1]) peak[1] = flops / (t2 - t1) / 1e9;
    }
    free(a), free(b), free(c);
}

int main(int argc, char **argv) {
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    dl_ops_tune_runtime(argv); // OpenMP/OpenBLAS settings, see src/ops/runtime.c
    dl_set_threads(o.s.threads);
    dl_error err;
    dl_config cfg;
    dl_model m;
    if (dl_config_load(o.s.config, &cfg, &err) || dl_model_create(&m, &cfg, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    dl_model_init_random(&m, 1337);
    if (dl_model_alloc_train(&m, o.s.B, o.s.T, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    size_t n = m.lay.total, N = (size_t)o.s.B * o.s.T;
    float *am = calloc(n, sizeof(float)), *av = calloc(n, sizeof(float));
    int32_t *tok = malloc((N + 1) * sizeof(int32_t));
    if (!am || !av || !tok) return fprintf(stderr, "bench: out of memory\n"), 1;
    dl_rng rng;
    dl_rng_seed(&rng, 7);
    for (size_t i = 0; i <= N; i++) tok[i] = (int32_t)dl_rng_below(&rng, (uint64_t)cfg.V);
    dl_adamw_cfg acfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    double t_start = 0, loss = 0;
    for (int s = 0; s < o.s.warmup + o.s.steps; s++) {
        if (s == o.s.warmup) t_start = dl_now();
        dl_model_zero_grad(&m);
        loss = dl_model_forward(&m, tok, tok + 1, o.s.B, o.s.T);
        dl_model_backward(&m, 1.0f);
        dl_clip_grad_norm(m.grads, n, 1.0f);
        dl_adamw_step(&m.lay, m.params, m.grads, am, av, &acfg, 1e-3f, s + 1);
    }
    double dt = (dl_now() - t_start) / o.s.steps;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = ru.ru_maxrss / 1024.0;
    double expected_mb = (4.0 * n + (double)dl_model_act_floats(&m)) * sizeof(float) / (1 << 20);
    double tps = (double)N / dt, gflops = step_flops(&cfg, o.s.B, o.s.T) / dt / 1e9;
    double peak[2];
    sgemm_peaks(peak);
    printf("{\"tokens_per_s\": %.1f, \"gflops\": %.2f, \"sgemm_peak_gflops\": %.2f, \"sgemm_peak_share\": %.3f, "
           "\"own_gemm_peak_gflops\": %.2f, \"own_gemm_peak_share\": %.3f, "
           "\"peak_rss_mb\": %.1f, \"expected_mb\": %.1f, \"step_ms\": %.1f, \"loss\": %.4f, \"threads\": %d, "
           "\"gemm\": \"%s\", \"blas_core\": \"%s\"",
           tps, gflops, peak[0], peak[0] > 0 ? gflops / peak[0] : 0, peak[1], peak[1] > 0 ? gflops / peak[1] : 0,
           rss_mb, expected_mb, dt * 1e3, loss, o.s.threads, dl_gemm_backend(), openblas_get_corename());
    if (o.torch_tps > 0) printf(", \"torch_tokens_per_s\": %.1f, \"ratio_vs_torch\": %.3f", o.torch_tps, tps / o.torch_tps);
    if (o.torch_untuned_tps > 0)
        printf(", \"torch_untuned_tokens_per_s\": %.1f, \"ratio_vs_torch_untuned\": %.3f", o.torch_untuned_tps,
               tps / o.torch_untuned_tps);
    printf("}\n");
    free(am), free(av), free(tok);
    dl_model_free(&m);
    return 0;
}
