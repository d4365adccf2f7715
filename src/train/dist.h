/* dist: data parallelism over MPI. Every process (rank) trains the same model on its own rows of
 * each global batch; the gradients are averaged across ranks before each update, so all ranks
 * keep identical weights. Without MPI (built without it, or not started by mpirun) every call
 * is a no-op for a world of one. */
#ifndef DISTIL_DIST_H
#define DISTIL_DIST_H

#include <stddef.h>

/* Joins the MPI job when the environment says mpirun started us (OMPI_COMM_WORLD_SIZE or
 * PMI_SIZE is set); otherwise stays a single process. Call once, early in main. 0 or -1. */
int dl_dist_init(int *argc, char ***argv);
int dl_dist_rank(void);
int dl_dist_world(void);
/* x (n floats) becomes the mean of x over all ranks, on every rank. */
void dl_dist_allreduce_mean(float *x, size_t n);
/* The mean of v over all ranks (double precision, for losses). */
double dl_dist_mean_double(double v);
/* The largest v of any rank: ranks agree on a decision one of them made (a stop signal). */
int dl_dist_max_int(int v);
/* Every collective call below waits at most `seconds` (0: forever, the default) for the other
 * ranks. Past that this process prints a distil: error naming the wait and exits 1, and mpirun
 * then stops the whole job: a rank that died or hangs cannot keep the others waiting forever.
 * (mpirun already stops the job when a rank exits or is killed; this covers one that hangs or
 * is stopped, or a host that stopped answering.) */
void dl_dist_set_timeout(int seconds);
/* 1 when every rank holds the same n bytes at p (compared by a 64-bit hash), else 0. */
int dl_dist_same_bytes(const void *p, size_t n);
/* Leaves the job. failed != 0 aborts the whole job, so other ranks do not wait forever on a
 * collective call this rank will never make. */
void dl_dist_finalize(int failed);

#endif
