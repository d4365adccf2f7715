/* runtime: the environment OpenBLAS and libgomp read once, at load, tuned for training where
 * BLAS calls (OpenBLAS's own pthreads) and OpenMP loops take turns on the same cores.
 *
 * Measured on 2 cores (bench/README.md): idle OpenMP workers spin by default, and OpenBLAS
 * workers spin (sched_yield) for 2^28 cycles after each call; each pool's spinning threads
 * steal the cores from the other's working ones, which made training steps 2-4x slower.
 * PASSIVE alone puts an idle OpenMP worker to sleep at once, and waking it costs 36-60 us per
 * parallel region; GOMP_SPINCOUNT=10000 lets it spin a few microseconds first (the next kernel
 * usually starts within them): 4% more training tokens/s, 7 of 8 paired runs (bench/README.md). */
#include "ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int set_if_unset(const char *name, const char *value) {
    if (getenv(name)) return 0;
    setenv(name, value, 1);
    return 1;
}

void dl_ops_tune_runtime(char **argv) {
    if (getenv("DISTIL_NO_TUNE")) return;
    int changed = set_if_unset("OMP_WAIT_POLICY", "PASSIVE");
    changed |= set_if_unset("OPENBLAS_THREAD_TIMEOUT", "18");
    changed |= set_if_unset("GOMP_SPINCOUNT", "10000");
    if (!changed) return;
    execv("/proc/self/exe", argv);
    fprintf(stderr, "distil: could not re-execute with tuned OpenMP/OpenBLAS settings; going on\n");
}
