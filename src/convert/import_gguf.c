/* GGUF ("llama" or "qwen2" architecture) -> model folder. The hyperparameters and every tensor's name,
 * shape and type are checked before the parameters are allocated, so the allocation is
 * bounded by what the file really holds. */
#include "convert/internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- hyperparameters ------------------------------------------------------------------- */
static int get_dim(const dl_gguf_file *f, const char *key, int *out, dl_error *err) {
    int64_t v;
    if (dl_gguf_get_int(f, key, &v, err)) return -1;
    if (v <= 0 || v > (1 << 30)) return dl_fail(err, "key '%s' = %lld is out of range", key, (long long)v);
    *out = (int)v;
    return 0;
}

static int get_opt_dim(const dl_gguf_file *f, const char *key, int def, int *out, dl_error *err) {
    *out = def;
    return dl_gguf_find(f, key) ? get_dim(f, key, out, err) : 0;
}

static int get_opt_float(const dl_gguf_file *f, const char *key, double def, float *out, dl_error *err) {
    double v = def;
    if (dl_gguf_find(f, key) && dl_gguf_get_float(f, key, &v, err)) return -1;
    *out = (float)v;
    return 0;
}

/* A token id key: absent -> -1; present -> must be a vocabulary id. */
static int get_token_id(const dl_gguf_file *f, const char *key, int V, int *out, dl_error *err) {
    int64_t v = -1;
    if (dl_gguf_find(f, key) && dl_gguf_get_int(f, key, &v, err)) return -1;
    if (v < -1 || v >= V) return dl_fail(err, "key '%s' = %lld is outside the vocabulary (%d)", key, (long long)v, V);
    *out = (int)v;
    return 0;
}

/* "ARCH.key": the hyperparameter keys carry the architecture's name. */
static const char *akey(dl_gguf_arch arch, const char *key, char buf[128]) {
    snprintf(buf, 128, "%s.%s", dl_gguf_arch_name(arch), key);
    return buf;
}

static int check_arch(const dl_gguf_file *f, dl_gguf_arch *arch, dl_error *err) {
    const char *s;
    size_t n;
    char k[128];
    if (dl_gguf_get_str(f, "general.architecture", &s, &n, err)) return -1;
    if (n == 5 && memcmp(s, "llama", 5) == 0) *arch = DL_GGUF_LLAMA;
    else if (n == 5 && memcmp(s, "qwen2", 5) == 0) *arch = DL_GGUF_QWEN2;
    else
        return dl_fail(err, "general.architecture is '%.*s'; only 'llama' and 'qwen2' can be imported",
                       (int)(n > 64 ? 64 : n), s);
    int64_t experts = 0;
    if (dl_gguf_find(f, akey(*arch, "expert_count", k)) && dl_gguf_get_int(f, k, &experts, err)) return -1;
    if (experts > 0)
        return dl_fail(err, "mixture-of-experts models (%s %lld) are not supported", k, (long long)experts);
    if (dl_gguf_find(f, akey(*arch, "rope.scaling.type", k))) {
        if (dl_gguf_get_str(f, k, &s, &n, err)) return -1;
        if (!(n == 4 && memcmp(s, "none", 4) == 0))
            return dl_fail(err, "RoPE scaling '%.*s' is not supported", (int)(n > 64 ? 64 : n), s);
    }
    return 0;
}

/* Keys that must agree with the head size when present. */
static int check_head_size(const dl_gguf_file *f, dl_gguf_arch arch, const dl_config *c, dl_error *err) {
    static const char *const keys[] = {"rope.dimension_count", "attention.key_length", "attention.value_length"};
    int HS = c->C / c->NH, v;
    char k[128];
    for (int i = 0; i < 3; i++) {
        if (get_opt_dim(f, akey(arch, keys[i], k), HS, &v, err)) return -1;
        if (v != HS) return dl_fail(err, "key '%s' = %d, but the head size is %d (not supported)", k, v, HS);
    }
    if (get_opt_dim(f, akey(arch, "vocab_size", k), c->V, &v, err)) return -1;
    if (v != c->V) return dl_fail(err, "%s %d disagrees with token_embd.weight (%d rows)", k, v, c->V);
    return 0;
}

