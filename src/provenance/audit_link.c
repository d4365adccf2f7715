/* Keys that look like one actor are joined (union-find) by three kinds of link, in this order:
 *  - template: the shingles each key uses in half its prompts (its template) have an estimated
 *    Jaccard similarity >= link_jaccard; candidates come from LSH over the MinHash signatures
 *    (32 bands of 2 slots: a pair at Jaccard 0.5 shares a band with probability 1 - 0.75^32);
 *  - address: the keys used one client address (unless more than address_max_keys did: a proxy);
 *  - lock-step: two keys of similar pace whose requests nearly coincide (within lockstep_window of
 *    the mean gap) for lockstep_share of the requests of each; keys in lock-step have the same pace,
 *    so each key is compared with the LOCKSTEP_NEIGHBOURS keys next to it in pace only.
 * Template and lock-step links count when they join two groups that were apart (pairs already
 * together are not checked again); address links count every key beyond the first on an address.
 * Nothing here is quadratic in requests:
 * template candidates come from buckets, lock-step compares a bounded number of keys of similar
 * pace, each pair in time linear in their requests (less: it stops at the first misses too many). */
#include "audit_internal.h"
#include <stdlib.h>
#include <string.h>

#define BANDS 32
#define BAND_ROWS (AUDIT_SIG / BANDS)
#define BUCKET_ALL_PAIRS 64 /* larger buckets: each key is checked against the first 8 only */
#define LOCKSTEP_NEIGHBOURS 256 /* a key is checked against this many keys of the next paces */

static int find(int *root, int k) {
    while (root[k] != k) k = root[k] = root[root[k]];
    return k;
}

/* Joins a and b; returns the new root or -1 when they were together already. Counters move to it. */
static int unite(audit_links *l, int a, int b) {
    a = find(l->root, a);
    b = find(l->root, b);
    if (a == b) return -1;
    if (b < a) {
        int t = a;
        a = b;
        b = t;
    }
    l->root[b] = a;
    l->template_links[a] += l->template_links[b];
    l->address_links[a] += l->address_links[b];
    l->lockstep_links[a] += l->lockstep_links[b];
    l->template_jaccard_sum[a] += l->template_jaccard_sum[b];
    if (l->shared_address[a] < 0) l->shared_address[a] = l->shared_address[b];
    return a;
}

typedef struct { uint64_t h; int key; } band_entry;

