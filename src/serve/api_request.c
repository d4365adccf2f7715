/* Request bodies of /v1/completions and /v1/chat/completions, checked field by field. The body
 * is untrusted: every type and range is checked, and the message names the field. */
#include "api.h"
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int dl_api_fail(dl_api_error *e, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) {
    if (!e) return -1;
    e->status = status;
    e->type = type;
    e->code = code;
    e->retry_after = 0;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, param, ...) dl_api_fail(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

/* A field that is absent or null counts as not given (OpenAI's clients send nulls). */
static json_t *field(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return v && !json_is_null(v) ? v : NULL;
}

// 1 when present and in [lo, hi], 0 when absent, -1 on a bad value
static int get_int(json_t *o, const char *k, long long lo, long long hi, long long *out, dl_api_error *e) {
    json_t *v = field(o, k);
    if (!v) return 0;
    if (!json_is_integer(v)) return BAD(e, k, "'%s' must be an integer, got %s", k, dl_json_type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return BAD(e, k, "'%s' is %lld, outside the allowed range [%lld, %lld]", k, x, lo, hi);
    *out = x;
    return 1;
}

static int get_num(json_t *o, const char *k, double lo, double hi, double *out, dl_api_error *e) {
    json_t *v = field(o, k);
    if (!v) return 0;
    if (!json_is_number(v)) return BAD(e, k, "'%s' must be a number, got %s", k, dl_json_type_name(v));
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return BAD(e, k, "'%s' is %g, outside the allowed range [%g, %g]", k, x, lo, hi);
    *out = x;
    return 1;
}

static int get_bool(json_t *o, const char *k, int *out, dl_api_error *e) {
    json_t *v = field(o, k);
    if (!v) return 0;
    if (!json_is_boolean(v)) return BAD(e, k, "'%s' must be a boolean, got %s", k, dl_json_type_name(v));
    *out = json_is_true(v);
    return 1;
}

static char *dup_str(json_t *v) {
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (s) memcpy(s, json_string_value(v), n + 1);
    return s;
}

#define OOM(e) dl_api_fail(e, 500, "server_error", NULL, NULL, "out of memory")

// a prompt of token ids: every element an integer id >= 0 (the vocabulary bound is the server's)
static int parse_ids(json_t *arr, dl_ivec *ids, const char *param, dl_api_error *e) {
    size_t i, n = json_array_size(arr);
    json_t *v;
    if (n == 0) return BAD(e, param, "'%s' is an empty list of token ids", param);
    if (dl_ivec_reserve(ids, n)) return OOM(e);
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return BAD(e, param, "'%s'[%zu] must be a token id (an integer >= 0)", param, i);
        ids->data[ids->len++] = (int32_t)json_integer_value(v);
    }
    return 0;
}

static dl_api_prompt *add_prompt(dl_api_request *r) { return &r->prompts[r->n_prompts++]; }

/* prompt: a string, a list of strings, a list of token ids, or a list of lists of ids */
static int parse_prompt(dl_api_request *r, json_t *v, dl_api_error *e) {
    if (!v) return BAD(e, "prompt", "'prompt' is required");
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v))
        return BAD(e, "prompt", "'prompt' must be a string or a list, got %s", dl_json_type_name(v));
    if (n == 0) return BAD(e, "prompt", "'prompt' is an empty list");
    int flat_ids = json_is_array(v) && json_is_integer(json_array_get(v, 0));
    if (flat_ids) n = 1;
    if (n > DL_API_MAX_PROMPTS) return BAD(e, "prompt", "'prompt' holds %zu prompts, more than %d", n, DL_API_MAX_PROMPTS);
    r->prompts = calloc(n, sizeof *r->prompts);
    if (!r->prompts) return OOM(e);
    if (json_is_string(v) || flat_ids) {
        dl_api_prompt *p = add_prompt(r);
        if (flat_ids) return parse_ids(v, &p->ids, "prompt", e);
        return (p->text = dup_str(v)) ? 0 : OOM(e);
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        char param[32];
        snprintf(param, sizeof param, "prompt[%zu]", i);
        dl_api_prompt *p = add_prompt(r);
        if (json_is_string(item)) {
            if (!(p->text = dup_str(item))) return OOM(e);
        } else if (json_is_array(item)) {
            if (parse_ids(item, &p->ids, param, e)) return -1;
        } else
            return BAD(e, param, "'%s' must be a string or a list of token ids, got %s", param, dl_json_type_name(item));
    }
    return 0;
}

