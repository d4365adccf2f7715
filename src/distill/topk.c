/* The top-k summary of one teacher row: what the cache stores per position. */
#include "distill.h"
#include "formats/safetensors.h"
#include <math.h>

// a before b: larger first, then lower id
static int ranks_before(float la, int a, float lb, int b) { return la > lb || (la == lb && a < b); }

/* Keeps ids[0..K) sorted best first while scanning; most entries fail the first comparison
 * against the current K-th, so this is close to one pass over the row. */
static int select_topk(const float *x, int V, int K, int32_t *ids) {
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (n == K && !ranks_before(x[v], v, x[ids[K - 1]], ids[K - 1])) continue;
        int i = n < K ? n++ : K - 1;
        while (i > 0 && ranks_before(x[v], v, x[ids[i - 1]], ids[i - 1])) {
            ids[i] = ids[i - 1];
            i--;
        }
        ids[i] = v;
    }
    return n;
}

void dl_topk_row(const float *logits, int V, int K, float *scratch, int32_t *ids, uint16_t *logp_f16, float *rest) {
    float mx = logits[0];
    for (int v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double s = 0.0;
    for (int v = 0; v < V; v++) {
        scratch[v] = logits[v] - mx;
        s += exp((double)scratch[v]);
    }
    float lse = (float)log(s);
    for (int v = 0; v < V; v++) scratch[v] -= lse; // log-softmax
    int n = select_topk(scratch, V, K, ids);
    double kept = 0.0;
    for (int k = 0; k < n; k++) {
        float lp = scratch[ids[k]];
        logp_f16[k] = dl_f32_to_f16(lp > -65504.0f ? lp : -65504.0f); // fp16's range: never -inf
        kept += exp((double)dl_f16_to_f32(logp_f16[k]));
    }
    // from the rounded values, so stored probabilities and rest add up to one
    *rest = kept < 1.0 ? (float)(1.0 - kept) : 0.0f;
}
