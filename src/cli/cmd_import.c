#include "cli.h"

/* placeholder until the subcommand lands */
int cmd_import(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_errorf("'import' is not implemented yet");
}
