/* Scoring rules, against a brute-force count written from their definition: a position with
 * fewer than H tokens before it is not scored; a (context, token) pair is scored once across
 * every sequence given to one scorer; a pair whose H+1 ids occur in a row in the prompt is not
 * scored. Also: nothing to score gives p = 1 and z = 0; a fully green text gives gamma^n. */
#include "provenance/provenance.h"
#include "test.h"

typedef struct { long tokens, no_context, repeats, excluded, n, green; } counts;

static int in_run(const int32_t *hay, size_t n, const int32_t *pair, int W) {
    for (size_t i = 0; i + (size_t)W <= n; i++)
        if (!memcmp(hay + i, pair, (size_t)W * sizeof *pair)) return 1;
    return 0;
}

/* seen: every pair scored so far (W ids each), for the repeat rule */
static void brute(const dl_wm *wm, const int32_t *ctx, const int32_t *tok, size_t n, const int32_t *prompt, size_t np,
                  dl_ivec *seen, counts *c) {
    int H = wm->H, W = H + 1;
    for (size_t i = 0; i < n; i++) {
        c->tokens++;
        if (i < (size_t)H || tok[i] < 0) {
            c->no_context++;
            continue;
        }
        int32_t pair[DL_WM_MAX_CONTEXT + 1];
        for (int k = 0; k < H; k++) pair[k] = ctx[i - (size_t)H + (size_t)k];
        pair[H] = tok[i];
        int dup = 0; /* the pair is one of the tuples of seen (at a multiple of W) */
        for (size_t s = 0; s + (size_t)W <= seen->len && !dup; s += (size_t)W)
            dup = !memcmp(seen->data + s, pair, (size_t)W * sizeof *pair);
        if (prompt && in_run(prompt, np, pair, W)) c->excluded++;
        else if (dup) c->repeats++;
        else {
            for (int k = 0; k < W; k++) dl_ivec_push(seen, pair[k]);
            c->n++;
            c->green += dl_wm_green(wm, pair, pair[H]);
        }
    }
}

static void check_same(const dl_wm_scorer *s, const counts *c, const char *what) {
    dl_wm_stats st;
    dl_wm_scorer_stats(s, &st);
    CHECK_MSG(st.tokens == c->tokens && st.no_context == c->no_context && st.repeats == c->repeats &&
                  st.excluded == c->excluded && st.n == c->n && st.green == c->green,
              "%s: scorer %ld/%ld/%ld/%ld/%ld/%ld, brute force %ld/%ld/%ld/%ld/%ld/%ld", what, st.tokens, st.no_context,
              st.repeats, st.excluded, st.n, st.green, c->tokens, c->no_context, c->repeats, c->excluded, c->n, c->green);
}

/* Random sequences over a small alphabet (so pairs repeat and prompts overlap them), three per
 * scorer, H from 1 to 4, with and without prompts, some predictions missing (-1). */
static void test_against_brute_force(void) {
    dl_rng r;
    dl_rng_seed(&r, 3);
    for (int H = 1; H <= 4; H++)
        for (int round = 0; round < 6; round++) {
            dl_wm wm;
            dl_error err;
            char key[16];
            snprintf(key, sizeof key, "k%d.%d", H, round);
            CHECK(dl_wm_init(&wm, key, strlen(key), 0.25 + 0.1 * round, 2, H, &err) == 0);
            dl_wm_scorer *s = dl_wm_scorer_new(&wm);
            dl_ivec seen = {0};
            counts c = {0};
            int alphabet = 2 + round * 3;
            for (int seq = 0; seq < 3; seq++) {
                enum { N = 300, NP = 60 };
                int32_t ctx[N], tok[N], prompt[NP];
                for (int i = 0; i < N; i++) ctx[i] = (int32_t)dl_rng_below(&r, (uint64_t)alphabet);
                for (int i = 0; i < NP; i++) prompt[i] = (int32_t)dl_rng_below(&r, (uint64_t)alphabet);
                int as_model = seq == 1; /* guesses that differ from the text, some missing */
                for (int i = 0; i < N; i++)
                    tok[i] = as_model ? (dl_rng_below(&r, 10) == 0 ? -1 : (int32_t)dl_rng_below(&r, (uint64_t)alphabet)) : ctx[i];
                const int32_t *p = seq == 2 ? NULL : prompt;
                CHECK(dl_wm_score(s, ctx, tok, N, p, NP, &err) == 0);
                brute(&wm, ctx, tok, N, p, NP, &seen, &c);
            }
            char what[64];
            snprintf(what, sizeof what, "H %d round %d", H, round);
            check_same(s, &c, what);
            dl_wm_scorer_free(s);
            dl_ivec_free(&seen);
        }
}

