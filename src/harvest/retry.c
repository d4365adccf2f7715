/* When to try again, and how long to wait first. */
#include "internal.h"
#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

hv_verdict hv_classify(int curl_code, long status) {
    switch ((CURLcode)curl_code) {
    case CURLE_OK: break;
    /* the network or the server had a bad moment: the same request may well work later */
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return HV_RETRY;
    default: return HV_FAIL; /* a bad URL, a certificate problem...: asking again changes nothing */
    }
    if (status >= 200 && status < 300) return HV_DONE;
    if (status == 429 || (status >= 500 && status < 600)) return HV_RETRY;
    return HV_FAIL;
}

double hv_backoff(int tries, double retry_after, double base, double cap, dl_rng *rng) {
    double u = (double)dl_rng_float(rng), d;
    if (retry_after >= 0) {
        /* at least what the server asked; the spread keeps N waiting requests from returning
         * in the same instant and tripping the limit again */
        d = retry_after * (1.0 + 0.1 * u) + 0.05 * u;
    } else {
        int e = tries < 1 ? 0 : tries - 1;
        if (e > 30) e = 30;
        d = base * ldexp(1.0, e) * (0.5 + 0.5 * u); /* "equal jitter" */
    }
    return d < cap ? d : cap;
}

static int all_digits(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if ((s[i] < '0' || s[i] > '9') && s[i] != '.') return 0;
    return 1;
}

double hv_parse_retry_after(const char *v, size_t n) {
    while (n > 0 && (*v == ' ' || *v == '\t')) v++, n--;
    while (n > 0 && strchr(" \t\r\n", v[n - 1])) n--;
    char buf[64];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, v, n);
    buf[n] = 0;
    if (all_digits(buf, n)) {
        char *end;
        double s = strtod(buf, &end);
        if (*end || !isfinite(s)) return -1;
        return s > 86400 ? 86400 : s;
    }
    struct tm tm; /* HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT" */
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    double s = difftime(timegm(&tm), time(NULL));
    return s < 0 ? 0 : s > 86400 ? 86400 : s;
}
