/* Model folders: config.json + model.safetensors (or its shards) with Hugging Face tensor names. */
#include "formats/safetensors.h"
#include "model.h"
#include <stdlib.h>
#include <string.h>

static void shape_str(char *out, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(out, n, "[");
    for (int d = 0; d < ndim && k < n; d++) k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(out + k, n - k, "]");
}

/* Every view of the layout must be in the files with the same shape. */
static int check_view(const dl_st_set *f, const dl_tensor_view *v, dl_error *err) {
    const dl_st_tensor *t = dl_st_set_find(f, v->name);
    if (!t) return dl_fail(err, "tensor '%s' is missing", v->name);
    int64_t want[2] = {v->shape[0], v->shape[1]};
    int same = t->ndim == v->ndim;
    for (int d = 0; same && d < v->ndim; d++) same = t->shape[d] == want[d];
    if (!same) {
        char got[128], exp[64];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, v->ndim, want);
        return dl_fail(err, "tensor '%s' has shape %s, the config needs %s", v->name, got, exp);
    }
    return 0;
}

/* A tensor the layout does not know means the config and the weights disagree (for example
 * more layers in the files than in config.json, or biases the config does not declare); only
 * known-harmless extras are skipped. */
static int check_extras(const dl_layout *lay, int tied, const dl_st_set *f, dl_error *err) {
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->tensors[i]->name;
        if (dl_layout_find(lay, name) >= 0) continue;
        if (strstr(name, "rotary_emb.inv_freq")) continue; /* recomputed from rope_theta */
        if (tied && strcmp(name, "lm_head.weight") == 0) continue; /* a tied copy */
        return dl_fail(err, "unexpected tensor '%s' (config.json and the weights disagree?)", name);
    }
    return 0;
}

/* Names and shapes are checked against the layout before the parameters are allocated, so a
 * config with huge dimensions next to a small file fails without trying to allocate them. */
static int check_files(const dl_config *cfg, const dl_st_set *f, dl_error *err) {
    dl_layout lay;
    if (dl_layout_build(&lay, cfg, err)) return -1;
    int rc = 0;
    for (int i = 0; i < lay.n_views && rc == 0; i++) rc = check_view(f, &lay.views[i], err);
    if (rc == 0) rc = check_extras(&lay, cfg->tied, f, err);
    dl_layout_free(&lay);
    return rc;
}

int dl_model_load(dl_model *m, const char *dir, dl_error *err) {
    memset(m, 0, sizeof *m);
    if (!dl_is_dir(dir)) return dl_fail(err, "%s: not a model folder", dir);
    dl_config cfg;
    dl_st_set f;
    if (dl_config_load_any(dir, &cfg, err) || dl_st_set_open(&f, dir, err)) return -1;
    int rc = check_files(&cfg, &f, err);
    if (rc == 0) rc = dl_model_create(m, &cfg, err);
    for (int i = 0; rc == 0 && i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        rc = dl_st_read_f32(dl_st_set_find(&f, v->name), m->params + v->offset, v->numel, err);
        if (rc) dl_model_free(m);
    }
    if (rc) dl_fail_ctx(err, "%s", f.source);
    dl_st_set_close(&f);
    return rc;
}

int dl_model_has_weights(const char *dir) { return dl_st_set_exists(dir); }

/* The parameters as dtype (F16 or BF16, rounded to nearest even) in a new buffer. */
static uint16_t *to_half(const dl_model *m, dl_dtype dtype) {
    uint16_t *h = malloc(m->lay.total * sizeof *h + 1);
    if (!h) return NULL;
    uint16_t (*conv)(float) = dtype == DL_F16 ? dl_f32_to_f16 : dl_f32_to_bf16;
    for (size_t i = 0; i < m->lay.total; i++) h[i] = conv(m->params[i]);
    return h;
}

int dl_model_save_as(const dl_model *m, const char *dir, dl_dtype dtype, dl_error *err) {
    if (dtype != DL_F32 && dtype != DL_F16 && dtype != DL_BF16)
        return dl_fail(err, "model weights are saved as F32, F16 or BF16, not %s", dl_dtype_name(dtype));
    char path[4096];
    if (dl_mkdir_p(dir, err)) return -1;
    if (dl_path_join(path, sizeof path, dir, "config.json", err) || dl_config_save(&m->cfg, path, err)) return -1;
    const dl_layout *lay = &m->lay;
    dl_st_tensor *ts = calloc((size_t)lay->n_views, sizeof *ts);
    uint16_t *half = dtype == DL_F32 ? NULL : to_half(m, dtype);
    if (!ts || (dtype != DL_F32 && !half)) {
        free(ts);
        free(half);
        return dl_fail(err, "out of memory");
    }
    size_t size = dl_dtype_size(dtype);
    /* the layout holds no lm_head view of its own when tied, so a tied model writes none */
    for (int i = 0; i < lay->n_views; i++) {
        const dl_tensor_view *v = &lay->views[i];
        const void *data = half ? (const void *)(half + v->offset) : (const void *)(m->params + v->offset);
        ts[i] = (dl_st_tensor){.name = (char *)v->name, .dtype = dtype, .ndim = v->ndim,
                               .shape = {v->shape[0], v->shape[1]}, .numel = v->numel,
                               .data = data, .nbytes = v->numel * size};
    }
    /* transformers checks this key to know the file came from PyTorch */
    const char *md[] = {"format", "pt", NULL};
    int rc = dl_path_join(path, sizeof path, dir, "model.safetensors", err);
    if (rc == 0) rc = dl_st_write(path, ts, lay->n_views, md, err);
    free(ts);
    free(half);
    return rc;
}

int dl_model_save(const dl_model *m, const char *dir, dl_error *err) { return dl_model_save_as(m, dir, DL_F32, err); }
