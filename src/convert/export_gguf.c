/* Model folder -> GGUF ("llama" or "qwen2" architecture). */
#include "convert/internal.h"
#include "formats/safetensors.h"
#include <stdlib.h>
#include <string.h>

/* llama.cpp's general.file_type values */
enum { FTYPE_ALL_F32 = 0, FTYPE_MOSTLY_F16 = 1, FTYPE_MOSTLY_Q8_0 = 7 };

int dl_export_dtype_parse(const char *s, dl_export_dtype *out, dl_error *err) {
    if (strcmp(s, "f32") == 0) *out = DL_EXPORT_F32;
    else if (strcmp(s, "f16") == 0) *out = DL_EXPORT_F16;
    else if (strcmp(s, "q8_0") == 0) *out = DL_EXPORT_Q8_0;
    else return dl_fail(err, "dtype '%s' is not one of f32, f16, q8_0", s);
    return 0;
}

const char *dl_export_dtype_name(dl_export_dtype t) {
    return t == DL_EXPORT_F32 ? "f32" : t == DL_EXPORT_F16 ? "f16" : "q8_0";
}

int dl_gguf_arch_parse(const char *s, dl_gguf_arch *out, dl_error *err) {
    if (strcmp(s, "llama") == 0) *out = DL_GGUF_LLAMA;
    else if (strcmp(s, "qwen2") == 0) *out = DL_GGUF_QWEN2;
    else return dl_fail(err, "architecture '%s' is not one of llama, qwen2", s);
    return 0;
}

const char *dl_gguf_arch_name(dl_gguf_arch a) { return a == DL_GGUF_QWEN2 ? "qwen2" : "llama"; }

/* Adds "ARCH.key" = v as a u32. */
static int add_arch_u32(dl_gguf_writer *w, dl_gguf_arch arch, const char *key, uint32_t v, dl_error *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", dl_gguf_arch_name(arch), key);
    return dl_gguf_add_u32(w, k, v, err);
}

static int add_arch_f32(dl_gguf_writer *w, dl_gguf_arch arch, const char *key, float v, dl_error *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", dl_gguf_arch_name(arch), key);
    return dl_gguf_add_f32(w, k, v, err);
}

static int write_hparams(dl_gguf_writer *w, const dl_config *c, const char *name, dl_export_dtype dtype,
                         dl_gguf_arch arch, dl_error *err) {
    static const uint32_t FTYPE[] = {FTYPE_ALL_F32, FTYPE_MOSTLY_F16, FTYPE_MOSTLY_Q8_0};
    uint32_t HS = (uint32_t)(c->C / c->NH);
    if (dl_gguf_add_str(w, "general.architecture", dl_gguf_arch_name(arch), err) ||
        dl_gguf_add_str(w, "general.name", name, err) || dl_gguf_add_u32(w, "general.file_type", FTYPE[dtype], err) ||
        (dtype == DL_EXPORT_Q8_0 && dl_gguf_add_u32(w, "general.quantization_version", 2, err)) ||
        add_arch_u32(w, arch, "context_length", (uint32_t)c->max_T, err) ||
        add_arch_u32(w, arch, "embedding_length", (uint32_t)c->C, err) ||
        add_arch_u32(w, arch, "block_count", (uint32_t)c->L, err) ||
        add_arch_u32(w, arch, "feed_forward_length", (uint32_t)c->F, err) ||
        add_arch_u32(w, arch, "attention.head_count", (uint32_t)c->NH, err) ||
        add_arch_u32(w, arch, "attention.head_count_kv", (uint32_t)c->NKV, err) ||
        add_arch_f32(w, arch, "attention.layer_norm_rms_epsilon", c->rms_eps, err) ||
        add_arch_f32(w, arch, "rope.freq_base", c->rope_theta, err) ||
        add_arch_u32(w, arch, "rope.dimension_count", HS, err) ||
        add_arch_u32(w, arch, "vocab_size", (uint32_t)c->V, err))
        return -1;
    return 0;
}

