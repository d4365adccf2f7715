/* Identity of a tokenizer and of a token file, for the checks that keep a teacher, a cache and a
 * student on the same token ids. FNV-1a 64: not cryptographic, it only has to catch mix-ups. */
#include "distill.h"
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t x) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(x >> (8 * i));
    return fnv(h, b, 8);
}

uint64_t dl_tok_fingerprint(const dl_tokenizer *t) {
    int V = dl_tok_vocab_size(t), M = dl_tok_n_merges(t);
    uint64_t h = fnv_u64(FNV_OFFSET, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        size_t len = 0;
        const char *s = dl_tok_token(t, id, &len);
        h = fnv_u64(h, (uint64_t)len);
        if (s) h = fnv(h, s, len);
        h = fnv_u64(h, (uint64_t)dl_tok_is_special(t, id));
    }
    h = fnv_u64(h, (uint64_t)M);
    for (int k = 0; k < M; k++) {
        int l = 0, r = 0, id = dl_tok_merge(t, k, &l, &r);
        h = fnv_u64(h, (uint64_t)(uint32_t)l);
        h = fnv_u64(h, (uint64_t)(uint32_t)r);
        h = fnv_u64(h, (uint64_t)(uint32_t)id);
    }
    return h;
}

int dl_tok_fingerprint_file(const char *tokenizer_json, uint64_t *out, int *vocab, dl_error *err) {
    dl_tokenizer *t = dl_tok_load(tokenizer_json, err);
    if (!t) return dl_fail_ctx(err, "%s", tokenizer_json);
    *out = dl_tok_fingerprint(t);
    if (vocab) *vocab = dl_tok_vocab_size(t);
    dl_tok_free(t);
    return 0;
}

uint64_t dl_fingerprint_bytes(const void *p, size_t n) { return fnv(FNV_OFFSET, p, n); }

uint64_t dl_tokfile_fingerprint(const dl_tokfile *f) {
    uint64_t h = fnv_u64(FNV_OFFSET, f->n_tokens);
    h = fnv_u64(h, (uint64_t)f->dtype_bytes);
    if (f->n_tokens > 0) h = fnv(h, f->tokens, (size_t)f->n_tokens * (size_t)f->dtype_bytes);
    return h;
}
