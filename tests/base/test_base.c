#include "base/base.h"
#include "test.h"
#include <jansson.h>

static void test_rng(void) {
    dl_rng a, b;
    dl_rng_seed(&a, 42);
    dl_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= dl_rng_u64(&a) == dl_rng_u64(&b);
    CHECK(same);
    dl_rng_seed(&b, 43);
    CHECK(dl_rng_u64(&a) != dl_rng_u64(&b));
    double sum = 0, sq = 0;
    int n = 20000, inrange = 1;
    for (int i = 0; i < n; i++) {
        float u = dl_rng_float(&a);
        inrange &= u >= 0 && u < 1;
        float z = dl_rng_normal(&a);
        sum += z;
        sq += z * z;
        inrange &= dl_rng_below(&a, 7) < 7;
    }
    CHECK(inrange);
    CHECK_CLOSE(sum / n, 0.0, 0.05, 0);
    CHECK_CLOSE(sq / n, 1.0, 0.05, 0);
}

static void test_files(void) {
    const char *dir = test_tmpdir("base");
    dl_error err;
    char sub[512], path[600];
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    CHECK(dl_mkdir_p(sub, &err) == 0);
    CHECK(dl_is_dir(sub));
    snprintf(path, sizeof path, "%s/file.bin", sub);
    CHECK(dl_write_file_atomic(path, "hello", 5, &err) == 0);
    char *data;
    size_t len;
    CHECK(dl_read_file(path, &data, &len, &err) == 0);
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    free(data);
    dl_mmap m;
    CHECK(dl_mmap_open(&m, path, &err) == 0 && m.len == 5);
    dl_mmap_close(&m);
    CHECK(dl_read_file("/nonexistent/x", &data, &len, &err) == -1);
    CHECK(strstr(err.msg, "/nonexistent/x") != NULL);
    snprintf(path, sizeof path, "%s/a", dir);
    CHECK(dl_rm_rf(path, &err) == 0);
    CHECK(!dl_path_exists(path));
}

static int count_entries(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f && fscanf(f, "%d", &n) != 1) n = -1;
    if (f) pclose(f);
    return n;
}

static void test_atomic_stream(void) {
    const char *dir = test_tmpdir("atomic");
    dl_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    /* abort leaves nothing behind */
    dl_atomic_file f;
    CHECK(dl_atomic_open(&f, path, &err) == 0);
    CHECK(dl_atomic_write(&f, "abc", 3) == 0);
    dl_atomic_abort(&f);
    dl_atomic_abort(&f);
    CHECK(count_entries(dir) == 0);
    /* nothing under the real name until commit; pwrite patches the start */
    CHECK(dl_atomic_open(&f, path, &err) == 0);
    CHECK(dl_atomic_write(&f, "xxxdef", 6) == 0);
    CHECK(!dl_path_exists(path));
    CHECK(dl_atomic_pwrite(&f, "abc", 3, 0) == 0);
    CHECK(dl_atomic_commit(&f, &err) == 0);
    char *data;
    size_t len;
    CHECK(dl_read_file(path, &data, &len, &err) == 0 && len == 6 && memcmp(data, "abcdef", 6) == 0);
    free(data);
    CHECK(count_entries(dir) == 1);
    /* a folder that does not exist is a clear error */
    snprintf(path, sizeof path, "%s/no/such/dir/out.bin", dir);
    CHECK(dl_atomic_open(&f, path, &err) == -1 && strstr(err.msg, "cannot create") != NULL);
    CHECK(dl_write_file_atomic(path, "x", 1, &err) == -1);
}

static void test_json(void) {
    const char *dir = test_tmpdir("basejson");
    dl_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/x.json", dir);
    json_t *o = json_pack("{s:i, s:f, s:b, s:s}", "n", 7, "x", 2.5, "t", 1, "s", "str");
    CHECK(dl_json_save(o, path, &err) == 0);
    json_decref(o);
    json_t *v = dl_json_load(path, &err);
    CHECK(v != NULL);
    long long n;
    double x;
    int t;
    CHECK(dl_json_get_int(v, "n", &n, &err) == 0 && n == 7);
    CHECK(dl_json_get_double(v, "x", &x, &err) == 0 && x == 2.5);
    CHECK(dl_json_get_bool(v, "t", &t, &err) == 0 && t == 1);
    CHECK(dl_json_get_int(v, "s", &n, &err) == -1 && strstr(err.msg, "'s'"));
    CHECK(dl_json_get_int(v, "missing", &n, &err) == -1 && strstr(err.msg, "missing"));
    json_decref(v);
    CHECK(dl_write_file_atomic(path, "{\"a\": ", 6, &err) == 0);
    CHECK(dl_json_load(path, &err) == NULL && strstr(err.msg, "invalid JSON"));
}

