/* harvest: the client side of a teacher API. Prompts go to an OpenAI-compatible endpoint with
 * N requests in flight (libcurl multi); each answer becomes one line of OUT, appended and
 * flushed as it arrives, so a run can stop at any moment and be resumed.
 *
 * Prompts file (JSONL), one object per line; blank lines are skipped:
 *   {"id": "q1", "prompt": "Once upon a time"}                      completions
 *   {"id": 7, "messages": [{"role": "user", "content": "Hi"}]}        chat (--chat)
 * id is a string or a number; without one the line number (1-based) is the id. Ids must be
 * unique. With --chat a line may give "prompt" instead of "messages": it is sent as one user
 * message. Any malformed line stops the run before a single request is sent (the error names
 * the line): a harvest costs money, and half a harvest of a broken file is worth little.
 *
 * OUT (JSONL), one line per answered prompt, in the order answers arrive:
 *   {"id": ..., "prompt": ... | "messages": ..., "model": "...", "completion": "...",
 *    "finish_reason": "stop" | "length" | null, "usage": {...} | null, "logprobs": {...}}
 * "logprobs" is present when --top-logprobs was given: it is choices[0].logprobs of the
 * response byte for byte (numbers keep the endpoint's digits; only whitespace outside strings
 * is dropped). Completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
 * chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob",
 * "bytes"}]}]}. Some servers (llama.cpp's) send the chat shape on /v1/completions too: the
 * shape follows the body, and a consumer tells the two apart by "content".
 *
 * Resume: ids already in OUT are not asked again. A last line without its newline (a run
 * killed mid-write) is cut off first. Prompts that fail for good (4xx other than 429, answers
 * that are not a completion, retries used up) go to the failures file, one JSON line each
 * ({"id", "error", "status", "tries"}; status 0 when no HTTP answer came); that file describes
 * the last run only, and a new run asks those prompts again. */
#ifndef DISTIL_HARVEST_H
#define DISTIL_HARVEST_H

#include "base/base.h"

typedef struct dl_harvest_opts {
    const char *endpoint;      /* "http://host:port" or a base URL ending in "/v1" */
    const char *api_key;       /* sent as "Authorization: Bearer KEY"; NULL or "": no header */
    const char *prompts_path;
    const char *out_path;
    const char *failures_path; /* NULL: OUT.failures.jsonl */
    const char *model;         /* NULL: the first model GET /v1/models lists */
    int chat;                  /* /v1/chat/completions rather than /v1/completions */
    int concurrency;           /* requests in flight, >= 1 */
    int max_tokens;            /* >= 1 */
    double temperature;        /* >= 0 */
    int top_logprobs;          /* -1: no logprobs; K >= 0: per-token logprobs, K alternatives */
    int retries;               /* further tries of one prompt after its first, >= 0 */
    double timeout_s;          /* one request, connection included */
    double backoff_s;          /* first wait before a retry; doubles each time (with jitter) */
    double max_backoff_s;      /* the longest wait before a retry, Retry-After included */
    int seed;                  /* -1: none; else the prompt on line L of the prompts file is sent
                                * with "seed": seed + L, so an endpoint that honours it answers the
                                * same prompt the same way, and prompts do not share a random stream */
} dl_harvest_opts;

/* Defaults: concurrency 4, max_tokens 128, temperature 1, no logprobs, 5 retries, timeout 120 s,
 * backoff 0.5 s up to 60 s, no seed. */
void dl_harvest_opts_default(dl_harvest_opts *o);

typedef struct dl_harvest_result {
    long total;             /* prompts in the file */
    long skipped;           /* already in OUT */
    long written;           /* lines added to OUT */
    long failed;            /* prompts that failed for good (in the failures file) */
    long retries;           /* requests sent again */
    long completion_tokens; /* as the endpoints' usage reported them */
    double seconds;
} dl_harvest_result;

/* Runs a harvest. Returns 0 when every prompt was tried (res->failed says how many failed for
 * good) and -1 when the run could not go on: a bad option, a malformed prompts file, OUT not
 * writable, the model list not reachable. */
int dl_harvest_run(const dl_harvest_opts *o, dl_harvest_result *res, dl_error *err);

#endif
