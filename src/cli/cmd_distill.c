/* distil distill: a student trained against a teacher, with every flag of distil train. */
#include "cli.h"
#include "distill/distill.h"
#include <string.h>

static const char SUMMARY[] =
    "Trains a student (a config.json, or a model folder to continue from) to match a teacher's next-token\n"
    "distribution on the data of `distil data prepare`, with the trainer of `distil train`: same run folder,\n"
    "checkpoints, --resume, metrics.jsonl (plus kd, ce, on_policy; and val_kl, val_agreement, val_top5 with a\n"
    "live teacher). The teacher is a model folder run forward every step (--teacher), a top-k cache from\n"
    "`distil teacher-cache` (--cache), or both (cache for corpus batches, teacher for generated ones and eval).\n"
    "Teacher, data and student must share the tokenizer; a teacher padded to a larger vocab_size is truncated.\n"
    "Loss: (1 - w) * T^2 * D(teacher_T || student_T) + w * CE(next token), D one of\n"
    "  fkl  forward KL      rkl  reverse KL      jsd  generalized JSD (--beta; 0 = fkl, 1 = rkl)\n"
    "  skl  skew forward KL (--skew-alpha)       srkl skew reverse KL (--skew-alpha)     tv  total variation\n"
    "T = --temperature softens both distributions; the T^2 factor keeps gradient sizes comparable across T.\n"
    "With a top-k cache the divergence is over K + 1 bins: the K ids and the rest of the mass.\n"
    "Black-box (--harvest OUT.jsonl of `distil harvest`, no --teacher, --cache or --data): the student learns the\n"
    "teacher's completions with the prompts as context: cross-entropy on completion tokens (never on prompt\n"
    "tokens), and where top logprobs were harvested and line up with the student's tokens, the top-k loss with\n"
    "a rest bin as for a cache. The student's tokenizer: STUDENT_DIR/tokenizer.json or --tokenizer (the teacher's\n"
    "tokenizer.json aligns every position). Each record is one window of --seq-len tokens (longer ones are cut,\n"
    "shorter ones padded); every 10th is held out for val_loss and val_agreement (student argmax vs the teacher's\n"
    "top logprob). A --ce-weight of 0.1-0.2 helps: the rest bin says how much mass lies outside the top-k, the\n"
    "sampled tokens say where. The tokenized harvest is written to OUT/harvest/.";

typedef struct { char steps[96], batch[96], seq[96], lr[96], min_lr[96], warmup[96], eval[96], save[96]; } help_texts;

static void fill_help(help_texts *h, const dl_train_opts *d) {
    snprintf(h->steps, sizeof h->steps, "optimizer steps in the whole run (default %d)", d->steps);
    snprintf(h->batch, sizeof h->batch, "sequences per micro-batch (default %d)", d->batch);
    snprintf(h->seq, sizeof h->seq, "tokens per sequence; a cache's own seq-len (default %d)", d->seq_len);
    snprintf(h->lr, sizeof h->lr, "peak learning rate (default %g)", d->lr);
    snprintf(h->min_lr, sizeof h->min_lr, "learning rate at the last step (default %g)", d->min_lr);
    snprintf(h->warmup, sizeof h->warmup, "linear warmup steps (default %d)", d->warmup);
    snprintf(h->eval, sizeof h->eval, "steps between validation runs, 0 = none (default %d)", d->eval_interval);
    snprintf(h->save, sizeof h->save, "steps between checkpoints, 0 = only at the end (default %d)", d->save_interval);
}