static int config_from_gguf(const dl_gguf_file *f, dl_config *c, dl_gguf_arch *arch, dl_error *err) {
    memset(c, 0, sizeof *c);
    if (check_arch(f, arch, err)) return -1;
    const dl_gguf_tensor *emb = dl_gguf_find_tensor(f, "token_embd.weight");
    if (!emb) return dl_fail(err, "tensor 'token_embd.weight' is missing");
    if (emb->ndim != 2 || emb->ne[1] > (1u << 30)) return dl_fail(err, "tensor 'token_embd.weight' must be a matrix");
    c->V = (int)emb->ne[1];
    double eps;
    char k[128];
    dl_gguf_arch a = *arch;
    if (get_dim(f, akey(a, "embedding_length", k), &c->C, err) || get_dim(f, akey(a, "block_count", k), &c->L, err) ||
        get_dim(f, akey(a, "feed_forward_length", k), &c->F, err) ||
        get_dim(f, akey(a, "attention.head_count", k), &c->NH, err) ||
        get_dim(f, akey(a, "context_length", k), &c->max_T, err) ||
        get_opt_dim(f, akey(a, "attention.head_count_kv", k), c->NH, &c->NKV, err) ||
        dl_gguf_get_float(f, akey(a, "attention.layer_norm_rms_epsilon", k), &eps, err) ||
        get_opt_float(f, akey(a, "rope.freq_base", k), 10000.0, &c->rope_theta, err))
        return -1;
    c->rms_eps = (float)eps;
    c->tied = dl_gguf_find_tensor(f, "output.weight") == NULL;
    /* llama.cpp's llama architecture takes optional attention biases, qwen2 q/k/v ones; layer 0
     * tells which */
    c->qkv_bias = dl_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
    c->o_bias = dl_gguf_find_tensor(f, "blk.0.attn_output.bias") != NULL;
    if (get_token_id(f, "tokenizer.ggml.bos_token_id", c->V, &c->bos_id, err) ||
        get_token_id(f, "tokenizer.ggml.eos_token_id", c->V, &c->eos_id, err) || dl_config_validate(c, err))
        return -1;
    if (a == DL_GGUF_QWEN2 && (!c->qkv_bias || c->o_bias))
        return dl_fail(err, "a qwen2 model has q/k/v biases and no attn_output bias; blk.0 does not");
    return check_head_size(f, a, c, err);
}

/* ---- tensors --------------------------------------------------------------------------- */
/* One tensor of the layout: its GGUF name and, once found, the file's tensor. */
typedef struct {
    char name[DL_GGUF_NAME_MAX + 1];
    const dl_gguf_tensor *t;
} gname;

static int cmp_gname(const void *a, const void *b) {
    return strcmp(((const gname *)a)->name, ((const gname *)b)->name);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const dl_gguf_tensor *const *)a)->name, (*(const dl_gguf_tensor *const *)b)->name);
}

static int check_shape(const dl_gguf_tensor *t, const dl_tensor_view *v, dl_error *err) {
    uint64_t want[2] = {(uint64_t)(v->ndim == 2 ? v->shape[1] : v->shape[0]), (uint64_t)v->shape[0]};
    int same = t->ndim == v->ndim && t->ne[0] == want[0] && (v->ndim == 1 || t->ne[1] == want[1]);
    if (!same) {
        char got[128] = "", need[64];
        for (int d = 0, k = 0; d < t->ndim; d++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
        if (v->ndim == 1) snprintf(need, sizeof need, "%llu", (unsigned long long)want[0]);
        else snprintf(need, sizeof need, "%llu, %llu", (unsigned long long)want[0], (unsigned long long)want[1]);
        return dl_fail(err, "tensor '%s' has shape [%s], the hyperparameters need [%s]", t->name, got, need);
    }
    if (t->type != DL_GGML_F32 && t->type != DL_GGML_F16 && t->type != DL_GGML_BF16 && t->type != DL_GGML_Q8_0)
        return dl_fail(err, "tensor '%s' has type %s (import reads F32, F16, BF16 and Q8_0)", t->name,
                       dl_ggml_type_name(t->type));
    return 0;
}

/* Finds each layout tensor in the file's tensors (sorted by name, so that a hostile file with
 * many tensors costs O(n log n)) and checks its shape and type. */
static int find_all(const dl_gguf_file *f, const dl_layout *lay, gname *names, dl_error *err) {
    const dl_gguf_tensor **by_name = malloc(f->n_tensors * sizeof *by_name + 1);
    if (!by_name) return dl_fail(err, "out of memory");
    for (size_t i = 0; i < f->n_tensors; i++) by_name[i] = &f->tensors[i];
    qsort(by_name, f->n_tensors, sizeof *by_name, cmp_tensor);
    int rc = 0;
    for (int i = 0; i < lay->n_views && rc == 0; i++) {
        rc = dl_gguf_name_of(lay->views[i].name, names[i].name, sizeof names[i].name, err);
        dl_gguf_tensor key = {.name = names[i].name};
        const dl_gguf_tensor *kp = &key, **hit = NULL;
        if (rc == 0) hit = bsearch(&kp, by_name, f->n_tensors, sizeof *by_name, cmp_tensor);
        if (rc == 0 && !hit) rc = dl_fail(err, "tensor '%s' is missing", names[i].name);
        if (rc == 0) {
            names[i].t = *hit;
            rc = check_shape(names[i].t, &lay->views[i], err);
        }
    }
    free(by_name);
    return rc;
}

/* Every tensor of the layout must be in the file, and nothing else may be. */
static int check_tensors(const dl_gguf_file *f, const dl_layout *lay, gname *names, dl_error *err) {
    if (find_all(f, lay, names, err)) return -1;
    if (f->n_tensors == (size_t)lay->n_views) return 0; /* names are unique, so nothing is extra */
    gname *sorted = malloc((size_t)lay->n_views * sizeof *sorted + 1);
    if (!sorted) return dl_fail(err, "out of memory");
    memcpy(sorted, names, (size_t)lay->n_views * sizeof *sorted);
    qsort(sorted, (size_t)lay->n_views, sizeof *sorted, cmp_gname);
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && rc == 0; i++) {
        gname key;
        snprintf(key.name, sizeof key.name, "%s", f->tensors[i].name);
        if (!bsearch(&key, sorted, (size_t)lay->n_views, sizeof *sorted, cmp_gname))
            rc = dl_fail(err, "unexpected tensor '%s' (not part of a model this importer knows)", key.name);
    }
    free(sorted);
    return rc;
}

