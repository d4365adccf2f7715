/* The audit's per-key features on hand-made traffic, each against a value computed here in a
 * plain way: the MinHash similarity against exact pairwise Jaccard of shingle sets, the timing
 * measures against the gaps as generated, shares against counts. */
#include "audit_fixture.h"
#include <string.h>

static const dl_audit_key *key_by_id(const dl_audit_result *res, long long id) {
    for (int k = 0; k < res->n_keys; k++)
        if (res->keys[k].id == id) return &res->keys[k];
    return NULL;
}

/* ---- exact Jaccard of word 3-shingle sets, the naive way ------------------------------------- */

typedef struct { char s[40][128]; int n; } shingles;

static void shingle_set(const char *text, shingles *out) {
    char words[64][32];
    int nw = 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *save, *w = strtok_r(copy, " ", &save); w && nw < 64; w = strtok_r(NULL, " ", &save))
        snprintf(words[nw++], 32, "%s", w);
    out->n = 0;
    for (int i = 0; i + 2 < nw; i++) {
        char s[128];
        snprintf(s, sizeof s, "%.31s %.31s %.31s", words[i], words[i + 1], words[i + 2]);
        int dup = 0;
        for (int j = 0; j < out->n; j++) dup |= strcmp(out->s[j], s) == 0;
        if (!dup && out->n < 40) snprintf(out->s[out->n++], 128, "%s", s);
    }
}

static double jaccard(const shingles *a, const shingles *b) {
    int inter = 0;
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++) inter += strcmp(a->s[i], b->s[j]) == 0;
    return (double)inter / (a->n + b->n - inter);
}

static double mean_pairwise(char prompts[][512], int m) {
    static shingles sets[64];
    for (int i = 0; i < m; i++) shingle_set(prompts[i], &sets[i]);
    double sum = 0;
    for (int i = 0; i < m; i++)
        for (int j = i + 1; j < m; j++) sum += jaccard(&sets[i], &sets[j]);
    return sum / (m * (m - 1) / 2.0);
}