static int parse_stop(dl_api_request *r, json_t *o, dl_api_error *e) {
    json_t *v = field(o, "stop");
    if (!v) return 0;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v))
        return BAD(e, "stop", "'stop' must be a string or a list of strings, got %s", dl_json_type_name(v));
    if (n > DL_API_MAX_STOP) return BAD(e, "stop", "'stop' holds %zu strings, more than %d", n, DL_API_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(s)) return BAD(e, "stop", "'stop'[%zu] must be a string, got %s", i, dl_json_type_name(s));
        size_t len = json_string_length(s);
        if (len == 0 || len > DL_API_MAX_STOP_LEN)
            return BAD(e, "stop", "'stop'[%zu] is %zu bytes long (allowed: 1 to %d)", i, len, DL_API_MAX_STOP_LEN);
        if (!(r->stop[r->n_stop++] = dup_str(s))) return OOM(e);
    }
    return 0;
}

/* Fields of OpenAI's this server does not implement: refused rather than silently ignored,
 * because a client that sends them expects their effect. */
static int refuse_unsupported(json_t *o, dl_api_error *e) {
    int echo = 0;
    if (get_bool(o, "echo", &echo, e) < 0) return -1;
    if (echo) return BAD(e, "echo", "'echo' is not supported");
    long long best_of = 1;
    if (get_int(o, "best_of", 1, 1, &best_of, e) < 0) return -1;
    if (field(o, "suffix")) return BAD(e, "suffix", "'suffix' is not supported");
    const char *penalties[2] = {"presence_penalty", "frequency_penalty"};
    for (int i = 0; i < 2; i++) {
        double x = 0;
        if (get_num(o, penalties[i], 0, 0, &x, e) < 0) return -1;
    }
    json_t *bias = field(o, "logit_bias");
    if (bias && (!json_is_object(bias) || json_object_size(bias) > 0))
        return BAD(e, "logit_bias", "'logit_bias' is not supported");
    const char *tools[4] = {"tools", "functions", "tool_choice", "function_call"};
    for (int i = 0; i < 4; i++) {
        json_t *t = field(o, tools[i]);
        if (t && !(json_is_array(t) && json_array_size(t) == 0) && !(json_is_string(t) && !strcmp(json_string_value(t), "none")))
            return BAD(e, tools[i], "'%s' is not supported (no tool calling)", tools[i]);
    }
    json_t *fmt = field(o, "response_format"), *ft = fmt ? json_object_get(fmt, "type") : NULL;
    if (fmt && !(json_is_string(ft) && !strcmp(json_string_value(ft), "text")))
        return BAD(e, "response_format", "'response_format' other than {\"type\": \"text\"} is not supported");
    return 0;
}

