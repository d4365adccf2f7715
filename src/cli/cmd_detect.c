/* distil detect text|model|api: is this text, this model or this API's model marked by our watermark? */
#include "cli.h"
#include "provenance/provenance.h"
#include <stdlib.h>

static void usage(FILE *out) {
    fprintf(out, "usage: distil detect MODE --key-file F [flags]\n\n"
                 "  text    is this text watermarked with the key?\n"
                 "  model   was this model trained on text watermarked with the key? (reading mode)\n"
                 "  api     was the model behind this OpenAI-compatible API trained on such text?\n\n"
                 "Each prints the pairs scored, the green ones, a z-score and an exact binomial p-value.\n");
}

static const char *COMMON =
    "Scoring: each distinct (context, token) pair counts once, context = the H tokens before the token.\n"
    "gamma and H must be the server's (--wm-gamma, --wm-context). p-value = P[X >= green], X ~ Bin(pairs, gamma):\n"
    "the probability of at least that many green pairs had the key never been involved. Exit status 0 whatever\n"
    "the p-value; 1 on an error.";

/* the flags every mode has; the mode's own follow (OWN_FLAGS of them, then the terminator) */
#define COMMON_FLAGS(cfg, json, report)                                                                              \
    {"key-file", FLAG_STR, &(cfg).key_file, "the watermark key file the server was given", 1, 0},                     \
    {"wm-gamma", FLAG_DOUBLE, &(cfg).gamma, "green share, as the server's --wm-gamma (default 0.25)", 0, 0},          \
    {"wm-context", FLAG_INT, &(cfg).context, "context tokens H, as the server's --wm-context (default 1)", 0, 0},      \
    {"wm-delta", FLAG_DOUBLE, &(cfg).delta, "the server's --wm-delta, for the report (the test does not use it)", 0, 0}, \
    {"json", FLAG_BOOL, &(json), "print one JSON object instead of lines", 0, 0},                                      \
    {"report", FLAG_STR, &(report), "also write a markdown report to this file (atomically)", 0, 0}

/* cli_parse of one mode, COMMON printed after its --help, then the watermark settings checked
 * (flags[3] is COMMON_FLAGS' --wm-delta; unseen, it stays "not given", -1). Returns -1 to run
 * the mode, else the exit status. */
static int parse_mode(const char *cmd, const char *summary, cli_flag *flags, const dl_detect_cfg *cfg, int argc,
                      char **argv, char **pos, int max_pos, int *npos) {
    int rc = cli_parse(cmd, summary, flags, argc, argv, pos, max_pos, npos);
    if (rc) return rc > 0 ? (printf("\n%s\n", COMMON), 0) : 2;
    dl_error err;
    if (dl_wm_check(cfg->gamma, flags[3].seen ? cfg->delta : 0.0, cfg->context, &err)) return cli_error(&err), 2;
    return -1;
}

static int run(const dl_detect_cfg *cfg, int (*detect)(const dl_detect_cfg *, dl_detect_result *, dl_error *), int json,
               const char *report) {
    dl_detect_result res;
    dl_error err;
    if (detect(cfg, &res, &err)) return cli_error(&err);
    dl_detect_print(stdout, cfg, &res, json);
    fflush(stdout);
    if (report && dl_detect_report(report, cfg, &res, &err)) return cli_error(&err);
    return 0;
}

