#include "base.h"
#include <unistd.h>

void dl_progress_start(dl_progress *p, const char *label, long total) {
    p->label = label;
    p->total = total;
    p->done = 0;
    p->t_start = dl_now();
    p->t_last_print = 0;
    p->min_interval = 10.0;
    p->tty = isatty(STDERR_FILENO);
}

static void fmt_eta(char *out, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(out, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
}

void dl_progress_update(dl_progress *p, long done, const char *extra) {
    p->done = done;
    if (dl_log_get_level() < DL_LOG_INFO) return;
    double now = dl_now();
    int last = p->total > 0 && done >= p->total;
    double gap = p->tty ? 0.1 : p->min_interval;
    if (!last && p->t_last_print > 0 && now - p->t_last_print < gap) return;
    p->t_last_print = now;
    double el = now - p->t_start;
    char eta[32] = "?";
    if (done > 0 && p->total > 0) fmt_eta(eta, sizeof eta, el / (double)done * (double)(p->total - done));
    if (p->tty)
        fprintf(stderr, "\r\033[K%s %ld/%ld %s eta %s", p->label, done, p->total, extra ? extra : "", eta);
    else
        fprintf(stderr, "distil: %s %ld/%ld %s eta %s\n", p->label, done, p->total, extra ? extra : "", eta);
    fflush(stderr);
}

void dl_progress_finish(dl_progress *p) {
    if (p->tty && dl_log_get_level() >= DL_LOG_INFO && p->t_last_print > 0) fputc('\n', stderr);
}
