/* What goes out: the prompts file (good lines and every kind of bad one), request bodies, URLs. */
#include "harvest/internal.h"
#include "test.h"

static const char *tmp;

static const char *write_file(const char *name, const char *text, size_t n) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    fwrite(text, 1, n, f);
    fclose(f);
    return path;
}

static void test_prompts_good(void) {
    const char *text = "{\"id\": \"a\", \"prompt\": \"one\"}\n"
                       "\n"
                       "   \n"
                       "{\"prompt\": \"line four\", \"extra\": [1, 2]}\n"
                       "{\"id\": 9, \"prompt\": \"nine\"}\n"
                       "{\"id\": \"9\", \"prompt\": \"string nine\"}"; /* no final newline */
    hv_prompts ps;
    dl_error err = {{0}};
    CHECK_MSG(hv_prompts_load(&ps, write_file("good.jsonl", text, strlen(text)), 0, &err) == 0, "%s", err.msg);
    CHECK(ps.n == 4);
    if (ps.n == 4) {
        CHECK(!strcmp(ps.items[0].key, "\"a\"") && ps.items[0].line == 1);
        CHECK(!strcmp(json_string_value(ps.items[0].input), "one"));
        CHECK(!strcmp(ps.items[1].key, "4") && json_integer_value(ps.items[1].id) == 4); /* the line number */
        CHECK(!strcmp(ps.items[2].key, "9") && !strcmp(ps.items[3].key, "\"9\"")); /* 9 and "9" differ */
    }
    hv_prompts_free(&ps);
    /* chat: messages kept, a lone prompt becomes one user message */
    text = "{\"id\": 1, \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
           " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]}]}\n"
           "{\"id\": 2, \"prompt\": \"hello\"}\n";
    CHECK(hv_prompts_load(&ps, write_file("chat.jsonl", text, strlen(text)), 1, &err) == 0);
    CHECK(ps.n == 2);
    if (ps.n == 2) {
        CHECK(json_array_size(ps.items[0].input) == 2);
        json_t *m = json_array_get(ps.items[1].input, 0);
        CHECK(json_array_size(ps.items[1].input) == 1);
        CHECK(!strcmp(json_string_value(json_object_get(m, "role")), "user"));
        CHECK(!strcmp(json_string_value(json_object_get(m, "content")), "hello"));
    }
    hv_prompts_free(&ps);
}

typedef struct { const char *text; int chat; const char *expect; } bad_prompts;

static const bad_prompts BAD[] = {
    {"{\"prompt\": \"ok\"}\n{\"prompt\": \"cut\n", 0, "bad.jsonl:2: invalid JSON"},
    {"[\"prompt\"]\n", 0, "bad.jsonl:1: expected a JSON object"},
    {"{\"prompt\": 5}\n", 0, ":1: 'prompt' must be a string"},
    {"{\"id\": 1}\n", 0, ":1: 'prompt' is missing"},
    {"{\"id\": true, \"prompt\": \"x\"}\n", 0, "'id' must be a string or a number"},
    {"{\"id\": \"\", \"prompt\": \"x\"}\n", 0, "'id' is empty"},
    {"{\"id\": [1], \"prompt\": \"x\"}\n", 0, "'id' must be a string or a number"},
    {"{\"id\": \"a\", \"prompt\": \"x\"}\n\n{\"id\": \"a\", \"prompt\": \"y\"}\n", 0,
     "bad.jsonl:3: id \"a\" repeats the id of line 1"},
    {"{\"prompt\": \"x\"}\n{\"id\": 1, \"prompt\": \"y\"}\n", 0, ":2: id 1 repeats the id of line 1"},
    {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n", 0, "chat prompts need --chat"},
    {"{\"prompt\": \"x\", \"messages\": []}\n", 1, "has both 'prompt' and 'messages'"},
    {"{\"messages\": []}\n", 1, "'messages' must be a non-empty array"},
    {"{\"messages\": [\"hi\"]}\n", 1, "messages[0] must be an object"},
    {"{\"messages\": [{\"content\": \"hi\"}]}\n", 1, "messages[0].role must be a string"},
    {"{\"messages\": [{\"role\": \"user\", \"content\": 3}]}\n", 1, "messages[0].content must be a string or a list"},
    {"{\"id\": 1}\n", 1, "'messages' is missing"},
    {"{\"prompt\": \"\xff\"}\n", 0, "bad.jsonl:1: invalid JSON"},
    {"{\"prompt\": \"a\", \"prompt\": \"b\"}\n", 0, "invalid JSON"},
    {"{\"prompt\": 1e999}\n", 0, "invalid JSON"},
    {"\n\n  \n", 0, "no prompts"},
    {"", 0, "no prompts"},
};

static void test_prompts_bad(void) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        hv_prompts ps;
        dl_error err = {{0}};
        int rc = hv_prompts_load(&ps, write_file("bad.jsonl", BAD[i].text, strlen(BAD[i].text)), BAD[i].chat, &err);
        CHECK_MSG(rc == -1 && strstr(err.msg, BAD[i].expect), "case %zu: rc %d error '%s' expected '%s'", i, rc,
                  err.msg, BAD[i].expect);
        CHECK(ps.n == 0 && ps.items == NULL);
    }
    /* a NUL byte inside a line */
    hv_prompts ps;
    dl_error err;
    CHECK(hv_prompts_load(&ps, write_file("nul.jsonl", "{\"prompt\": \"a\0b\"}\n", 18), 0, &err) == -1);
    CHECK(strstr(err.msg, "nul.jsonl:1:") != NULL);
    CHECK(hv_prompts_load(&ps, "/nonexistent/prompts.jsonl", 0, &err) == -1 && strstr(err.msg, "cannot open"));
}

