/* metrics.jsonl of a run folder, private to src/train. */
#ifndef DISTIL_METRICS_H
#define DISTIL_METRICS_H

#include "base/base.h"

typedef struct dl_metrics { FILE *f; char path[4096]; } dl_metrics;

/* Opens RUN/metrics.jsonl for appending after rewriting it to hold only the lines whose step
 * is <= keep_upto (keep_upto < 0: start empty). Lines that do not parse (a torn last line) go. */
int dl_metrics_open(dl_metrics *mt, const char *run_dir, long keep_upto, dl_error *err);
/* Appends one line (a JSON object without the newline) and flushes it. */
int dl_metrics_write(dl_metrics *mt, const char *json_line, dl_error *err);
/* Flushes to disk, so the log is durable whenever a checkpoint is. */
int dl_metrics_sync(dl_metrics *mt, dl_error *err);
void dl_metrics_close(dl_metrics *mt);

#endif
