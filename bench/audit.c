/* Harvest audit on live traffic: an in-process `distil serve` (tiny model, keys without limits)
 * takes a mix of ordinary users and harvesters, each from its own loopback address (127.x.y.z),
 * on a time-compressed schedule; then `distil audit`'s library reads the usage db and the flags
 * are compared with who was who. Prints one JSON line:
 *   recall (harvesting keys flagged), false_positive_rate (ordinary keys flagged), keys, counts
 *   by kind, requests, errors, timing, and the audit's time on a 100k-row log.
 *
 * The schedule spans --hours simulated hours, played in --seconds of real time. The audit's timing
 * features are ratios of gaps, so they do not change with the compression; its hours-of-day
 * feature needs days of traffic and is not measured here. Ordinary prompts are sentences of a real
 * text (each user draws from a region of it, as a person keeps to their subjects); harvester
 * prompts are templates filled with words or sentences from anywhere in it. Some people behave
 * like machines (scripts asking logprobs, personal templates) and some harvesters vary their
 * templates or never ask logprobs, so neither side is clean. */
#include "../tests/serve/serve_fixture.h"
#include "ops/ops.h"
#include "provenance/audit.h"
#include "serve/serve.h"
#include "serve/usage.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SIM_HOUR 3600.0

typedef struct opts {
    const char *corpus, *work, *dump;
    int ordinary, fast, slow, groups, threads, scale_rows, log_prompts, keep;
    double seconds, hours;
    uint64_t seed;
} opts;

/* ---- the text ------------------------------------------------------------------------------- */

typedef struct corpus {
    char **sent;  /* sentences, in order */
    int n;
    char **topic; /* words of 6+ letters */
    int n_topic;
} corpus;

static int push(char ***v, int *n, int *cap, char *s) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        char **g = realloc(*v, (size_t)*cap * sizeof *g);
        if (!g) return -1;
        *v = g;
    }
    (*v)[(*n)++] = s;
    return 0;
}

static int words_in(const char *s) {
    int n = 0;
    for (int in = 0; *s; s++) {
        int w = *s != ' ';
        n += w && !in;
        in = w;
    }
    return n;
}

/* Lines ending in ':' (speaker names) are dropped; the rest is cut at . ! ? into sentences of
 * 4 to 40 words. */
static void split_sentences(corpus *c, char *text) {
    int cap = 0, tcap = 0;
    char *out = text, *start = text;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
        int speaker = end > line && end[-1] == ':';
        for (char *p = line; !speaker && p < end; p++) {
            *out++ = *p;
            if (*p == '.' || *p == '!' || *p == '?') {
                *out++ = 0;
                while (*start == ' ') start++;
                int w = words_in(start);
                if (w >= 4 && w <= 40) push(&c->sent, &c->n, &cap, start);
                start = out;
            }
        }
        if (!speaker && out > start && out[-1] != ' ') *out++ = ' ';
        line = nl ? nl + 1 : end;
    }
    for (int i = 0; i < c->n; i++) /* topic words: a copy of each long word */
        for (const char *p = c->sent[i]; *p;) {
            while (*p && !((*p | 32) >= 'a' && (*p | 32) <= 'z')) p++;
            const char *w = p;
            while ((*p | 32) >= 'a' && (*p | 32) <= 'z') p++;
            if (p - w >= 6 && (i * 7 + (int)(p - w)) % 5 == 0) push(&c->topic, &c->n_topic, &tcap, strndup(w, (size_t)(p - w)));
        }
}

/* Without a corpus: sentences of made-up words with a Zipf-like frequency. */
static void made_up_corpus(corpus *c, dl_rng *r) {
    static const char *SYL[] = {"ba", "ko", "mi", "ra", "tu", "se", "no", "li", "da", "fe", "gu", "zo"};
    int cap = 0, tcap = 0;
    for (int i = 0; i < 20000; i++) {
        char *s = malloc(400);
        int n = 0, words = 6 + (int)dl_rng_below(r, 14);
        for (int w = 0; w < words; w++) {
            unsigned id = (unsigned)(3000 * pow(dl_rng_float(r), 3));
            if (w) s[n++] = ' ';
            for (unsigned k = id + 1; k; k /= 12) n += sprintf(s + n, "%s", SYL[k % 12]);
        }
        s[n++] = '.';
        s[n] = 0;
        push(&c->sent, &c->n, &cap, s);
    }
    for (int i = 0; i < 2000; i++) {
        char *t = malloc(32);
        int n = 0;
        for (unsigned k = (unsigned)i + 200; k; k /= 12) n += sprintf(t + n, "%s", SYL[k % 12]);
        push(&c->topic, &c->n_topic, &tcap, t);
    }
}