static int parse_logprobs(dl_api_request *r, json_t *o, dl_api_error *e) {
    long long k = -1;
    r->logprobs = -1;
    if (!r->chat) {
        if (get_int(o, "logprobs", 0, DL_API_MAX_TOP_LOGPROBS, &k, e) < 0) return -1;
        r->logprobs = (int)k;
        return 0;
    }
    int want = 0;
    if (get_bool(o, "logprobs", &want, e) < 0) return -1;
    int has_top = get_int(o, "top_logprobs", 0, DL_API_MAX_TOP_LOGPROBS, &k, e);
    if (has_top < 0) return -1;
    if (has_top && !want) return BAD(e, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    if (want) r->logprobs = has_top ? (int)k : 0;
    return 0;
}

static int parse_sampling(dl_api_request *r, json_t *o, dl_api_error *e) {
    long long x;
    int rc;
    if ((rc = get_int(o, "max_tokens", 1, INT_MAX, &x, e)) < 0) return -1;
    if (rc) r->max_tokens = (int)x;
    if (r->chat && r->max_tokens < 0) {
        if ((rc = get_int(o, "max_completion_tokens", 1, INT_MAX, &x, e)) < 0) return -1;
        if (rc) r->max_tokens = (int)x;
    }
    if (get_num(o, "temperature", 0, 2, &r->temperature, e) < 0) return -1;
    if (get_num(o, "top_p", 0, 1, &r->top_p, e) < 0) return -1;
    if ((rc = get_int(o, "top_k", -1, INT_MAX, &x, e)) < 0) return -1;
    if (rc) r->top_k = x < 0 ? 0 : (int)x; /* vLLM spells "off" as -1 */
    if ((rc = get_int(o, "seed", LLONG_MIN, LLONG_MAX, &x, e)) < 0) return -1;
    if (rc) {
        r->has_seed = 1;
        r->seed = (uint64_t)x;
    }
    if ((rc = get_int(o, "n", 1, DL_API_MAX_N, &x, e)) < 0) return -1;
    if (rc) r->n = (int)x;
    return 0;
}

static int parse_stream(dl_api_request *r, json_t *o, dl_api_error *e) {
    if (get_bool(o, "stream", &r->stream, e) < 0) return -1;
    json_t *so = field(o, "stream_options");
    if (!so) return 0;
    if (!json_is_object(so))
        return BAD(e, "stream_options", "'stream_options' must be an object, got %s", dl_json_type_name(so));
    if (!r->stream) return BAD(e, "stream_options", "'stream_options' is only allowed with 'stream' set to true");
    return get_bool(so, "include_usage", &r->include_usage, e) < 0 ? -1 : 0;
}

static int parse_body(dl_api_request *r, json_t *o, dl_api_error *e) {
    json_t *m = field(o, "model");
    if (!m) return BAD(e, "model", "'model' is required");
    if (!json_is_string(m)) return BAD(e, "model", "'model' must be a string, got %s", dl_json_type_name(m));
    if (!(r->model = dup_str(m))) return OOM(e);
    if (r->chat) {
        json_t *msgs = field(o, "messages");
        if (!msgs) return BAD(e, "messages", "'messages' is required");
        r->prompts = calloc(1, sizeof *r->prompts);
        if (!r->prompts) return OOM(e);
        r->n_prompts = 1;
        dl_buf text = {0};
        char param[DL_CHAT_PARAM_MAX];
        dl_error err;
        int rc = dl_chat_render(msgs, DL_API_MAX_MESSAGES, &text, param, &err);
        if (rc) {
            dl_buf_free(&text);
            return rc == -1 ? BAD(e, param, "%s", err.msg) : OOM(e);
        }
        r->prompts[0].text = text.data;
    } else if (parse_prompt(r, field(o, "prompt"), e))
        return -1;
    if (refuse_unsupported(o, e) || parse_sampling(r, o, e) || parse_logprobs(r, o, e) || parse_stop(r, o, e) ||
        parse_stream(r, o, e))
        return -1;
    return 0;
}

int dl_api_parse_request(dl_api_request *r, int chat, const char *body, size_t len, dl_api_error *e) {
    memset(r, 0, sizeof *r);
    r->chat = chat;
    r->max_tokens = -1;
    r->temperature = 1.0;
    r->top_p = 1.0;
    r->n = 1;
    r->logprobs = -1;
    json_error_t jerr;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!o)
        return BAD(e, NULL, "the request body is not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column,
                   jerr.text);
    int rc = json_is_object(o) ? parse_body(r, o, e) : BAD(e, NULL, "the request body must be a JSON object, got %s", dl_json_type_name(o));
    json_decref(o);
    if (rc) dl_api_request_free(r);
    return rc;
}

void dl_api_request_free(dl_api_request *r) {
    free(r->model);
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        dl_ivec_free(&r->prompts[i].ids);
    }
    free(r->prompts);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}
