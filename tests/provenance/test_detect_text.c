/* Calibration of detect text on samples of a tiny random model (library sampler, no HTTP):
 *  - 200-token completions sampled with the watermark (gamma 0.25, delta 2, H 1) reach z > 4 in
 *    at least 95% of 200 samples;
 *  - unwatermarked completions of the same model reach z > 4 in at most 0.1% of 2000 samples
 *    (2 allowed; under the null the rate is about 1e-4, so 2000 samples expect 0.2).
 * The model's weights are scaled so that its next-token distributions at temperature 1 have a
 * mean entropy of 2-4 nats (the test measures and checks it; real language models sit around
 * there): a near-deterministic model would leave the watermark nowhere to go, a uniform one
 * would make the test trivially easy. */
#include "test.h"
#include "wm_fixture.h"

enum { V = 256, PROMPT = 4, GEN = 200 };

static dl_model model;
static dl_kv_cache kv;

/* z of one completion of `seed`, sampled with wm_gen (or none), scored with wm */
static double completion_z(const dl_wm *wm_gen, const dl_wm *wm, uint64_t seed, double *entropy) {
    dl_rng r;
    dl_rng_seed(&r, seed);
    int32_t prompt[PROMPT], ids[PROMPT + GEN];
    for (int i = 0; i < PROMPT; i++) prompt[i] = (int32_t)dl_rng_below(&r, V);
    wm_sample(&model, &kv, wm_gen, prompt, PROMPT, GEN, 1.0f, seed, ids, entropy);
    dl_wm_scorer *s = dl_wm_scorer_new(wm);
    dl_error err;
    dl_wm_stats st;
    /* the completion alone, as detect text reads it: its first token is context only */
    CHECK(dl_wm_score(s, ids + PROMPT, ids + PROMPT, GEN, prompt, PROMPT, &err) == 0);
    dl_wm_scorer_stats(s, &st);
    dl_wm_scorer_free(s);
    return st.z;
}

int main(void) {
    dl_set_threads(1); /* a tiny model decodes one token at a time: threads only add waits */
    dl_error err;
    wm_make_model(&model, V, 32, 1, PROMPT + GEN, 5.0f, 21);
    if (dl_kv_cache_create(&kv, &model.cfg, PROMPT + GEN, &err)) wm_fixture_die("kv", &err);
    dl_wm wm;
    CHECK(dl_wm_init(&wm, "calibration", 11, 0.25, 2.0, 1, &err) == 0);

    enum { NW = 200, NU = 2000 };
    int above = 0;
    double entropy = 0, zsum = 0;
    for (int i = 0; i < NW; i++) {
        double z = completion_z(&wm, &wm, 1000 + (uint64_t)i, &entropy);
        above += z > 4;
        zsum += z;
    }
    double mean_entropy = entropy / (NW * GEN);
    printf("watermarked: %d of %d with z > 4, mean z %.2f, mean entropy %.2f nats\n", above, NW, zsum / NW, mean_entropy);
    CHECK_MSG(above >= 0.95 * NW, "%d of %d watermarked completions reach z > 4", above, NW);
    CHECK_MSG(mean_entropy > 2.0 && mean_entropy < 4.0, "mean entropy %.2f nats: outside what the statement is about",
              mean_entropy);

    int false_pos = 0;
    double worst = -INFINITY;
    for (int i = 0; i < NU; i++) {
        double z = completion_z(NULL, &wm, 50000 + (uint64_t)i, NULL);
        false_pos += z > 4;
        worst = fmax(worst, z);
    }
    printf("unwatermarked: %d of %d with z > 4 (largest z %.2f)\n", false_pos, NU, worst);
    CHECK_MSG(false_pos <= NU / 1000, "%d of %d unwatermarked completions reach z > 4", false_pos, NU);

    dl_kv_cache_free(&kv);
    dl_model_free(&model);
    TEST_MAIN_END();
}
