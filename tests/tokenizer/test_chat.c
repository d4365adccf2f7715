/* The chat template: a conversation renders to the text the template describes (written out by
 * hand below from the description in tokenizer.h); malformed messages are refused with the field
 * named; the message limit holds; nothing is read out of bounds on hostile shapes. */
#include "test.h"
#include "tokenizer/tokenizer.h"
#include <jansson.h>

static int render(const char *json, int max, dl_buf *out, char *param, dl_error *err) {
    json_error_t je;
    json_t *m = json_loads(json, JSON_DECODE_ANY, &je);
    if (!m) {
        fprintf(stderr, "bad fixture %s: %s\n", json, je.text);
        exit(2);
    }
    int rc = dl_chat_render(m, max, out, param, err);
    json_decref(m);
    return rc;
}

static void test_rendering(void) {
    dl_buf out = {0};
    char param[DL_CHAT_PARAM_MAX];
    dl_error err;
    const char *conv = "[{\"role\": \"system\", \"content\": \"Be brief.\"},"
                       " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi \"},"
                       "                                  {\"type\": \"text\", \"text\": \"there\"}]},"
                       " {\"role\": \"assistant\", \"content\": null},"
                       " {\"role\": \"developer\", \"content\": \"\"},"
                       " {\"role\": \"user\", \"content\": \"caf\\u00e9\"}]";
    CHECK(render(conv, 0, &out, param, &err) == 0);
    const char *want = "### System:\nBe brief.\n\n"
                       "### User:\nHi there\n\n"
                       "### Assistant:\n\n\n"
                       "### System:\n\n\n"
                       "### User:\ncaf\xc3\xa9\n\n"
                       "### Assistant:\n";
    CHECK_MSG(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0, "got [%.*s]", (int)out.len, out.data);
    /* appends: a second call adds after the first text */
    size_t before = out.len;
    CHECK(render("[{\"role\": \"user\", \"content\": \"x\"}]", 0, &out, param, &err) == 0);
    CHECK(out.len == before + strlen("### User:\nx\n\n### Assistant:\n"));
    CHECK(memcmp(out.data + before, "### User:\nx\n\n### Assistant:\n", out.len - before) == 0);
    dl_buf_free(&out);
}

static void test_errors(void) {
    static const struct {
        const char *json, *param, *says;
    } bad[] = {
        {"{\"role\": \"user\"}", "messages", "must be a list of messages, got an object"},
        {"\"hi\"", "messages", "got a string"},
        {"[]", "messages", "at least one message"},
        {"[5]", "messages[0]", "'messages[0]' must be an object, got an integer"},
        {"[{\"content\": \"x\"}]", "messages[0].role", "must be a string, got nothing"},
        {"[{\"role\": 1, \"content\": \"x\"}]", "messages[0].role", "must be a string"},
        {"[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"tool\", \"content\": \"x\"}]", "messages[1].role",
         "system, developer, user or assistant"},
        {"[{\"role\": \"user\"}]", "messages[0].content", "string or a list of text parts, got nothing"},
        {"[{\"role\": \"user\", \"content\": null}]", "messages[0].content", "got null"},
        {"[{\"role\": \"user\", \"content\": 7}]", "messages[0].content", "got an integer"},
        {"[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"text\": \"x\"}]}]", "messages[0].content[0]",
         "only parts of type \"text\""},
        {"[{\"role\": \"user\", \"content\": [\"x\"]}]", "messages[0].content[0]", "only parts of type"},
        {"[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 3}]}]", "messages[0].content[0]",
         "'messages[0].content[0]'.text must be a string, got an integer"},
        {"[{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]", "messages[0].content[0]", "got nothing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dl_buf out = {0};
        char param[DL_CHAT_PARAM_MAX];
        dl_error err = {0};
        int rc = render(bad[i].json, 0, &out, param, &err);
        CHECK_MSG(rc == -1, "%s: rc %d", bad[i].json, rc);
        CHECK_MSG(strcmp(param, bad[i].param) == 0, "%s: param %s, want %s", bad[i].json, param, bad[i].param);
        CHECK_MSG(strstr(err.msg, bad[i].says) != NULL, "%s: message [%s], want [%s]", bad[i].json, err.msg, bad[i].says);
        dl_buf_free(&out);
    }
}

/* max_messages: 3 pass at 3, 4 are refused at 3 and pass with no limit (0). */
static void test_limit(void) {
    dl_buf out = {0};
    char param[DL_CHAT_PARAM_MAX];
    dl_error err;
    const char *three = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"},"
                        " {\"role\": \"user\", \"content\": \"c\"}]";
    const char *four = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"},"
                       " {\"role\": \"user\", \"content\": \"c\"}, {\"role\": \"user\", \"content\": \"d\"}]";
    CHECK(render(three, 3, &out, param, &err) == 0);
    out.len = 0;
    CHECK(render(four, 3, &out, param, &err) == -1 && strcmp(param, "messages") == 0 &&
          strstr(err.msg, "holds 4 messages, more than 3"));
    out.len = 0;
    CHECK(render(four, 0, &out, param, &err) == 0);
    dl_buf_free(&out);
}

/* A long list of deeply wrong shapes: every one refused, none crashes. */
static void test_hostile(void) {
    dl_buf text = {0};
    dl_buf_printf(&text, "[");
    for (int i = 0; i < 2000; i++) dl_buf_printf(&text, "%s{\"role\": \"user\", \"content\": [[[%d]]]}", i ? "," : "", i);
    dl_buf_printf(&text, "]");
    dl_buf out = {0};
    char param[DL_CHAT_PARAM_MAX];
    dl_error err;
    CHECK(render(text.data, 256, &out, param, &err) == -1 && strstr(err.msg, "2000 messages"));
    CHECK(render(text.data, 0, &out, param, &err) == -1 && strcmp(param, "messages[0].content[0]") == 0);
    dl_buf_free(&out);
    dl_buf_free(&text);
}

int main(void) {
    test_rendering();
    test_errors();
    test_limit();
    test_hostile();
    TEST_MAIN_END();
}
