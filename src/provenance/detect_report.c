/* What a detector prints, and its markdown report. */
#include "provenance.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *MODE_NAME[] = {"text", "model", "api"};

void dl_format_p(double log_p, char *out, size_t n) {
    if (log_p >= 0) snprintf(out, n, "1");
    else if (isinf(log_p)) snprintf(out, n, "0");
    else if (log_p > -690) snprintf(out, n, "%.3g", exp(log_p)); /* above about 1e-300 */
    else {
        double l10 = log_p / log(10.0), e = floor(l10);
        snprintf(out, n, "%.2fe%.0f", pow(10.0, l10 - e), e);
    }
}

/* what the counts are counts of, in the mode's words */
static const char *unit(const dl_detect_result *r) { return r->mode == DL_DETECT_MODEL ? "predictions" : "tokens"; }

static const char *excluded_rule(const dl_detect_result *r, const dl_detect_cfg *cfg) {
    if (r->mode == DL_DETECT_MODEL)
        return cfg->unmarked_text ? "none (--unmarked-text: the text was not written with the key)"
                                  : "pairs that occur in the text itself (the suspect could copy them)";
    if (r->mode == DL_DETECT_API) return "pairs that occur in the completion's own prompt";
    return cfg->prompt_file ? "pairs that occur in the prompt file" : "none (no --prompt-file)";
}

static void print_json(FILE *out, const dl_detect_cfg *cfg, const dl_detect_result *r) {
    const dl_wm_stats *s = &r->st;
    json_t *o = json_object();
    json_object_set_new(o, "mode", json_string(MODE_NAME[r->mode]));
    json_object_set_new(o, "tokenizer", json_string(r->tokenizer));
    json_object_set_new(o, "gamma", json_real(s->gamma));
    json_object_set_new(o, "context", json_integer(cfg->context));
    json_object_set_new(o, "sequences", json_integer(r->sequences));
    if (r->mode == DL_DETECT_API) json_object_set_new(o, "failed", json_integer(r->failed));
    json_object_set_new(o, "tokens", json_integer(s->tokens));
    json_object_set_new(o, "no_context", json_integer(s->no_context));
    json_object_set_new(o, "repeats", json_integer(s->repeats));
    json_object_set_new(o, "excluded", json_integer(s->excluded));
    json_object_set_new(o, "scored", json_integer(s->n));
    json_object_set_new(o, "green", json_integer(s->green));
    json_object_set_new(o, "z", json_real(s->z));
    json_object_set_new(o, "p", json_real(s->p));
    json_object_set_new(o, "log10_p", json_real(s->log_p / log(10.0)));
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    fprintf(out, "%s\n", text ? text : "{}");
    free(text);
    json_decref(o);
}

void dl_detect_print(FILE *out, const dl_detect_cfg *cfg, const dl_detect_result *r, int json) {
    if (json) {
        print_json(out, cfg, r);
        return;
    }
    const dl_wm_stats *s = &r->st;
    char p[64];
    dl_format_p(s->log_p, p, sizeof p);
    fprintf(out, "detect %s: %ld %s read, %ld pairs scored (%ld repeats, %ld excluded, %ld without %d tokens of context)\n",
            MODE_NAME[r->mode], s->tokens, unit(r), s->n, s->repeats, s->excluded, s->no_context, cfg->context);
    if (s->n == 0) {
        fprintf(out, "no pair could be scored: p-value 1 (no evidence either way)\n");
        return;
    }
    fprintf(out, "green: %ld of %ld (%.3f; gamma %g expects %.1f)\n", s->green, s->n, (double)s->green / (double)s->n,
            s->gamma, s->gamma * (double)s->n);
    fprintf(out, "z-score: %.2f\n", s->z);
    fprintf(out, "p-value: %s (P[X >= %ld], X ~ Binomial(%ld, %g))\n", p, s->green, s->n, s->gamma);
}

static void report_method(dl_buf *b, const dl_detect_cfg *cfg, const dl_detect_result *r) {
    if (r->mode == DL_DETECT_TEXT)
        dl_buf_printf(b, "The text (`%s`) was tokenized with the watermark's tokenizer; every token after the first %d "
                         "was paired with the %d token(s) before it, and each distinct (context, token) pair was checked "
                         "against the key's green list.\n\n", cfg->input, cfg->context, cfg->context);
    else if (r->mode == DL_DETECT_MODEL)
        dl_buf_printf(b, "Radioactivity test, reading mode. The suspect model (`%s`) read the text (`%s`) in windows of "
                         "its context length; at every position its most likely next token p was paired with the %d "
                         "text token(s) before that position, and each distinct (context, p) pair was checked against the "
                         "key's green list. A model trained on watermarked text leans towards green tokens, so its "
                         "guesses are green more often than gamma.\n\n", cfg->suspect, cfg->input, cfg->context);
    else
        dl_buf_printf(b, "The prompts of `%s` were sent to the suspect API (`%s`, max_tokens %d, temperature %g); each "
                         "completion was tokenized with the watermark's tokenizer, and each distinct (context, token) "
                         "pair over all completions was checked against the key's green list.\n\n",
                      cfg->harvest.prompts_path, cfg->harvest.endpoint, cfg->harvest.max_tokens, cfg->harvest.temperature);
}

