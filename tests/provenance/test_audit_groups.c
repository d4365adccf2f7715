/* Grouping and flagging: keys linked by a shared template, a shared address or lock-step timing;
 * a harvester spread over ten quiet keys is grouped and flagged while ordinary keys are not; a
 * log without prompt texts is audited from hashes and counts. */
#include "audit_fixture.h"
#include <jansson.h>
#include <string.h>

static const dl_audit_key *key_by_id(const dl_audit_result *res, long long id) {
    for (int k = 0; k < res->n_keys; k++)
        if (res->keys[k].id == id) return &res->keys[k];
    return NULL;
}

/* A harvester behind keys first..first+n-1: template prompts, a few shared addresses, its own pace. */
typedef struct harvester {
    long long first;
    int keys, per_key, logprobs; /* logprobs: ask on every request */
    int poisson;                 /* 0: a fixed period per key */
    double period;
} harvester;

static void add_harvester(dl_audit_log *L, dl_rng *r, const harvester *h, int with_text) {
    for (int k = 0; k < h->keys; k++) {
        long long id = h->first + k;
        char name[32], client[32], prompt[512];
        snprintf(name, sizeof name, "bulk-%lld", id);
        snprintf(client, sizeof client, "192.168.7.%d", k % 3 + 1);
        double t = 1.7e9 + 37.0 * k;
        for (int i = 0; i < h->per_key; i++) {
            t += h->poisson ? -h->period * log(1 - dl_rng_float(r)) : h->period * (0.95 + 0.1 * dl_rng_float(r));
            fx_template_prompt(r, prompt);
            fx_add(L, &(fx_req){t, id, name, client, prompt, h->logprobs ? 5 : -1, 64, 64, with_text});
        }
    }
}

static void ordinary_crowd(dl_audit_log *L, dl_rng *r, int n, int with_text) {
    for (int k = 1; k <= n; k++) fx_ordinary(L, r, k, 10 + (int)dl_rng_below(r, 40), with_text);
}

