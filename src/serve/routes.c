/* The routes. Checks run in the order a client can act on them: route and method, shutdown,
 * key (401) and its limits (429), body size (413), then the body itself: JSON and parameters
 * (400), model (404), context length (400), quota (429), queue (503). */
#include "server.h"
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static dl_route route_of(const char *path) {
    for (int r = 0; r < DL_ROUTE_OTHER; r++)
        if (!strcmp(path, dl_route_path((dl_route)r))) return (dl_route)r;
    return DL_ROUTE_OTHER;
}

static enum MHD_Result fail(dl_req_ctx *c, struct MHD_Connection *conn, int status, const char *type,
                            const char *code, const char *param, const char *msg) {
    dl_api_error e;
    dl_api_fail(&e, status, type, code, param, "%s", msg);
    return dl_respond_error(c, conn, &e);
}

static enum MHD_Result respond_metrics(dl_req_ctx *c, struct MHD_Connection *conn) {
    dl_server *s = c->srv;
    dl_sched_stats st;
    dl_sched_get_stats(s->sched, &st);
    pthread_mutex_lock(&s->mu);
    int in_flight = s->in_flight - 1; /* not counting this request */
    pthread_mutex_unlock(&s->mu);
    dl_buf out = {0};
    if (dl_metrics_render(&s->metrics, &st, in_flight, &out)) {
        dl_buf_free(&out);
        out.data = NULL;
    }
    return dl_respond(c, conn, 200, "text/plain; version=0.0.4", out.data);
}

enum MHD_Result dl_route_headers(dl_req_ctx *c, struct MHD_Connection *conn, const char *method) {
    dl_server *s = c->srv;
    c->route = route_of(c->path);
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    char msg[256];
    if (c->route == DL_ROUTE_OTHER) {
        snprintf(msg, sizeof msg, "Invalid URL (%.16s %.128s)", method, c->path);
        return fail(c, conn, 404, "invalid_request_error", "unknown_url", NULL, msg);
    }
    int want_post = c->route == DL_ROUTE_COMPLETIONS || c->route == DL_ROUTE_CHAT;
    if (want_post ? !post : !get) {
        snprintf(msg, sizeof msg, "%s takes %s requests, not %.16s", c->path, want_post ? "POST" : "GET", method);
        return fail(c, conn, 405, "invalid_request_error", "method_not_allowed", NULL, msg);
    }
    if (c->route == DL_ROUTE_HEALTH)
        return dl_respond(c, conn, 200, "application/json", strdup(dl_server_draining(s) ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}"));
    if (c->route == DL_ROUTE_METRICS) return respond_metrics(c, conn);
    if (dl_server_draining(s))
        return fail(c, conn, 503, "server_error", "shutting_down", NULL, "The server is shutting down.");
    if (s->auth) {
        dl_api_error e;
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (dl_auth_admit(s->auth, h, dl_now(), &c->key, &e)) return dl_respond_error(c, conn, &e);
    }
    if (c->route == DL_ROUTE_MODELS)
        return dl_respond(c, conn, 200, "application/json", dl_api_models_body(s->model_name, s->started));
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
        snprintf(msg, sizeof msg, "The request body is larger than the %zu bytes this server accepts.", s->cfg.max_body);
        return fail(c, conn, 413, "invalid_request_error", "request_too_large", NULL, msg);
    }
    return MHD_YES;
}

/* ---- a generation request ------------------------------------------------------------------ */

// the prompt's ids: a text prompt encoded, an empty one replaced by the start token
static int prompt_ids(dl_server *s, const dl_api_prompt *p, int chat, int index, dl_ivec *ids, dl_api_error *e) {
    dl_error err;
    int V = s->model.cfg.V;
    if (p->text) {
        /* a chat message cannot smuggle in control tokens; a raw completions prompt may, as OpenAI's */
        if (dl_tok_encode(s->tok, p->text, strlen(p->text), !chat, ids, &err))
            return dl_api_fail(e, 500, "server_error", NULL, NULL, "tokenizer: %s", err.msg);
    } else {
        for (size_t i = 0; i < p->ids.len; i++)
            if (p->ids.data[i] >= V)
                return dl_api_fail(e, 400, "invalid_request_error", NULL, "prompt",
                                   "prompt %d: token id %d is outside the vocabulary of %d", index, p->ids.data[i], V);
        if (dl_ivec_reserve(ids, p->ids.len)) return dl_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        memcpy(ids->data, p->ids.data, p->ids.len * sizeof(int32_t));
        ids->len = p->ids.len;
    }
    if (ids->len == 0) {
        int start = s->model.cfg.bos_id >= 0 ? s->model.cfg.bos_id : dl_tok_eot_id(s->tok);
        if (start < 0 || start >= V || dl_ivec_push(ids, start))
            return dl_api_fail(e, 400, "invalid_request_error", NULL, "prompt",
                               "the prompt is empty and the model has no start token");
    }
    return 0;
}

// max_tokens as given or by default, checked against the context
static int resolve_max_tokens(dl_server *s, dl_api_request *r, size_t longest, dl_api_error *e) {
    long ctx = s->model.cfg.max_T, room = ctx - (long)longest;
    if (r->max_tokens < 0) r->max_tokens = (int)(r->chat ? room : (room < 16 ? room : 16));
    if (room < 1 || r->max_tokens > room)
        return dl_api_fail(e, 400, "invalid_request_error", "context_length_exceeded", r->max_tokens > 0 ? "max_tokens" : "prompt",
                           "This model's maximum context length is %ld tokens. However, you requested %ld tokens (%zu "
                           "in the prompt, %d for the completion). Please reduce the prompt or max_tokens.",
                           ctx, (long)longest + (r->max_tokens > 0 ? r->max_tokens : 1), longest,
                           r->max_tokens > 0 ? r->max_tokens : 1);
    return 0;
}

