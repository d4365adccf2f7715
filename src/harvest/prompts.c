/* The prompts file: one JSON object per line, checked whole before any request is sent. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

char *hv_id_key(json_t *id) { return json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT); }

static int push(hv_prompts *ps, hv_prompt p) {
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 64;
        hv_prompt *q = realloc(ps->items, nc * sizeof *q);
        if (!q) return -1;
        ps->items = q;
        ps->cap = nc;
    }
    ps->items[ps->n++] = p;
    return 0;
}

void hv_prompts_free(hv_prompts *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        json_decref(ps->items[i].id);
        json_decref(ps->items[i].input);
        free(ps->items[i].key);
    }
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

static int check_messages(json_t *m, dl_error *err) {
    if (!json_is_array(m) || json_array_size(m) == 0) return dl_fail(err, "'messages' must be a non-empty array");
    size_t i;
    json_t *msg;
    json_array_foreach(m, i, msg) {
        if (!json_is_object(msg)) return dl_fail(err, "messages[%zu] must be an object", i);
        if (!json_is_string(json_object_get(msg, "role")))
            return dl_fail(err, "messages[%zu].role must be a string", i);
        json_t *c = json_object_get(msg, "content");
        if (!json_is_string(c) && !json_is_array(c))
            return dl_fail(err, "messages[%zu].content must be a string or a list of parts", i);
    }
    return 0;
}

/* The input a line asks for: the prompt string, or the messages (a lone prompt in chat mode
 * becomes one user message). Returns a new reference. */
static json_t *line_input(json_t *o, int chat, dl_error *err) {
    json_t *prompt = json_object_get(o, "prompt"), *msgs = json_object_get(o, "messages");
    if (prompt && msgs) return dl_fail(err, "has both 'prompt' and 'messages'"), NULL;
    if (!chat) {
        if (msgs) return dl_fail(err, "has 'messages': chat prompts need --chat"), NULL;
        if (!prompt) return dl_fail(err, "'prompt' is missing"), NULL;
        if (!json_is_string(prompt)) return dl_fail(err, "'prompt' must be a string"), NULL;
        return json_incref(prompt);
    }
    if (msgs) return check_messages(msgs, err) ? NULL : json_incref(msgs);
    if (!prompt) return dl_fail(err, "'messages' is missing"), NULL;
    if (!json_is_string(prompt)) return dl_fail(err, "'prompt' must be a string"), NULL;
    json_t *m = json_pack("[{s:s,s:O}]", "role", "user", "content", prompt);
    if (!m) dl_fail(err, "out of memory");
    return m;
}

static json_t *line_id(json_t *o, long line, dl_error *err) {
    json_t *id = json_object_get(o, "id");
    if (!id) return json_integer(line);
    if (json_is_string(id) && json_string_length(id) == 0) return dl_fail(err, "'id' is empty"), NULL;
    if (!json_is_string(id) && !json_is_number(id)) return dl_fail(err, "'id' must be a string or a number"), NULL;
    return json_incref(id);
}

/* One non-blank line into a prompt; seen maps id keys to the line that used them. */
static int parse_line(hv_prompts *ps, const char *text, size_t len, long line, int chat, json_t *seen,
                      dl_error *err) {
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!o) return dl_fail(err, "invalid JSON at column %d: %s", je.column, je.text);
    hv_prompt p = {.line = line};
    int rc = -1;
    if (!json_is_object(o)) dl_fail(err, "expected a JSON object");
    else if ((p.id = line_id(o, line, err)) && (p.input = line_input(o, chat, err))) {
        json_t *prev;
        if (!(p.key = hv_id_key(p.id))) dl_fail(err, "out of memory");
        else if ((prev = json_object_get(seen, p.key)))
            dl_fail(err, "id %s repeats the id of line %lld", p.key, json_integer_value(prev));
        else if (json_object_set_new(seen, p.key, json_integer(line)) || push(ps, p)) dl_fail(err, "out of memory");
        else rc = 0;
    }
    json_decref(o);
    if (rc) {
        json_decref(p.id);
        json_decref(p.input);
        free(p.key);
    }
    return rc;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i])) return 0;
    return 1;
}

static int read_lines(hv_prompts *ps, FILE *f, const char *path, int chat, json_t *seen, dl_error *err) {
    char *text = NULL;
    size_t cap = 0;
    ssize_t got;
    long line = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&text, &cap, f)) >= 0) {
        line++;
        if ((size_t)got > HV_MAX_LINE)
            rc = dl_fail(err, "%s:%ld: line longer than %u bytes", path, line, HV_MAX_LINE);
        else if (!blank(text, (size_t)got) && parse_line(ps, text, (size_t)got, line, chat, seen, err))
            rc = dl_fail_ctx(err, "%s:%ld", path, line);
    }
    if (rc == 0 && ferror(f)) rc = dl_fail(err, "%s: read error", path);
    free(text);
    return rc;
}

int hv_prompts_load(hv_prompts *ps, const char *path, int chat, dl_error *err) {
    memset(ps, 0, sizeof *ps);
    FILE *f = fopen(path, "rb");
    if (!f) return dl_fail(err, "%s: cannot open the prompts file", path);
    json_t *seen = json_object();
    int rc = seen ? read_lines(ps, f, path, chat, seen, err) : dl_fail(err, "out of memory");
    json_decref(seen);
    fclose(f);
    if (rc == 0 && ps->n == 0) rc = dl_fail(err, "%s: no prompts in the file", path);
    if (rc) hv_prompts_free(ps);
    return rc;
}