static int load_params(dl_model *m, const gname *names, dl_gguf_arch arch, dl_error *err) {
    int HS = m->cfg.C / m->cfg.NH;
    for (int i = 0; i < m->lay.n_views; i++) {
        const dl_tensor_view *v = &m->lay.views[i];
        const dl_gguf_tensor *t = names[i].t;
        float *dst = m->params + v->offset;
        int heads = arch == DL_GGUF_LLAMA ? conv_qk_heads(m, i) : 0; /* qwen2: not permuted */
        if (!heads) {
            if (dl_gguf_tensor_to_f32(t, dst, v->numel, err)) return -1;
            continue;
        }
        float *tmp = malloc(v->numel * sizeof(float));
        if (!tmp) return dl_fail(err, "out of memory");
        int rc = dl_gguf_tensor_to_f32(t, tmp, v->numel, err);
        if (rc == 0) dl_qk_from_gguf(tmp, dst, heads, HS, v->ndim == 2 ? (size_t)v->shape[1] : 1);
        free(tmp);
        if (rc) return -1;
    }
    return 0;
}

/* ---- the folder ------------------------------------------------------------------------ */
/* Writes tokenizer.json and loads it back, so that a vocabulary our tokenizer cannot use is
 * reported here rather than at the first generate. */
static int save_tokenizer(json_t *tj, const char *out_dir, dl_error *err) {
    char path[4096];
    if (dl_path_join(path, sizeof path, out_dir, "tokenizer.json", err) || dl_json_save(tj, path, err)) return -1;
    dl_tokenizer *tok = dl_tok_load(path, err);
    if (!tok) {
        unlink(path);
        return dl_fail_ctx(err, "the GGUF vocabulary does not make a usable tokenizer");
    }
    dl_tok_free(tok);
    return 0;
}

static int write_model(const dl_config *cfg, const gname *names, dl_gguf_arch arch, const char *out_dir,
                       dl_error *err) {
    dl_model m;
    if (dl_model_create(&m, cfg, err)) return -1;
    int rc = load_params(&m, names, arch, err);
    if (rc == 0) rc = dl_model_save(&m, out_dir, err);
    dl_model_free(&m);
    return rc;
}

static int import_file(const dl_gguf_file *f, const char *out_dir, dl_error *err) {
    dl_config cfg;
    dl_layout lay;
    dl_gguf_arch arch = DL_GGUF_LLAMA;
    if (config_from_gguf(f, &cfg, &arch, err) || dl_layout_build(&lay, &cfg, err)) return -1;
    gname *names = calloc((size_t)lay.n_views + 1, sizeof *names);
    int rc = names ? check_tensors(f, &lay, names, err) : dl_fail(err, "out of memory");
    dl_layout_free(&lay);
    json_t *tj = NULL;
    if (rc == 0) rc = conv_vocab_to_json(f, cfg.V, &tj, err);
    if (rc == 0) rc = dl_mkdir_p(out_dir, err);
    if (rc == 0 && tj) rc = save_tokenizer(tj, out_dir, err);
    if (rc == 0 && !tj) dl_log("%s: the file has no tokenizer, none written", out_dir);
    if (rc == 0) rc = write_model(&cfg, names, arch, out_dir, err);
    json_decref(tj);
    free(names);
    return rc;
}

int dl_import_gguf(const char *gguf_path, const char *out_dir, dl_error *err) {
    dl_gguf_file f;
    if (dl_gguf_open(&f, gguf_path, err)) return -1;
    int rc = import_file(&f, out_dir, err);
    dl_gguf_close(&f);
    if (rc) return dl_fail_ctx(err, "%s", gguf_path);
    return 0;
}
