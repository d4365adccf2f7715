/* The chat template (described in api.h): messages rendered into one prompt text. */
#include "api.h"
#include <jansson.h>
#include <string.h>

#define BAD(e, param, ...) dl_api_fail(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

static const char *role_label(const char *role) {
    if (!strcmp(role, "system") || !strcmp(role, "developer")) return "### System:\n";
    if (!strcmp(role, "user")) return "### User:\n";
    if (!strcmp(role, "assistant")) return "### Assistant:\n";
    return NULL;
}

// content: a string, or a list of text parts; null only for an assistant turn (empty)
static int append_content(json_t *content, int assistant, dl_buf *out, const char *param, dl_api_error *e) {
    if (json_is_string(content)) return dl_buf_append(out, json_string_value(content), json_string_length(content));
    if ((!content || json_is_null(content)) && assistant) return 0;
    if (!json_is_array(content))
        return BAD(e, param, "'%s' must be a string or a list of text parts", param);
    size_t j;
    json_t *part;
    json_array_foreach(content, j, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0)
            return BAD(e, param, "'%s'[%zu]: only parts of type \"text\" are supported", param, j);
        if (!json_is_string(text)) return BAD(e, param, "'%s'[%zu].text must be a string", param, j);
        if (dl_buf_append(out, json_string_value(text), json_string_length(text))) return -1;
    }
    return 0;
}

int dl_api_render_chat(json_t *messages, dl_buf *out, dl_api_error *e) {
    if (!json_is_array(messages)) return BAD(e, "messages", "'messages' must be a list of messages");
    size_t n = json_array_size(messages);
    if (n == 0) return BAD(e, "messages", "'messages' must hold at least one message");
    if (n > DL_API_MAX_MESSAGES)
        return BAD(e, "messages", "'messages' holds %zu messages, more than %d", n, DL_API_MAX_MESSAGES);
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m)) return BAD(e, param, "'%s' must be an object", param);
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role)) return BAD(e, param, "'%s' must be a string", param);
        const char *label = role_label(json_string_value(role));
        if (!label)
            return BAD(e, param, "'%s' must be system, developer, user or assistant (tools are not supported)", param);
        snprintf(param, sizeof param, "messages[%zu].content", i);
        if (dl_buf_append(out, label, strlen(label))) goto oom;
        e->status = 0; /* a failure that leaves it 0 ran out of memory */
        if (append_content(json_object_get(m, "content"), label[4] == 'A', out, param, e))
            return e->status == 400 ? -1 : dl_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        if (dl_buf_append(out, "\n\n", 2)) goto oom;
    }
    if (dl_buf_append(out, "### Assistant:\n", 15)) goto oom;
    return 0;
oom:
    return dl_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
}
