/* model: a Llama-family decoder (RMSNorm, RoPE rotate-half, SwiGLU, GQA, tied or untied
 * embeddings). Parameters, gradients and activations each live in one flat allocation.
 *
 * Dimension names: B batch, T sequence, C hidden, F intermediate, V vocab, L layers,
 * NH query heads, NKV key/value heads, HS head size = C/NH. */
#ifndef DISTIL_MODEL_H
#define DISTIL_MODEL_H

#include "base/base.h"
#include "formats/safetensors.h"

/* ---- config (config.c) -------------------------------------------------------------------
 * Read from a Hugging Face config.json of LlamaForCausalLM or Qwen2ForCausalLM (the same model
 * with biases on q_proj, k_proj and v_proj); keys that would change the maths and are not
 * supported (rope_scaling, sliding windows, another activation, MLP biases) are refused.
 * Written back as a Llama config, or a Qwen2 one for a model with q/k/v biases only. */
typedef struct dl_config {
    int V;      /* vocab_size */
    int C;      /* hidden_size */
    int F;      /* intermediate_size */
    int L;      /* num_hidden_layers */
    int NH;     /* num_attention_heads */
    int NKV;    /* num_key_value_heads (defaults to NH) */
    int max_T;  /* max_position_embeddings */
    float rms_eps;    /* rms_norm_eps */
    float rope_theta; /* rope_theta */
    int tied;         /* tie_word_embeddings */
    int bos_id, eos_id; /* bos_token_id / eos_token_id, -1 when absent */
    int qkv_bias;     /* q_proj, k_proj, v_proj have biases (Qwen2, or Llama's attention_bias) */
    int o_bias;       /* o_proj has one too (Llama's attention_bias); needs qkv_bias */
} dl_config;

/* Checks that dimensions are positive and divide (C % NH, NH % NKV, head size even). */
int dl_config_validate(const dl_config *c, dl_error *err);
int dl_config_load(const char *path, dl_config *c, dl_error *err);
int dl_config_save(const dl_config *c, const char *path, dl_error *err);
/* A config.json given either as a file or as a model folder holding one. */
int dl_config_load_any(const char *path_or_dir, dl_config *c, dl_error *err);

/* ---- parameter layout (params.c) ---------------------------------------------------------
 * Every tensor is a named view (Hugging Face names, [out, in] row-major) into one flat float
 * buffer. The order is fixed: embed, then per layer (input_layernorm, q, k, v, [q, k, v biases],
 * o, [o bias], post_attention_layernorm, gate, up, down), then final norm, then lm_head when
 * untied. The biases are there only when the config has them. */
#define DL_NAME_MAX 96
typedef struct dl_tensor_view {
    char name[DL_NAME_MAX];
    int ndim;
    int shape[2];
    size_t offset; /* in floats, into the flat buffer */
    size_t numel;
} dl_tensor_view;

typedef struct dl_layer_views {
    int ln1, wq, wk, wv, wo, ln2, wgate, wup, wdown; /* indices into dl_layout.views */
    int bq, bk, bv, bo; /* bias views, -1 when the config has none */
} dl_layer_views;

typedef struct dl_layout {
    dl_tensor_view *views;
    int n_views;
    size_t total; /* floats */
    int embed, norm, lm_head;  /* lm_head == embed when tied */
    dl_layer_views *layers;    /* L entries */
} dl_layout;

int dl_layout_build(dl_layout *lay, const dl_config *c, dl_error *err);
void dl_layout_free(dl_layout *lay);
int dl_layout_find(const dl_layout *lay, const char *name); /* -1 if absent */

/* ---- the model ----------------------------------------------------------------------------- */
typedef struct dl_acts dl_acts; /* training activations, private to forward.c */

typedef struct dl_model {
    dl_config cfg;
    dl_layout lay;
    float *params; /* lay.total floats */
    float *grads;  /* lay.total floats, NULL until dl_model_alloc_train */
    dl_acts *acts; /* NULL until dl_model_alloc_train */
    int B, T;      /* shapes the activations were sized for */
    float *logits; /* (B,T,V) after dl_model_forward, inside acts */
    float loss;    /* mean cross-entropy of the last forward with targets */
} dl_model;

