/* UTF-8 character boundaries (RFC 3629), for every place that checks text is valid UTF-8. */
#include "base.h"

size_t dl_utf8_char_len(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) return 0;
    unsigned c = s[0], lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong below */
        if (c == 0xED) hi = 0x9F; /* surrogates above */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90; /* overlong below */
        if (c == 0xF4) hi = 0x8F; /* past U+10FFFF above */
    } else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return 0;
    }
    return len;
}
