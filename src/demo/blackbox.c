/* The demo's black-box leg: the teacher behind distil serve on 127.0.0.1 (a free port, no key),
 * completions with their top logprobs harvested for prompts cut from the training text, and a
 * second student distilled from that harvest alone (distil distill --harvest), as anyone with
 * only API access to the teacher could. */
#include "demo/demo.h"
#include "distill/distill.h"
#include "harvest/harvest.h"
#include "serve/serve.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Alternatives per token: the top 10 of the demo teacher hold most of its mass at most
 * positions, and the harvest stays a few tens of MB. */
#define BB_TOP_LOGPROBS 10
#define BB_PROMPT_BYTES 40
#define BB_CONCURRENCY 16 /* the server decodes up to 16 answers together */

/* The one place the demo's server is configured. */
void dl_demo_serve_cfg(dl_serve_cfg *c, const char *model_dir, const char *db_path) {
    dl_serve_cfg_default(c);
    c->model_dir = model_dir;
    c->db_path = db_path;
    c->host = "127.0.0.1";
    c->port = 0;     /* any free port */
    c->no_auth = 1;  /* loopback only, for this process */
    c->log_prompts = 1;
}

/* The start of the line at or after `at` that has text: up to BB_PROMPT_BYTES, cut after a word. */
static size_t prompt_at(const char *text, size_t len, size_t at, size_t *start) {
    if (at > 0 && text[at - 1] != '\n') { // from the next line's start
        const char *nl = memchr(text + at, '\n', len - at);
        at = nl ? (size_t)(nl - text) + 1 : len;
    }
    while (at < len) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at, cut = n;
        if (n > BB_PROMPT_BYTES) {
            cut = BB_PROMPT_BYTES;
            while (cut > 0 && text[at + cut] != ' ') cut--;
        }
        while (cut > 0 && text[at + cut - 1] == ' ') cut--;
        size_t k = 0;
        while (k < cut && (text[at + k] == ' ' || text[at + k] == '\r')) k++;
        if (k < cut) {
            *start = at;
            return cut;
        }
        at = end + 1;
    }
    return 0;
}

/* n prompts from lines spread evenly over the first 90% of the corpus (data prepare holds out
 * the last 5% as validation text), one JSON line each. */
int dl_demo_write_prompts(const char *corpus, const char *path, int n, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(corpus, &text, &len, err)) return -1;
    dl_buf out = {0};
    size_t span = len / 10 * 9;
    int rc = 0, written = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        size_t start = 0, at = (size_t)((double)span * i / n), m = prompt_at(text, span, at, &start);
        if (m == 0) continue;
        json_t *o = json_pack("{s:i, s:s%}", "id", i, "prompt", text + start, m);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL; /* NULL too for text that is not UTF-8: skipped */
        json_decref(o);
        if (s) rc = dl_buf_printf(&out, "%s\n", s), written++;
        free(s);
    }
    free(text);
    if (rc == 0 && written == 0) rc = dl_fail(err, "demo: the corpus has no line to use as a prompt");
    else if (rc == 0) rc = dl_write_file_atomic(path, out.data, out.len, err);
    else dl_fail(err, "out of memory");
    dl_buf_free(&out);
    return rc;
}

static int harvest_served(const dl_demo_opts *o, const dl_demo_bb *bb, dl_error *err) {
    dl_serve_cfg sc;
    dl_demo_serve_cfg(&sc, bb->teacher, bb->db);
    sc.wm_key_file = bb->key;
    /* a proxy from the environment would get the loopback requests */
    if (!getenv("no_proxy") && !getenv("NO_PROXY")) setenv("no_proxy", "127.0.0.1", 0);
    dl_server *s = dl_serve_start(&sc, err);
    if (!s) return dl_fail_ctx(err, "demo: serving the teacher");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", dl_serve_port(s));
    dl_log("demo: the teacher is served at %s with a watermark (key %s); harvesting %d completions of %d tokens with top-%d logprobs", url, bb->key,
           o->harvest_prompts, o->harvest_tokens, BB_TOP_LOGPROBS);
    dl_harvest_opts ho;
    dl_harvest_opts_default(&ho);
    ho.endpoint = url, ho.prompts_path = bb->prompts, ho.out_path = bb->harvest;
    ho.max_tokens = o->harvest_tokens, ho.top_logprobs = BB_TOP_LOGPROBS, ho.concurrency = BB_CONCURRENCY;
    ho.seed = (int)(o->seed & 0x7fffffff); /* the same demo seed, the same harvest */
    dl_harvest_result res;
    int rc = dl_harvest_run(&ho, &res, err);
    if (rc == 0 && res.failed > 0) rc = dl_fail(err, "demo: %ld of %ld prompts failed (see %s.failures.jsonl)", res.failed,
                                                res.total, bb->harvest);
    if (rc == 0)
        dl_log("demo: harvested %ld completions (%ld tokens) in %.0f s", res.written, res.completion_tokens, res.seconds);
    dl_serve_stop(s);
    return rc;
}

/* The same student config and schedule as the white-box student, on the harvest alone: forward KL
 * on the top-k and a cross-entropy share on the sampled tokens (the top-k rest bin says how much
 * mass lies elsewhere, the samples say where). Measured on the demo's teacher (2048 answers of
 * 48 tokens, 600 steps): weight 0.2 gave KL 0.78 and agreement 0.52 against the teacher; 0 (top-k
 * only) 1.03 / 0.52, 0.5 0.90 / 0.48, 1 (the sampled text alone) 1.08 / 0.43. */
static int distil_blackbox(const dl_demo_opts *o, const dl_demo_bb *bb, dl_error *err) {
    dl_distill_opts d;
    dl_distill_opts_default(&d);
    dl_demo_train_defaults(&d.train, o, bb->student_cfg, NULL, bb->student, o->bb_steps);
    d.train.seq_len = o->harvest_tokens + 24 < DL_DEMO_SEQ ? o->harvest_tokens + 24 : DL_DEMO_SEQ;
    d.train.eval_interval = o->bb_steps;
    d.harvest = bb->harvest;
    d.tokenizer = bb->tokenizer;
    d.kd.kind = DL_KD_FKL;
    d.kd.ce_weight = 0.2f;
    dl_log("demo: distilling a black-box student from the harvest, %d steps", o->bb_steps);
    return dl_distill(&d, err);
}

int dl_demo_blackbox(const dl_demo_opts *o, const dl_demo_bb *bb, dl_error *err) {
    double t0 = dl_now();
    if (dl_demo_write_prompts(bb->corpus, bb->prompts, o->harvest_prompts, err) || harvest_served(o, bb, err)) return -1;
    double t1 = dl_now();
    if (distil_blackbox(o, bb, err)) return -1;
    dl_log("demo: harvest in %.0f s, black-box student in %.0f s", t1 - t0, dl_now() - t1);
    return 0;
}
