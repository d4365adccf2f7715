#include "cli.h"
#include "train/train.h"

static const char TRAIN_SUMMARY[] =
    "Trains a Llama-style model from a config.json on a folder made by `distil data prepare`.\n"
    "RUN gets config.json, tokenizer.json, metrics.jsonl and checkpoints/ (the newest two are kept);\n"
    "at the end it also holds model.safetensors, so it is a model folder for `distil generate`.\n"
    "The learning rate warms up linearly for --warmup steps, then follows a cosine to --min-lr.\n"
    "Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits with an error;\n"
    "--resume continues from the newest checkpoint exactly as if never stopped.";

/* Help texts carry the defaults of dl_train_opts_default, so --help cannot drift from them. */
typedef struct { char steps[96], batch[96], seq[96], accum[96], lr[96], min_lr[96], warmup[96], wd[96],
                 b1[96], b2[96], clip[96], eval[96], evtok[96], save[96], log[96], seed[96]; } help_texts;

static void fill_help(help_texts *h, const dl_train_opts *d) {
    snprintf(h->steps, sizeof h->steps, "optimizer steps in the whole run (default %d)", d->steps);
    snprintf(h->batch, sizeof h->batch, "sequences per micro-batch (default %d)", d->batch);
    snprintf(h->seq, sizeof h->seq, "tokens per sequence, <= max_position_embeddings (default %d)", d->seq_len);
    snprintf(h->accum, sizeof h->accum, "micro-batches per step (default %d)", d->grad_accum);
    snprintf(h->lr, sizeof h->lr, "peak learning rate (default %g)", d->lr);
    snprintf(h->min_lr, sizeof h->min_lr, "learning rate at the last step (default %g)", d->min_lr);
    snprintf(h->warmup, sizeof h->warmup, "linear warmup steps (default %d)", d->warmup);
    snprintf(h->wd, sizeof h->wd, "AdamW weight decay on matrices (default %g)", d->weight_decay);
    snprintf(h->b1, sizeof h->b1, "AdamW beta1 (default %g)", d->beta1);
    snprintf(h->b2, sizeof h->b2, "AdamW beta2 (default %g)", d->beta2);
    snprintf(h->clip, sizeof h->clip, "max gradient norm, 0 = no clipping (default %g)", d->grad_clip);
    snprintf(h->eval, sizeof h->eval, "steps between validation runs, 0 = none (default %d)", d->eval_interval);
    snprintf(h->evtok, sizeof h->evtok, "validation tokens per run, 0 = all of val.bin (default %ld)",
             d->eval_tokens);
    snprintf(h->save, sizeof h->save, "steps between checkpoints, 0 = only at the end (default %d)",
             d->save_interval);
    snprintf(h->log, sizeof h->log, "steps between metrics.jsonl lines (default %d)", d->log_interval);
    snprintf(h->seed, sizeof h->seed, "seed of the initial weights and the data order (default %llu)",
             (unsigned long long)d->seed);
}

int cmd_train(int argc, char **argv) {
    dl_train_opts o;
    dl_train_opts_default(&o);
    help_texts h;
    fill_help(&h, &o);
    int seed = (int)o.seed, eval_tokens = (int)o.eval_tokens;
    cli_flag flags[] = {
        {"config", FLAG_STR, &o.config, "model config.json (or a model folder holding one)", 1, 0},
        {"data", FLAG_STR, &o.data, "folder with train.bin, val.bin, tokenizer.json", 1, 0},
        {"out", FLAG_STR, &o.out, "run folder (created if needed)", 1, 0},
        {"steps", FLAG_INT, &o.steps, h.steps, 0, 0},
        {"batch", FLAG_INT, &o.batch, h.batch, 0, 0},
        {"seq-len", FLAG_INT, &o.seq_len, h.seq, 0, 0},
        {"grad-accum", FLAG_INT, &o.grad_accum, h.accum, 0, 0},
        {"lr", FLAG_DOUBLE, &o.lr, h.lr, 0, 0},
        {"warmup", FLAG_INT, &o.warmup, h.warmup, 0, 0},
        {"min-lr", FLAG_DOUBLE, &o.min_lr, h.min_lr, 0, 0},
        {"weight-decay", FLAG_DOUBLE, &o.weight_decay, h.wd, 0, 0},
        {"beta1", FLAG_DOUBLE, &o.beta1, h.b1, 0, 0},
        {"beta2", FLAG_DOUBLE, &o.beta2, h.b2, 0, 0},
        {"grad-clip", FLAG_DOUBLE, &o.grad_clip, h.clip, 0, 0},
        {"eval-interval", FLAG_INT, &o.eval_interval, h.eval, 0, 0},
        {"eval-tokens", FLAG_INT, &eval_tokens, h.evtok, 0, 0},
        {"save-interval", FLAG_INT, &o.save_interval, h.save, 0, 0},
        {"log-interval", FLAG_INT, &o.log_interval, h.log, 0, 0},
        {"seed", FLAG_INT, &seed, h.seed, 0, 0},
        {"threads", FLAG_INT, &o.threads, "CPU threads, 0 = OpenMP default (default 0)", 0, 0},
        {"dist-timeout", FLAG_INT, &o.dist_timeout, "under mpirun: seconds to wait for the other processes before "
                                                    "stopping with an error, 0 = forever (default 300)", 0, 0},
        {"resume", FLAG_BOOL, &o.resume, "continue from the newest checkpoint in --out (fresh start if none)", 0, 0},
        {"stop-at", FLAG_INT, &o.stop_at, "stop after this step with a checkpoint, to --resume later (default 0: "
                                          "run to the end)", 0, 0},
        {0},
    };
    int rc = cli_parse("train", TRAIN_SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (seed < 0) return cli_errorf("distil train: --seed must be >= 0, got %d", seed);
    o.seed = (uint64_t)seed;
    o.eval_tokens = eval_tokens;
    dl_error err;
    if (dl_train(&o, &err)) return cli_error(&err);
    return 0;
}