static void test_request_body(void) {
    dl_harvest_opts o;
    dl_harvest_opts_default(&o);
    o.max_tokens = 17;
    o.temperature = 0.7;
    o.top_logprobs = 3;
    json_t *prompt = json_string("Once");
    char *s = hv_request_body(&o, "teacher", prompt, 1);
    CHECK(s && strstr(s, "\"temperature\":0.7") != NULL);
    json_t *b = json_loads(s, 0, NULL);
    CHECK(!strcmp(json_string_value(json_object_get(b, "model")), "teacher"));
    CHECK(!strcmp(json_string_value(json_object_get(b, "prompt")), "Once"));
    CHECK(json_integer_value(json_object_get(b, "max_tokens")) == 17);
    CHECK(json_integer_value(json_object_get(b, "logprobs")) == 3);
    CHECK(!json_object_get(b, "messages") && !json_object_get(b, "top_logprobs"));
    CHECK(!json_object_get(b, "seed")); /* none unless asked */
    json_decref(b);
    free(s);
    o.top_logprobs = -1;
    o.seed = 42;
    s = hv_request_body(&o, "teacher", prompt, 1);
    b = json_loads(s, 0, NULL);
    CHECK(b && !json_object_get(b, "logprobs"));
    CHECK(json_integer_value(json_object_get(b, "seed")) == 43); /* seed + line 1 */
    json_decref(b);
    free(s);
    s = hv_request_body(&o, "teacher", prompt, 7);
    b = json_loads(s, 0, NULL);
    CHECK(b && json_integer_value(json_object_get(b, "seed")) == 49); /* another line, another stream */
    json_decref(b);
    free(s);
    json_decref(prompt);
    o.chat = 1;
    o.top_logprobs = 0;
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);
    s = hv_request_body(&o, "m", msgs, 1);
    b = json_loads(s, 0, NULL);
    CHECK(json_is_true(json_object_get(b, "logprobs")));
    CHECK(json_is_integer(json_object_get(b, "top_logprobs")) && json_integer_value(json_object_get(b, "top_logprobs")) == 0);
    CHECK(json_equal(json_object_get(b, "messages"), msgs));
    CHECK(!json_object_get(b, "prompt"));
    json_decref(b);
    json_decref(msgs);
    free(s);
}

static void test_urls(void) {
    char *post, *models;
    dl_error err;
    CHECK(hv_endpoint_urls("http://127.0.0.1:8080", 0, &post, &models, &err) == 0);
    CHECK(!strcmp(post, "http://127.0.0.1:8080/v1/completions") && !strcmp(models, "http://127.0.0.1:8080/v1/models"));
    free(post), free(models);
    CHECK(hv_endpoint_urls("https://api.example.com/v1/", 1, &post, &models, &err) == 0);
    CHECK(!strcmp(post, "https://api.example.com/v1/chat/completions"));
    CHECK(!strcmp(models, "https://api.example.com/v1/models"));
    free(post), free(models);
    CHECK(hv_endpoint_urls("http://h/openai//", 1, &post, &models, &err) == 0);
    CHECK(!strcmp(post, "http://h/openai/v1/chat/completions"));
    free(post), free(models);
    CHECK(hv_endpoint_urls("ftp://h", 0, &post, &models, &err) == -1 && strstr(err.msg, "http://"));
    CHECK(post == NULL && models == NULL);
    CHECK(hv_endpoint_urls("127.0.0.1:8080", 0, &post, &models, &err) == -1);
    CHECK(hv_endpoint_urls("http://h/a b", 0, &post, &models, &err) == -1 && strstr(err.msg, "space"));
    CHECK(hv_endpoint_urls("http://h/\r\nX: y", 0, &post, &models, &err) == -1);
}

int main(void) {
    tmp = test_tmpdir("harvest-inputs");
    test_prompts_good();
    test_prompts_bad();
    test_request_body();
    test_urls();
    TEST_MAIN_END();
}
