/* Defaults and checks of dl_train_opts, shared by the library and `distil train --help`. */
#include "run.h"

void dl_train_opts_default(dl_train_opts *o) {
    *o = (dl_train_opts){
        .steps = 1000,
        .batch = 8,
        .seq_len = 256,
        .grad_accum = 1,
        .lr = 1e-3,
        .min_lr = 1e-4,
        .warmup = 100,
        .weight_decay = 0.1,
        .beta1 = 0.9,
        .beta2 = 0.95,
        .grad_clip = 1.0,
        .eval_interval = 100,
        .eval_tokens = 65536,
        .save_interval = 500,
        .log_interval = 10,
        .seed = 1337,
        .dist_timeout = 300,
    };
}

int dl_train_check_opts(const dl_train_opts *o, dl_error *err) {
    if (!o->config || !o->data || !o->out) return dl_fail(err, "train: config, data and out folders are required");
    if (o->steps <= 0) return dl_fail(err, "train: steps must be positive (got %d)", o->steps);
    if (o->batch <= 0) return dl_fail(err, "train: batch must be positive (got %d)", o->batch);
    if (o->seq_len <= 0) return dl_fail(err, "train: seq-len must be positive (got %d)", o->seq_len);
    if (o->grad_accum <= 0) return dl_fail(err, "train: grad-accum must be positive (got %d)", o->grad_accum);
    if ((long long)o->batch * o->seq_len > (1LL << 28))
        return dl_fail(err, "train: batch x seq-len = %lld tokens per micro-batch is too large",
                       (long long)o->batch * o->seq_len);
    if (!(o->lr > 0 && o->lr < 10)) return dl_fail(err, "train: lr must be in (0, 10) (got %g)", o->lr);
    if (!(o->min_lr >= 0 && o->min_lr <= o->lr))
        return dl_fail(err, "train: min-lr must be in [0, lr = %g] (got %g)", o->lr, o->min_lr);
    if (o->warmup < 0) return dl_fail(err, "train: warmup must be >= 0 (got %d)", o->warmup);
    if (!(o->weight_decay >= 0)) return dl_fail(err, "train: weight-decay must be >= 0 (got %g)", o->weight_decay);
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
        return dl_fail(err, "train: beta1 %g and beta2 %g must be in [0, 1)", o->beta1, o->beta2);
    if (!(o->grad_clip >= 0)) return dl_fail(err, "train: grad-clip must be >= 0 (0 disables it; got %g)", o->grad_clip);
    if (o->eval_interval < 0 || o->save_interval < 0 || o->eval_tokens < 0 || o->stop_at < 0)
        return dl_fail(err, "train: eval-interval, eval-tokens, save-interval and stop-at must be >= 0");
    if (o->log_interval <= 0) return dl_fail(err, "train: log-interval must be positive (got %d)", o->log_interval);
    if (o->dist_timeout < 0) return dl_fail(err, "train: dist-timeout must be >= 0 (got %d)", o->dist_timeout);
    if (o->threads < 0) return dl_fail(err, "train: threads must be >= 0 (got %d)", o->threads);
    return 0;
}
