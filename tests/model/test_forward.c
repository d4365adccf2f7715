/* The training forward and backward against PyTorch (tests/fixtures, tools/make_fixtures.py).
 *
 * Tolerances, fp32 against fp32 (different summation orders, expf/logf vs torch's):
 *   logits:  |c - ref| <= 2e-5 + 1e-5 |ref|          (observed ~1e-6)
 *   loss:    relative 1e-5
 *   grads:   per tensor, |c - ref| <= 1e-4 * max|ref| + 1e-4 |ref|   (observed ~1e-6 of max) */
#include "model/test_forward_fixture.h"
#include "ops/ops.h"

static size_t n_logits(const fixture *fx) { return (size_t)fx->B * fx->T * fx->m.cfg.V; }

static void check_logits(const fixture *fx, const char *name) {
    float *ref = fixture_f32(fx, "logits", n_logits(fx));
    CHECK(ref != NULL);
    if (!ref) return;
    int bad = 0;
    for (size_t i = 0; i < n_logits(fx); i++)
        if (fabsf(fx->m.logits[i] - ref[i]) > 2e-5f + 1e-5f * fabsf(ref[i])) {
            if (bad++ < 3) fprintf(stderr, "%s logits[%zu]: %.8g vs torch %.8g\n", name, i, fx->m.logits[i], ref[i]);
        }
    CHECK_MSG(bad == 0, "%s: %d logits differ from torch", name, bad);
    free(ref);
}

/* Compares m.grads with grad.<name> for every view; returns the number of mismatched views. */
static int check_grads(const fixture *fx, const char *label) {
    int bad_views = 0;
    for (int i = 0; i < fx->m.lay.n_views; i++) {
        const dl_tensor_view *v = &fx->m.lay.views[i];
        char gname[DL_NAME_MAX + 8];
        snprintf(gname, sizeof gname, "grad.%s", v->name);
        float *ref = fixture_f32(fx, gname, v->numel);
        if (!ref) { bad_views++; continue; }
        float big = 0;
        for (size_t j = 0; j < v->numel; j++) big = fmaxf(big, fabsf(ref[j]));
        int bad = 0;
        for (size_t j = 0; j < v->numel; j++) {
            float g = fx->m.grads[v->offset + j];
            if (fabsf(g - ref[j]) > 1e-4f * big + 1e-4f * fabsf(ref[j])) {
                if (bad++ < 3) fprintf(stderr, "%s %s[%zu]: %.8g vs torch %.8g\n", label, gname, j, g, ref[j]);
            }
        }
        bad_views += bad > 0;
        free(ref);
    }
    CHECK_MSG(bad_views == 0, "%s: %d parameter gradients differ from torch", label, bad_views);
    return bad_views;
}

static void test_against_torch(const char *name) {
    fixture fx;
    dl_error err;
    if (fixture_open(&fx, name)) { CHECK_MSG(0, "cannot open fixture %s", name); return; }
    CHECK(dl_model_alloc_train(&fx.m, fx.B, fx.T, &err) == 0);
    float loss = dl_model_forward(&fx.m, fx.inputs, fx.targets, fx.B, fx.T);
    float *ref_loss = fixture_f32(&fx, "loss", 1);
    CHECK(ref_loss != NULL);
    if (ref_loss) CHECK_CLOSE(loss, ref_loss[0], 0, 1e-5);
    CHECK(loss == fx.m.loss);
    check_logits(&fx, name);
    dl_model_zero_grad(&fx.m);
    dl_model_backward(&fx.m, 1.0f);
    check_grads(&fx, name);
    free(ref_loss);
    fixture_close(&fx);
}

/* Two half-weighted backwards equal one full backward (grads accumulate, grad_scale scales);
 * a batch smaller than the allocation gives the same numbers; runs repeat bit for bit. */
static void test_accumulate_and_shapes(const char *name) {
    fixture fx;
    dl_error err;
    if (fixture_open(&fx, name)) { CHECK_MSG(0, "cannot open fixture %s", name); return; }
    CHECK(dl_model_alloc_train(&fx.m, fx.B + 1, fx.T + 3, &err) == 0);
    dl_model_zero_grad(&fx.m);
    for (int k = 0; k < 2; k++) {
        dl_model_forward(&fx.m, fx.inputs, fx.targets, fx.B, fx.T);
        dl_model_backward(&fx.m, 0.5f);
    }
    // the backward turned logits into dlogits in place: forward again to look at them
    dl_model_forward(&fx.m, fx.inputs, fx.targets, fx.B, fx.T);
    check_logits(&fx, "bigger allocation");
    check_grads(&fx, "two half backwards");
    // determinism: the same forward + backward twice gives identical bits
    size_t n = fx.m.lay.total;
    float *g1 = malloc(n * sizeof(float));
    float l1 = 0, l2 = 0;
    for (int k = 0; k < 2; k++) {
        dl_model_zero_grad(&fx.m);
        float l = dl_model_forward(&fx.m, fx.inputs, fx.targets, fx.B, fx.T);
        dl_model_backward(&fx.m, 1.0f);
        if (k == 0) memcpy(g1, fx.m.grads, n * sizeof(float)), l1 = l;
        else l2 = l;
    }
    CHECK(l1 == l2 && memcmp(g1, fx.m.grads, n * sizeof(float)) == 0);
    free(g1);
    fixture_close(&fx);
}

