#include "metrics.h"
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int keep_line(const char *line, size_t len, long keep_upto) {
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    json_t *s = o ? json_object_get(o, "step") : NULL;
    int keep = s && json_is_integer(s) && json_integer_value(s) <= keep_upto;
    json_decref(o);
    return keep;
}

/* Rewrites the file keeping lines up to keep_upto (atomically, so a crash keeps the old log). */
static int truncate_log(const char *path, long keep_upto, dl_error *err) {
    if (!dl_path_exists(path)) return 0;
    char *text;
    size_t len;
    if (keep_upto < 0) return dl_write_file_atomic(path, "", 0, err);
    if (dl_read_file(path, &text, &len, err)) return -1;
    dl_buf out = {0};
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (nl && keep_line(text + at, end - at, keep_upto))
            rc = dl_buf_append(&out, text + at, end - at + 1) ? dl_fail(err, "out of memory") : 0;
        at = end + 1;
    }
    if (rc == 0) rc = dl_write_file_atomic(path, out.data ? out.data : "", out.len, err);
    dl_buf_free(&out);
    free(text);
    return rc;
}

int dl_metrics_open(dl_metrics *mt, const char *run_dir, long keep_upto, dl_error *err) {
    memset(mt, 0, sizeof *mt);
    if (dl_path_join(mt->path, sizeof mt->path, run_dir, "metrics.jsonl", err)) return -1;
    if (truncate_log(mt->path, keep_upto, err)) return -1;
    mt->f = fopen(mt->path, "a");
    if (!mt->f) return dl_fail(err, "%s: cannot open: %s", mt->path, strerror(errno));
    return 0;
}

int dl_metrics_write(dl_metrics *mt, const char *json_line, dl_error *err) {
    if (fprintf(mt->f, "%s\n", json_line) < 0 || fflush(mt->f) != 0)
        return dl_fail(err, "%s: write failed: %s", mt->path, strerror(errno));
    return 0;
}

int dl_metrics_sync(dl_metrics *mt, dl_error *err) {
    if (fflush(mt->f) != 0 || fsync(fileno(mt->f)) != 0)
        return dl_fail(err, "%s: sync failed: %s", mt->path, strerror(errno));
    return 0;
}

void dl_metrics_close(dl_metrics *mt) {
    if (mt->f) fclose(mt->f);
    mt->f = NULL;
}
