/* The request parser, the chat template, the response shapes and UTF-8 repair. The parser
 * takes untrusted bytes: besides the fields it accepts, every malformed body here (truncated,
 * wrong types, out of range, huge numbers, duplicate keys, non-UTF-8, deep nesting) must come
 * back as a 400 naming what was wrong, never a crash. */
#include "serve/api.h"
#include "test.h"
#include <jansson.h>

static int parse(dl_api_request *r, int chat, const char *body, dl_api_error *e) {
    memset(e, 0, sizeof *e);
    return dl_api_parse_request(r, chat, body, strlen(body), e);
}

/* A body that must fail with 400; param (may be NULL) must be the reported field. */
static void check_bad(int chat, const char *body, const char *param, const char *needle) {
    dl_api_request r;
    dl_api_error e;
    int rc = parse(&r, chat, body, &e);
    CHECK_MSG(rc == -1 && e.status == 400, "accepted: %s", body);
    if (rc == 0) {
        dl_api_request_free(&r);
        return;
    }
    CHECK_MSG(!strcmp(e.type, "invalid_request_error"), "type %s for %s", e.type, body);
    if (param) CHECK_MSG(!strcmp(e.param, param), "param '%s' (want '%s') for %s", e.param, param, body);
    if (needle) CHECK_MSG(strstr(e.message, needle) != NULL, "message '%s' lacks '%s'", e.message, needle);
}

static void test_completions_fields(void) {
    dl_api_request r;
    dl_api_error e;
    const char *body = "{\"model\":\"m\",\"prompt\":\"hello\",\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,"
                       "\"seed\":-3,\"n\":3,\"logprobs\":5,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"stop\":[\"\\n\",\"end\"],\"user\":\"u1\",\"some_future_field\":{\"x\":[1,2]},\"top_k\":4}";
    CHECK(parse(&r, 0, body, &e) == 0);
    CHECK(!strcmp(r.model, "m") && r.n_prompts == 1 && !strcmp(r.prompts[0].text, "hello"));
    CHECK(r.max_tokens == 7 && fabs(r.temperature - 0.5) < 1e-12 && fabs(r.top_p - 0.9) < 1e-12);
    CHECK(r.has_seed && r.seed == (uint64_t)-3 && r.n == 3 && r.logprobs == 5 && r.top_k == 4);
    CHECK(r.stream == 1 && r.include_usage == 1);
    CHECK(r.n_stop == 2 && !strcmp(r.stop[0], "\n") && !strcmp(r.stop[1], "end"));
    dl_api_request_free(&r);

    /* defaults, and nulls count as absent */
    CHECK(parse(&r, 0, "{\"model\":\"m\",\"prompt\":\"\",\"max_tokens\":null,\"temperature\":null,\"stop\":null}", &e) == 0);
    CHECK(r.max_tokens == -1 && r.temperature == 1.0 && r.top_p == 1.0 && r.n == 1 && r.logprobs == -1 && !r.has_seed);
    CHECK(r.stream == 0 && r.n_stop == 0 && r.prompts[0].text && r.prompts[0].text[0] == 0);
    dl_api_request_free(&r);

    /* a single stop string, and zero penalties / empty logit_bias / best_of 1 are accepted */
    CHECK(parse(&r, 0, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":\".\",\"presence_penalty\":0,\"frequency_penalty\":0.0,"
                       "\"logit_bias\":{},\"best_of\":1,\"echo\":false}", &e) == 0);
    CHECK(r.n_stop == 1 && !strcmp(r.stop[0], "."));
    dl_api_request_free(&r);
}

static void test_prompt_forms(void) {
    dl_api_request r;
    dl_api_error e;
    CHECK(parse(&r, 0, "{\"model\":\"m\",\"prompt\":[\"a\",\"bc\"]}", &e) == 0);
    CHECK(r.n_prompts == 2 && !strcmp(r.prompts[1].text, "bc"));
    dl_api_request_free(&r);
    CHECK(parse(&r, 0, "{\"model\":\"m\",\"prompt\":[5,6,7]}", &e) == 0);
    CHECK(r.n_prompts == 1 && !r.prompts[0].text && r.prompts[0].ids.len == 3 && r.prompts[0].ids.data[2] == 7);
    dl_api_request_free(&r);
    CHECK(parse(&r, 0, "{\"model\":\"m\",\"prompt\":[[1],[2,3],\"t\"]}", &e) == 0);
    CHECK(r.n_prompts == 3 && r.prompts[1].ids.len == 2 && !strcmp(r.prompts[2].text, "t"));
    dl_api_request_free(&r);

    check_bad(0, "{\"model\":\"m\"}", "prompt", "required");
    check_bad(0, "{\"model\":\"m\",\"prompt\":[]}", "prompt", "empty");
    check_bad(0, "{\"model\":\"m\",\"prompt\":5}", "prompt", "string or a list");
    check_bad(0, "{\"model\":\"m\",\"prompt\":[\"a\",{}]}", "prompt[1]", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":[1,\"a\"]}", "prompt", "token id");
    check_bad(0, "{\"model\":\"m\",\"prompt\":[1,-2]}", "prompt", "token id");
    check_bad(0, "{\"model\":\"m\",\"prompt\":[[1],[]]}", "prompt[1]", "empty");
    check_bad(0, "{\"model\":\"m\",\"prompt\":[4294967296]}", "prompt", "token id");
    char many[1024] = "{\"model\":\"m\",\"prompt\":[";
    for (int i = 0; i < DL_API_MAX_PROMPTS + 1; i++) strcat(many, i ? ",\"a\"" : "\"a\"");
    strcat(many, "]}");
    check_bad(0, many, "prompt", "more than");
}

