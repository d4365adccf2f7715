#include "base.h"
#include <stdarg.h>
#include <string.h>

int dl_fail(dl_error *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int dl_fail_ctx(dl_error *err, const char *fmt, ...) {
    if (!err) return -1;
    char ctx[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = 0;
    size_t n = strlen(ctx);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, ctx, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3, k = strlen(old);
    if (k > room) k = room;
    memcpy(err->msg + n + 2, old, k);
    err->msg[n + 2 + k] = 0;
    return -1;
}
