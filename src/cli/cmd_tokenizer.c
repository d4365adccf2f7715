#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_tokenizer(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'tokenizer' is not implemented yet");
}
