/* Learning-rate schedule: linear warmup, then cosine decay to min_lr. */
#include "train.h"
#include <math.h>

double dl_lr_at(long step, long steps, long warmup, double lr, double min_lr) {
    if (step < warmup) return lr * (double)(step + 1) / (double)warmup;
    long decay = steps - 1 - warmup; /* updates after the first post-warmup one */
    if (decay <= 0) return step >= steps ? min_lr : lr;
    if (step >= steps - 1) return min_lr;
    double progress = (double)(step - warmup) / (double)decay;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(M_PI * progress));
}
