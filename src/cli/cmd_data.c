#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_data(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'data' is not implemented yet");
}