static void test_similarity(void) {
    dl_rng r;
    dl_rng_seed(&r, 1);
    static char tpl[40][512], rnd[40][512];
    dl_audit_log *L = dl_audit_log_new(NULL);
    for (int i = 0; i < 40; i++) {
        fx_template_prompt(&r, tpl[i]);
        fx_random_prompt(&r, 20, rnd[i]);
        fx_add(L, &(fx_req){1e9 + i * 60, 1, "tpl", "a", tpl[i], -1, 16, 5, 1});
        fx_add(L, &(fx_req){1e9 + i * 60, 2, "rnd", "b", rnd[i], -1, 16, 5, 1});
    }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_key *a = key_by_id(&res, 1), *b = key_by_id(&res, 2);
    double exact_a = mean_pairwise(tpl, 40), exact_b = mean_pairwise(rnd, 40);
    CHECK_MSG(exact_a > 0.6 && exact_b < 0.01, "exact %.3f %.3f", exact_a, exact_b);
    CHECK_CLOSE(a->x.similarity, exact_a, 0.06, 0);
    CHECK_CLOSE(b->x.similarity, exact_b, 0.02, 0);
    CHECK(a->value[DL_AUDIT_F_TEMPLATE] > 0.99);
    CHECK(b->value[DL_AUDIT_F_TEMPLATE] < 0.05);
    CHECK(a->x.distinct_prompts == 40 && a->x.with_text == 40);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* The chat template's role lines are the server's words, not the client's: random messages
 * wrapped in them stay unrelated. */
static void test_chat_roles_ignored(void) {
    dl_rng r;
    dl_rng_seed(&r, 2);
    dl_audit_log *L = dl_audit_log_new(NULL);
    for (int i = 0; i < 30; i++) {
        char content[512], chat[700];
        fx_random_prompt(&r, 6, content);
        snprintf(chat, sizeof chat, "### System:\nyou are a helpful assistant\n\n### User:\n%s\n\n### Assistant:\n", content);
        fx_add(L, &(fx_req){1e9 + i, 1, "chat", "a", chat, -1, 16, 5, 1});
    }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    /* the system line is shared (5 words: 3 shingles, one more joining it to the message) */
    CHECK_MSG(res.keys[0].x.similarity < 0.35, "similarity %.3f", res.keys[0].x.similarity);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

static void test_shares(void) {
    dl_audit_log *L = dl_audit_log_new(NULL);
    /* 10 requests: logprobs asked on 3; completions 16 of 16 (x4), 5 of 16 (x6) */
    for (int i = 0; i < 10; i++) {
        char p[64];
        snprintf(p, sizeof p, "prompt number %d", i < 5 ? 0 : i); /* 6 distinct */
        fx_add(L, &(fx_req){1e9 + i, 7, "k", "a", p, i < 3 ? 5 : -1, 16, i % 10 < 4 ? 16 : 5, 1});
    }
    /* n = 2 choices: 32 tokens is saturated, 20 is not */
    dl_audit_request two = {.time = 1e9 + 20, .key_id = 7, .prompt_hash = "x2", .prompt = "two choices", .status = 200,
                            .max_tokens = 16, .n = 2, .logprobs = -1, .completion_tokens = 32};
    CHECK(dl_audit_log_add(L, &two, NULL) == 0);
    two.time += 1;
    two.completion_tokens = 20;
    CHECK(dl_audit_log_add(L, &two, NULL) == 0);
    /* a refused request (429) counts as a request but not as a completion */
    two.status = 429;
    two.time += 1;
    two.completion_tokens = 0;
    CHECK(dl_audit_log_add(L, &two, NULL) == 0);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_features *x = &res.keys[0].x;
    CHECK(x->requests == 13 && x->with_prompt == 13);
    CHECK_CLOSE(x->logprobs_share, 3.0 / 13, 1e-12, 0);
    CHECK_CLOSE(x->saturation, 5.0 / 12, 1e-12, 0); /* 4 + the 32 of 2x16, over 12 completed */
    CHECK(x->distinct_prompts == 7);
    CHECK_CLOSE(x->distinct_ratio, 7.0 / 13, 1e-12, 0);
    CHECK(x->completion_tokens == 4 * 16 + 6 * 5 + 32 + 20);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Even gaps, Poisson gaps, bursts; and the same traffic 1000x slower measures the same. */
static void timing_case(int kind, double scale, dl_audit_features *x, double *cv_ref) {
    dl_rng r;
    dl_rng_seed(&r, 3);
    dl_audit_log *L = dl_audit_log_new(NULL);
    double t = 1.7e9, sum = 0, sq = 0, gaps[2000];
    for (int i = 0; i < 2000; i++) {
        if (i) {
            gaps[i - 1] = fx_gap(&r, kind, i) * scale;
            t += gaps[i - 1];
            sum += gaps[i - 1];
        }
        fx_add(L, &(fx_req){t, 1, "k", "a", "same prompt", -1, 16, 5, 1});
    }
    double mean = sum / 1999;
    for (int i = 0; i < 1999; i++) sq += (gaps[i] - mean) * (gaps[i] - mean);
    *cv_ref = sqrt(sq / 1999) / mean;
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    *x = res.keys[0].x;
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

static void test_timing(void) {
    dl_audit_features even, poisson, bursts, slow;
    double cv_even, cv_poisson, cv_bursts, cv_slow;
    timing_case(0, 1, &even, &cv_even);
    timing_case(1, 1, &poisson, &cv_poisson);
    timing_case(2, 1, &bursts, &cv_bursts);
    timing_case(1, 1000, &slow, &cv_slow);
    CHECK_CLOSE(even.gap_cv, 0, 1e-6, 0);
    CHECK_CLOSE(even.burstiness, -1, 1e-6, 0);
    CHECK_CLOSE(even.steadiness, 1, 1e-12, 0);
    CHECK_CLOSE(poisson.gap_cv, cv_poisson, 1e-6, 1e-6);
    CHECK_MSG(poisson.gap_cv > 0.9 && poisson.gap_cv < 1.1, "Poisson cv %.3f", poisson.gap_cv);
    CHECK_MSG(fabs(poisson.burstiness) < 0.05, "Poisson burstiness %.3f", poisson.burstiness);
    CHECK_CLOSE(bursts.gap_cv, cv_bursts, 1e-6, 1e-6);
    CHECK_MSG(bursts.burstiness > 0.3, "bursts %.3f", bursts.burstiness);
    CHECK_CLOSE(poisson.steadiness, 1 - exp(-2), 0.04, 0); /* 2 requests a slice on average */
    CHECK_MSG(bursts.steadiness < 0.6, "steadiness of bursts %.3f", bursts.steadiness);
    /* the time unit does not matter */
    CHECK_CLOSE(slow.gap_cv, poisson.gap_cv, 1e-6, 1e-6);
    CHECK_CLOSE(slow.burstiness, poisson.burstiness, 1e-6, 1e-6);
    CHECK_CLOSE(slow.steadiness, poisson.steadiness, 1e-12, 0);
}

/* Steadiness needs 16 requests (8 slices): with fewer, random arrivals fill the slices as often as
 * a metronome does, so it is not measured; from 16 an even pace gives 1. */
static void test_steadiness_needs_requests(void) {
    for (int n = 5; n <= 17; n++) {
        dl_audit_log *L = dl_audit_log_new(NULL);
        for (int i = 0; i < n; i++) fx_add(L, &(fx_req){1.7e9 + 60.0 * i, 1, "k", "a", "p", -1, 16, 5, 1});
        dl_audit_result res;
        CHECK(dl_audit_analyse(L, &res, NULL) == 0);
        double s = res.keys[0].x.steadiness, v = res.keys[0].value[DL_AUDIT_F_STEADINESS];
        if (n < 16) CHECK_MSG(isnan(s) && isnan(v), "%d requests: steadiness %.3f", n, s);
        else CHECK_MSG(s == 1 && v == 1, "%d requests: steadiness %.3f", n, s);
        CHECK(!isnan(res.keys[0].x.gap_cv)); /* the gaps are still measured */
        dl_audit_result_free(&res);
        dl_audit_log_free(L);
    }
}

/* Hours of the day: around the clock vs office hours, over 3 days; nothing for one day. */
static void test_hours(void) {
    dl_audit_log *L = dl_audit_log_new(NULL);
    double day0 = 1767225600; /* 2026-01-01 00:00:00 UTC */
    for (int i = 0; i < 3 * 48; i++) {
        fx_add(L, &(fx_req){day0 + i * 1800.0, 1, "clock", "a", "p", -1, 16, 5, 1});
        int day = i / 48, slot = i % 48; /* 09:00 to 16:59 only */
        fx_add(L, &(fx_req){day0 + day * 86400.0 + 9 * 3600 + slot * 600.0, 2, "office", "b", "p", -1, 16, 5, 1});
        fx_add(L, &(fx_req){day0 + i * 300.0, 3, "one-day", "c", "p", -1, 16, 5, 1});
    }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_key *clock = key_by_id(&res, 1), *office = key_by_id(&res, 2), *short_key = key_by_id(&res, 3);
    CHECK(clock->x.hours_active == 24 && clock->value[DL_AUDIT_F_HOURS] == 1);
    CHECK(office->x.hours_active == 8 && office->value[DL_AUDIT_F_HOURS] == 0);
    CHECK(isnan(short_key->x.hours_active) && isnan(short_key->value[DL_AUDIT_F_HOURS]));
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Breadth against a plain count: words in half the prompts or more are left out, the rest give
 * distinct / uses. A sweep over the vocabulary is broad; prompts from 30 words are narrow. */
static double breadth_ref(char prompts[][512], int m) {
    static char words[4096][32];
    static int count[4096];
    int nw = 0;
    for (int i = 0; i < m; i++) {
        char copy[512], seen[64][32];
        int ns = 0;
        snprintf(copy, sizeof copy, "%s", prompts[i]);
        for (char *save, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            int dup = 0;
            for (int j = 0; j < ns; j++) dup |= strcmp(seen[j], w) == 0;
            if (dup) continue;
            snprintf(seen[ns++], 32, "%s", w);
            int j = 0;
            while (j < nw && strcmp(words[j], w)) j++;
            if (j == nw) {
                snprintf(words[nw], 32, "%s", w);
                count[nw++] = 0;
            }
            count[j]++;
        }
    }
    int half = (m + 1) / 2 > 2 ? (m + 1) / 2 : 2;
    long distinct = 0, uses = 0;
    for (int j = 0; j < nw; j++)
        if (count[j] < half) {
            distinct++;
            uses += count[j];
        }
    return (double)distinct / uses;
}

static void test_breadth(void) {
    dl_rng r;
    dl_rng_seed(&r, 4);
    static char sweep[40][512], narrow[40][512];
    dl_audit_log *L = dl_audit_log_new(NULL);
    for (int i = 0; i < 40; i++) {
        fx_template_prompt(&r, sweep[i]);
        int n = 0;
        for (int w = 0; w < 10; w++) {
            char word[32];
            fx_word((unsigned)dl_rng_below(&r, 30), word);
            n += sprintf(narrow[i] + n, "%s%s", w ? " " : "", word);
        }
        fx_add(L, &(fx_req){1e9 + i, 1, "sweep", "a", sweep[i], -1, 16, 5, 1});
        fx_add(L, &(fx_req){1e9 + i, 2, "narrow", "b", narrow[i], -1, 16, 5, 1});
    }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    double b_sweep = key_by_id(&res, 1)->x.breadth, b_narrow = key_by_id(&res, 2)->x.breadth;
    CHECK_CLOSE(b_sweep, breadth_ref(sweep, 40), 1e-9, 0);
    CHECK_CLOSE(b_narrow, breadth_ref(narrow, 40), 1e-9, 0);
    CHECK_MSG(b_sweep > 0.9 && b_narrow < 0.5, "breadth %.3f %.3f", b_sweep, b_narrow);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Volume is relative to the median key; one prompt repeated is not a template. */
static void test_volume_and_repeats(void) {
    dl_audit_log *L = dl_audit_log_new(NULL);
    for (int k = 1; k <= 5; k++)
        for (int i = 0; i < (k == 5 ? 1000 : 10); i++) fx_add(L, &(fx_req){1e9 + i, k, NULL, "a", "hello there model", -1, 16, 5, 1});
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    CHECK(res.median_requests == 10);
    const dl_audit_key *big = key_by_id(&res, 5), *small = key_by_id(&res, 1);
    CHECK_CLOSE(big->x.volume_ratio, 100, 1e-12, 0);
    CHECK_CLOSE(big->value[DL_AUDIT_F_VOLUME], 1, 1e-12, 0);
    CHECK_CLOSE(small->value[DL_AUDIT_F_VOLUME], 0, 1e-12, 0);
    CHECK(big->value[DL_AUDIT_F_TEMPLATE] == 0 && big->x.distinct_prompts == 1);
    CHECK(strcmp(small->name, "key 1") == 0); /* no name logged: named by id */
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Scores are a weighted mean of the measured values, as the model table says. */
static void test_score_is_weighted_mean(void) {
    dl_rng r;
    dl_rng_seed(&r, 5);
    dl_audit_log *L = dl_audit_log_new(NULL);
    fx_ordinary(L, &r, 1, 40, 1);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_key *k = &res.keys[0];
    double num = 0, den = 0;
    for (int f = 0; f < DL_AUDIT_NF; f++)
        if (!isnan(k->value[f])) {
            CHECK(k->value[f] >= 0 && k->value[f] <= 1);
            num += dl_audit_model_default.weight[f] * k->value[f];
            den += dl_audit_model_default.weight[f];
        }
    CHECK_CLOSE(k->score, num / den, 1e-12, 0);
    CHECK(k->judged && !k->flagged && k->score < 0.4);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

int main(void) {
    test_similarity();
    test_chat_roles_ignored();
    test_shares();
    test_timing();
    test_steadiness_needs_requests();
    test_hours();
    test_breadth();
    test_volume_and_repeats();
    test_score_is_weighted_mean();
    TEST_MAIN_END();
}
