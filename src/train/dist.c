/* MPI glue for data-parallel training; see dist.h. */
#include "dist.h"
#include <stdlib.h>

#ifdef DISTIL_HAVE_MPI
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* 64-bit FNV-1a over 8-byte words, with a shift so that high bits feed the low ones too. */
static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int g_active; /* MPI_Init was called by us */
static int g_rank, g_world = 1;
static int g_timeout;   /* seconds a collective call may wait; 0: forever */
static char g_msg[512]; /* the watchdog's message, written from its signal handler */
static size_t g_msg_len;

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

/* The watchdog is an interval timer: armed around each collective call, it only fires when one
 * waited too long. write and _exit are safe in a signal handler; MPI_Abort is not, so the exit
 * code is what tells mpirun to stop the job. */
static void on_timeout(int sig) {
    (void)sig;
    ssize_t w = write(STDERR_FILENO, g_msg, g_msg_len);
    (void)w;
    _exit(1);
}

void dl_dist_set_timeout(int seconds) {
    if (!g_active || g_world == 1) return;
    g_timeout = seconds > 0 ? seconds : 0;
    int n = snprintf(g_msg, sizeof g_msg,
                     "distil: error: rank %d of %d: no answer from the other processes for %d s (one died, hangs, "
                     "or its host is unreachable); stopping the job. The last checkpoint in the run folder is "
                     "intact: continue with --resume (see --dist-timeout)\n",
                     g_rank, g_world, g_timeout);
    g_msg_len = n > 0 && (size_t)n < sizeof g_msg ? (size_t)n : 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timeout;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
}

static void watch(int on) {
    if (!g_timeout) return;
    struct itimerval t;
    memset(&t, 0, sizeof t);
    t.it_value.tv_sec = on ? g_timeout : 0;
    setitimer(ITIMER_REAL, &t, NULL);
}

static void allreduce(void *x, int n, MPI_Datatype type, MPI_Op op) {
    watch(1);
    MPI_Allreduce(MPI_IN_PLACE, x, n, type, op, MPI_COMM_WORLD);
    watch(0);
}

void dl_dist_allreduce_mean(float *x, size_t n) {
    if (!g_active || g_world == 1) return;
    /* MPI counts are int: reduce in chunks so any buffer size works */
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < n; at += chunk) allreduce(x + at, (int)(n - at < chunk ? n - at : chunk), MPI_FLOAT, MPI_SUM);
    float inv = 1.0f / (float)g_world;
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

double dl_dist_mean_double(double v) {
    if (!g_active || g_world == 1) return v;
    allreduce(&v, 1, MPI_DOUBLE, MPI_SUM);
    return v / g_world;
}

int dl_dist_max_int(int v) {
    if (!g_active || g_world == 1) return v;
    allreduce(&v, 1, MPI_INT, MPI_MAX);
    return v;
}

int dl_dist_same_bytes(const void *p, size_t n) {
    if (!g_active || g_world == 1) return 1;
    uint64_t h = hash_bytes(p, n), m[2] = {h, ~h}; /* max of h and of ~h: the largest and smallest h */
    allreduce(m, 2, MPI_UINT64_T, MPI_MAX);
    return m[0] == ~m[1];
}

void dl_dist_finalize(int failed) {
    if (!g_active) return;
    g_active = 0;
    g_timeout = 0;
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
void dl_dist_set_timeout(int seconds) { (void)seconds; }
void dl_dist_allreduce_mean(float *x, size_t n) {
    (void)x;
    (void)n;
}
double dl_dist_mean_double(double v) { return v; }
int dl_dist_max_int(int v) { return v; }
int dl_dist_same_bytes(const void *p, size_t n) {
    (void)p;
    (void)n;
    return 1;
}
void dl_dist_finalize(int failed) { (void)failed; }

#endif
