/* detect api: the suspect generates through its OpenAI-compatible API (a harvest), and its
 * completions are scored together, as one text whose pairs count once. */
#include "detect_internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A content field as the harvest keeps it: a string, or a list of {"type": "text", "text"} parts. */
static void append_content(dl_buf *out, json_t *content) {
    if (json_is_string(content)) {
        dl_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) dl_buf_append(out, json_string_value(t), json_string_length(t));
    }
}

/* The prompt of a harvested line: "prompt", or the contents of "messages" one after another. */
static void line_prompt(json_t *line, dl_buf *out) {
    json_t *p = json_object_get(line, "prompt"), *msgs = json_object_get(line, "messages");
    if (json_is_string(p)) append_content(out, p);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (i > 0) dl_buf_append(out, "\n", 1);
        append_content(out, json_object_get(m, "content"));
    }
    dl_buf_append(out, "", 0);
}

static int score_line(dl_wm_scorer *s, const dl_tokenizer *tok, json_t *line, long no, dl_error *err) {
    json_t *c = json_object_get(line, "completion");
    if (!json_is_string(c)) return dl_fail(err, "line %ld: no \"completion\" string", no);
    dl_buf prompt = {0};
    dl_ivec ids = {0}, pids = {0};
    line_prompt(line, &prompt);
    int rc = dl_tok_encode(tok, json_string_value(c), json_string_length(c), 0, &ids, err);
    if (rc == 0 && prompt.len) rc = dl_tok_encode(tok, prompt.data, prompt.len, 0, &pids, err);
    if (rc == 0) rc = dl_wm_score(s, ids.data, ids.data, ids.len, pids.data, pids.len, err);
    dl_buf_free(&prompt);
    dl_ivec_free(&ids);
    dl_ivec_free(&pids);
    return rc;
}

/* Scores every line of the harvest file at path. */
static int score_file(dl_wm_scorer *s, const dl_tokenizer *tok, const char *path, long *lines, dl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return dl_fail(err, "%s: cannot open the harvested completions", path);
    char *line = NULL;
    size_t cap = 0;
    long no = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        no++;
        json_error_t je;
        json_t *v = json_loads(line, JSON_ALLOW_NUL, &je);
        rc = v ? score_line(s, tok, v, no, err) : dl_fail(err, "line %ld: %s", no, je.text);
        json_decref(v);
        if (rc == 0) ++*lines;
    }
    free(line);
    fclose(f);
    return rc ? dl_fail_ctx(err, "%s", path) : 0;
}

/* The harvest goes to cfg->harvest_out, or to a temporary folder (tmp_dir, removed after). */
static int harvest(const dl_detect_cfg *cfg, char *out, size_t n, char *tmp_dir, dl_detect_result *res, dl_error *err) {
    dl_harvest_opts o = cfg->harvest;
    if (cfg->harvest_out) snprintf(out, n, "%s", cfg->harvest_out);
    else {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, 4096, "%s/distil-detect-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            tmp_dir[0] = 0;
            return dl_fail(err, "cannot make a temporary folder for the completions");
        }
        if (dl_path_join(out, n, tmp_dir, "completions.jsonl", err)) return -1;
    }
    o.out_path = out;
    dl_harvest_result hr;
    if (dl_harvest_run(&o, &hr, err)) return dl_fail_ctx(err, "detect api");
    res->failed = hr.failed;
    if (hr.failed) dl_log("detect api: %ld of %ld prompts got no completion (scored without them)", hr.failed, hr.total);
    return 0;
}

int dl_detect_api(const dl_detect_cfg *cfg, dl_detect_result *res, dl_error *err) {
    *res = (dl_detect_result){.mode = DL_DETECT_API};
    dl_wm wm;
    dl_tokenizer *tok;
    if (detect_load_wm_tokenizer(cfg, res, &wm, &tok, err)) return -1;
    char out[4096], tmp_dir[4096] = "";
    dl_wm_scorer *s = dl_wm_scorer_new(&wm);
    int rc = s ? harvest(cfg, out, sizeof out, tmp_dir, res, err) : dl_fail(err, "out of memory");
    if (rc == 0) rc = score_file(s, tok, out, &res->sequences, err);
    if (rc == 0) dl_wm_scorer_stats(s, &res->st);
    if (tmp_dir[0]) dl_rm_rf(tmp_dir, NULL);
    dl_wm_scorer_free(s);
    dl_tok_free(tok);
    dl_wm_wipe(&wm);
    return rc;
}
