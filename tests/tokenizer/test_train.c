/* BPE training: cases worked out by hand, determinism, and agreement with a naive trainer
 * (recount every pair after every merge) on a corpus with many ties. */
#include "tok_util.h"

static dl_tokenizer *train(const char *text, int vocab, const char *const *specials) {
    dl_error err;
    dl_tokenizer *t = dl_tok_train(text, strlen(text), vocab, specials, &err);
    if (!t) fprintf(stderr, "train failed: %s\n", err.msg);
    return t;
}

static int merge_is(const dl_tokenizer *t, int rank, int a, int b, int c) {
    int l, r;
    int got = dl_tok_merge(t, rank, &l, &r);
    if (got == c && l == a && r == b) return 1;
    fprintf(stderr, "  merge %d: got %d + %d -> %d, want %d + %d -> %d\n", rank, l, r, got, a, b, c);
    return 0;
}

/* "aaabdaaabac" is one pre-token (all letters). Its pairs: aa x4 (overlapping: aaa holds two),
 * ab x2, bd, da, ba, ac x1.
 *   1. aa (4)             -> 256: words become [aa a b d aa a b a c] (left to right: aa, then a)
 *   2. (aa,a)=2 and (a,b)=2 tie; the smaller ids win: (97,98) < (256,97) -> ab = 257
 *      -> [aa ab d aa ab a c]
 *   3. (aa,ab) = 2        -> 258 "aaab" -> [aaab d aaab a c]
 * vocab 260 = 256 + 3 merges + <|endoftext|> (259). */
static void test_hand_case(void) {
    dl_tokenizer *t = train("aaabdaaabac", 260, NULL);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(dl_tok_vocab_size(t) == 260);
    CHECK(dl_tok_n_merges(t) == 3);
    CHECK(merge_is(t, 0, 'a', 'a', 256));
    CHECK(merge_is(t, 1, 'a', 'b', 257));
    CHECK(merge_is(t, 2, 256, 257, 258));
    CHECK(dl_tok_eot_id(t) == 259);
    CHECK(dl_tok_id(t, "aaab") == 258);
    CHECK(dl_tok_id(t, "ab") == 257);
    CHECK_IDS(t, "aaabdaaabac", 0, 258, 'd', 258, 'a', 'c');
    /* encoding applies merges by rank, not greedily by length: */
    CHECK_IDS(t, "aab", 0, 256, 'b');   /* aa first (rank 0); (aa,b) is no merge */
    CHECK_IDS(t, "aaab", 0, 258);       /* aa, then ab, then aa+ab */
    CHECK_IDS(t, "aaaa", 0, 256, 256);  /* left to right: aa aa */
    CHECK_IDS(t, "aaaaa", 0, 256, 256, 'a');
    CHECK_IDS(t, "baab", 0, 'b', 256, 'b');
    /* across pre-tokens nothing merges: " aa" is " " + aa, "a a" is a, " a" */
    CHECK_IDS(t, "a a", 0, 'a', ' ', 'a');
    CHECK_IDS(t, "a<|endoftext|>aa", 1, 'a', 259, 256);
    dl_tok_free(t);
}

/* "ab ab ab": pre-tokens "ab" x1 and " ab" x2, so the pairs are (a,b) 3 and (" ",a) 2;
 * (b," ") never counts because no pre-token holds it.
 *   1. ab -> 256; words [256] and [" " 256] x2
 *   2. (" ",256) = 2 -> 257 " ab" */
static void test_pretokens_bound_merges(void) {
    dl_tokenizer *t = train("ab ab ab", 259, NULL);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(merge_is(t, 0, 'a', 'b', 256));
    CHECK(merge_is(t, 1, ' ', 256, 257));
    CHECK_IDS(t, "ab ab", 0, 256, 257);
    dl_tok_free(t);
}

/* All counts 1 in "xy zw": pairs (x,y) (" ",z) (z,w). Ties go to the smallest (left, right):
 *   1. (32,122) " z" -> 256    2. (120,121) "xy" -> 257    3. (256,119) " zw" -> 258 */
static void test_tie_break(void) {
    dl_tokenizer *t = train("xy zw", 260, NULL);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(merge_is(t, 0, ' ', 'z', 256));
    CHECK(merge_is(t, 1, 'x', 'y', 257));
    CHECK(merge_is(t, 2, 256, 'w', 258));
    CHECK(dl_tok_n_merges(t) == 3); /* then no pairs are left: vocab 256 + 3 + 1 */
    CHECK(dl_tok_vocab_size(t) == 260);
    dl_tok_free(t);
}

