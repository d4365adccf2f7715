/* server: the parts of `distil serve` that share the server's and a request's state. server.c
 * owns the daemon and the life of a request; routes.c answers the routes; stream.c writes
 * server-sent events. */
#ifndef DISTIL_SERVE_SERVER_H
#define DISTIL_SERVE_SERVER_H

#include "api.h"
#include "auth.h"
#include "metrics.h"
#include "sched.h"
#include "serve.h"
#include "usage.h"
#include <microhttpd.h>

struct dl_server {
    dl_serve_cfg cfg;
    char model_name[256];
    dl_model model;
    dl_tokenizer *tok;
    dl_usage *usage;
    dl_auth *auth;   /* NULL with --no-auth */
    dl_sched *sched;
    dl_wm wm;        /* the watermark, when cfg.wm_key_file is set */
    dl_metrics metrics;
    struct MHD_Daemon *daemon;
    int port;
    long long started; /* unix seconds */
    pthread_mutex_t mu;
    int in_flight, draining;
};

/* One request, from its headers to the end of its response (MHD's per-request pointer). */
typedef struct dl_req_ctx {
    dl_server *srv;
    dl_route route;
    char path[128];
    double t0, t0_unix; /* monotonic and wall clock at the headers */
    char client[64];
    int status;         /* the status sent (0 until a response is queued) */
    char error[512];    /* the message of an error response, for the log */
    dl_key_ref key;
    dl_buf body;
    size_t too_large;   /* bytes dropped past the body limit */
    dl_api_request req;
    int parsed;
    long long prompt_tokens, reserved;
    char prompt_hash[2 * 32 + 1];
    char *prompt_log;   /* the prompt text as logged (NULL with --no-log-prompts) */
    dl_job *job;
    char id[48];
    dl_api_meta meta;
    /* streaming */
    dl_buf sse;
    size_t sse_off;
    size_t *sent_text, *sent_tok; /* per choice: bytes and tokens already sent */
    unsigned char *opened, *closed; /* per choice: first chunk sent, finish chunk sent */
    int stream_done;
} dl_req_ctx;

int dl_server_draining(dl_server *s);

/* routes.c: the first call (headers only) and the last (the whole body is in c->body). Both
 * either queue a response or, for the first, return MHD_YES to receive the body. */
enum MHD_Result dl_route_headers(dl_req_ctx *c, struct MHD_Connection *conn, const char *method);
enum MHD_Result dl_route_body(dl_req_ctx *c, struct MHD_Connection *conn);

/* server.c: queue a response (body is taken and freed). */
enum MHD_Result dl_respond(dl_req_ctx *c, struct MHD_Connection *conn, int status, const char *content_type,
                           char *body);
enum MHD_Result dl_respond_error(dl_req_ctx *c, struct MHD_Connection *conn, const dl_api_error *e);

/* stream.c: queue the event-stream response of c->job. */
enum MHD_Result dl_respond_stream(dl_req_ctx *c, struct MHD_Connection *conn);
void dl_stream_free(dl_req_ctx *c);

#endif
