/* Traffic for the audit tests, added straight to an in-memory audit log: prompts from a made-up
 * vocabulary (random, or one template filled with random words), arrivals even, Poisson or in
 * bursts. */
#ifndef DISTIL_TEST_AUDIT_FIXTURE_H
#define DISTIL_TEST_AUDIT_FIXTURE_H
#include "provenance/audit.h"
#include "test.h"
#include <math.h>

#define VOCAB 4000

/* The i-th made-up word: 2 to 4 syllables picked by i's digits, so distinct i give distinct words. */
static void fx_word(unsigned i, char *out) {
    static const char *SYL[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pu"};
    int n = 0;
    do {
        n += sprintf(out + n, "%s", SYL[i % 10]);
        i /= 10;
    } while (i);
    sprintf(out + n, "x");
}

static void fx_random_prompt(dl_rng *r, int words, char *out) {
    int n = 0;
    for (int w = 0; w < words; w++) {
        char word[32];
        fx_word((unsigned)dl_rng_below(r, VOCAB), word);
        n += sprintf(out + n, "%s%s", w ? " " : "", word);
    }
}

static const char *FX_TEMPLATE = "please write a detailed encyclopedia article about %s %s and explain its history "
                                 "its main ideas and why it matters today in plain words";

static void fx_template_prompt(dl_rng *r, char *out) {
    char a[32], b[32];
    fx_word((unsigned)dl_rng_below(r, VOCAB), a);
    fx_word((unsigned)dl_rng_below(r, VOCAB), b);
    sprintf(out, FX_TEMPLATE, a, b);
}

typedef struct fx_req {
    double t;
    long long key;
    const char *name, *client, *prompt;
    int logprobs, max_tokens;
    long long completion;
    int with_text; /* 0: only the prompt's hash, as with --no-log-prompts */
} fx_req;

static void fx_add(dl_audit_log *L, const fx_req *q) {
    char hash[80];
    /* a stand-in for the hex BLAKE2b the server logs: any string naming the text will do */
    unsigned long long h = 1469598103934665603ull;
    for (const char *p = q->prompt; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(hash, sizeof hash, "%016llx", h);
    dl_audit_request r = {.time = q->t, .key_id = q->key, .key_name = q->name, .client = q->client,
                          .prompt_hash = hash, .prompt = q->with_text ? q->prompt : NULL, .status = 200,
                          .max_tokens = q->max_tokens, .n = 1, .logprobs = q->logprobs, .prompt_tokens = 20,
                          .completion_tokens = q->completion};
    dl_error err;
    if (dl_audit_log_add(L, &r, &err)) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        exit(2);
    }
}

/* Gaps: 0 even (60 s), 1 Poisson (mean 60 s), 2 bursts (sessions of 5 quick requests, long pauses). */
static double fx_gap(dl_rng *r, int kind, int i) {
    if (kind == 0) return 60;
    if (kind == 1) return -60 * log(1 - dl_rng_float(r));
    return i % 5 ? 2 + 3 * dl_rng_float(r) : 3600 * (1 + dl_rng_float(r));
}

/* An ordinary key: random prompts, no logprobs, completions that stop before max_tokens most of
 * the time, Poisson or bursty arrivals, its own address. */
static void fx_ordinary(dl_audit_log *L, dl_rng *r, long long key, int requests, int with_text) {
    char name[32], client[32], prompt[512];
    snprintf(name, sizeof name, "user-%lld", key);
    snprintf(client, sizeof client, "10.0.%lld.%lld", key / 200, key % 200 + 1);
    double t = 1.7e9 + 1000.0 * key;
    for (int i = 0; i < requests; i++) {
        t += fx_gap(r, 1 + (int)(key % 2), i);
        fx_random_prompt(r, 8 + (int)dl_rng_below(r, 12), prompt);
        int sat = dl_rng_float(r) < 0.2f;
        fx_add(L, &(fx_req){t, key, name, client, prompt, -1, 64, sat ? 64 : 10 + (long long)dl_rng_below(r, 40), with_text});
    }
}
#endif
