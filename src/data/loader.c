/* Batch loader. Sample s (counted over the whole run, all ranks) lies in epoch s / n_windows and
 * is window perm_epoch[s % n_windows]; global batch g holds samples g*B*world .. g*B*world +
 * B*world - 1 and rank r reads its B rows of them. Everything is a function of (seed, g), so a
 * resumed run only needs g, and any world size sees the same global batches. */
#include "data.h"
#include <stdlib.h>
#include <string.h>

/* Fisher-Yates over all windows, keyed by (seed, epoch) only: ranks must agree on it. */
static void build_perm(dl_loader *ld, uint64_t epoch) {
    dl_rng r;
    dl_rng_seed(&r, ld->seed ^ (0x9e3779b97f4a7c15ULL * (epoch + 1)));
    for (uint64_t i = 0; i < ld->n_windows; i++) ld->perm[i] = i;
    for (uint64_t i = ld->n_windows; i > 1; i--) {
        uint64_t j = dl_rng_below(&r, i);
        uint64_t t = ld->perm[i - 1];
        ld->perm[i - 1] = ld->perm[j];
        ld->perm[j] = t;
    }
    ld->perm_epoch = epoch;
}

int dl_loader_init(dl_loader *ld, const dl_tokfile *f, int B, int T, uint64_t seed, int rank, int world,
                   dl_error *err) {
    memset(ld, 0, sizeof *ld);
    if (B <= 0 || T <= 0) return dl_fail(err, "loader: batch %d and sequence length %d must be positive", B, T);
    if (world <= 0 || rank < 0 || rank >= world)
        return dl_fail(err, "loader: rank %d is not in [0, world size %d)", rank, world);
    if (f->n_tokens < (uint64_t)T + 1)
        return dl_fail(err, "loader: the token file holds %llu tokens, fewer than one window of seq_len+1 = %d",
                       (unsigned long long)f->n_tokens, T + 1);
    ld->f = f;
    ld->B = B;
    ld->T = T;
    ld->rank = rank;
    ld->world = world;
    ld->seed = seed;
    ld->n_windows = (f->n_tokens - 1) / (uint64_t)T;
    size_t bytes;
    if (dl_mul_size((size_t)ld->n_windows, sizeof *ld->perm, &bytes) || !(ld->perm = malloc(bytes)))
        return dl_fail(err, "loader: out of memory for %llu windows", (unsigned long long)ld->n_windows);
    build_perm(ld, 0);
    return 0;
}

void dl_loader_next(dl_loader *ld, int32_t *inputs, int32_t *targets) {
    dl_loader_next_starts(ld, inputs, targets, NULL);
}

void dl_loader_next_starts(dl_loader *ld, int32_t *inputs, int32_t *targets, uint64_t *starts) {
    const int B = ld->B, T = ld->T;
    uint64_t first = ld->batch_index * (uint64_t)B * (uint64_t)ld->world + (uint64_t)ld->rank * (uint64_t)B;
    for (int b = 0; b < B; b++) {
        uint64_t s = first + (uint64_t)b;
        uint64_t epoch = s / ld->n_windows;
        if (epoch != ld->perm_epoch) build_perm(ld, epoch);
        uint64_t start = ld->perm[s % ld->n_windows] * (uint64_t)T;
        if (starts) starts[b] = start;
        // inputs, targets are (B,T); the window is tokens start .. start+T
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = dl_tokfile_get(ld->f, start + (uint64_t)t);
            targets[b * T + t] = dl_tokfile_get(ld->f, start + (uint64_t)t + 1);
        }
    }
    ld->batch_index++;
}

void dl_loader_seek(dl_loader *ld, uint64_t batch_index) { ld->batch_index = batch_index; }

void dl_loader_free(dl_loader *ld) {
    free(ld->perm);
    memset(ld, 0, sizeof *ld);
}
