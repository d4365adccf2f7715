/* The audit as a markdown report for a person deciding what to do about a key: what the score
 * means and does not, how it is computed (from the model table itself), the flagged groups and
 * keys with their reasons, and the keys with the highest scores. */
#include "audit_internal.h"
#include <math.h>
#include <string.h>

#define REPORT_TOP_KEYS 50

static void fmt(dl_buf *b, double v) {
    if (isnan(v)) dl_buf_printf(b, " - |");
    else dl_buf_printf(b, " %.2f |", v);
}

static void meaning(const dl_audit_result *res, dl_buf *b) {
    const dl_audit_model *m = res->model;
    dl_buf_printf(b,
                  "## What the score means\n\n"
                  "Each key gets a harvest score in [0, 1]: the weighted mean of the features below that could be "
                  "measured for it, each mapped to [0, 1] where 1 is what bulk collection of a model's outputs looks "
                  "like. A key with %d requests or more is flagged at a score of %.2f or more. Keys that look like one "
                  "actor (shared prompt template, shared client address, lock-step timing) form a group, scored on "
                  "their pooled traffic; when a group scores %.2f or more, its members that share its prompt "
                  "template, or score %.2f or more themselves, are flagged too (a key is not flagged only for sharing "
                  "an address or a pace with a harvester), so a harvester spread over many quiet keys is caught as one.\n\n"
                  "A high score means the traffic resembles harvesting: many varied prompts from templates, logprobs, "
                  "completions run to the limit, machine pacing, volume. It does not prove that the outputs trained a "
                  "model (`distil detect` tests a suspect model for the watermark), nor intent: evaluation suites, "
                  "batch jobs and research scripts can score high, and a harvester who imitates people can score low. "
                  "Read the reasons, then look at the traffic.\n\n",
                  m->min_requests, m->threshold, m->threshold, m->member_min);
}

static void method(const dl_audit_result *res, dl_buf *b) {
    const dl_audit_model *m = res->model;
    dl_buf_printf(b, "## Method\n\nPrompts are compared as sets of word 3-shingles (lowercased words; the chat "
                     "template's role lines are left out), through %d-slot MinHash signatures of the 64 smallest "
                     "shingle hashes of each prompt. Timing measures are ratios, so they do not depend on the time "
                     "unit.\n\n| feature | weight | value in [0, 1] |\n|---|---|---|\n",
                  AUDIT_SIG);
    for (int f = 0; f < DL_AUDIT_NF; f++) dl_buf_printf(b, "| %s | %.2f | %s |\n", m->name[f], m->weight[f], m->meaning[f]);
    dl_buf_printf(b,
                  "\nThresholds (one table, `dl_audit_model_default` in src/provenance/audit_model.c): threshold "
                  "%.2f, member_min %.2f, min_requests %d, similarity_full %.2f, volume_decades %.1f (median key: %.1f "
                  "requests), spread_full %d, hours_min_days %.1f, hours_floor %.0f, sim_sample %d.\n\n"
                  "Links between keys: template (the shingles a key uses in at least half of its prompts, compared by "
                  "MinHash with LSH bands, estimated Jaccard >= %.2f), address (a client address used by 2 to %d keys; "
                  "more is a proxy or NAT and links nothing), lock-step (keys of similar pace whose requests fall "
                  "within %.2f of the mean gap of each other for %.0f%% of both keys' requests).\n\n",
                  m->threshold, m->member_min, m->min_requests, m->similarity_full, m->volume_decades,
                  res->median_requests, m->spread_full, m->hours_min_days, m->hours_floor, m->sim_sample,
                  m->link_jaccard, m->address_max_keys, m->lockstep_window, 100 * m->lockstep_share);
}

