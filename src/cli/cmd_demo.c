#include "cli.h"
#include "train/demo.h"

int cmd_demo(int argc, char **argv) {
    dl_demo_opts o;
    dl_demo_opts_default(&o);
    int seed = (int)o.seed;
    cli_flag flags[] = {
        {"corpus", FLAG_STR, &o.corpus, "text corpus (default: the KJV Bible installed by scripts/install-deps.sh)", 0, 0},
        {"out", FLAG_STR, &o.out, "run folder (default runs/demo)", 0, 0},
        {"vocab-size", FLAG_INT, &o.vocab_size, "tokenizer vocabulary (default 2048)", 0, 0},
        {"steps", FLAG_INT, &o.steps, "training updates (default 1000)", 0, 0},
        {"threads", FLAG_INT, &o.threads, "threads (default: all cores)", 0, 0},
        {"seed", FLAG_INT, &seed, "seed for weights, data order and samples (default 1)", 0, 0},
        {"samples", FLAG_INT, &o.samples, "prompts to continue at the end, at most 5 (default 3)", 0, 0},
        {"sample-tokens", FLAG_INT, &o.sample_tokens, "tokens per sample (default 60)", 0, 0},
        {0},
    };
    int rc = cli_parse("demo",
                       "Trains a byte-level BPE tokenizer and a small Llama-style model on a corpus, prints\n"
                       "the validation loss and a few samples. Writes everything under the run folder.",
                       flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 2 : 0;
    if (o.vocab_size < 260 || o.steps < 1 || o.samples < 0 || o.sample_tokens < 1)
        return cli_errorf("demo: --vocab-size must be >= 260, --steps and --sample-tokens >= 1, --samples >= 0");
    o.seed = (uint64_t)seed;
    dl_error err;
    if (dl_demo_run(&o, &err)) return cli_error(&err);
    return 0;
}
