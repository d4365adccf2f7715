/* The whole harvest: every line parsed and mapped, the records split into training and
 * validation, and laid out one record per loader window (layout in harvest_data.h). */
#include "harvest_data.h"
#include <stdlib.h>
#include <string.h>

enum { PROGRESS_MIN_BYTES = 4 << 20 };

typedef struct seq_list { hd_seq *items; size_t n, cap; } seq_list;

static void seq_list_free(seq_list *l) {
    for (size_t i = 0; i < l->cap; i++) hd_seq_free(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

// the next free slot (kept zeroed, so a slot reused after a skipped record keeps its buffers)
static hd_seq *seq_slot(seq_list *l) {
    if (l->n == l->cap) {
        size_t n = l->cap ? 2 * l->cap : 64;
        hd_seq *q = realloc(l->items, n * sizeof *q);
        if (!q) return NULL;
        memset(q + l->cap, 0, (n - l->cap) * sizeof *q);
        l->items = q;
        l->cap = n;
    }
    return &l->items[l->n];
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r", s[i])) return 0;
    return 1;
}

/* Every line into l (records with no target are counted, not kept). */
static int read_records(seq_list *l, const char *path, const char *text, size_t len, const hd_vocab *v, int T,
                        hd_counts *c, dl_error *err) {
    hd_record r = {0};
    dl_progress prog;
    int show = len >= PROGRESS_MIN_BYTES, rc = 0;
    if (show) dl_progress_start(&prog, "harvest KiB", (long)(len >> 10));
    long line = 0;
    for (size_t at = 0; at < len && rc == 0; line++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at;
        hd_seq *s = seq_slot(l);
        if (!s) rc = dl_fail(err, "out of memory");
        else if (n > HD_MAX_LINE) rc = dl_fail(err, "longer than %u bytes", HD_MAX_LINE);
        else if (!blank(text + at, n)) {
            c->records++;
            rc = hd_parse_line(&r, text + at, n, err) || hd_map_record(&r, v, T + 1, s, c, err) ? -1 : 0;
            if (rc == 0 && s->ids.len > (size_t)s->first) l->n++;
        }
        if (rc && !nl && n > 0)
            dl_fail_ctx(err, "the last line has no newline (a harvest stopped while writing? `distil harvest` run "
                             "again cuts it off and resumes)");
        if (rc) dl_fail_ctx(err, "%s line %ld", path, line + 1);
        at = end + 1;
        if (show) dl_progress_update(&prog, (long)(at >> 10), NULL);
    }
    if (show) dl_progress_finish(&prog);
    hd_record_free(&r);
    return rc;
}

/* ---- labels -------------------------------------------------------------------------------------- */

static int labels_alloc(hd_labels *L, size_t records, int T, size_t n_alts) {
    L->n_pos = records * (size_t)T;
    L->n_tokens = L->n_pos + 1;
    L->target = malloc(L->n_pos * sizeof *L->target + 1);
    L->top1 = malloc(L->n_pos * sizeof *L->top1 + 1);
    L->n_alt = malloc(L->n_pos + 1);
    L->alt_at = malloc(L->n_pos * sizeof *L->alt_at + 1);
    L->rest = malloc(L->n_pos * sizeof *L->rest + 1);
    L->ids = malloc(n_alts * sizeof *L->ids + 1);
    L->logp = malloc(n_alts * sizeof *L->logp + 1);
    L->tokens = malloc(L->n_tokens * sizeof *L->tokens);
    return L->target && L->top1 && L->n_alt && L->alt_at && L->rest && L->ids && L->logp && L->tokens ? 0 : -1;
}

/* Record s into window w: its tokens, and per position the target and top-k targets. */
static void fill_window(hd_labels *L, const hd_seq *s, size_t w, int T, int32_t pad) {
    size_t base = w * (size_t)T, len = s->ids.len, ci_alt = 0;
    for (int t = 0; t < T; t++) {
        size_t g = base + (size_t)t, next = (size_t)t + 1;
        L->tokens[g] = (size_t)t < len ? s->ids.data[t] : pad;
        int counted = next < len && next >= (size_t)s->first;
        size_t ci = counted ? next - (size_t)s->first : 0;
        int k = counted ? s->n_alt.data[ci] : 0;
        L->target[g] = counted ? s->ids.data[next] : -1;
        L->top1[g] = counted ? s->top1.data[ci] : -1;
        L->n_alt[g] = (uint8_t)k;
        L->rest[g] = counted ? s->rest[ci] : 0.0f;
        L->alt_at[g] = L->n_alts;
        if (k > 0) {
            memcpy(L->ids + L->n_alts, s->alt_ids.data + ci_alt, (size_t)k * sizeof *L->ids);
            memcpy(L->logp + L->n_alts, s->alt_logp + ci_alt, (size_t)k * sizeof *L->logp);
        }
        L->n_alts += (size_t)k;
        ci_alt += (size_t)k;
    }
}

/* Every 10th record is held out; with fewer than 10, the last one (when there are two or more). */
static int is_val(size_t i, size_t n) { return i % 10 == 9 || (n < 10 && n >= 2 && i == n - 1); }

static int lay_out(hd_set *s, const seq_list *l, int32_t pad, dl_error *err) {
    size_t alts[2] = {0, 0}, recs[2] = {0, 0};
    for (size_t i = 0; i < l->n; i++) {
        int v = is_val(i, l->n);
        recs[v]++;
        alts[v] += l->items[i].alt_ids.len;
    }
    if (labels_alloc(&s->train, recs[0], s->T, alts[0]) || labels_alloc(&s->val, recs[1], s->T, alts[1]))
        return dl_fail(err, "out of memory for %zu harvest records", l->n);
    size_t w[2] = {0, 0};
    for (size_t i = 0; i < l->n; i++) {
        int v = is_val(i, l->n);
        const hd_seq *q = &l->items[i];
        fill_window(v ? &s->val : &s->train, q, w[v]++, s->T, pad);
        for (size_t k = 0; k < q->n_alt.len; k++) s->K = q->n_alt.data[k] > s->K ? q->n_alt.data[k] : s->K;
    }
    s->train.tokens[s->train.n_pos] = s->val.tokens[s->val.n_pos] = pad;
    s->n.used = (long)l->n, s->n.train = (long)recs[0], s->n.val = (long)recs[1];
    return 0;
}

int hd_set_build(hd_set *s, const char *path, const hd_vocab *v, int T, dl_error *err) {
    memset(s, 0, sizeof *s);
    s->T = T;
    if (T < 1) return dl_fail(err, "seq-len must be positive");
    char *text;
    size_t len;
    if (dl_read_file(path, &text, &len, err)) return dl_fail_ctx(err, "harvest");
    s->hash = dl_fingerprint_bytes(text, len);
    seq_list l = {0};
    int rc = read_records(&l, path, text, len, v, T, &s->n, err);
    free(text);
    if (rc == 0 && l.n == 0)
        rc = dl_fail(err, "%s holds no completion to learn from (%ld records read)", path, s->n.records);
    if (rc == 0) rc = lay_out(s, &l, v->eot >= 0 ? v->eot : 0, err);
    seq_list_free(&l);
    return rc;
}

static void labels_free(hd_labels *L) {
    free(L->target), free(L->top1), free(L->n_alt), free(L->alt_at), free(L->rest);
    free(L->ids), free(L->logp), free(L->tokens);
    memset(L, 0, sizeof *L);
}

void hd_set_free(hd_set *s) {
    labels_free(&s->train);
    labels_free(&s->val);
}

int hd_set_write(const hd_set *s, const char *dir, int V, const char *tokenizer_path, dl_error *err) {
    char p[4096];
    if (dl_mkdir_p(dir, err)) return -1;
    if (dl_path_join(p, sizeof p, dir, "train.bin", err) ||
        dl_tokfile_write(p, s->train.tokens, s->train.n_tokens, (uint32_t)V, err))
        return -1;
    if (dl_path_join(p, sizeof p, dir, "val.bin", err) ||
        dl_tokfile_write(p, s->val.tokens, s->val.n_tokens, (uint32_t)V, err))
        return -1;
    return dl_path_join(p, sizeof p, dir, "tokenizer.json", err) || dl_copy_file(tokenizer_path, p, err) ? -1 : 0;
}
