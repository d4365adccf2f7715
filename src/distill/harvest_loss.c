/* The loss of harvest rows (definition in harvest_data.h): runs of consecutive rows that share
 * a number of top-k targets go to dl_kd_topk in one call, runs of cross-entropy rows to the
 * softmax kernels of ops; both write their rows' gradients in place and zero the rows they do
 * not count, so every row is written exactly once. Each run's mean is weighted by its share of
 * the counted rows, so the result is the mean over all of them. */
#include "harvest_data.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

static int counted(const int32_t *target, int n, int V) { return target[n] >= 0 && target[n] < V; }

static int work_reserve(hd_work *w, int N, int K) {
    if ((size_t)N <= w->cap_rows && (size_t)K <= w->cap_k) return 0;
    size_t rows = (size_t)N > w->cap_rows ? (size_t)N : w->cap_rows, k = (size_t)K > w->cap_k ? (size_t)K : w->cap_k;
    hd_work_free(w);
    w->ids = malloc(rows * k * sizeof *w->ids);
    w->logp = malloc(rows * k * sizeof *w->logp);
    w->rest = malloc(rows * sizeof *w->rest);
    w->lse = malloc(rows * sizeof *w->lse);
    w->ce = malloc(rows * sizeof *w->ce);
    if (!w->ids || !w->logp || !w->rest || !w->lse || !w->ce) return -1;
    w->cap_rows = rows, w->cap_k = k;
    return 0;
}

void hd_work_free(hd_work *w) {
    free(w->ids), free(w->logp), free(w->rest), free(w->lse), free(w->ce);
    memset(w, 0, sizeof *w);
}

/* Rows [0, N) of a run whose counted rows have K top-k targets each, gathered into (N,K). */
static void gather(hd_work *w, int N, int K, int V, const int32_t *target, const size_t *alt_at, const int32_t *ids,
                   const float *logp, const float *rest) {
    for (int n = 0; n < N; n++) {
        int32_t *di = w->ids + (size_t)n * K;
        float *dl = w->logp + (size_t)n * K;
        if (!counted(target, n, V)) { // never read by the loss
            memset(di, 0, (size_t)K * sizeof *di);
            memset(dl, 0, (size_t)K * sizeof *dl);
            w->rest[n] = 0;
            continue;
        }
        memcpy(di, ids + alt_at[n], (size_t)K * sizeof *di);
        memcpy(dl, logp + alt_at[n], (size_t)K * sizeof *dl);
        w->rest[n] = rest[n];
    }
}

/* Cross-entropy rows: the sum of their losses; gradients scale / total each. */
static double ce_run(hd_work *w, float *z, int N, int V, const int32_t *target, float row_scale) {
    dl_crossentropy_forward(w->ce, w->lse, z, target, N, V);
    double s = 0;
    for (int n = 0; n < N; n++)
        if (counted(target, n, V)) s += w->ce[n];
    dl_crossentropy_backward(z, z, w->lse, target, N, V, row_scale);
    return s;
}

/* The end of the run starting at n0 and its class: the top-k count of its counted rows (uncounted
 * rows join any run), -1 when none of its rows counts. */
static int run_end(const int32_t *target, const uint8_t *n_alt, int n0, int N, int V, int *cls) {
    int n = n0;
    *cls = -1;
    for (; n < N; n++) {
        if (!counted(target, n, V)) continue;
        if (*cls < 0) *cls = n_alt[n];
        else if (n_alt[n] != *cls) break;
    }
    return n;
}

int hd_rows_loss(const dl_kd_cfg *cfg, float *z, int N, int V, const int32_t *target, const uint8_t *n_alt,
                 const size_t *alt_at, const int32_t *ids, const float *logp, const float *rest, float scale,
                 hd_work *w, hd_loss *out, dl_error *err) {
    memset(out, 0, sizeof *out);
    int total = 0, K = 1;
    for (int n = 0; n < N; n++)
        if (counted(target, n, V)) total++, K = n_alt[n] > K ? n_alt[n] : K;
    if (work_reserve(w, N, K)) return dl_fail(err, "out of memory for %d rows of top-k targets", N);
    double loss = 0, kd = 0, ce = 0;
    int ce_rows = 0;
    for (int n0 = 0, n1, cls; n0 < N; n0 = n1) {
        n1 = run_end(target, n_alt, n0, N, V, &cls);
        int rows = 0;
        for (int n = n0; n < n1; n++) rows += counted(target, n, V);
        float *zr = z + (size_t)n0 * V;
        if (cls <= 0) {
            double s = ce_run(w, zr, n1 - n0, V, target + n0, total > 0 ? scale / (float)total : 0.0f);
            loss += s, ce += s, ce_rows += rows;
            continue;
        }
        gather(w, n1 - n0, cls, V, target + n0, alt_at + n0, ids, logp, rest + n0);
        dl_kd_stats st;
        if (dl_kd_topk(cfg, zr, w->ids, w->logp, w->rest, cls, target + n0, zr, n1 - n0, V,
                       scale * (float)rows / (float)total, &st, err))
            return -1;
        loss += (double)st.loss * rows, kd += (double)st.kd * rows;
        if (cfg->ce_weight > 0) ce += (double)st.ce * rows, ce_rows += rows;
        out->topk_rows += rows;
    }
    out->rows = total;
    if (total > 0) out->loss = loss / total;
    if (out->topk_rows > 0) out->kd = kd / out->topk_rows;
    out->ce_rows = ce_rows;
    if (ce_rows > 0) out->ce = ce / ce_rows;
    return 0;
}
