/* metrics: counters for GET /metrics in Prometheus' text format (version 0.0.4). */
#ifndef DISTIL_SERVE_METRICS_H
#define DISTIL_SERVE_METRICS_H

#include "sched.h"
#include <pthread.h>

typedef enum {
    DL_ROUTE_MODELS,
    DL_ROUTE_COMPLETIONS,
    DL_ROUTE_CHAT,
    DL_ROUTE_HEALTH,
    DL_ROUTE_METRICS,
    DL_ROUTE_OTHER,
    DL_ROUTE_COUNT
} dl_route;

#define DL_METRICS_BUCKETS 13

typedef struct dl_metrics {
    pthread_mutex_t mu;
    long long requests[DL_ROUTE_COUNT][600]; /* by route and HTTP status */
    long long prompt_tokens, completion_tokens;
    long long latency_le[DL_METRICS_BUCKETS]; /* requests at most this many seconds (cumulative) */
    long long latency_count;
    double latency_sum;
} dl_metrics;

const char *dl_route_path(dl_route r);
void dl_metrics_init(dl_metrics *m);
void dl_metrics_destroy(dl_metrics *m);
void dl_metrics_record(dl_metrics *m, dl_route r, int status, double seconds, long long prompt_tokens,
                       long long completion_tokens);
/* The exposition text: requests by route and status, tokens, a latency histogram, the queue
 * depth, active choices and batching counters, requests in flight. */
int dl_metrics_render(dl_metrics *m, const dl_sched_stats *st, int in_flight, dl_buf *out);

#endif
