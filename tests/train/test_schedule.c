/* LR schedule: values at key steps, worked out by hand from the formula in train.h. */
#include "test.h"
#include "train/train.h"

static void test_warmup_then_cosine(void) {
    /* lr 1e-3 -> 1e-4, 10 warmup updates, 111 updates: the cosine spans updates 10..110 (100 gaps) */
    double lr = 1e-3, lo = 1e-4;
    long W = 10, S = 111;
    CHECK_CLOSE(dl_lr_at(0, S, W, lr, lo), 1e-4, 1e-12, 0);  /* 1e-3 * 1/10 */
    CHECK_CLOSE(dl_lr_at(4, S, W, lr, lo), 5e-4, 1e-12, 0);  /* 1e-3 * 5/10 */
    CHECK_CLOSE(dl_lr_at(9, S, W, lr, lo), 1e-3, 1e-12, 0);  /* 1e-3 * 10/10 */
    CHECK_CLOSE(dl_lr_at(10, S, W, lr, lo), 1e-3, 1e-12, 0); /* cos(0) = 1 */
    /* quarter way: 1e-4 + 0.45e-3 * (1 + cos(pi/4)) = 1e-4 + 0.45e-3 * 1.7071067812 */
    CHECK_CLOSE(dl_lr_at(35, S, W, lr, lo), 8.6819805153e-4, 1e-12, 0);
    CHECK_CLOSE(dl_lr_at(60, S, W, lr, lo), 5.5e-4, 1e-12, 0); /* half way: cos(pi/2) = 0 */
    /* three quarters: 1e-4 + 0.45e-3 * (1 - 0.7071067812) */
    CHECK_CLOSE(dl_lr_at(85, S, W, lr, lo), 2.3180194847e-4, 1e-12, 0);
    CHECK_CLOSE(dl_lr_at(110, S, W, lr, lo), 1e-4, 1e-12, 0); /* the last update uses min_lr */
    CHECK_CLOSE(dl_lr_at(500, S, W, lr, lo), 1e-4, 1e-12, 0); /* past the end stays there */
    int monotone = 1;
    for (long s = 10; s < S; s++) monotone &= dl_lr_at(s + 1, S, W, lr, lo) <= dl_lr_at(s, S, W, lr, lo);
    CHECK(monotone);
}

static void test_edges(void) {
    CHECK_CLOSE(dl_lr_at(0, 1, 0, 0.5, 0.1), 0.5, 1e-12, 0); /* one update, no warmup: the peak */
    /* no warmup, 3 updates: peak, half way ((0.5 + 0.1) / 2), floor */
    CHECK_CLOSE(dl_lr_at(0, 3, 0, 0.5, 0.1), 0.5, 1e-12, 0);
    CHECK_CLOSE(dl_lr_at(1, 3, 0, 0.5, 0.1), 0.3, 1e-12, 0);
    CHECK_CLOSE(dl_lr_at(2, 3, 0, 0.5, 0.1), 0.1, 1e-12, 0);
    /* warmup longer than the run: it never reaches the peak */
    CHECK_CLOSE(dl_lr_at(0, 3, 5, 0.5, 0.1), 0.1, 1e-12, 0);
    CHECK_CLOSE(dl_lr_at(2, 3, 5, 0.5, 0.1), 0.3, 1e-12, 0);
    /* warmup ends at the last update: nothing to decay over, the last update uses the peak */
    CHECK_CLOSE(dl_lr_at(0, 3, 2, 0.5, 0.1), 0.25, 1e-12, 0);
    CHECK_CLOSE(dl_lr_at(2, 3, 2, 0.5, 0.1), 0.5, 1e-12, 0);
    /* min_lr == lr: constant after warmup */
    CHECK_CLOSE(dl_lr_at(7, 20, 2, 0.01, 0.01), 0.01, 1e-15, 0);
}

int main(void) {
    test_warmup_then_cosine();
    test_edges();
    TEST_MAIN_END();
}
