/* GGUF: the writer's bytes against a file spelt out by hand from the format description,
 * every key-value type and tensor type read back, alignment, the Q8_0 codec on known values,
 * and the writer refusing misuse. */
#include "formats/safetensors.h"
#include "test_gguf_bytes.h"

static char g_dir[512];

static const char *tpath(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

/* ---- exact bytes ------------------------------------------------------------------------- */
static void test_exact_bytes(void) {
    dl_error err;
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    float data[3] = {1.0f, -2.0f, 0.5f};
    uint64_t ne[1] = {3};
    CHECK(dl_gguf_add_str(w, "general.architecture", "llama", &err) == 0);
    CHECK(dl_gguf_add_u32(w, "a.u32", 7, &err) == 0);
    CHECK(dl_gguf_add_tensor(w, "t", DL_GGML_F32, 1, ne, data, sizeof data, 0, &err) == 0);
    CHECK(dl_gguf_write(w, tpath("exact.gguf"), &err) == 0);
    dl_gguf_writer_free(w);

    bb b = {0};
    bb_header(&b, 3, 1, 2);
    bb_str(&b, "general.architecture");
    bb_u32(&b, 8);
    bb_str(&b, "llama");
    bb_str(&b, "a.u32");
    bb_u32(&b, 4);
    bb_u32(&b, 7);
    bb_tinfo(&b, "t", 1, ne, 0, 0);
    bb_pad(&b, 32);
    for (int i = 0; i < 3; i++) bb_f32(&b, data[i]);
    bb_pad(&b, 32); /* the last tensor is padded too */
    size_t n;
    uint8_t *got = slurp_file(tpath("exact.gguf"), &n);
    CHECK_MSG(n == b.len && memcmp(got, b.p, n) == 0, "written %zu bytes, expected %zu", n, b.len);
    free(got);
    bb_free(&b);
}

/* ---- key-value round trip -------------------------------------------------------------- */
static void write_kvs(dl_gguf_writer *w) {
    dl_error err;
    CHECK(dl_gguf_add_u32(w, "k.u32", 4000000000u, &err) == 0);
    CHECK(dl_gguf_add_i32(w, "k.i32", -5, &err) == 0);
    CHECK(dl_gguf_add_f32(w, "k.f32", 1e-5f, &err) == 0);
    CHECK(dl_gguf_add_bool(w, "k.true", 1, &err) == 0);
    CHECK(dl_gguf_add_bool(w, "k.false", 0, &err) == 0);
    CHECK(dl_gguf_add_str(w, "k.str", "h\xc3\xa9llo", &err) == 0);
    CHECK(dl_gguf_begin_arr(w, "k.strs", DL_GGUF_STRING, 3, &err) == 0);
    CHECK(dl_gguf_push_str(w, "a", 1, &err) == 0);
    CHECK(dl_gguf_push_str(w, "", 0, &err) == 0);
    CHECK(dl_gguf_push_str(w, "x\0y", 3, &err) == 0); /* strings are counted, not NUL-terminated */
    CHECK(dl_gguf_begin_arr(w, "k.ints", DL_GGUF_I32, 2, &err) == 0);
    CHECK(dl_gguf_push_i32(w, -7, &err) == 0);
    CHECK(dl_gguf_push_i32(w, 3, &err) == 0);
    CHECK(dl_gguf_begin_arr(w, "k.empty", DL_GGUF_STRING, 0, &err) == 0);
}

static void check_kvs(const dl_gguf_file *f) {
    dl_error err;
    int64_t i;
    double d;
    int b;
    const char *s;
    size_t n;
    const dl_gguf_kv *kv;
    CHECK(dl_gguf_get_int(f, "k.u32", &i, &err) == 0 && i == 4000000000LL);
    CHECK(dl_gguf_get_int(f, "k.i32", &i, &err) == 0 && i == -5);
    CHECK(dl_gguf_get_float(f, "k.f32", &d, &err) == 0 && (float)d == 1e-5f);
    CHECK(dl_gguf_get_bool(f, "k.true", &b, &err) == 0 && b == 1);
    CHECK(dl_gguf_get_bool(f, "k.false", &b, &err) == 0 && b == 0);
    CHECK(dl_gguf_get_str(f, "k.str", &s, &n, &err) == 0 && n == 6 && memcmp(s, "h\xc3\xa9llo", 6) == 0);
    CHECK(dl_gguf_get_arr(f, "k.strs", DL_GGUF_STRING, &kv, &err) == 0 && kv->n == 3);
    dl_gguf_arr_str(kv, 0, &s, &n);
    CHECK(n == 1 && s[0] == 'a');
    dl_gguf_arr_str(kv, 1, &s, &n);
    CHECK(n == 0);
    dl_gguf_arr_str(kv, 2, &s, &n);
    CHECK(n == 3 && memcmp(s, "x\0y", 3) == 0);
    CHECK(dl_gguf_get_arr(f, "k.ints", DL_GGUF_I64, &kv, &err) == 0 && kv->n == 2 && kv->elem_type == DL_GGUF_I32);
    CHECK(dl_gguf_arr_int(kv, 0, &i) == 0 && i == -7);
    CHECK(dl_gguf_arr_int(kv, 1, &i) == 0 && i == 3);
    CHECK(dl_gguf_get_arr(f, "k.empty", DL_GGUF_STRING, &kv, &err) == 0 && kv->n == 0);
    /* wrong types and missing keys name the key */
    CHECK(dl_gguf_get_int(f, "k.str", &i, &err) == -1 && strstr(err.msg, "'k.str' must be an integer"));
    CHECK(dl_gguf_get_str(f, "k.u32", &s, &n, &err) == -1 && strstr(err.msg, "'k.u32' must be a string"));
    CHECK(dl_gguf_get_float(f, "k.nope", &d, &err) == -1 && strstr(err.msg, "'k.nope' is missing"));
    CHECK(dl_gguf_get_int(f, "k.ints", &i, &err) == -1 && strstr(err.msg, "is an array"));
    CHECK(dl_gguf_get_arr(f, "k.ints", DL_GGUF_STRING, &kv, &err) == -1 && strstr(err.msg, "array of string"));
}

/* ---- tensors ----------------------------------------------------------------------------- */
static void test_roundtrip(void) {
    dl_error err;
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    write_kvs(w);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[4], bf[2];
    const float hv[4] = {0.5f, -1.25f, 65504.0f, 0.0f}; /* exact in f16 */
    for (int i = 0; i < 4; i++) h[i] = dl_f32_to_f16(hv[i]);
    bf[0] = dl_f32_to_bf16(-3.0f), bf[1] = dl_f32_to_bf16(0.15625f); /* exact in bf16 */
    float qx[64];
    for (int i = 0; i < 64; i++) qx[i] = (float)(i % 32) - 16.0f;
    uint8_t q[2 * DL_Q8_0_BYTES];
    dl_q8_0_quantize(qx, q, 64);
    uint64_t ne_a[2] = {3, 2}, ne_h[1] = {4}, ne_b[3] = {1, 1, 2}, ne_q[2] = {32, 2};
    CHECK(dl_gguf_add_tensor(w, "a", DL_GGML_F32, 2, ne_a, a, sizeof a, 0, &err) == 0);
    CHECK(dl_gguf_add_tensor(w, "h", DL_GGML_F16, 1, ne_h, h, sizeof h, 0, &err) == 0);
    CHECK(dl_gguf_add_tensor(w, "b", DL_GGML_BF16, 3, ne_b, bf, sizeof bf, 0, &err) == 0);
    CHECK(dl_gguf_add_tensor(w, "q", DL_GGML_Q8_0, 2, ne_q, q, sizeof q, 0, &err) == 0);
    CHECK(dl_gguf_write(w, tpath("rt.gguf"), &err) == 0);
    dl_gguf_writer_free(w);

    dl_gguf_file f;
    CHECK_MSG(dl_gguf_open(&f, tpath("rt.gguf"), &err) == 0, "%s", err.msg);
    CHECK(f.version == 3 && f.alignment == 32 && f.n_kv == 9 && f.n_tensors == 4);
    CHECK(f.data_offset % 32 == 0);
    check_kvs(&f);
    const dl_gguf_tensor *t = dl_gguf_find_tensor(&f, "a");
    CHECK(t && t->ndim == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->numel == 6 && t->offset == 0);
    float out[64];
    CHECK(t && dl_gguf_tensor_to_f32(t, out, 6, &err) == 0 && memcmp(out, a, sizeof a) == 0);
    t = dl_gguf_find_tensor(&f, "h");
    CHECK(t && t->offset == 32 && t->nbytes == 8); /* a's 24 bytes padded to 32 */
    CHECK(t && dl_gguf_tensor_to_f32(t, out, 4, &err) == 0 && memcmp(out, hv, sizeof hv) == 0);
    t = dl_gguf_find_tensor(&f, "b");
    CHECK(t && t->ndim == 3 && t->ne[2] == 2 && dl_gguf_tensor_to_f32(t, out, 2, &err) == 0 && out[0] == -3.0f &&
          out[1] == 0.15625f);
    t = dl_gguf_find_tensor(&f, "q");
    CHECK(t && t->nbytes == 68 && dl_gguf_tensor_to_f32(t, out, 64, &err) == 0);
    for (int i = 0; i < 64; i++) CHECK_CLOSE(out[i], qx[i], 16.0 / 127 / 2 + 0.01, 0);
    CHECK(t && dl_gguf_tensor_to_f32(t, out, 63, &err) == -1 && strstr(err.msg, "64 elements"));
    CHECK(dl_gguf_find_tensor(&f, "zz") == NULL);
    size_t total = f.len;
    CHECK(total == f.data_offset + 32 + 32 + 32 + 96); /* each tensor padded to 32 */
    dl_gguf_close(&f);
}

static void test_alignment(void) {
    dl_error err;
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    CHECK(dl_gguf_set_alignment(w, 12, &err) == -1);
    CHECK(dl_gguf_set_alignment(w, 64, &err) == 0);
    float x[5] = {0};
    uint64_t ne[1] = {5};
    CHECK(dl_gguf_add_tensor(w, "x", DL_GGML_F32, 1, ne, x, sizeof x, 0, &err) == 0);
    CHECK(dl_gguf_add_tensor(w, "y", DL_GGML_F32, 1, ne, x, sizeof x, 0, &err) == 0);
    CHECK(dl_gguf_write(w, tpath("al.gguf"), &err) == 0);
    dl_gguf_writer_free(w);
    dl_gguf_file f;
    CHECK_MSG(dl_gguf_open(&f, tpath("al.gguf"), &err) == 0, "%s", err.msg);
    CHECK(f.alignment == 64 && f.data_offset % 64 == 0);
    CHECK(f.n_tensors == 2 && f.tensors[1].offset == 64 && f.len == f.data_offset + 128);
    dl_gguf_close(&f);
}

/* ---- Q8_0 ------------------------------------------------------------------------------ */
static void test_q8_0(void) {
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 10) * 0.1f; /* max |x| = 2.1 at i = 31 */
    uint8_t q[DL_Q8_0_BYTES];
    dl_q8_0_quantize(x, q, 32);
    uint16_t h;
    memcpy(&h, q, 2);
    float d = 2.1f / 127.0f;
    CHECK(h == dl_f32_to_f16(d));
    int exact = 1;
    for (int i = 0; i < 32; i++) exact &= (int8_t)q[2 + i] == (int8_t)lroundf(x[i] / d);
    CHECK(exact);
    CHECK((int8_t)q[2 + 31] == 127 && (int8_t)q[2 + 0] == -60);
    float y[32];
    dl_q8_0_dequantize(q, y, 32);
    float d16 = dl_f16_to_f32(h);
    for (int i = 0; i < 32; i++) CHECK_CLOSE(y[i], d16 * (float)(int8_t)q[2 + i], 0, 0);
    float z[32] = {0}; /* an all-zero block: scale 0, no division by zero */
    dl_q8_0_quantize(z, q, 32);
    dl_q8_0_dequantize(q, y, 32);
    CHECK(q[0] == 0 && q[1] == 0 && y[5] == 0.0f);
    z[3] = NAN; /* saturates instead of an undefined cast */
    dl_q8_0_quantize(z, q, 32);
    CHECK((int8_t)q[2] == 0);
}

