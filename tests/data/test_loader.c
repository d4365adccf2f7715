/* Batch loader: windows, determinism, epochs, sharding across ranks, seeking, errors. */
#include "data/data.h"
#include "test.h"

static char dir[512];

/* A token file whose token i is i (vocab large enough), so every id tells its position. */
static void make_identity_file(const char *path, int n) {
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = i;
    dl_error err;
    if (dl_tokfile_write(path, ids, (size_t)n, (uint32_t)n, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    free(ids);
}

static void test_windows(const dl_tokfile *f) {
    dl_loader ld;
    dl_error err;
    int B = 4, T = 8;
    CHECK(dl_loader_init(&ld, f, B, T, 1, 0, 1, &err) == 0);
    CHECK(ld.n_windows == (1001 - 1) / 8);
    int32_t in[32], tg[32];
    int ok = 1;
    for (int step = 0; step < 50; step++) {
        dl_loader_next(&ld, in, tg);
        for (int b = 0; b < B; b++) {
            int start = in[b * T];
            ok &= start % T == 0 && start + T <= 1000; /* aligned, and the last target is in the file */
            for (int t = 0; t < T; t++) ok &= in[b * T + t] == start + t && tg[b * T + t] == start + t + 1;
        }
    }
    CHECK(ok);
    CHECK(ld.batch_index == 50);
    dl_loader_free(&ld);
}

/* One epoch visits every window once; the next epoch uses another order. */
static void test_epochs(const dl_tokfile *f) {
    dl_loader ld;
    dl_error err;
    int T = 10;
    CHECK(dl_loader_init(&ld, f, 1, T, 7, 0, 1, &err) == 0);
    int nw = (int)ld.n_windows;
    CHECK(nw == 100);
    int seen[100] = {0}, order1[100], order2[100];
    int32_t in[10], tg[10];
    for (int i = 0; i < nw; i++) {
        dl_loader_next(&ld, in, tg);
        order1[i] = in[0] / T;
        seen[order1[i]]++;
    }
    int once = 1;
    for (int i = 0; i < nw; i++) once &= seen[i] == 1;
    CHECK(once);
    for (int i = 0; i < nw; i++) {
        dl_loader_next(&ld, in, tg);
        order2[i] = in[0] / T;
    }
    CHECK(memcmp(order1, order2, (size_t)nw * sizeof(int)) != 0);
    int identity = 1;
    for (int i = 0; i < nw; i++) identity &= order1[i] == i;
    CHECK(!identity); /* shuffled, not file order */
    dl_loader_free(&ld);
}

static void next_batch(dl_loader *ld, int32_t *in, int32_t *tg) { dl_loader_next(ld, in, tg); }

static void test_determinism_and_seek(const dl_tokfile *f) {
    dl_loader a, b, c;
    dl_error err;
    int B = 3, T = 5;
    CHECK(dl_loader_init(&a, f, B, T, 42, 0, 1, &err) == 0);
    CHECK(dl_loader_init(&b, f, B, T, 42, 0, 1, &err) == 0);
    CHECK(dl_loader_init(&c, f, B, T, 43, 0, 1, &err) == 0);
    int32_t ia[15], ta[15], ib[15], tb[15], ic[15], tc[15];
    int same = 1, differs = 0;
    int32_t at150[15];
    for (int s = 0; s < 200; s++) { /* 200 batches of 3 cross several epochs of 200 windows */
        next_batch(&a, ia, ta);
        next_batch(&b, ib, tb);
        next_batch(&c, ic, tc);
        same &= !memcmp(ia, ib, sizeof ia) && !memcmp(ta, tb, sizeof ta);
        differs |= memcmp(ia, ic, sizeof ia) != 0;
        if (s == 150) memcpy(at150, ia, sizeof ia);
    }
    CHECK(same);
    CHECK(differs);
    /* seeking to a batch (backwards, across epochs) gives exactly that batch again */
    dl_loader_seek(&b, 150);
    next_batch(&b, ib, tb);
    CHECK(memcmp(ib, at150, sizeof ib) == 0);
    CHECK(b.batch_index == 151);
    dl_loader_free(&a);
    dl_loader_free(&b);
    dl_loader_free(&c);
}

/* Ranks of a world of 3 with B=2 each, side by side, are the world-1 batch of B=6, for batches
 * that cross epoch boundaries mid-batch (111 windows is not a multiple of 6). */
static void test_sharding(const dl_tokfile *f) {
    enum { W = 3, B = 2, T = 9 };
    dl_loader whole, part[W];
    dl_error err;
    CHECK(dl_loader_init(&whole, f, B * W, T, 5, 0, 1, &err) == 0);
    CHECK(whole.n_windows == 111);
    for (int r = 0; r < W; r++) CHECK(dl_loader_init(&part[r], f, B, T, 5, r, W, &err) == 0);
    int32_t wi[B * W * T], wt[B * W * T], pi[B * T], pt[B * T];
    int ok = 1;
    for (int s = 0; s < 60; s++) {
        next_batch(&whole, wi, wt);
        for (int r = 0; r < W; r++) {
            next_batch(&part[r], pi, pt);
            ok &= !memcmp(pi, wi + r * B * T, sizeof pi) && !memcmp(pt, wt + r * B * T, sizeof pt);
        }
    }
    CHECK(ok);
    /* and ranks never read the same rows of one batch */
    dl_loader_seek(&part[0], 7);
    dl_loader_seek(&part[1], 7);
    next_batch(&part[0], wi, wt);
    next_batch(&part[1], pi, pt);
    CHECK(memcmp(wi, pi, sizeof pi) != 0);
    dl_loader_free(&whole);
    for (int r = 0; r < W; r++) dl_loader_free(&part[r]);
}

static void test_tiny_and_errors(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/tiny.bin", dir);
    make_identity_file(p, 9);
    dl_tokfile f;
    dl_error err;
    CHECK(dl_tokfile_open(&f, p, &err) == 0);
    dl_loader ld;
    CHECK(dl_loader_init(&ld, &f, 2, 9, 1, 0, 1, &err) == -1); /* 9 tokens < one window of 10 */
    CHECK(strstr(err.msg, "9 tokens") && strstr(err.msg, "10"));
    /* exactly one window: every row is that window */
    CHECK(dl_loader_init(&ld, &f, 3, 8, 1, 0, 1, &err) == 0);
    CHECK(ld.n_windows == 1);
    int32_t in[24], tg[24];
    dl_loader_next(&ld, in, tg);
    CHECK(in[0] == 0 && in[8] == 0 && in[16] == 0 && tg[23] == 8);
    dl_loader_free(&ld);
    CHECK(dl_loader_init(&ld, &f, 0, 4, 1, 0, 1, &err) == -1);
    CHECK(dl_loader_init(&ld, &f, 1, 0, 1, 0, 1, &err) == -1);
    CHECK(dl_loader_init(&ld, &f, 1, 4, 1, 2, 2, &err) == -1);
    CHECK(strstr(err.msg, "rank 2") != NULL);
    CHECK(dl_loader_init(&ld, &f, 1, 4, 1, -1, 2, &err) == -1);
    CHECK(dl_loader_init(&ld, &f, 1, 4, 1, 0, 0, &err) == -1);
    dl_tokfile_close(&f);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir("loader"));
    char p[700];
    snprintf(p, sizeof p, "%s/ids.bin", dir);
    make_identity_file(p, 1001);
    dl_tokfile f;
    dl_error err;
    CHECK(dl_tokfile_open(&f, p, &err) == 0);
    test_windows(&f);
    test_epochs(&f);
    test_determinism_and_seek(&f);
    test_sharding(&f);
    dl_tokfile_close(&f);
    test_tiny_and_errors();
    CHECK(dl_rm_rf(dir, &err) == 0);
    TEST_MAIN_END();
}
