/* The audit as a whole: rows by key, features and score per key, links into groups, pooled
 * features and score per group, then who is flagged:
 *  - a key on its own when it has min_requests or more and scores >= threshold;
 *  - every member of a group scoring >= threshold that shares the group's prompt template (a
 *    template link joined it), or that scores >= member_min itself: a plainly ordinary key is not
 *    flagged only for sharing an address or a pace with a harvester. */
#include "audit_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local const dl_audit_log *sort_log;

static int cmp_key_time(const void *a, const void *b) {
    const audit_row *x = &sort_log->rows[*(const int *)a], *y = &sort_log->rows[*(const int *)b];
    if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static int cmp_time(const void *a, const void *b) {
    const audit_row *x = &sort_log->rows[*(const int *)a], *y = &sort_log->rows[*(const int *)b];
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Row indices sorted by (key, time), and per key a pointer into them and a count. */
typedef struct {
    int *order, **rows_of, *n_rows_of;
} by_key;

static int split_by_key(const dl_audit_log *L, by_key *b) {
    b->order = malloc((L->n_rows + 1) * sizeof *b->order);
    b->rows_of = calloc((size_t)L->n_keys + 1, sizeof *b->rows_of);
    b->n_rows_of = calloc((size_t)L->n_keys + 1, sizeof *b->n_rows_of);
    if (!b->order || !b->rows_of || !b->n_rows_of) return -1;
    for (size_t i = 0; i < L->n_rows; i++) b->order[i] = (int)i;
    sort_log = L;
    qsort(b->order, L->n_rows, sizeof *b->order, cmp_key_time);
    for (size_t i = 0; i < L->n_rows; i++) {
        int k = L->rows[b->order[i]].key;
        if (!b->n_rows_of[k]++) b->rows_of[k] = b->order + i;
    }
    return 0;
}

static double median_requests(const dl_audit_log *L, const by_key *b) {
    if (L->n_keys == 0) return 0;
    double *v = malloc((size_t)L->n_keys * sizeof *v);
    if (!v) return 0;
    for (int k = 0; k < L->n_keys; k++) v[k] = b->n_rows_of[k];
    qsort(v, (size_t)L->n_keys, sizeof *v, cmp_double);
    double med = L->n_keys % 2 ? v[L->n_keys / 2] : 0.5 * (v[L->n_keys / 2 - 1] + v[L->n_keys / 2]);
    free(v);
    return med;
}

static int score_keys(const dl_audit_log *L, const by_key *b, dl_audit_result *res) {
    const dl_audit_model *m = res->model;
    for (int k = 0; k < L->n_keys; k++) {
        dl_audit_key *key = &res->keys[k];
        key->id = L->keys[k].id;
        memcpy(key->name, L->keys[k].name, sizeof key->name);
        key->group = -1;
        if (audit_measure(L, b->rows_of[k], b->n_rows_of[k], m, &key->x)) return -1;
        key->x.volume_ratio = res->median_requests > 0 ? key->x.requests / res->median_requests : NAN;
        audit_values(m, &key->x, key->value);
        key->score = audit_score(m, key->value);
        key->judged = key->x.requests >= m->min_requests;
    }
    return 0;
}

/* A group's timing is its members' own (request-weighted): one actor paces each key, and the
 * merged stream of several keys is no clock of anything. */
static void member_timing(const dl_audit_result *res, dl_audit_group *g) {
    double w = 0, cv = 0, burst = 0, steady = 0;
    for (int i = 0; i < g->n_members; i++) {
        const dl_audit_features *x = &res->keys[g->members[i]].x;
        if (isnan(x->burstiness)) continue;
        w += (double)x->requests;
        cv += (double)x->requests * (isnan(x->gap_cv) ? 0 : x->gap_cv);
        burst += (double)x->requests * x->burstiness;
        steady += (double)x->requests * x->steadiness;
    }
    g->x.gap_cv = w > 0 ? cv / w : NAN;
    g->x.burstiness = w > 0 ? burst / w : NAN;
    g->x.steadiness = w > 0 ? steady / w : NAN;
}

static int score_group(const dl_audit_log *L, const by_key *b, dl_audit_result *res, dl_audit_group *g) {
    size_t n = 0;
    for (int i = 0; i < g->n_members; i++) n += (size_t)b->n_rows_of[g->members[i]];
    int *rows = malloc((n + 1) * sizeof *rows);
    if (!rows) return -1;
    n = 0;
    for (int i = 0; i < g->n_members; i++) {
        int k = g->members[i];
        memcpy(rows + n, b->rows_of[k], (size_t)b->n_rows_of[k] * sizeof *rows);
        n += (size_t)b->n_rows_of[k];
    }
    sort_log = L;
    qsort(rows, n, sizeof *rows, cmp_time);
    int rc = audit_measure(L, rows, (int)n, res->model, &g->x);
    free(rows);
    if (rc) return -1;
    g->x.keys = g->n_members;
    g->x.volume_ratio = res->median_requests > 0 ? g->x.requests / res->median_requests : NAN;
    member_timing(res, g);
    audit_values(res->model, &g->x, g->value);
    g->score = audit_score(res->model, g->value);
    g->flagged = g->score >= res->model->threshold && g->x.requests >= res->model->min_requests;
    return 0;
}

/* Groups of two or more keys from the link roots; members listed in key order. */
static int make_groups(const dl_audit_log *L, const by_key *b, const audit_links *l, dl_audit_result *res) {
    int K = L->n_keys, *size = calloc((size_t)K + 1, sizeof *size), *gid = malloc(((size_t)K + 1) * sizeof *gid);
    if (!size || !gid) return free(size), free(gid), -1;
    for (int k = 0; k < K; k++) size[l->root[k]]++;
    for (int k = 0; k < K; k++) gid[k] = size[k] >= 2 && l->root[k] == k ? res->n_groups++ : -1;
    res->groups = calloc((size_t)res->n_groups + 1, sizeof *res->groups);
    int rc = res->groups ? 0 : -1;
    for (int k = 0; rc == 0 && k < K; k++) {
        int g = gid[l->root[k]];
        if (g < 0) continue;
        dl_audit_group *gr = &res->groups[g];
        if (!gr->members && !(gr->members = malloc((size_t)size[l->root[k]] * sizeof *gr->members))) rc = -1;
        else {
            gr->members[gr->n_members++] = k;
            res->keys[k].group = g;
            res->keys[k].template_linked = l->template_key[k];
        }
    }
    for (int k = 0; rc == 0 && k < K; k++) {
        if (gid[k] < 0) continue;
        dl_audit_group *gr = &res->groups[gid[k]];
        gr->template_links = l->template_links[k];
        gr->address_links = l->address_links[k];
        gr->lockstep_links = l->lockstep_links[k];
        gr->template_jaccard = gr->template_links ? l->template_jaccard_sum[k] / gr->template_links : NAN;
        if (l->shared_address[k] >= 0) audit_printable(gr->address, sizeof gr->address, L->clients[l->shared_address[k]]);
        rc = score_group(L, b, res, gr);
    }
    free(size);
    free(gid);
    return rc;
}

static void flag(dl_audit_result *res) {
    const dl_audit_model *m = res->model;
    for (int k = 0; k < res->n_keys; k++) {
        dl_audit_key *key = &res->keys[k];
        const dl_audit_group *g = key->group >= 0 ? &res->groups[key->group] : NULL;
        if (key->judged && key->score >= m->threshold) key->flagged = DL_AUDIT_BY_KEY;
        else if (g && g->flagged && (key->template_linked || key->score >= m->member_min)) key->flagged = DL_AUDIT_BY_GROUP;
    }
}

static double rank_of(const dl_audit_result *res, const dl_audit_key *k) {
    double g = k->group >= 0 ? res->groups[k->group].score : 0;
    return k->score > g ? k->score : g;
}

static _Thread_local const dl_audit_result *sort_res;

static int cmp_keys(const void *a, const void *b) {
    const dl_audit_key *x = a, *y = b;
    double rx = rank_of(sort_res, x), ry = rank_of(sort_res, y);
    if (rx != ry) return rx > ry ? -1 : 1;
    if (x->group != y->group) return (x->group > y->group) - (x->group < y->group);
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Groups by score (ties: first member); keys by rank; indices remapped both ways. */
static int order(dl_audit_result *res) {
    int G = res->n_groups, *perm = malloc(((size_t)G + 1) * sizeof *perm), *inv = malloc(((size_t)G + 1) * sizeof *inv);
    dl_audit_group *sorted = malloc(((size_t)G + 1) * sizeof *sorted);
    if (!perm || !inv || !sorted) return free(perm), free(inv), free(sorted), -1;
    for (int i = 0; i < G; i++) perm[i] = i;
    for (int i = 1; i < G; i++) /* insertion sort: groups are few */
        for (int j = i; j > 0 && res->groups[perm[j]].score > res->groups[perm[j - 1]].score; j--) {
            int t = perm[j];
            perm[j] = perm[j - 1];
            perm[j - 1] = t;
        }
    for (int i = 0; i < G; i++) {
        sorted[i] = res->groups[perm[i]];
        inv[perm[i]] = i;
    }
    memcpy(res->groups, sorted, (size_t)G * sizeof *sorted);
    for (int k = 0; k < res->n_keys; k++)
        if (res->keys[k].group >= 0) res->keys[k].group = inv[res->keys[k].group];
    sort_res = res;
    qsort(res->keys, (size_t)res->n_keys, sizeof *res->keys, cmp_keys);
    for (int g = 0; g < G; g++) res->groups[g].n_members = 0;
    for (int k = 0; k < res->n_keys; k++) {
        dl_audit_group *g = res->keys[k].group >= 0 ? &res->groups[res->keys[k].group] : NULL;
        if (g) g->members[g->n_members++] = k;
    }
    free(perm);
    free(inv);
    free(sorted);
    return 0;
}

static void summary(const dl_audit_log *L, dl_audit_result *res) {
    res->requests = (long long)L->n_rows;
    res->skipped_rows = L->skipped;
    res->first = INFINITY;
    res->last = -INFINITY;
    for (size_t i = 0; i < L->n_rows; i++) {
        if (L->rows[i].t < res->first) res->first = L->rows[i].t;
        if (L->rows[i].t > res->last) res->last = L->rows[i].t;
    }
    if (L->n_rows == 0) res->first = res->last = NAN;
    for (int p = 0; p < L->n_prompts && !res->prompts_logged; p++) res->prompts_logged = L->prompts[p].has_text;
}

int dl_audit_analyse(const dl_audit_log *L, dl_audit_result *res, dl_error *err) {
    memset(res, 0, sizeof *res);
    res->model = &dl_audit_model_default;
    summary(L, res);
    by_key b = {0};
    audit_links l = {0};
    int rc = split_by_key(L, &b);
    res->keys = rc ? NULL : calloc((size_t)L->n_keys + 1, sizeof *res->keys);
    res->n_keys = L->n_keys;
    if (!res->keys) rc = -1;
    if (rc == 0) {
        res->median_requests = median_requests(L, &b);
        rc = score_keys(L, &b, res);
    }
    if (rc == 0 && audit_link_keys(L, b.rows_of, b.n_rows_of, res->model, &l, err)) rc = -2;
    if (rc == 0) {
        res->proxies = l.proxies;
        rc = make_groups(L, &b, &l, res);
    }
    if (rc == 0) {
        flag(res);
        rc = order(res);
    }
    audit_links_free(&l);
    free(b.order);
    free(b.rows_of);
    free(b.n_rows_of);
    if (rc) {
        dl_audit_result_free(res);
        return rc == -2 ? -1 : dl_fail(err, "out of memory auditing %zu requests", L->n_rows);
    }
    return 0;
}

void dl_audit_result_free(dl_audit_result *res) {
    for (int g = 0; res->groups && g < res->n_groups; g++) free(res->groups[g].members);
    free(res->groups);
    free(res->keys);
    memset(res, 0, sizeof *res);
}
