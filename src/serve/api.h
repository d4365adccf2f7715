/* api: OpenAI's schemas. Requests in (api_request.c, chat.c), responses, stream chunks and
 * errors out (api_response.c), and the UTF-8 repair that keeps every JSON string valid
 * (utf8.c). Nothing here touches the network or the model, so it is tested and fuzzed alone. */
#ifndef DISTIL_SERVE_API_H
#define DISTIL_SERVE_API_H

#include "base/base.h"
#include "tokenizer/tokenizer.h"
#include <stdint.h>

#define DL_API_MAX_STOP 4          /* stop strings per request */
#define DL_API_MAX_STOP_LEN 256    /* bytes per stop string */
#define DL_API_MAX_TOP_LOGPROBS 20 /* alternatives per token */
#define DL_API_MAX_N 16            /* choices per prompt */
#define DL_API_MAX_PROMPTS 64      /* prompts per completions request */
#define DL_API_MAX_MESSAGES 256    /* messages per chat request */

/* ---- errors: {"error": {"message", "type", "param", "code"}} ------------------------------- */
typedef struct dl_api_error {
    int status;       /* HTTP status */
    const char *type; /* "invalid_request_error", "rate_limit_error", ... (a static string) */
    const char *code; /* "invalid_api_key", "rate_limit_exceeded", ... or NULL */
    char param[64];   /* the offending field ("messages[2].role"), empty for null */
    char message[512];
    double retry_after; /* seconds, for 429 rate limits (0: no Retry-After header) */
} dl_api_error;

/* Fills e and returns -1. param may be NULL. */
int dl_api_fail(dl_api_error *e, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The error body (malloc'ed JSON text), or NULL when out of memory. */
char *dl_api_error_body(const dl_api_error *e);

/* ---- requests -------------------------------------------------------------------------------- */
typedef struct dl_api_prompt {
    char *text;   /* the prompt text (NUL-terminated; chat: the rendered template), NULL for ids */
    dl_ivec ids;  /* a prompt given as token ids (completions only) */
} dl_api_prompt;

typedef struct dl_api_request {
    int chat;            /* /v1/chat/completions rather than /v1/completions */
    char *model;
    dl_api_prompt *prompts;
    int n_prompts;       /* chat: always 1 */
    int max_tokens;      /* -1: not given (completions default 16; chat: the rest of the context) */
    double temperature;  /* 0..2, default 1; 0 = greedy */
    double top_p;        /* (0, 1], default 1 */
    int top_k;           /* extension (as vLLM): 0 = off */
    int has_seed;
    uint64_t seed;
    int n;               /* choices per prompt, 1..DL_API_MAX_N */
    int logprobs;        /* -1: none; else how many alternatives per token (0..20) */
    int stream, include_usage;
    char *stop[DL_API_MAX_STOP];
    int n_stop;
} dl_api_request;

/* Parses and checks a request body. Unknown fields are ignored (as vLLM does); fields of
 * OpenAI's that this server does not implement (echo, best_of > 1, suffix, logit_bias, tools,
 * non-zero penalties...) are refused by name. On failure e holds a 400 naming the field. */
int dl_api_parse_request(dl_api_request *r, int chat, const char *body, size_t len, dl_api_error *e);
void dl_api_request_free(dl_api_request *r);

/* Chat messages become one prompt through the chat template of tokenizer.h (dl_chat_render). */

/* ---- what one choice produced (filled by the scheduler, read by the responses) ------------ */
typedef struct dl_api_top { int32_t id; float logprob; } dl_api_top;

typedef struct dl_api_choice {
    dl_ivec tokens;       /* generated ids (the end token is not included) */
    float *logprob;       /* per token: log p under the distribution sampled from, at temperature 1:
                           * with a watermark, the biased one (green logits + delta), so logprobs
                           * describe the tokens as they were drawn and carry the watermark too */
    dl_api_top *top;      /* per token: n_top alternatives, most likely first */
    size_t *start;        /* per token: byte offset of its text in `text` */
    size_t cap;           /* capacity of the three arrays above */
    int n_top;
    dl_buf text;          /* raw bytes of the completion (may end with held-back bytes) */
    size_t final_len;     /* bytes of text that can no longer change (stop strings, UTF-8) */
    size_t out_tokens;    /* tokens that belong to the final text (all of them unless a stop cut it) */
    int done;
    const char *finish_reason; /* "stop" or "length" when done */
} dl_api_choice;

void dl_api_choice_free(dl_api_choice *c);

/* ---- responses ---------------------------------------------------------------------------- */
typedef struct dl_api_meta {
    const char *id;      /* "cmpl-..." or "chatcmpl-..." */
    long long created;   /* unix seconds */
    const char *model;
    long long prompt_tokens, completion_tokens;
} dl_api_meta;

/* The whole response body of a non-streaming request (malloc'ed JSON text) or NULL. */
char *dl_api_response_body(const dl_api_request *r, const dl_api_meta *meta, const dl_api_choice *choices,
                           int n_choices, const dl_tokenizer *tok);
/* One server-sent event "data: {...}\n\n" for choice `index`: the text bytes [t0, t1) and the
 * tokens [k0, k1) of that choice, and finish_reason when not NULL. first: the chat stream's
 * opening delta carries the role. Appends to out; -1 when out of memory. */
int dl_api_stream_chunk(dl_buf *out, const dl_api_request *r, const dl_api_meta *meta, const dl_api_choice *c,
                        int index, size_t t0, size_t t1, size_t k0, size_t k1, const char *finish_reason,
                        int first, const dl_tokenizer *tok);
/* The usage-only chunk of stream_options.include_usage (choices empty). */
int dl_api_stream_usage(dl_buf *out, const dl_api_request *r, const dl_api_meta *meta);
/* GET /v1/models */
char *dl_api_models_body(const char *model, long long created);

/* ---- UTF-8 (utf8.c) --------------------------------------------------------------------------
 * Appends s[0..n) to out with every invalid or truncated sequence replaced by U+FFFD, so the
 * result is valid UTF-8 for JSON. */
int dl_utf8_repair(dl_buf *out, const char *s, size_t n);
/* Bytes at the end of s[0..n) that start a multi-byte character whose remaining bytes have not
 * arrived yet (0..3): a stream holds them back until the next token completes them. */
size_t dl_utf8_incomplete_tail(const char *s, size_t n);

#endif
