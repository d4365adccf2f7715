/* distil teacher-cache: the teacher's top-k per position of a token file, for distil distill --cache. */
#include "cli.h"
#include "distill/distill.h"

static const char SUMMARY[] =
    "Runs the teacher over a token file in windows of --seq-len tokens and writes, per position, its --top-k\n"
    "most likely next tokens with their log-probabilities (fp16) and the probability mass left over (fp32):\n"
    "4K + 4 bytes per token for vocabularies up to 65536. The file is memory-mapped by distil distill --cache\n"
    "and records the tokenizer and the token file it was made from; a run with another tokenizer, corpus or\n"
    "--seq-len refuses it. DATA is a token file or a data folder (its train.bin).";

int cmd_teacher_cache(int argc, char **argv) {
    dl_tcache_build_opts o;
    dl_tcache_build_opts_default(&o);
    cli_flag flags[] = {
        {"teacher", FLAG_STR, &o.teacher, "teacher model folder (with tokenizer.json)", 1, 0},
        {"data", FLAG_STR, &o.data, "token file, or a data folder (its train.bin)", 1, 0},
        {"out", FLAG_STR, &o.out, "cache file to write", 1, 0},
        {"top-k", FLAG_INT, &o.top_k, "ids kept per position (default 32)", 0, 0},
        {"seq-len", FLAG_INT, &o.seq_len, "window length; distil distill must use the same (default 256)", 0, 0},
        {"batch", FLAG_INT, &o.batch, "windows per teacher forward (default 8)", 0, 0},
        {"threads", FLAG_INT, &o.threads, "CPU threads, 0 = OpenMP default (default 0)", 0, 0},
        {0},
    };
    int rc = cli_parse("teacher-cache", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    if (dl_tcache_build(&o, &err)) return cli_error(&err);
    return 0;
}
