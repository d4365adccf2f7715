/* GGUF reader against broken and hostile files: every prefix of a valid file, one hand-made
 * file per check the reader makes (each refused with a message saying what is wrong), and
 * 2000 random mutations that must never crash (run under ASan). Every buffer is allocated at
 * its exact size, so that a read past the end is caught by ASan. */
#include "test_gguf_bytes.h"

static char g_dir[512];

/* A copy of exactly n bytes (NULL for n == 0) so that ASan sees the real end. */
static uint8_t *exact_copy(const uint8_t *p, size_t n) {
    if (n == 0) return NULL;
    uint8_t *q = malloc(n);
    if (!q) exit(2);
    memcpy(q, p, n);
    return q;
}

/* Reads every value and every tensor byte of an opened file, so that a bad pointer shows. */
static unsigned touch_all(const dl_gguf_file *f) {
    unsigned sum = 0;
    for (size_t i = 0; i < f->n_kv; i++) {
        const dl_gguf_kv *kv = &f->kv[i];
        sum += (unsigned)strlen(kv->key);
        for (uint64_t k = 0; k < kv->n && kv->type == DL_GGUF_ARRAY; k++) {
            if (kv->elem_type == DL_GGUF_STRING) {
                const char *s;
                size_t n;
                dl_gguf_arr_str(kv, k, &s, &n);
                for (size_t j = 0; j < n; j++) sum += (unsigned char)s[j];
            } else {
                int64_t v = 0;
                dl_gguf_arr_int(kv, k, &v);
                sum += (unsigned)v;
            }
        }
        const char *s;
        size_t n;
        dl_error err;
        if (kv->type == DL_GGUF_STRING && dl_gguf_get_str(f, kv->key, &s, &n, &err) == 0)
            for (size_t j = 0; j < n; j++) sum += (unsigned char)s[j];
    }
    static float buf[4096];
    for (size_t i = 0; i < f->n_tensors; i++) {
        const dl_gguf_tensor *t = &f->tensors[i];
        for (size_t j = 0; j < t->nbytes; j++) sum += t->data[j];
        dl_error err;
        if (t->numel <= 4096 && dl_gguf_tensor_to_f32(t, buf, (size_t)t->numel, &err) == 0) sum += (unsigned)buf[0];
    }
    return sum;
}

/* A small valid file with pairs of several types and three tensors. */
static uint8_t *valid_file(size_t *n) {
    char path[600];
    snprintf(path, sizeof path, "%s/valid.gguf", g_dir);
    dl_error err;
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    int rc = dl_gguf_add_str(w, "general.architecture", "llama", &err);
    rc |= dl_gguf_add_u32(w, "llama.block_count", 2, &err);
    rc |= dl_gguf_add_f32(w, "llama.rope.freq_base", 10000.0f, &err);
    rc |= dl_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 0, &err);
    rc |= dl_gguf_begin_arr(w, "tokenizer.ggml.tokens", DL_GGUF_STRING, 3, &err);
    rc |= dl_gguf_push_str(w, "a", 1, &err) | dl_gguf_push_str(w, "bc", 2, &err) | dl_gguf_push_str(w, "\xc4\xa0", 2, &err);
    rc |= dl_gguf_begin_arr(w, "tokenizer.ggml.token_type", DL_GGUF_I32, 3, &err);
    rc |= dl_gguf_push_i32(w, 1, &err) | dl_gguf_push_i32(w, 1, &err) | dl_gguf_push_i32(w, 3, &err);
    static float x[64];
    static uint8_t q[2 * DL_Q8_0_BYTES];
    for (int i = 0; i < 64; i++) x[i] = (float)i / 7.0f;
    dl_q8_0_quantize(x, q, 64);
    uint64_t ne_a[2] = {4, 3}, ne_q[2] = {32, 2}, ne_n[1] = {5};
    rc |= dl_gguf_add_tensor(w, "a.weight", DL_GGML_F32, 2, ne_a, x, 48, 0, &err);
    rc |= dl_gguf_add_tensor(w, "q.weight", DL_GGML_Q8_0, 2, ne_q, q, sizeof q, 0, &err);
    rc |= dl_gguf_add_tensor(w, "n.weight", DL_GGML_F32, 1, ne_n, x, 20, 0, &err);
    rc |= dl_gguf_write(w, path, &err);
    dl_gguf_writer_free(w);
    if (rc) { fprintf(stderr, "valid_file: %s\n", err.msg); exit(2); }
    return slurp_file(path, n);
}

