/* Encode/decode round-trips every byte string exactly; special tokens; the encode cache;
 * long pre-tokens; concurrent encodes on one tokenizer. */
#include "tok_util.h"
#include <pthread.h>

/* A small mixed corpus: English, accents, CJK, emoji, digits, code, odd whitespace. */
static char *make_corpus(size_t *len) {
    static const char *const words[] = {
        "the", "quick", "brown", "fox", "don't", "it's", "we'll", "na\xc3\xafve", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
        "\xe8\xaa\x9e", "\xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "12", "345", "x=1;", "foo_bar()", "...",
        "\t", "  ", "\n", "\n\n", "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", "<|endoftext|>"};
    dl_rng r;
    dl_rng_seed(&r, 11);
    dl_buf b = {0};
    while (b.len < 60000) {
        const char *w = words[dl_rng_below(&r, sizeof words / sizeof words[0])];
        dl_buf_append(&b, w, strlen(w));
        dl_buf_append(&b, " ", dl_rng_below(&r, 4) ? 1 : 0);
    }
    *len = b.len;
    return b.data;
}

/* Random strings from several generators: any bytes, bytes that make broken UTF-8, valid
 * multi-byte text, and near-miss special tokens. */
static size_t random_string(dl_rng *r, char *out, size_t cap) {
    static const char *const frags[] = {"\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xc3\xa9", "a", " ", "\n", "<|endoftext|>",
                                        "<|endoftext", "|>", "<|", "'s", "9", "\xc3", "\x80", "\xff", "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80", "\xc0\xaf", "\0"};
    size_t want = (size_t)dl_rng_below(r, cap / 8), n = 0;
    int mode = (int)dl_rng_below(r, 3);
    while (n < want) {
        if (mode == 0) {
            out[n++] = (char)dl_rng_below(r, 256);
        } else if (mode == 1) {
            static const unsigned char pick[] = {0x00, 0xff, 0xc3, 0xa9, 0x80, 0xe6, 0x97, 0xf0, 'a', ' ', '\n', '<', '|'};
            out[n++] = (char)pick[dl_rng_below(r, sizeof pick)];
        } else {
            const char *f = frags[dl_rng_below(r, sizeof frags / sizeof frags[0])];
            size_t fl = f[0] ? strlen(f) : 1;
            if (n + fl > cap) break;
            memcpy(out + n, f, fl);
            n += fl;
        }
    }
    return n;
}

static size_t count_occurrences(const char *s, size_t n, const char *pat) {
    size_t c = 0, pl = strlen(pat);
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), pat, pl)); p += pl) c++;
    return c;
}

static void test_random_roundtrip(const dl_tokenizer *t) {
    dl_rng r;
    dl_rng_seed(&r, 2024);
    char buf[2048];
    int ok_plain = 1, ok_special = 1, eot_ok = 1;
    int eot = dl_tok_eot_id(t);
    for (int it = 0; it < 3000; it++) {
        size_t n = random_string(&r, buf, sizeof buf);
        ok_plain &= roundtrips(t, buf, n, 0);
        ok_special &= roundtrips(t, buf, n, 1);
        dl_error err;
        dl_ivec a = {0}, b = {0};
        dl_tok_encode(t, buf, n, 0, &a, &err);
        dl_tok_encode(t, buf, n, 1, &b, &err);
        size_t ea = 0, eb = 0;
        for (size_t i = 0; i < a.len; i++) ea += a.data[i] == eot;
        for (size_t i = 0; i < b.len; i++) eb += b.data[i] == eot;
        eot_ok &= ea == 0 && eb == count_occurrences(buf, n, DL_EOT);
        dl_ivec_free(&a);
        dl_ivec_free(&b);
    }
    CHECK(ok_plain);
    CHECK(ok_special);
    CHECK(eot_ok);
    /* every single byte and every pair of bytes */
    int all = 1;
    for (int x = 0; x < 256; x++)
        for (int y = 0; y < 256; y++) {
            char s[2] = {(char)x, (char)y};
            all &= roundtrips(t, s, 1, 0) && roundtrips(t, s, 2, 0);
        }
    CHECK(all);
    CHECK(roundtrips(t, "", 0, 1));
}

