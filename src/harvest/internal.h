/* Shared by the files of src/harvest (and its tests), private otherwise. */
#ifndef DISTIL_HARVEST_INTERNAL_H
#define DISTIL_HARVEST_INTERNAL_H

#include "harvest.h"
#include <jansson.h>

#define HV_MAX_LINE (64u << 20)  /* longest prompts line */
#define HV_MAX_REPLY (64u << 20) /* largest response body kept */

/* ---- prompts.c ------------------------------------------------------------------------------ */
typedef struct hv_prompt {
    json_t *id;    /* string or number */
    char *key;     /* the id as compact JSON text: "\"q1\"" or "7" (the key resume compares) */
    json_t *input; /* the prompt string (completions) or the messages array (chat) */
    long line;
} hv_prompt;

typedef struct hv_prompts { hv_prompt *items; size_t n, cap; } hv_prompts;

int hv_prompts_load(hv_prompts *ps, const char *path, int chat, dl_error *err);
void hv_prompts_free(hv_prompts *ps);
/* The id as compact JSON text (malloc'ed), or NULL when out of memory. */
char *hv_id_key(json_t *id);

/* ---- request.c ------------------------------------------------------------------------------ */
/* URLs of the completions (or chat) route and of the model list for an endpoint (malloc'ed). */
int hv_endpoint_urls(const char *endpoint, int chat, char **post_url, char **models_url, dl_error *err);
/* The JSON body of one request (malloc'ed), or NULL when out of memory. With a seed, the prompt of
 * line L of the prompts file is sent seed + L: repeatable, yet no two prompts share a random stream. */
char *hv_request_body(const dl_harvest_opts *o, const char *model, json_t *input, long line);

/* ---- response.c ----------------------------------------------------------------------------- */
/* Turns a 2xx body into the OUT line of prompt p (appended to line, ending in '\n'). Fails with a
 * message naming what was wrong ("choices[0].text must be a string") on anything that is not a
 * completion of the asked shape. completion_tokens: usage.completion_tokens, or 0. */
int hv_response_line(const char *body, size_t len, int chat, int want_logprobs, const hv_prompt *p,
                     dl_buf *line, long *completion_tokens, dl_error *err);
/* A short printable reason from an error body: error.message of OpenAI's shape, else the start
 * of the body with control and non-ASCII bytes shown as '?'. */
void hv_error_text(const char *body, size_t len, char *out, size_t n);

/* ---- json_span.c: byte ranges of values inside JSON text that jansson has accepted ------------ */
/* At s[i] == '{': the start of the value of member key (compared byte for byte, so an escaped
 * key is not found). Returns 0 and sets *at, or -1. */
int hv_span_member(const char *s, size_t n, size_t i, const char *key, size_t *at);
/* At s[i] == '[': the start of the first element, or -1 when empty. */
int hv_span_first(const char *s, size_t n, size_t i, size_t *at);
/* The end (one past) of the value starting at s[i], or -1 when the text ends first. */
int hv_span_end(const char *s, size_t n, size_t i, size_t *end);
/* Appends s[a..b) without the whitespace outside strings. */
int hv_span_append_compact(dl_buf *out, const char *s, size_t a, size_t b);

/* ---- resume.c ------------------------------------------------------------------------------- */
/* Reads OUT (if it exists): every id goes into done (an object used as a set of id keys).
 * A last line without '\n' is cut off the file; *dropped says how many bytes. A complete line
 * that holds no id fails (it is not a file this command wrote). */
int hv_resume_scan(const char *path, json_t *done, long *lines, long *dropped, dl_error *err);

/* ---- retry.c -------------------------------------------------------------------------------- */
typedef enum { HV_DONE, HV_RETRY, HV_FAIL } hv_verdict;
/* What a finished transfer means: curl's code first (timeouts and connection errors retry),
 * then the HTTP status (2xx done, 429 and 5xx retry, anything else fails). */
hv_verdict hv_classify(int curl_code, long status);
/* Seconds to wait before try number `tries`+1. retry_after >= 0 (from the server) is honoured;
 * otherwise base * 2^(tries-1) with jitter. Never more than cap. */
double hv_backoff(int tries, double retry_after, double base, double cap, dl_rng *rng);
/* A Retry-After value (delay seconds or an HTTP date) in seconds from now, or -1. */
double hv_parse_retry_after(const char *v, size_t n);

/* ---- models.c ------------------------------------------------------------------------------- */
/* The id of the first model in GET models_url's {"data": [{"id": ...}]} (malloc'ed). */
int hv_fetch_model(const char *models_url, const char *auth_header, double timeout_s, char **model,
                   dl_error *err);

/* ---- client.c ------------------------------------------------------------------------------- */
/* libcurl write callback: appends to the dl_buf in userdata, refusing bodies past HV_MAX_REPLY
 * (the transfer then ends with CURLE_WRITE_ERROR). */
size_t hv_collect_body(char *p, size_t size, size_t nmemb, void *buf);

typedef struct hv_job_list { const hv_prompts *ps; const size_t *todo; size_t n; } hv_job_list;
/* Sends every prompt of jobs, writes answers to out and failures to failures_path (opened on the
 * first failure). Fails only when the run cannot go on (OUT not writable, out of memory). */
int hv_client_run(const dl_harvest_opts *o, const char *post_url, const char *auth_header, const char *model,
                  const hv_job_list *jobs, FILE *out, const char *failures_path, dl_harvest_result *res,
                  dl_error *err);

#endif