// the prompt as logged: a single text as it is, anything else as a JSON list
static char *prompt_log_text(const dl_api_request *r) {
    if (r->n_prompts == 1 && r->prompts[0].text) return strdup(r->prompts[0].text);
    json_t *a = json_array();
    for (int i = 0; a && i < r->n_prompts; i++) {
        const dl_api_prompt *p = &r->prompts[i];
        json_t *v = p->text ? json_string(p->text) : json_array();
        for (size_t k = 0; v && !p->text && k < p->ids.len; k++) json_array_append_new(v, json_integer(p->ids.data[k]));
        json_array_append_new(a, v);
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static void hash_prompt(dl_req_ctx *c, const char *text) {
    uint8_t h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)text, strlen(text), NULL, 0);
    sodium_bin2hex(c->prompt_hash, sizeof c->prompt_hash, h, sizeof h);
}

static dl_job *make_job(dl_req_ctx *c, const dl_ivec *ids, dl_api_error *e) {
    dl_api_request *r = &c->req;
    dl_sampler_cfg scfg = {.temperature = (float)r->temperature, .top_k = r->top_k,
                           .top_p = r->top_p > 0 ? (float)r->top_p : 1e-9f}; /* top_p 0: only the top token */
    uint64_t seed = r->seed;
    if (!r->has_seed) randombytes_buf(&seed, sizeof seed);
    dl_job *j = dl_job_new(ids, r->n_prompts, r->n, r->max_tokens, &scfg, seed, r->logprobs, r->stop, r->n_stop, r->stream);
    if (!j) dl_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    return j;
}

static void make_meta(dl_req_ctx *c) {
    uint8_t raw[12];
    char hex[25];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(c->id, sizeof c->id, "%s-%s", c->req.chat ? "chatcmpl" : "cmpl", hex);
    c->meta = (dl_api_meta){.id = c->id, .created = (long long)c->t0_unix, .model = c->srv->model_name,
                            .prompt_tokens = c->prompt_tokens};
}

/* Parsed request -> token ids -> checks -> a queued job. */
static int prepare(dl_req_ctx *c, dl_api_error *e) {
    dl_server *s = c->srv;
    dl_api_request *r = &c->req;
    if (dl_api_parse_request(r, c->route == DL_ROUTE_CHAT, c->body.data, c->body.len, e)) return -1;
    c->parsed = 1;
    if (s->cfg.log_prompts) c->prompt_log = prompt_log_text(r);
    char *for_hash = c->prompt_log ? c->prompt_log : prompt_log_text(r);
    if (for_hash) hash_prompt(c, for_hash);
    if (for_hash != c->prompt_log) free(for_hash);
    if (strcmp(r->model, s->model_name) != 0)
        return dl_api_fail(e, 404, "invalid_request_error", "model_not_found", "model",
                           "The model '%.200s' does not exist; this server has '%.200s'.", r->model, s->model_name);
    dl_ivec *ids = calloc((size_t)r->n_prompts, sizeof *ids);
    if (!ids) return dl_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    size_t longest = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < r->n_prompts; i++) {
        rc = prompt_ids(s, &r->prompts[i], r->chat, i, &ids[i], e);
        c->prompt_tokens += (long long)ids[i].len;
        if (ids[i].len > longest) longest = ids[i].len;
    }
    if (rc == 0) rc = resolve_max_tokens(s, r, longest, e);
    long long reserve = c->prompt_tokens + (long long)r->n_prompts * r->n * (r->max_tokens > 0 ? r->max_tokens : 0);
    if (rc == 0 && s->auth && (rc = dl_auth_reserve(s->auth, &c->key, reserve, e)) == 0) c->reserved = reserve;
    if (rc == 0 && !(c->job = make_job(c, ids, e))) rc = -1;
    for (int i = 0; i < r->n_prompts; i++) dl_ivec_free(&ids[i]);
    free(ids);
    if (rc) return -1;
    make_meta(c);
    if (dl_sched_submit(s->sched, c->job))
        return dl_api_fail(e, 503, "server_error", "overloaded", NULL,
                           "The server is busy (%d requests waiting). Please retry shortly.", s->cfg.max_queue);
    return 0;
}

static enum MHD_Result respond_whole(dl_req_ctx *c, struct MHD_Connection *conn) {
    dl_job *j = c->job;
    dl_job_wait(j);
    dl_api_error e;
    if (j->failed)
        dl_api_fail(&e, 500, "server_error", NULL, NULL, "The model failed: %s", j->error);
    else if (j->cancelled)
        dl_api_fail(&e, 503, "server_error", "shutting_down", NULL, "The request was cancelled: the server is shutting down.");
    else {
        long long completion = 0;
        for (int i = 0; i < j->n_choices; i++) completion += (long long)j->choices[i].tokens.len;
        c->meta.completion_tokens = completion;
        return dl_respond(c, conn, 200, "application/json",
                          dl_api_response_body(&c->req, &c->meta, j->choices, j->n_choices, c->srv->tok));
    }
    return dl_respond_error(c, conn, &e);
}

enum MHD_Result dl_route_body(dl_req_ctx *c, struct MHD_Connection *conn) {
    dl_api_error e;
    if (prepare(c, &e)) {
        if (c->job) { /* never queued: nothing else holds it */
            dl_job_release(c->job);
            c->job = NULL;
        }
        return dl_respond_error(c, conn, &e);
    }
    return c->req.stream ? dl_respond_stream(c, conn) : respond_whole(c, conn);
}