/* backward_from_logits with d(loss)/d(logits) computed here from torch's logits (softmax minus
 * one-hot over the counted positions) must give torch's gradients; also in place on m.logits. */
static void test_backward_from_logits(const char *name) {
    fixture fx;
    dl_error err;
    if (fixture_open(&fx, name)) { CHECK_MSG(0, "cannot open fixture %s", name); return; }
    CHECK(dl_model_alloc_train(&fx.m, fx.B, fx.T, &err) == 0);
    int V = fx.m.cfg.V, N = fx.B * fx.T, count = 0;
    for (int n = 0; n < N; n++) count += fx.targets[n] >= 0;
    float *d = fixture_f32(&fx, "logits", n_logits(&fx));
    if (!d) { CHECK(0); fixture_close(&fx); return; }
    for (int n = 0; n < N; n++) {
        float *row = d + (size_t)n * V;
        double mx = row[0], sum = 0;
        for (int i = 1; i < V; i++) mx = fmax(mx, row[i]);
        for (int i = 0; i < V; i++) sum += exp(row[i] - mx);
        for (int i = 0; i < V; i++) {
            double p = exp(row[i] - mx) / sum;
            row[i] = fx.targets[n] < 0 ? 0.0f : (float)((p - (i == fx.targets[n])) / count);
        }
    }
    dl_model_forward(&fx.m, fx.inputs, NULL, fx.B, fx.T);
    dl_model_zero_grad(&fx.m);
    dl_model_backward_from_logits(&fx.m, d);
    check_grads(&fx, "from logits");
    dl_model_forward(&fx.m, fx.inputs, NULL, fx.B, fx.T);
    memcpy(fx.m.logits, d, n_logits(&fx) * sizeof(float));
    dl_model_zero_grad(&fx.m);
    dl_model_backward_from_logits(&fx.m, fx.m.logits); // aliasing m->logits is allowed
    check_grads(&fx, "from logits in place");
    free(d);
    fixture_close(&fx);
}

static void test_bad_use(void) {
    fixture fx;
    dl_error err;
    if (fixture_open(&fx, "tiny_tied")) { CHECK_MSG(0, "cannot open fixture"); return; }
    CHECK(dl_model_alloc_train(&fx.m, 2, fx.m.cfg.max_T + 1, &err) == -1);
    CHECK(strstr(err.msg, "max_position_embeddings") != NULL);
    CHECK(dl_model_alloc_train(&fx.m, 0, 4, &err) == -1);
    CHECK(dl_model_alloc_train(&fx.m, fx.B, fx.T, &err) == 0);
    dl_model_zero_grad(&fx.m);
    dl_model_backward(&fx.m, 1.0f); // no forward yet: a logged no-op
    int clean = 1;
    for (size_t i = 0; i < fx.m.lay.total; i++) clean &= fx.m.grads[i] == 0.0f;
    CHECK(clean);
    int32_t bad[16];
    memcpy(bad, fx.inputs, sizeof bad);
    bad[5] = fx.m.cfg.V; // out of the vocabulary
    CHECK(isnan(dl_model_forward(&fx.m, bad, fx.targets, fx.B, fx.T)));
    dl_model_backward(&fx.m, 1.0f); // after a failed forward: still a no-op
    clean = 1;
    for (size_t i = 0; i < fx.m.lay.total; i++) clean &= fx.m.grads[i] == 0.0f;
    CHECK(clean);
    CHECK(isnan(dl_model_forward(&fx.m, fx.inputs, fx.targets, fx.B + 1, fx.T))); // larger than allocated
    // all targets ignored: loss 0, zero gradient
    int32_t none[16];
    for (int i = 0; i < 16; i++) none[i] = -1;
    CHECK(dl_model_forward(&fx.m, fx.inputs, none, fx.B, fx.T) == 0.0f);
    dl_model_backward(&fx.m, 1.0f);
    clean = 1;
    for (size_t i = 0; i < fx.m.lay.total; i++) clean &= fx.m.grads[i] == 0.0f;
    CHECK(clean);
    fixture_close(&fx);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    test_against_torch("tiny_untied");
    test_against_torch("tiny_tied");
    test_accumulate_and_shapes("tiny_untied");
    test_backward_from_logits("tiny_tied");
    test_backward_from_logits("tiny_untied");
    test_bad_use();
    TEST_MAIN_END();
}
