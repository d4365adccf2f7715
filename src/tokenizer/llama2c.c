/* llama2.c's tokenizer.bin -> a SentencePiece-style tokenizer.
 *
 * The file (written by llama2.c's tokenizer.py from a SentencePiece model): int32
 * max_token_length, then for each token float32 score, int32 length, the bytes. Pieces have
 * U+2581 turned into ' ', and <s> / </s> are written as "\n<s>\n" / "\n</s>\n"; both are undone
 * here. The number of tokens is not in the file: it is the checkpoint's vocab_size, and the
 * file must hold exactly that many. llama2.c always prepends a space (the dummy prefix) and
 * starts from <s>. */
#include "tokenizer/internal.h"
#include <stdlib.h>
#include <string.h>

typedef struct l2c_vocab {
    dl_buf text;   /* the pieces back to back */
    size_t *off, *len;
    float *score;
} l2c_vocab;

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The piece of the file's bytes s[0..n). */
static int add_piece(l2c_vocab *v, const char *s, size_t n) {
    if ((n == 5 && memcmp(s, "\n<s>\n", 5) == 0) || (n == 6 && memcmp(s, "\n</s>\n", 6) == 0))
        return dl_buf_append(&v->text, s + 1, n - 2);
    for (size_t i = 0; i < n; i++)
        if (dl_buf_append(&v->text, s[i] == ' ' ? "\xe2\x96\x81" : s + i, s[i] == ' ' ? 3 : 1)) return -1;
    return 0;
}

static int read_tokens(l2c_vocab *v, const unsigned char *p, size_t len, int n_vocab, dl_error *err) {
    if (len < 4) return dl_fail(err, "%zu bytes is too short for a header", len);
    uint32_t max_len = le32(p);
    if (max_len == 0 || max_len > TOK_MAX_TOKEN_BYTES)
        return dl_fail(err, "max_token_length %u is out of range (1 to %d)", max_len, TOK_MAX_TOKEN_BYTES);
    if ((len - 4) / 9 < (size_t)n_vocab)
        return dl_fail(err, "%zu bytes cannot hold the model's %d tokens", len, n_vocab);
    size_t pos = 4;
    for (int id = 0; id < n_vocab; id++) {
        if (len - pos < 8) return dl_fail(err, "truncated at token %d (the model has %d)", id, n_vocab);
        uint32_t bits = le32(p + pos), n = le32(p + pos + 4);
        memcpy(&v->score[id], &bits, 4);
        pos += 8;
        if (n == 0 || n > max_len)
            return dl_fail(err, "token %d has length %d (1 to max_token_length %u)", id, (int32_t)n, max_len);
        if (len - pos < n) return dl_fail(err, "token %d runs past the end of the file", id);
        v->off[id] = v->text.len;
        if (add_piece(v, (const char *)p + pos, n)) return dl_fail(err, "out of memory");
        v->len[id] = v->text.len - v->off[id];
        pos += n;
    }
    if (pos != len)
        return dl_fail(err, "%zu bytes follow the %d tokens the model has (vocabulary sizes differ?)",
                       len - pos, n_vocab);
    return 0;
}

static int find_piece(const l2c_vocab *v, int n, const char *s) {
    size_t k = strlen(s);
    for (int id = 0; id < n; id++)
        if (v->len[id] == k && memcmp(v->text.data + v->off[id], s, k) == 0) return id;
    return -1;
}

static dl_tokenizer *make(const l2c_vocab *v, int n, dl_error *err) {
    const char **pieces = malloc((size_t)n * sizeof *pieces);
    if (!pieces) {
        dl_fail(err, "out of memory");
        return NULL;
    }
    for (int id = 0; id < n; id++) pieces[id] = v->text.data + v->off[id];
    dl_spm_opts o = {find_piece(v, n, "<unk>"), find_piece(v, n, "<s>"), find_piece(v, n, "</s>"), 1, 1};
    dl_tokenizer *t = dl_tok_spm_new(n, pieces, v->len, v->score, NULL, &o, err);
    free(pieces);
    return t;
}

dl_tokenizer *dl_tok_load_llama2c(const void *data, size_t len, int n_vocab, dl_error *err) {
    if (n_vocab <= 0 || n_vocab > TOK_MAX_VOCAB) {
        dl_fail(err, "tokenizer.bin: vocabulary size %d is out of range", n_vocab);
        return NULL;
    }
    l2c_vocab v = {0};
    v.off = malloc((size_t)n_vocab * sizeof *v.off);
    v.len = malloc((size_t)n_vocab * sizeof *v.len);
    v.score = malloc((size_t)n_vocab * sizeof *v.score);
    dl_tokenizer *t = NULL;
    if (!v.off || !v.len || !v.score) dl_fail(err, "out of memory");
    else if (read_tokens(&v, data, len, n_vocab, err) == 0) t = make(&v, n_vocab, err);
    if (!t) dl_fail_ctx(err, "tokenizer.bin");
    dl_buf_free(&v.text);
    free(v.off);
    free(v.len);
    free(v.score);
    return t;
}
