/* Streaming: server-sent events. libmicrohttpd pulls bytes through a reader callback on the
 * connection's own thread; the reader turns whatever the scheduler has made final since the
 * last call into chunks (one per choice with news), blocking on the job until there is some.
 * The stream ends with the usage chunk when asked for, and "data: [DONE]". */
#include "server.h"
#include <stdlib.h>
#include <string.h>

// chunks for everything new in choice i (under the job's lock); returns -1 when out of memory
static int choice_events(dl_req_ctx *c, int i) {
    dl_job *j = c->job;
    const dl_api_choice *ch = &j->choices[i];
    size_t t1 = ch->final_len, k1 = ch->out_tokens;
    int first = !c->opened[i];
    if (t1 < c->sent_text[i]) t1 = c->sent_text[i];
    if (k1 < c->sent_tok[i]) k1 = c->sent_tok[i];
    /* tokens alone are news only when their logprobs are wanted */
    int news = t1 > c->sent_text[i] || (c->req.logprobs >= 0 && k1 > c->sent_tok[i]) || (first && c->req.chat);
    int finish = ch->done && !c->closed[i] && ch->finish_reason;
    if (news && dl_api_stream_chunk(&c->sse, &c->req, &c->meta, ch, i, c->sent_text[i], t1, c->sent_tok[i], k1, NULL,
                                    first, c->srv->tok))
        return -1;
    if (news) c->opened[i] = 1;
    c->sent_text[i] = t1;
    c->sent_tok[i] = k1;
    if (finish && dl_api_stream_chunk(&c->sse, &c->req, &c->meta, ch, i, t1, t1, k1, k1, ch->finish_reason, 0, c->srv->tok))
        return -1;
    if (ch->done) c->closed[i] = 1;
    return 0;
}

static long long tokens_so_far(const dl_job *j) {
    long long n = 0;
    for (int i = 0; i < j->n_choices; i++) n += (long long)j->choices[i].tokens.len;
    return n;
}

static int closing_events(dl_req_ctx *c) {
    dl_job *j = c->job;
    if (j->failed || j->cancelled) {
        dl_api_error e;
        if (j->failed) dl_api_fail(&e, 500, "server_error", NULL, NULL, "The model failed: %s", j->error);
        else dl_api_fail(&e, 503, "server_error", "shutting_down", NULL, "The request was cancelled.");
        snprintf(c->error, sizeof c->error, "%s", e.message);
        char *body = dl_api_error_body(&e);
        int rc = body ? dl_buf_printf(&c->sse, "data: %s\n\n", body) : -1;
        free(body);
        if (rc) return -1;
    } else if (c->req.include_usage) {
        c->meta.completion_tokens = tokens_so_far(j);
        if (dl_api_stream_usage(&c->sse, &c->req, &c->meta)) return -1;
    }
    c->stream_done = 1;
    return dl_buf_printf(&c->sse, "data: [DONE]\n\n");
}

// appends the next events to c->sse, waiting for the scheduler when there is nothing yet
static int next_events(dl_req_ctx *c) {
    dl_job *j = c->job;
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    while (rc == 0 && c->sse.len == 0) {
        for (int i = 0; rc == 0 && i < j->n_choices; i++) rc = choice_events(c, i);
        if (rc == 0 && c->sse.len == 0 && j->n_done == j->n_choices) rc = closing_events(c);
        if (rc == 0 && c->sse.len == 0) pthread_cond_wait(&j->cv, &j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
    dl_req_ctx *c = cls;
    if (c->sse_off == c->sse.len) {
        c->sse.len = c->sse_off = 0;
        if (c->stream_done) return MHD_CONTENT_READER_END_OF_STREAM;
        if (next_events(c)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->sse.len - c->sse_off < max ? c->sse.len - c->sse_off : max;
    memcpy(buf, c->sse.data + c->sse_off, n);
    c->sse_off += n;
    return (ssize_t)n;
}

enum MHD_Result dl_respond_stream(dl_req_ctx *c, struct MHD_Connection *conn) {
    size_t n = (size_t)c->job->n_choices;
    c->sent_text = calloc(n, sizeof *c->sent_text);
    c->sent_tok = calloc(n, sizeof *c->sent_tok);
    c->opened = calloc(n, 1);
    c->closed = calloc(n, 1);
    if (!c->sent_text || !c->sent_tok || !c->opened || !c->closed) return dl_respond(c, conn, 500, "", NULL);
    /* the context outlives the response: MHD calls the completion callback, which frees it, last */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, c, NULL);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (dl_server_draining(c->srv)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    c->status = 200;
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

void dl_stream_free(dl_req_ctx *c) {
    free(c->sent_text);
    free(c->sent_tok);
    free(c->opened);
    free(c->closed);
    dl_buf_free(&c->sse);
}
