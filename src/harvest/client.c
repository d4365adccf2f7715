/* The request loop: `concurrency` slots, each one easy handle carrying one prompt at a time
 * through its tries, all driven by one libcurl multi handle on this thread. A slot waiting out
 * a backoff keeps its place, so a rate-limited endpoint sees fewer requests, not the same
 * number from fresh slots. */
#include "internal.h"
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct slot {
    CURL *easy;
    long job;          /* index into jobs->todo; -1: free */
    int tries;         /* requests sent for this job */
    int active;        /* in the multi handle */
    double wake_at;    /* when not active: the time the next try may start */
    char *body;        /* the request body, built once per job */
    dl_buf reply;
    double retry_after, retry_after_ms; /* from the response headers; -1: none */
    char cerr[CURL_ERROR_SIZE];
} slot;

typedef struct client {
    const dl_harvest_opts *o;
    const hv_job_list *jobs;
    const char *model, *failures_path;
    CURLM *multi;
    struct curl_slist *headers;
    slot *slots;
    size_t n_slots, next;
    FILE *out, *failures;
    dl_harvest_result *res;
    dl_rng rng;
    dl_buf line;
    dl_progress prog;
} client;

size_t hv_collect_body(char *p, size_t size, size_t nmemb, void *buf) {
    dl_buf *b = buf;
    size_t n = size * nmemb;
    if (n > HV_MAX_REPLY || b->len + n > HV_MAX_REPLY || dl_buf_append(b, p, n)) return 0;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *user) {
    slot *s = user;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0) s->retry_after = hv_parse_retry_after(p + 12, n - 12);
    if (n > 15 && strncasecmp(p, "retry-after-ms:", 15) == 0) {
        double ms = hv_parse_retry_after(p + 15, n - 15);
        s->retry_after_ms = ms >= 0 ? ms / 1000 : -1;
    }
    return n;
}

static const hv_prompt *job_prompt(const client *c, const slot *s) {
    return &c->jobs->ps->items[c->jobs->todo[s->job]];
}

static int setup_slot(client *c, slot *s, const char *post_url, dl_error *err) {
    s->job = -1;
    if (!(s->easy = curl_easy_init())) return dl_fail(err, "cannot start libcurl");
    long timeout_ms = (long)(c->o->timeout_s * 1000);
    CURL *h = s->easy;
    curl_easy_setopt(h, CURLOPT_URL, post_url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, hv_collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s->reply);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->cerr);
    curl_easy_setopt(h, CURLOPT_PRIVATE, s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* logprobs compress well */
    curl_easy_setopt(h, CURLOPT_USERAGENT, "distil-harvest");
    return 0;
}

static int start(client *c, slot *s, dl_error *err) {
    if (!s->body && !(s->body = hv_request_body(c->o, c->model, job_prompt(c, s)->input, job_prompt(c, s)->line)))
        return dl_fail(err, "out of memory");
    s->reply.len = 0;
    s->retry_after = s->retry_after_ms = -1;
    s->cerr[0] = 0;
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(s->body));
    CURLMcode mc = curl_multi_add_handle(c->multi, s->easy);
    if (mc != CURLM_OK) return dl_fail(err, "libcurl: %s", curl_multi_strerror(mc));
    s->active = 1;
    s->tries++;
    return 0;
}

static void end_job(slot *s) {
    free(s->body);
    s->body = NULL;
    s->job = -1;
}

/* The error text may hold bytes a JSON string cannot: keep it readable rather than lose it. */
static json_t *safe_string(const char *msg) {
    json_t *v = json_string(msg);
    if (v) return v;
    char ascii[sizeof ((dl_error *)0)->msg];
    size_t k = 0;
    for (; msg[k] && k + 1 < sizeof ascii; k++) ascii[k] = (unsigned char)msg[k] < 0x80 ? msg[k] : '?';
    ascii[k] = 0;
    return json_string(ascii);
}

