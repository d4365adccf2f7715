/* The distillation losses against PyTorch (tools/make_kd_fixtures.py: float64 torch from the
 * formulas in losses.h, gradients by autograd), every divergence, both teacher forms.
 *
 * Tolerances (the C code runs in float): loss |c - ref| <= 1e-5 |ref| + 1e-7; gradient entries
 * |c - ref| <= 1e-5 |ref| + 3e-6 max|ref| over the case, the second term for entries near 0.
 * Float rounding of log-probabilities grows with |log p| (a floored rest bin at tau 0.5 has
 * |log p| ~ 40); measured here: loss within ~1e-6 relative, gradients within ~7e-7 of max|ref|. */
#include "distill/losses.h"
#include "formats/safetensors.h"
#include "test.h"
#include <jansson.h>

#define PATH DISTIL_SOURCE_DIR "/tests/fixtures/kd_fixtures.safetensors"

static dl_st_file st;

/* A tensor of the expected element count, as float32 (or int32 copied out for I32). */
static void *get(const char *name, dl_dtype dtype, size_t n) {
    const dl_st_tensor *t = dl_st_find(&st, name);
    CHECK_MSG(t && t->dtype == dtype && t->numel == n, "tensor %s missing or of the wrong type/size", name);
    if (!t || t->dtype != dtype || t->numel != n) return NULL;
    void *out = malloc(n * 4);
    dl_error err;
    if (dtype == DL_I32) memcpy(out, t->data, n * 4);
    else if (dl_st_read_f32(t, out, n, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        free(out);
        return NULL;
    }
    return out;
}

static long meta_int(const char *key) {
    json_t *v = st.metadata ? json_object_get(st.metadata, key) : NULL;
    return v && json_is_string(v) ? strtol(json_string_value(v), NULL, 10) : -1;
}

static double worst_rel, worst_loss; /* largest gradient error / max|ref|, loss relative error */

static void compare(const char *what, float loss, const float *grad, const char *prefix, int N, int V) {
    char name[96];
    snprintf(name, sizeof name, "%s.loss", prefix);
    float *rl = get(name, DL_F32, 1);
    snprintf(name, sizeof name, "%s.grad", prefix);
    float *rg = get(name, DL_F32, (size_t)N * V);
    if (!rl || !rg) goto done;
    CHECK_MSG(fabsf(loss - rl[0]) <= 1e-5f * fabsf(rl[0]) + 1e-7f, "%s: loss %.9g, torch %.9g", what, (double)loss,
              (double)rl[0]);
    worst_loss = fmax(worst_loss, fabsf(loss - rl[0]) / fabsf(rl[0]));
    float gmax = 0;
    for (int i = 0; i < N * V; i++) gmax = fmaxf(gmax, fabsf(rg[i]));
    int bad = 0;
    for (int i = 0; i < N * V; i++) {
        float e = fabsf(grad[i] - rg[i]);
        worst_rel = fmax(worst_rel, e / gmax);
        if (e > 1e-5f * fabsf(rg[i]) + 3e-6f * gmax) {
            if (bad < 3) fprintf(stderr, "%s: grad[%d] = %.9g, torch %.9g\n", what, i, (double)grad[i], (double)rg[i]);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d gradient entries differ", what, bad);
done:
    free(rl);
    free(rg);
}

int main(void) {
    dl_error err;
    if (dl_st_open(&st, PATH, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        CHECK(0);
        TEST_MAIN_END();
    }
    const dl_st_tensor *zs_t = dl_st_find(&st, "z_s"), *zt_t = dl_st_find(&st, "z_t"), *ids_t = dl_st_find(&st, "ids");
    CHECK(zs_t && zt_t && ids_t && zs_t->ndim == 2 && zt_t->ndim == 2 && ids_t->ndim == 2);
    if (!zs_t || !zt_t || !ids_t || zs_t->ndim != 2 || zt_t->ndim != 2 || ids_t->ndim != 2) TEST_MAIN_END();
    int N = (int)zs_t->shape[0], V = (int)zs_t->shape[1], VT = (int)zt_t->shape[1], K = (int)ids_t->shape[1];
    CHECK(VT > V && zt_t->shape[0] == N && ids_t->shape[0] == N);
    float *zs = get("z_s", DL_F32, (size_t)N * V), *zt = get("z_t", DL_F32, (size_t)N * VT);
    float *logp = get("logp", DL_F32, (size_t)N * K), *rest = get("rest", DL_F32, (size_t)N);
    int32_t *ids = get("ids", DL_I32, (size_t)N * K), *tg = get("targets", DL_I32, (size_t)N);
    float *dz = malloc(sizeof(float) * N * V);
    long cases = meta_int("cases");
    CHECK(cases >= 12);
    for (long i = 0; zs && zt && logp && rest && ids && tg && i < cases; i++) {
        char key[32], kind[16];
        snprintf(key, sizeof key, "case%ld", i);
        json_t *v = json_object_get(st.metadata, key);
        dl_kd_cfg cfg;
        if (!json_is_string(v) || sscanf(json_string_value(v), "%15s %f %f %f %f", kind, &cfg.beta, &cfg.alpha,
                                         &cfg.tau, &cfg.ce_weight) != 5 || dl_kd_parse(kind, &cfg.kind, &err)) {
            CHECK_MSG(0, "%s: unreadable case", key);
            continue;
        }
        char what[128], prefix[48];
        snprintf(what, sizeof what, "%s (%s)", key, json_string_value(v));
        for (int tk = 0; tk < 2; tk++) {
            dl_kd_stats s;
            int rc = tk ? dl_kd_topk(&cfg, zs, ids, logp, rest, K, tg, dz, N, V, 1.0f, &s, &err)
                        : dl_kd_full(&cfg, zs, zt, (size_t)VT, tg, dz, N, V, 1.0f, &s, &err);
            CHECK_MSG(rc == 0, "%s: %s", what, err.msg);
            snprintf(prefix, sizeof prefix, "%s.%s", key, tk ? "topk" : "full");
            if (rc == 0) compare(prefix, s.loss, dz, prefix, N, V);
        }
    }
    printf("largest loss relative error %.3g, gradient error / max|grad| %.3g\n", worst_loss, worst_rel);
    free(zs);
    free(zt);
    free(logp);
    free(rest);
    free(ids);
    free(tg);
    free(dz);
    dl_st_close(&st);
    TEST_MAIN_END();
}
