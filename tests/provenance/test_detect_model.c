/* detect model (reading mode):
 *  - dl_detect_predict gives, window by window and batch by batch, the argmax of an independent
 *    KV-cache pass over each window;
 *  - calibration: a model never trained on watermarked text, reading a text, gets p-values that
 *    are uniform across 1000 random keys: the counts below 0.5, 0.05 and 0.01 within 3 standard
 *    deviations of what an exact binomial null gives (slightly under 500, 50 and 10: a binomial
 *    p-value is discrete), with the text's pairs excluded and without (--unmarked-text); the
 *    forward runs once, each key re-scores;
 *  - the watermarking model itself, reading its own watermarked samples, is not flagged (over
 *    200 keys, at most 5% + 3 sd below 0.05): scoring only pairs absent from the text keeps the
 *    copies of the text out;
 *  - radioactivity: a student trained on the watermarked samples is flagged (p < 1e-6), one
 *    trained on unwatermarked samples of the same teacher is not (p > 0.01), whether they read
 *    plain text of the teacher's or its watermarked samples. */
#include "test.h"
#include "wm_fixture.h"

enum { V = 256 };

static dl_model teacher;
static dl_kv_cache kv;

static void test_predict_windows(void) {
    dl_error err;
    enum { N = 100, T = 16 };
    int32_t ids[N], pred[N], want[N];
    dl_rng r;
    dl_rng_seed(&r, 4);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)dl_rng_below(&r, V);
    CHECK(dl_detect_predict(&teacher, ids, N, 3, T, pred, &err) == 0); /* 7 windows: batches of 3, 3, 1 */
    static float logits[T * V];
    want[0] = -1;
    for (int w = 0; w * T < N - 1; w++) {
        int len = N - w * T < T ? N - w * T : T;
        dl_kv_cache_reset(&kv);
        CHECK(dl_model_decode(&teacher, &kv, ids + w * T, len, logits, 1, &err) == 0);
        for (int t = 0; t < len && w * T + t + 1 < N; t++) want[w * T + t + 1] = dl_argmax(logits + (size_t)t * V, V);
    }
    int same = 0;
    for (int i = 0; i < N; i++) same += pred[i] == want[i];
    CHECK_MSG(same == N, "%d of %d guesses match a plain pass", same, N);
    int32_t bad[2] = {1, V};
    CHECK(dl_detect_predict(&teacher, bad, 2, 1, 4, pred, &err) != 0 && strstr(err.msg, "vocabulary"));
    CHECK(dl_detect_predict(&teacher, ids, N, 1, teacher.cfg.max_T + 1, pred, &err) != 0);
}

static void sample_text(const dl_model *m, const dl_wm *wm, int n, uint64_t seed, int32_t *out) {
    int32_t prompt[1] = {(int32_t)(seed % V)};
    wm_sample(m, &kv, wm, prompt, 1, n - 1, 1.0f, seed, out, NULL);
}

/* exclude: leave out the pairs the text holds (detect model's default); 0 as --unmarked-text */
static void score_as(const dl_wm *wm, const int32_t *ids, const int32_t *pred, int n, int exclude, dl_wm_stats *st) {
    dl_error err;
    dl_wm_scorer *s = dl_wm_scorer_new(wm);
    CHECK(dl_wm_score(s, ids, pred, (size_t)n, exclude ? ids : NULL, (size_t)n, &err) == 0);
    dl_wm_scorer_stats(s, st);
    dl_wm_scorer_free(s);
}

static void score(const dl_wm *wm, const int32_t *ids, const int32_t *pred, int n, dl_wm_stats *st) {
    score_as(wm, ids, pred, n, 1, st);
}

/* P[p-value < alpha] for n pairs when no watermark is involved. The p-value is discrete, so this is
 * P[X >= g] for the smallest g whose tail is below alpha: at most alpha, and near it for large n. */
static double null_rate(long n, double alpha) {
    long g = (long)(0.25 * (double)n);
    while (g <= n && dl_binom_log_sf(g, n, 0.25) >= log(alpha)) g++;
    return exp(dl_binom_log_sf(g, n, 0.25));
}