/* ---- every prefix ---------------------------------------------------------------------- */
static void test_truncations(void) {
    size_t n;
    uint8_t *full = valid_file(&n);
    dl_gguf_file f;
    dl_error err;
    CHECK(dl_gguf_open_mem(&f, full, n, &err) == 0);
    size_t need = 0; /* the end of the last tensor's data; the padding after it is optional */
    for (size_t i = 0; i < f.n_tensors; i++)
        if (f.data_offset + f.tensors[i].offset + f.tensors[i].nbytes > need)
            need = f.data_offset + f.tensors[i].offset + f.tensors[i].nbytes;
    dl_gguf_close(&f);
    int wrong = 0;
    for (size_t len = 0; len < n; len++) {
        uint8_t *p = exact_copy(full, len);
        int rc = dl_gguf_open_mem(&f, p, len, &err);
        if (rc == 0) dl_gguf_close(&f);
        if ((rc == 0) != (len >= need)) {
            wrong++;
            fprintf(stderr, "prefix %zu of %zu: rc %d (%s)\n", len, n, rc, rc ? err.msg : "");
        }
        free(p);
    }
    CHECK_MSG(wrong == 0, "%d prefixes handled wrongly", wrong);
    CHECK(need < n); /* so that both sides of the boundary were tried */
    free(full);
}

/* ---- hand-made hostile files --------------------------------------------------------------- */
/* Header with one key (general.architecture) and n_tensors tensor infos to follow. */
static void start(bb *b, uint64_t n_tensors, uint64_t n_kv) {
    memset(b, 0, sizeof *b);
    bb_header(b, 3, n_tensors, n_kv);
}

static void test_header(void) {
    bb b;
    start(&b, 0, 0);
    memcpy(b.p, "GGUX", 4);
    REJECT_BB(&b, "not a GGUF file");
    bb_free(&b);
    expect_reject_mem("GG", 2, "too short", __LINE__);
    expect_reject_mem(NULL, 0, "too short", __LINE__);
    uint32_t versions[] = {1, 4, 0};
    const char *msgs[] = {"version 1 is not supported", "version 4 is not supported", "version 0 is not supported"};
    for (int i = 0; i < 3; i++) {
        memset(&b, 0, sizeof b);
        bb_header(&b, versions[i], 0, 0);
        REJECT_BB(&b, msgs[i]);
        bb_free(&b);
    }
    memset(&b, 0, sizeof b);
    bb_header(&b, 0x03000000u, 0, 0); /* version 3 written big-endian */
    REJECT_BB(&b, "big-endian");
    bb_free(&b);
    start(&b, (uint64_t)1 << 62, 0);
    REJECT_BB(&b, "tensors cannot fit");
    bb_free(&b);
    start(&b, 0, UINT64_MAX);
    REJECT_BB(&b, "key-value pairs cannot fit");
    bb_free(&b);
    start(&b, 0, 0);
    b.len -= 3; /* inside the key-value count */
    REJECT_BB(&b, "key-value count");
    bb_free(&b);
    /* version 2 has the same layout for little-endian files and is accepted */
    memset(&b, 0, sizeof b);
    bb_header(&b, 2, 0, 1);
    bb_str(&b, "general.architecture");
    bb_u32(&b, DL_GGUF_STRING);
    bb_str(&b, "llama");
    dl_gguf_file f;
    dl_error err;
    CHECK_MSG(dl_gguf_open_mem(&f, b.p, b.len, &err) == 0, "%s", err.msg);
    if (f.base) dl_gguf_close(&f);
    bb_free(&b);
}

