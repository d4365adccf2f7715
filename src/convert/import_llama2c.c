/* llama2.c checkpoint + tokenizer.bin -> model folder.
 *
 * The two fp32 formats of llama2.c's export.py (little-endian; int32 unless said):
 *   legacy     header of 7 ints: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
 *              (negative: the classifier is not shared with the embedding), seq_len; then
 *              token_embedding (vocab, dim), rms_att (L, dim), wq (L, n_heads*hs, dim),
 *              wk (L, n_kv_heads*hs, dim), wv (same), wo (L, dim, n_heads*hs), rms_ffn (L, dim),
 *              w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim),
 *              freq_cis_real and freq_cis_imag (seq_len, hs/2 each, not needed), and the
 *              classifier (vocab, dim) when not shared.
 *   version 1  header of 256 bytes: uint32 magic 0x616b3432 ("ak42"), version 1, the same 7 ints
 *              (vocab_size positive), uint8 shared_classifier, zero padding; then rms_att (L, dim),
 *              rms_ffn (L, dim), rms_final (dim), token_embedding, wq, wk, wv, wo, w1, w2, w3
 *              (shapes as above) and the classifier when not shared. No RoPE tables.
 * (Version 2 is llama2.c's int8 format, which is not read.) Matrices are PyTorch [out, in]
 * row-major, as in a Hugging Face folder; w1 is gate_proj, w3 up_proj, w2 down_proj.
 *
 * RoPE: llama2.c's model.py views each head's query and key as hs/2 complex numbers, dims
 * (2i, 2i+1) being pair i; Hugging Face (and distil) rotate dim i with dim i + hs/2. Both use
 * frequency theta^(-2i/hs) for pair i, so moving row 2i + j of each head to row j*hs/2 + i
 * (j = 0, 1) in wq and wk gives the same attention scores. That is GGUF's layout too, so the
 * GGUF importer's row permutation does it. rope_theta is 10000 and rms_norm_eps 1e-5, the
 * values llama2.c's model has built in.
 *
 * Both files are untrusted: every header value is bounded, the dimensions must divide, and the
 * checkpoint must be exactly as long as its header says (computed in 64 bits), so that what is
 * allocated never exceeds what the file holds. */
#include "convert/internal.h"
#include <stdlib.h>
#include <string.h>

enum { V1_MAGIC = 0x616b3432, V1_HEADER = 256, LEGACY_HEADER = 28 };

typedef struct l2c_header {
    int version; /* 0 legacy, 1 */
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
    int shared;
    size_t data_off;
} l2c_header;

/* The weights in file order; per-layer parts repeat for every layer. */
typedef enum { P_EMBED, P_ATT_NORM, P_WQ, P_WK, P_WV, P_WO, P_FFN_NORM, P_W1, P_W2, P_W3, P_NORM, P_FREQ, P_CLS } l2c_part;
static const l2c_part LEGACY_ORDER[] = {P_EMBED, P_ATT_NORM, P_WQ, P_WK, P_WV, P_WO, P_FFN_NORM,
                                        P_W1,    P_W2,       P_W3, P_NORM, P_FREQ, P_FREQ, P_CLS};
static const l2c_part V1_ORDER[] = {P_ATT_NORM, P_FFN_NORM, P_NORM, P_EMBED, P_WQ, P_WK,
                                    P_WV,       P_WO,       P_W1,   P_W2,    P_W3, P_CLS};

static int32_t le_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

static int read_header(const uint8_t *p, size_t len, l2c_header *h, dl_error *err) {
    memset(h, 0, sizeof *h);
    if (len >= 4 && (uint32_t)le_i32(p) == V1_MAGIC) {
        if (len < V1_HEADER) return dl_fail(err, "truncated: %zu bytes, a version-1 header alone is %d", len, V1_HEADER);
        int32_t version = le_i32(p + 4);
        if (version == 2) return dl_fail(err, "version 2 (llama2.c's int8 format) is not supported; export version 1 or legacy");
        if (version != 1) return dl_fail(err, "unknown checkpoint version %d (expected 1)", (int)version);
        if (p[36] > 1) return dl_fail(err, "shared_classifier flag is %u (expected 0 or 1)", p[36]);
        h->version = 1;
        h->shared = p[36];
        h->data_off = V1_HEADER;
        p += 8;
    } else {
        if (len < LEGACY_HEADER) return dl_fail(err, "truncated: %zu bytes, the legacy header alone is %d", len, LEGACY_HEADER);
        h->data_off = LEGACY_HEADER;
    }
    h->dim = le_i32(p), h->hidden = le_i32(p + 4), h->layers = le_i32(p + 8), h->heads = le_i32(p + 12);
    h->kv_heads = le_i32(p + 16), h->vocab = le_i32(p + 20), h->seq_len = le_i32(p + 24);
    if (h->version == 0) {
        h->shared = h->vocab > 0;
        if (h->vocab < 0 && h->vocab != INT32_MIN) h->vocab = -h->vocab;
    }
    return 0;
}

