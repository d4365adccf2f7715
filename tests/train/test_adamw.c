/* AdamW and gradient clipping: hand-computed single steps, and ten training steps of the tiny
 * model against torch.optim.AdamW + clip_grad_norm_ (tests/fixtures, tools/make_fixtures.py).
 * Loss sequence tolerance: 1e-4 relative (fp32 against fp32; ten steps compound the ~1e-6
 * differences in the gradients; observed up to ~6e-6). */
#include "model/test_forward_fixture.h"
#include "train/adamw.h"

/* One step from zero moments: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps),
 * i.e. lr * sign(g); decay multiplies matrices by (1 - lr * wd) first. */
static void test_single_step(void) {
    dl_tensor_view views[2] = {
        {.name = "w", .ndim = 2, .shape = {1, 2}, .offset = 0, .numel = 2},
        {.name = "norm", .ndim = 1, .shape = {2, 0}, .offset = 2, .numel = 2},
    };
    dl_layout lay = {.views = views, .n_views = 2, .total = 4};
    float p[4] = {1, 1, 1, 1}, g[4] = {0.5f, -2, 0.5f, -2}, m[4] = {0}, v[4] = {0};
    dl_adamw_cfg cfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    dl_adamw_step(&lay, p, g, m, v, &cfg, 0.1f, 1);
    CHECK_CLOSE(p[0], 0.99 - 0.1, 1e-6, 0);
    CHECK_CLOSE(p[1], 0.99 + 0.1, 1e-6, 0);
    CHECK_CLOSE(p[2], 1 - 0.1, 1e-6, 0); // 1-D: no decay
    CHECK_CLOSE(p[3], 1 + 0.1, 1e-6, 0);
    CHECK_CLOSE(m[1], 0.1 * -2, 1e-7, 0);
    CHECK_CLOSE(v[1], 0.05 * 4, 1e-7, 0);
    // second step with g = 0: m = 0.9 m1, v = 0.95 v1; bias corrections 1 - 0.9^2 and 1 - 0.95^2
    float z[4] = {0};
    float before = p[2];
    dl_adamw_step(&lay, p, z, m, v, &cfg, 0.1f, 2);
    double mh = 0.9 * 0.05 / (1 - 0.81), vh = 0.95 * 0.0125 / (1 - 0.9025);
    CHECK_CLOSE(p[2], before - 0.1 * mh / (sqrt(vh) + 1e-8), 1e-6, 0);
}

static void test_clip(void) {
    float g[3] = {3, 4, 0};
    CHECK_CLOSE(dl_clip_grad_norm(g, 3, 10.0f), 5.0, 1e-6, 0);
    CHECK(g[0] == 3 && g[1] == 4); // under the limit: untouched
    CHECK_CLOSE(dl_clip_grad_norm(g, 3, 0.0f), 5.0, 1e-6, 0); // 0: only measure
    CHECK(g[0] == 3);
    CHECK_CLOSE(dl_clip_grad_norm(g, 3, 1.0f), 5.0, 1e-6, 0);
    CHECK_CLOSE(g[0], 0.6, 1e-6, 0);
    CHECK_CLOSE(g[1], 0.8, 1e-6, 0);
    // more elements than chunks, and a length that does not divide evenly
    size_t n = 1001;
    float *big = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) big[i] = 2.0f;
    CHECK_CLOSE(dl_clip_grad_norm(big, n, 0), 2.0 * sqrt(1001.0), 1e-4, 1e-6);
    free(big);
    float nanv[2] = {NAN, 1};
    CHECK(isnan(dl_clip_grad_norm(nanv, 2, 1.0f)));
    CHECK(nanv[1] == 1.0f); // a non-finite norm is reported, not spread
}

static void test_against_torch(const char *name) {
    fixture fx;
    dl_error err;
    if (fixture_open(&fx, name)) { CHECK_MSG(0, "cannot open fixture %s", name); return; }
    float *ref = fixture_f32(&fx, "adamw_losses", 10);
    CHECK(ref != NULL && dl_model_alloc_train(&fx.m, fx.B, fx.T, &err) == 0);
    if (!ref) { fixture_close(&fx); return; }
    size_t n = fx.m.lay.total;
    float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    dl_adamw_cfg cfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    for (int step = 1; step <= 10; step++) {
        dl_model_zero_grad(&fx.m);
        float loss = dl_model_forward(&fx.m, fx.inputs, fx.targets, fx.B, fx.T);
        CHECK_CLOSE(loss, ref[step - 1], 0, 1e-4);
        dl_model_backward(&fx.m, 1.0f);
        dl_clip_grad_norm(fx.m.grads, n, 1.0f);
        dl_adamw_step(&fx.m.lay, fx.m.params, fx.m.grads, m, v, &cfg, 1e-2f, step);
    }
    free(m), free(v), free(ref);
    fixture_close(&fx);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    test_single_step();
    test_clip();
    test_against_torch("tiny_untied");
    test_against_torch("tiny_tied");
    TEST_MAIN_END();
}