static const char *corpus_path(const opts *o) {
    static const char *CANDIDATES[] = {"../shared/data/tinyshakespeare.txt", "/usr/local/share/distil/kjv.txt", NULL};
    if (o->corpus) return o->corpus;
    for (int i = 0; CANDIDATES[i]; i++)
        if (dl_path_exists(CANDIDATES[i])) return CANDIDATES[i];
    return NULL;
}

/* ---- actors and their schedules ------------------------------------------------------------- */

enum { CHATTY, DEV, BATCH, TEMPLATE_USER, BURSTY, FAST, SLOW, PATIENT, NKINDS };
static const char *KIND_NAME[] = {"chatty", "developer", "batch", "template_user", "bursty", "fast", "slow", "patient"};

typedef struct actor {
    int kind, harvest;
    char addr[32], key[DL_KEY_TEXT_MAX];
    long long key_id;
    int region;          /* first sentence of the part of the text a person keeps to */
    int logprobs_every;  /* asks for logprobs on 1 in this many requests (0: never) */
    int max_tokens, tpl[3], n_tpl;
} actor;

typedef struct event {
    double sim_t;
    int actor, chat, logprobs;
    char *body, *prompt;
} event;

typedef struct world {
    const opts *o;
    corpus c;
    dl_rng r;
    actor *a;
    int n_actors, cap_actors;
    event *e;
    int n_events, cap_events;
} world;

#define REGION 2000

static const char *HARVEST_TEMPLATES[] = {
    "Write a detailed explanation of %s for a student, with two examples and a short summary at the end.",
    "Explain what %s means, where the idea comes from, and how it is used today. Be thorough.",
    "Q: What is %s and why does it matter? Give a complete answer. A:",
    "You are an expert. Describe %s step by step, covering causes, effects and common misconceptions.",
    "Continue the following passage in the same style for several sentences: %s",
    "Rewrite the following text in plain modern English and then explain its meaning: %s",
};
#define N_HARVEST_TEMPLATES 6
#define FIRST_SENTENCE_TEMPLATE 4 /* templates from here on are filled with a sentence */

static const char *PERSONAL_TEMPLATES[] = {"Translate to French: %s", "Fix the grammar of this line: %s",
                                           "Summarize in one line: %s", "Is this sentence formal or casual? %s"};

/* 127.a.b.c: all of 127/8 reaches the server over loopback, each a distinct client address */
static void loopback(char out[32], int a, int b, int c) { snprintf(out, 32, "127.%d.%d.%d", a & 255, b & 255, c % 255 + 1); }

static int uniform(dl_rng *r, int lo, int hi) { return lo + (int)dl_rng_below(r, (uint64_t)(hi - lo + 1)); }
static double unit(dl_rng *r) { return dl_rng_float(r); }

static const char *sentence_near(world *w, const actor *a) {
    int i = a->region + (int)dl_rng_below(&w->r, REGION);
    return w->c.sent[i % w->c.n];
}

static const char *any_sentence(world *w) { return w->c.sent[dl_rng_below(&w->r, (uint64_t)w->c.n)]; }

static void add_event(world *w, int actor_i, double t, const char *prompt, int chat) {
    actor *a = &w->a[actor_i];
    int lp = a->logprobs_every && dl_rng_below(&w->r, (uint64_t)a->logprobs_every) == 0;
    json_t *o = chat ? json_pack("{s:s, s:[{s:s, s:s}], s:i}", "model", "m", "messages", "role", "user", "content", prompt,
                                 "max_tokens", a->max_tokens)
                     : json_pack("{s:s, s:s, s:i}", "model", "m", "prompt", prompt, "max_tokens", a->max_tokens);
    if (lp && chat) {
        json_object_set_new(o, "logprobs", json_true());
        json_object_set_new(o, "top_logprobs", json_integer(5));
    } else if (lp) {
        json_object_set_new(o, "logprobs", json_integer(5));
    }
    if (w->n_events == w->cap_events) {
        w->cap_events = w->cap_events ? 2 * w->cap_events : 4096;
        w->e = realloc(w->e, (size_t)w->cap_events * sizeof *w->e);
    }
    w->e[w->n_events++] = (event){t, actor_i, chat, lp, json_dumps(o, JSON_COMPACT), strdup(prompt)};
    json_decref(o);
}

