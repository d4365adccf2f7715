/* embedding: token ids to rows of the table, and the scatter-add back. */
#include "ops.h"
#include <string.h>

// tokens (N), table (V,C), out (N,C)
int dl_embedding_forward(float *out, const int32_t *tokens, const float *table, int N, int C, int V) {
    int bad = 0;
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        int32_t tok = tokens[n];
        if (tok < 0 || tok >= V) {
            memset(o, 0, (size_t)C * sizeof(float));
            bad++;
            continue;
        }
        memcpy(o, table + (size_t)tok * C, (size_t)C * sizeof(float));
    }
    return bad;
}

/* Threads split the columns, each walks all rows in order: repeated tokens add up in the
 * same order whatever the thread count. */
#define EMB_COLS 32
void dl_embedding_backward(float *dtable, const float *dout, const int32_t *tokens, int N, int C, int V) {
    int nblocks = (C + EMB_COLS - 1) / EMB_COLS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * EMB_COLS, c1 = c0 + EMB_COLS < C ? c0 + EMB_COLS : C;
        for (int n = 0; n < N; n++) {
            int32_t tok = tokens[n];
            if (tok < 0 || tok >= V) continue;
            float *d = dtable + (size_t)tok * C;
            const float *g = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}
