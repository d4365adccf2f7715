/* libFuzzer target: the request parser of distil serve over arbitrary bodies. The first byte
 * picks the route (even: /v1/completions, odd: /v1/chat/completions). A body that parses must
 * hold only values in their documented ranges; a body that fails must fail with a 400 and a
 * message. A parsed request is then answered with a made-up completion whose tokens are the
 * prompt's bytes, which drives the response builders and the UTF-8 repair over the same
 * arbitrary text: every body they produce must be valid JSON. Any broken promise traps. */
#include "serve/api.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dl_tokenizer *bytes_tok; /* byte tokens only: every prompt byte is a token */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    dl_error err;
    bytes_tok = dl_tok_train("", 0, 257, NULL, &err); /* the 256 bytes and <|endoftext|> */
    if (!bytes_tok) {
        fprintf(stderr, "fuzz_request: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

static void check_ranges(const dl_api_request *r) {
    if (!r->model || r->n_prompts < 1 || r->n_prompts > DL_API_MAX_PROMPTS) __builtin_trap();
    if (r->n < 1 || r->n > DL_API_MAX_N || r->logprobs < -1 || r->logprobs > DL_API_MAX_TOP_LOGPROBS) __builtin_trap();
    if (r->max_tokens == 0 || r->max_tokens < -1) __builtin_trap();
    if (!(r->temperature >= 0 && r->temperature <= 2) || !(r->top_p >= 0 && r->top_p <= 1)) __builtin_trap();
    if (r->n_stop < 0 || r->n_stop > DL_API_MAX_STOP || r->top_k < 0) __builtin_trap();
    for (int i = 0; i < r->n_stop; i++)
        if (!r->stop[i][0] || strlen(r->stop[i]) > DL_API_MAX_STOP_LEN) __builtin_trap();
    for (int i = 0; i < r->n_prompts; i++)
        if (!r->prompts[i].text && r->prompts[i].ids.len == 0) __builtin_trap();
}

static void check_json(char *body) {
    json_error_t je;
    json_t *v = body ? json_loads(body, JSON_ALLOW_NUL, &je) : NULL;
    if (!v) __builtin_trap();
    json_decref(v);
    free(body);
}

// a finished choice whose tokens are the bytes of text, each with made-up logprobs
static void fake_choice(dl_api_choice *c, const char *text, size_t n, int n_top) {
    memset(c, 0, sizeof *c);
    size_t cap = n ? n : 1;
    c->n_top = n_top;
    c->cap = cap;
    c->logprob = calloc(cap, sizeof *c->logprob);
    c->start = calloc(cap, sizeof *c->start);
    c->top = calloc(cap * (size_t)(n_top > 0 ? n_top : 1), sizeof *c->top);
    if (!c->logprob || !c->start || !c->top || dl_ivec_reserve(&c->tokens, cap)) __builtin_trap();
    for (size_t k = 0; k < n; k++) {
        unsigned char b = (unsigned char)text[k];
        c->tokens.data[c->tokens.len++] = b;
        c->logprob[k] = -(float)b / 16.0f;
        c->start[k] = k;
        for (int j = 0; j < n_top; j++) c->top[k * (size_t)n_top + (size_t)j] = (dl_api_top){(b + j) & 255, -(float)j};
    }
    dl_buf_append(&c->text, text, n);
    c->final_len = c->out_tokens = n;
    c->done = 1;
    c->finish_reason = "length";
}

static void answer(const dl_api_request *r) {
    const dl_api_prompt *p = &r->prompts[0];
    const char *text = p->text ? p->text : "";
    size_t n = strlen(text);
    if (n > 4096) n = 4096;
    dl_api_choice c;
    fake_choice(&c, text, n, r->logprobs > 0 ? r->logprobs : 0);
    dl_api_meta meta = {.id = "cmpl-fuzz", .created = 1, .model = r->model, .prompt_tokens = (long long)n,
                        .completion_tokens = (long long)n};
    check_json(dl_api_response_body(r, &meta, &c, 1, bytes_tok));
    dl_buf sse = {0};
    size_t half = n / 2;
    if (dl_api_stream_chunk(&sse, r, &meta, &c, 0, 0, half, 0, half, NULL, 1, bytes_tok) ||
        dl_api_stream_chunk(&sse, r, &meta, &c, 0, half, n, half, n, "stop", 0, bytes_tok))
        __builtin_trap();
    /* each event is "data: {json}\n\n" */
    for (char *e = sse.data; e && *e; e = strstr(e, "\n\n") ? strstr(e, "\n\n") + 2 : NULL) {
        char *end = strstr(e, "\n\n");
        if (strncmp(e, "data: ", 6) != 0 || !end) __builtin_trap();
        check_json(strndup(e + 6, (size_t)(end - e - 6)));
    }
    dl_buf_free(&sse);
    dl_api_choice_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int chat = data[0] & 1;
    dl_api_request r;
    dl_api_error e;
    memset(&e, 0, sizeof e);
    if (dl_api_parse_request(&r, chat, (const char *)data + 1, size - 1, &e) == 0) {
        check_ranges(&r);
        answer(&r);
        dl_api_request_free(&r);
    } else if ((e.status != 400 && e.status != 500) || !e.message[0]) {
        __builtin_trap();
    }
    /* the repair alone: whatever the bytes, the result is a valid JSON string */
    dl_buf b = {0};
    if (dl_utf8_repair(&b, (const char *)data, size)) __builtin_trap();
    json_t *s = json_stringn(b.data, b.len);
    if (!s) __builtin_trap();
    json_decref(s);
    dl_buf_free(&b);
    return 0;
}