static int new_actor(world *w, int kind, const char *addr) {
    if (w->n_actors == w->cap_actors) {
        w->cap_actors = w->cap_actors ? 2 * w->cap_actors : 256;
        w->a = realloc(w->a, (size_t)w->cap_actors * sizeof *w->a);
    }
    actor *a = &w->a[w->n_actors];
    *a = (actor){.kind = kind, .harvest = kind >= FAST, .max_tokens = uniform(&w->r, 8, 24)};
    snprintf(a->addr, sizeof a->addr, "%s", addr);
    a->region = (int)dl_rng_below(&w->r, (uint64_t)(w->c.n > REGION ? w->c.n - REGION : 1));
    return w->n_actors++;
}

/* A person's sessions: a few, anywhere in the day; inside one, a think time between messages. */
static void sessions(world *w, int i, int n_sessions, int lo, int hi, double think_lo, double think_hi, int chat_share) {
    double span = w->o->hours * SIM_HOUR;
    for (int s = 0; s < n_sessions; s++) {
        double t = unit(&w->r) * span * 0.9;
        int n = uniform(&w->r, lo, hi);
        for (int k = 0; k < n; k++) {
            t += think_lo + (think_hi - think_lo) * unit(&w->r) * unit(&w->r);
            char prompt[2048];
            const actor *a = &w->a[i];
            if (a->kind == TEMPLATE_USER) snprintf(prompt, sizeof prompt, PERSONAL_TEMPLATES[a->tpl[0]], sentence_near(w, a));
            else if (a->kind == BURSTY) snprintf(prompt, sizeof prompt, "%s", any_sentence(w));
            else snprintf(prompt, sizeof prompt, "%s %s", sentence_near(w, a), unit(&w->r) < 0.5 ? sentence_near(w, a) : "");
            add_event(w, i, t, prompt, (int)dl_rng_below(&w->r, 100) < chat_share);
        }
    }
}

/* A developer retries a few prompts of their own, sometimes with a word changed. */
static void developer(world *w, int i) {
    const actor *a = &w->a[i];
    const char *base[3];
    int nb = uniform(&w->r, 1, 3);
    for (int b = 0; b < nb; b++) base[b] = sentence_near(w, a);
    double span = w->o->hours * SIM_HOUR;
    for (int s = 0, ns = uniform(&w->r, 1, 3); s < ns; s++) {
        double t = unit(&w->r) * span * 0.9;
        for (int k = 0, n = uniform(&w->r, 5, 20); k < n; k++) {
            t += 5 + 40 * unit(&w->r);
            char prompt[2048];
            snprintf(prompt, sizeof prompt, "%s", base[dl_rng_below(&w->r, (uint64_t)nb)]);
            if (unit(&w->r) < 0.3) { /* an edit: the last word replaced */
                char *sp = strrchr(prompt, ' ');
                if (sp) snprintf(sp + 1, sizeof prompt - (size_t)(sp + 1 - prompt), "%s", w->c.topic[dl_rng_below(&w->r, (uint64_t)w->c.n_topic)]);
            }
            add_event(w, i, t, prompt, 0);
        }
    }
}

/* A script summarising a document, part after part, at a fixed pace. */
static void batch(world *w, int i) {
    const actor *a = &w->a[i];
    double span = w->o->hours * SIM_HOUR, period = 30 + 60 * unit(&w->r), t = unit(&w->r) * span * 0.5;
    int n = uniform(&w->r, 30, 90);
    for (int k = 0; k < n && t < span; k++) {
        t += period * (0.9 + 0.2 * unit(&w->r));
        char prompt[4096];
        int s = a->region + 2 * k;
        snprintf(prompt, sizeof prompt, "Summarize the following text:\n\n%s %s", w->c.sent[s % w->c.n],
                 w->c.sent[(s + 1) % w->c.n]);
        add_event(w, i, t, prompt, 0);
    }
}

static void harvest_prompt(world *w, const actor *a, char *out, size_t n) {
    int t = a->tpl[dl_rng_below(&w->r, (uint64_t)a->n_tpl)];
    const char *fill = t >= FIRST_SENTENCE_TEMPLATE ? any_sentence(w) : w->c.topic[dl_rng_below(&w->r, (uint64_t)w->c.n_topic)];
    snprintf(out, n, HARVEST_TEMPLATES[t], fill);
}