static void test_keys(void) {
    bb b;
    start(&b, 0, 1);
    bb_u64(&b, UINT64_MAX); /* key length */
    bb_bytes(&b, "abcdefgh", 8);
    REJECT_BB(&b, "runs past the end");
    bb_free(&b);
    start(&b, 0, 1);
    bb_str(&b, "");
    bb_u32(&b, DL_GGUF_U8);
    bb_u8(&b, 1);
    REJECT_BB(&b, "the key of pair 0 is empty");
    bb_free(&b);
    start(&b, 0, 1);
    bb_u64(&b, 3);
    bb_bytes(&b, "a\0b", 3);
    bb_u32(&b, DL_GGUF_U8);
    bb_u8(&b, 1);
    REJECT_BB(&b, "NUL byte");
    bb_free(&b);
    start(&b, 0, 2);
    for (int i = 0; i < 2; i++) {
        bb_str(&b, "dup.key");
        bb_u32(&b, DL_GGUF_U32);
        bb_u32(&b, 1);
    }
    REJECT_BB(&b, "key 'dup.key' appears twice");
    bb_free(&b);
}

/* One pair "k" of value type t, then the given value bytes. */
static void kv_file(bb *b, uint32_t type) {
    start(b, 0, 1);
    bb_str(b, "k");
    bb_u32(b, type);
}

static void test_values(void) {
    bb b;
    kv_file(&b, 13);
    bb_u32(&b, 0);
    REJECT_BB(&b, "unknown value type 13");
    bb_free(&b);
    kv_file(&b, DL_GGUF_ARRAY);
    bb_u32(&b, DL_GGUF_ARRAY);
    bb_u64(&b, 1);
    bb_u32(&b, DL_GGUF_U8);
    bb_u64(&b, 1);
    bb_u8(&b, 0);
    REJECT_BB(&b, "nested arrays");
    bb_free(&b);
    kv_file(&b, DL_GGUF_ARRAY);
    bb_u32(&b, 99);
    bb_u64(&b, 0);
    REJECT_BB(&b, "unknown array element type 99");
    bb_free(&b);
    kv_file(&b, DL_GGUF_ARRAY);
    bb_u32(&b, DL_GGUF_U32);
    bb_u64(&b, (uint64_t)1 << 40);
    bb_u32(&b, 5);
    REJECT_BB(&b, "cannot fit");
    bb_free(&b);
    kv_file(&b, DL_GGUF_ARRAY);
    bb_u32(&b, DL_GGUF_STRING);
    bb_u64(&b, (uint64_t)1 << 61); /* 8 bytes per string at least: no allocation of this */
    bb_str(&b, "x");
    REJECT_BB(&b, "cannot fit");
    bb_free(&b);
    kv_file(&b, DL_GGUF_ARRAY);
    bb_u32(&b, DL_GGUF_STRING);
    bb_u64(&b, 2);
    bb_str(&b, "x");
    bb_u64(&b, 1000); /* the second string's length */
    bb_bytes(&b, "abcdefgh", 8);
    REJECT_BB(&b, "key 'k' (string 1): length 1000 runs past the end");
    bb_free(&b);
    kv_file(&b, DL_GGUF_STRING);
    bb_u64(&b, (uint64_t)1 << 63);
    REJECT_BB(&b, "runs past the end");
    bb_free(&b);
    kv_file(&b, DL_GGUF_BOOL);
    bb_u8(&b, 2);
    REJECT_BB(&b, "boolean value 2 is not 0 or 1");
    bb_free(&b);
    kv_file(&b, DL_GGUF_U64);
    bb_u32(&b, 1); /* 4 of the 8 bytes */
    REJECT_BB(&b, "the file ends inside key 'k' (value)");
    bb_free(&b);
}

