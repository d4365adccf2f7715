#include "base.h"
#include <stdarg.h>
#include <time.h>

static dl_log_level g_level = DL_LOG_INFO;

void dl_log_set_level(dl_log_level lv) { g_level = lv; }
dl_log_level dl_log_get_level(void) { return g_level; }

static void vlog(const char *tag, const char *fmt, va_list ap) {
    fprintf(stderr, "distil: %s", tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void dl_log(const char *fmt, ...) {
    if (g_level < DL_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void dl_debug(const char *fmt, ...) {
    if (g_level < DL_LOG_DEBUG) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", fmt, ap);
    va_end(ap);
}

double dl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
