#include "cli.h"
#include "data/data.h"
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)
static const char DATA_SUMMARY[] =
    "Tokenizes a text corpus into DIR/train.bin and DIR/val.bin (the last --val-fraction of the text,\n"
    "cut at a line boundary) and copies the tokenizer to DIR/tokenizer.json. \"<|endoftext|>\" in the\n"
    "corpus becomes the end-of-text token. Each part must hold at least " STR(DL_DATA_MIN_TOKENS) " tokens.";

int cmd_data(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "prepare") != 0) {
        int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(help ? stdout : stderr, "usage: distil data prepare --corpus FILE --tokenizer T --out DIR "
                                        "[--val-fraction F]\n(distil data prepare --help for details)\n");
        if (help) return 0;
        return cli_errorf("distil data: expected the subcommand 'prepare'"), 2;
    }
    const char *corpus = NULL, *tokenizer = NULL, *out = NULL;
    double val_fraction = 0.1;
    cli_flag flags[] = {
        {"corpus", FLAG_STR, &corpus, "text file to tokenize", 1, 0},
        {"tokenizer", FLAG_STR, &tokenizer, "tokenizer.json (from distil tokenizer train)", 1, 0},
        {"val-fraction", FLAG_DOUBLE, &val_fraction, "share of the text for val.bin, above 0 and below 0.5 "
                                                     "(default 0.1)", 0, 0},
        {"out", FLAG_STR, &out, "output folder (created if needed)", 1, 0},
        {0},
    };
    int rc = cli_parse("data prepare", DATA_SUMMARY, flags, argc - 1, argv + 1, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    if (dl_data_prepare(corpus, tokenizer, val_fraction, out, &err)) return cli_error(&err);
    return 0;
}
