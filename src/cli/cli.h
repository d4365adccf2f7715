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

/* The request flags of an OpenAI-compatible client run (o: a dl_harvest_opts), shared by
 * distil harvest and distil detect api so both take and describe them alike. */
#define CLI_HARVEST_REQUEST_FLAGS(o)                                                                                  \
    {"api-key", FLAG_STR, &(o).api_key, "API key, sent as a Bearer token (default: $DISTIL_API_KEY)", 0, 0},           \
    {"model", FLAG_STR, &(o).model, "model name (default: the first one GET /v1/models lists)", 0, 0},                 \
    {"chat", FLAG_BOOL, &(o).chat, "use /v1/chat/completions (messages) instead of /v1/completions", 0, 0},           \
    {"concurrency", FLAG_INT, &(o).concurrency, "requests in flight (default 4)", 0, 0},                               \
    {"max-tokens", FLAG_INT, &(o).max_tokens, "most tokens per completion (default 128)", 0, 0},                      \
    {"temperature", FLAG_DOUBLE, &(o).temperature, "sampling temperature (default 1)", 0, 0},                        \
    {"retries", FLAG_INT, &(o).retries, "further tries of a prompt after a retryable error (default 5)", 0, 0},       \
    {"timeout", FLAG_DOUBLE, &(o).timeout_s, "seconds one request may take (default 120)", 0, 0},                    \
    {"seed", FLAG_INT, &(o).seed, "sent as \"seed\" (N + the prompt's line number), for repeatable answers "         \
                                  "(default: none)", 0, 0}

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
