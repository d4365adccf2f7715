/* safetensors: round trip of every dtype, hand-written files read back, and malformed files
 * (each rejected with a message naming the file and the problem), plus a mutation fuzz. */
#include "formats/safetensors.h"
#include "test.h"
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>

static char g_dir[512];

static const char *tpath(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static void write_raw(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp || (len && fwrite(data, 1, len, fp) != len)) { perror(path); exit(2); }
    fclose(fp);
}

/* A file from a header string (length written as given) and data bytes. */
static void write_st(const char *path, const char *header, const void *data, size_t dlen) {
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (dlen) memcpy(buf + 8 + hl, data, dlen);
    write_raw(path, buf, 8 + hl + dlen);
    free(buf);
}

/* Opens path expecting failure; the message must name the file and contain `want`. */
static void expect_reject(const char *path, const char *want, int line) {
    dl_st_file f;
    dl_error err = {{0}};
    int rc = dl_st_open(&f, path, &err);
    if (rc == 0) dl_st_close(&f);
    if (rc != -1 || !strstr(err.msg, path) || !strstr(err.msg, want)) {
        t_fail++;
        fprintf(stderr, "line %d: expected rejection containing '%s', got rc=%d msg='%s'\n", line, want, rc, err.msg);
    } else {
        t_pass++;
    }
}

static void reject_header(const char *header, size_t dlen, const char *want, int line) {
    unsigned char data[64] = {0};
    const char *p = tpath("bad.safetensors");
    write_st(p, header, data, dlen);
    expect_reject(p, want, line);
}
#define REJECT(header, dlen, want) reject_header(header, dlen, want, __LINE__)

/* ---- round trip -------------------------------------------------------------------------- */
static float f32v[6] = {1.5f, -2.25f, 3e-8f, 1e30f, 0.0f, -0.0f};
static uint16_t f16v[4], bf16v[3];
static int32_t i32v[4] = {INT32_MIN, -1, 0, INT32_MAX};
static int64_t i64v[1] = {INT64_MIN + 5};
static uint8_t u8v[5] = {0, 1, 127, 128, 255};
static int8_t i8v[1] = {-128};

static int make_tensors(dl_st_tensor *ts) {
    const float hv[4] = {1.0f, -0.5f, 65504.0f, 0.000061035156f}; /* exact in f16 */
    for (int i = 0; i < 4; i++) f16v[i] = dl_f32_to_f16(hv[i]);
    const float bv[3] = {-3.0f, 0.15625f, 1e38f};
    for (int i = 0; i < 3; i++) bf16v[i] = dl_f32_to_bf16(bv[i]);
    int n = 0;
    ts[n++] = (dl_st_tensor){.name = "w.f32", .dtype = DL_F32, .ndim = 2, .shape = {2, 3}, .data = f32v, .nbytes = 24};
    ts[n++] = (dl_st_tensor){.name = "u8", .dtype = DL_U8, .ndim = 1, .shape = {5}, .data = u8v, .nbytes = 5};
    ts[n++] = (dl_st_tensor){.name = "h", .dtype = DL_F16, .ndim = 1, .shape = {4}, .data = f16v, .nbytes = 8};
    ts[n++] = (dl_st_tensor){.name = "b", .dtype = DL_BF16, .ndim = 2, .shape = {3, 1}, .data = bf16v, .nbytes = 6};
    ts[n++] = (dl_st_tensor){.name = "i32", .dtype = DL_I32, .ndim = 2, .shape = {2, 2}, .data = i32v, .nbytes = 16};
    ts[n++] = (dl_st_tensor){.name = "i64", .dtype = DL_I64, .ndim = 1, .shape = {1}, .data = i64v, .nbytes = 8};
    ts[n++] = (dl_st_tensor){.name = "scalar.i8", .dtype = DL_I8, .ndim = 0, .data = i8v, .nbytes = 1};
    ts[n++] = (dl_st_tensor){.name = "empty.u16", .dtype = DL_U16, .ndim = 2, .shape = {0, 3}, .data = NULL, .nbytes = 0};
    return n;
}