static int check_range(const char *name, int32_t v, int32_t max, dl_error *err) {
    if (v <= 0 || v > max) return dl_fail(err, "header: %s = %d is out of range (1 to %d)", name, (int)v, (int)max);
    return 0;
}

static int check_header(const l2c_header *h, dl_error *err) {
    if (check_range("dim", h->dim, 1 << 16, err) || check_range("hidden_dim", h->hidden, 1 << 18, err) ||
        check_range("n_layers", h->layers, 1024, err) || check_range("n_heads", h->heads, h->dim, err) ||
        check_range("n_kv_heads", h->kv_heads, h->heads, err) || check_range("vocab_size", h->vocab, 1 << 24, err) ||
        check_range("seq_len", h->seq_len, 1 << 20, err))
        return -1;
    if (h->dim % h->heads) return dl_fail(err, "header: dim %d is not divisible by n_heads %d", h->dim, h->heads);
    if (h->heads % h->kv_heads)
        return dl_fail(err, "header: n_heads %d is not divisible by n_kv_heads %d", h->heads, h->kv_heads);
    if ((h->dim / h->heads) % 2) return dl_fail(err, "header: head size %d must be even for RoPE", h->dim / h->heads);
    return 0;
}

/* Floats of one part (of one layer). Every factor is bounded by check_header, so no product
 * comes near 2^63. */
static uint64_t part_size(const l2c_header *h, l2c_part p) {
    uint64_t D = (uint64_t)h->dim, HS = D / (uint64_t)h->heads, KV = (uint64_t)h->kv_heads * HS;
    switch (p) {
    case P_EMBED: case P_CLS: return (uint64_t)h->vocab * D;
    case P_ATT_NORM: case P_FFN_NORM: case P_NORM: return D;
    case P_WQ: case P_WO: return D * D;
    case P_WK: case P_WV: return KV * D;
    case P_W1: case P_W2: case P_W3: return (uint64_t)h->hidden * D;
    case P_FREQ: return (uint64_t)h->seq_len * HS / 2;
    }
    return 0;
}

static int per_layer(l2c_part p) { return p != P_EMBED && p != P_NORM && p != P_FREQ && p != P_CLS; }

static const l2c_part *order_of(const l2c_header *h, size_t *n) {
    *n = h->version ? sizeof V1_ORDER / sizeof V1_ORDER[0] : sizeof LEGACY_ORDER / sizeof LEGACY_ORDER[0];
    return h->version ? V1_ORDER : LEGACY_ORDER;
}

static uint64_t expected_floats(const l2c_header *h) {
    size_t n;
    const l2c_part *order = order_of(h, &n);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (order[i] != P_CLS || !h->shared) total += part_size(h, order[i]) * (per_layer(order[i]) ? (uint64_t)h->layers : 1);
    return total;
}

static dl_config config_of(const l2c_header *h) {
    dl_config c;
    memset(&c, 0, sizeof c);
    c.V = h->vocab, c.C = h->dim, c.F = h->hidden, c.L = h->layers, c.NH = h->heads, c.NKV = h->kv_heads;
    c.max_T = h->seq_len, c.rms_eps = 1e-5f, c.rope_theta = 10000.0f, c.tied = h->shared;
    c.bos_id = c.eos_id = -1;
    return c;
}

/* The view that part p of layer l fills; -1 for the RoPE tables. */
static int view_of(const dl_model *m, l2c_part p, int l) {
    const dl_layer_views *lv = &m->lay.layers[l];
    switch (p) {
    case P_EMBED: return m->lay.embed;
    case P_CLS: return m->lay.lm_head;
    case P_NORM: return m->lay.norm;
    case P_ATT_NORM: return lv->ln1;
    case P_FFN_NORM: return lv->ln2;
    case P_WQ: return lv->wq;
    case P_WK: return lv->wk;
    case P_WV: return lv->wv;
    case P_WO: return lv->wo;
    case P_W1: return lv->wgate;
    case P_W2: return lv->wdown;
    case P_W3: return lv->wup;
    case P_FREQ: return -1;
    }
    return -1;
}