static void alignment_file(bb *b, uint32_t type, uint64_t value) {
    start(b, 0, 1);
    bb_str(b, "general.alignment");
    bb_u32(b, type);
    if (type == DL_GGUF_U64) bb_u64(b, value);
    else bb_u32(b, (uint32_t)value);
}

static void test_alignment(void) {
    bb b;
    alignment_file(&b, DL_GGUF_U64, 32);
    REJECT_BB(&b, "general.alignment must be a u32, not u64");
    bb_free(&b);
    alignment_file(&b, DL_GGUF_U32, 0);
    REJECT_BB(&b, "general.alignment 0 is not a power of two");
    bb_free(&b);
    alignment_file(&b, DL_GGUF_U32, 48);
    REJECT_BB(&b, "general.alignment 48 is not a power of two");
    bb_free(&b);
}

/* Files with tensor infos: each info given as (name, nd, ne, type, offset), then padding to 32
 * and data_len zero bytes of data. */
typedef struct {
    const char *name;
    int nd;
    uint64_t ne[5];
    uint32_t type;
    uint64_t off;
} tinfo;

static void tensor_file(bb *b, const tinfo *ts, int n, size_t data_len) {
    start(b, (uint64_t)n, 0);
    for (int i = 0; i < n; i++) bb_tinfo(b, ts[i].name, ts[i].nd, ts[i].ne, ts[i].type, ts[i].off);
    bb_pad(b, 32);
    for (size_t i = 0; i < data_len; i++) bb_u8(b, 0);
}

#define REJECT_TENSORS(want, data_len, ...)                                  \
    do {                                                                     \
        tinfo _ts[] = {__VA_ARGS__};                                         \
        bb _b;                                                               \
        tensor_file(&_b, _ts, (int)(sizeof _ts / sizeof _ts[0]), data_len);  \
        expect_reject_mem(_b.p, _b.len, want, __LINE__);                     \
        bb_free(&_b);                                                        \
    } while (0)

static void test_tensors(void) {
    REJECT_TENSORS("0 dimensions", 64, {"t", 0, {0}, 0, 0});
    REJECT_TENSORS("5 dimensions", 64, {"t", 5, {1, 1, 1, 1, 1}, 0, 0});
    REJECT_TENSORS("dimension 1 is 0", 64, {"t", 2, {4, 0}, 0, 0});
    REJECT_TENSORS("element count overflows", 64, {"t", 2, {(uint64_t)1 << 32, (uint64_t)1 << 32}, 0, 0});
    REJECT_TENSORS("element count overflows", 64, {"t", 1, {UINT64_MAX}, 0, 0});
    REJECT_TENSORS("unknown ggml type 4", 64, {"t", 1, {4}, 4, 0});
    REJECT_TENSORS("unknown ggml type 1000", 64, {"t", 1, {4}, 1000, 0});
    REJECT_TENSORS("rows of 33 elements are not a whole number of Q8_0 blocks", 64, {"t", 1, {33}, 8, 0});
    REJECT_TENSORS("byte size overflows", 64, {"t", 2, {(uint64_t)1 << 32, (uint64_t)1 << 30}, 0, 0});
    REJECT_TENSORS("not a multiple of the alignment 32", 64, {"t", 1, {4}, 0, 8});
    REJECT_TENSORS("run past the end of the file", 64, {"t", 1, {4}, 0, 64});
    REJECT_TENSORS("run past the end of the file", 64, {"t", 1, {17}, 0, 0});
    REJECT_TENSORS("run past the end of the file", 64, {"t", 1, {4}, 0, (uint64_t)1 << 63});
    REJECT_TENSORS("overlap", 128, {"a", 1, {16}, 0, 0}, {"b", 1, {16}, 0, 32});
    REJECT_TENSORS("overlap", 128, {"a", 1, {4}, 0, 32}, {"b", 1, {4}, 0, 32});
    REJECT_TENSORS("tensor 't' appears twice", 128, {"t", 1, {4}, 0, 0}, {"t", 1, {4}, 0, 32});
    REJECT_TENSORS("the name of tensor 0 is empty", 64, {"", 1, {4}, 0, 0});
    REJECT_TENSORS("is 64 bytes long (at most 63)", 64,
                   {"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", 1, {4}, 0, 0});
    REJECT_TENSORS("run past the end of the file", 0, {"t", 1, {4}, 0, 0});
    /* and a 63-byte name with the data in place is fine */
    tinfo ok[] = {{"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", 4, {2, 1, 1, 2}, 0, 0},
                  {"b", 1, {32}, 8, 32}};
    bb b;
    tensor_file(&b, ok, 2, 32 + 34);
    dl_gguf_file f;
    dl_error err;
    CHECK_MSG(dl_gguf_open_mem(&f, b.p, b.len, &err) == 0, "%s", err.msg);
    if (f.base) {
        CHECK(f.n_tensors == 2 && f.tensors[0].numel == 4 && f.tensors[1].nbytes == 34);
        dl_gguf_close(&f);
    }
    bb_free(&b);
    /* the data section starts at the next multiple of 32 after the infos: past the end here */
    start(&b, 1, 0);
    uint64_t ne4[1] = {4};
    bb_tinfo(&b, "t", 1, ne4, 0, 0);
    REJECT_BB(&b, "the data section would start at byte 64, past the end of the file");
    bb_free(&b);
    /* a tensor count far above what the infos hold fails on the missing bytes, not on allocation */
    start(&b, 1000, 0);
    uint64_t ne[1] = {4};
    bb_tinfo(&b, "t", 1, ne, 0, 0);
    REJECT_BB(&b, "tensors cannot fit");
    bb_free(&b);
}