static void pick_templates(world *w, actor *a) {
    a->n_tpl = unit(&w->r) < 0.25 ? uniform(&w->r, 2, 3) : 1; /* some harvesters vary */
    for (int k = 0; k < a->n_tpl; k++) a->tpl[k] = (int)dl_rng_below(&w->r, N_HARVEST_TEMPLATES);
}

/* One key, its own address, a steady loop from start to end with jitter around a period. */
static void harvest_loop(world *w, int i, double start, double end, double period, double jitter) {
    for (double t = start; t < end; t += period * (1 - jitter + 2 * jitter * unit(&w->r))) {
        char prompt[2048];
        harvest_prompt(w, &w->a[i], prompt, sizeof prompt);
        add_event(w, i, t, prompt, 0);
    }
}

/* A harvester spread over many quiet keys: round-robin, all keys at once, or each on its own. */
static void patient_group(world *w, int g) {
    int keys = uniform(&w->r, 6, 12), mode = g % 3, first = w->n_actors, lp = unit(&w->r) < 0.7;
    double span = w->o->hours * SIM_HOUR;
    actor proto = {0};
    pick_templates(w, &proto);
    for (int k = 0; k < keys; k++) {
        char addr[32];
        if (mode == 1) loopback(addr, 4, g, k); /* rotating proxies: an address per key */
        else loopback(addr, 3, g, k % 3);
        int i = new_actor(w, PATIENT, addr);
        w->a[i].n_tpl = proto.n_tpl;
        memcpy(w->a[i].tpl, proto.tpl, sizeof proto.tpl);
        w->a[i].logprobs_every = lp;
        w->a[i].max_tokens = 24;
    }
    int per_key = uniform(&w->r, 5, 15);
    if (mode == 2) {
        for (int k = 0; k < keys; k++) harvest_loop(w, first + k, unit(&w->r) * span / per_key, span, span / per_key, 0.5);
        return;
    }
    double tick = span / (mode == 0 ? per_key * keys : per_key);
    for (int s = 0; s < per_key * (mode == 0 ? keys : 1); s++) {
        double t = (s + 0.4 + 0.2 * unit(&w->r)) * tick;
        for (int k = 0; k < keys; k++) {
            if (mode == 0 && k != s % keys) continue;
            char prompt[2048];
            harvest_prompt(w, &w->a[first + k], prompt, sizeof prompt);
            add_event(w, first + k, t + (mode == 1 ? unit(&w->r) : 0), prompt, 0);
        }
    }
}

static void ordinary_people(world *w) {
    for (int u = 0; u < w->o->ordinary; u++) {
        int share = u % 20, kind = share < 7 ? CHATTY : share < 11 ? DEV : share < 14 ? BATCH : share < 17 ? TEMPLATE_USER : BURSTY;
        char addr[32];
        if (u % 10 == 3) loopback(addr, 2, 0, u / 40); /* an office: four people, one address */
        else loopback(addr, 1, u / 200, u % 200);
        int i = new_actor(w, kind, addr);
        actor *a = &w->a[i];
        a->tpl[0] = (int)dl_rng_below(&w->r, 4);
        /* who asks for logprobs: a few people now and then, some developers often, rare scripts always */
        double p = unit(&w->r);
        if (kind == CHATTY && p < 0.05) a->logprobs_every = 5;
        if (kind == DEV && p < 0.4) a->logprobs_every = 2;
        if (kind == BATCH && p < 0.05) a->logprobs_every = 1;
        if (kind == TEMPLATE_USER && p < 0.1) a->logprobs_every = 3;
        if (kind == DEV || kind == BATCH) a->max_tokens = (int)(8 << dl_rng_below(&w->r, 2));
        if (kind == CHATTY) sessions(w, i, uniform(&w->r, 1, 3), 3, 12, 20, 120, 60);
        else if (kind == DEV) developer(w, i);
        else if (kind == BATCH) batch(w, i);
        else if (kind == TEMPLATE_USER) sessions(w, i, uniform(&w->r, 2, 4), 4, 12, 20, 120, 30);
        else sessions(w, i, 1, 5, 20, 1, 10, 30);
    }
}