/* Ten keys of four requests each: none can be judged alone, the group is. */
static void test_spread_harvester(void) {
    dl_rng r;
    dl_rng_seed(&r, 11);
    dl_audit_log *L = dl_audit_log_new(NULL);
    ordinary_crowd(L, &r, 40, 1);
    add_harvester(L, &r, &(harvester){.first = 1000, .keys = 10, .per_key = 4, .logprobs = 1, .period = 600}, 1);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    int g = key_by_id(&res, 1000)->group;
    CHECK(g >= 0);
    for (int k = 1000; k < 1010; k++) {
        const dl_audit_key *key = key_by_id(&res, k);
        CHECK_MSG(key->group == g && !key->judged && key->flagged == DL_AUDIT_BY_GROUP, "key %d group %d flagged %d", k,
                  key->group, key->flagged);
    }
    CHECK(g >= 0 && res.groups[g].n_members == 10 && res.groups[g].flagged);
    CHECK(g >= 0 && res.groups[g].template_links >= 1 && res.groups[g].template_jaccard > 0.9);
    for (int k = 1; k <= 40; k++) {
        const dl_audit_key *key = key_by_id(&res, k);
        CHECK_MSG(!key->flagged && key->group != g, "ordinary key %d: score %.2f flagged %d", k, key->score, key->flagged);
    }
    /* the reasons name the features that drove the group's score */
    char why[DL_AUDIT_NF][DL_AUDIT_REASON_MAX];
    int n = g >= 0 ? dl_audit_reasons(&res, &res.groups[g].x, res.groups[g].value, why, DL_AUDIT_NF) : 0;
    CHECK(n >= 2 && strstr(why[0], "logprobs on 100%"));
    int spread = 0;
    for (int i = 0; i < n; i++) spread |= strstr(why[i], "spread over 10 keys") != NULL;
    CHECK(spread);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Enough requests to be judged, each key under the threshold (no logprobs, random pace); the
 * pooled group (one template, ten keys) crosses it. */
static void test_group_crosses_threshold(void) {
    dl_rng r;
    dl_rng_seed(&r, 12);
    dl_audit_log *L = dl_audit_log_new(NULL);
    ordinary_crowd(L, &r, 40, 1);
    add_harvester(L, &r, &(harvester){.first = 2000, .keys = 10, .per_key = 8, .poisson = 1, .period = 900}, 1);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_key *first = key_by_id(&res, 2000);
    const dl_audit_group *g = first->group >= 0 ? &res.groups[first->group] : NULL;
    CHECK(g && g->n_members == 10 && g->flagged && g->score >= res.model->threshold);
    for (int k = 2000; k < 2010; k++) {
        const dl_audit_key *key = key_by_id(&res, k);
        CHECK_MSG(key->judged && key->score < res.model->threshold && key->flagged == DL_AUDIT_BY_GROUP,
                  "key %d score %.3f flagged %d", k, key->score, key->flagged);
    }
    for (int k = 1; k <= 40; k++) CHECK(!key_by_id(&res, k)->flagged);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* In a flagged group, a quiet key that uses the group's template (no logprobs, random pace, short
 * completions: a score under member_min) is flagged with it; an ordinary key that only shares one
 * of the group's addresses is in the group but not flagged. */
static void test_group_members(void) {
    dl_rng r;
    dl_rng_seed(&r, 18);
    dl_audit_log *L = dl_audit_log_new(NULL);
    ordinary_crowd(L, &r, 40, 1);
    add_harvester(L, &r, &(harvester){.first = 6000, .keys = 10, .per_key = 4, .logprobs = 1, .period = 600}, 1);
    char prompt[512];
    double t = 1.7e9;
    for (int i = 0; i < 6; i++) {
        t += -900 * log(1 - dl_rng_float(&r));
        fx_template_prompt(&r, prompt);
        fx_add(L, &(fx_req){t, 6100, "quiet", "10.3.0.1", prompt, -1, 64, 12, 1});
        fx_random_prompt(&r, 12, prompt);
        fx_add(L, &(fx_req){t + 7, 6101, "colleague", "192.168.7.1", prompt, -1, 64, 12, 1});
    }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_key *h = key_by_id(&res, 6000), *quiet = key_by_id(&res, 6100), *mate = key_by_id(&res, 6101);
    CHECK(h->group >= 0 && res.groups[h->group].flagged);
    CHECK(quiet->group == h->group && quiet->template_linked);
    CHECK_MSG(quiet->score < res.model->member_min && quiet->flagged == DL_AUDIT_BY_GROUP, "quiet key: score %.3f flagged %d",
              quiet->score, quiet->flagged);
    CHECK(mate->group == h->group && !mate->template_linked);
    CHECK_MSG(mate->score < res.model->member_min && !mate->flagged, "colleague: score %.3f flagged %d", mate->score,
              mate->flagged);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* One loud key: flagged on its own, with logprobs as its first reason. */
static void test_single_harvester(void) {
    dl_rng r;
    dl_rng_seed(&r, 13);
    dl_audit_log *L = dl_audit_log_new(NULL);
    ordinary_crowd(L, &r, 40, 1);
    add_harvester(L, &r, &(harvester){.first = 3000, .keys = 1, .per_key = 800, .logprobs = 1, .period = 5}, 1);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    CHECK(res.keys[0].id == 3000 && res.keys[0].flagged == DL_AUDIT_BY_KEY && res.keys[0].group < 0);
    CHECK(res.keys[0].score > 0.8);
    for (int k = 1; k < res.n_keys; k++) CHECK(!res.keys[k].flagged);
    for (int k = 1; k < res.n_keys; k++) CHECK(res.keys[k - 1].score >= res.keys[k].score || res.keys[k].group >= 0);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Three keys on one address are linked (and, being ordinary, not flagged); twenty keys on one
 * address are a proxy and link nothing. */
static void test_addresses(void) {
    dl_rng r;
    dl_rng_seed(&r, 14);
    dl_audit_log *L = dl_audit_log_new(NULL);
    char prompt[512];
    for (int k = 1; k <= 23; k++)
        for (int i = 0; i < 12; i++) {
            fx_random_prompt(&r, 12, prompt);
            fx_add(L, &(fx_req){1.7e9 + k * 7919.0 + i * 600 * (1 + dl_rng_float(&r)), k, NULL,
                                k <= 3 ? "10.1.1.1" : "10.9.9.9", prompt, -1, 64, 20, 1});
        }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    CHECK(res.proxies == 1);
    CHECK(res.n_groups == 1);
    const dl_audit_key *a = key_by_id(&res, 1);
    CHECK(a->group >= 0 && res.groups[a->group].n_members == 3 && res.groups[a->group].address_links == 2);
    CHECK(a->group >= 0 && strcmp(res.groups[a->group].address, "10.1.1.1") == 0 && !res.groups[a->group].flagged);
    for (int k = 4; k <= 23; k++) CHECK(key_by_id(&res, k)->group < 0);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Two keys firing together (within a second, every few minutes) from different addresses with
 * unrelated prompts are linked by timing; a third at the same pace but its own phase is not. */
static void test_lockstep(void) {
    dl_rng r;
    dl_rng_seed(&r, 15);
    dl_audit_log *L = dl_audit_log_new(NULL);
    char prompt[512];
    double t = 1.7e9;
    for (int i = 0; i < 30; i++) {
        t += 120 + 240 * dl_rng_float(&r);
        for (int k = 1; k <= 3; k++) {
            fx_random_prompt(&r, 12, prompt);
            double at = k == 3 ? t + 60 + 30 * dl_rng_float(&r) : t + dl_rng_float(&r);
            char client[16];
            snprintf(client, sizeof client, "10.2.0.%d", k);
            fx_add(L, &(fx_req){at, k, NULL, client, prompt, -1, 64, 20, 1});
        }
    }
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    const dl_audit_key *a = key_by_id(&res, 1), *b = key_by_id(&res, 2), *c = key_by_id(&res, 3);
    CHECK(a->group >= 0 && a->group == b->group && c->group < 0);
    CHECK(a->group >= 0 && res.groups[a->group].lockstep_links == 1 && res.groups[a->group].template_links == 0);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* --no-log-prompts: hashes only. Templates cannot be seen, the rest still works. */
static void test_without_texts(void) {
    dl_rng r;
    dl_rng_seed(&r, 16);
    dl_audit_log *L = dl_audit_log_new(NULL);
    ordinary_crowd(L, &r, 40, 0);
    add_harvester(L, &r, &(harvester){.first = 4000, .keys = 1, .per_key = 600, .logprobs = 1, .period = 10}, 0);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    CHECK(!res.prompts_logged);
    const dl_audit_key *h = key_by_id(&res, 4000);
    CHECK(h->flagged == DL_AUDIT_BY_KEY);
    CHECK(isnan(h->value[DL_AUDIT_F_TEMPLATE]) && isnan(h->x.similarity) && isnan(h->value[DL_AUDIT_F_BREADTH]));
    CHECK(h->x.distinct_prompts == 600 && h->x.with_text == 0);
    for (int k = 1; k <= 40; k++) CHECK(!key_by_id(&res, k)->flagged);
    dl_buf b = {0};
    FILE *out = open_memstream(&b.data, &b.len);
    CHECK(dl_audit_print_table(&res, "x.db", out) == 0);
    fclose(out);
    CHECK(b.data && strstr(b.data, "no prompt texts"));
    free(b.data);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* The JSON is one object with keys and groups; the report is written whole. */
static void test_outputs(void) {
    dl_rng r;
    dl_rng_seed(&r, 17);
    dl_audit_log *L = dl_audit_log_new(NULL);
    ordinary_crowd(L, &r, 20, 1);
    add_harvester(L, &r, &(harvester){.first = 5000, .keys = 6, .per_key = 4, .logprobs = 1, .period = 600}, 1);
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    char *s = dl_audit_json(&res, "usage.db");
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    CHECK(o && json_array_size(json_object_get(o, "keys")) == 26);
    json_t *groups = json_object_get(o, "groups"), *g0 = json_array_get(groups, 0);
    CHECK(json_array_size(groups) >= 1 && json_is_true(json_object_get(g0, "flagged")));
    CHECK(json_array_size(json_object_get(g0, "keys")) == 6 && json_array_size(json_object_get(g0, "reasons")) >= 2);
    json_t *k0 = json_array_get(json_object_get(o, "keys"), 0);
    CHECK(json_is_string(json_object_get(k0, "group")) && json_is_object(json_object_get(k0, "features")));
    CHECK(json_is_real(json_object_get(json_object_get(o, "model"), "threshold")));
    json_decref(o);
    free(s);
    const char *dir = test_tmpdir("audit-report");
    char path[600];
    snprintf(path, sizeof path, "%s/report.md", dir);
    dl_error err;
    CHECK(dl_audit_write_report(&res, "usage.db", path, &err) == 0);
    char *text;
    size_t len;
    CHECK(dl_read_file(path, &text, &len, &err) == 0);
    CHECK(strstr(text, "## What the score means") && strstr(text, "## Method") && strstr(text, "### g1: score"));
    CHECK(strstr(text, "bulk-5000") && strstr(text, "| logprobs | 0.25 |"));
    free(text);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

/* Linear in the requests: 20000 rows of 400 keys in well under the time a quadratic pass takes. */
static void test_many_rows(void) {
    dl_rng r;
    dl_rng_seed(&r, 18);
    dl_audit_log *L = dl_audit_log_new(NULL);
    for (int k = 1; k <= 400; k++) fx_ordinary(L, &r, k, 50, 1);
    double t0 = dl_now();
    dl_audit_result res;
    CHECK(dl_audit_analyse(L, &res, NULL) == 0);
    double dt = dl_now() - t0;
    CHECK_MSG(dt < 20, "%.1f s", dt); /* generous: sanitizers and a shared machine */
    CHECK(res.requests == 20000 && res.n_keys == 400);
    int flagged = 0;
    for (int k = 0; k < res.n_keys; k++) flagged += res.keys[k].flagged != 0;
    CHECK_MSG(flagged == 0, "%d ordinary keys flagged", flagged);
    dl_audit_result_free(&res);
    dl_audit_log_free(L);
}

int main(void) {
    test_spread_harvester();
    test_group_crosses_threshold();
    test_group_members();
    test_single_harvester();
    test_addresses();
    test_lockstep();
    test_without_texts();
    test_outputs();
    test_many_rows();
    TEST_MAIN_END();
}
