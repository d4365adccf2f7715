/* Helpers for tests that run the distil binary. */
#ifndef DISTIL_CLI_UTIL_H
#define DISTIL_CLI_UTIL_H
#include "base/base.h"
#include "test.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct { int exited, status, signaled; char out[65536], err[65536]; } run_result;

static inline void slurp(const char *path, char *buf, size_t n) {
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = 0;
    fclose(f);
}

/* Runs `DISTIL_BIN args` through the shell, capturing stdout and stderr. */
static inline run_result *run_distil(const char *tmp, const char *args) {
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

/* Starts `DISTIL_BIN args...` (args NULL-terminated, at most 62) in the background with stdout and
 * stderr written to out_path and err_path; returns its pid. */
static inline pid_t spawn_distil(const char *out_path, const char *err_path, const char *const *args) {
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        const char *argv[64] = {DISTIL_BIN};
        for (int i = 0; i < 62 && args[i]; i++) argv[i + 1] = args[i];
        execv(DISTIL_BIN, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* The port a spawned `distil serve` listens on, read from its "listening on http://127.0.0.1:PORT"
 * line within 30 s; -1 when it exits first (it is left for the caller to reap) or never says. */
static inline int wait_serve_port(const char *out_path, pid_t pid) {
    static const char said[] = "listening on http://127.0.0.1:";
    for (int i = 0; i < 3000; i++) {
        char buf[4096];
        slurp(out_path, buf, sizeof buf);
        const char *p = strstr(buf, said);
        if (p && strchr(p, '\n')) return atoi(p + strlen(said));
        siginfo_t info = {0};
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) return -1;
        usleep(10000);
    }
    return -1;
}

/* SIGTERM, then up to 10 s to drain: the wait status, or -1 when it had to be killed. */
static inline int stop_distil(pid_t pid) {
    int st;
    kill(pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) return st;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static inline void write_text(const char *path, const char *text) {
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
