/* distil keys create|list|revoke: API keys for `distil serve`, kept (hashed) in its --db. */
#include "cli.h"
#include "serve/serve.h"
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: distil keys COMMAND --db F [flags]\n\n"
                 "  create   make a key (printed once; the db keeps only its hash)\n"
                 "  list     show the keys, their limits and the tokens they used\n"
                 "  revoke   revoke a key by --name or --id (a running server refuses it at once)\n");
}

static int keys_create(int argc, char **argv) {
    const char *db = NULL, *name = NULL;
    int rpm = 0, tpm = 0, quota = 0;
    cli_flag flags[] = {
        {"db", FLAG_STR, &db, "the server's SQLite db", 1, 0},
        {"name", FLAG_STR, &name, "a unique name for the key (who it is for)", 1, 0},
        {"rpm", FLAG_INT, &rpm, "requests per minute (default 0 = unlimited)", 0, 0},
        {"tpm", FLAG_INT, &tpm, "prompt + completion tokens per minute (default 0 = unlimited)", 0, 0},
        {"quota-tokens", FLAG_INT, &quota, "tokens in total (default 0 = unlimited)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("keys create", "Makes an API key and prints it once, on stdout.", flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (rpm < 0 || tpm < 0 || quota < 0) return cli_errorf("--rpm, --tpm and --quota-tokens must be >= 0"), 2;
    dl_key_limits lim = {.rpm = rpm, .tpm = tpm, .quota_tokens = quota};
    char key[DL_KEY_TEXT_MAX];
    long long id;
    dl_error err;
    if (dl_keys_create(db, name, &lim, key, &id, &err)) return cli_error(&err);
    printf("%s\n", key);
    fflush(stdout);
    dl_log("key %lld '%s' created; it is shown only this once", id, name);
    return 0;
}

static int keys_list(int argc, char **argv) {
    const char *db = NULL;
    cli_flag flags[] = {{"db", FLAG_STR, &db, "the server's SQLite db", 1, 0}, {NULL, 0, NULL, NULL, 0, 0}};
    int rc = cli_parse("keys list", "Lists the API keys (never the keys themselves: a prefix of each).", flags, argc,
                       argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    return dl_keys_list(db, stdout, &err) ? cli_error(&err) : 0;
}

static int keys_revoke(int argc, char **argv) {
    const char *db = NULL, *name = NULL;
    int id = 0;
    cli_flag flags[] = {
        {"db", FLAG_STR, &db, "the server's SQLite db", 1, 0},
        {"name", FLAG_STR, &name, "the key's name", 0, 0},
        {"id", FLAG_INT, &id, "the key's id (see keys list)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("keys revoke", "Revokes an API key.", flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if ((name != NULL) == (flags[2].seen != 0)) return cli_errorf("give either --name or --id"), 2;
    char id_text[32];
    snprintf(id_text, sizeof id_text, "%d", id);
    dl_error err;
    if (dl_keys_revoke(db, name ? name : id_text, &err)) return cli_error(&err);
    dl_log("key %s revoked", name ? name : id_text);
    return 0;
}

int cmd_keys(int argc, char **argv) {
    static const cli_sub subs[] = {{"create", keys_create}, {"list", keys_list}, {"revoke", keys_revoke}, {NULL, NULL}};
    return cli_dispatch("keys", usage, subs, argc, argv);
}