static void test_round_trip(void) {
    dl_st_tensor ts[8];
    int n = make_tensors(ts);
    const char *md[] = {"format", "pt", "note", "héllo", NULL};
    const char *p = tpath("rt.safetensors");
    dl_error err = {{0}};
    CHECK_MSG(dl_st_write(p, ts, n, md, &err) == 0, "%s", err.msg);
    dl_st_file f;
    CHECK_MSG(dl_st_open(&f, p, &err) == 0, "%s", err.msg);
    CHECK(f.n == n);
    /* the reader lists tensors in file order, which the writer made the given order */
    for (int i = 0; i < n && i < f.n; i++) {
        const dl_st_tensor *t = &f.tensors[i], *w = &ts[i];
        CHECK(strcmp(t->name, w->name) == 0);
        CHECK(dl_st_find(&f, w->name) == t);
        CHECK(t->dtype == w->dtype && t->ndim == w->ndim && t->nbytes == w->nbytes);
        for (int d = 0; d < w->ndim; d++) CHECK(t->shape[d] == w->shape[d]);
        CHECK(w->nbytes == 0 || memcmp(t->data, w->data, w->nbytes) == 0);
        if (i > 0) CHECK((const char *)t->data == (const char *)f.tensors[i - 1].data + f.tensors[i - 1].nbytes);
    }
    CHECK(f.tensors[6].numel == 1 && f.tensors[7].numel == 0);
    CHECK(dl_st_find(&f, "nope") == NULL);
    /* header padded with spaces to a multiple of 8, so the data starts 8-aligned */
    const unsigned char *raw = f.map.data;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK(hl % 8 == 0);
    CHECK(raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}');
    CHECK((const unsigned char *)f.tensors[0].data == raw + 8 + hl);
    CHECK(f.map.len == 8 + hl + 24 + 5 + 8 + 6 + 16 + 8 + 1);
    CHECK(f.metadata && strcmp(json_string_value(json_object_get(f.metadata, "format")), "pt") == 0);
    CHECK(f.metadata && strcmp(json_string_value(json_object_get(f.metadata, "note")), "héllo") == 0);

    /* float conversion: f16 sits after the 5-byte u8, so it is unaligned in the mapping */
    float out[6];
    CHECK(dl_st_read_f32(dl_st_find(&f, "h"), out, 4, &err) == 0);
    CHECK(out[0] == 1.0f && out[1] == -0.5f && out[2] == 65504.0f && out[3] == 0.000061035156f);
    CHECK(dl_st_read_f32(dl_st_find(&f, "b"), out, 3, &err) == 0);
    CHECK(out[0] == -3.0f && out[1] == 0.15625f && fabsf(out[2] - 1e38f) < 1e36f);
    CHECK(dl_st_read_f32(dl_st_find(&f, "w.f32"), out, 6, &err) == 0);
    CHECK(memcmp(out, f32v, sizeof f32v) == 0);
    CHECK(dl_st_read_f32(dl_st_find(&f, "w.f32"), out, 5, &err) == -1 && strstr(err.msg, "6 elements"));
    CHECK(dl_st_read_f32(dl_st_find(&f, "i32"), out, 4, &err) == -1 && strstr(err.msg, "not a float"));
    dl_st_close(&f);

    /* no metadata, no tensors: still a valid file */
    CHECK_MSG(dl_st_write(p, NULL, 0, NULL, &err) == 0, "%s", err.msg);
    CHECK(dl_st_open(&f, p, &err) == 0 && f.n == 0 && f.metadata == NULL);
    dl_st_close(&f);
}

static void test_write_errors(void) {
    dl_st_tensor ts[8];
    int n = make_tensors(ts);
    dl_error err = {{0}};
    const char *p = tpath("w.safetensors");
    ts[0].nbytes = 20;
    CHECK(dl_st_write(p, ts, n, NULL, &err) == -1 && strstr(err.msg, "w.f32") && strstr(err.msg, "nbytes"));
    n = make_tensors(ts);
    ts[1].name = "w.f32";
    CHECK(dl_st_write(p, ts, n, NULL, &err) == -1 && strstr(err.msg, "twice"));
    n = make_tensors(ts);
    ts[2].name = "__metadata__";
    CHECK(dl_st_write(p, ts, n, NULL, &err) == -1 && strstr(err.msg, "__metadata__"));
    n = make_tensors(ts);
    ts[0].shape[1] = -3;
    CHECK(dl_st_write(p, ts, n, NULL, &err) == -1 && strstr(err.msg, "shape"));
    n = make_tensors(ts);
    ts[3].dtype = DL_DTYPE_UNKNOWN;
    CHECK(dl_st_write(p, ts, n, NULL, &err) == -1 && strstr(err.msg, "dtype"));
    n = make_tensors(ts);
    const char *md[] = {"lonely", NULL, NULL};
    CHECK(dl_st_write(p, ts, n, md, &err) == -1 && strstr(err.msg, "lonely"));
    CHECK(!dl_path_exists(p)); /* nothing half-written is left behind */
    CHECK(dl_st_write("/nonexistent-dir/x.safetensors", ts, n, NULL, &err) == -1 && strstr(err.msg, "cannot create"));
    /* no temp files left in the folder */
    int stray = 0;
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));) stray += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(stray == 0);
}

