/* Knowledge-distillation losses: a divergence between the teacher's distribution p and the
 * student's q, per position, averaged over positions, with the exact gradient w.r.t. the
 * student's logits (ready for dl_model_backward_from_logits).
 *
 * Per row (one position) with student logits z (V) and temperature tau:
 *   q = softmax(z / tau)
 *   p = softmax(z_t / tau)                         full teacher logits z_t
 *   KD_row = tau^2 * D(p, q)                       the tau^2 (Hinton et al.) keeps gradient
 *                                                  sizes comparable across tau: without it
 *                                                  dD/dz shrinks like 1/tau^2 for large tau.
 * Divergences D (natural log; "log 0" never happens, see "numerics"):
 *   fkl   forward KL        KL(p || q) = sum p (log p - log q)
 *   rkl   reverse KL        KL(q || p)
 *   jsd   generalized JSD   beta == 0 exactly: KL(p || q); beta == 1 exactly: KL(q || p);
 *                           otherwise, with m = beta p + (1 - beta) q,
 *                           beta KL(p || m) + (1 - beta) KL(q || m).
 *                           This is the GKD paper's JSD(beta) and TRL's generalized_jsd_loss
 *                           (same endpoints special-cased). Note its size: near beta = 0 it is
 *                           ~ beta KL(p||q), near 1 ~ (1 - beta) KL(q||p), so the direction moves
 *                           smoothly from forward to reverse KL but the magnitude jumps at the
 *                           two exact endpoints; beta = 0.5 is the usual Jensen-Shannon divergence.
 *   skl   skew forward KL   KL(p || alpha p + (1 - alpha) q)   (DistiLLM; alpha = 0 is fkl)
 *   srkl  skew reverse KL   KL(q || alpha q + (1 - alpha) p)   (alpha = 0 is rkl)
 *   tv    total variation   0.5 sum |p - q| (subgradient 0 where p == q)
 * alpha = 1 makes skl and srkl identically 0.
 *
 * Combined loss: loss = (1 - w) * mean(KD_row) + w * mean(CE_row), w = ce_weight in [0, 1],
 * CE_row = -log softmax(z)[target] at temperature 1 (the hard-label loss is never softened).
 * Means are over the counted rows: with targets, a row whose target is outside [0, V) is
 * skipped entirely (no KD, no CE, not counted: padding and prompt positions); with
 * targets == NULL every row counts and w must be 0.
 *
 * Teacher forms (every divergence accepts both):
 * 1. full logits: row n is z_t + n * t_stride, its first V entries are used (a teacher with a
 *    larger vocabulary is truncated to the shared ids without a copy: p is renormalised over them).
 * 2. top-k: per row K distinct ids in [0, V) (int32), their log-probabilities logp (float, at
 *    temperature 1) and rest = the teacher's leftover mass 1 - sum_k p_k. The divergence is
 *    taken over K + 1 bins: the K ids and one "rest" bin, holding the teacher's rest and the
 *    student's mass outside the ids (sum of q over the other V - K ids). Teacher bins at
 *    temperature tau: softmax over K + 1 logits,
 *      logp_k / tau                              the K ids
 *      log(rest) / tau + (1 - 1/tau) log(V - K)  the rest bin
 *    i.e. the rest mass is taken as spread evenly over the V - K ids outside the top-k, and
 *    those V - K ids are softened: sum over them of (rest / (V - K))^(1/tau). Why: the rest bin
 *    is the total of many unknown ids, and its softened mass depends on how it is spread. Taking
 *    it as one logit (rest^(1/tau), the earlier rule) is the other extreme, all of it on one id;
 *    for tau > 1 it understates the softened tail (a cache run at --temperature 2 reached val
 *    loss 6.2 in bench/kd_quality). An even spread is the maximum-entropy guess, for tau > 1 an
 *    upper bound of the true softened tail where the single logit is the lower one. Measured (KJV
 *    teacher of distil demo, top-32 cache, 300 steps, tau 2, no CE): student val loss 4.60 with
 *    this rule, 5.10 with the single logit, 5.04 keeping the rest's tau = 1 share; 4.22 with the
 *    live teacher, 4.21 with the cache at tau 1. The rule is exact for K == V (no rest bin:
 *    softmax(logp / tau) is softmax(z_t / tau)), at tau = 1 for any K (where the softmax only
 *    absorbs rounding in the cache), and at any tau when the teacher's tail is in fact uniform.
 *    rest below DL_KD_REST_MIN (including small negatives from fp16 rounding) is raised to it,
 *    so log(rest) is finite. When K == V the student has no mass outside the ids: the rest bin
 *    is dropped and p is renormalised over the K ids. Non-finite logp or rest, ids out of range
 *    or repeated within a row are errors (in counted rows; skipped rows are never read). The
 *    gradient is exact for this K+1-bin objective, w.r.t. all V student logits. A caller whose
 *    teacher vocabulary is larger than the student's moves the mass of ids >= V into rest.
 *
 * Numerics: both distributions are kept as log-softmax (log-sum-exp) and as probabilities;
 * only mixtures (jsd, skl, srkl) and the student's rest mass take a log of a sum, clamped at
 * FLT_MIN. Accuracy (float): ~1e-6 relative on the loss, gradients within ~1e-6 of the row's
 * largest entry (up to ~2e-5 when |log p| is large, e.g. a floored rest bin at small tau).
 * Streaming: one row at a time, O(V) scratch per thread, never (N,V). OpenMP over rows,
 * per-row losses summed in row order: results do not depend on the thread count. */
