/* A tiny OpenAI-compatible server for harvest tests: a thread listening on 127.0.0.1 (port 0),
 * one request per connection, each connection answered by its own short-lived thread so
 * concurrent requests really overlap. What it answers depends on the prompt text (for chat,
 * the last message's content), keyed on its first word:
 *   ok...    200 at once                 hold...  200 after hold_ms
 *   r429...  429 + Retry-After: 1, then 200   r500...  500 twice, then 200
 *   bad400.. 400 always                  slow...  first try sleeps slow_ms, then 200
 *   junk...  200 with a truncated body   nolp...  200 without logprobs
 *   down...  503 always
 * A 200 carries logprobs in the completions or the chat shape when the request asked for
 * them; the completions shape is pretty-printed to check that OUT keeps the digits but not the
 * whitespace. Everything is bounded: FS_MAX_REQ connections, 5 s socket timeouts. */
#ifndef DISTIL_TEST_FAKE_SERVER_H
#define DISTIL_TEST_FAKE_SERVER_H
#include "base/base.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FS_MAX_REQ 256
#define FS_MAX_KEYS 128

typedef struct fs_request {
    char method[8], path[64], auth[256];
    char prompt[128];
    char *body;
    double t; /* arrival, dl_now() */
} fs_request;

typedef struct fake_server {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    fs_request reqs[FS_MAX_REQ];
    int n_reqs, open_now, open_max, handlers;
    int hold_ms, slow_ms;
    volatile int hurry; /* cut sleeps short (between test cases) */
    char keys[FS_MAX_KEYS][128];
    int tries[FS_MAX_KEYS], n_keys;
} fake_server;

typedef struct { fake_server *s; int fd; } fs_conn;

typedef struct fs_reply {
    int status;
    const char *reason, *headers;
    char body[4096];
} fs_reply;

