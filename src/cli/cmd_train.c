#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'train' is not implemented yet");
}
