#include "base.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

json_t *dl_json_load(const char *path, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(path, &text, &len, err)) return NULL;
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!v) dl_fail(err, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
    return v;
}

const char *dl_json_type_name(const json_t *v) {
    if (!v) return "nothing"; /* json_object_get of an absent key */
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

int dl_json_get_int(json_t *obj, const char *key, long long *out, dl_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return dl_fail(err, "'%s' is missing", key);
    if (json_is_integer(v)) { *out = json_integer_value(v); return 0; }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == (double)(long long)d) { *out = (long long)d; return 0; }
    }
    return dl_fail(err, "'%s' must be an integer", key);
}

int dl_json_get_double(json_t *obj, const char *key, double *out, dl_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return dl_fail(err, "'%s' is missing", key);
    if (!json_is_number(v)) return dl_fail(err, "'%s' must be a number", key);
    *out = json_number_value(v);
    return 0;
}

int dl_json_get_bool(json_t *obj, const char *key, int *out, dl_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return dl_fail(err, "'%s' is missing", key);
    if (!json_is_boolean(v)) return dl_fail(err, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int dl_json_save(json_t *v, const char *path, dl_error *err) {
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    if (!s) return dl_fail(err, "%s: cannot serialise JSON", path);
    dl_buf b = {0};
    int rc = dl_buf_append(&b, s, strlen(s)) || dl_buf_append(&b, "\n", 1) ? -1 : 0;
    free(s);
    if (rc) { dl_buf_free(&b); return dl_fail(err, "out of memory"); }
    rc = dl_write_file_atomic(path, b.data, b.len, err);
    dl_buf_free(&b);
    return rc;
}
