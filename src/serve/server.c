/* The daemon and the life of a request: headers -> body -> response -> completed. libmicrohttpd
 * runs a thread per connection, so a handler may block until its job is decoded; the model
 * itself only runs on the scheduler's thread. MHD calls the completion callback exactly once for
 * every request that reached the handler, which is where its usage row is written: one row per
 * request whatever happened to it. */
#include "server.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void dl_serve_cfg_default(dl_serve_cfg *cfg) {
    *cfg = (dl_serve_cfg){.host = "127.0.0.1", .port = 8080, .log_prompts = 1, .max_batch = 16, .max_queue = 64,
                          .max_body = 1 << 20, .max_connections = 256, .drain_seconds = 30, .wm_gamma = 0.25,
                          .wm_delta = 2.0, .wm_context = 1};
}

int dl_server_draining(dl_server *s) {
    pthread_mutex_lock(&s->mu);
    int d = s->draining;
    pthread_mutex_unlock(&s->mu);
    return d;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- responses ------------------------------------------------------------------------------ */

enum MHD_Result dl_respond(dl_req_ctx *c, struct MHD_Connection *conn, int status, const char *content_type,
                           char *body) {
    if (!body) {
        status = 500;
        content_type = "application/json";
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        if (!body) return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (dl_server_draining(c->srv)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    c->status = status;
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result dl_respond_error(dl_req_ctx *c, struct MHD_Connection *conn, const dl_api_error *e) {
    snprintf(c->error, sizeof c->error, "%s", e->message);
    char *body = dl_api_error_body(e);
    struct MHD_Response *r = body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (e->retry_after > 0) {
        char secs[32];
        snprintf(secs, sizeof secs, "%.0f", e->retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    /* a refused upload is not read, so the connection cannot carry another request */
    if (dl_server_draining(c->srv) || e->status == 413) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    c->status = e->status;
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)e->status, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- a request's life ---------------------------------------------------------------------- */

static void client_address(struct MHD_Connection *conn, char *out, size_t n) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, n, "?");
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)n);
}

static dl_req_ctx *ctx_new(dl_server *s, struct MHD_Connection *conn, const char *url) {
    dl_req_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = s;
    c->t0 = dl_now();
    c->t0_unix = wall_now();
    snprintf(c->path, sizeof c->path, "%s", url ? url : "");
    client_address(conn, c->client, sizeof c->client);
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    dl_server *s = cls;
    dl_req_ctx *c = *con_cls;
    if (!c) {
        if (!(c = ctx_new(s, conn, url))) return MHD_NO;
        *con_cls = c;
        return dl_route_headers(c, conn, method);
    }
    if (c->status) { /* answered already (413, 401...): the rest of the body is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        /* A body without a Content-Length (chunked) is only known to be too large midway. MHD
         * cannot answer in the middle of an upload, so the rest is read and dropped, and the
         * answer is 413; a client that keeps sending far past the limit is cut off. */
        if (c->too_large || c->body.len + n > s->cfg.max_body) {
            c->too_large += n;
            return c->too_large > 16 * s->cfg.max_body + (8u << 20) ? MHD_NO : MHD_YES;
        }
        return dl_buf_append(&c->body, upload, n) ? MHD_NO : MHD_YES;
    }
    if (c->too_large) {
        dl_api_error e;
        dl_api_fail(&e, 413, "invalid_request_error", "request_too_large", NULL,
                    "The request body is larger than the %zu bytes this server accepts.", s->cfg.max_body);
        return dl_respond_error(c, conn, &e);
    }
    return dl_route_body(c, conn);
}

static long long choice_tokens(dl_job *j) {
    long long n = 0;
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < j->n_choices; i++) n += (long long)j->choices[i].tokens.len;
    pthread_mutex_unlock(&j->mu);
    return n;
}

static void log_request(dl_req_ctx *c, long long completion_tokens, double seconds) {
    const dl_api_request *r = &c->req;
    dl_usage_row row = {.time = c->t0_unix, .key_id = c->key.id, .key_name = c->key.id ? c->key.name : NULL,
                        .endpoint = c->path, .model = c->parsed ? r->model : NULL, .status = c->status,
                        .max_tokens = c->parsed ? r->max_tokens : -1, .temperature = c->parsed ? r->temperature : NAN,
                        .top_p = c->parsed ? r->top_p : NAN, .n = c->parsed ? r->n : -1,
                        .logprobs = c->parsed ? r->logprobs : -1, .stream = c->parsed ? r->stream : -1,
                        .prompt_tokens = c->prompt_tokens, .completion_tokens = completion_tokens,
                        .prompt_hash = c->prompt_hash[0] ? c->prompt_hash : NULL, .prompt = c->prompt_log,
                        .latency_ms = seconds * 1000.0, .client = c->client, .error = c->error[0] ? c->error : NULL};
    dl_error err;
    if (dl_usage_log(c->srv->usage, &row, &err)) dl_log("serve: cannot log a request: %s", err.msg);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    dl_server *s = cls;
    dl_req_ctx *c = *con_cls;
    if (!c) return;
    *con_cls = NULL;
    long long completion = 0;
    if (c->job) {
        dl_job_cancel(c->job); /* a stream whose client left; a no-op for a finished job */
        completion = choice_tokens(c->job);
        dl_job_release(c->job);
    }
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && c->status == 200 && !c->error[0])
        snprintf(c->error, sizeof c->error, "the connection ended before the response was complete");
    if (c->status == 0) c->status = 499; /* the client left before an answer (nginx's code) */
    double seconds = dl_now() - c->t0;
    if (s->auth && c->key.id) dl_auth_settle(s->auth, &c->key, c->reserved, c->prompt_tokens + completion, dl_now());
    if (c->route != DL_ROUTE_HEALTH && c->route != DL_ROUTE_METRICS) log_request(c, completion, seconds);
    dl_metrics_record(&s->metrics, c->route, c->status, seconds, c->prompt_tokens, completion);
    if (c->parsed) dl_api_request_free(&c->req);
    dl_buf_free(&c->body);
    free(c->prompt_log);
    dl_stream_free(c);
    free(c);
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    pthread_mutex_unlock(&s->mu);
}