static void harvesters(world *w) {
    double span = w->o->hours * SIM_HOUR;
    for (int h = 0; h < w->o->fast + w->o->slow; h++) {
        int fast = h < w->o->fast;
        char addr[32];
        loopback(addr, 5, fast, h);
        int i = new_actor(w, fast ? FAST : SLOW, addr);
        pick_templates(w, &w->a[i]);
        w->a[i].logprobs_every = unit(&w->r) < 0.75;
        w->a[i].max_tokens = 24;
        if (fast) {
            double start = unit(&w->r) * span / 4;
            harvest_loop(w, i, start, start + span * (0.35 + 0.25 * unit(&w->r)), 8 + 8 * unit(&w->r), 0.3);
        } else {
            harvest_loop(w, i, unit(&w->r) * 600, span, 60 + 120 * unit(&w->r), 0.2);
        }
    }
    for (int g = 0; g < w->o->groups; g++) patient_group(w, g);
}

static int cmp_event(const void *a, const void *b) {
    double x = ((const event *)a)->sim_t, y = ((const event *)b)->sim_t;
    return (x > y) - (x < y);
}

/* ---- playing the schedule -------------------------------------------------------------------- */

typedef struct player {
    world *w;
    int port;
    double t0, real_per_sim;
    atomic_int next, errors;
    double *late; /* seconds behind schedule, per event */
} player;

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The status of the response on fd; the rest is read and dropped until the server closes. */
static int read_status(int fd) {
    char buf[4096];
    size_t have = 0;
    int status = -1;
    for (;;) {
        ssize_t k = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (k <= 0) break;
        have += (size_t)k;
        buf[have] = 0;
        if (status < 0 && strstr(buf, "\r\n") && sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
        if (status >= 0) have = 0;
    }
    return status;
}

/* One request from the actor's own address; returns the HTTP status or -1. */
static int send_from(const char *addr, int port, const char *key, const char *path, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &src.sin_addr);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) || connect(fd, (struct sockaddr *)&dst, sizeof dst))
        return close(fd), -1;
    char head[512];
    size_t bl = strlen(body);
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      path, key, bl);
    int status = send_all(fd, head, (size_t)hl) == 0 && send_all(fd, body, bl) == 0 ? read_status(fd) : -1;
    close(fd);
    return status;
}

