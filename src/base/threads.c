#include "base.h"
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int); /* provided by OpenBLAS */

static int g_threads = 0;

void dl_set_threads(int n) {
    if (n <= 0) return;
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int dl_get_threads(void) {
    if (g_threads > 0) return g_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
