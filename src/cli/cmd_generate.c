#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'generate' is not implemented yet");
}