/* ---- reading hand-written files ---------------------------------------------------------- */
static void test_handwritten(void) {
    /* 5-byte header with an unpadded length: the floats are unaligned, still read right */
    const float vals[2] = {0.25f, -7.0f};
    const char *p = tpath("hand.safetensors");
    write_st(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"k\":\"v\"}}",
             vals, 8);
    dl_st_file f;
    dl_error err = {{0}};
    CHECK_MSG(dl_st_open(&f, p, &err) == 0, "%s", err.msg);
    float out[2] = {0};
    const dl_st_tensor *t = dl_st_find(&f, "x");
    CHECK(t && dl_st_read_f32(t, out, 2, &err) == 0 && out[0] == 0.25f && out[1] == -7.0f);
    dl_st_close(&f);
    /* tensors stored out of name order and with a gap between them come back in file order */
    unsigned char data[12] = {1, 2, 3, 4, 0, 0, 0, 0, 9, 9, 9, 9};
    write_st(p, "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[0,4]},"
                "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}",
             data, 12);
    CHECK_MSG(dl_st_open(&f, p, &err) == 0, "%s", err.msg);
    CHECK(f.n == 3 && strcmp(f.tensors[0].name, "b") == 0 && strcmp(f.tensors[2].name, "a") == 0);
    dl_st_close(&f);
}

/* ---- malformed files --------------------------------------------------------------------- */
static void test_truncated_prefixes(void) {
    dl_st_tensor ts[8];
    int n = make_tensors(ts);
    const char *p = tpath("full.safetensors");
    dl_error err;
    CHECK(dl_st_write(p, ts, n, NULL, &err) == 0);
    char *full;
    size_t len;
    CHECK(dl_read_file(p, &full, &len, &err) == 0);
    const char *q = tpath("prefix.safetensors");
    int ok = 0;
    for (size_t k = 0; k < len; k++) {
        write_raw(q, full, k);
        dl_st_file f;
        dl_error e2 = {{0}};
        if (dl_st_open(&f, q, &e2) == 0) {
            dl_st_close(&f);
            fprintf(stderr, "prefix of %zu bytes was accepted\n", k);
        } else {
            ok += strstr(e2.msg, q) != NULL && strlen(e2.msg) > strlen(q) + 10;
        }
    }
    CHECK_MSG(ok == (int)len, "%d of %zu prefixes rejected with a message", ok, len);
    free(full);
}

static void test_bad_lengths(void) {
    const char *p = tpath("len.safetensors");
    write_raw(p, "", 0);
    expect_reject(p, "too short", __LINE__);
    unsigned char buf[100] = {0};
    buf[0] = 0xe8, buf[1] = 0x03; /* 1000 > file */
    write_raw(p, buf, sizeof buf);
    expect_reject(p, "past the end of the file", __LINE__);
    memset(buf, 0xff, 8); /* 2^64-1 */
    write_raw(p, buf, sizeof buf);
    expect_reject(p, "past the end of the file", __LINE__);
    /* a (sparse) file larger than the header cap whose header claims all of it */
    int fd = open(p, O_WRONLY | O_TRUNC);
    uint64_t hl = (100u << 20) + 8;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hl >> (8 * i));
    CHECK(fd >= 0 && write(fd, buf, 8) == 8 && ftruncate(fd, (off_t)(hl + 8)) == 0);
    close(fd);
    expect_reject(p, "limit", __LINE__);
    expect_reject(tpath("does-not-exist"), "cannot open", __LINE__);
}

