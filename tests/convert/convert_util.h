/* Helpers for the GGUF conversion tests: tiny model folders, greedy decoding, and a GGUF
 * "copy with one edit" to make broken files from a good one. */
#ifndef CONVERT_UTIL_H
#define CONVERT_UTIL_H
#include "convert/convert.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

static const char CORPUS[] =
    "In the beginning the tokenizer met the model, and the model said: let there be merges. "
    "Numbers like 12345 and 2024 appear; so do words such as don't, we'll, they're. "
    "The quick brown fox jumps over the lazy dog. The lazy dog sleeps. The fox runs again!\n"
    "Caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e text, tabs\tand  double  spaces.\n";

static inline dl_tokenizer *train_tokenizer(int vocab) {
    static const char *const specials[] = {DL_EOT, "<|user|>", NULL};
    dl_error err;
    dl_tokenizer *t = dl_tok_train(CORPUS, sizeof CORPUS - 1, vocab, specials, &err);
    if (!t) { fprintf(stderr, "train_tokenizer: %s\n", err.msg); exit(2); }
    return t;
}

/* Random weights (norms too, so that their round trip means something) with a larger scale
 * than training's init, so that greedy decoding has clear winners. */
static inline void random_model(dl_model *m, const dl_config *cfg, uint64_t seed) {
    dl_error err;
    if (dl_model_create(m, cfg, &err)) { fprintf(stderr, "random_model: %s\n", err.msg); exit(2); }
    dl_rng r;
    dl_rng_seed(&r, seed);
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] = 0.3f * dl_rng_normal(&r);
    for (int v = 0; v < m->lay.n_views; v++)
        if (m->lay.views[v].ndim == 1)
            for (size_t j = 0; j < m->lay.views[v].numel; j++) m->params[m->lay.views[v].offset + j] += 1.0f;
}

static inline void save_folder(const dl_model *m, const dl_tokenizer *tok, const char *dir) {
    dl_error err;
    char p[2048];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (dl_model_save(m, dir, &err) || dl_tok_save(tok, p, &err)) { fprintf(stderr, "save_folder: %s\n", err.msg); exit(2); }
}

static inline dl_config small_config(int V, int C, int F, int tied) {
    dl_config c = {.V = V, .C = C, .F = F, .L = 2, .NH = 4, .NKV = 2, .max_T = 32, .rms_eps = 1e-5f,
                   .rope_theta = 500.0f, .tied = tied, .bos_id = -1, .eos_id = -1};
    return c;
}

/* n greedy tokens after prompt. */
static inline void greedy(const dl_model *m, const int32_t *prompt, int np, int n, int32_t *out) {
    dl_error err;
    dl_kv_cache kv;
    float *logits = malloc((size_t)m->cfg.V * sizeof(float));
    if (dl_kv_cache_create(&kv, &m->cfg, 0, &err) || dl_model_decode(m, &kv, prompt, np, logits, 0, &err)) {
        fprintf(stderr, "greedy: %s\n", err.msg);
        exit(2);
    }
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int v = 1; v < m->cfg.V; v++)
            if (logits[v] > logits[best]) best = v;
        out[i] = best;
        if (i + 1 < n && dl_model_decode(m, &kv, &out[i], 1, logits, 0, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    }
    dl_kv_cache_free(&kv);
    free(logits);
}

/* ---- copy a GGUF with one edit ------------------------------------------------------------ */
typedef struct {
    const char *drop_key;       /* leave this pair out */
    const char *str_key;        /* replace (or add) this string pair ... */
    const char *str_val;        /* ... with this value */
    const char *drop_tensor;    /* leave this tensor out */
    const char *swap_tensor;    /* swap ne[0] and ne[1] of this tensor */
    const char *q4_tensor;      /* rewrite this tensor as Q4_0 (zeros) */
    const char *extra_tensor;   /* add a small F32 tensor of this name */
    int bad_token_type;         /* set token 0's type to 6 (BYTE) */
} gguf_edit;