static void *play(void *arg) {
    player *p = arg;
    for (int i; (i = atomic_fetch_add(&p->next, 1)) < p->w->n_events;) {
        const event *e = &p->w->e[i];
        double due = p->t0 + e->sim_t * p->real_per_sim, now = dl_now();
        if (due > now) usleep((useconds_t)((due - now) * 1e6));
        p->late[i] = dl_now() - due;
        const actor *a = &p->w->a[e->actor];
        int st = send_from(a->addr, p->port, a->key, e->chat ? "/v1/chat/completions" : "/v1/completions", e->body);
        if (st != 200) atomic_fetch_add(&p->errors, 1);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void build_world(world *w, const opts *o, const corpus *c, uint64_t seed) {
    memset(w, 0, sizeof *w);
    w->o = o;
    w->c = *c;
    dl_rng_seed(&w->r, seed);
    ordinary_people(w);
    harvesters(w);
    qsort(w->e, (size_t)w->n_events, sizeof *w->e, cmp_event);
}

static void free_world(world *w) {
    for (int i = 0; i < w->n_events; i++) {
        free(w->e[i].body);
        free(w->e[i].prompt);
    }
    free(w->e);
    free(w->a);
}

/* Keys named in a shuffled order, so a key's name says nothing of what it is. */
static int make_keys(world *w, const char *db, dl_error *err) {
    int *perm = malloc((size_t)w->n_actors * sizeof *perm);
    for (int i = 0; i < w->n_actors; i++) perm[i] = i;
    for (int i = w->n_actors - 1; i > 0; i--) {
        int j = (int)dl_rng_below(&w->r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    dl_key_limits none = {0};
    int rc = 0;
    for (int k = 0; rc == 0 && k < w->n_actors; k++) {
        char name[32];
        snprintf(name, sizeof name, "key-%04d", k + 1);
        actor *a = &w->a[perm[k]];
        rc = dl_keys_create(db, name, &none, a->key, &a->key_id, err);
    }
    free(perm);
    return rc;
}

typedef struct outcome {
    int total[NKINDS], flagged[NKINDS];
    int tp, fp, harvest, ordinary, groups;
    double recall, fpr;
} outcome;

static const actor *actor_of(const world *w, long long key_id) {
    for (int i = 0; i < w->n_actors; i++)
        if (w->a[i].key_id == key_id) return &w->a[i];
    return NULL;
}

static void explain(const dl_audit_result *res, const dl_audit_key *k, const actor *a, const char *what) {
    char why[DL_AUDIT_NF][DL_AUDIT_REASON_MAX];
    int n = dl_audit_reasons(res, &k->x, k->value, why, 3);
    fprintf(stderr, "bench: %s: %s (%s), score %.2f, group %d, %lld requests%s", what, k->name, KIND_NAME[a->kind],
            k->score, k->group, k->x.requests, n ? ": " : "\n");
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%s", why[i], i + 1 < n ? "; " : "\n");
}

static void judge(const world *w, const dl_audit_result *res, outcome *out, int verbose) {
    memset(out, 0, sizeof *out);
    for (int k = 0; k < res->n_keys; k++) {
        const dl_audit_key *key = &res->keys[k];
        const actor *a = actor_of(w, key->id);
        if (!a) continue;
        out->total[a->kind]++;
        out->flagged[a->kind] += key->flagged != 0;
        out->harvest += a->harvest;
        out->ordinary += !a->harvest;
        out->tp += a->harvest && key->flagged;
        out->fp += !a->harvest && key->flagged;
        if (verbose && a->harvest != (key->flagged != 0)) explain(res, key, a, a->harvest ? "missed" : "false positive");
    }
    out->groups = res->n_groups;
    out->recall = out->harvest ? (double)out->tp / out->harvest : 0;
    out->fpr = out->ordinary ? (double)out->fp / out->ordinary : 0;
}

/* Every key of the live run, one TSV line: its kind, the verdict, the score and each feature's
 * value (NaN: not measured), for looking at where the kinds fall. */
static int dump_keys(const char *path, const world *w, const dl_audit_result *res) {
    FILE *f = fopen(path, "w");
    if (!f) return perror(path), -1;
    fprintf(f, "key\tkind\tharvest\tflagged\tgroup\trequests\tscore");
    for (int j = 0; j < DL_AUDIT_NF; j++) fprintf(f, "\t%s", res->model->name[j]);
    fprintf(f, "\n");
    for (int k = 0; k < res->n_keys; k++) {
        const dl_audit_key *key = &res->keys[k];
        const actor *a = actor_of(w, key->id);
        if (!a) continue;
        fprintf(f, "%s\t%s\t%d\t%d\t%d\t%lld\t%.4f", key->name, KIND_NAME[a->kind], a->harvest, key->flagged, key->group,
                key->x.requests, key->score);
        for (int j = 0; j < DL_AUDIT_NF; j++) fprintf(f, "\t%.4f", key->value[j]);
        fprintf(f, "\n");
    }
    return fclose(f) ? (perror(path), -1) : 0;
}

static int audit_db(const char *db, dl_audit_result *res, double *seconds, dl_error *err) {
    double t0 = dl_now();
    dl_audit_log *L = dl_audit_log_new(err);
    int rc = L ? dl_audit_read_db(L, db, -INFINITY, INFINITY, err) : -1;
    if (rc == 0) rc = dl_audit_analyse(L, res, err);
    dl_audit_log_free(L);
    *seconds = dl_now() - t0;
    return rc;
}

/* Serves the world's schedule; returns the requests that failed, -1 if the server did not start. */
static int serve_world(world *w, const char *model, const char *db, double *traffic_s, double *late_p99, dl_error *err) {
    dl_serve_cfg cfg;
    dl_serve_cfg_default(&cfg);
    cfg.model_dir = model;
    cfg.model_name = "m";
    cfg.port = 0;
    cfg.db_path = db;
    cfg.log_prompts = w->o->log_prompts;
    cfg.max_queue = 4096;
    cfg.max_connections = 1024;
    dl_server *s = dl_serve_start(&cfg, err);
    if (!s) return -1;
    player p = {.w = w, .port = dl_serve_port(s), .real_per_sim = w->o->seconds / (w->o->hours * SIM_HOUR)};
    p.late = calloc((size_t)w->n_events + 1, sizeof *p.late);
    pthread_t th[256];
    int nt = w->o->threads;
    p.t0 = dl_now() + 0.2;
    for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, play, &p);
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    *traffic_s = dl_now() - p.t0;
    dl_serve_stop(s);
    qsort(p.late, (size_t)w->n_events, sizeof *p.late, cmp_double);
    *late_p99 = w->n_events ? p.late[(int)(0.99 * (w->n_events - 1))] : 0;
    free(p.late);
    return atomic_load(&p.errors);
}

/* The same generator, uncompressed and many times larger, written straight to a usage db through
 * serve's own store: how long the audit takes on scale_rows rows. */
static int offline(const opts *o, const corpus *c, const char *db, long long *rows, double *seconds, outcome *res_out,
                   dl_error *err) {
    world probe;
    build_world(&probe, o, c, o->seed);
    int f = probe.n_events ? (o->scale_rows + probe.n_events - 1) / probe.n_events : 1;
    free_world(&probe);
    opts big = *o;
    big.ordinary *= f, big.fast *= f, big.slow *= f, big.groups *= f;
    world w;
    build_world(&w, &big, c, o->seed + 1);
    dl_usage *u = dl_usage_open(db, err);
    int rc = u ? 0 : -1;
    for (int i = 0; i < w.n_actors; i++) w.a[i].key_id = i + 1;
    for (int i = 0; rc == 0 && i < w.n_events; i++) {
        const event *e = &w.e[i];
        const actor *a = &w.a[e->actor];
        char hash[32], name[32];
        unsigned long long h = 1469598103934665603ull; /* the same text, the same hash, as the server's */
        for (const char *q = e->prompt; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ull;
        snprintf(hash, sizeof hash, "%016llx", h);
        snprintf(name, sizeof name, "key-%06d", e->actor + 1);
        dl_usage_row row = {.time = 1.77e9 + e->sim_t, .key_id = a->key_id, .key_name = name, .endpoint = "/v1/completions",
                            .model = "m", .status = 200, .max_tokens = a->max_tokens, .temperature = 1, .top_p = 1, .n = 1,
                            .logprobs = e->logprobs ? 5 : -1, .stream = 0, .prompt_tokens = 40,
                            .completion_tokens = dl_rng_below(&w.r, 4) ? a->max_tokens : 3, .prompt_hash = hash,
                            .prompt = o->log_prompts ? e->prompt : NULL, .latency_ms = 10, .client = a->addr};
        rc = dl_usage_log(u, &row, err);
    }
    dl_usage_close(u);
    *rows = w.n_events;
    dl_audit_result res;
    if (rc == 0) rc = audit_db(db, &res, seconds, err);
    if (rc == 0) {
        judge(&w, &res, res_out, 0);
        char path[1100];
        snprintf(path, sizeof path, "%s.scale", o->dump ? o->dump : "");
        if (o->dump && dump_keys(path, &w, &res)) rc = dl_fail(err, "cannot write %s", path);
        dl_audit_result_free(&res);
    }
    free_world(&w);
    return rc;
}

static json_t *by_kind(const outcome *r) {
    json_t *o = json_object();
    for (int k = 0; k < NKINDS; k++) {
        char v[32];
        snprintf(v, sizeof v, "%d/%d", r->flagged[k], r->total[k]);
        json_object_set_new(o, KIND_NAME[k], json_string(v));
    }
    return o;
}

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.ordinary = 300, .fast = 4, .slow = 6, .groups = 5, .threads = 64, .scale_rows = 100000,
                .log_prompts = 1, .seconds = 90, .hours = 8, .seed = 1, .work = "/tmp"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-log-prompts") || !strcmp(a, "--keep")) {
            *(a[2] == 'k' ? &o->keep : &o->log_prompts) = a[2] == 'k';
            continue;
        }
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        if (!strcmp(a, "--corpus")) o->corpus = v;
        else if (!strcmp(a, "--work")) o->work = v;
        else if (!strcmp(a, "--dump")) o->dump = v;
        else if (!strcmp(a, "--ordinary")) o->ordinary = atoi(v);
        else if (!strcmp(a, "--fast")) o->fast = atoi(v);
        else if (!strcmp(a, "--slow")) o->slow = atoi(v);
        else if (!strcmp(a, "--groups")) o->groups = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--scale-rows")) o->scale_rows = atoi(v);
        else if (!strcmp(a, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(a, "--hours")) o->hours = atof(v);
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)atoll(v);
        else return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
        i++;
    }
    if (o->ordinary < 1 || o->fast < 0 || o->slow < 0 || o->groups < 0 || o->threads < 1 || o->threads > 256 ||
        o->scale_rows < 0 || !(o->seconds > 0 && o->seconds <= 3600) || !(o->hours > 0 && o->hours <= 24 * 30))
        return fprintf(stderr, "bench: bad settings\n"), -1;
    return 0;
}

static int load_corpus(const opts *o, corpus *c, const char **name) {
    memset(c, 0, sizeof *c);
    *name = corpus_path(o);
    if (*name) {
        char *text;
        size_t len;
        dl_error err;
        if (dl_read_file(*name, &text, &len, &err)) return fprintf(stderr, "bench: %s\n", err.msg), -1;
        split_sentences(c, text); /* the sentences point into text, kept for the run */
    }
    if (c->n < 3 * REGION || c->n_topic < 100) {
        dl_rng r;
        dl_rng_seed(&r, o->seed);
        *name = "made-up vocabulary";
        made_up_corpus(c, &r);
    }
    return 0;
}

int main(int argc, char **argv) {
    dl_ops_tune_runtime(argv);
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    corpus c;
    const char *corpus_name;
    if (load_corpus(&o, &c, &corpus_name)) return 1;
    char dir[600], model[700], db[700], db_big[700];
    snprintf(dir, sizeof dir, "%s/distil-bench-audit-XXXXXX", o.work);
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    snprintf(model, sizeof model, "%s/m", dir);
    snprintf(db, sizeof db, "%s/usage.db", dir);
    snprintf(db_big, sizeof db_big, "%s/usage-big.db", dir);
    make_model_dir(model, 32, 1, 64, 1024, 1.0f, 1, 1);
    world w;
    build_world(&w, &o, &c, o.seed);
    dl_error err;
    if (make_keys(&w, db, &err)) return fprintf(stderr, "bench: keys: %s\n", err.msg), 1;
    fprintf(stderr, "bench: %d keys, %d requests over %.0f simulated hours in %.0f s\n", w.n_actors, w.n_events, o.hours,
            o.seconds);
    double traffic_s, late_p99, audit_s, big_s = 0;
    int errors = serve_world(&w, model, db, &traffic_s, &late_p99, &err);
    if (errors < 0) return fprintf(stderr, "bench: serve: %s\n", err.msg), 1;
    dl_audit_result res;
    if (audit_db(db, &res, &audit_s, &err)) return fprintf(stderr, "bench: audit: %s\n", err.msg), 1;
    outcome live, big = {0};
    judge(&w, &res, &live, 1);
    if (o.dump && dump_keys(o.dump, &w, &res)) return 1;
    long long big_rows = 0;
    if (o.scale_rows > 0 && offline(&o, &c, db_big, &big_rows, &big_s, &big, &err))
        return fprintf(stderr, "bench: offline: %s\n", err.msg), 1;
    json_t *out = json_pack("{s:f, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:I, s:i, s:b, s:s, s:f, s:f, s:f, s:f}",
                            "recall", live.recall, "false_positive_rate", live.fpr, "keys", live.harvest + live.ordinary,
                            "harvesting_keys", live.harvest, "ordinary_keys", live.ordinary, "flagged_harvesting", live.tp,
                            "flagged_ordinary", live.fp, "groups", live.groups, "by_kind", by_kind(&live), "requests",
                            (json_int_t)res.requests, "errors", errors, "prompts_logged", o.log_prompts, "corpus",
                            corpus_name, "traffic_seconds", traffic_s, "late_p99_ms", 1000 * late_p99,
                            "simulated_hours", o.hours, "audit_seconds", audit_s);
    if (big_rows) {
        json_object_set_new(out, "scale_rows", json_integer(big_rows));
        json_object_set_new(out, "scale_audit_seconds", json_real(big_s));
        json_object_set_new(out, "scale_recall", json_real(big.recall));
        json_object_set_new(out, "scale_false_positive_rate", json_real(big.fpr));
        json_object_set_new(out, "scale_by_kind", by_kind(&big));
    }
    char *line = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
    printf("%s\n", line);
    free(line);
    json_decref(out);
    dl_audit_result_free(&res);
    free_world(&w);
    dl_error ignore;
    if (o.keep) fprintf(stderr, "bench: kept %s (usage.db: the served traffic)\n", dir);
    else dl_rm_rf(dir, &ignore);
    return 0;
}
