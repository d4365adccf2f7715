/* Helpers for the SentencePiece-style tokenizer tests: the fixture vocabularies of
 * tools/make_llama2c_fixtures.py, hand-made vocabularies, and the straightforward encoder that
 * the fast one is checked against. */
#ifndef SPM_UTIL_H
#define SPM_UTIL_H
#include "tok_util.h"

#define SP "\xe2\x96\x81" /* U+2581 */
#define FIXTURES DISTIL_SOURCE_DIR "/tests/fixtures/llama2c/"

/* tok320.bin or tok1024.bin */
static inline dl_tokenizer *fixture_tokenizer(int n) {
    char path[512], *data;
    size_t len;
    dl_error err;
    snprintf(path, sizeof path, FIXTURES "tok%d.bin", n);
    if (dl_read_file(path, &data, &len, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_tokenizer *t = dl_tok_load_llama2c(data, len, n, &err);
    free(data);
    if (!t) { fprintf(stderr, "fixture_tokenizer: %s\n", err.msg); exit(2); }
    return t;
}

/* A vocabulary of <unk> <s> </s>, the 256 byte tokens (ids 3..258), then the given pieces with
 * the given scores and types (0: normal). */
typedef struct { const char *piece; float score; int type; } spm_piece;
static inline dl_tokenizer *make_vocab(const spm_piece *extra, int n_extra, int add_prefix, dl_error *err) {
    int n = 259 + n_extra;
    const char **p = calloc((size_t)n, sizeof *p);
    size_t *len = calloc((size_t)n, sizeof *len);
    float *score = calloc((size_t)n, sizeof *score);
    uint8_t *type = calloc((size_t)n, 1);
    static char bytes[256][8];
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < n; i++) {
        if (i < 3) p[i] = specials[i], type[i] = i == 0 ? DL_TOK_UNKNOWN : DL_TOK_CONTROL;
        else if (i < 259) snprintf(bytes[i - 3], 8, "<0x%02X>", i - 3), p[i] = bytes[i - 3], type[i] = DL_TOK_BYTE;
        else p[i] = extra[i - 259].piece, score[i] = extra[i - 259].score,
             type[i] = (uint8_t)(extra[i - 259].type ? extra[i - 259].type : DL_TOK_NORMAL);
        len[i] = strlen(p[i]);
    }
    dl_spm_opts o = {0, 1, 2, add_prefix, 1};
    dl_tokenizer *t = dl_tok_spm_new(n, p, len, score, type, &o, err);
    free(p);
    free(len);
    free(score);
    free(type);
    return t;
}

/* ---- the straightforward encoder ------------------------------------------------------------
 * Written from the definition, with nothing but the public API: dummy prefix and spaces as
 * U+2581, UTF-8 characters (by the table of RFC 3629), a character that is not a normal token
 * as its <0xXX> tokens, then, while some adjacent pair concatenates to a normal token, merge
 * the pair with the highest score, the leftmost on ties. O(n^2) lookups by spelling. */
static inline size_t ref_char_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return k;
}

static inline int ref_normal_id(const dl_tokenizer *t, const char *s, size_t n) {
    char buf[512];
    if (n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    int id = dl_tok_id(t, buf);
    return id >= 0 && dl_tok_type(t, id) == DL_TOK_NORMAL ? id : -1;
}

static inline void ref_encode(const dl_tokenizer *t, const char *text, size_t len, dl_ivec *out) {
    if (len == 0) return;
    dl_buf norm = {0}, a = {0};
    dl_buf_append(&norm, SP, 3);
    for (size_t i = 0; i < len; i++) dl_buf_append(&norm, text[i] == ' ' ? SP : text + i, text[i] == ' ' ? 3 : 1);
    dl_ivec ids = {0};
    const unsigned char *u = (const unsigned char *)norm.data;
    for (size_t i = 0; i < norm.len;) {
        size_t k = ref_char_len(u + i, norm.len - i);
        int id = k ? ref_normal_id(t, norm.data + i, k) : -1;
        if (id >= 0) dl_ivec_push(&ids, id);
        for (size_t j = 0; id < 0 && j < (k ? k : 1); j++) {
            char b[8];
            snprintf(b, sizeof b, "<0x%02X>", u[i + j]);
            dl_ivec_push(&ids, dl_tok_id(t, b));
        }
        i += k ? k : 1;
    }
    for (;;) {
        int best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < ids.len; i++) {
            a.len = 0;
            dl_tok_spelling(t, ids.data[i], &a, NULL);
            dl_tok_spelling(t, ids.data[i + 1], &a, NULL);
            int c = ref_normal_id(t, a.data, a.len);
            if (c >= 0 && (best < 0 || dl_tok_score(t, c) > dl_tok_score(t, best))) best = c, at = i;
        }
        if (best < 0) break;
        ids.data[at] = best;
        memmove(ids.data + at + 1, ids.data + at + 2, (ids.len - at - 2) * sizeof *ids.data);
        ids.len--;
    }
    for (size_t i = 0; i < ids.len; i++) dl_ivec_push(out, ids.data[i]);
    dl_ivec_free(&ids);
    dl_buf_free(&norm);
    dl_buf_free(&a);
}
#endif