/* counts of p < alpha over keys, against the sum of their null rates (3 standard deviations) */
typedef struct { int count; double mean, var; } tally;

static void tally_add(tally *t, long n, double p, double alpha) {
    double r = null_rate(n, alpha);
    t->count += p < alpha;
    t->mean += r;
    t->var += r * (1 - r);
}

static int tally_ok(const tally *t, const char *what) {
    printf("  p < %s: %d keys, %.1f expected (sd %.1f)\n", what, t->count, t->mean, sqrt(t->var));
    return fabs(t->count - t->mean) <= 3 * sqrt(t->var);
}

static void test_uniform_across_keys(void) {
    dl_error err;
    enum { N = 2000, KEYS = 1000 };
    static int32_t text[N], pred[N];
    dl_model other;
    wm_make_model(&other, V, 32, 1, 256, 5.0f, 99); /* the text comes from another model */
    for (int i = 0; i < N / 200; i++) sample_text(&other, NULL, 200, 300 + (uint64_t)i, text + i * 200);
    dl_model_free(&other);
    CHECK(dl_detect_predict(&teacher, text, N, 4, 200, pred, &err) == 0);
    tally t[2][3] = {{{0}}}; /* [with the text's pairs excluded, or not][alpha 0.5, 0.05, 0.01] */
    const double alpha[3] = {0.5, 0.05, 0.01};
    long pairs = 0;
    for (int k = 0; k < KEYS; k++) {
        dl_wm wm;
        char key[32];
        snprintf(key, sizeof key, "random key %d", k);
        CHECK(dl_wm_init(&wm, key, strlen(key), 0.25, 2, 1, &err) == 0);
        for (int ex = 0; ex < 2; ex++) {
            dl_wm_stats st;
            score_as(&wm, text, pred, N, ex, &st);
            for (int a = 0; a < 3; a++) tally_add(&t[ex][a], st.n, st.p, alpha[a]);
            pairs += ex ? st.n : 0;
        }
    }
    for (int ex = 0; ex < 2; ex++) {
        printf("uniform across %d keys, %s:\n", KEYS, ex ? "pairs of the text excluded" : "all pairs (--unmarked-text)");
        const char *names[3] = {"0.5", "0.05", "0.01"};
        for (int a = 0; a < 3; a++) CHECK(tally_ok(&t[ex][a], names[a]));
        CHECK(t[ex][1].mean > 0.8 * 0.05 * KEYS && t[ex][2].mean > 0.7 * 0.01 * KEYS); /* discreteness costs little */
    }
    CHECK_MSG(pairs / KEYS > 300, "only %ld pairs a key", pairs / KEYS);
}

static void test_own_samples_not_flagged(void) {
    dl_error err;
    enum { N = 400, KEYS = 200 };
    int32_t text[N], pred[N];
    int below05 = 0;
    for (int k = 0; k < KEYS; k++) {
        dl_wm wm;
        char key[32];
        snprintf(key, sizeof key, "own %d", k);
        CHECK(dl_wm_init(&wm, key, strlen(key), 0.25, 2, 1, &err) == 0);
        sample_text(&teacher, &wm, N, 7000 + (uint64_t)k, text);
        CHECK(dl_detect_predict(&teacher, text, N, 1, N, pred, &err) == 0);
        dl_wm_stats st;
        score(&wm, text, pred, N, &st);
        below05 += st.p < 0.05;
    }
    printf("the teacher reading its own watermarked samples: %d of %d keys below 0.05\n", below05, KEYS);
    CHECK(below05 <= KEYS * 0.05 + 3 * sqrt(KEYS * 0.05 * 0.95));
}

/* ---- radioactivity ----------------------------------------------------------------------------- */

