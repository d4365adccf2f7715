/* Resume: the ids OUT already holds, and the repair of a last line cut short by a crash.
 * Lines are written whole and flushed one at a time, so only the last line can be incomplete,
 * and a line is complete exactly when its newline made it to the file. */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The id of one OUT line (a new reference), or NULL. Lines this command wrote start with
 * {"id": so the id is read without parsing the rest (logprobs make lines long); other
 * lines are parsed whole. */
static json_t *line_id(const char *s, size_t n) {
    static const char prefix[] = "{\"id\":";
    json_t *id;
    if (n > sizeof prefix - 1 && memcmp(s, prefix, sizeof prefix - 1) == 0) {
        size_t k = sizeof prefix - 1;
        id = json_loadb(s + k, n - k, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, NULL);
    } else {
        json_t *o = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
        id = json_incref(json_object_get(o, "id"));
        json_decref(o);
    }
    if (id && (json_is_number(id) || (json_is_string(id) && json_string_length(id) > 0))) return id;
    json_decref(id);
    return NULL;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i])) return 0;
    return 1;
}

static int add_line(json_t *done, const char *s, size_t n, const char *path, long lineno, dl_error *err) {
    json_t *id = line_id(s, n);
    if (!id) return dl_fail(err, "%s:%ld: not a harvest line (expected a JSON object with an id)", path, lineno);
    char *key = hv_id_key(id);
    json_decref(id);
    int bad = !key || json_object_set_new(done, key, json_true());
    free(key);
    return bad ? dl_fail(err, "out of memory") : 0;
}

int hv_resume_scan(const char *path, json_t *done, long *lines, long *dropped, dl_error *err) {
    *lines = *dropped = 0;
    FILE *f = fopen(path, "r+b");
    if (!f) return errno == ENOENT ? 0 : dl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t cap = 0, good_end = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&text, &cap, f)) > 0) {
        lineno++;
        if (text[got - 1] != '\n') { /* the last line, cut short */
            *dropped = (long)got;
            break;
        }
        if (!blank(text, (size_t)got)) {
            rc = add_line(done, text, (size_t)got - 1, path, lineno, err);
            (*lines)++;
        }
        good_end += (size_t)got;
    }
    if (rc == 0 && ferror(f)) rc = dl_fail(err, "%s: read error", path);
    if (rc == 0 && *dropped && ftruncate(fileno(f), (off_t)good_end))
        rc = dl_fail(err, "%s: cannot cut off the incomplete last line: %s", path, strerror(errno));
    free(text);
    if (fclose(f) && rc == 0) rc = dl_fail(err, "%s: %s", path, strerror(errno));
    return rc;
}