static void test_types(void) {
    uint32_t blk, bytes;
    CHECK(dl_ggml_type_info(DL_GGML_Q8_0, &blk, &bytes) == 0 && blk == 32 && bytes == 34);
    CHECK(dl_ggml_type_info(12, &blk, &bytes) == 0 && blk == 256 && bytes == 144); /* Q4_K */
    CHECK(dl_ggml_type_info(DL_GGML_BF16, &blk, &bytes) == 0 && blk == 1 && bytes == 2);
    CHECK(dl_ggml_type_info(4, &blk, &bytes) == -1 && dl_ggml_type_info(31, NULL, NULL) == -1);
    CHECK(dl_ggml_type_info(1000, NULL, NULL) == -1);
    CHECK(strcmp(dl_ggml_type_name(14), "Q6_K") == 0 && strcmp(dl_ggml_type_name(5), "unknown") == 0);
}

/* ---- writer misuse --------------------------------------------------------------------- */
static void test_writer_errors(void) {
    dl_error err;
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    float x[32] = {0};
    uint64_t ne[2] = {32, 1}, ne33[1] = {33};
    CHECK(dl_gguf_add_u32(w, "a", 1, &err) == 0);
    CHECK(dl_gguf_add_u32(w, "a", 2, &err) == -1 && strstr(err.msg, "twice"));
    CHECK(dl_gguf_add_u32(w, "", 2, &err) == -1);
    CHECK(dl_gguf_begin_arr(w, "arr", DL_GGUF_I32, 2, &err) == 0);
    CHECK(dl_gguf_push_str(w, "s", 1, &err) == -1 && strstr(err.msg, "array of i32"));
    CHECK(dl_gguf_push_i32(w, 1, &err) == 0);
    CHECK(dl_gguf_add_u32(w, "b", 1, &err) == -1 && strstr(err.msg, "still needs 1"));
    CHECK(dl_gguf_write(w, tpath("bad.gguf"), &err) == -1);
    CHECK(dl_gguf_push_i32(w, 2, &err) == 0);
    CHECK(dl_gguf_push_i32(w, 3, &err) == -1);
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = 0;
    CHECK(dl_gguf_add_tensor(w, long_name, DL_GGML_F32, 2, ne, x, sizeof x, 0, &err) == -1);
    long_name[63] = 0; /* 63 bytes is the longest name llama.cpp accepts */
    CHECK(dl_gguf_add_tensor(w, long_name, DL_GGML_F32, 2, ne, x, sizeof x, 0, &err) == 0);
    CHECK(dl_gguf_add_tensor(w, long_name, DL_GGML_F32, 2, ne, x, sizeof x, 0, &err) == -1 && strstr(err.msg, "twice"));
    CHECK(dl_gguf_add_tensor(w, "w", DL_GGML_F32, 2, ne, x, 100, 0, &err) == -1 && strstr(err.msg, "need 128"));
    CHECK(dl_gguf_add_tensor(w, "q", DL_GGML_Q8_0, 1, ne33, x, 34, 0, &err) == -1 && strstr(err.msg, "blocks"));
    CHECK(dl_gguf_add_tensor(w, "u", 4, 1, ne33, x, 34, 0, &err) == -1 && strstr(err.msg, "unknown type"));
    void *owned = malloc(16); /* freed by the writer even when refused */
    CHECK(dl_gguf_add_tensor(w, "o", DL_GGML_F32, 1, ne, owned, 16, 1, &err) == -1);
    CHECK(dl_gguf_write(w, tpath("ok.gguf"), &err) == 0);
    dl_gguf_writer_free(w);
    dl_gguf_file f;
    CHECK(dl_gguf_open(&f, tpath("ok.gguf"), &err) == 0 && f.n_tensors == 1 && f.n_kv == 2);
    dl_gguf_close(&f);
    w = dl_gguf_writer_new(&err);
    CHECK(dl_gguf_write(w, "/nonexistent-dir/x.gguf", &err) == -1 && strstr(err.msg, "cannot create"));
    dl_gguf_writer_free(w);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("gguf"));
    test_exact_bytes();
    test_roundtrip();
    test_alignment();
    test_q8_0();
    test_types();
    test_writer_errors();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
