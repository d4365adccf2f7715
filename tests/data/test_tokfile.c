/* Token files: round trips in both dtypes, the header layout from the spec in data.h, and
 * every way a file can be malformed. */
#include "data/data.h"
#include "test.h"
#include <stdint.h>

static char dir[512];

static const char *path_in(const char *name) {
    static char p[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void put_le(unsigned char *p, uint64_t x, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(x >> (8 * i));
}

/* A header written by hand from the layout in data.h, not by the code under test. */
static void make_header(unsigned char h[64], uint32_t version, uint32_t dtype, uint32_t vocab, uint64_t n) {
    memset(h, 0, 64);
    memcpy(h, "DSTLTOK", 8);
    put_le(h + 8, version, 4);
    put_le(h + 12, dtype, 4);
    put_le(h + 16, vocab, 4);
    put_le(h + 24, n, 8);
}

static void write_raw(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fwrite(a, 1, na, f);
    if (nb) fwrite(b, 1, nb, f);
    fclose(f);
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void test_round_trip_u16(void) {
    dl_error err = {{0}};
    int32_t ids[1000];
    for (int i = 0; i < 1000; i++) ids[i] = (i * 37) % 1000;
    ids[999] = 999; /* the largest id allowed by vocab 1000 */
    const char *p = path_in("u16.bin");
    CHECK(dl_tokfile_write(p, ids, 1000, 1000, &err) == 0);
    CHECK(file_size(p) == 64 + 2 * 1000);
    unsigned char h[64], want[64];
    FILE *f = fopen(p, "rb");
    CHECK(f && fread(h, 1, 64, f) == 64);
    if (f) fclose(f);
    make_header(want, 1, 2, 1000, 1000);
    CHECK(memcmp(h, want, 64) == 0);
    dl_tokfile tf;
    CHECK(dl_tokfile_open(&tf, p, &err) == 0);
    CHECK(tf.dtype_bytes == 2 && tf.vocab_size == 1000 && tf.n_tokens == 1000);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= dl_tokfile_get(&tf, (uint64_t)i) == ids[i];
    CHECK(same);
    dl_tokfile_close(&tf);
}

static void test_round_trip_u32(void) {
    dl_error err = {{0}};
    int32_t ids[] = {0, 65535, 65536, 69999, 12345, 70000 - 1};
    const char *p = path_in("u32.bin");
    CHECK(dl_tokfile_write(p, ids, 6, 70000, &err) == 0);
    CHECK(file_size(p) == 64 + 4 * 6);
    dl_tokfile tf;
    CHECK(dl_tokfile_open(&tf, p, &err) == 0);
    CHECK(tf.dtype_bytes == 4 && tf.vocab_size == 70000 && tf.n_tokens == 6);
    int same = 1;
    for (int i = 0; i < 6; i++) same &= dl_tokfile_get(&tf, (uint64_t)i) == ids[i];
    CHECK(same);
    dl_tokfile_close(&tf);
    /* vocab exactly 65536 still fits uint16 */
    int32_t top[] = {65535, 0};
    CHECK(dl_tokfile_write(p, top, 2, 65536, &err) == 0);
    CHECK(dl_tokfile_open(&tf, p, &err) == 0 && tf.dtype_bytes == 2 && dl_tokfile_get(&tf, 0) == 65535);
    dl_tokfile_close(&tf);
}

static void test_empty_and_bad_ids(void) {
    dl_error err = {{0}};
    dl_tokfile tf;
    const char *p = path_in("empty.bin");
    CHECK(dl_tokfile_write(p, NULL, 0, 50, &err) == 0);
    CHECK(dl_tokfile_open(&tf, p, &err) == 0 && tf.n_tokens == 0);
    dl_tokfile_close(&tf);

    int32_t big[] = {1, 2, 50};
    const char *q = path_in("badid.bin");
    CHECK(dl_tokfile_write(q, big, 3, 50, &err) == -1);
    CHECK(strstr(err.msg, "50") && strstr(err.msg, "outside the vocabulary"));
    CHECK(!dl_path_exists(q)); /* nothing half-written is left under the real name */
    int32_t neg[] = {1, -1};
    CHECK(dl_tokfile_write(q, neg, 2, 50, &err) == -1);
    CHECK(dl_tokfile_write(q, neg, 1, 0, &err) == -1); /* vocab 0 */
    CHECK(dl_tokfile_write("/nonexistent-dir/x.bin", neg, 1, 50, &err) == -1);
    CHECK(strstr(err.msg, "/nonexistent-dir/x.bin") != NULL);
}

/* Opens a hand-built file and expects failure with `phrase` and the path in the message. */
static void expect_bad(const char *name, const unsigned char *h, size_t hn, const void *body, size_t bn,
                       const char *phrase) {
    const char *p = path_in(name);
    write_raw(p, h, hn, body, bn);
    dl_tokfile tf;
    dl_error err = {{0}};
    int rc = dl_tokfile_open(&tf, p, &err);
    CHECK_MSG(rc == -1, "%s opened", name);
    CHECK_MSG(strstr(err.msg, phrase) != NULL, "%s: message '%s' lacks '%s'", name, err.msg, phrase);
    CHECK_MSG(strstr(err.msg, p) != NULL, "%s: message '%s' lacks the path", name, err.msg);
    CHECK(tf.tokens == NULL && tf.map.data == NULL);
}

static void test_malformed(void) {
    unsigned char h[64];
    uint16_t body[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

    make_header(h, 1, 2, 100, 10);
    expect_bad("short.bin", h, 40, NULL, 0, "shorter than the 64-byte header");
    expect_bad("zero.bin", h, 0, NULL, 0, "");
    h[3] = 'X';
    expect_bad("magic.bin", h, 64, body, sizeof body, "bad magic");

    make_header(h, 2, 2, 100, 10);
    expect_bad("version.bin", h, 64, body, sizeof body, "version 2");
    make_header(h, 0, 2, 100, 10);
    expect_bad("version0.bin", h, 64, body, sizeof body, "version 0");

    make_header(h, 1, 3, 100, 10);
    expect_bad("dtype.bin", h, 64, body, sizeof body, "dtype 3");
    make_header(h, 1, 2, 70000, 10);
    expect_bad("dtypevocab.bin", h, 64, body, sizeof body, "does not fit");
    make_header(h, 1, 2, 0, 10);
    expect_bad("vocab0.bin", h, 64, body, sizeof body, "vocab_size is 0");

    make_header(h, 1, 2, 100, 10);
    expect_bad("truncated.bin", h, 64, body, sizeof body - 1, "header says 10 tokens");
    expect_bad("truncated2.bin", h, 64, body, 8, "holds 8 bytes");
    make_header(h, 1, 2, 100, 9);
    expect_bad("extra.bin", h, 64, body, sizeof body, "header says 9 tokens");
    make_header(h, 1, 2, 100, UINT64_MAX / 2 + 1); /* n * 2 wraps to 0 in 64 bits */
    expect_bad("huge.bin", h, 64, NULL, 0, "tokens");
    make_header(h, 1, 4, 100, (UINT64_MAX >> 2) + 2); /* n * 4 wraps to 8 */
    expect_bad("huge4.bin", h, 64, body, 8, "tokens");

    make_header(h, 1, 2, 10, 10); /* body holds the id 10 at position 9 */
    expect_bad("idrange.bin", h, 64, body, sizeof body, "token 9 has id 10");
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir("tokfile"));
    test_round_trip_u16();
    test_round_trip_u32();
    test_empty_and_bad_ids();
    test_malformed();
    dl_error err;
    CHECK(dl_rm_rf(dir, &err) == 0);
    TEST_MAIN_END();
}
