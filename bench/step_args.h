/* The flags the training-step benchmarks (train_throughput, scale) share: the model config, the
 * threads, the batch shape and how many steps to time after how many warm-up steps. */
#ifndef DISTIL_BENCH_STEP_ARGS_H
#define DISTIL_BENCH_STEP_ARGS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_step_args {
    const char *config;
    int threads, B, T, steps, warmup;
} bench_step_args;

/* 1 when flag a (with value v) is one of the shared flags, stored in s; 0 when it is not. */
static inline int bench_step_flag(bench_step_args *s, const char *a, const char *v) {
    if (!strcmp(a, "--config")) s->config = v;
    else if (!strcmp(a, "--threads")) s->threads = atoi(v);
    else if (!strcmp(a, "--batch")) s->B = atoi(v);
    else if (!strcmp(a, "--seq")) s->T = atoi(v);
    else if (!strcmp(a, "--steps")) s->steps = atoi(v);
    else if (!strcmp(a, "--warmup")) s->warmup = atoi(v);
    else return 0;
    return 1;
}

/* Every flag of argv (each takes a value): the shared ones into s (which holds the defaults),
 * the caller's n_extra numbers named extra[i] into *val[i]. 0 when all were known and the
 * shared values are usable, else -1 with a message on stderr. */
static inline int bench_step_parse(int argc, char **argv, bench_step_args *s, const char *const *extra,
                                   double *const *val, int n_extra) {
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        int k = 0;
        while (k < n_extra && strcmp(a, extra[k]) != 0) k++;
        if (k < n_extra) *val[k] = atof(v);
        else if (!bench_step_flag(s, a, v)) return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
    }
    if (s->threads <= 0 || s->B <= 0 || s->T <= 0 || s->steps <= 0 || s->warmup < 0)
        return fprintf(stderr, "bench: --threads, --batch, --seq, --steps must be positive, --warmup >= 0\n"), -1;
    return 0;
}
#endif
