/* Tensor names and the Q/K row permutation shared by export and import. */
#include "convert/internal.h"
#include <stdio.h>
#include <string.h>

static const struct {
    const char *hf, *gguf;
} LAYER_NAMES[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

static int put(char *out, size_t n, const char *name, const char *hf, dl_error *err) {
    if ((size_t)snprintf(out, n, "%s", name) >= n) return dl_fail(err, "name for '%s' is too long", hf);
    return 0;
}

int dl_gguf_name_of(const char *hf, char *out, size_t n, dl_error *err) {
    if (strcmp(hf, "model.embed_tokens.weight") == 0) return put(out, n, "token_embd.weight", hf, err);
    if (strcmp(hf, "model.norm.weight") == 0) return put(out, n, "output_norm.weight", hf, err);
    if (strcmp(hf, "lm_head.weight") == 0) return put(out, n, "output.weight", hf, err);
    int layer, used = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0) {
        for (size_t k = 0; k < sizeof LAYER_NAMES / sizeof LAYER_NAMES[0]; k++) {
            if (strcmp(hf + used, LAYER_NAMES[k].hf) != 0) continue;
            if ((size_t)snprintf(out, n, "blk.%d.%s", layer, LAYER_NAMES[k].gguf) >= n)
                return dl_fail(err, "name for '%s' is too long", hf);
            return 0;
        }
    }
    return dl_fail(err, "tensor '%s' has no GGUF name", hf);
}

/* w is (n_head * head_size, cols). Rows move whole, so cols only sets the row length. */
void dl_qk_to_gguf(const float *src, float *dst, int n_head, int head_size, size_t cols) {
    size_t half = (size_t)head_size / 2;
    for (size_t h = 0; h < (size_t)n_head; h++)
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                memcpy(dst + (h * head_size + 2 * i + j) * cols, src + (h * head_size + j * half + i) * cols,
                       cols * sizeof(float));
}

void dl_qk_from_gguf(const float *src, float *dst, int n_head, int head_size, size_t cols) {
    size_t half = (size_t)head_size / 2;
    for (size_t h = 0; h < (size_t)n_head; h++)
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                memcpy(dst + (h * head_size + j * half + i) * cols, src + (h * head_size + 2 * i + j) * cols,
                       cols * sizeof(float));
}

int conv_qk_heads(const dl_model *m, int vi) {
    for (int l = 0; l < m->cfg.L; l++) {
        const dl_layer_views *lv = &m->lay.layers[l];
        if (vi == lv->wq || (lv->bq >= 0 && vi == lv->bq)) return m->cfg.NH;
        if (vi == lv->wk || (lv->bk >= 0 && vi == lv->bk)) return m->cfg.NKV;
    }
    return 0;
}