static void test_specials(const dl_tokenizer *t) {
    int eot = dl_tok_eot_id(t), pad = dl_tok_id(t, "<|pad|>");
    CHECK(eot >= 0 && pad >= 0 && eot != pad);
    dl_ivec a = encode_str(t, "a", 0), b = encode_str(t, "b", 0), x = encode_str(t, "a<|endoftext|>b", 1);
    /* with specials allowed: enc(a) + [eot] + enc(b) */
    int ok = x.len == a.len + 1 + b.len && memcmp(x.data, a.data, a.len * 4) == 0 && x.data[a.len] == eot &&
             memcmp(x.data + a.len + 1, b.data, b.len * 4) == 0;
    CHECK(ok);
    dl_ivec_free(&x);
    /* without: plain text, several tokens, none of them a special */
    x = encode_str(t, "<|endoftext|>", 0);
    int none = x.len > 1;
    for (size_t i = 0; i < x.len; i++) none &= x.data[i] != eot;
    CHECK(none);
    dl_ivec_free(&x);
    CHECK_IDS(t, "<|endoftext|>", 1, eot);
    CHECK_IDS(t, "<|pad|><|endoftext|><|pad|>", 1, pad, eot, pad);
    x = encode_str(t, "<|endoftext|<|endoftext|>>", 1); /* a near miss, then the real one */
    int found = 0;
    for (size_t i = 0; i < x.len; i++) found += x.data[i] == eot;
    CHECK(found == 1);
    dl_ivec_free(&x);
    dl_ivec_free(&a);
    dl_ivec_free(&b);
    CHECK(dl_tok_id(t, DL_EOT) == eot);
    size_t n;
    const char *p = dl_tok_token(t, eot, &n);
    CHECK(p && n == strlen(DL_EOT) && memcmp(p, DL_EOT, n) == 0);
}

static void test_decode_errors(const dl_tokenizer *t) {
    dl_error err;
    dl_buf out = {0};
    int32_t bad1[] = {'a', -1}, bad2[] = {(int32_t)dl_tok_vocab_size(t)};
    err.msg[0] = 0;
    CHECK(dl_tok_decode(t, bad1, 2, &out, &err) == -1 && strstr(err.msg, "out of range"));
    err.msg[0] = 0;
    CHECK(dl_tok_decode(t, bad2, 1, &out, &err) == -1 && strstr(err.msg, "out of range"));
    dl_buf_free(&out);
    CHECK(dl_tok_token(t, -1, NULL) == NULL && dl_tok_token(t, dl_tok_vocab_size(t), NULL) == NULL);
}

/* A long text (the encode cache is on) gives the same ids as encoding its pre-tokens one by
 * one (each too short for the cache). */
static void test_cache_agrees(const dl_tokenizer *t, const char *text, size_t len) {
    dl_error err;
    dl_ivec whole = {0}, ends = {0}, parts = {0};
    CHECK(dl_tok_encode(t, text, len, 0, &whole, &err) == 0);
    CHECK(dl_tok_pretokenize(t, text, len, &ends, &err) == 0);
    size_t start = 0;
    for (size_t i = 0; i < ends.len; i++) {
        dl_tok_encode(t, text + start, (size_t)ends.data[i] - start, 0, &parts, &err);
        start = (size_t)ends.data[i];
    }
    CHECK(whole.len == parts.len && memcmp(whole.data, parts.data, whole.len * 4) == 0);
    dl_ivec_free(&whole);
    dl_ivec_free(&ends);
    dl_ivec_free(&parts);
}

/* One huge pre-token of each kind stays fast (the BPE is O(n log n) per piece). */
static void test_long_pieces(const dl_tokenizer *t) {
    size_t n = 1 << 20;
    char *s = malloc(n);
    const char fills[] = {'a', ' ', '\x80', '7'};
    for (int k = 0; k < 4; k++) {
        memset(s, fills[k], n);
        double t0 = dl_now();
        CHECK(roundtrips(t, s, n, 0));
        CHECK_MSG(dl_now() - t0 < 3.0, "1 MB of 0x%02x took %.2fs", (unsigned char)fills[k], dl_now() - t0);
    }
    dl_rng r;
    dl_rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++) s[i] = (char)(0x80 + dl_rng_below(&r, 64)); /* stray continuation bytes */
    CHECK(roundtrips(t, s, n, 0));
    free(s);
}

typedef struct { const dl_tokenizer *t; const char *text; size_t len; dl_ivec ids; int rc; } job;

static void *encode_job(void *p) {
    job *j = p;
    dl_error err;
    j->rc = dl_tok_encode(j->t, j->text, j->len, 1, &j->ids, &err);
    return NULL;
}

static void test_threads(const dl_tokenizer *t, const char *text, size_t len) {
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){t, text, len, {0}, -1};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    int same = 1;
    for (int i = 0; i < 4; i++)
        same &= jobs[i].rc == 0 && jobs[i].ids.len == jobs[0].ids.len &&
                memcmp(jobs[i].ids.data, jobs[0].ids.data, jobs[0].ids.len * 4) == 0;
    CHECK(same);
    for (int i = 0; i < 4; i++) dl_ivec_free(&jobs[i].ids);
}

int main(void) {
    size_t len;
    char *corpus = make_corpus(&len);
    const char *specials[] = {DL_EOT, "<|pad|>", NULL};
    dl_error err;
    dl_tokenizer *t = dl_tok_train(corpus, len, 600, specials, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) TEST_MAIN_END();
    CHECK(dl_tok_vocab_size(t) == 600);
    CHECK(roundtrips(t, corpus, len, 1));
    CHECK(roundtrips(t, corpus, len, 0));
    test_random_roundtrip(t);
    test_specials(t);
    test_decode_errors(t);
    test_cache_agrees(t, corpus, len);
    test_long_pieces(t);
    test_threads(t, corpus, len);
    dl_tok_free(t);
    free(corpus);
    TEST_MAIN_END();
}
