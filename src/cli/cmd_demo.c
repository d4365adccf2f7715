#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_demo(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'demo' is not implemented yet");
}
