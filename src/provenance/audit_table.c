/* The audit as a table: one line per key, highest score first, then why each flagged key or group
 * was flagged. */
#include "audit_internal.h"
#include <math.h>
#include <string.h>

static void cell(FILE *out, double v) {
    if (isnan(v)) fprintf(out, " %8s", "-");
    else fprintf(out, " %8.2f", v);
}

static void key_line(const dl_audit_key *k, FILE *out) {
    char group[16];
    audit_group_name(k->group, group, sizeof group);
    fprintf(out, "%5.2f  %-5s  %-5s  %-24.24s %8lld %10lld %10lld", k->score, group, audit_flag_word(k->flagged), k->name,
            k->x.requests, k->x.prompt_tokens, k->x.completion_tokens);
    double v[AUDIT_N_COLUMNS];
    audit_key_columns(k, v);
    for (int c = 0; c < AUDIT_N_COLUMNS; c++) cell(out, v[c]);
    fputc('\n', out);
}

static void reasons(const dl_audit_result *res, const dl_audit_features *x, const double *value, FILE *out) {
    char why[DL_AUDIT_NF][DL_AUDIT_REASON_MAX];
    int n = dl_audit_reasons(res, x, value, why, DL_AUDIT_NF);
    for (int i = 0; i < n; i++) fprintf(out, "    - %s\n", why[i]);
}

static void flagged_groups(const dl_audit_result *res, FILE *out) {
    for (int g = 0; g < res->n_groups; g++) {
        const dl_audit_group *gr = &res->groups[g];
        if (!gr->flagged) continue;
        char name[16], links[256];
        audit_group_name(g, name, sizeof name);
        audit_group_links(gr, links, sizeof links);
        fprintf(out, "  group %s, score %.2f, %d keys (", name, gr->score, gr->n_members);
        for (int i = 0; i < gr->n_members; i++)
            fprintf(out, "%s%s", i ? ", " : "", res->keys[gr->members[i]].name);
        fprintf(out, "), %s:\n", links);
        reasons(res, &gr->x, gr->value, out);
    }
}

static void flagged_keys(const dl_audit_result *res, FILE *out) {
    for (int k = 0; k < res->n_keys; k++) {
        const dl_audit_key *key = &res->keys[k];
        if (!key->flagged) continue;
        char group[16];
        audit_group_name(key->group, group, sizeof group);
        fprintf(out, "  %s (id %lld), score %.2f%s%s:\n", key->name, key->id, key->score,
                key->flagged == DL_AUDIT_BY_GROUP ? ", flagged through group " : "",
                key->flagged == DL_AUDIT_BY_GROUP ? group : "");
        reasons(res, &key->x, key->value, out);
    }
}

int dl_audit_print_table(const dl_audit_result *res, const char *db_name, FILE *out) {
    dl_buf b = {0};
    audit_summary_line(res, db_name, &b);
    if (b.data) fputs(b.data, out);
    dl_buf_free(&b);
    fprintf(out, "\n%5s  %-5s  %-5s  %-24s %8s %10s %10s %8s %8s %8s %8s %8s %8s %8s\n", "score", "group", "flag", "key",
            "requests", "prompt_tok", "compl_tok", "distinct", "similar", "logprobs", "saturate", "regular", "steady",
            "breadth");
    for (int k = 0; k < res->n_keys; k++) key_line(&res->keys[k], out);
    int any = 0;
    for (int k = 0; k < res->n_keys; k++) any |= res->keys[k].flagged != 0;
    if (any) {
        fprintf(out, "\nwhy:\n");
        flagged_groups(res, out);
        flagged_keys(res, out);
    }
    return ferror(out) ? -1 : 0;
}