/* Adam on next-token cross-entropy over windows of data (n ids), B x T per step. */
static void train(dl_model *m, const int32_t *data, int n, int steps, uint64_t seed) {
    enum { B = 16, T = 64 };
    dl_error err;
    if (dl_model_alloc_train(m, B, T, &err)) wm_fixture_die("alloc", &err);
    size_t P = m->lay.total;
    float *mom = calloc(P, sizeof *mom), *vel = calloc(P, sizeof *vel);
    int32_t in[B * T], tg[B * T];
    dl_rng r;
    dl_rng_seed(&r, seed);
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < B; b++) {
            int at = (int)dl_rng_below(&r, (uint64_t)(n - T - 1));
            memcpy(in + b * T, data + at, T * sizeof *in);
            memcpy(tg + b * T, data + at + 1, T * sizeof *tg);
        }
        dl_model_zero_grad(m);
        dl_model_forward(m, in, tg, B, T);
        dl_model_backward(m, 1.0f);
        float lr = 0.01f, c1 = 1 - powf(0.9f, (float)step), c2 = 1 - powf(0.999f, (float)step);
        for (size_t i = 0; i < P; i++) {
            mom[i] = 0.9f * mom[i] + 0.1f * m->grads[i];
            vel[i] = 0.999f * vel[i] + 0.001f * m->grads[i] * m->grads[i];
            m->params[i] -= lr * (mom[i] / c1) / (sqrtf(vel[i] / c2) + 1e-8f);
        }
    }
    free(mom);
    free(vel);
}

/* A student trained on 20k tokens of the teacher's samples (watermarked with wm_data, or plain)
 * reads each of the texts; log_p[i] receives the p-value (ln) of reading i. */
static void student_p(const dl_wm *wm_data, const dl_wm *wm, int32_t *const *readings, int n_read, uint64_t seed,
                      double *log_p) {
    enum { SEQ = 200, N_TRAIN = 20000 };
    static int32_t data[N_TRAIN], pred[4000];
    for (int i = 0; i < N_TRAIN / SEQ; i++) sample_text(&teacher, wm_data, SEQ, seed + (uint64_t)i, data + i * SEQ);
    dl_model student;
    wm_make_model(&student, V, 32, 1, 256, 1.0f, seed);
    train(&student, data, N_TRAIN, 200, seed);
    for (int k = 0; k < 2; k++) {
        dl_error err;
        CHECK(dl_detect_predict(&student, readings[k], (size_t)n_read, 4, 200, pred, &err) == 0);
        dl_wm_stats st;
        score(wm, readings[k], pred, n_read, &st);
        char p[64];
        dl_format_p(st.log_p, p, sizeof p);
        printf("student trained on %s samples, reading %s text: %ld of %ld green, z %.2f, p %s\n",
               wm_data ? "watermarked" : "plain", k ? "watermarked" : "plain", st.green, st.n, st.z, p);
        log_p[k] = st.log_p;
    }
    dl_model_free(&student);
}

/* Reading plain text of the teacher's domain, or the watermarked samples themselves (whose
 * copies are not scored, which only makes the test more cautious). */
static void test_radioactivity(void) {
    dl_error err;
    dl_wm wm;
    CHECK(dl_wm_init(&wm, "teacher key", 11, 0.25, 2, 1, &err) == 0);
    enum { N = 4000 };
    static int32_t plain[N], marked[N];
    for (int i = 0; i < N / 200; i++) {
        sample_text(&teacher, NULL, 200, 900000 + (uint64_t)i, plain + i * 200);
        sample_text(&teacher, &wm, 200, 950000 + (uint64_t)i, marked + i * 200);
    }
    int32_t *readings[2] = {plain, marked};
    double lp[2];
    student_p(&wm, &wm, readings, N, 100000, lp);
    CHECK(lp[0] < log(1e-6) && lp[1] < log(1e-6));
    student_p(NULL, &wm, readings, N, 200000, lp);
    CHECK(lp[0] > log(0.01) && lp[1] > log(0.01));
}

int main(void) {
    dl_set_threads(1); /* tiny models: threads only add waits */
    dl_log_set_level(DL_LOG_QUIET); /* no progress lines */
    dl_error err;
    wm_make_model(&teacher, V, 32, 1, 400, 5.0f, 21);
    if (dl_kv_cache_create(&kv, &teacher.cfg, 400, &err)) wm_fixture_die("kv", &err);
    test_predict_windows();
    test_uniform_across_keys();
    test_own_samples_not_flagged();
    test_radioactivity();
    dl_kv_cache_free(&kv);
    dl_model_free(&teacher);
    TEST_MAIN_END();
}