/* Many distinct pairs: the table grows past its first size and still finds every repeat. */
static void test_many_pairs(void) {
    dl_wm wm;
    dl_error err;
    CHECK(dl_wm_init(&wm, "many", 4, 0.25, 2, 2, &err) == 0);
    dl_wm_scorer *s = dl_wm_scorer_new(&wm);
    enum { N = 200000 };
    int32_t *ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)((i * 7919L) % 50021);
    CHECK(dl_wm_score(s, ids, ids, N, NULL, 0, &err) == 0);
    CHECK(dl_wm_score(s, ids, ids, N, NULL, 0, &err) == 0); /* the same again: all repeats */
    dl_wm_stats st;
    dl_wm_scorer_stats(s, &st);
    /* the sequence has period 50021, so pairs repeat from position 50021 + 2 on */
    CHECK_MSG(st.n == 50021 && st.repeats == 2L * N - 4 - 50021 && st.no_context == 4, "n %ld repeats %ld", st.n,
              st.repeats);
    CHECK(fabs(st.green - 0.25 * st.n) < 4 * sqrt(st.n * 0.25 * 0.75));
    CHECK(st.p > 1e-4 && fabs(st.z) < 4);
    free(ids);
    dl_wm_scorer_free(s);
}

static void test_edges(void) {
    dl_wm wm;
    dl_error err;
    CHECK(dl_wm_init(&wm, "edge", 4, 0.25, 2, 3, &err) == 0);
    dl_wm_scorer *s = dl_wm_scorer_new(&wm);
    dl_wm_stats st;
    dl_wm_scorer_stats(s, &st);
    CHECK(st.n == 0 && st.p == 1.0 && st.log_p == 0.0 && st.z == 0.0); /* nothing at all */
    const int32_t three[3] = {1, 2, 3};
    CHECK(dl_wm_score(s, three, three, 3, NULL, 0, &err) == 0); /* shorter than H + 1 */
    CHECK(dl_wm_score(s, NULL, NULL, 0, NULL, 0, &err) == 0);
    dl_wm_scorer_stats(s, &st);
    CHECK(st.tokens == 3 && st.no_context == 3 && st.n == 0 && st.p == 1.0);
    dl_wm_scorer_free(s);

    /* a text made only of green pairs: g = n and p = gamma^n */
    dl_wm one;
    CHECK(dl_wm_init(&one, "green", 5, 0.25, 2, 1, &err) == 0);
    enum { N = 600 };
    int32_t ids[N];
    ids[0] = 0;
    for (int i = 1; i < N; i++) { /* a green successor from a fresh range: every pair is new */
        int32_t t = 1000 * i;
        while (!dl_wm_green(&one, &ids[i - 1], t)) t++;
        ids[i] = t;
    }
    s = dl_wm_scorer_new(&one);
    CHECK(dl_wm_score(s, ids, ids, N, NULL, 0, &err) == 0);
    dl_wm_scorer_stats(s, &st);
    CHECK(st.green == st.n && st.n == N - 1);
    CHECK_CLOSE(st.log_p, (double)st.n * log(0.25), 0, 1e-12);
    CHECK(st.p == 0.0 || st.p < 1e-60);
    dl_wm_scorer_free(s);
}

int main(void) {
    test_against_brute_force();
    test_many_pairs();
    test_edges();
    TEST_MAIN_END();
}
