#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'eval' is not implemented yet");
}