/* Encodes x (numel floats) as type into a new buffer. */
static void *encode(const float *x, size_t numel, uint32_t type, size_t *nbytes) {
    size_t n = type == DL_GGML_F16 ? numel * 2 : numel / DL_Q8_0_BLOCK * DL_Q8_0_BYTES;
    uint8_t *out = malloc(n + 1);
    if (!out) return NULL;
    if (type == DL_GGML_F16) {
        for (size_t i = 0; i < numel; i++) {
            uint16_t h = dl_f32_to_f16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
    } else {
        dl_q8_0_quantize(x, out, numel);
    }
    *nbytes = n;
    return out;
}

/* Q8_0 needs whole blocks of 32 along a row; other matrices fall back to F16 (counted in
 * *fallbacks), as llama.cpp's converter does. */
static uint32_t matrix_type(dl_export_dtype dtype, uint64_t row, int *fallbacks) {
    if (dtype == DL_EXPORT_F32) return DL_GGML_F32;
    if (dtype == DL_EXPORT_F16) return DL_GGML_F16;
    if (row % DL_Q8_0_BLOCK == 0) return DL_GGML_Q8_0;
    ++*fallbacks;
    return DL_GGML_F16;
}

static int add_view(dl_gguf_writer *w, const dl_model *m, int vi, dl_export_dtype dtype, dl_gguf_arch arch,
                    int *fallbacks, dl_error *err) {
    const dl_tensor_view *v = &m->lay.views[vi];
    char name[DL_GGUF_NAME_MAX + 1];
    if (dl_gguf_name_of(v->name, name, sizeof name, err)) return -1;
    /* HF [out, in] row-major is ggml's ne = {in, out} */
    uint64_t ne[2] = {(uint64_t)(v->ndim == 2 ? v->shape[1] : v->shape[0]), (uint64_t)v->shape[0]};
    const float *src = m->params + v->offset;
    float *perm = NULL;
    int heads = arch == DL_GGUF_LLAMA ? conv_qk_heads(m, vi) : 0; /* qwen2: rotate-half, as HF */
    if (heads) { /* a bias is permuted like the weight's rows, as a column */
        if (!(perm = malloc(v->numel * sizeof(float)))) return dl_fail(err, "out of memory");
        dl_qk_to_gguf(src, perm, heads, m->cfg.C / m->cfg.NH, v->ndim == 2 ? (size_t)v->shape[1] : 1);
        src = perm;
    }
    uint32_t type = v->ndim == 1 ? DL_GGML_F32 : matrix_type(dtype, ne[0], fallbacks);
    if (type == DL_GGML_F32) /* perm (if any) is handed to the writer, the params are not copied */
        return dl_gguf_add_tensor(w, name, type, v->ndim, ne, src, v->numel * sizeof(float), perm != NULL, err);
    size_t nbytes = 0;
    void *data = encode(src, v->numel, type, &nbytes);
    free(perm);
    if (!data) return dl_fail(err, "out of memory");
    return dl_gguf_add_tensor(w, name, type, v->ndim, ne, data, nbytes, 1, err);
}

/* The folder's name, for general.name. */
static void base_name(const char *dir, char *out, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(out, n, "%.*s", (int)(len - start), dir + start);
}

static int export_model(const dl_model *m, const dl_tokenizer *tok, const char *tok_path, const char *name,
                        dl_export_dtype dtype, dl_gguf_arch arch, const char *out_path, dl_error *err) {
    if (arch == DL_GGUF_QWEN2 && (!m->cfg.qkv_bias || m->cfg.o_bias))
        return dl_fail(err, "GGUF's qwen2 architecture needs q/k/v biases and no output bias (this model has %s, %s); "
                            "export it as llama", m->cfg.qkv_bias ? "q/k/v biases" : "no q/k/v biases",
                       m->cfg.o_bias ? "an output bias" : "no output bias");
    dl_gguf_writer *w = dl_gguf_writer_new(err);
    if (!w) return -1;
    int rc = write_hparams(w, &m->cfg, name, dtype, arch, err) || conv_write_vocab(w, tok, tok_path, &m->cfg, err);
    int fallbacks = 0;
    for (int i = 0; rc == 0 && i < m->lay.n_views; i++) rc = add_view(w, m, i, dtype, arch, &fallbacks, err);
    if (rc == 0 && fallbacks)
        dl_log("%d matrices have rows that are not a multiple of 32: written as F16 instead of Q8_0", fallbacks);
    if (rc == 0) rc = dl_gguf_write(w, out_path, err);
    dl_gguf_writer_free(w);
    return rc ? -1 : 0;
}

int dl_export_gguf(const char *model_dir, const char *out_path, dl_export_dtype dtype, dl_gguf_arch arch,
                   dl_error *err) {
    char tok_path[4096], name[256];
    if (dl_path_join(tok_path, sizeof tok_path, model_dir, "tokenizer.json", err)) return -1;
    if (!dl_path_exists(tok_path))
        return dl_fail(err, "%s: missing (a GGUF file carries its vocabulary)", tok_path);
    dl_model m;
    if (dl_model_load(&m, model_dir, err)) return -1;
    dl_tokenizer *tok = dl_tok_load(tok_path, err);
    base_name(model_dir, name, sizeof name);
    int rc = tok ? export_model(&m, tok, tok_path, name, dtype, arch, out_path, err) : -1;
    dl_tok_free(tok);
    dl_model_free(&m);
    return rc;
}
