/* Prometheus text exposition of the server's counters. */
#include "metrics.h"
#include <string.h>

static const double BUCKETS[DL_METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const char *PATHS[DL_ROUTE_COUNT] = {"/v1/models", "/v1/completions", "/v1/chat/completions",
                                            "/health", "/metrics", "other"};

const char *dl_route_path(dl_route r) { return (int)r >= 0 && r < DL_ROUTE_COUNT ? PATHS[r] : "other"; }

void dl_metrics_init(dl_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void dl_metrics_destroy(dl_metrics *m) { pthread_mutex_destroy(&m->mu); }

void dl_metrics_record(dl_metrics *m, dl_route r, int status, double seconds, long long prompt_tokens,
                       long long completion_tokens) {
    if ((int)r < 0 || r >= DL_ROUTE_COUNT) r = DL_ROUTE_OTHER;
    pthread_mutex_lock(&m->mu);
    if (status >= 100 && status < 600) m->requests[r][status]++;
    m->prompt_tokens += prompt_tokens;
    m->completion_tokens += completion_tokens;
    for (int i = 0; i < DL_METRICS_BUCKETS; i++)
        if (seconds <= BUCKETS[i]) m->latency_le[i]++;
    m->latency_count++;
    m->latency_sum += seconds;
    pthread_mutex_unlock(&m->mu);
}

static int render_locked(const dl_metrics *m, const dl_sched_stats *st, int in_flight, dl_buf *out) {
    int bad = dl_buf_printf(out, "# HELP distil_requests_total HTTP requests by route and status.\n"
                                 "# TYPE distil_requests_total counter\n");
    for (int r = 0; r < DL_ROUTE_COUNT; r++)
        for (int s = 100; s < 600; s++)
            if (m->requests[r][s])
                bad |= dl_buf_printf(out, "distil_requests_total{route=\"%s\",status=\"%d\"} %lld\n", PATHS[r], s,
                                     m->requests[r][s]);
    bad |= dl_buf_printf(out,
                         "# HELP distil_prompt_tokens_total Prompt tokens of finished requests.\n"
                         "# TYPE distil_prompt_tokens_total counter\ndistil_prompt_tokens_total %lld\n"
                         "# HELP distil_completion_tokens_total Generated tokens of finished requests.\n"
                         "# TYPE distil_completion_tokens_total counter\ndistil_completion_tokens_total %lld\n"
                         "# HELP distil_request_duration_seconds Time from a request's headers to its last byte.\n"
                         "# TYPE distil_request_duration_seconds histogram\n",
                         m->prompt_tokens, m->completion_tokens);
    for (int i = 0; i < DL_METRICS_BUCKETS; i++)
        bad |= dl_buf_printf(out, "distil_request_duration_seconds_bucket{le=\"%g\"} %lld\n", BUCKETS[i], m->latency_le[i]);
    bad |= dl_buf_printf(out,
                         "distil_request_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
                         "distil_request_duration_seconds_sum %.6f\ndistil_request_duration_seconds_count %lld\n",
                         m->latency_count, m->latency_sum, m->latency_count);
    bad |= dl_buf_printf(out,
                         "# HELP distil_queue_depth Requests waiting for a decoding slot.\n"
                         "# TYPE distil_queue_depth gauge\ndistil_queue_depth %d\n"
                         "# HELP distil_queued_choices Choices (prompts x n) waiting for a decoding slot.\n"
                         "# TYPE distil_queued_choices gauge\ndistil_queued_choices %d\n"
                         "# HELP distil_active_choices Choices being decoded.\n"
                         "# TYPE distil_active_choices gauge\ndistil_active_choices %d\n"
                         "# HELP distil_requests_in_flight Requests received and not yet answered.\n"
                         "# TYPE distil_requests_in_flight gauge\ndistil_requests_in_flight %d\n"
                         "# HELP distil_decode_steps_total Batched decode steps.\n"
                         "# TYPE distil_decode_steps_total counter\ndistil_decode_steps_total %lld\n"
                         "# HELP distil_decode_rows_total Rows over all batched decode steps (rows/steps = mean batch).\n"
                         "# TYPE distil_decode_rows_total counter\ndistil_decode_rows_total %lld\n"
                         "# HELP distil_sampled_tokens_total Tokens sampled by the scheduler.\n"
                         "# TYPE distil_sampled_tokens_total counter\ndistil_sampled_tokens_total %lld\n",
                         st->queued_jobs, st->queued_choices, st->active, in_flight, st->steps, st->rows, st->tokens);
    return bad ? -1 : 0;
}

int dl_metrics_render(dl_metrics *m, const dl_sched_stats *st, int in_flight, dl_buf *out) {
    pthread_mutex_lock(&m->mu);
    int rc = render_locked(m, st, in_flight, out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
