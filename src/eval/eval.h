/* eval: loss, perplexity and speed of a model on a token file. */
#ifndef DISTIL_EVAL_H
#define DISTIL_EVAL_H

#include "data/data.h"
#include "model/model.h"

typedef struct dl_eval_result {
    double mean_loss;  /* mean next-token cross-entropy (nats) */
    double perplexity; /* exp(mean_loss) */
    double tokens_per_s;
    uint64_t tokens;   /* positions scored */
    double seconds;
} dl_eval_result;

/* Scores consecutive non-overlapping windows of T+1 tokens from the start of the file, B at a
 * time, at most max_tokens positions (0: the whole file). The model's training buffers are
 * (re)allocated for (B,T) if needed. */
int dl_eval_tokens(dl_model *m, const dl_tokfile *f, int B, int T, uint64_t max_tokens, dl_eval_result *res,
                   dl_error *err);

/* The student against a teacher on the same windows as dl_eval_tokens. Per scored position,
 * over the student's V ids (a teacher with a larger vocabulary is renormalised over them):
 *   kl         KL(teacher || student) = sum_i p_i (log p_i - log q_i), nats
 *   agreement  1 when the two argmaxes are the same id (ties: the lower id)
 *   top5       |top-5 ids of teacher  intersected with  top-5 of student| / 5 (min(5, V) for tiny V)
 * all averaged over positions; teacher_loss is the teacher's own next-token loss there.
 * The teacher runs one window at a time (its activations are (1,T)), so its logits and the
 * student's (B,T,V) are never both held for a whole batch. Both models get training buffers
 * if theirs are too small. */
typedef struct dl_eval_teacher_result {
    dl_eval_result student; /* loss, perplexity, speed of the student */
    double kl, agreement, top5;
    double teacher_loss;
} dl_eval_teacher_result;

int dl_eval_teacher(dl_model *student, dl_model *teacher, const dl_tokfile *f, int B, int T, uint64_t max_tokens,
                    dl_eval_teacher_result *res, dl_error *err);

#endif
