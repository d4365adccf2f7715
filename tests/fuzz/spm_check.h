/* For the fuzz targets: a tokenizer that loaded must encode and decode any text, and, when it is
 * byte-level or (SentencePiece-style) has U+2581 as a normal token and matched no added token,
 * give the text back exactly (a SentencePiece-style tokenizer prefixes each run of text between
 * added tokens with a space, and spells spaces with its U+2581 token). A failure traps. */
#ifndef FUZZ_SPM_CHECK_H
#define FUZZ_SPM_CHECK_H
#include "tokenizer/tokenizer.h"
#include <string.h>

static int fuzz_exact_roundtrip(const dl_tokenizer *t, const dl_ivec *ids) {
    if (!dl_tok_is_spm(t, NULL)) return 1;
    int sp = dl_tok_id(t, "\xe2\x96\x81");
    if (sp < 0 || dl_tok_type(t, sp) != DL_TOK_NORMAL) return 0;
    for (size_t i = 0; i < ids->len; i++) {
        int ty = dl_tok_type(t, ids->data[i]);
        if (ty == DL_TOK_CONTROL || ty == DL_TOK_UNKNOWN || ty == DL_TOK_USER_DEFINED) return 0;
    }
    return 1;
}

static void fuzz_roundtrip(const dl_tokenizer *t, const char *text, size_t len, int allow_special) {
    dl_ivec ids = {0};
    dl_buf out = {0};
    dl_error err;
    if (dl_tok_encode(t, text, len, allow_special, &ids, &err) != 0) __builtin_trap();
    if (dl_tok_decode(t, ids.data, ids.len, &out, &err) != 0) __builtin_trap();
    if (fuzz_exact_roundtrip(t, &ids) && (out.len != len || (len && memcmp(out.data, text, len) != 0))) __builtin_trap();
    dl_ivec_free(&ids);
    dl_buf_free(&out);
}
#endif