static void reason_list(const dl_audit_result *res, const dl_audit_features *x, const double *v, dl_buf *b) {
    char why[DL_AUDIT_NF][DL_AUDIT_REASON_MAX];
    int n = dl_audit_reasons(res, x, v, why, DL_AUDIT_NF);
    for (int i = 0; i < n; i++) dl_buf_printf(b, "- %s\n", why[i]);
    if (n == 0) dl_buf_printf(b, "- no single feature stands out; the score adds up from several\n");
    dl_buf_printf(b, "\n");
}

static void groups(const dl_audit_result *res, dl_buf *b) {
    dl_buf_printf(b, "## Flagged groups\n\n");
    int any = 0;
    for (int g = 0; g < res->n_groups; g++) {
        const dl_audit_group *gr = &res->groups[g];
        if (!gr->flagged) continue;
        char name[16], links[256];
        audit_group_name(g, name, sizeof name);
        audit_group_links(gr, links, sizeof links);
        dl_buf_printf(b, "### %s: score %.2f, %d keys, %lld requests\n\nKeys:", name, gr->score, gr->n_members,
                      gr->x.requests);
        for (int i = 0; i < gr->n_members; i++)
            dl_buf_printf(b, "%s `%s` (%.2f)", i ? "," : "", res->keys[gr->members[i]].name, res->keys[gr->members[i]].score);
        dl_buf_printf(b, "; %s.\n\n", links);
        reason_list(res, &gr->x, gr->value, b);
        any = 1;
    }
    if (!any) dl_buf_printf(b, "None.\n\n");
}

static void keys(const dl_audit_result *res, dl_buf *b) {
    dl_buf_printf(b, "## Flagged keys\n\n");
    int any = 0;
    for (int k = 0; k < res->n_keys; k++) {
        const dl_audit_key *key = &res->keys[k];
        if (!key->flagged) continue;
        char group[16];
        audit_group_name(key->group, group, sizeof group);
        dl_buf_printf(b, "### `%s` (id %lld): score %.2f, %lld requests, flagged %s%s\n\n", key->name, key->id,
                      key->score, key->x.requests, key->flagged == DL_AUDIT_BY_KEY ? "on its own" : "through group ",
                      key->flagged == DL_AUDIT_BY_KEY ? "" : group);
        reason_list(res, &key->x, key->value, b);
        any = 1;
    }
    if (!any) dl_buf_printf(b, "None.\n\n");
}

static void top(const dl_audit_result *res, dl_buf *b) {
    dl_buf_printf(b, "## Keys by score (first %d)\n\n| key | id | group | score | flagged | requests | distinct | "
                     "similarity | logprobs | saturation | regularity | steadiness | breadth |\n"
                     "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
                  REPORT_TOP_KEYS);
    for (int k = 0; k < res->n_keys && k < REPORT_TOP_KEYS; k++) {
        const dl_audit_key *key = &res->keys[k];
        char group[16];
        audit_group_name(key->group, group, sizeof group);
        dl_buf_printf(b, "| `%s` | %lld | %s | %.2f | %s | %lld |", key->name, key->id, group, key->score,
                      audit_flag_word(key->flagged), key->x.requests);
        double v[AUDIT_N_COLUMNS];
        audit_key_columns(key, v);
        for (int c = 0; c < AUDIT_N_COLUMNS; c++) fmt(b, v[c]);
        dl_buf_printf(b, "\n");
    }
}

int dl_audit_write_report(const dl_audit_result *res, const char *db_name, const char *path, dl_error *err) {
    dl_buf b = {0};
    char db[1024];
    audit_printable(db, sizeof db, db_name);
    dl_buf_printf(&b, "# Harvest audit of `%s`\n\n", db);
    audit_summary_line(res, db, &b);
    dl_buf_printf(&b, "\n");
    meaning(res, &b);
    method(res, &b);
    groups(res, &b);
    keys(res, &b);
    top(res, &b);
    int rc = b.data ? dl_write_file_atomic(path, b.data, b.len, err) : dl_fail(err, "out of memory writing the report");
    dl_buf_free(&b);
    return rc;
}
