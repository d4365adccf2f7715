/* GPT-2's bytes_to_unicode: every byte gets a printable code point so that a token's bytes can
 * be a JSON string. Bytes 33..126, 161..172 and 174..255 stand for themselves; the other 68
 * (controls, space, DEL, NBSP, soft hyphen, ...) map to U+0100.. in increasing byte order. */
#include "tokenizer/internal.h"
#include <pthread.h>
#include <string.h>

enum { BL_MAX_CP = 0x100 + 68 };

static uint16_t g_byte_cp[256];
static int16_t g_cp_byte[BL_MAX_CP];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void bl_init(void) {
    int n = 0;
    for (int cp = 0; cp < BL_MAX_CP; cp++) g_cp_byte[cp] = -1;
    for (int b = 0; b < 256; b++) {
        int self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        g_byte_cp[b] = (uint16_t)(self ? b : 256 + n++);
        g_cp_byte[g_byte_cp[b]] = (int16_t)b;
    }
}

int tok_bytes_to_bl(const void *raw, size_t n, dl_buf *out) {
    pthread_once(&g_once, bl_init);
    const unsigned char *s = raw;
    for (size_t i = 0; i < n; i++) {
        unsigned cp = g_byte_cp[s[i]];
        char u[2];
        if (cp < 0x80) {
            u[0] = (char)cp;
            if (dl_buf_append(out, u, 1)) return -1;
        } else {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            if (dl_buf_append(out, u, 2)) return -1;
        }
    }
    return 0;
}

int tok_bl_to_bytes(const char *str, size_t n, dl_buf *out) {
    pthread_once(&g_once, bl_init);
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        if (s[i] < 0x80) cp = s[i++];
        else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = (unsigned)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F);
            i += 2;
        } else return -1; /* three-byte and longer sequences are all above U+0143 */
        if (cp >= BL_MAX_CP || g_cp_byte[cp] < 0) return -1;
        char b = (char)g_cp_byte[cp];
        if (dl_buf_append(out, &b, 1)) return -1;
    }
    return 0;
}

int tok_utf8_valid(const char *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = dl_utf8_char_len(s + i, n - i))) return 0;
    return 1;
}
