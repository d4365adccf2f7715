/* dl_harvest_run: options checked, prompts read, OUT locked and resumed, then the request loop. */
#include "internal.h"
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

void dl_harvest_opts_default(dl_harvest_opts *o) {
    memset(o, 0, sizeof *o);
    o->concurrency = 4;
    o->max_tokens = 128;
    o->temperature = 1.0;
    o->top_logprobs = -1;
    o->retries = 5;
    o->timeout_s = 120;
    o->backoff_s = 0.5;
    o->max_backoff_s = 60;
    o->seed = -1;
}

static int check_opts(const dl_harvest_opts *o, dl_error *err) {
    if (!o->endpoint || !o->prompts_path || !o->out_path) return dl_fail(err, "endpoint, prompts and out are required");
    if (o->concurrency < 1 || o->concurrency > 1024) return dl_fail(err, "--concurrency %d must be in 1..1024", o->concurrency);
    if (o->max_tokens < 1) return dl_fail(err, "--max-tokens %d must be >= 1", o->max_tokens);
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return dl_fail(err, "--temperature %g must be >= 0", o->temperature);
    if (o->top_logprobs < -1 || o->top_logprobs > 1000)
        return dl_fail(err, "--top-logprobs %d must be in 0..1000 (or -1: none)", o->top_logprobs);
    if (o->seed < -1) return dl_fail(err, "--seed %d must be >= 0 (or -1: none)", o->seed);
    if (o->retries < 0 || o->retries > 1000) return dl_fail(err, "--retries %d must be in 0..1000", o->retries);
    if (!(o->timeout_s > 0) || o->timeout_s > 1e6) return dl_fail(err, "--timeout %g must be > 0", o->timeout_s);
    if (!(o->backoff_s >= 0) || !(o->max_backoff_s >= 0) || o->max_backoff_s > 86400)
        return dl_fail(err, "backoff times must be in 0..86400 seconds");
    /* the key goes into a header line: a newline in it would forge other headers */
    for (const char *c = o->api_key ? o->api_key : ""; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) return dl_fail(err, "the API key holds a control character");
    json_t *m = o->model ? json_string(o->model) : NULL;
    json_decref(m);
    if (o->model && (!m || !o->model[0])) return dl_fail(err, "--model must be a non-empty UTF-8 string");
    return 0;
}

static char *auth_header(const char *key) {
    if (!key || !key[0]) return NULL;
    dl_buf b = {0};
    if (dl_buf_printf(&b, "Authorization: Bearer %s", key)) return NULL;
    return b.data;
}

/* Opens OUT for appending under an exclusive lock (two harvests into one file would interleave
 * and both resume from the same ids), then reads what is already there. */
static FILE *open_out(const char *path, json_t *done, dl_error *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return dl_fail(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        dl_fail(err, "%s: another harvest is writing this file", path);
        close(fd);
        return NULL;
    }
    long lines, dropped;
    FILE *f = NULL;
    if (hv_resume_scan(path, done, &lines, &dropped, err) == 0 && !(f = fdopen(fd, "ab")))
        dl_fail(err, "%s: %s", path, strerror(errno));
    if (!f) {
        close(fd);
        return NULL;
    }
    if (dropped) dl_log("harvest: %s: cut off an incomplete last line (%ld bytes) left by an interrupted run", path, dropped);
    if (lines) dl_log("harvest: %s holds %ld answers already", path, lines);
    return f;
}

/* The prompts whose ids OUT does not hold yet. */
static size_t *todo_list(const hv_prompts *ps, json_t *done, size_t *n) {
    size_t *todo = malloc((ps->n ? ps->n : 1) * sizeof *todo);
    *n = 0;
    for (size_t i = 0; todo && i < ps->n; i++)
        if (!json_object_get(done, ps->items[i].key)) todo[(*n)++] = i;
    return todo;
}

static int close_out(FILE *out, const char *path, dl_error *err) {
    int bad = fflush(out) || fsync(fileno(out));
    bad |= fclose(out);
    return bad ? dl_fail(err, "%s: cannot write: %s", path, strerror(errno)) : 0;
}

typedef struct run_state {
    char *post_url, *models_url, *auth, *model, *failures;
    hv_prompts ps;
    json_t *done;
    size_t *todo;
    FILE *out;
} run_state;

static int harvest(const dl_harvest_opts *o, run_state *st, dl_harvest_result *res, dl_error *err) {
    if (hv_endpoint_urls(o->endpoint, o->chat, &st->post_url, &st->models_url, err)) return -1;
    if (o->api_key && o->api_key[0] && !(st->auth = auth_header(o->api_key))) return dl_fail(err, "out of memory");
    if (hv_prompts_load(&st->ps, o->prompts_path, o->chat, err)) return -1;
    if (!(st->done = json_object()) || !(st->out = open_out(o->out_path, st->done, err))) return -1;
    dl_buf fb = {0};
    if (!o->failures_path && dl_buf_printf(&fb, "%s.failures.jsonl", o->out_path)) return dl_fail(err, "out of memory");
    st->failures = o->failures_path ? strdup(o->failures_path) : fb.data;
    if (!st->failures) return dl_fail(err, "out of memory");
    if (unlink(st->failures) && errno != ENOENT) /* it describes the last run only */
        return dl_fail(err, "%s: cannot remove the old failures file: %s", st->failures, strerror(errno));
    size_t n;
    if (!(st->todo = todo_list(&st->ps, st->done, &n))) return dl_fail(err, "out of memory");
    res->total = (long)st->ps.n;
    res->skipped = (long)(st->ps.n - n);
    if (n == 0) return 0;
    if (o->model) {
        if (!(st->model = strdup(o->model))) return dl_fail(err, "out of memory");
    } else if (hv_fetch_model(st->models_url, st->auth, o->timeout_s, &st->model, err))
        return -1;
    dl_log("harvest: %zu prompts to ask %s (model %s, up to %d at a time)", n, st->post_url, st->model, o->concurrency);
    hv_job_list jobs = {.ps = &st->ps, .todo = st->todo, .n = n};
    return hv_client_run(o, st->post_url, st->auth, st->model, &jobs, st->out, st->failures, res, err);
}

int dl_harvest_run(const dl_harvest_opts *o, dl_harvest_result *res, dl_error *err) {
    memset(res, 0, sizeof *res);
    double t0 = dl_now();
    if (check_opts(o, err)) return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return dl_fail(err, "cannot start libcurl");
    run_state st = {0};
    int rc = harvest(o, &st, res, err);
    if (st.out && close_out(st.out, o->out_path, rc ? NULL : err)) rc = -1;
    if (st.auth) explicit_bzero(st.auth, strlen(st.auth));
    free(st.post_url);
    free(st.models_url);
    free(st.auth);
    free(st.model);
    free(st.failures);
    free(st.todo);
    json_decref(st.done);
    hv_prompts_free(&st.ps);
    curl_global_cleanup();
    res->seconds = dl_now() - t0;
    return rc;
}