#ifndef DISTIL_DISTILL_LOSSES_H
#define DISTIL_DISTILL_LOSSES_H

#include "base/base.h"
#include <stddef.h>
#include <stdint.h>

#define DL_KD_REST_MIN 1e-8f

typedef enum { DL_KD_FKL, DL_KD_RKL, DL_KD_JSD, DL_KD_SKL, DL_KD_SRKL, DL_KD_TV } dl_kd_kind;

typedef struct dl_kd_cfg {
    dl_kd_kind kind;
    float beta;      /* jsd, in [0, 1] */
    float alpha;     /* skl, srkl, in [0, 1] */
    float tau;       /* temperature > 0 */
    float ce_weight; /* w in [0, 1] */
} dl_kd_cfg;

typedef struct dl_kd_stats {
    float loss; /* (1 - w) * kd + w * ce: the quantity whose gradient is written */
    float kd;   /* mean tau^2 * D over counted rows */
    float ce;   /* mean cross-entropy over counted rows (0 without targets) */
    int rows;   /* rows counted */
} dl_kd_stats;

/* "fkl", "rkl", "jsd", "skl", "srkl", "tv" -> kind; -1 with the list of names otherwise. */
int dl_kd_parse(const char *name, dl_kd_kind *out, dl_error *err);
const char *dl_kd_name(dl_kd_kind kind); /* "?" for an unknown value */
/* Ranges: known kind, beta and alpha in [0, 1], tau > 0 and finite, ce_weight in [0, 1]. */
int dl_kd_check(const dl_kd_cfg *cfg, dl_error *err);

/* z_s (N,V) student logits; z_t rows of t_stride >= V floats; targets (N) or NULL.
 * dz (N,V) = scale * d(loss)/d(z_s), overwritten; NULL to skip; may alias z_s.
 * Fills *out (may be NULL). Returns 0, or -1 on bad arguments or out of memory. */
int dl_kd_full(const dl_kd_cfg *cfg, const float *z_s, const float *z_t, size_t t_stride,
               const int32_t *targets, float *dz, int N, int V, float scale, dl_kd_stats *out,
               dl_error *err);
/* Top-k teacher: ids (N,K), logp (N,K), rest (N); 1 <= K <= V. Other arguments as above. */
int dl_kd_topk(const dl_kd_cfg *cfg, const float *z_s, const int32_t *ids, const float *logp,
               const float *rest, int K, const int32_t *targets, float *dz, int N, int V, float scale,
               dl_kd_stats *out, dl_error *err);

#endif