static void test_bad_parameters(void) {
    check_bad(0, "{\"prompt\":\"x\"}", "model", "required");
    check_bad(0, "{\"model\":7,\"prompt\":\"x\"}", "model", "string");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":\"10\"}", "max_tokens", "integer");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1.5}", "max_tokens", "integer");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens", "range");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":9223372036854775807}", "max_tokens", "range");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":2.5}", "temperature", "range");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":-0.1}", "temperature", "range");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":true}", "temperature", "number");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"top_p\":1.01}", "top_p", "range");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"n\":0}", "n", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"n\":17}", "n", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":21}", "logprobs", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":true}", "logprobs", "integer");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"stream\":\"yes\"}", "stream", "boolean");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "stream_options", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"seed\":1e3}", "seed", "integer");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "more than");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":\"\"}", "stop", "bytes");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[1]}", "stop", "string");
    char long_stop[600];
    snprintf(long_stop, sizeof long_stop, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":\"%0300d\"}", 0);
    check_bad(0, long_stop, "stop", "bytes");
    /* fields this server does not implement are refused by name */
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}", "echo", "not supported");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"best_of\":2}", "best_of", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":\"s\"}", "suffix", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"logit_bias\":{\"5\":1}}", "logit_bias", NULL);
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"presence_penalty\":0.5}", "presence_penalty", NULL);
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}", "tools", NULL);
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"response_format\":{\"type\":\"json_object\"}}", "response_format", NULL);
}

static void test_malformed_json(void) {
    check_bad(0, "", NULL, "not valid JSON");
    check_bad(0, "{", NULL, "not valid JSON");
    check_bad(0, "[1,2]", NULL, "JSON object");
    check_bad(0, "\"text\"", NULL, "JSON object");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\"} trailing", NULL, "not valid JSON");
    check_bad(0, "{\"model\":\"m\",\"model\":\"n\",\"prompt\":\"x\"}", NULL, "duplicate");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"\xff\xfe\"}", NULL, "not valid JSON");   /* not UTF-8 */
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"\xc0\xaf\"}", NULL, "not valid JSON");   /* overlong */
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"a\\u0000b\"}", NULL, "not valid JSON"); /* NUL */
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":123456789012345678901234567890}", NULL, "not valid JSON");
    check_bad(0, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":1e400}", NULL, "not valid JSON");
    /* nesting far past any real request */
    char deep[20100];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{\"model\":\"m\",\"prompt\":\"x\",\"extra\":");
    for (int i = 0; i < 10000; i++) deep[k++] = '[';
    for (int i = 0; i < 10000; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    check_bad(0, deep, NULL, NULL);

    /* every truncation of a valid body fails cleanly */
    const char *good = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"h\xc3\xa9llo\"}]}],"
                       "\"max_tokens\":5,\"logprobs\":true,\"top_logprobs\":3,\"stop\":[\"x\"]}";
    size_t n = strlen(good);
    int failed = 0;
    for (size_t cut = 0; cut < n; cut++) {
        dl_api_request r;
        dl_api_error e;
        if (dl_api_parse_request(&r, 1, good, cut, &e) == 0) {
            dl_api_request_free(&r);
            continue;
        }
        failed += e.status == 400;
    }
    CHECK_MSG(failed == (int)n, "%d of %zu truncations failed with 400", failed, n);
    dl_api_request r;
    dl_api_error e;
    CHECK(dl_api_parse_request(&r, 1, good, n, &e) == 0);
    dl_api_request_free(&r);
}