static int cmp_band(const void *a, const void *b) {
    const band_entry *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

static void template_pair(audit_links *l, const uint32_t *sig, int a, int b, double min_j) {
    if (find(l->root, a) == find(l->root, b)) return;
    double j = audit_sig_jaccard(sig + (size_t)a * AUDIT_SIG, sig + (size_t)b * AUDIT_SIG);
    if (j < min_j) return;
    int r = unite(l, a, b);
    l->template_links[r]++;
    l->template_key[a] = l->template_key[b] = 1;
    l->template_jaccard_sum[r] += j;
}

static int link_templates(const dl_audit_log *L, int *const *rows_of, const int *n_rows_of, const dl_audit_model *m,
                          audit_links *l) {
    int K = L->n_keys, n = 0;
    uint32_t *sig = malloc(((size_t)K + 1) * AUDIT_SIG * sizeof *sig);
    int *has = malloc(((size_t)K + 1) * sizeof *has);
    band_entry *e = malloc(((size_t)K + 1) * sizeof *e);
    int rc = sig && has && e ? 0 : -1;
    for (int k = 0; rc == 0 && k < K; k++) {
        rc = audit_template_sig(L, rows_of[k], n_rows_of[k], sig + (size_t)k * AUDIT_SIG, &has[k]);
        n += has[k];
    }
    for (int b = 0; rc == 0 && n > 1 && b < BANDS; b++) {
        int c = 0;
        for (int k = 0; k < K; k++) {
            if (!has[k]) continue;
            const uint32_t *s = sig + (size_t)k * AUDIT_SIG + b * BAND_ROWS;
            uint64_t h = audit_mix((uint64_t)b);
            for (int r = 0; r < BAND_ROWS; r++) h = audit_mix(h ^ s[r]);
            e[c++] = (band_entry){h, k};
        }
        qsort(e, (size_t)c, sizeof *e, cmp_band);
        for (int i = 0, j; i < c; i = j) {
            for (j = i; j < c && e[j].h == e[i].h; j++) {}
            int all = j - i <= BUCKET_ALL_PAIRS;
            for (int x = i; x < j; x++)
                for (int y = x + 1; y < j && (all || x - i < 8); y++) template_pair(l, sig, e[x].key, e[y].key, m->link_jaccard);
        }
    }
    free(sig);
    free(has);
    free(e);
    return rc;
}

typedef struct { int client, key; } use;

static int cmp_use(const void *a, const void *b) {
    const use *x = a, *y = b;
    if (x->client != y->client) return (x->client > y->client) - (x->client < y->client);
    return (x->key > y->key) - (x->key < y->key);
}

static int link_addresses(const dl_audit_log *L, const dl_audit_model *m, audit_links *l) {
    use *u = malloc((L->n_rows + 1) * sizeof *u);
    if (!u) return -1;
    size_t n = 0;
    for (size_t i = 0; i < L->n_rows; i++)
        if (L->rows[i].client >= 0) u[n++] = (use){L->rows[i].client, L->rows[i].key};
    qsort(u, n, sizeof *u, cmp_use);
    size_t d = 0; /* distinct (client, key) pairs */
    for (size_t i = 0; i < n; i++)
        if (d == 0 || u[i].client != u[d - 1].client || u[i].key != u[d - 1].key) u[d++] = u[i];
    for (size_t i = 0, j; i < d; i = j) {
        for (j = i; j < d && u[j].client == u[i].client; j++) {}
        if ((int)(j - i) > m->address_max_keys) {
            l->proxies++;
            continue;
        }
        for (size_t k = i + 1; k < j; k++) { /* counted even between keys linked already */
            unite(l, u[i].key, u[k].key);
            int r = find(l->root, u[i].key);
            l->address_links[r]++;
            if (l->shared_address[r] < 0) l->shared_address[r] = u[i].client;
        }
    }
    free(u);
    return 0;
}

/* Whether at least share of a's requests have one of b's within w seconds (both sorted by time);
 * stops as soon as too many have missed, which is at once for unrelated keys. */
static int coincide(const dl_audit_log *L, const int *a, int na, const int *b, int nb, double w, double share) {
    int miss = 0, allowed = (int)((1 - share) * na + 1e-9); /* 1 - 0.8 is not quite 0.2 */
    for (int i = 0, j = 0; i < na && miss <= allowed; i++) {
        double t = L->rows[a[i]].t;
        while (j < nb && L->rows[b[j]].t < t - w) j++;
        miss += !(j < nb && L->rows[b[j]].t <= t + w);
    }
    return miss <= allowed;
}

typedef struct { double gap; int key; } paced;

static int cmp_paced(const void *a, const void *b) {
    double x = ((const paced *)a)->gap, y = ((const paced *)b)->gap;
    return (x > y) - (x < y);
}

static int link_lockstep(const dl_audit_log *L, int *const *rows_of, const int *n_rows_of, const dl_audit_model *m,
                         audit_links *l) {
    paced *p = malloc(((size_t)L->n_keys + 1) * sizeof *p);
    if (!p) return -1;
    int n = 0;
    for (int k = 0; k < L->n_keys; k++) {
        int c = n_rows_of[k];
        if (c < m->min_requests) continue;
        double span = L->rows[rows_of[k][c - 1]].t - L->rows[rows_of[k][0]].t;
        if (span > 0) p[n++] = (paced){span / (c - 1), k};
    }
    qsort(p, (size_t)n, sizeof *p, cmp_paced);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n && j - i <= LOCKSTEP_NEIGHBOURS && p[j].gap <= 2 * p[i].gap; j++) {
            int a = p[i].key, b = p[j].key;
            if (find(l->root, a) == find(l->root, b)) continue;
            double w = m->lockstep_window * p[i].gap; /* p[i] has the smaller gap */
            if (!coincide(L, rows_of[a], n_rows_of[a], rows_of[b], n_rows_of[b], w, m->lockstep_share) ||
                !coincide(L, rows_of[b], n_rows_of[b], rows_of[a], n_rows_of[a], w, m->lockstep_share))
                continue;
            l->lockstep_links[unite(l, a, b)]++;
        }
    free(p);
    return 0;
}

void audit_links_free(audit_links *l) {
    free(l->root);
    free(l->template_links);
    free(l->address_links);
    free(l->lockstep_links);
    free(l->template_jaccard_sum);
    free(l->shared_address);
    free(l->template_key);
    memset(l, 0, sizeof *l);
}

int audit_link_keys(const dl_audit_log *L, int *const *rows_of, const int *n_rows_of, const dl_audit_model *m,
                    audit_links *l, dl_error *err) {
    size_t K = (size_t)L->n_keys + 1;
    memset(l, 0, sizeof *l);
    l->root = malloc(K * sizeof *l->root);
    l->template_links = calloc(K, sizeof *l->template_links);
    l->address_links = calloc(K, sizeof *l->address_links);
    l->lockstep_links = calloc(K, sizeof *l->lockstep_links);
    l->template_jaccard_sum = calloc(K, sizeof *l->template_jaccard_sum);
    l->shared_address = malloc(K * sizeof *l->shared_address);
    l->template_key = calloc(K, sizeof *l->template_key);
    if (!l->root || !l->template_links || !l->address_links || !l->lockstep_links || !l->template_jaccard_sum ||
        !l->shared_address || !l->template_key) {
        audit_links_free(l);
        return dl_fail(err, "out of memory linking keys");
    }
    for (int k = 0; k < L->n_keys; k++) {
        l->root[k] = k;
        l->shared_address[k] = -1;
    }
    if (link_templates(L, rows_of, n_rows_of, m, l) || link_addresses(L, m, l) ||
        link_lockstep(L, rows_of, n_rows_of, m, l)) {
        audit_links_free(l);
        return dl_fail(err, "out of memory linking keys");
    }
    for (int k = 0; k < L->n_keys; k++) l->root[k] = find(l->root, k); /* root[k]: its group's root */
    return 0;
}
