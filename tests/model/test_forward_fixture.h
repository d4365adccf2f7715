/* Loads a PyTorch reference fixture (tools/make_fixtures.py) for the forward and AdamW tests:
 * the model with its parameters, and helpers to read the reference tensors. */
#ifndef DISTIL_TEST_FORWARD_FIXTURE_H
#define DISTIL_TEST_FORWARD_FIXTURE_H
#include "formats/safetensors.h"
#include "model/model.h"
#include "test.h"

typedef struct fixture {
    dl_st_file st;
    dl_model m;
    int B, T;
    int32_t *inputs, *targets;
} fixture;

/* A float tensor of the fixture into a fresh buffer of exactly n floats (NULL if absent). */
static inline float *fixture_f32(const fixture *fx, const char *name, size_t n) {
    const dl_st_tensor *t = dl_st_find(&fx->st, name);
    dl_error err;
    float *out = malloc(n * sizeof(float) + 1);
    if (!t || dl_st_read_f32(t, out, n, &err)) {
        fprintf(stderr, "fixture tensor %s: %s\n", name, t ? err.msg : "missing");
        free(out);
        return NULL;
    }
    return out;
}

static inline int32_t *fixture_i32(const fixture *fx, const char *name, size_t n) {
    const dl_st_tensor *t = dl_st_find(&fx->st, name);
    if (!t || t->dtype != DL_I32 || t->numel != n) return NULL;
    int32_t *out = malloc(n * sizeof(int32_t));
    memcpy(out, t->data, n * sizeof(int32_t));
    return out;
}

/* Opens tests/fixtures/<name>/, builds the model and copies every parameter in by HF name. */
static inline int fixture_open(fixture *fx, const char *name) {
    memset(fx, 0, sizeof *fx);
    char path[1024];
    dl_error err;
    dl_config cfg;
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/config.json", DISTIL_SOURCE_DIR, name);
    if (dl_config_load(path, &cfg, &err) || dl_model_create(&fx->m, &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/fixture.safetensors", DISTIL_SOURCE_DIR, name);
    if (dl_st_open(&fx->st, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    for (int i = 0; i < fx->m.lay.n_views; i++) {
        const dl_tensor_view *v = &fx->m.lay.views[i];
        const dl_st_tensor *t = dl_st_find(&fx->st, v->name);
        if (!t || dl_st_read_f32(t, fx->m.params + v->offset, v->numel, &err)) {
            fprintf(stderr, "%s: %s\n", v->name, t ? err.msg : "missing");
            return -1;
        }
    }
    const dl_st_tensor *in = dl_st_find(&fx->st, "inputs");
    if (!in || in->ndim != 2) return -1;
    fx->B = (int)in->shape[0];
    fx->T = (int)in->shape[1];
    fx->inputs = fixture_i32(fx, "inputs", (size_t)fx->B * fx->T);
    fx->targets = fixture_i32(fx, "targets", (size_t)fx->B * fx->T);
    return fx->inputs && fx->targets ? 0 : -1;
}

static inline void fixture_close(fixture *fx) {
    free(fx->inputs);
    free(fx->targets);
    dl_model_free(&fx->m);
    dl_st_close(&fx->st);
}
#endif