/* Every kind has a name for "got %s" messages, and so has an absent value (a key not there). */
static void test_json_type_name(void) {
    json_t *v = json_pack("{s:{}, s:[], s:s, s:i, s:f, s:b, s:b, s:n}", "o", "a", "s", "str", "i", 1, "r", 0.5,
                          "t", 1, "f", 0, "n");
    const char *keys[] = {"o", "a", "s", "i", "r", "t", "f", "n"};
    const char *want[] = {"an object", "an array", "a string", "an integer", "a number", "a boolean", "a boolean",
                          "null"};
    for (int i = 0; i < 8; i++) CHECK_MSG(strcmp(dl_json_type_name(json_object_get(v, keys[i])), want[i]) == 0, "%s", keys[i]);
    CHECK(strcmp(dl_json_type_name(json_object_get(v, "absent")), "nothing") == 0);
    CHECK(strcmp(dl_json_type_name(NULL), "nothing") == 0);
    json_decref(v);
}

static void test_buffers(void) {
    dl_ivec v = {0};
    for (int i = 0; i < 1000; i++) dl_ivec_push(&v, i);
    CHECK(v.len == 1000 && v.data[999] == 999);
    dl_ivec_free(&v);
    dl_buf b = {0};
    dl_buf_printf(&b, "%d-%s", 12, "ab");
    CHECK(b.len == 5 && strcmp(b.data, "12-ab") == 0);
    dl_buf_free(&b);
    size_t out;
    CHECK(dl_mul_size(SIZE_MAX / 2, 3, &out) == -1);
    CHECK(dl_add_size(SIZE_MAX, 1, &out) == -1);
    CHECK(dl_mul_size(6, 7, &out) == 0 && out == 42);
}

/* UTF-8 boundaries of RFC 3629: each first byte's range, the edges of the second byte's range
 * (overlong forms, surrogates, U+10FFFF), stray and missing continuation bytes. */
static void test_utf8(void) {
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"a", 1}, {"\x7f", 1}, {"\xc2\x80", 2}, {"\xdf\xbf", 2}, {"\xe0\xa0\x80", 3}, {"\xed\x9f\xbf", 3},
        {"\xef\xbf\xbf", 3}, {"\xf0\x90\x80\x80", 4}, {"\xf4\x8f\xbf\xbf", 4},
        {"\x80", 0},                  /* a continuation byte alone */
        {"\xc0\x80", 0}, {"\xc1\xbf", 0}, /* overlong two-byte forms */
        {"\xe0\x9f\xbf", 0},          /* overlong three-byte form */
        {"\xed\xa0\x80", 0},          /* a surrogate, U+D800 */
        {"\xf0\x8f\xbf\xbf", 0},      /* overlong four-byte form */
        {"\xf4\x90\x80\x80", 0},      /* U+110000 */
        {"\xf5\x80\x80\x80", 0}, {"\xff", 0},
        {"\xc3(", 0}, {"\xe2\x82(", 0}, /* a missing continuation byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i].s);
        CHECK_MSG(dl_utf8_char_len(cases[i].s, n) == cases[i].len, "case %zu: %zu, want %zu", i,
                  dl_utf8_char_len(cases[i].s, n), cases[i].len);
    }
    /* cut short by n: every shorter prefix of a character is invalid */
    CHECK(dl_utf8_char_len("\xf0\x9f\x98\x80", 3) == 0 && dl_utf8_char_len("\xe2\x82\xac", 2) == 0);
    CHECK(dl_utf8_char_len("\xc3\xa9", 1) == 0 && dl_utf8_char_len("x", 0) == 0);
}

int main(void) {
    test_rng();
    test_utf8();
    test_files();
    test_atomic_stream();
    test_json();
    test_json_type_name();
    test_buffers();
    TEST_MAIN_END();
}
