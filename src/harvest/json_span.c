/* Byte ranges inside JSON text. The logprobs of a response are copied into OUT as the endpoint
 * wrote them: going through doubles would print -0.1 as -0.10000000000000001 (or lose digits
 * at a lower precision). The text has passed jansson's parser before it gets here, so these
 * scanners only need to stay inside the buffer, not to validate; nothing recurses, so nesting
 * depth costs nothing. */
#include "internal.h"
#include <string.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

/* At s[i] == '"': one past the closing quote. */
static int string_end(const char *s, size_t n, size_t i, size_t *end) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') {
            *end = i + 1;
            return 0;
        }
    }
    return -1;
}

int hv_span_end(const char *s, size_t n, size_t i, size_t *end) {
    if (i >= n) return -1;
    if (s[i] == '"') return string_end(s, n, i, end);
    if (s[i] != '{' && s[i] != '[') { /* number or literal */
        while (i < n && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']') i++;
        *end = i;
        return 0;
    }
    size_t depth = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            if (string_end(s, n, i, &i)) return -1;
            i--; /* the loop steps past the closing quote */
        } else if (c == '{' || c == '[') depth++;
        else if ((c == '}' || c == ']') && --depth == 0) {
            *end = i + 1;
            return 0;
        }
    }
    return -1;
}

int hv_span_member(const char *s, size_t n, size_t i, const char *key, size_t *at) {
    size_t klen = strlen(key);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t kend, v;
        if (string_end(s, n, i, &kend)) return -1;
        int match = kend - i - 2 == klen && memcmp(s + i + 1, key, klen) == 0;
        i = skip_ws(s, n, kend);
        if (i >= n || s[i] != ':') return -1;
        v = skip_ws(s, n, i + 1);
        if (match) {
            *at = v;
            return v < n ? 0 : -1;
        }
        if (hv_span_end(s, n, v, &i)) return -1;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',') i = skip_ws(s, n, i + 1);
    }
    return -1;
}

int hv_span_first(const char *s, size_t n, size_t i, size_t *at) {
    if (i >= n || s[i] != '[') return -1;
    i = skip_ws(s, n, i + 1);
    if (i >= n || s[i] == ']') return -1;
    *at = i;
    return 0;
}

int hv_span_append_compact(dl_buf *out, const char *s, size_t a, size_t b) {
    size_t run = a; /* start of the bytes not yet copied */
    for (size_t i = a; i < b; i++) {
        if (s[i] == '"') {
            size_t e;
            if (string_end(s, b, i, &e)) return -1;
            i = e - 1;
        } else if (is_ws(s[i])) {
            if (dl_buf_append(out, s + run, i - run)) return -1;
            run = i + 1;
        }
    }
    return dl_buf_append(out, s + run, b - run);
}