static void test_specials_cut_out(void) {
    /* the special string is not text to learn from: no merge may contain '<' or '|' */
    dl_buf corpus = {0};
    for (int i = 0; i < 50; i++) dl_buf_printf(&corpus, "hello there<|endoftext|>");
    const char *specials[] = {DL_EOT, "<|pad|>", NULL};
    dl_error err;
    dl_tokenizer *t = dl_tok_train(corpus.data, corpus.len, 256 + 8 + 2, specials, &err);
    CHECK(t != NULL);
    if (t) {
        CHECK(dl_tok_n_merges(t) == 8);
        int clean = 1;
        for (int r = 0; r < dl_tok_n_merges(t); r++) {
            size_t n;
            const char *p = dl_tok_token(t, 256 + r, &n);
            clean &= !memchr(p, '<', n) && !memchr(p, '|', n);
        }
        CHECK(clean);
        CHECK(dl_tok_eot_id(t) == 264);
        CHECK(dl_tok_id(t, "<|pad|>") == 265);
        CHECK(dl_tok_is_special(t, 265));
        CHECK(!dl_tok_is_special(t, 'a'));
        dl_tok_free(t);
    }
    dl_buf_free(&corpus);
}

static void test_errors(void) {
    dl_error err;
    err.msg[0] = 0;
    CHECK(dl_tok_train("abc", 3, 200, NULL, &err) == NULL && err.msg[0]);
    err.msg[0] = 0;
    CHECK(dl_tok_train("abc", 3, 256, NULL, &err) == NULL && err.msg[0]); /* no room for <|endoftext|> */
    const char *dup[] = {DL_EOT, DL_EOT, NULL};
    err.msg[0] = 0;
    CHECK(dl_tok_train("abc", 3, 300, dup, &err) == NULL && strstr(err.msg, "twice"));
    const char *empty[] = {"", NULL};
    err.msg[0] = 0;
    CHECK(dl_tok_train("abc", 3, 300, empty, &err) == NULL && err.msg[0]);
    const char *bad_utf8[] = {"\xff", NULL};
    err.msg[0] = 0;
    CHECK(dl_tok_train("abc", 3, 300, bad_utf8, &err) == NULL && strstr(err.msg, "UTF-8"));
    /* a corpus that runs out of pairs gives a smaller vocabulary, not an error */
    dl_tokenizer *t = train("ab", 1000, NULL);
    CHECK(t && dl_tok_vocab_size(t) == 258 && dl_tok_eot_id(t) == 257);
    dl_tok_free(t);
    t = train("", 1000, NULL);
    CHECK(t && dl_tok_vocab_size(t) == 257);
    dl_tok_free(t);
}

/* ---- naive reference trainer -------------------------------------------------------------- */

enum { MAXID = 1024 };

typedef struct { int32_t *s; int n; int64_t count; } nword;

/* Unique pre-tokens of text (by bytes) with counts, each as byte ids. */
static nword *naive_words(const dl_tokenizer *t, const char *text, size_t len, int *nw_out) {
    dl_error err;
    dl_ivec ends = {0};
    dl_tok_pretokenize(t, text, len, &ends, &err);
    nword *w = calloc(ends.len + 1, sizeof *w);
    const char **src = calloc(ends.len + 1, sizeof *src);
    int nw = 0;
    size_t start = 0;
    for (size_t i = 0; i < ends.len; i++) {
        size_t n = (size_t)ends.data[i] - start;
        const char *p = text + start;
        start = (size_t)ends.data[i];
        int found = -1;
        for (int k = 0; k < nw && found < 0; k++)
            if ((size_t)w[k].n == n && memcmp(src[k], p, n) == 0) found = k;
        if (found >= 0) {
            w[found].count++;
            continue;
        }
        src[nw] = p;
        w[nw].n = (int)n;
        w[nw].count = 1;
        w[nw].s = malloc(n * sizeof(int32_t));
        for (size_t j = 0; j < n; j++) w[nw].s[j] = (unsigned char)p[j];
        nw++;
    }
    free(src);
    dl_ivec_free(&ends);
    *nw_out = nw;
    return w;
}