static void test_chat(void) {
    dl_api_request r;
    dl_api_error e;
    CHECK(parse(&r, 1,
                "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi \"},{\"type\":\"text\",\"text\":\"there\"}]},"
                "{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\",\"content\":\"<|endoftext|>\"}],"
                "\"logprobs\":true,\"top_logprobs\":2,\"max_completion_tokens\":9}",
                &e) == 0);
    const char *want = "### System:\nbe brief\n\n### User:\nhi there\n\n### Assistant:\n\n\n### User:\n<|endoftext|>\n\n"
                       "### Assistant:\n";
    CHECK_MSG(r.n_prompts == 1 && !strcmp(r.prompts[0].text, want), "rendered: [%s]", r.prompts[0].text);
    CHECK(r.logprobs == 2 && r.max_tokens == 9 && r.chat == 1);
    dl_api_request_free(&r);
    CHECK(parse(&r, 1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", &e) == 0);
    CHECK(r.logprobs == 0);
    dl_api_request_free(&r);
    CHECK(parse(&r, 1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":false}", &e) == 0);
    CHECK(r.logprobs == -1);
    dl_api_request_free(&r);

    check_bad(1, "{\"model\":\"m\"}", "messages", "required");
    check_bad(1, "{\"model\":\"m\",\"messages\":{}}", "messages", "list");
    check_bad(1, "{\"model\":\"m\",\"messages\":[]}", "messages", "at least one");
    check_bad(1, "{\"model\":\"m\",\"messages\":[3]}", "messages[0]", "object");
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", NULL);
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].role", "tools");
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\"}]}",
              "messages[1].content", NULL);
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
              "messages[0].content[0]", "text"); /* the part itself is named */
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
              "top_logprobs", "logprobs");
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}",
              "top_logprobs", NULL);
    check_bad(1, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":3}", "logprobs", "boolean");
}

