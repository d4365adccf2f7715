/* MPI glue for data-parallel training; see dist.h. */
#include "dist.h"
#include <stdlib.h>

#ifdef DISTIL_HAVE_MPI
#include <mpi.h>

static int g_active; /* MPI_Init was called by us */
static int g_rank, g_world = 1;

int dl_dist_init(int *argc, char ***argv) {
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE")) return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return -1;
    g_active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    return 0;
}

int dl_dist_rank(void) { return g_rank; }
int dl_dist_world(void) { return g_world; }

void dl_dist_allreduce_mean(float *x, size_t n) {
    if (!g_active || g_world == 1) return;
    /* MPI counts are int: reduce in chunks so any buffer size works */
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < n; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        MPI_Allreduce(MPI_IN_PLACE, x + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    float inv = 1.0f / (float)g_world;
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

double dl_dist_mean_double(double v) {
    if (!g_active || g_world == 1) return v;
    double sum = 0;
    MPI_Allreduce(&v, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return sum / g_world;
}

int dl_dist_max_int(int v) {
    if (!g_active || g_world == 1) return v;
    int m = v;
    MPI_Allreduce(&v, &m, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

void dl_dist_finalize(int failed) {
    if (!g_active) return;
    g_active = 0;
    if (failed && g_world > 1) MPI_Abort(MPI_COMM_WORLD, failed);
    MPI_Finalize();
}

#else

int dl_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}
int dl_dist_rank(void) { return 0; }
int dl_dist_world(void) { return 1; }
void dl_dist_allreduce_mean(float *x, size_t n) {
    (void)x;
    (void)n;
}
double dl_dist_mean_double(double v) { return v; }
int dl_dist_max_int(int v) { return v; }
void dl_dist_finalize(int failed) { (void)failed; }

#endif
