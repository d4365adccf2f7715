/* UTF-8 repair: model tokens are byte strings, so a completion may hold invalid or half
 * characters, while JSON strings must be valid UTF-8 (jansson refuses anything else). */
#include "api.h"

/* Length (1-4) of the valid character at s[0..n), following RFC 3629 (no overlongs, no
 * surrogates, nothing above U+10FFFF). 0 when invalid; *partial is set when s[0..n) is a
 * valid beginning of a character whose later bytes are missing. */
static int char_len(const unsigned char *s, size_t n, int *partial) {
    *partial = 0;
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) {
            *partial = 1;
            return 0;
        }
        unsigned b = s[i], l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return 0;
    }
    return len;
}

int dl_utf8_repair(dl_buf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* valid bytes not yet appended start at i - run */
    while (i < n) {
        int partial, len = char_len(u + i, n - i, &partial);
        if (len > 0) {
            i += (size_t)len;
            run += (size_t)len;
            continue;
        }
        if (run && dl_buf_append(out, s + i - run, run)) return -1;
        run = 0;
        if (dl_buf_append(out, "\xef\xbf\xbd", 3)) return -1;
        i = partial ? n : i + 1;
    }
    if (run && dl_buf_append(out, s + n - run, run)) return -1;
    /* an empty string still needs a terminating NUL for callers that read out->data */
    if (dl_buf_append(out, "", 0)) return -1;
    return 0;
}

size_t dl_utf8_incomplete_tail(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        int partial;
        if (char_len(u + n - k, k, &partial) == 0 && partial) return k;
    }
    return 0;
}
