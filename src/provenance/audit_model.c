/* The harvest score: each raw feature mapped to [0, 1] (1 = like bulk collection), then the
 * weighted mean of those that could be measured. Weights and thresholds are this one table; they
 * are round numbers chosen from what harvesting needs (many varied prompts, logprobs for
 * distillation, long completions, machine pacing), not fitted. One change followed the first
 * bench/audit runs: saturation 0.10 -> 0.05 and steadiness 0.05 -> 0.10, as ordinary clients run
 * into small max_tokens too, while activity without pauses is what tells a script from a person.
 * A second round of bench runs (seeds 3-5, per-key dumps) led to two changes that are not weights:
 * steadiness needs 16 requests, and group members sharing the group's template are flagged with it
 * (audit_measure.c, audit_analyse.c); weights and thresholds were left as they were. */
#include "audit_internal.h"
#include <math.h>
#include <stdio.h>

const dl_audit_model dl_audit_model_default = {
    .name = {"logprobs", "template", "saturation", "regularity", "steadiness", "hours", "volume", "breadth", "spread"},
    .meaning =
        {
            "share of its requests that ask for logprobs",
            "min(1, mean Jaccard similarity of its distinct prompts / similarity_full) x distinct-prompt ratio: "
            "many different prompts cut from one template (one prompt repeated scores 0)",
            "share of its completed requests whose completion reached max_tokens (x n choices)",
            "max(0, -B), B = (sd - mean) / (sd + mean) of the gaps between requests: 0 for random (Poisson) or "
            "bursty arrivals, 1 for a metronome",
            "share of equal slices of its active period, one per two requests, that hold a request: 1 for even "
            "pacing, 0.86 for random (Poisson) arrivals, low for bursts separated by pauses; measured from 16 requests",
            "(hours of the day active - hours_floor) / (24 - hours_floor), clamped; only for keys active over "
            "hours_min_days or more",
            "log10(requests / the median key's requests) / volume_decades, clamped to [0, 1]",
            "distinct content words / content-word uses over its distinct prompts (words in half its prompts or "
            "more are the template's or grammar's and left out)",
            "(keys - 1) / (spread_full - 1), clamped: 0 for a single key",
        },
    .weight = {0.25, 0.20, 0.05, 0.10, 0.10, 0.05, 0.10, 0.05, 0.10},
    .threshold = 0.5,
    .member_min = 0.35,
    .min_requests = 5,
    .similarity_full = 0.5,
    .volume_decades = 2,
    .spread_full = 5,
    .hours_min_days = 2,
    .hours_floor = 8,
    .link_jaccard = 0.5,
    .address_max_keys = 16,
    .lockstep_window = 0.1,
    .lockstep_share = 0.8,
    .sim_sample = 1024,
};

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static double template_value(const dl_audit_model *m, const dl_audit_features *x) {
    if (x->with_text == 0) return NAN; /* no prompt texts: not measurable */
    if (x->distinct_prompts < 2 || isnan(x->similarity)) return 0;
    return clamp01(x->similarity / m->similarity_full) * x->distinct_ratio;
}

void audit_values(const dl_audit_model *m, const dl_audit_features *x, double v[DL_AUDIT_NF]) {
    v[DL_AUDIT_F_LOGPROBS] = x->logprobs_share;
    v[DL_AUDIT_F_TEMPLATE] = template_value(m, x);
    v[DL_AUDIT_F_SATURATION] = x->saturation;
    v[DL_AUDIT_F_REGULARITY] = isnan(x->burstiness) ? NAN : clamp01(-x->burstiness);
    v[DL_AUDIT_F_STEADINESS] = x->steadiness;
    v[DL_AUDIT_F_HOURS] = isnan(x->hours_active) ? NAN : clamp01((x->hours_active - m->hours_floor) / (24 - m->hours_floor));
    v[DL_AUDIT_F_VOLUME] = x->volume_ratio > 0 ? clamp01(log10(x->volume_ratio) / m->volume_decades) : NAN;
    v[DL_AUDIT_F_BREADTH] = x->breadth;
    v[DL_AUDIT_F_SPREAD] = clamp01((double)(x->keys - 1) / (m->spread_full - 1));
}

double audit_score(const dl_audit_model *m, const double v[DL_AUDIT_NF]) {
    double num = 0, den = 0;
    for (int f = 0; f < DL_AUDIT_NF; f++)
        if (!isnan(v[f])) {
            num += m->weight[f] * v[f];
            den += m->weight[f];
        }
    return den > 0 ? num / den : 0;
}

static void reason(const dl_audit_features *x, int f, char *out) {
    switch (f) {
    case DL_AUDIT_F_LOGPROBS:
        snprintf(out, DL_AUDIT_REASON_MAX, "asks for logprobs on %.0f%% of its requests", 100 * x->logprobs_share);
        break;
    case DL_AUDIT_F_TEMPLATE:
        snprintf(out, DL_AUDIT_REASON_MAX,
                 "its %lld distinct prompts share a template (mean Jaccard similarity %.2f of their word 3-shingles; "
                 "unrelated prompts score near 0)",
                 x->distinct_prompts, x->similarity);
        break;
    case DL_AUDIT_F_SATURATION:
        snprintf(out, DL_AUDIT_REASON_MAX, "%.0f%% of its completions run to max_tokens", 100 * x->saturation);
        break;
    case DL_AUDIT_F_REGULARITY:
        snprintf(out, DL_AUDIT_REASON_MAX,
                 "requests come at regular intervals (gaps vary by %.2f of their mean; random arrivals vary by 1)",
                 x->gap_cv);
        break;
    case DL_AUDIT_F_STEADINESS:
        snprintf(out, DL_AUDIT_REASON_MAX, "active in %.0f%% of the slices of its active period, without pauses",
                 100 * x->steadiness);
        break;
    case DL_AUDIT_F_HOURS:
        snprintf(out, DL_AUDIT_REASON_MAX, "active in %.0f of the 24 hours of the day", x->hours_active);
        break;
    case DL_AUDIT_F_VOLUME:
        snprintf(out, DL_AUDIT_REASON_MAX, "sends %.0fx the requests of the median key (%lld)", x->volume_ratio,
                 x->requests);
        break;
    case DL_AUDIT_F_BREADTH:
        snprintf(out, DL_AUDIT_REASON_MAX, "its prompts sweep many topics (%.0f%% of content-word uses are new words)",
                 100 * x->breadth);
        break;
    default:
        snprintf(out, DL_AUDIT_REASON_MAX, "its traffic is spread over %d keys", x->keys);
        break;
    }
}

/* Features at 0.5 or more, largest weighted value first. */
int dl_audit_reasons(const dl_audit_result *res, const dl_audit_features *x, const double value[DL_AUDIT_NF],
                     char out[][DL_AUDIT_REASON_MAX], int max) {
    const dl_audit_model *m = res->model;
    int order[DL_AUDIT_NF], k = 0;
    for (int f = 0; f < DL_AUDIT_NF; f++)
        if (!isnan(value[f]) && value[f] >= 0.5) order[k++] = f;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && m->weight[order[j]] * value[order[j]] > m->weight[order[j - 1]] * value[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int n = 0;
    for (int i = 0; i < k && n < max; i++) reason(x, order[i], out[n++]);
    return n;
}
