/* Wording shared by the audit's table, JSON and report. */
#include "audit_internal.h"
#include <math.h>
#include <time.h>

void audit_format_time(double t, char *out, size_t n) {
    if (!isfinite(t) || t < -62135596800.0 || t > 253402300799.0) { /* outside years 1..9999 */
        snprintf(out, n, "-");
        return;
    }
    time_t s = (time_t)floor(t);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm)) snprintf(out, n, "-");
}

void audit_group_name(int g, char *out, size_t n) {
    if (g < 0) snprintf(out, n, "-");
    else snprintf(out, n, "g%d", g + 1);
}

const char *audit_flag_word(int flagged) {
    return flagged == DL_AUDIT_BY_KEY ? "key" : flagged == DL_AUDIT_BY_GROUP ? "group" : "-";
}

void audit_group_links(const dl_audit_group *g, char *out, size_t n) {
    char jac[48] = "", addr[96] = "";
    if (g->template_links) snprintf(jac, sizeof jac, " (Jaccard %.2f)", g->template_jaccard);
    if (g->address_links && g->address[0]) snprintf(addr, sizeof addr, " (%s)", g->address);
    snprintf(out, n, "linked by %d shared template%s%s, %d shared address%s%s, %d lock-step timing", g->template_links,
             g->template_links == 1 ? "" : "s", jac, g->address_links, g->address_links == 1 ? "" : "es", addr,
             g->lockstep_links);
}

void audit_summary_line(const dl_audit_result *res, const char *db_name, dl_buf *b) {
    char from[32], to[32];
    audit_format_time(res->first, from, sizeof from);
    audit_format_time(res->last, to, sizeof to);
    int own = 0, via = 0, gf = 0;
    for (int k = 0; k < res->n_keys; k++) {
        own += res->keys[k].flagged == DL_AUDIT_BY_KEY;
        via += res->keys[k].flagged == DL_AUDIT_BY_GROUP;
    }
    for (int g = 0; g < res->n_groups; g++) gf += res->groups[g].flagged;
    dl_buf_printf(b, "audit of %s: %lld requests from %d keys, %s to %s UTC; ", db_name, res->requests, res->n_keys, from,
                  to);
    if (res->prompts_logged) dl_buf_printf(b, "prompt texts logged.\n");
    else
        dl_buf_printf(b, "no prompt texts (served with --no-log-prompts?): the audit works from prompt hashes, counts "
                         "and timing, without the template and breadth features.\n");
    if (res->skipped_rows) dl_buf_printf(b, "%lld rows skipped: malformed values.\n", res->skipped_rows);
    if (res->proxies)
        dl_buf_printf(b, "%d client address%s shared by more than %d keys: taken for proxies, not links.\n", res->proxies,
                      res->proxies == 1 ? "" : "es", res->model->address_max_keys);
    dl_buf_printf(b, "threshold %.2f: %d keys flagged (%d on their own, %d through their group); %d groups of 2+ keys, %d flagged.\n",
                  res->model->threshold, own + via, own, via, res->n_groups, gf);
}

void audit_key_columns(const dl_audit_key *k, double v[AUDIT_N_COLUMNS]) {
    v[0] = k->x.distinct_ratio;
    v[1] = k->x.similarity;
    v[2] = k->x.logprobs_share;
    v[3] = k->x.saturation;
    v[4] = k->value[DL_AUDIT_F_REGULARITY];
    v[5] = k->x.steadiness;
    v[6] = k->x.breadth;
}