static void fs_sleep_ms(fake_server *s, int ms) {
    double end = dl_now() + ms / 1000.0;
    while (!s->stop && !s->hurry && dl_now() < end) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void fs_set(fs_reply *r, int status, const char *reason, const char *headers, const char *body) {
    r->status = status;
    r->reason = reason;
    r->headers = headers;
    snprintf(r->body, sizeof r->body, "%s", body);
}

static void fs_send(int fd, const fs_reply *r) {
    char head[512];
    const char *body = r->body;
    size_t n = strlen(body);
    int k = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n",
                     r->status, r->reason, n, r->headers);
    if (send(fd, head, (size_t)k, MSG_NOSIGNAL) < 0) return;
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, body + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

/* Reads one request: headers, then Content-Length bytes of body. Returns the malloc'ed text and
 * the body offset, or NULL. */
static char *fs_read_request(int fd, size_t *body_at, size_t *total) {
    size_t cap = 1 << 20, len = 0, need = 0;
    char *buf = malloc(cap + 1);
    *body_at = 0;
    while (buf && len < cap) {
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        char *end = *body_at ? NULL : strstr(buf, "\r\n\r\n");
        if (end) {
            *body_at = (size_t)(end - buf) + 4;
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            need = *body_at + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (*body_at && len >= need) {
            *total = len;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

/* The try number (1, 2, ...) of this prompt text. */
static int fs_count_try(fake_server *s, const char *prompt) {
    for (int i = 0; i < s->n_keys; i++)
        if (!strcmp(s->keys[i], prompt)) return ++s->tries[i];
    if (s->n_keys == FS_MAX_KEYS) return 1;
    snprintf(s->keys[s->n_keys], sizeof s->keys[0], "%s", prompt);
    s->tries[s->n_keys] = 1;
    return s->n_keys++, 1;
}

static void fs_record(fake_server *s, fs_request *q, const char *text, size_t body_at) {
    sscanf(text, "%7s %63s", q->method, q->path);
    const char *a = strcasestr(text, "\r\nAuthorization: ");
    if (a && (size_t)(a - text) < body_at) sscanf(a + 17, "%255[^\r\n]", q->auth);
    q->body = strdup(text + body_at);
    q->t = dl_now();
    json_t *b = json_loads(q->body, 0, NULL), *p = json_object_get(b, "prompt");
    json_t *msgs = json_object_get(b, "messages");
    if (json_array_size(msgs)) p = json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content");
    snprintf(q->prompt, sizeof q->prompt, "%s", json_is_string(p) ? json_string_value(p) : "");
    json_decref(b);
    (void)s;
}

static const char FS_COMPLETION_LP[] =
    "{\n  \"tokens\": [\"echo\", \":\"],\n  \"token_logprobs\": [-0.1, -0.25],\n"
    "  \"top_logprobs\": [{\"echo\": -0.1, \"x\": -2.5}, {\":\": -0.25, \"y\": -1.75}],\n"
    "  \"text_offset\": [0, 4]\n}";
static const char FS_CHAT_LP[] =
    "{\"content\":[{\"token\":\"echo\",\"logprob\":-0.1,\"bytes\":[101,99,104,111],\"top_logprobs\":"
    "[{\"token\":\"echo\",\"logprob\":-0.1,\"bytes\":[101,99,104,111]},{\"token\":\"x\",\"logprob\":-2.5,"
    "\"bytes\":[120]}]}],\"refusal\":null}";

static void fs_answer_ok(fs_reply *r, const fs_request *q, int with_logprobs) {
    json_t *b = json_loads(q->body, 0, NULL);
    int chat = strstr(q->path, "/chat/") != NULL, lp = with_logprobs && json_object_get(b, "logprobs");
    json_decref(b);
    char text[200];
    char *body = r->body;
    size_t nb = sizeof r->body;
    snprintf(text, sizeof text, "echo:%s", q->prompt);
    json_t *t = json_string(text);
    char *ts = json_dumps(t, JSON_ENCODE_ANY);
    json_decref(t);
    if (chat)
        snprintf(body, nb,
                 "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"fake-model\","
                 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":%s},\"logprobs\":%s,"
                 "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
                 "\"total_tokens\":5}}",
                 ts, lp ? FS_CHAT_LP : "null");
    else
        snprintf(body, nb,
                 "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"fake-model\","
                 "\"choices\":[{\"index\":0,\"text\":%s,\"logprobs\":%s,\"finish_reason\":\"length\"}],"
                 "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}",
                 ts, lp ? FS_COMPLETION_LP : "null");
    free(ts);
    r->status = 200;
    r->reason = "OK";
    r->headers = "";
}

static void fs_answer(fake_server *s, fs_reply *r, const fs_request *q, int try_no) {
    const char *p = q->prompt;
    if (!strcmp(q->method, "GET") && strstr(q->path, "/v1/models"))
        return fs_set(r, 200, "OK", "", "{\"object\":\"list\",\"data\":[{\"id\":\"fake-model\",\"object\":\"model\"}]}");
    if (!strncmp(p, "hold", 4)) fs_sleep_ms(s, s->hold_ms);
    if (!strncmp(p, "slow", 4) && try_no == 1) fs_sleep_ms(s, s->slow_ms);
    if (!strncmp(p, "r429", 4) && try_no == 1)
        return fs_set(r, 429, "Too Many Requests", "Retry-After: 1\r\n",
                      "{\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\"}}");
    if (!strncmp(p, "r500", 4) && try_no <= 2)
        return fs_set(r, 500, "Internal Server Error", "", "{\"error\":{\"message\":\"boom\"}}");
    if (!strncmp(p, "down", 4)) return fs_set(r, 503, "Service Unavailable", "", "overloaded");
    if (!strncmp(p, "bad400", 6))
        return fs_set(r, 400, "Bad Request", "",
                      "{\"error\":{\"message\":\"'max_tokens' is too large\",\"type\":\"invalid_request_error\"}}");
    if (!strncmp(p, "junk", 4)) return fs_set(r, 200, "OK", "", "{\"choices\":[{\"text\":\"cut");
    fs_answer_ok(r, q, strncmp(p, "nolp", 4) != 0);
}

/* open_now counts requests between their arrival and their answer: the concurrency a test
 * checks, free of the race between one connection closing and the next one opening. */
static void *fs_handle(void *arg) {
    fs_conn *c = arg;
    fake_server *s = c->s;
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t body_at, total;
    char *text = fs_read_request(c->fd, &body_at, &total);
    if (text) {
        fs_request q = {0};
        fs_record(s, &q, text, body_at);
        free(text);
        pthread_mutex_lock(&s->mu);
        int try_no = fs_count_try(s, q.prompt), slot = s->n_reqs < FS_MAX_REQ ? s->n_reqs++ : -1;
        if (slot >= 0) s->reqs[slot] = q;
        else free(q.body);
        if (++s->open_now > s->open_max) s->open_max = s->open_now;
        pthread_mutex_unlock(&s->mu);
        fs_reply *r = calloc(1, sizeof *r);
        if (r && slot >= 0) fs_answer(s, r, &s->reqs[slot], try_no);
        pthread_mutex_lock(&s->mu);
        s->open_now--;
        pthread_mutex_unlock(&s->mu);
        if (r && slot >= 0) fs_send(c->fd, r);
        free(r);
    }
    close(c->fd);
    pthread_mutex_lock(&s->mu);
    s->handlers--;
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

static void *fs_main(void *arg) {
    fake_server *s = arg;
    int accepted = 0;
    while (!s->stop) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0) continue;
        fs_conn *c = malloc(sizeof *c);
        pthread_t t;
        if (!c || ++accepted > FS_MAX_REQ) { /* bounded: no more than this many connections */
            free(c);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&s->mu);
        s->handlers++;
        pthread_mutex_unlock(&s->mu);
        if (pthread_create(&t, NULL, fs_handle, c) == 0) pthread_detach(t);
        else {
            close(fd);
            free(c);
            pthread_mutex_lock(&s->mu);
            s->handlers--;
            pthread_mutex_unlock(&s->mu);
        }
    }
    return NULL;
}

static int fs_start(fake_server *s) {
    memset(s, 0, sizeof *s);
    s->hold_ms = 300;
    s->slow_ms = 1000;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 64) ||
        getsockname(s->fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, fs_main, s) ? -1 : 0;
}

/* Waits (at most 5 s, sleeps cut short) for connections still being answered. */
static void fs_drain(fake_server *s) {
    s->hurry = 1;
    double end = dl_now() + 5;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int h = s->handlers;
        pthread_mutex_unlock(&s->mu);
        if (h == 0 || dl_now() > end) break;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    s->hurry = 0;
}

/* Forgets what was seen (requests, tries, the concurrency peak) between test cases. */
static void fs_reset(fake_server *s) {
    fs_drain(s);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_reqs; i++) free(s->reqs[i].body);
    s->n_reqs = s->n_keys = s->open_max = 0;
    pthread_mutex_unlock(&s->mu);
}

static void fs_stop(fake_server *s) {
    s->stop = 1;
    pthread_join(s->thread, NULL);
    fs_reset(s);
    close(s->fd);
}

/* Requests whose prompt text is p. */
static int fs_count(fake_server *s, const char *p) {
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_reqs; i++) n += !strcmp(s->reqs[i].prompt, p);
    pthread_mutex_unlock(&s->mu);
    return n;
}
#endif