static void report_figures(dl_buf *b, const dl_detect_cfg *cfg, const dl_detect_result *r) {
    const dl_wm_stats *s = &r->st;
    char p[64];
    dl_format_p(s->log_p, p, sizeof p);
    dl_buf_printf(b, "## Parameters\n\n| | |\n|---|---|\n| gamma (green share) | %g |\n", s->gamma);
    if (cfg->delta >= 0) dl_buf_printf(b, "| delta (the server's logit bias) | %g (it does not enter the test) |\n", cfg->delta);
    else dl_buf_printf(b, "| delta | not given (it does not enter the test, only the signal's strength) |\n");
    dl_buf_printf(b, "| context H | %d token%s |\n| tokenizer | `%s` (%d ids) |\n", cfg->context, cfg->context > 1 ? "s" : "",
                  r->tokenizer, r->vocab);
    dl_buf_printf(b, "| de-duplication | each distinct (context, token) pair scored once |\n| excluded | %s |\n\n",
                  excluded_rule(r, cfg));
    dl_buf_printf(b, "## Figures\n\n| | |\n|---|---|\n| %s | %ld |\n", r->mode == DL_DETECT_API ? "completions" :
                  r->mode == DL_DETECT_MODEL ? "windows read" : "texts", r->sequences);
    if (r->mode == DL_DETECT_API) dl_buf_printf(b, "| prompts without a completion | %ld |\n", r->failed);
    dl_buf_printf(b, "| %s read | %ld |\n| without context | %ld |\n| repeats | %ld |\n| excluded | %ld |\n", unit(r),
                  s->tokens, s->no_context, s->repeats, s->excluded);
    dl_buf_printf(b, "| pairs scored (n) | %ld |\n| green (g) | %ld (expected under no watermark: %.1f) |\n", s->n,
                  s->green, s->gamma * (double)s->n);
    dl_buf_printf(b, "| z = (g - gamma n) / sqrt(n gamma (1 - gamma)) | %.3f |\n| p-value P[X >= g], X ~ Bin(n, gamma) | "
                     "%s |\n\n", s->z, p);
}

static void report_meaning(dl_buf *b, const dl_detect_result *r) {
    const char *who = r->mode == DL_DETECT_TEXT ? "the text had been written without the key" :
                      r->mode == DL_DETECT_MODEL ? "the suspect had never been trained on text watermarked with this key" :
                      "the model behind the API had never been trained on text watermarked with this key";
    dl_buf_printf(b, "## What the p-value means\n\nIf %s, the probability of at least %ld green pairs among %ld is the "
                     "p-value above. A small p-value is evidence against that hypothesis, of the strength stated.\n\n",
                  who, r->st.green, r->st.n);
    if (r->st.n == 0) dl_buf_printf(b, "No pair could be scored, so p = 1: this run gives no evidence either way.\n\n");
    dl_buf_printf(b, "It is not the probability that the %s was distilled from the watermarked server, and it is not "
                     "proof of intent. It assumes that the key stayed secret, and that green and red are independent "
                     "fair coins (probability gamma) across distinct pairs for anyone without the key (the keyed hash "
                     "makes them so; repeats are scored once for that reason). The test finds watermarked text, or a "
                     "model's lean towards it; it says nothing about text it was not shown.\n",
                  r->mode == DL_DETECT_TEXT ? "text" : "model");
}

int dl_detect_report(const char *path, const dl_detect_cfg *cfg, const dl_detect_result *r, dl_error *err) {
    dl_buf b = {0};
    dl_buf_printf(&b, "# distil detect %s\n\n## Method\n\n", MODE_NAME[r->mode]);
    report_method(&b, cfg, r);
    report_figures(&b, cfg, r);
    report_meaning(&b, r);
    if (!b.data) return dl_fail(err, "report: out of memory");
    int rc = dl_write_file_atomic(path, b.data, b.len, err);
    dl_buf_free(&b);
    return rc;
}