static int detect_text(int argc, char **argv) {
    dl_detect_cfg cfg;
    dl_detect_cfg_default(&cfg);
    int json = 0;
    const char *report = NULL;
    cli_flag flags[] = {
        COMMON_FLAGS(cfg, json, report),
        {"tokenizer", FLAG_STR, &cfg.tokenizer, "the watermarking server's tokenizer.json", 1, 0},
        {"prompt-file", FLAG_STR, &cfg.prompt_file, "the prompt: pairs that occur in it are not scored", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = parse_mode("detect text",
                        "Scores a text (FILE, or stdin when FILE is - or absent) for the watermark. The text must be valid\n"
                        "UTF-8; it is tokenized alone, and its first H tokens are context only. With --prompt-file, a\n"
                        "(context, token) pair whose H+1 tokens occur in a row in the prompt is not scored (a copy).",
                        flags, &cfg, argc, argv, pos, 1, &npos);
    if (rc >= 0) return rc;
    cfg.input = npos ? pos[0] : "-";
    return run(&cfg, dl_detect_text, json, report);
}

static int detect_model(int argc, char **argv) {
    dl_detect_cfg cfg;
    dl_detect_cfg_default(&cfg);
    int json = 0;
    const char *report = NULL;
    cli_flag flags[] = {
        COMMON_FLAGS(cfg, json, report),
        {"suspect", FLAG_STR, &cfg.suspect, "the suspect's model folder (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"text", FLAG_STR, &cfg.input, "the text the suspect reads (UTF-8)", 1, 0},
        {"tokenizer", FLAG_STR, &cfg.tokenizer, "the watermark's tokenizer.json: refuse a suspect whose tokenizer differs (default: no check)", 0, 0},
        {"batch", FLAG_INT, &cfg.batch, "windows per forward pass (default: up to 16M logits at a time)", 0, 0},
        {"unmarked-text", FLAG_BOOL, &cfg.unmarked_text, "the text was not written with the key: score the pairs it holds too (more power; wrong for watermarked text)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = parse_mode("detect model",
                        "Radioactivity test, reading mode: the suspect reads the text (with its own tokenizer.json, which must\n"
                        "be the watermark's for the test to mean anything) in windows of its context length; its top-1 guess\n"
                        "of each next token is paired with the H text tokens before that token. A pair that also occurs in the\n"
                        "text is not scored (the suspect could have copied it) unless --unmarked-text says the text was written\n"
                        "without the key. A model trained on watermarked text guesses green tokens more often than gamma.\n"
                        "Read in-domain text: ordinary text of the domain with --unmarked-text has the most power; the\n"
                        "server's own watermarked outputs work too (without the flag), more cautiously.",
                        flags, &cfg, argc, argv, NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (cfg.batch < 0) return cli_errorf("--batch %d must be >= 1 (or 0 for the default)", cfg.batch), 2;
    return run(&cfg, dl_detect_model, json, report);
}

static int detect_api(int argc, char **argv) {
    dl_detect_cfg cfg;
    dl_detect_cfg_default(&cfg);
    dl_harvest_opts *h = &cfg.harvest;
    int json = 0;
    const char *report = NULL;
    cli_flag flags[] = {
        COMMON_FLAGS(cfg, json, report),
        {"endpoint", FLAG_STR, &h->endpoint, "the suspect's URL, e.g. http://127.0.0.1:8080 (or .../v1)", 1, 0},
        {"prompts", FLAG_STR, &h->prompts_path, "prompts, one JSON object a line, as for distil harvest", 1, 0},
        {"tokenizer", FLAG_STR, &cfg.tokenizer, "the watermarking server's tokenizer.json", 1, 0},
        CLI_HARVEST_REQUEST_FLAGS(*h),
        {"harvest-out", FLAG_STR, &cfg.harvest_out, "keep the completions in this JSONL file; a rerun resumes it and scores all of it (default: a temporary file)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = parse_mode("detect api",
                        "Sends the prompts to the suspect's OpenAI-compatible API (as distil harvest does), tokenizes each\n"
                        "completion alone with the watermark's tokenizer and scores them all together: a pair counts once\n"
                        "across all completions, and a pair whose H+1 tokens occur in a row in that completion's prompt is\n"
                        "not scored. Prompts that fail for good are left out (and counted).",
                        flags, &cfg, argc, argv, NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (!h->api_key) h->api_key = getenv("DISTIL_API_KEY");
    return run(&cfg, dl_detect_api, json, report);
}

int cmd_detect(int argc, char **argv) {
    static const cli_sub subs[] = {{"text", detect_text}, {"model", detect_model}, {"api", detect_api}, {NULL, NULL}};
    return cli_dispatch("detect", usage, subs, argc, argv);
}
