/* Response bodies: good ones become OUT lines with the endpoint's logprobs kept byte for byte;
 * malformed ones (truncated, wrong types, missing choices, huge numbers, non-UTF-8, deep
 * nesting) become a clear error and leave the line untouched. */
#include "harvest/internal.h"
#include "test.h"

static hv_prompt prompt_of(const char *id, const char *text) {
    hv_prompt p = {.id = json_string(id), .input = json_string(text), .line = 1};
    p.key = hv_id_key(p.id);
    return p;
}

static void prompt_free(hv_prompt *p) {
    json_decref(p->id);
    json_decref(p->input);
    free(p->key);
}

static const char COMPLETION[] =
    "{\"id\":\"cmpl-9\",\"object\":\"text_completion\",\"model\":\"teacher\",\n"
    " \"choices\": [ {\"index\": 0, \"text\": \" world\", \"finish_reason\": \"length\",\n"
    "   \"logprobs\": {\n     \"tokens\": [\" wor\", \"ld\"],\n     \"token_logprobs\": [-0.1, -1.25e-3],\n"
    "     \"top_logprobs\": [{\" wor\": -0.1, \" w\": -2.30258509}, {\"ld\": -1.25e-3, \"m\": -7}],\n"
    "     \"text_offset\": [5, 9]\n   }} ],\n"
    " \"usage\": {\"prompt_tokens\": 2, \"completion_tokens\": 2, \"total_tokens\": 4}}";

static const char CHAT[] =
    "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"h\\u00e9\"},"
    "\"finish_reason\":\"stop\",\"logprobs\":{\"content\":[{\"token\":\"h\",\"logprob\":-0.5,\"bytes\":[104],"
    "\"top_logprobs\":[{\"token\":\"h\",\"logprob\":-0.5,\"bytes\":[104]},{\"token\":\"x\",\"logprob\":-1.0,"
    "\"bytes\":null}]},{\"token\":\"\\u00e9\",\"logprob\":-0.75,\"bytes\":[195,169],\"top_logprobs\":[]}],"
    "\"refusal\":null}}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9},"
    "\"model\":\"teacher\"}";

static json_t *parse_line(const dl_buf *line) {
    CHECK(line->len > 0 && line->data[line->len - 1] == '\n');
    CHECK(memchr(line->data, '\n', line->len) == line->data + line->len - 1); /* one line */
    return json_loadb(line->data, line->len, 0, NULL);
}

static void test_completion_line(void) {
    hv_prompt p = prompt_of("q1", "hello");
    dl_buf line = {0};
    dl_error err;
    long ct = -1;
    CHECK(hv_response_line(COMPLETION, strlen(COMPLETION), 0, 1, &p, &line, &ct, &err) == 0);
    CHECK(ct == 2);
    json_t *o = parse_line(&line);
    CHECK(o != NULL);
    CHECK(strncmp(line.data, "{\"id\":\"q1\",", 11) == 0); /* resume reads the id from the front */
    CHECK(!strcmp(json_string_value(json_object_get(o, "prompt")), "hello"));
    CHECK(!strcmp(json_string_value(json_object_get(o, "completion")), " world"));
    CHECK(!strcmp(json_string_value(json_object_get(o, "finish_reason")), "length"));
    CHECK(!strcmp(json_string_value(json_object_get(o, "model")), "teacher"));
    CHECK(json_integer_value(json_object_get(json_object_get(o, "usage"), "total_tokens")) == 4);
    json_t *lp = json_object_get(o, "logprobs");
    CHECK(json_array_size(json_object_get(lp, "tokens")) == 2);
    CHECK(json_integer_value(json_array_get(json_object_get(lp, "text_offset"), 1)) == 9);
    /* the endpoint's digits, not a double's: */
    CHECK(strstr(line.data, "\"token_logprobs\":[-0.1,-1.25e-3]") != NULL);
    CHECK(strstr(line.data, "{\" wor\":-0.1,\" w\":-2.30258509}") != NULL);
    json_decref(o);
    /* without logprobs asked, none are written */
    line.len = 0;
    CHECK(hv_response_line(COMPLETION, strlen(COMPLETION), 0, 0, &p, &line, &ct, &err) == 0);
    o = parse_line(&line);
    CHECK(o && !json_object_get(o, "logprobs") && json_object_get(o, "completion"));
    json_decref(o);
    dl_buf_free(&line);
    prompt_free(&p);
}

