/* ops: numeric kernels for the Llama-family model, each a forward/backward pair of plain
 * functions over flat float arrays (llm.c habits). Every fast kernel keeps a naive reference
 * (`*_ref`) beside it for tests.
 *
 * Dimension names: B batch, T sequence, C hidden, F intermediate, V vocab, NH query heads,
 * NKV key/value heads, HS head size, N rows (usually B*T), IC/OC matmul in/out channels.
 *
 * Conventions:
 * - Weight gradients (dweight, dtable) are ACCUMULATED (+=), like model grads.
 * - Input gradients follow what each comment says (overwritten `=` or accumulated `+=`).
 * - Results are deterministic run to run for a given thread count: no reduction depends on
 *   thread scheduling. BLAS is only called outside OpenMP parallel regions.
 * - Shapes are trusted: these are kernels, callers (model, decode) check sizes at their door. */
#ifndef DISTIL_OPS_H
#define DISTIL_OPS_H

#include <stddef.h>
#include <stdint.h>

/* ---- matmul (matmul.c) ---------------------------------------------------------------------
 * weight is (OC,IC) row-major, the Hugging Face [out, in] layout. */
/* out (N,OC) = inp (N,IC) @ weight^T; with accumulate != 0, out += instead of =. */
void dl_matmul_forward(float *out, const float *inp, const float *weight, int N, int IC, int OC,
                       int accumulate);
/* dinp (N,IC) = dout (N,OC) @ weight (overwritten); dweight (OC,IC) += dout^T @ inp.
 * dinp or dweight may be NULL to skip that part. */
void dl_matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                        const float *weight, int N, int IC, int OC);
void dl_matmul_forward_ref(float *out, const float *inp, const float *weight, int N, int IC, int OC,
                           int accumulate);
void dl_matmul_backward_ref(float *dinp, float *dweight, const float *dout, const float *inp,
                            const float *weight, int N, int IC, int OC);

/* ---- rmsnorm (rmsnorm.c) -------------------------------------------------------------------
 * out (N,C) = inp / sqrt(mean(inp^2) + eps) * weight (C). rstd (N) keeps 1/sqrt(...) for the
 * backward; it may be NULL. out may alias inp. */
void dl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                        float eps);
/* dinp (N,C) += ..., dweight (C) += ...; rstd from the forward. */
void dl_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C);

/* ---- rope, rotate-half convention (rope.c) -------------------------------------------------
 * Dims i and i+HS/2 of a head form a pair rotated by angle pos * theta^(-2i/HS).
 * cos_t, sin_t: (max_T, HS/2) tables filled by dl_rope_table. */
void dl_rope_table(float *cos_t, float *sin_t, int max_T, int HS, float theta);
/* In place on x: rows n = b*T + t start at x + n*stride and hold NH heads of HS floats
 * (stride >= NH*HS; stride lets q and k be rotated inside a fused qkv row). Row (b,t) has
 * position pos0 + t; pos0 + T must be <= the table's max_T. */
void dl_rope_forward(float *x, int B, int T, int NH, int HS, size_t stride, int pos0,
                     const float *cos_t, const float *sin_t);
/* In place: dx becomes the gradient w.r.t. the unrotated input (the inverse rotation). */
void dl_rope_backward(float *dx, int B, int T, int NH, int HS, size_t stride, int pos0,
                      const float *cos_t, const float *sin_t);
/* Reference computing sin/cos directly (for tests). */
void dl_rope_forward_ref(float *x, int B, int T, int NH, int HS, size_t stride, int pos0, float theta);

/* ---- causal attention with grouped-query heads (attention.c), training only ---------------
 * qkv is (B,T,QKV) with QKV = (NH + 2*NKV)*HS, each row [q (NH*HS) | k (NKV*HS) | v (NKV*HS)],
 * q and k already rotated. Query head h reads kv head h / (NH/NKV). Scale 1/sqrt(HS).
 * out is (B,T,NH*HS); att (B,NH,T,T) keeps the softmax probabilities (row t: columns <= t,
 * zeros after). */
void dl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS);
/* dqkv (B,T,QKV) = gradient w.r.t. qkv (overwritten); dout (B,T,NH*HS). att from the forward
 * is used as scratch and overwritten (so: one backward per forward). */
