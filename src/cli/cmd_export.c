#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_export(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'export' is not implemented yet");
}