static void test_chat_line(void) {
    hv_prompt p = {.id = json_integer(42), .input = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL)};
    p.key = hv_id_key(p.id);
    dl_buf line = {0};
    dl_error err;
    long ct;
    CHECK(hv_response_line(CHAT, strlen(CHAT), 1, 1, &p, &line, &ct, &err) == 0);
    json_t *o = parse_line(&line);
    CHECK(o != NULL);
    CHECK(json_integer_value(json_object_get(o, "id")) == 42);
    CHECK(json_array_size(json_object_get(o, "messages")) == 1);
    CHECK(!json_object_get(o, "prompt"));
    CHECK(!strcmp(json_string_value(json_object_get(o, "completion")), "h\xc3\xa9"));
    CHECK(!strcmp(json_string_value(json_object_get(o, "finish_reason")), "stop"));
    /* chat logprobs as sent, escapes and all */
    CHECK(strstr(line.data, "{\"token\":\"\\u00e9\",\"logprob\":-0.75,\"bytes\":[195,169],\"top_logprobs\":[]}") != NULL);
    CHECK(strstr(line.data, "\"logprob\":-1.0,") != NULL);
    json_t *c1 = json_array_get(json_object_get(json_object_get(o, "logprobs"), "content"), 1);
    CHECK(c1 && !strcmp(json_string_value(json_object_get(c1, "token")), "\xc3\xa9"));
    json_decref(o);
    dl_buf_free(&line);
    prompt_free(&p);
}

/* A member name written with an escape defeats the byte scan; the fallback keeps the values. */
static void test_escaped_key_fallback(void) {
    const char *body = "{\"choic\\u0065s\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[\"a\"],"
                       "\"token_logprobs\":[-0.3],\"top_logprobs\":null,\"text_offset\":[0]}}]}";
    hv_prompt p = prompt_of("e", "x");
    dl_buf line = {0};
    dl_error err;
    long ct;
    CHECK(hv_response_line(body, strlen(body), 0, 1, &p, &line, &ct, &err) == 0);
    json_t *o = parse_line(&line);
    json_t *lp = json_object_get(o, "logprobs");
    CHECK(json_real_value(json_array_get(json_object_get(lp, "token_logprobs"), 0)) == -0.3);
    CHECK(json_is_null(json_object_get(lp, "top_logprobs")));
    json_decref(o);
    dl_buf_free(&line);
    prompt_free(&p);
}

/* A model may emit byte 0 as a token; "\u0000" is valid JSON and must come through whole. */
static void test_nul_in_text(void) {
    const char *body = "{\"choices\":[{\"text\":\"a\\u0000b\",\"finish_reason\":null}]}";
    hv_prompt p = prompt_of("z", "x");
    dl_buf line = {0};
    dl_error err = {{0}};
    long ct;
    CHECK_MSG(hv_response_line(body, strlen(body), 0, 0, &p, &line, &ct, &err) == 0, "%s", err.msg);
    CHECK(line.data && strstr(line.data, "\"completion\":\"a\\u0000b\",\"finish_reason\":null,\"usage\":null}") != NULL);
    dl_buf_free(&line);
    prompt_free(&p);
}

/* Some servers (llama.cpp's) answer /v1/completions with chat-shaped logprobs: kept as sent. */
static void test_chat_shape_on_completions(void) {
    const char *body = "{\"choices\":[{\"text\":\"h\",\"logprobs\":{\"content\":[{\"id\":104,\"token\":\"h\","
                       "\"logprob\":-0.5,\"bytes\":[104],\"top_logprobs\":[{\"id\":104,\"token\":\"h\",\"logprob\":-0.5}]}]}}]}";
    hv_prompt p = prompt_of("s", "x");
    dl_buf line = {0};
    dl_error err = {{0}};
    long ct;
    CHECK_MSG(hv_response_line(body, strlen(body), 0, 1, &p, &line, &ct, &err) == 0, "%s", err.msg);
    CHECK(line.data && strstr(line.data, "\"logprobs\":{\"content\":[{\"id\":104,\"token\":\"h\",") != NULL);
    dl_buf_free(&line);
    prompt_free(&p);
}

typedef struct { const char *body; int chat, want_lp; const char *expect; } bad_case;