void dl_attention_backward(float *dqkv, const float *dout, const float *qkv, float *att, int B, int T,
                           int NH, int NKV, int HS);
/* References: the forward in double from the definition; the backward one query row at a time
 * with plain dot products (it reads att and leaves it as it is). */
void dl_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS);
void dl_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, float *att, int B, int T,
                               int NH, int NKV, int HS);

/* ---- attention of one query row over a KV cache (attention_decode.c), inference only -----
 * q (HS) at absolute position p attends to cached keys and values 0..p of kv head kh; the caches
 * kc, vc are (max_T, NKV, HS) row-major. out (HS) overwritten; scores (p+1) is scratch. */
void dl_attention_decode_row(float *out, const float *q, const float *kc, const float *vc, int p, int NKV, int HS,
                             int kh, float *scores);

/* ---- swiglu (swiglu.c) -------------------------------------------------------------------------
 * out (N,F) = silu(gate) * up, silu(g) = g / (1 + exp(-g)). Rows of gate and up start every
 * `stride` floats (stride = F for separate buffers, 2F for fused [gate | up] rows). */
void dl_swiglu_forward(float *out, const float *gate, const float *up, int N, int F, size_t stride);
/* dgate, dup (same strides) = gradients (overwritten); dout (N,F). When out is not NULL it
 * also receives the forward's output again (the sigmoids are at hand), so a caller that did
 * not keep it gets it back for free. */
void dl_swiglu_backward(float *dgate, float *dup, float *out, const float *dout, const float *gate,
                        const float *up, int N, int F, size_t stride);

/* ---- embedding (embedding.c) -------------------------------------------------------------------
 * out (N,C) = table (V,C) rows tokens[n]. A token outside [0,V) yields a zero row; returns
 * the number of such tokens (0 when all are valid). */
int dl_embedding_forward(float *out, const int32_t *tokens, const float *table, int N, int C, int V);
/* dtable (V,C) += dout rows scattered by token (out-of-range tokens skipped). */
void dl_embedding_backward(float *dtable, const float *dout, const int32_t *tokens, int N, int C, int V);

/* ---- exp over arrays (vexp.c) --------------------------------------------------------------
 * y[i] = mul * exp(x[i] - shift) for i < n, vectorised (within ~2 ulp of expf; arguments are
 * clamped to [-87.3, 88.4]). y may alias x, or be NULL to only sum. Returns
 * sum_i exp(x[i] - shift) (without mul), summed in a fixed order. */
float dl_exp_sum(float *y, const float *x, int n, float shift, float mul);

/* ---- softmax and cross-entropy (softmax.c) -----------------------------------------------------
 * Row-wise over N rows of V; streaming, one row at a time, no (N,V) scratch. */
/* out (N,V) = softmax(inp) per row; out may alias inp. */
void dl_softmax_forward(float *out, const float *inp, int N, int V);
/* losses (N) = logsumexp(row) - row[target] (0 for targets < 0); lse (N) keeps logsumexp for
 * the backward (may be NULL). Targets >= V count as ignored too. Returns the number of rows
 * counted (targets in [0,V)). */
int dl_crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N,
                            int V);
/* dlogits (N,V) = (softmax(logits) - onehot(target)) * scale for counted rows, 0 for ignored
 * rows (overwritten). dlogits may alias logits (in place). lse from the forward. */
void dl_crossentropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                              int N, int V, float scale);

/* ---- runtime settings for OpenBLAS and OpenMP (runtime.c) -----------------------------------
 * For a program's main(), first thing. Both libraries read their settings once, at load, so
 * they only take effect in a fresh process: those of OMP_WAIT_POLICY=PASSIVE with
 * GOMP_SPINCOUNT=10000 (idle OpenMP threads spin a few microseconds, then sleep) and
 * OPENBLAS_THREAD_TIMEOUT=18 (idle OpenBLAS threads spin 2^18 cycles, not 2^28) that the
 * environment does not set already are set, and the program re-executes
 * itself (/proc/self/exe, same argv). Returns when nothing needed changing, when
 * DISTIL_NO_TUNE is set, or if exec fails. */
void dl_ops_tune_runtime(char **argv);

#endif
