/* The audit as one JSON object:
 *   {"db", "requests", "skipped_rows", "prompts_logged", "first", "last", "median_requests",
 *    "proxies", "model": {"threshold", "member_min", "min_requests", "weights": {...}},
 *    "keys": [{"id", "name", "group", "score", "flagged", "flagged_by", "judged", "template_linked", "counts": {...},
 *              "features": {...raw...}, "values": {...in [0, 1]...}, "reasons": [...]}],
 *    "groups": [{"id", "keys": [names], "key_ids", "score", "flagged", "links": {...}, "counts",
 *                "features", "values", "reasons"}]}
 * Unmeasured features are null. */
#include "audit_internal.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *features(const dl_audit_features *x) {
    json_t *o = json_object();
    json_object_set_new(o, "distinct_ratio", num(x->distinct_ratio));
    json_object_set_new(o, "similarity", num(x->similarity));
    json_object_set_new(o, "logprobs_share", num(x->logprobs_share));
    json_object_set_new(o, "saturation", num(x->saturation));
    json_object_set_new(o, "gap_cv", num(x->gap_cv));
    json_object_set_new(o, "burstiness", num(x->burstiness));
    json_object_set_new(o, "steadiness", num(x->steadiness));
    json_object_set_new(o, "hours_active", num(x->hours_active));
    json_object_set_new(o, "breadth", num(x->breadth));
    json_object_set_new(o, "volume_ratio", num(x->volume_ratio));
    return o;
}

static json_t *counts(const dl_audit_features *x) {
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)x->requests, "prompt_tokens",
                     (json_int_t)x->prompt_tokens, "completion_tokens", (json_int_t)x->completion_tokens, "with_prompt",
                     (json_int_t)x->with_prompt, "distinct_prompts", (json_int_t)x->distinct_prompts, "with_text",
                     (json_int_t)x->with_text);
}

static json_t *values(const dl_audit_model *m, const double *v) {
    json_t *o = json_object();
    for (int f = 0; f < DL_AUDIT_NF; f++) json_object_set_new(o, m->name[f], num(v[f]));
    return o;
}

static json_t *reasons(const dl_audit_result *res, const dl_audit_features *x, const double *v) {
    char why[DL_AUDIT_NF][DL_AUDIT_REASON_MAX];
    int n = dl_audit_reasons(res, x, v, why, DL_AUDIT_NF);
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(why[i]));
    return a;
}

static json_t *group_id(int g) {
    if (g < 0) return json_null();
    char name[16];
    audit_group_name(g, name, sizeof name);
    return json_string(name);
}

static json_t *key_json(const dl_audit_result *res, const dl_audit_key *k) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(k->id));
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "group", group_id(k->group));
    json_object_set_new(o, "score", json_real(k->score));
    json_object_set_new(o, "flagged", json_boolean(k->flagged));
    json_object_set_new(o, "flagged_by", k->flagged ? json_string(audit_flag_word(k->flagged)) : json_null());
    json_object_set_new(o, "judged", json_boolean(k->judged));
    json_object_set_new(o, "template_linked", json_boolean(k->template_linked));
    json_object_set_new(o, "counts", counts(&k->x));
    json_object_set_new(o, "features", features(&k->x));
    json_object_set_new(o, "values", values(res->model, k->value));
    json_object_set_new(o, "reasons", reasons(res, &k->x, k->value));
    return o;
}

static json_t *group_json(const dl_audit_result *res, int g) {
    const dl_audit_group *gr = &res->groups[g];
    json_t *o = json_object(), *names = json_array(), *ids = json_array();
    for (int i = 0; i < gr->n_members; i++) {
        json_array_append_new(names, json_string(res->keys[gr->members[i]].name));
        json_array_append_new(ids, json_integer(res->keys[gr->members[i]].id));
    }
    json_object_set_new(o, "id", group_id(g));
    json_object_set_new(o, "keys", names);
    json_object_set_new(o, "key_ids", ids);
    json_object_set_new(o, "score", json_real(gr->score));
    json_object_set_new(o, "flagged", json_boolean(gr->flagged));
    json_object_set_new(o, "links", json_pack("{s:i, s:o, s:i, s:s?, s:i}", "template", gr->template_links,
                                              "template_jaccard", num(gr->template_jaccard), "address",
                                              gr->address_links, "shared_address", gr->address[0] ? gr->address : NULL,
                                              "lockstep", gr->lockstep_links));
    json_object_set_new(o, "counts", counts(&gr->x));
    json_object_set_new(o, "features", features(&gr->x));
    json_object_set_new(o, "values", values(res->model, gr->value));
    json_object_set_new(o, "reasons", reasons(res, &gr->x, gr->value));
    return o;
}

static json_t *model_json(const dl_audit_model *m) {
    json_t *w = json_object();
    for (int f = 0; f < DL_AUDIT_NF; f++) json_object_set_new(w, m->name[f], json_real(m->weight[f]));
    return json_pack("{s:f, s:f, s:i, s:o}", "threshold", m->threshold, "member_min", m->member_min, "min_requests",
                     m->min_requests, "weights", w);
}

char *dl_audit_json(const dl_audit_result *res, const char *db_name) {
    json_t *o = json_object(), *keys = json_array(), *groups = json_array();
    char from[32], to[32], db[1024];
    audit_format_time(res->first, from, sizeof from);
    audit_format_time(res->last, to, sizeof to);
    audit_printable(db, sizeof db, db_name);
    json_object_set_new(o, "db", json_string(db));
    json_object_set_new(o, "requests", json_integer(res->requests));
    json_object_set_new(o, "skipped_rows", json_integer(res->skipped_rows));
    json_object_set_new(o, "prompts_logged", json_boolean(res->prompts_logged));
    json_object_set_new(o, "first", json_string(from));
    json_object_set_new(o, "last", json_string(to));
    json_object_set_new(o, "median_requests", json_real(res->median_requests));
    json_object_set_new(o, "proxies", json_integer(res->proxies));
    json_object_set_new(o, "model", model_json(res->model));
    for (int k = 0; k < res->n_keys; k++) json_array_append_new(keys, key_json(res, &res->keys[k]));
    for (int g = 0; g < res->n_groups; g++) json_array_append_new(groups, group_json(res, g));
    json_object_set_new(o, "keys", keys);
    json_object_set_new(o, "groups", groups);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    return s;
}
