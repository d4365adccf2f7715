/* A tiny HTTP/1.1 client over a socket to 127.0.0.1, for the server tests and the benchmark:
 * one request per connection ("Connection: close"), the whole response read until the server
 * closes, chunked bodies decoded. Every call has a timeout, so a hung server fails a test
 * instead of hanging it. */
#ifndef DISTIL_TEST_HTTP_CLIENT_H
#define DISTIL_TEST_HTTP_CLIENT_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct http_resp {
    int status;
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated (chunked encoding removed) */
    size_t body_len;
} http_resp;

static void http_resp_free(http_resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A connected socket with send/receive timeouts, or -1. */
static int http_connect(int port, double timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int http_send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads until EOF (or the timeout: -1). *out is malloc'ed and NUL-terminated. */
static int http_read_all(int fd, char **out, size_t *len) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return -1;
    for (;;) {
        if (n + 2048 > cap) {
            char *g = realloc(b, cap *= 2);
            if (!g) return free(b), -1;
            b = g;
        }
        ssize_t k = recv(fd, b + n, cap - n - 1, 0);
        if (k == 0) break;
        if (k < 0) {
            if (errno == EINTR) continue;
            /* a reset after a full response still counts (the server may close hard) */
            if (errno == ECONNRESET && n > 0) break;
            return free(b), -1;
        }
        n += (size_t)k;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

// removes the chunked transfer encoding in place; -1 when malformed
static int http_dechunk(char *b, size_t *len) {
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        unsigned long size = strtoul(b + in, &end, 16);
        char *crlf = strstr(b + in, "\r\n");
        if (!crlf || end == b + in) return -1;
        in = (size_t)(crlf - b) + 2;
        if (size == 0) break;
        if (in + size + 2 > *len) return -1;
        memmove(b + out, b + in, size);
        out += size;
        in += size + 2;
    }
    b[out] = 0;
    *len = out;
    return 0;
}

/* The value of header `name` in r (case-insensitive), copied into buf; NULL if absent. */
static const char *http_header(const http_resp *r, const char *name, char *buf, size_t n) {
    size_t nl = strlen(name);
    for (const char *p = r->head ? strstr(r->head, "\r\n") : NULL; p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') v++;
            size_t k = e ? (size_t)(e - v) : strlen(v);
            if (k >= n) k = n - 1;
            memcpy(buf, v, k);
            buf[k] = 0;
            return buf;
        }
    }
    return NULL;
}

/* Splits a raw response into status, head and body. */
static int http_parse(char *raw, size_t len, http_resp *r) {
    memset(r, 0, sizeof *r);
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1) return -1;
    size_t hl = (size_t)(sep - raw) + 2, bl = len - (hl + 2);
    r->head = malloc(hl + 1);
    r->body = malloc(bl + 1);
    if (!r->head || !r->body) return http_resp_free(r), -1;
    memcpy(r->head, raw, hl);
    r->head[hl] = 0;
    memcpy(r->body, sep + 4, bl);
    r->body[bl] = 0;
    r->body_len = bl;
    char te[64];
    if (http_header(r, "Transfer-Encoding", te, sizeof te) && strstr(te, "chunked") &&
        http_dechunk(r->body, &r->body_len))
        return http_resp_free(r), -1;
    return 0;
}

/* Sends raw bytes as they are and reads the response. */
static int http_raw(int port, const char *bytes, size_t n, http_resp *r, double timeout_s) {
    memset(r, 0, sizeof *r);
    int fd = http_connect(port, timeout_s);
    if (fd < 0) return -1;
    char *raw = NULL;
    size_t len = 0;
    /* a server may answer before the body is sent (413) and stop reading: read its answer anyway */
    if (http_send_all(fd, bytes, n) == 0) shutdown(fd, SHUT_WR);
    int rc = http_read_all(fd, &raw, &len);
    close(fd);
    if (rc == 0) rc = http_parse(raw, len, r);
    free(raw);
    return rc;
}

/* One request. key may be NULL (no Authorization header); body may be NULL. */
static int http_request(int port, const char *method, const char *path, const char *key, const char *body,
                        http_resp *r, double timeout_s) {
    size_t bl = body ? strlen(body) : 0, cap = bl + 1024;
    char *req = malloc(cap);
    if (!req) return -1;
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "", bl);
    if (body) memcpy(req + n, body, bl);
    int rc = http_raw(port, req, (size_t)n + bl, r, timeout_s);
    free(req);
    return rc;
}
#endif