static void test_bad_headers(void) {
    REJECT("{\"a\":", 0, "not valid JSON");
    REJECT("\xff\xfe", 0, "not valid JSON");
    REJECT("[1,2]", 0, "JSON object");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "not valid JSON");
    REJECT("{\"a\":5}", 0, "entry must be an object");
    REJECT("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "unsupported dtype 'Q4'");
    REJECT("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'dtype' must be a string");
    REJECT("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'dtype' must be a string");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, "must be an array");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "must be an array");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0] must be an integer");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,\"1\"],\"data_offsets\":[0,8]}}", 8, "shape[1] must be an integer");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative");
    REJECT("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, "dimensions");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "past the end of the data");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 8, "past the end of the data");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "ordered range");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-4,0]}}", 8, "ordered range");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, "[begin, end]");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":\"0,8\"}}", 8, "[begin, end]");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, "two integers");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "overlap");
    REJECT("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0, "overflows");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0, "overflows");
    REJECT("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,0]}}", 0, "not valid JSON");
    REJECT("{\"__metadata__\":[1]}", 0, "'__metadata__' must be an object");
    REJECT("{\"__metadata__\":{\"k\":1}}", 0, "must be a string");
    /* the error names the tensor */
    REJECT("{\"the_tensor\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'the_tensor'");
}

/* ---- fuzz ----------------------------------------------------------------------------------
 * Random mutations of a valid file: byte flips anywhere, digit changes inside the header (so
 * offsets and shapes change while the JSON stays valid), truncation and extension. Opening
 * must fail cleanly or succeed with every tensor readable; ASan checks the reads. */
static void fuzz_one(const unsigned char *base, size_t len, dl_rng *r, unsigned char *buf, size_t *out_len) {
    memcpy(buf, base, len);
    size_t n = len;
    int kind = (int)dl_rng_below(r, 4), muts = 1 + (int)dl_rng_below(r, 4);
    for (int m = 0; m < muts; m++) {
        if (kind == 0) {
            buf[dl_rng_below(r, n)] = (unsigned char)dl_rng_u64(r);
        } else if (kind == 1 || kind == 2) {
            for (int tries = 0; tries < 200; tries++) {
                size_t i = 8 + dl_rng_below(r, n - 8);
                if (buf[i] >= '0' && buf[i] <= '9') {
                    buf[i] = (unsigned char)('0' + dl_rng_below(r, 10));
                    break;
                }
            }
        } else {
            n = dl_rng_below(r, 2) ? dl_rng_below(r, n + 1) : len + dl_rng_below(r, 16);
            if (n > len) memset(buf + len, 'A', n - len);
        }
    }
    if (dl_rng_below(r, 8) == 0) buf[dl_rng_below(r, 8 < n ? 8 : n ? n : 1)] ^= (unsigned char)(1u << dl_rng_below(r, 8));
    *out_len = n;
}

static void test_fuzz(void) {
    dl_st_tensor ts[8];
    int n = make_tensors(ts);
    const char *p = tpath("seed.safetensors"), *q = tpath("fuzz.safetensors");
    const char *md[] = {"a", "b", NULL};
    dl_error err;
    CHECK(dl_st_write(p, ts, n, md, &err) == 0);
    char *base;
    size_t len;
    CHECK(dl_read_file(p, &base, &len, &err) == 0);
    unsigned char *buf = malloc(len + 32);
    dl_rng r;
    dl_rng_seed(&r, 1234);
    int opened = 0, rejected = 0, unclear = 0;
    for (int it = 0; it < 2000; it++) {
        size_t blen;
        fuzz_one((const unsigned char *)base, len, &r, buf, &blen);
        write_raw(q, buf, blen);
        dl_st_file f;
        dl_error e2 = {{0}};
        if (dl_st_open(&f, q, &e2) != 0) {
            rejected++;
            unclear += strlen(e2.msg) < strlen(q) + 10;
            continue;
        }
        opened++;
        unsigned sum = 0;
        for (int i = 0; i < f.n; i++) {
            const unsigned char *d = f.tensors[i].data;
            for (size_t k = 0; k < f.tensors[i].nbytes; k++) sum += d[k];
            if (f.tensors[i].dtype == DL_F32 || f.tensors[i].dtype == DL_F16 || f.tensors[i].dtype == DL_BF16) {
                float *tmp = malloc(f.tensors[i].numel * sizeof(float) + 1);
                CHECK(dl_st_read_f32(&f.tensors[i], tmp, f.tensors[i].numel, &e2) == 0);
                free(tmp);
            }
        }
        (void)sum;
        dl_st_close(&f);
    }
    printf("fuzz: %d opened, %d rejected\n", opened, rejected);
    CHECK(opened + rejected == 2000 && rejected > 500 && opened > 50);
    CHECK(unclear == 0);
    free(buf);
    free(base);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("safetensors"));
    test_round_trip();
    test_write_errors();
    test_handwritten();
    test_truncated_prefixes();
    test_bad_lengths();
    test_bad_headers();
    test_fuzz();
    dl_error err;
    dl_rm_rf(g_dir, &err);
    TEST_MAIN_END();
}