static const bad_case BAD[] = {
    {"", 0, 0, "empty"},
    {"{\"choices\":[{\"text\":\"cut", 0, 0, "not valid JSON"},
    {"[1,2]", 0, 0, "must be a JSON object, got an array"},
    {"\"text\"", 0, 0, "not valid JSON"},
    {"{}", 0, 0, "no 'choices'"},
    {"{\"choices\":{}}", 0, 0, "'choices' must be an array, got an object"},
    {"{\"choices\":[]}", 0, 0, "'choices' is empty"},
    {"{\"choices\":[1]}", 0, 0, "choices[0] must be an object, got an integer"},
    {"{\"choices\":[{\"text\":5}]}", 0, 0, "choices[0].text must be a string"},
    {"{\"choices\":[{}]}", 0, 0, "choices[0].text must be a string"},
    {"{\"choices\":[{\"message\":{\"content\":null}}]}", 1, 0, "choices[0].message.content must be a string"},
    {"{\"choices\":[{\"message\":\"hi\"}]}", 1, 0, "choices[0].message must be an object"},
    {"{\"choices\":[{\"text\":\"a\",\"finish_reason\":3}]}", 0, 0, "finish_reason must be a string or null"},
    {"{\"choices\":[{\"text\":\"a\"}],\"usage\":\"x\"}", 0, 0, "'usage' must be an object, got a string"},
    {"{\"created\":1e999,\"choices\":[{\"text\":\"a\"}]}", 0, 0, "not valid JSON"},
    {"{\"created\":123456789012345678901234567890,\"choices\":[{\"text\":\"a\"}]}", 0, 0, "not valid JSON"},
    {"{\"choices\":[{\"text\":\"\xff\xfe\"}]}", 0, 0, "not valid JSON"},
    {"{\"choices\":[{\"text\":\"\xc3\"}]}", 0, 0, "not valid JSON"},
    {"{\"choices\":[],\"choices\":[]}", 0, 0, "not valid JSON"},
    {"{\"error\":{\"message\":\"quota exceeded\",\"type\":\"insufficient_quota\"}}", 0, 0,
     "answered an error: quota exceeded"},
    {"{\"choices\":[{\"text\":\"a\"}]}", 0, 1, "choices[0].logprobs is missing"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":null}]}", 0, 1, "choices[0].logprobs is null"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":[]}]}", 0, 1, "choices[0].logprobs must be an object, got an array"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":\"a\"}}]}", 0, 1, "logprobs.tokens must be an array"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[\"a\"],\"token_logprobs\":[]}}]}", 0, 1,
     "token_logprobs must be an array as long as tokens (1)"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[7],\"token_logprobs\":[-1]}}]}", 0, 1,
     "logprobs.tokens[0] must be a string"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[\"a\"],\"token_logprobs\":[\"-1\"]}}]}", 0, 1,
     "token_logprobs[0] must be a number"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[\"a\"],\"token_logprobs\":[-1],"
     "\"top_logprobs\":[{\"a\":\"-1\"}]}}]}",
     0, 1, "top_logprobs[0] must map tokens to numbers"},
    {"{\"choices\":[{\"text\":\"a\",\"logprobs\":{\"tokens\":[\"a\"],\"token_logprobs\":[-1],"
     "\"text_offset\":[0.5]}}]}",
     0, 1, "text_offset[0] must be an integer"},
    {"{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":{\"content\":{}}}]}", 1, 1,
     "logprobs.content must be an array"},
    {"{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":\"x\"}]}}]}",
     1, 1, "content[0].logprob must be a number"},
    {"{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-1}]}}]}",
     1, 1, "content[0].top_logprobs must be an array"},
    {"{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-1,"
     "\"top_logprobs\":[{\"token\":\"a\",\"logprob\":-1},{\"token\":5,\"logprob\":-2}]}]}}]}",
     1, 1, "content[0].top_logprobs[1].token must be a string"},
    {"{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-1,"
     "\"bytes\":[300],\"top_logprobs\":[]}]}}]}",
     1, 1, "content[0].bytes[0] must be an integer in 0..255"},
};

static void test_malformed(void) {
    hv_prompt p = prompt_of("m", "x");
    dl_buf line = {0};
    dl_buf_append(&line, "kept", 4);
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        dl_error err = {{0}};
        long ct = 5;
        int rc = hv_response_line(BAD[i].body, strlen(BAD[i].body), BAD[i].chat, BAD[i].want_lp, &p, &line, &ct, &err);
        CHECK_MSG(rc == -1 && strstr(err.msg, BAD[i].expect), "case %zu: rc %d, error '%s', expected '%s'", i, rc,
                  err.msg, BAD[i].expect);
        CHECK_MSG(line.len == 4 && !strcmp(line.data, "kept"), "case %zu touched the line", i);
    }
    /* deep nesting and a long body of garbage */
    size_t n = 200000;
    char *deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = 0;
    dl_error err;
    long ct;
    CHECK(hv_response_line(deep, n, 0, 1, &p, &line, &ct, &err) == -1 && strstr(err.msg, "not valid JSON"));
    for (size_t i = 0; i < n; i++) deep[i] = (char)(i * 131 + 7);
    CHECK(hv_response_line(deep, n, 1, 1, &p, &line, &ct, &err) == -1);
    free(deep);
    dl_buf_free(&line);
    prompt_free(&p);
}

static void test_spans(void) {
    const char *s = "{ \"a\" : \"x \\\" } y\" , \"b\":[ 1, {\"c\": [2,3]} ],\"n\": -1.5e3 }";
    size_t n = strlen(s), at, end;
    CHECK(hv_span_member(s, n, 0, "b", &at) == 0 && s[at] == '[');
    CHECK(hv_span_end(s, n, at, &end) == 0 && s[end - 1] == ']' && s[end] == ',');
    dl_buf b = {0};
    CHECK(hv_span_append_compact(&b, s, at, end) == 0 && !strcmp(b.data, "[1,{\"c\":[2,3]}]"));
    CHECK(hv_span_member(s, n, 0, "a", &at) == 0 && hv_span_end(s, n, at, &end) == 0);
    b.len = 0;
    CHECK(hv_span_append_compact(&b, s, at, end) == 0 && !strcmp(b.data, "\"x \\\" } y\"")); /* spaces kept */
    CHECK(hv_span_member(s, n, 0, "n", &at) == 0 && hv_span_end(s, n, at, &end) == 0 && end - at == 6);
    CHECK(hv_span_member(s, n, 0, "c", &at) == -1); /* only direct members */
    CHECK(hv_span_member(s, n, 0, "x", &at) == -1);
    CHECK(hv_span_first("[ ]", 3, 0, &at) == -1);
    CHECK(hv_span_first("[ 7]", 4, 0, &at) == 0 && at == 2);
    /* cut text: never past the end */
    CHECK(hv_span_end("[1,[2", 5, 0, &end) == -1);
    CHECK(hv_span_end("\"abc\\", 5, 0, &end) == -1);
    CHECK(hv_span_member("{\"k\"", 4, 0, "k", &at) == -1);
    CHECK(hv_span_member("{\"k\":", 5, 0, "k", &at) == -1);
    dl_buf_free(&b);
}

static void test_error_text(void) {
    char out[64];
    const char *e = "{\"error\":{\"message\":\"Invalid API key\",\"type\":\"invalid_request_error\"}}";
    hv_error_text(e, strlen(e), out, sizeof out);
    CHECK(!strcmp(out, "Invalid API key"));
    hv_error_text("{\"error\":\"nope\"}", 16, out, sizeof out);
    CHECK(!strcmp(out, "nope"));
    hv_error_text("<html>\x1b[31m\xff</html>", 19, out, sizeof out);
    CHECK(!strcmp(out, "<html>?[31m?</html>"));
    hv_error_text("", 0, out, sizeof out);
    CHECK(!strcmp(out, "(empty body)"));
    hv_error_text(NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "(empty body)"));
    /* a cut through a two-byte character drops its first byte */
    const char *u = "{\"error\":{\"message\":\"aaaa\\u00e9\"}}";
    hv_error_text(u, strlen(u), out, 6);
    CHECK(!strcmp(out, "aaaa"));
    char big[300];
    memset(big, 'z', sizeof big);
    hv_error_text(big, sizeof big, out, sizeof out);
    CHECK(strlen(out) == sizeof out - 1);
}

int main(void) {
    test_completion_line();
    test_chat_line();
    test_escaped_key_fallback();
    test_nul_in_text();
    test_chat_shape_on_completions();
    test_malformed();
    test_spans();
    test_error_text();
    TEST_MAIN_END();
}