/* ---- random mutations ------------------------------------------------------------------ */
static void mutate(dl_rng *r, uint8_t *p, size_t n) {
    static const uint64_t interesting[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 30, 31, 32, 33, 63, 64, 65, 255,
                                           0xFFFFFFFFull, 0x100000000ull, (uint64_t)1 << 62, (uint64_t)1 << 63,
                                           UINT64_MAX, UINT64_MAX - 7};
    int kind = (int)dl_rng_below(r, 3);
    if (kind == 0) {
        for (int k = 1 + (int)dl_rng_below(r, 4); k > 0; k--) p[dl_rng_below(r, n)] = (uint8_t)dl_rng_u64(r);
    } else {
        size_t w = kind == 1 ? 8 : 4;
        if (n < w) return;
        size_t at = (size_t)dl_rng_below(r, n - w + 1);
        uint64_t v = interesting[dl_rng_below(r, sizeof interesting / sizeof interesting[0])];
        for (size_t i = 0; i < w; i++) p[at + i] = (uint8_t)(v >> (8 * i));
    }
}

static void test_mutations(void) {
    size_t n;
    uint8_t *full = valid_file(&n);
    dl_rng r;
    dl_rng_seed(&r, 12345);
    int opened = 0, refused = 0;
    unsigned sink = 0;
    for (int it = 0; it < 2000; it++) {
        size_t len = dl_rng_below(&r, 8) == 0 ? (size_t)dl_rng_below(&r, n + 1) : n;
        uint8_t *p = exact_copy(full, len);
        if (len) mutate(&r, p, len);
        if (len && dl_rng_below(&r, 2)) mutate(&r, p, len);
        dl_gguf_file f;
        dl_error err;
        if (dl_gguf_open_mem(&f, p, len, &err) == 0) {
            sink += touch_all(&f);
            dl_gguf_close(&f);
            opened++;
        } else {
            CHECK_MSG(err.msg[0] != 0, "mutation %d: refused without a message", it);
            refused++;
        }
        free(p);
    }
    fprintf(stderr, "mutations: %d opened, %d refused (sink %u)\n", opened, refused, sink);
    CHECK(opened > 0 && refused > 0);
    free(full);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("gguf-hostile"));
    test_truncations();
    test_header();
    test_keys();
    test_values();
    test_alignment();
    test_tensors();
    test_mutations();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
