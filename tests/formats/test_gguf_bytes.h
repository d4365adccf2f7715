/* Helpers for the GGUF tests: a byte builder that spells files out field by field (as the
 * format description says, independently of the writer) and a rejection check. */
#ifndef TEST_GGUF_BYTES_H
#define TEST_GGUF_BYTES_H
#include "formats/gguf.h"
#include "test.h"
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb;

static inline void bb_bytes(bb *b, const void *s, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(2);
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
}
static inline void bb_u8(bb *b, uint8_t v) { bb_bytes(b, &v, 1); }
static inline void bb_u32(bb *b, uint32_t v) {
    for (int i = 0; i < 4; i++) bb_u8(b, (uint8_t)(v >> (8 * i)));
}
static inline void bb_u64(bb *b, uint64_t v) {
    for (int i = 0; i < 8; i++) bb_u8(b, (uint8_t)(v >> (8 * i)));
}
static inline void bb_f32(bb *b, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    bb_u32(b, v);
}
static inline void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_bytes(b, s, strlen(s));
}
static inline void bb_pad(bb *b, size_t align) {
    while (b->len % align) bb_u8(b, 0);
}
static inline void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_bytes(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
/* A tensor info: name, dims (ne[0] first), type, offset. */
static inline void bb_tinfo(bb *b, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(b, name);
    bb_u32(b, (uint32_t)nd);
    for (int d = 0; d < nd; d++) bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, off);
}
static inline void bb_free(bb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Opens the bytes expecting a failure whose message contains want. */
static inline void expect_reject_mem(const void *p, size_t n, const char *want, int line) {
    dl_gguf_file f;
    dl_error err = {{0}};
    int rc = dl_gguf_open_mem(&f, p, n, &err);
    if (rc == 0) dl_gguf_close(&f);
    if (rc != -1 || !strstr(err.msg, want)) {
        t_fail++;
        fprintf(stderr, "line %d: expected a rejection containing '%s', got rc=%d msg='%s'\n", line, want, rc, err.msg);
    } else {
        t_pass++;
    }
}
#define REJECT_BB(b, want) expect_reject_mem((b)->p, (b)->len, want, __LINE__)

static inline uint8_t *slurp_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { perror(path); exit(2); }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    if (!p || fread(p, 1, (size_t)sz, fp) != (size_t)sz) { perror(path); exit(2); }
    fclose(fp);
    *n = (size_t)sz;
    return p;
}
#endif
