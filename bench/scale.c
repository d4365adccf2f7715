/* Data-parallel scaling: the training step of distil train (forward, backward, all-reduce of the
 * flat gradients, clip, AdamW) on random tokens, run as one process or as N under mpirun, each
 * process on its own batch of the same size (weak scaling: the global batch grows with N).
 * Times each part of the step after warm-up (and the CPU time per step, which shows how much of
 * it the process had a core); rank 0 prints one JSON line. bench/scale runs it
 * for 1 and 2 processes and passes the first result in (--tps-1) to get the efficiency
 * tps_N / (N * tps_1). */
#include "step_args.h"
#include "model/model.h"
#include "ops/ops.h"
#include "train/adamw.h"
#include "train/dist.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct opts {
    bench_step_args s;
    double tps_1;    /* tokens/s of one process, when the caller measured it */
    double cpu_ms_1; /* and its CPU milliseconds per step */
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.s = {.config = "configs/bench-5m.json", .threads = 1, .B = 4, .T = 256, .steps = 10, .warmup = 2}};
    const char *const extra[] = {"--tps-1", "--cpu-ms-1"};
    double *const val[] = {&o->tps_1, &o->cpu_ms_1};
    return bench_step_parse(argc, argv, &o->s, extra, val, 2);
}

typedef struct times { double compute, wait, allreduce, optimizer; } times;

/* CPU seconds of this process: next to the wall clock it shows how much of a step the process
 * had a core (on a shared machine, other jobs take the rest). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One update as the trainer makes it (src/train/trainer.c), each part timed. */
static void step(dl_model *m, const int32_t *tok, int B, int T, float *am, float *av, int t, times *tm) {
    static const dl_adamw_cfg acfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    size_t n = m->lay.total;
    double t0 = dl_now();
    dl_model_zero_grad(m);
    dl_model_forward(m, tok, tok + 1, B, T);
    dl_model_backward(m, 1.0f);
    double t1 = dl_now();
    /* not in the trainer: a one-int all-reduce, so the wait for a late rank is not counted as
     * the all-reduce's own time */
    dl_dist_max_int(0);
    double t2 = dl_now();
    dl_dist_allreduce_mean(m->grads, n);
    double t3 = dl_now();
    dl_clip_grad_norm(m->grads, n, 1.0f);
    dl_adamw_step(&m->lay, m->params, m->grads, am, av, &acfg, 1e-3f, t);
    double t4 = dl_now();
    tm->compute += t1 - t0, tm->wait += t2 - t1, tm->allreduce += t3 - t2, tm->optimizer += t4 - t3;
}

static int run(const opts *o) {
    dl_error err;
    dl_config cfg;
    dl_model m;
    if (dl_config_load(o->s.config, &cfg, &err) || dl_model_create(&m, &cfg, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    dl_model_init_random(&m, 1337); /* the same weights on every rank, as the trainer starts */
    if (dl_model_alloc_train(&m, o->s.B, o->s.T, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    size_t n = m.lay.total, N = (size_t)o->s.B * o->s.T;
    float *am = calloc(n, sizeof(float)), *av = calloc(n, sizeof(float));
    int32_t *tok = malloc((N + 1) * sizeof(int32_t));
    if (!am || !av || !tok) return fprintf(stderr, "bench: out of memory\n"), 1;
    dl_rng rng;
    dl_rng_seed(&rng, 7 + (uint64_t)dl_dist_rank()); /* each rank its own rows */
    for (size_t i = 0; i <= N; i++) tok[i] = (int32_t)dl_rng_below(&rng, (uint64_t)cfg.V);
    times tm = {0}, skip = {0};
    double t_start = 0, c_start = 0;
    for (int s = 0; s < o->s.warmup + o->s.steps; s++) {
        if (s == o->s.warmup) t_start = dl_now(), c_start = cpu_now();
        step(&m, tok, o->s.B, o->s.T, am, av, s + 1, s < o->s.warmup ? &skip : &tm);
    }
    double dt = (dl_now() - t_start) / o->s.steps;
    double cpu = dl_dist_mean_double((cpu_now() - c_start) / o->s.steps);
    /* ranks wait for each other in every all-reduce, so rank 0's clock is the job's; the compute
     * time is each rank's own, averaged */
    double compute = dl_dist_mean_double(tm.compute / o->s.steps);
    int world = dl_dist_world();
    double tps = (double)N * world / dt;
    if (dl_dist_rank() == 0) {
        double per = 1e3 / o->s.steps;
        printf("{\"processes\": %d, \"tokens_per_s\": %.1f, \"step_ms\": %.1f, \"cpu_ms\": %.1f, "
               "\"compute_ms\": %.1f, \"wait_ms\": %.2f, \"allreduce_ms\": %.2f, \"optimizer_ms\": %.1f, "
               "\"allreduce_mb\": %.1f, \"batch_per_process\": %d, \"seq\": %d, \"threads_per_process\": %d, "
               "\"steps\": %d, \"params\": %zu",
               world, tps, dt * 1e3, cpu * 1e3, compute * 1e3, tm.wait * per, tm.allreduce * per, tm.optimizer * per,
               n * sizeof(float) / 1e6, o->s.B, o->s.T, o->s.threads, o->s.steps, n);
        if (o->tps_1 > 0)
            printf(", \"tps_1\": %.1f, \"tps_%d\": %.1f, \"efficiency\": %.3f", o->tps_1, world, tps,
                   tps / (world * o->tps_1));
        if (o->cpu_ms_1 > 0) printf(", \"cpu_efficiency\": %.3f", o->cpu_ms_1 / (cpu * 1e3));
        printf("}\n");
    }
    free(am), free(av), free(tok);
    dl_model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    dl_ops_tune_runtime(argv); // OpenMP/OpenBLAS settings, see src/ops/runtime.c; before MPI starts
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    if (dl_dist_init(&argc, &argv)) return fprintf(stderr, "bench: MPI_Init failed\n"), 1;
    dl_set_threads(o.s.threads);
    int rc = run(&o);
    dl_dist_finalize(rc);
    return rc;
}
