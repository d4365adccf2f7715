/* cli: one file per subcommand; each parses flags and calls one library function. */
#ifndef DISTIL_CLI_H
#define DISTIL_CLI_H

#include "base/base.h"

typedef enum { FLAG_STR, FLAG_INT, FLAG_FLOAT, FLAG_DOUBLE, FLAG_BOOL } flag_type;

typedef struct cli_flag {
    const char *name;  /* without the leading "--" */
    flag_type type;
    void *dst;         /* const char **, int *, float *, double *, int * (bool) */
    const char *help;
    int required;
    int seen;          /* set by the parser */
} cli_flag;

/* Parses argv (argv[0] is the subcommand path, for example "tokenizer train").
 * Accepts --name value and --name=value; bools take no value. Positional arguments are
 * collected into pos (up to max_pos). Returns 0 to run, 1 when --help was printed (exit 0),
 * -1 on a bad flag (an error was printed; exit 2). */
int cli_parse(const char *cmd, const char *summary, cli_flag *flags, int argc, char **argv,
              char **pos, int max_pos, int *npos);
void cli_usage(const char *cmd, const char *summary, const cli_flag *flags, FILE *out);
/* Commands with subcommands ("distil tokenizer train ..."): runs the one named by argv[1]
 * (subs ends with {NULL, NULL}); "--help" prints usage to stdout (exit 0), a missing or unknown
 * one prints usage or an error (exit 2). */
typedef struct cli_sub { const char *name; int (*fn)(int, char **); } cli_sub;
int cli_dispatch(const char *group, void (*usage)(FILE *), const cli_sub *subs, int argc, char **argv);

/* Prints "distil: error: MSG" and returns 1 (the exit status). */
int cli_error(const dl_error *err);
int cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Subcommands: each returns the process exit status. */
int cmd_tokenizer(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_harvest(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_teacher_cache(int argc, char **argv);

#endif