static inline int copy_kv(dl_gguf_writer *w, const dl_gguf_file *f, const dl_gguf_kv *kv, const gguf_edit *e, dl_error *err) {
    int64_t i;
    double d;
    int b;
    const char *s;
    size_t n;
    switch (kv->type) {
    case DL_GGUF_U32: return dl_gguf_get_int(f, kv->key, &i, err) || dl_gguf_add_u32(w, kv->key, (uint32_t)i, err);
    case DL_GGUF_I32: return dl_gguf_get_int(f, kv->key, &i, err) || dl_gguf_add_i32(w, kv->key, (int32_t)i, err);
    case DL_GGUF_F32: return dl_gguf_get_float(f, kv->key, &d, err) || dl_gguf_add_f32(w, kv->key, (float)d, err);
    case DL_GGUF_BOOL: return dl_gguf_get_bool(f, kv->key, &b, err) || dl_gguf_add_bool(w, kv->key, b, err);
    case DL_GGUF_STRING: {
        if (dl_gguf_get_str(f, kv->key, &s, &n, err)) return -1;
        char *c = strndup(s, n);
        int rc = dl_gguf_add_str(w, kv->key, c, err);
        free(c);
        return rc;
    }
    case DL_GGUF_ARRAY:
        if (dl_gguf_begin_arr(w, kv->key, kv->elem_type, kv->n, err)) return -1;
        for (uint64_t k = 0; k < kv->n; k++) {
            if (kv->elem_type == DL_GGUF_STRING) {
                dl_gguf_arr_str(kv, k, &s, &n);
                if (dl_gguf_push_str(w, s, n, err)) return -1;
            } else {
                dl_gguf_arr_int(kv, k, &i);
                if (e->bad_token_type && k == 0 && strcmp(kv->key, "tokenizer.ggml.token_type") == 0) i = 6;
                if (dl_gguf_push_i32(w, (int32_t)i, err)) return -1;
            }
        }
        return 0;
    default: return dl_fail(err, "copy_kv: type %u", kv->type);
    }
}

static inline int copy_tensor(dl_gguf_writer *w, const dl_gguf_tensor *t, const gguf_edit *e, dl_error *err) {
    uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
    if (e->drop_tensor && strcmp(t->name, e->drop_tensor) == 0) return 0;
    if (e->swap_tensor && strcmp(t->name, e->swap_tensor) == 0) ne[0] = t->ne[1], ne[1] = t->ne[0];
    if (e->q4_tensor && strcmp(t->name, e->q4_tensor) == 0) {
        size_t nb = (size_t)t->numel / 32 * 18;
        return dl_gguf_add_tensor(w, t->name, 2, t->ndim, ne, calloc(nb, 1), nb, 1, err);
    }
    return dl_gguf_add_tensor(w, t->name, t->type, t->ndim, ne, t->data, t->nbytes, 0, err);
}

static inline void gguf_copy(const char *src, const char *dst, const gguf_edit *e) {
    dl_error err;
    dl_gguf_file f;
    if (dl_gguf_open(&f, src, &err)) { fprintf(stderr, "gguf_copy: %s\n", err.msg); exit(2); }
    dl_gguf_writer *w = dl_gguf_writer_new(&err);
    int rc = 0, replaced = 0;
    for (size_t i = 0; i < f.n_kv && rc == 0; i++) {
        const dl_gguf_kv *kv = &f.kv[i];
        if (e->drop_key && strcmp(kv->key, e->drop_key) == 0) continue;
        if (e->str_key && strcmp(kv->key, e->str_key) == 0) {
            rc = dl_gguf_add_str(w, kv->key, e->str_val, &err);
            replaced = 1;
            continue;
        }
        rc = copy_kv(w, &f, kv, e, &err);
    }
    if (rc == 0 && e->str_key && !replaced) rc = dl_gguf_add_str(w, e->str_key, e->str_val, &err);
    for (size_t i = 0; i < f.n_tensors && rc == 0; i++) rc = copy_tensor(w, &f.tensors[i], e, &err);
    static float extra[4];
    uint64_t ne[1] = {4};
    if (rc == 0 && e->extra_tensor) rc = dl_gguf_add_tensor(w, e->extra_tensor, DL_GGML_F32, 1, ne, extra, 16, 0, &err);
    if (rc == 0) rc = dl_gguf_write(w, dst, &err);
    dl_gguf_writer_free(w);
    dl_gguf_close(&f);
    if (rc) { fprintf(stderr, "gguf_copy: %s\n", err.msg); exit(2); }
}
#endif