/* Allocates params (zeroed) for cfg. */
int dl_model_create(dl_model *m, const dl_config *cfg, dl_error *err);
/* Initialises weights: normal(0, 0.02) for matrices and embeddings, scaled by
 * 1/sqrt(2L) for the residual projections (o_proj, down_proj); norms to 1, biases to 0. */
void dl_model_init_random(dl_model *m, uint64_t seed);
void dl_model_free(dl_model *m);

/* ---- training forward/backward (forward.c) -------------------------------------------------- */
/* Sizes grads and activations for batches up to (B,T); T <= max_T. */
int dl_model_alloc_train(dl_model *m, int B, int T, dl_error *err);
/* inputs, targets: (B,T) token ids. Computes logits (m->logits) and, when targets != NULL,
 * the mean cross-entropy over all B*T positions into m->loss. Targets < 0 are ignored
 * (not counted in the mean). Returns m->loss (or 0 without targets). */
float dl_model_forward(dl_model *m, const int32_t *inputs, const int32_t *targets, int B, int T);
void dl_model_zero_grad(dl_model *m);
/* Frees grads and activations (dl_model_free calls it). */
void dl_model_free_train(dl_model *m);
/* Accumulates d(loss)/d(params) into m->grads (+=), for the last forward with targets.
 * grad_scale multiplies the loss gradient (1/accum_steps for gradient accumulation). */
void dl_model_backward(dl_model *m, float grad_scale);
/* Backward from a caller-supplied gradient of the loss w.r.t. logits (B,T,V), for losses
 * other than cross-entropy (distillation). dlogits may alias m->logits. */
void dl_model_backward_from_logits(dl_model *m, const float *dlogits);
/* Floats held by the training activations (for memory reports); 0 before dl_model_alloc_train. */
size_t dl_model_act_floats(const dl_model *m);

/* ---- inference with a KV cache (decode.c) ---------------------------------------------------- */
typedef struct dl_kv_cache {
    int L, max_T, NKV, HS;
    int pos;      /* tokens already in the cache */
    float *k, *v; /* (L, max_T, NKV, HS) each */
    float *rope_cos, *rope_sin; /* (max_T, HS/2) tables, filled once by dl_kv_cache_create */
} dl_kv_cache;

int dl_kv_cache_create(dl_kv_cache *kv, const dl_config *c, int max_T, dl_error *err);
void dl_kv_cache_free(dl_kv_cache *kv);
void dl_kv_cache_reset(dl_kv_cache *kv);
/* Feeds n tokens at positions kv->pos .. kv->pos+n-1; writes the logits of the last token
 * (V floats) to logits_out, or all n rows (n,V) when all_logits is set. Fails if the cache
 * would overflow. */
int dl_model_decode(const dl_model *m, dl_kv_cache *kv, const int32_t *tokens, int n,
                    float *logits_out, int all_logits, dl_error *err);

/* ---- batched decoding (decode_batch.c) ------------------------------------------------------
 * One token for each of B independent sequences: row b feeds tokens[b] at position kvs[b]->pos
 * of its own cache (caches may sit at different positions and have different sizes) and gets
 * its logits in row b of logits_out (B,V). The same result as B calls of dl_model_decode with
 * n = 1, but the weights are read once for all rows. Fails, touching no cache, if any row's
 * cache is full or shared with another row, or a token is outside the vocabulary. */
int dl_model_decode_batch(const dl_model *m, dl_kv_cache *const *kvs, const int32_t *tokens, int B,
                          float *logits_out, dl_error *err);

/* ---- folders (io.c) -------------------------------------------------------------------------
 * A model folder is a Hugging Face folder: config.json + model.safetensors, or the shards of
 * model.safetensors.index.json (+ tokenizer.json, which the model code does not read). Weights
 * may be F32, F16 or BF16. Tensors the config does not call for are refused, except
 * rotary_emb.inv_freq and a tied model's lm_head.weight. */
int dl_model_load(dl_model *m, const char *dir, dl_error *err);
/* Whether dir holds weights (model.safetensors or an index), without reading them. */
int dl_model_has_weights(const char *dir);
/* Writes config.json and model.safetensors (F32) into dir (created if needed), each atomically. */
int dl_model_save(const dl_model *m, const char *dir, dl_error *err);
/* The same with the weights in dtype: DL_F32, DL_F16 or DL_BF16 (rounded to nearest even). */
int dl_model_save_as(const dl_model *m, const char *dir, dl_dtype dtype, dl_error *err);

#endif