/* Merges until n_merges or no pairs: every step recounts all pairs. Returns merges done. */
static int naive_train(nword *w, int nw, int n_merges, int32_t (*merges)[2]) {
    int64_t *cnt = malloc(sizeof(int64_t) * MAXID * MAXID);
    int done = 0;
    for (; done < n_merges; done++) {
        memset(cnt, 0, sizeof(int64_t) * MAXID * MAXID);
        for (int k = 0; k < nw; k++)
            for (int i = 0; i + 1 < w[k].n; i++) cnt[w[k].s[i] * MAXID + w[k].s[i + 1]] += w[k].count;
        int64_t best = 0;
        int ba = -1, bb = -1;
        for (int a = 0; a < MAXID; a++) /* scanning in (a, b) order keeps the smallest on ties */
            for (int b = 0; b < MAXID; b++)
                if (cnt[a * MAXID + b] > best) {
                    best = cnt[a * MAXID + b];
                    ba = a;
                    bb = b;
                }
        if (best == 0) break;
        int32_t c = 256 + done;
        merges[done][0] = ba;
        merges[done][1] = bb;
        for (int k = 0; k < nw; k++) {
            int j = 0;
            for (int i = 0; i < w[k].n;) {
                if (i + 1 < w[k].n && w[k].s[i] == ba && w[k].s[i + 1] == bb) {
                    w[k].s[j++] = c;
                    i += 2;
                } else {
                    w[k].s[j++] = w[k].s[i++];
                }
            }
            w[k].n = j;
        }
    }
    free(cnt);
    return done;
}

/* A corpus from a tiny alphabet, so that counts tie often and runs like "aaaa" overlap. */
static char *tie_corpus(uint64_t seed, size_t *len) {
    dl_rng r;
    dl_rng_seed(&r, seed);
    dl_buf b = {0};
    static const char *const pieces[] = {"a", "b", "ab", "ba", "aaa", "c", "\xc3\xa9", "1", "22", "!", " ", " ", "\n"};
    while (b.len < 20000) {
        const char *p = pieces[dl_rng_below(&r, sizeof pieces / sizeof pieces[0])];
        dl_buf_append(&b, p, strlen(p));
    }
    *len = b.len;
    return b.data;
}

static void test_against_naive(uint64_t seed, int n_merges) {
    size_t len;
    char *text = tie_corpus(seed, &len);
    dl_error err;
    dl_tokenizer *t = dl_tok_train(text, len, 256 + n_merges + 1, NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    int nw;
    nword *w = naive_words(t, text, len, &nw);
    int32_t(*merges)[2] = malloc(sizeof *merges * (size_t)n_merges);
    int done = naive_train(w, nw, n_merges, merges);
    CHECK_MSG(done == dl_tok_n_merges(t), "naive made %d merges, dl_tok_train %d", done, dl_tok_n_merges(t));
    int same = 1;
    for (int r = 0; r < done && same; r++) {
        int a, b;
        dl_tok_merge(t, r, &a, &b);
        if (a != merges[r][0] || b != merges[r][1]) {
            fprintf(stderr, "  seed %llu merge %d: got (%d,%d), naive (%d,%d)\n", (unsigned long long)seed, r, a, b,
                    merges[r][0], merges[r][1]);
            same = 0;
        }
    }
    CHECK(same);
    /* encoding the corpus gives exactly the segmentation training ended with */
    int64_t want = 0;
    for (int k = 0; k < nw; k++) want += (int64_t)w[k].n * w[k].count;
    dl_ivec ids = {0};
    CHECK(dl_tok_encode(t, text, len, 0, &ids, &err) == 0);
    CHECK_MSG((int64_t)ids.len == want, "encode gives %zu tokens, training ended with %lld", ids.len, (long long)want);
    dl_ivec_free(&ids);
    for (int k = 0; k < nw; k++) free(w[k].s);
    free(w);
    free(merges);
    free(text);
    dl_tok_free(t);
}

static void test_determinism(void) {
    size_t len;
    char *text = tie_corpus(7, &len);
    dl_error err;
    dl_tokenizer *a = dl_tok_train(text, len, 400, NULL, &err), *b = dl_tok_train(text, len, 400, NULL, &err);
    CHECK(a && b);
    if (a && b) {
        const char *dir = test_tmpdir("tok-det");
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/a.json", dir);
        snprintf(pb, sizeof pb, "%s/b.json", dir);
        CHECK(dl_tok_save(a, pa, &err) == 0 && dl_tok_save(b, pb, &err) == 0);
        char *da, *db;
        size_t la, lb;
        CHECK(dl_read_file(pa, &da, &la, &err) == 0 && dl_read_file(pb, &db, &lb, &err) == 0);
        CHECK(la == lb && memcmp(da, db, la) == 0);
        free(da);
        free(db);
        dl_rm_rf(dir, &err);
    }
    dl_tok_free(a);
    dl_tok_free(b);
    free(text);
}

int main(void) {
    test_hand_case();
    test_pretokens_bound_merges();
    test_tie_break();
    test_specials_cut_out();
    test_errors();
    test_determinism();
    for (uint64_t seed = 1; seed <= 4; seed++) test_against_naive(seed, 300);
    TEST_MAIN_END();
}
