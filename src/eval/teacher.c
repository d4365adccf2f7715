/* A student measured against its teacher: KL(teacher || student), top-1 agreement and top-5
 * overlap per position, besides the student's own loss (see eval.h). */
#include "eval.h"
#include "internal.h"
#include "model/sampler.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct row_stats { double kl, agree, top5, tloss; } row_stats;

// out (V) = log-softmax of x (V)
static void log_softmax(double *out, const float *x, int V) {
    float mx = x[0];
    for (int i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0.0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - mx);
    double lse = mx + log(s);
    for (int i = 0; i < V; i++) out[i] = (double)x[i] - lse;
}

// ids (n) = the n largest entries of x, best first; v rises, so a tie keeps the lower id first
static void top_ids(const float *x, int V, int n, int *ids) {
    int have = 0;
    for (int v = 0; v < V; v++) {
        if (have == n && !(x[v] > x[ids[n - 1]])) continue;
        int i = have < n ? have++ : n - 1;
        while (i > 0 && x[v] > x[ids[i - 1]]) {
            ids[i] = ids[i - 1];
            i--;
        }
        ids[i] = v;
    }
}

// s (V) student logits, t (V) teacher logits over the shared ids; lp, lq: V doubles of scratch
static row_stats compare_row(const float *s, const float *t, int V, int target, double *lp, double *lq) {
    row_stats r = {0};
    log_softmax(lp, t, V);
    log_softmax(lq, s, V);
    for (int i = 0; i < V; i++)
        if (lp[i] > -745.0) r.kl += exp(lp[i]) * (lp[i] - lq[i]); // p underflows to 0 below: term 0
    r.agree = dl_argmax(t, V) == dl_argmax(s, V);
    int n = V < 5 ? V : 5, a[5], b[5], common = 0;
    top_ids(t, V, n, a);
    top_ids(s, V, n, b);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) common += a[i] == b[j];
    r.top5 = (double)common / n;
    r.tloss = -lp[target];
    return r;
}

static int check_pair(const dl_model *s, const dl_model *t, int T, dl_error *err) {
    if (t->cfg.V < s->cfg.V)
        return dl_fail(err, "eval: the teacher's vocab_size %d is smaller than the student's %d", t->cfg.V, s->cfg.V);
    if (T > t->cfg.max_T)
        return dl_fail(err, "eval: sequence length %d exceeds the teacher's max_position_embeddings %d", T,
                       t->cfg.max_T);
    return 0;
}

typedef struct scratch { int32_t *in, *tg; row_stats *rows; } scratch;

// window b of the batch: the teacher's forward, then each scored position against the student
static void score_window(dl_model *s, dl_model *t, const int32_t *in, const int32_t *tg, int b, int T,
                         row_stats *rows) {
    int V = s->cfg.V, Vt = t->cfg.V;
    dl_model_forward(t, in + (size_t)b * T, NULL, 1, T);
#pragma omp parallel
    {
        double *lp = malloc(2 * (size_t)V * sizeof(double)), *lq = lp ? lp + V : NULL;
#pragma omp for schedule(static)
        for (int i = 0; i < T; i++) {
            int target = tg[(size_t)b * T + i];
            rows[i] = (row_stats){NAN, 0, 0, 0};
            if (target < 0 || !lp) continue;
            rows[i] = compare_row(s->logits + ((size_t)b * T + i) * V, t->logits + (size_t)i * Vt, V, target, lp, lq);
        }
        free(lp);
    }
}

static void finish(dl_eval_teacher_result *res, const double sum[4], uint64_t n, double loss_sum, double t0) {
    dl_eval_result *r = &res->student;
    r->seconds = dl_now() - t0;
    r->tokens = n;
    r->mean_loss = loss_sum / (double)n;
    r->perplexity = exp(r->mean_loss);
    r->tokens_per_s = r->seconds > 0 ? (double)n / r->seconds : 0;
    res->kl = sum[0] / (double)n;
    res->agreement = sum[1] / (double)n;
    res->top5 = sum[2] / (double)n;
    res->teacher_loss = sum[3] / (double)n;
}

static int run(dl_model *s, dl_model *t, const dl_tokfile *f, int B, int T, uint64_t P, scratch *w,
               dl_eval_teacher_result *res, dl_error *err) {
    uint64_t n_windows = (P + (uint64_t)T - 1) / (uint64_t)T, scored = 0;
    double sum[4] = {0}, loss_sum = 0, t0 = dl_now();
    dl_progress prog;
    dl_progress_start(&prog, "eval", (long)n_windows);
    for (uint64_t w0 = 0; w0 < n_windows; w0 += (uint64_t)B) {
        int nb = n_windows - w0 < (uint64_t)B ? (int)(n_windows - w0) : B, count = 0;
        for (int b = 0; b < nb; b++)
            count += dl_eval_fill_window(f, w0 + (uint64_t)b, T, P, w->in + (size_t)b * T, w->tg + (size_t)b * T);
        loss_sum += (double)dl_model_forward(s, w->in, w->tg, nb, T) * count;
        for (int b = 0; b < nb; b++) {
            score_window(s, t, w->in, w->tg, b, T, w->rows);
            for (int i = 0; i < T; i++) { // in order: the same sums at any thread count
                if (isnan(w->rows[i].kl)) continue;
                sum[0] += w->rows[i].kl, sum[1] += w->rows[i].agree, sum[2] += w->rows[i].top5,
                    sum[3] += w->rows[i].tloss;
            }
        }
        scored += (uint64_t)count;
        char extra[64];
        snprintf(extra, sizeof extra, "kl %.4f", sum[0] / (double)scored);
        dl_progress_update(&prog, (long)(w0 + (uint64_t)nb), extra);
    }
    dl_progress_finish(&prog);
    finish(res, sum, scored, loss_sum, t0);
    if (!isfinite(res->student.mean_loss) || !isfinite(res->kl) || !isfinite(res->teacher_loss))
        return dl_fail(err, "eval: a loss is not finite (student %g, KL %g, teacher %g): diverged weights?",
                       res->student.mean_loss, res->kl, res->teacher_loss);
    return 0;
}

int dl_eval_teacher(dl_model *s, dl_model *t, const dl_tokfile *f, int B, int T, uint64_t max_tokens,
                    dl_eval_teacher_result *res, dl_error *err) {
    memset(res, 0, sizeof *res);
    if (dl_eval_check_args(s, f, B, T, err) || check_pair(s, t, T, err)) return -1;
    if ((!s->acts || s->B < B || s->T < T) && dl_model_alloc_train(s, B, T, err)) return -1;
    if ((!t->acts || t->T < T) && dl_model_alloc_train(t, 1, T, err)) return -1;
    uint64_t P = f->n_tokens - 1;
    if (max_tokens > 0 && max_tokens < P) P = max_tokens;
    scratch w = {malloc((size_t)B * T * sizeof(int32_t)), malloc((size_t)B * T * sizeof(int32_t)),
                 malloc((size_t)T * sizeof(row_stats))};
    int rc = w.in && w.tg && w.rows ? run(s, t, f, B, T, P, &w, res, err) : dl_fail(err, "eval: out of memory");
    free(w.in), free(w.tg), free(w.rows);
    return rc;
}