static void test_utf8(void) {
    struct { const char *in; size_t n; const char *out; } cases[] = {
        {"abc", 3, "abc"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\xf0\x9f\x98\x80!", 5, "\xf0\x9f\x98\x80!"},
        {"a\x80" "b", 3, "a\xef\xbf\xbd" "b"},             /* lone continuation byte */
        {"\xc0\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd"},        /* overlong NUL */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* above U+10FFFF */
        {"x\xe2\x82", 3, "x\xef\xbf\xbd"},                 /* truncated at the end: one replacement */
        {"\xff", 1, "\xef\xbf\xbd"},
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dl_buf b = {0};
        CHECK(dl_utf8_repair(&b, cases[i].in, cases[i].n) == 0);
        CHECK_MSG(b.len == strlen(cases[i].out) && !memcmp(b.data, cases[i].out, b.len), "case %zu", i);
        dl_buf_free(&b);
    }
    CHECK(dl_utf8_incomplete_tail("ab", 2) == 0);
    CHECK(dl_utf8_incomplete_tail("a\xe2\x82", 3) == 2);
    CHECK(dl_utf8_incomplete_tail("a\xf0", 2) == 1);
    CHECK(dl_utf8_incomplete_tail("\xf0\x9f\x98", 3) == 3);
    CHECK(dl_utf8_incomplete_tail("\xf0\x9f\x98\x80", 4) == 0);
    CHECK(dl_utf8_incomplete_tail("a\x80", 2) == 0); /* invalid, not incomplete: nothing to wait for */
    CHECK(dl_utf8_incomplete_tail("\xc0", 1) == 0);
}

/* Parses and frees a malloc'ed JSON text. */
static json_t *load(char *s) {
    json_error_t je;
    json_t *v = s ? json_loads(s, 0, &je) : NULL;
    CHECK_MSG(v != NULL, "not JSON: %s", s ? s : "(null)");
    free(s);
    return v;
}

static void fill_choice(dl_api_choice *c, const dl_tokenizer *tok, const char *const *texts, int n, int n_top) {
    memset(c, 0, sizeof *c);
    c->n_top = n_top;
    c->cap = (size_t)n;
    c->logprob = calloc((size_t)n, sizeof(float));
    c->start = calloc((size_t)n, sizeof(size_t));
    c->top = calloc((size_t)n * (size_t)(n_top ? n_top : 1), sizeof(dl_api_top));
    for (int k = 0; k < n; k++) {
        int id = dl_tok_id(tok, texts[k]);
        dl_ivec_push(&c->tokens, id);
        c->logprob[k] = -0.25f * (float)(k + 1);
        c->start[k] = c->text.len;
        dl_buf_append(&c->text, texts[k], strlen(texts[k]));
        for (int j = 0; j < n_top; j++) c->top[k * n_top + j] = (dl_api_top){.id = j == 0 ? id : 'z', .logprob = -0.1f * (float)(j + 1)};
    }
    c->out_tokens = (size_t)n;
    c->final_len = c->text.len;
    c->done = 1;
    c->finish_reason = "length";
}

static void test_responses(void) {
    const char *corpus = "the cat sat on the mat and the dog sat on the log";
    dl_error err;
    dl_tokenizer *tok = dl_tok_train(corpus, strlen(corpus), 270, NULL, &err);
    const char *texts[3] = {"t", "h", "\xc3"}; /* the last is half a character */
    dl_api_choice c;
    fill_choice(&c, tok, texts, 3, 2);
    CHECK(c.tokens.data[2] == 0xc3);
    dl_api_request r = {.chat = 0, .logprobs = 2, .n = 1};
    dl_api_meta meta = {.id = "cmpl-1", .created = 1700000000, .model = "tiny", .prompt_tokens = 4, .completion_tokens = 3};

    json_t *o = load(dl_api_response_body(&r, &meta, &c, 1, tok));
    json_t *ch = json_array_get(json_object_get(o, "choices"), 0), *lp = json_object_get(ch, "logprobs");
    CHECK(!strcmp(json_string_value(json_object_get(o, "object")), "text_completion"));
    CHECK(!strcmp(json_string_value(json_object_get(ch, "text")), "th\xef\xbf\xbd"));
    CHECK(json_array_size(json_object_get(lp, "tokens")) == 3 && json_array_size(json_object_get(lp, "top_logprobs")) == 3);
    CHECK_CLOSE(json_real_value(json_array_get(json_object_get(lp, "token_logprobs"), 1)), -0.5, 1e-6, 0);
    CHECK(json_integer_value(json_array_get(json_object_get(lp, "text_offset"), 2)) == 2);
    CHECK(json_object_size(json_array_get(json_object_get(lp, "top_logprobs"), 0)) == 2);
    CHECK(!strcmp(json_string_value(json_object_get(ch, "finish_reason")), "length"));
    json_t *u = json_object_get(o, "usage");
    CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == 4 && json_integer_value(json_object_get(u, "total_tokens")) == 7);
    json_decref(o);

    r.chat = 1;
    o = load(dl_api_response_body(&r, &meta, &c, 1, tok));
    ch = json_array_get(json_object_get(o, "choices"), 0);
    json_t *content = json_object_get(json_object_get(ch, "logprobs"), "content"), *t2 = json_array_get(content, 2);
    CHECK(!strcmp(json_string_value(json_object_get(o, "object")), "chat.completion"));
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(ch, "message"), "role")), "assistant"));
    CHECK(json_array_size(content) == 3);
    /* the raw byte of the half character survives in "bytes" */
    CHECK(json_array_size(json_object_get(t2, "bytes")) == 1 && json_integer_value(json_array_get(json_object_get(t2, "bytes"), 0)) == 0xc3);
    CHECK(json_array_size(json_object_get(t2, "top_logprobs")) == 2);
    json_decref(o);

    /* stream chunks: one SSE event each, chat's first delta carries the role */
    dl_buf sse = {0};
    CHECK(dl_api_stream_chunk(&sse, &r, &meta, &c, 0, 0, 2, 0, 2, NULL, 1, tok) == 0);
    CHECK(!strncmp(sse.data, "data: {", 7) && sse.len > 2 && !strcmp(sse.data + sse.len - 2, "\n\n"));
    o = load(strndup(sse.data + 6, sse.len - 8));
    ch = json_array_get(json_object_get(o, "choices"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(o, "object")), "chat.completion.chunk"));
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(ch, "delta"), "role")), "assistant"));
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(ch, "delta"), "content")), "th"));
    CHECK(json_is_null(json_object_get(ch, "finish_reason")));
    json_decref(o);
    sse.len = 0;
    CHECK(dl_api_stream_usage(&sse, &r, &meta) == 0);
    o = load(strndup(sse.data + 6, sse.len - 8));
    CHECK(json_array_size(json_object_get(o, "choices")) == 0 && json_object_get(o, "usage"));
    json_decref(o);
    dl_buf_free(&sse);

    dl_api_error e;
    dl_api_fail(&e, 429, "rate_limit_error", "rate_limit_exceeded", NULL, "slow down \xff");
    o = load(dl_api_error_body(&e));
    json_t *eo = json_object_get(o, "error");
    CHECK(json_object_size(eo) == 4 && json_is_null(json_object_get(eo, "param")));
    CHECK(!strcmp(json_string_value(json_object_get(eo, "code")), "rate_limit_exceeded"));
    json_decref(o);
    o = load(dl_api_models_body("tiny", 5));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(o, "data"), 0), "id")), "tiny"));
    json_decref(o);
    dl_api_choice_free(&c);
    dl_tok_free(tok);
}

int main(void) {
    test_completions_fields();
    test_prompt_forms();
    test_bad_parameters();
    test_malformed_json();
    test_chat();
    test_utf8();
    test_responses();
    TEST_MAIN_END();
}