static int record_failure(client *c, slot *s, long status, const char *why, dl_error *err) {
    const hv_prompt *p = job_prompt(c, s);
    dl_log("harvest: id %s failed: %s", p->key, why);
    if (!c->failures && !(c->failures = fopen(c->failures_path, "wb")))
        return dl_fail(err, "%s: cannot create the failures file: %s", c->failures_path, strerror(errno));
    json_t *o = json_pack("{s:O,s:o,s:I,s:i}", "id", p->id, "error", safe_string(why), "status",
                          (json_int_t)status, "tries", s->tries);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int bad = !line || fprintf(c->failures, "%s\n", line) < 0 || fflush(c->failures);
    free(line);
    if (bad) return dl_fail(err, "%s: cannot write: %s", c->failures_path, strerror(errno));
    c->res->failed++;
    end_job(s);
    return 0;
}

/* A 2xx answer: its line goes to OUT whole, then to the disk's cache (flushed), before the job
 * counts as done. */
static int accept_reply(client *c, slot *s, char *why, size_t nwhy, dl_error *err) {
    dl_error perr;
    long ctoks;
    c->line.len = 0;
    if (hv_response_line(s->reply.data ? s->reply.data : "", s->reply.len, c->o->chat, c->o->top_logprobs >= 0,
                         job_prompt(c, s), &c->line, &ctoks, &perr)) {
        snprintf(why, nwhy, "%.*s", (int)nwhy - 1, perr.msg);
        return 1; /* not a completion: a failure of this prompt, not of the run */
    }
    if (fwrite(c->line.data, 1, c->line.len, c->out) != c->line.len || fflush(c->out))
        return dl_fail(err, "%s: cannot write: %s", c->o->out_path, strerror(errno));
    c->res->written++;
    c->res->completion_tokens += ctoks;
    end_job(s);
    return 0;
}

static void describe_error(const slot *s, CURLcode code, long status, char *why, size_t nwhy) {
    if (code == CURLE_WRITE_ERROR && s->reply.len + CURL_MAX_WRITE_SIZE > HV_MAX_REPLY)
        snprintf(why, nwhy, "the response is larger than %u bytes", HV_MAX_REPLY);
    else if (code != CURLE_OK) snprintf(why, nwhy, "%s", s->cerr[0] ? s->cerr : curl_easy_strerror(code));
    else {
        char text[400];
        hv_error_text(s->reply.data, s->reply.len, text, sizeof text);
        snprintf(why, nwhy, "HTTP %ld: %s", status, text);
    }
}

static int finish(client *c, slot *s, CURLcode code, dl_error *err) {
    curl_multi_remove_handle(c->multi, s->easy);
    s->active = 0;
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    hv_verdict v = hv_classify((int)code, status);
    char why[700];
    if (v == HV_DONE) {
        int rc = accept_reply(c, s, why, sizeof why, err);
        if (rc <= 0) return rc;
        return record_failure(c, s, status, why, err);
    }
    describe_error(s, code, status, why, sizeof why);
    if (v == HV_RETRY && s->tries <= c->o->retries) {
        double ra = s->retry_after_ms >= 0 ? s->retry_after_ms : s->retry_after;
        double wait = hv_backoff(s->tries, ra, c->o->backoff_s, c->o->max_backoff_s, &c->rng);
        s->wake_at = dl_now() + wait;
        c->res->retries++;
        dl_debug("harvest: id %s: %s; try %d of %d in %.2f s", job_prompt(c, s)->key, why, s->tries + 1,
                 c->o->retries + 1, wait);
        return 0;
    }
    if (v == HV_RETRY) {
        size_t k = strlen(why);
        snprintf(why + k, sizeof why - k, " (gave up after %d tries)", s->tries);
    }
    return record_failure(c, s, status, why, err);
}

/* Gives free slots new jobs and restarts the ones whose wait is over. Returns 1 when some job
 * is still under way (sets *wake to the earliest waiting slot's time), 0 when all are done. */
static int fill_slots(client *c, double *wake, dl_error *err) {
    double now = dl_now();
    int busy = 0;
    *wake = INFINITY;
    for (size_t i = 0; i < c->n_slots; i++) {
        slot *s = &c->slots[i];
        if (s->job < 0 && c->next < c->jobs->n) {
            s->job = (long)c->next++;
            s->tries = 0;
            if (start(c, s, err)) return -1;
        } else if (s->job >= 0 && !s->active && s->wake_at <= now && start(c, s, err)) return -1;
        if (s->job >= 0) busy = 1;
        if (s->job >= 0 && !s->active && s->wake_at < *wake) *wake = s->wake_at;
    }
    return busy;
}

