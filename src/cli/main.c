#include "cli.h"
#include "ops/ops.h"
#include "train/dist.h"
#include <string.h>

typedef struct { const char *name; int (*fn)(int, char **); const char *help; } command;

static const command COMMANDS[] = {
    {"demo", cmd_demo, "train a tokenizer and a small model on a corpus, show samples"},
    {"tokenizer", cmd_tokenizer, "train a byte-level BPE tokenizer (tokenizer train)"},
    {"data", cmd_data, "tokenize a corpus into train.bin / val.bin (data prepare)"},
    {"train", cmd_train, "train a model from a config on prepared data"},
    {"distill", cmd_distill, "train a student against a teacher (live model or top-k cache)"},
    {"teacher-cache", cmd_teacher_cache, "store a teacher's top-k next tokens per position of a token file"},
    {"generate", cmd_generate, "sample text from a model"},
    {"eval", cmd_eval, "loss, perplexity and speed of a model on a token file"},
    {"export", cmd_export, "write a model in another format (export gguf)"},
    {"import", cmd_import, "read a model from another format (import gguf)"},
    {"serve", cmd_serve, "serve a model over an OpenAI-compatible HTTP API"},
    {"keys", cmd_keys, "create, list and revoke API keys of distil serve"},
    {"harvest", cmd_harvest, "collect completions and logprobs from an OpenAI-compatible API"},
    {"audit", cmd_audit, "score the API keys in a serve usage log for harvesting"},
    {"detect", cmd_detect, "test a text, a model or an API for our watermark (detect text|model|api)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: distil COMMAND [flags]   (distil COMMAND --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-14s %s\n", COMMANDS[i].name, COMMANDS[i].help);
}

int main(int argc, char **argv) {
    /* OpenMP and OpenBLAS take turns on the cores; spinning idle threads of one pool starve the
     * other (see bench/README.md). May re-execute the program once with tuned settings. */
    dl_ops_tune_runtime(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) {
            /* under mpirun every rank runs this command (after the re-exec above, which must
             * happen before MPI starts) */
            if (dl_dist_init(&argc, &argv)) {
                cli_errorf("cannot join the MPI job (MPI_Init failed)");
                return 1;
            }
            int rc = COMMANDS[i].fn(argc - 1, argv + 1);
            dl_dist_finalize(rc);
            return rc;
        }
    cli_errorf("unknown command '%s' (see distil --help)", argv[1]);
    return 2;
}
