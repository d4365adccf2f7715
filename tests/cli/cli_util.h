/* Helpers for tests that run the distil binary. */
#ifndef DISTIL_CLI_UTIL_H
#define DISTIL_CLI_UTIL_H
#include "base/base.h"
#include "test.h"
#include <sys/wait.h>

typedef struct { int exited, status, signaled; char out[65536], err[65536]; } run_result;

static void slurp(const char *path, char *buf, size_t n) {
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = 0;
    fclose(f);
}

/* Runs `DISTIL_BIN args` through the shell, capturing stdout and stderr. */
static run_result *run_distil(const char *tmp, const char *args) {
    static run_result r;
    char cmd[8192], o[600], e[600];
    snprintf(o, sizeof o, "%s/stdout.txt", tmp);
    snprintf(e, sizeof e, "%s/stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "%s %s >'%s' 2>'%s' </dev/null", DISTIL_BIN, args, o, e);
    int st = system(cmd);
    r.exited = WIFEXITED(st);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    /* the shell reports a child killed by a signal as 128+sig */
    r.signaled = WIFSIGNALED(st) || (r.exited && r.status > 128);
    slurp(o, r.out, sizeof r.out);
    slurp(e, r.err, sizeof r.err);
    return &r;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    fputs(text, f);
    fclose(f);
}

/* A clean failure: non-zero exit, no signal, and an error line in distil's format. */
#define CHECK_CLEAN_ERROR(r, needle)                                                             \
    do {                                                                                         \
        CHECK_MSG(!(r)->signaled && (r)->status != 0, "status %d signaled %d", (r)->status, (r)->signaled); \
        CHECK_MSG(strstr((r)->err, "distil: error: ") != NULL, "stderr: %s", (r)->err);          \
        CHECK_MSG(strstr((r)->err, needle) != NULL, "expected '%s' in stderr: %s", needle, (r)->err); \
    } while (0)
#endif
