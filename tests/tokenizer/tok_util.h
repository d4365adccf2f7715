/* Helpers shared by the tokenizer tests. */
#ifndef TOK_UTIL_H
#define TOK_UTIL_H
#include "base/base.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

/* A tokenizer with the 256 byte tokens, no merges and "<|endoftext|>" (trained on nothing). */
static inline dl_tokenizer *bytes_only_tokenizer(void) {
    dl_error err;
    dl_tokenizer *t = dl_tok_train("", 0, 257, NULL, &err);
    if (!t) {
        fprintf(stderr, "bytes_only_tokenizer: %s\n", err.msg);
        exit(2);
    }
    return t;
}

/* Encodes and checks that decoding gives the input back. Returns 1 when it does. */
static inline int roundtrips(const dl_tokenizer *t, const char *s, size_t n, int allow_special) {
    dl_error err;
    dl_ivec ids = {0};
    dl_buf out = {0};
    int ok = dl_tok_encode(t, s, n, allow_special, &ids, &err) == 0 &&
             dl_tok_decode(t, ids.data, ids.len, &out, &err) == 0 && out.len == n && (n == 0 || memcmp(out.data, s, n) == 0);
    dl_ivec_free(&ids);
    dl_buf_free(&out);
    return ok;
}

/* roundtrips() of a string literal (which may hold NULs and invalid UTF-8) */
#define ROUNDTRIPS_LIT(t, lit, allow) roundtrips((t), (lit), sizeof(lit) - 1, (allow))

/* ids of s as a fresh vector (the caller frees it). */
static inline dl_ivec encode_str(const dl_tokenizer *t, const char *s, int allow_special) {
    dl_error err;
    dl_ivec ids = {0};
    if (dl_tok_encode(t, s, strlen(s), allow_special, &ids, &err)) fprintf(stderr, "encode failed: %s\n", err.msg);
    return ids;
}

static inline int ids_equal(const dl_ivec *v, const int32_t *want, size_t n) {
    if (v->len != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (v->data[i] != want[i]) return 0;
    return 1;
}

static inline void print_ids(const char *label, const dl_ivec *v) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < v->len; i++) fprintf(stderr, " %d", (int)v->data[i]);
    fprintf(stderr, "\n");
}

#define CHECK_IDS(t, s, allow, ...)                                                                \
    do {                                                                                           \
        const int32_t _want[] = {__VA_ARGS__};                                                     \
        dl_ivec _got = encode_str((t), (s), (allow));                                              \
        int _ok = ids_equal(&_got, _want, sizeof _want / sizeof _want[0]);                         \
        CHECK_MSG(_ok, "encode(\"%s\") differs", (s));                                             \
        if (!_ok) print_ids("got", &_got);                                                         \
        dl_ivec_free(&_got);                                                                       \
    } while (0)

#endif