/* ---- start and stop --------------------------------------------------------------------------- */

static int load_model(dl_server *s, dl_error *err) {
    char tok_path[4096];
    if (dl_path_join(tok_path, sizeof tok_path, s->cfg.model_dir, "tokenizer.json", err)) return -1;
    if (dl_model_load(&s->model, s->cfg.model_dir, err)) return -1;
    if (!(s->tok = dl_tok_load(tok_path, err))) return -1;
    const char *name = s->cfg.model_name;
    if (!name || !*name) {
        /* the folder's last component, without trailing slashes */
        size_t n = strlen(s->cfg.model_dir);
        while (n > 1 && s->cfg.model_dir[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && s->cfg.model_dir[b - 1] != '/') b--;
        snprintf(s->model_name, sizeof s->model_name, "%.*s", (int)(n - b), s->cfg.model_dir + b);
    } else
        snprintf(s->model_name, sizeof s->model_name, "%s", name);
    return 0;
}

/* the key is read here once; from then on only its hash lives in s->wm */
static int load_watermark(dl_server *s, dl_error *err) {
    const dl_serve_cfg *c = &s->cfg;
    if (!c->wm_key_file) return 0;
    if (dl_wm_load(&s->wm, c->wm_key_file, c->wm_gamma, c->wm_delta, c->wm_context, err)) return -1;
    dl_log("serve: watermark on (gamma %g, delta %g, context %d tokens)", c->wm_gamma, c->wm_delta, c->wm_context);
    return 0;
}

static int listen_address(const char *host, int port, struct sockaddr_storage *ss, unsigned *flags, dl_error *err) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (port < 0 || port > 65535) return dl_fail(err, "port %d is outside 0..65535", port);
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    return dl_fail(err, "host '%s' is not an IPv4 or IPv6 address", host);
}

static int start_daemon(dl_server *s, dl_error *err) {
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_AUTO;
    if (listen_address(s->cfg.host, s->cfg.port, &ss, &flags, err)) return -1;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)s->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!s->daemon) return dl_fail(err, "cannot listen on %s port %d (in use, or not an address of this machine?)", s->cfg.host, s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    return 0;
}

static void server_free(dl_server *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    dl_sched_free(s->sched);
    dl_wm_wipe(&s->wm);
    dl_auth_free(s->auth);
    dl_usage_close(s->usage);
    dl_tok_free(s->tok);
    dl_model_free(&s->model);
    dl_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int check_cfg(const dl_serve_cfg *cfg, dl_error *err) {
    if (!cfg->model_dir) return dl_fail(err, "serve: no model folder");
    if (!cfg->db_path) return dl_fail(err, "serve: no usage db path");
    if (cfg->max_batch < 1 || cfg->max_batch > 4096) return dl_fail(err, "serve: max batch %d outside 1..4096", cfg->max_batch);
    if (cfg->max_queue < 1) return dl_fail(err, "serve: max queue %d must be at least 1", cfg->max_queue);
    if (cfg->max_body < 64) return dl_fail(err, "serve: max body %zu bytes is too small", cfg->max_body);
    if (cfg->max_connections < 1) return dl_fail(err, "serve: max connections must be at least 1");
    return 0;
}

dl_server *dl_serve_start(const dl_serve_cfg *cfg, dl_error *err) {
    if (check_cfg(cfg, err)) return NULL;
    if (sodium_init() < 0) return dl_fail(err, "libsodium failed to initialise"), NULL;
    dl_server *s = calloc(1, sizeof *s);
    if (!s) return dl_fail(err, "out of memory"), NULL;
    s->cfg = *cfg;
    if (!s->cfg.host) s->cfg.host = "127.0.0.1";
    s->started = (long long)time(NULL);
    pthread_mutex_init(&s->mu, NULL);
    dl_metrics_init(&s->metrics);
    int ok = !(load_model(s, err) || !(s->usage = dl_usage_open(cfg->db_path, err)) ||
               (!cfg->no_auth && !(s->auth = dl_auth_open(s->usage, err))) || load_watermark(s, err) ||
               !(s->sched = dl_sched_start(&s->model, s->tok, cfg->max_batch, cfg->max_queue, err)));
    if (ok && cfg->wm_key_file) dl_sched_set_watermark(s->sched, &s->wm); /* before the first request can come */
    if (!ok || start_daemon(s, err)) {
        server_free(s);
        return NULL;
    }
    return s;
}

int dl_serve_port(const dl_server *s) { return s->port; }

static int wait_idle(dl_server *s, double seconds) {
    double end = dl_now() + seconds;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int n = s->in_flight;
        pthread_mutex_unlock(&s->mu);
        if (n == 0 || dl_now() >= end) return n;
        usleep(5000);
    }
}

int dl_serve_stop(dl_server *s) {
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_mutex_unlock(&s->mu);
    /* stop accepting: the listening socket closes, open connections carry on */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    int left = wait_idle(s, s->cfg.drain_seconds);
    /* what is still running past the deadline is cancelled; its handlers then answer at once */
    dl_sched_stop(s->sched);
    wait_idle(s, 5.0);
    server_free(s); /* MHD_stop_daemon closes idle keep-alive connections and joins their threads */
    return left;
}
