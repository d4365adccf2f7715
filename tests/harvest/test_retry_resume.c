/* Retry policy (what retries, how long it waits, Retry-After) and the resume scan of OUT. */
#include "harvest/internal.h"
#include "test.h"
#include <curl/curl.h>
#include <sys/stat.h>
#include <time.h>

static const char *tmp;

static void test_classify(void) {
    CHECK(hv_classify(CURLE_OK, 200) == HV_DONE);
    CHECK(hv_classify(CURLE_OK, 201) == HV_DONE);
    CHECK(hv_classify(CURLE_OK, 429) == HV_RETRY);
    CHECK(hv_classify(CURLE_OK, 500) == HV_RETRY);
    CHECK(hv_classify(CURLE_OK, 503) == HV_RETRY);
    CHECK(hv_classify(CURLE_OK, 599) == HV_RETRY);
    CHECK(hv_classify(CURLE_OK, 400) == HV_FAIL);
    CHECK(hv_classify(CURLE_OK, 401) == HV_FAIL);
    CHECK(hv_classify(CURLE_OK, 404) == HV_FAIL);
    CHECK(hv_classify(CURLE_OK, 413) == HV_FAIL);
    CHECK(hv_classify(CURLE_OK, 301) == HV_FAIL);
    CHECK(hv_classify(CURLE_OK, 600) == HV_FAIL);
    CHECK(hv_classify(CURLE_OPERATION_TIMEDOUT, 0) == HV_RETRY);
    CHECK(hv_classify(CURLE_COULDNT_CONNECT, 0) == HV_RETRY);
    CHECK(hv_classify(CURLE_GOT_NOTHING, 0) == HV_RETRY);
    CHECK(hv_classify(CURLE_RECV_ERROR, 200) == HV_RETRY); /* a 200 cut short is not an answer */
    CHECK(hv_classify(CURLE_URL_MALFORMAT, 0) == HV_FAIL);
    CHECK(hv_classify(CURLE_WRITE_ERROR, 200) == HV_FAIL);
}

static void test_backoff(void) {
    dl_rng r;
    dl_rng_seed(&r, 1);
    for (int i = 0; i < 200; i++) {
        double a = hv_backoff(1, -1, 0.5, 60, &r), b = hv_backoff(3, -1, 0.5, 60, &r);
        CHECK_MSG(a >= 0.25 && a <= 0.5, "try 1 waits %g", a);
        CHECK_MSG(b >= 1.0 && b <= 2.0, "try 3 waits %g", b);
        double c = hv_backoff(1, 1.0, 0.5, 60, &r); /* Retry-After: 1 */
        CHECK_MSG(c >= 1.0 && c <= 1.2, "retry-after 1 waits %g", c);
        CHECK(hv_backoff(1000000, -1, 0.5, 60, &r) <= 60); /* no overflow, capped */
        CHECK(hv_backoff(2, 3600, 0.5, 7, &r) == 7);
        CHECK(hv_backoff(2, 0, 0.5, 60, &r) <= 0.05);
    }
    /* jitter spreads the waits */
    double lo = 1e9, hi = 0;
    for (int i = 0; i < 100; i++) {
        double d = hv_backoff(2, -1, 1, 60, &r);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(hi - lo > 0.5);
}

static double ra(const char *s) { return hv_parse_retry_after(s, strlen(s)); }

static void test_retry_after(void) {
    CHECK(ra("1") == 1);
    CHECK(ra(" 2.5\r\n") == 2.5);
    CHECK(ra("0") == 0);
    CHECK(ra("99999999") == 86400);
    CHECK(ra("") == -1);
    CHECK(ra("  \r\n") == -1);
    CHECK(ra("abc") == -1);
    CHECK(ra("-3") == -1);
    CHECK(ra("1.2.3") == -1);
    CHECK(ra("Wed, 21 Oct 2015 07:28:00 GMT") == 0); /* in the past: go now */
    char date[64];
    time_t t = time(NULL) + 30;
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
    double d = ra(date);
    CHECK_MSG(d >= 28 && d <= 31, "%s -> %g", date, d);
    CHECK(ra("Wed, 21 Oct 2015 07:28:00 GMT trailing") == -1);
    char huge[200];
    memset(huge, '9', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    CHECK(ra(huge) == -1);
}

static const char *path_of(const char *name) {
    static char p[600];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return p;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

static void test_resume_scan(void) {
    const char *whole = "{\"id\":\"a\",\"completion\":\"x\"}\n"
                        "{\"id\":2,\"completion\":\"y\"}\n"
                        "\n"
                        "{ \"completion\": \"z\", \"id\": \"c\" }\n";
    const char *cut = "{\"id\":\"d\",\"compl";
    char text[512];
    snprintf(text, sizeof text, "%s%s", whole, cut);
    char p[600];
    snprintf(p, sizeof p, "%s", path_of("out.jsonl"));
    put(p, text);
    json_t *done = json_object();
    long lines, dropped;
    dl_error err = {{0}};
    CHECK_MSG(hv_resume_scan(p, done, &lines, &dropped, &err) == 0, "%s", err.msg);
    CHECK(lines == 3 && dropped == (long)strlen(cut));
    CHECK(json_object_size(done) == 3);
    CHECK(json_object_get(done, "\"a\"") && json_object_get(done, "2") && json_object_get(done, "\"c\""));
    CHECK(!json_object_get(done, "\"d\"") && !json_object_get(done, "\"2\""));
    CHECK(file_size(p) == (long)strlen(whole)); /* the cut line is gone, the rest kept */
    /* a second scan finds nothing to cut */
    json_object_clear(done);
    CHECK(hv_resume_scan(p, done, &lines, &dropped, &err) == 0 && lines == 3 && dropped == 0);
    /* no file yet: nothing done */
    json_object_clear(done);
    CHECK(hv_resume_scan(path_of("none.jsonl"), done, &lines, &dropped, &err) == 0 && lines == 0);
    CHECK(!dl_path_exists(path_of("none.jsonl")));
    /* a file this command did not write */
    put(p, "{\"id\":\"a\"}\nhello world\n");
    CHECK_MSG(hv_resume_scan(p, done, &lines, &dropped, &err) == -1 && strstr(err.msg, "out.jsonl:2: not a harvest line"), "%s", err.msg);
    put(p, "{\"id\":true}\n");
    CHECK(hv_resume_scan(p, done, &lines, &dropped, &err) == -1 && strstr(err.msg, ":1:"));
    put(p, "{\"id\":");
    json_object_clear(done);
    CHECK(hv_resume_scan(p, done, &lines, &dropped, &err) == 0 && dropped == 6 && file_size(p) == 0);
    json_decref(done);
}

int main(void) {
    tmp = test_tmpdir("harvest-retry");
    test_classify();
    test_backoff();
    test_retry_after();
    test_resume_scan();
    TEST_MAIN_END();
}
