/* The GPT-2 pre-tokenizer regex, on splits worked out by hand from the pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (alternatives tried left to right at each position; \s+(?!\S) leaves the last space of a
 * run for the word after it). */
#include "tok_util.h"

/* Splits s and compares with the NULL-terminated list of expected pieces. */
static void check_split(const dl_tokenizer *t, const char *s, size_t n, const char *const *want) {
    dl_error err;
    dl_ivec ends = {0};
    int rc = dl_tok_pretokenize(t, s, n, &ends, &err);
    CHECK_MSG(rc == 0, "pretokenize failed: %s", err.msg);
    size_t k = 0, start = 0;
    int ok = rc == 0;
    for (; ok && want[k]; k++) {
        size_t wl = strlen(want[k]);
        if (k >= ends.len || (size_t)ends.data[k] - start != wl || memcmp(s + start, want[k], wl) != 0) ok = 0;
        else start = (size_t)ends.data[k];
    }
    if (ok && k != ends.len) ok = 0;
    CHECK_MSG(ok, "split of \"%.*s\" differs from the expected one", (int)n, s);
    if (!ok) {
        size_t st = 0;
        for (size_t i = 0; i < ends.len; i++) {
            fprintf(stderr, "  piece %zu: [%.*s]\n", i, (int)((size_t)ends.data[i] - st), s + st);
            st = (size_t)ends.data[i];
        }
    }
    dl_ivec_free(&ends);
}

#define SPLIT(t, s, ...)                                                                           \
    do {                                                                                           \
        const char *const _w[] = {__VA_ARGS__, NULL};                                              \
        check_split((t), (s), sizeof(s) - 1, _w);                                                  \
    } while (0)

int main(void) {
    dl_tokenizer *t = bytes_only_tokenizer();

    /* the brief's example: "Hello", then " world" (space joins the letters), "'s" (contraction),
     * " 123", then of the two spaces the first stands alone and the second joins "foo" */
    SPLIT(t, "Hello world's 123  foo", "Hello", " world", "'s", " 123", " ", " foo");
    SPLIT(t, "I'm don't we've you'll he'd they're", "I", "'m", " don", "'t", " we", "'ve", " you", "'ll", " he", "'d",
          " they", "'re");
    /* contractions are case-sensitive in GPT-2: "'S" is punctuation then a letter */
    SPLIT(t, "IT'S", "IT", "'", "S");
    SPLIT(t, "a  b", "a", " ", " b");
    SPLIT(t, "a\n\nb", "a", "\n", "\n", "b"); /* "\n\n" before "b": \s+(?!\S) takes one, \s+ the other */
    SPLIT(t, "end   ", "end", "   ");         /* trailing whitespace: one piece */
    SPLIT(t, " \t x", " \t", " x");
    SPLIT(t, "x!!! ?y", "x", "!!!", " ?", "y");
    SPLIT(t, "abc123def", "abc", "123", "def");
    SPLIT(t, "3.14", "3", ".", "14");
    SPLIT(t, "na\xc3\xafve caf\xc3\xa9", "na\xc3\xafve", " caf\xc3\xa9");               /* naïve café */
    SPLIT(t, "\xe6\x97\xa5\xe6\x9c\xac \xe8\xaa\x9e", "\xe6\x97\xa5\xe6\x9c\xac", " \xe8\xaa\x9e"); /* 日本 語 */
    SPLIT(t, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 ok", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", " ok"); /* 😀😀 ok */
    SPLIT(t, "x \xc2\xbd\xc2\xb2", "x", " \xc2\xbd\xc2\xb2"); /* ½² are \p{N} */

    /* invalid UTF-8 never matches; each stretch of it is a piece of its own */
    SPLIT(t, "a\xff" "b", "a", "\xff", "b");
    SPLIT(t, "ab\xe6\x97", "ab", "\xe6\x97");            /* truncated 3-byte sequence */
    SPLIT(t, "\xc3", "\xc3");
    SPLIT(t, "x \x80\x80 y", "x", " ", "\x80\x80", " y"); /* " " before invalid bytes: (?!\S) holds there */
    SPLIT(t, "\xed\xa0\x80z", "\xed\xa0\x80", "z");      /* an encoded surrogate is invalid */

    dl_error err;
    dl_ivec ends = {0};
    CHECK(dl_tok_pretokenize(t, "", 0, &ends, &err) == 0 && ends.len == 0);
    dl_ivec_free(&ends);
    /* NUL is a control character, so it falls in [^\s\p{L}\p{N}]: "a", "\0", "b" */
    CHECK(dl_tok_pretokenize(t, "a\0b", 3, &ends, &err) == 0 && ends.len == 3 && ends.data[0] == 1 &&
          ends.data[1] == 2 && ends.data[2] == 3);
    dl_ivec_free(&ends);

    /* a long run: linear, one piece */
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, ' ', n);
    double t0 = dl_now();
    CHECK(dl_tok_pretokenize(t, big, n, &ends, &err) == 0 && ends.len == 1 && (size_t)ends.data[0] == n);
    CHECK_MSG(dl_now() - t0 < 2.0, "1 MB of spaces took %.2fs", dl_now() - t0);
    dl_ivec_free(&ends);
    free(big);

    dl_tok_free(t);
    TEST_MAIN_END();
}