int cmd_distill(int argc, char **argv) {
    dl_distill_opts o;
    dl_distill_opts_default(&o);
    dl_train_opts *t = &o.train;
    help_texts h;
    fill_help(&h, t);
    int seed = (int)t->seed, eval_tokens = (int)t->eval_tokens;
    const char *loss = "fkl";
    cli_flag flags[] = {
        {"teacher", FLAG_STR, &o.teacher, "teacher model folder (config.json, model.safetensors, tokenizer.json)", 0, 0},
        {"cache", FLAG_STR, &o.cache, "top-k teacher cache of DATA/train.bin (distil teacher-cache)", 0, 0},
        {"harvest", FLAG_STR, &o.harvest, "black-box: a distil harvest OUT.jsonl instead of --teacher/--cache/--data",
         0, 0},
        {"tokenizer", FLAG_STR, &o.tokenizer, "--harvest: the student's tokenizer.json (default: STUDENT_DIR's)", 0, 0},
        {"student", FLAG_STR, &t->config, "student config.json, or a model folder to start from", 1, 0},
        {"data", FLAG_STR, &t->data, "folder with train.bin, val.bin, tokenizer.json (not with --harvest)", 0, 0},
        {"out", FLAG_STR, &t->out, "run folder (created if needed)", 1, 0},
        {"loss", FLAG_STR, &loss, "fkl, rkl, jsd, skl, srkl or tv (default fkl)", 0, 0},
        {"temperature", FLAG_FLOAT, &o.kd.tau, "softens teacher and student; loss scaled by T^2 (default 1)", 0, 0},
        {"beta", FLAG_FLOAT, &o.kd.beta, "jsd: 0 = forward KL, 1 = reverse KL (default 0.5)", 0, 0},
        {"skew-alpha", FLAG_FLOAT, &o.kd.alpha, "skl / srkl mixing weight in [0, 1] (default 0.1)", 0, 0},
        {"ce-weight", FLAG_FLOAT, &o.kd.ce_weight, "w in [0, 1]: share of next-token cross-entropy (default 0)", 0, 0},
        {"seq-kd", FLAG_BOOL, &o.seq_kd, "sequence-level KD: the teacher writes the continuations of corpus prompts", 0, 0},
        {"lmbda", FLAG_DOUBLE, &o.lmbda, "on-policy: probability a batch is the student's own samples (default 0)", 0, 0},
        {"prompt-len", FLAG_INT, &o.prompt_len, "corpus tokens kept as the prompt of generated batches (default "
                                                "seq-len / 2)", 0, 0},
        {"gen-temperature", FLAG_DOUBLE, &o.gen_temperature, "sampling temperature of generated text, 0 = greedy "
                                                             "(default 1)", 0, 0},
        {"init-from-teacher", FLAG_BOOL, &o.init_from_teacher, "start from teacher layers, embeddings and norm (student "
                                                               "as wide as the teacher, with the same attention biases)", 0, 0},
        {"layers", FLAG_STR, &o.layers, "teacher layers to copy, e.g. 0,2,4 (default: spread evenly)", 0, 0},
        {"steps", FLAG_INT, &t->steps, h.steps, 0, 0},
        {"batch", FLAG_INT, &t->batch, h.batch, 0, 0},
        {"seq-len", FLAG_INT, &t->seq_len, h.seq, 0, 0},
        {"grad-accum", FLAG_INT, &t->grad_accum, "micro-batches per step (default 1)", 0, 0},
        {"lr", FLAG_DOUBLE, &t->lr, h.lr, 0, 0},
        {"warmup", FLAG_INT, &t->warmup, h.warmup, 0, 0},
        {"min-lr", FLAG_DOUBLE, &t->min_lr, h.min_lr, 0, 0},
        {"weight-decay", FLAG_DOUBLE, &t->weight_decay, "AdamW weight decay on matrices (default 0.1)", 0, 0},
        {"beta1", FLAG_DOUBLE, &t->beta1, "AdamW beta1 (default 0.9)", 0, 0},
        {"beta2", FLAG_DOUBLE, &t->beta2, "AdamW beta2 (default 0.95)", 0, 0},
        {"grad-clip", FLAG_DOUBLE, &t->grad_clip, "max gradient norm, 0 = no clipping (default 1)", 0, 0},
        {"eval-interval", FLAG_INT, &t->eval_interval, h.eval, 0, 0},
        {"eval-tokens", FLAG_INT, &eval_tokens, "validation tokens per run, 0 = all of val.bin (default 65536)", 0, 0},
        {"save-interval", FLAG_INT, &t->save_interval, h.save, 0, 0},
        {"log-interval", FLAG_INT, &t->log_interval, "steps between metrics.jsonl lines (default 10)", 0, 0},
        {"seed", FLAG_INT, &seed, "seed of the initial weights, data order and sampling (default 1337)", 0, 0},
        {"threads", FLAG_INT, &t->threads, "CPU threads, 0 = OpenMP default (default 0)", 0, 0},
        {"dist-timeout", FLAG_INT, &t->dist_timeout, "under mpirun: seconds to wait for the other processes before "
                                                     "stopping with an error, 0 = forever (default 300)", 0, 0},
        {"resume", FLAG_BOOL, &t->resume, "continue from the newest checkpoint in --out (fresh start if none)", 0, 0},
        {"stop-at", FLAG_INT, &t->stop_at, "stop after this step with a checkpoint, to --resume later", 0, 0},
        {0},
    };
    int rc = cli_parse("distill", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    if (dl_kd_parse(loss, &o.kd.kind, &err)) return cli_errorf("distil distill: --loss: %s", err.msg);
    if (seed < 0) return cli_errorf("distil distill: --seed must be >= 0, got %d", seed);
    t->seed = (uint64_t)seed;
    t->eval_tokens = eval_tokens;
    if (dl_distill(&o, &err)) return cli_error(&err);
    return 0;
}
