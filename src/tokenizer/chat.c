/* The chat template (described in tokenizer.h): messages rendered into one prompt text. One
 * implementation for everything that turns messages into a prompt: distil serve's chat route and
 * distil distill --harvest reading chat records, so both see the same text. */
#include "tokenizer.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define BAD_INPUT -1
#define OUT_OF_MEMORY -2

/* Names the field in param and says what is wrong in err; param and err must be in scope. */
#define BAD(field, ...) (snprintf(param, DL_CHAT_PARAM_MAX, "%s", field), dl_fail(err, __VA_ARGS__), BAD_INPUT)

static int oom(dl_error *err) {
    dl_fail(err, "out of memory");
    return OUT_OF_MEMORY;
}

static const char *role_label(const char *role) {
    if (!strcmp(role, "system") || !strcmp(role, "developer")) return "### System:\n";
    if (!strcmp(role, "user")) return "### User:\n";
    if (!strcmp(role, "assistant")) return "### Assistant:\n";
    return NULL;
}

/* content: a string, or a list of text parts; null only for an assistant turn (empty) */
static int append_content(json_t *content, int assistant, dl_buf *out, size_t i, char *param, dl_error *err) {
    char field[DL_CHAT_PARAM_MAX];
    snprintf(field, sizeof field, "messages[%zu].content", i);
    if (json_is_string(content))
        return dl_buf_append(out, json_string_value(content), json_string_length(content)) ? oom(err) : 0;
    if ((!content || json_is_null(content)) && assistant) return 0;
    if (!json_is_array(content))
        return BAD(field, "'%s' must be a string or a list of text parts, got %s", field, dl_json_type_name(content));
    size_t j;
    json_t *part;
    json_array_foreach(content, j, part) {
        char at[DL_CHAT_PARAM_MAX];
        snprintf(at, sizeof at, "messages[%zu].content[%zu]", i, j);
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0)
            return BAD(at, "'%s': only parts of type \"text\" are supported", at);
        if (!json_is_string(text))
            return BAD(at, "'%s'.text must be a string, got %s", at, dl_json_type_name(text));
        if (dl_buf_append(out, json_string_value(text), json_string_length(text))) return oom(err);
    }
    return 0;
}

static int append_message(json_t *m, size_t i, dl_buf *out, char *param, dl_error *err) {
    char field[DL_CHAT_PARAM_MAX];
    snprintf(field, sizeof field, "messages[%zu]", i);
    if (!json_is_object(m)) return BAD(field, "'%s' must be an object, got %s", field, dl_json_type_name(m));
    json_t *role = json_object_get(m, "role");
    snprintf(field, sizeof field, "messages[%zu].role", i);
    if (!json_is_string(role)) return BAD(field, "'%s' must be a string, got %s", field, dl_json_type_name(role));
    const char *label = role_label(json_string_value(role));
    if (!label) return BAD(field, "'%s' must be system, developer, user or assistant (tools are not supported)", field);
    if (dl_buf_append(out, label, strlen(label))) return oom(err);
    int rc = append_content(json_object_get(m, "content"), label[4] == 'A', out, i, param, err);
    if (rc) return rc;
    return dl_buf_append(out, "\n\n", 2) ? oom(err) : 0;
}

int dl_chat_render(json_t *messages, int max_messages, dl_buf *out, char param[DL_CHAT_PARAM_MAX], dl_error *err) {
    param[0] = 0;
    if (!json_is_array(messages))
        return BAD("messages", "'messages' must be a list of messages, got %s", dl_json_type_name(messages));
    size_t n = json_array_size(messages);
    if (n == 0) return BAD("messages", "'messages' must hold at least one message");
    if (max_messages > 0 && n > (size_t)max_messages)
        return BAD("messages", "'messages' holds %zu messages, more than %d", n, max_messages);
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        int rc = append_message(m, i, out, param, err);
        if (rc) return rc;
    }
    return dl_buf_append(out, "### Assistant:\n", 15) ? oom(err) : 0;
}