static void show_progress(client *c) {
    dl_harvest_result *r = c->res;
    double el = dl_now() - c->prog.t_start;
    long done = r->written + r->failed;
    char extra[200];
    snprintf(extra, sizeof extra, "ok %ld failed %ld retries %ld, %.2f req/s %.1f tok/s", r->written, r->failed,
             r->retries, el > 0 ? (double)done / el : 0.0, el > 0 ? (double)r->completion_tokens / el : 0.0);
    dl_progress_update(&c->prog, done, extra);
}

static int loop(client *c, dl_error *err) {
    for (;;) {
        double wake;
        int busy = fill_slots(c, &wake, err);
        if (busy <= 0) return busy;
        int running, finished = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) return dl_fail(err, "libcurl: %s", curl_multi_strerror(mc));
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            void *s = NULL;
            CURLcode code = m->data.result; /* m is gone once its handle is removed */
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &s);
            if (finish(c, (slot *)s, code, err)) return -1;
            finished = 1;
        }
        show_progress(c);
        if (finished) continue; /* free slots take new jobs at once */
        double ms = isfinite(wake) ? (wake - dl_now()) * 1000 : 250;
        mc = curl_multi_poll(c->multi, NULL, 0, ms < 0 ? 0 : ms > 250 ? 250 : (int)ms, NULL);
        if (mc != CURLM_OK) return dl_fail(err, "libcurl: %s", curl_multi_strerror(mc));
    }
}

static int make_headers(client *c, const char *auth_header, dl_error *err) {
    /* "Expect:" stops libcurl from waiting for a 100 Continue before sending larger bodies */
    const char *h[] = {"Content-Type: application/json", "Accept: application/json", "Expect:", auth_header};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        if (!h[i]) continue;
        struct curl_slist *t = curl_slist_append(c->headers, h[i]);
        if (!t) return dl_fail(err, "out of memory");
        c->headers = t;
    }
    return 0;
}

static void teardown(client *c) {
    for (size_t i = 0; c->slots && i < c->n_slots; i++) {
        slot *s = &c->slots[i];
        if (s->active) curl_multi_remove_handle(c->multi, s->easy);
        if (s->easy) curl_easy_cleanup(s->easy);
        free(s->body);
        dl_buf_free(&s->reply);
    }
    free(c->slots);
    if (c->multi) curl_multi_cleanup(c->multi);
    curl_slist_free_all(c->headers);
    dl_buf_free(&c->line);
}

int hv_client_run(const dl_harvest_opts *o, const char *post_url, const char *auth_header, const char *model,
                  const hv_job_list *jobs, FILE *out, const char *failures_path, dl_harvest_result *res,
                  dl_error *err) {
    client c = {.o = o, .jobs = jobs, .model = model, .failures_path = failures_path, .out = out, .res = res};
    c.n_slots = (size_t)o->concurrency < jobs->n ? (size_t)o->concurrency : jobs->n;
    dl_rng_seed(&c.rng, (uint64_t)(dl_now() * 1e6));
    int rc = 0;
    if (!(c.multi = curl_multi_init()) || !(c.slots = calloc(c.n_slots ? c.n_slots : 1, sizeof *c.slots)))
        rc = dl_fail(err, "cannot start libcurl");
    if (rc == 0) rc = make_headers(&c, auth_header, err);
    for (size_t i = 0; rc == 0 && i < c.n_slots; i++) rc = setup_slot(&c, &c.slots[i], post_url, err);
    if (rc == 0) {
        dl_progress_start(&c.prog, "harvest", (long)jobs->n);
        rc = loop(&c, err);
        dl_progress_finish(&c.prog);
    }
    teardown(&c);
    if (c.failures && fclose(c.failures) && rc == 0)
        rc = dl_fail(err, "%s: cannot write: %s", failures_path, strerror(errno));
    return rc;
}