/* Copies one part from the file into its view, permuting the rows of wq and wk. */
static int copy_part(dl_model *m, l2c_part p, int l, const uint8_t *src, dl_error *err) {
    int vi = view_of(m, p, l);
    if (vi < 0) return 0;
    const dl_tensor_view *v = &m->lay.views[vi];
    float *dst = m->params + v->offset;
    if (p != P_WQ && p != P_WK) {
        memcpy(dst, src, v->numel * sizeof(float));
        return 0;
    }
    float *tmp = malloc(v->numel * sizeof(float));
    if (!tmp) return dl_fail(err, "out of memory");
    memcpy(tmp, src, v->numel * sizeof(float));
    int HS = m->cfg.C / m->cfg.NH;
    dl_qk_from_gguf(tmp, dst, p == P_WQ ? m->cfg.NH : m->cfg.NKV, HS, (size_t)m->cfg.C);
    free(tmp);
    return 0;
}

static int copy_weights(dl_model *m, const l2c_header *h, const uint8_t *data, dl_error *err) {
    size_t n;
    const l2c_part *order = order_of(h, &n);
    for (size_t i = 0; i < n; i++) {
        if (order[i] == P_CLS && h->shared) continue;
        int reps = per_layer(order[i]) ? h->layers : 1;
        size_t sz = (size_t)part_size(h, order[i]) * sizeof(float);
        for (int l = 0; l < reps; l++, data += sz)
            if (copy_part(m, order[i], per_layer(order[i]) ? l : 0, data, err)) return -1;
    }
    return 0;
}

int dl_llama2c_read(dl_model *m, const void *data, size_t len, dl_error *err) {
    memset(m, 0, sizeof *m);
    l2c_header h;
    if (read_header(data, len, &h, err) || check_header(&h, err)) return -1;
    uint64_t want = expected_floats(&h) * 4, have = len - h.data_off;
    if (have != want)
        return dl_fail(err, "%s checkpoint: %llu bytes of weights, but dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                            "n_kv_heads %d, vocab_size %d, seq_len %d and a%s classifier need %llu",
                       h.version ? "version-1" : "legacy", (unsigned long long)have, h.dim, h.hidden, h.layers, h.heads,
                       h.kv_heads, h.vocab, h.seq_len, h.shared ? " shared" : "n unshared", (unsigned long long)want);
    dl_config c = config_of(&h);
    if (dl_model_create(m, &c, err)) return -1;
    if (copy_weights(m, &h, (const uint8_t *)data + h.data_off, err)) {
        dl_model_free(m);
        return -1;
    }
    return 0;
}

/* ---- the folder ----------------------------------------------------------------------------- */

static dl_tokenizer *load_tokenizer(const char *path, int V, dl_error *err) {
    dl_mmap map;
    if (dl_mmap_open(&map, path, err)) return NULL;
    dl_tokenizer *t = dl_tok_load_llama2c(map.data, map.len, V, err);
    dl_mmap_close(&map);
    if (!t) dl_fail_ctx(err, "%s", path);
    return t;
}

static int write_folder(dl_model *m, const dl_tokenizer *tok, const char *out_dir, dl_error *err) {
    dl_spm_opts o;
    dl_tok_is_spm(tok, &o);
    m->cfg.bos_id = o.bos_id;
    m->cfg.eos_id = o.eos_id;
    char path[4096];
    if (dl_mkdir_p(out_dir, err) || dl_path_join(path, sizeof path, out_dir, "tokenizer.json", err) ||
        dl_tok_save(tok, path, err))
        return -1;
    return dl_model_save(m, out_dir, err); /* last: a folder with model.safetensors is complete */
}

int dl_import_llama2c(const char *checkpoint, const char *tokenizer_bin, const char *out_dir, dl_error *err) {
    dl_mmap map;
    if (dl_mmap_open(&map, checkpoint, err)) return -1;
    dl_model m;
    int rc = dl_llama2c_read(&m, map.data, map.len, err);
    dl_mmap_close(&map);
    if (rc) return dl_fail_ctx(err, "%s", checkpoint);
    dl_tokenizer *tok = load_tokenizer(tokenizer_bin, m.cfg.V, err);
    rc = tok ? write_folder(&m, tok, out_dir, err) : -1;
    dl_tok_free(tok);
    dl_model_free(&m);
    return rc;
}
