/* distil audit: score the API keys in a `distil serve` usage log for harvesting. */
#include "cli.h"
#include "provenance/audit.h"
#include <math.h>

static const char *SUMMARY =
    "Reads the usage log of distil serve (its --db, opened read-only: the server may keep running) and\n"
    "scores each API key for harvesting, collecting outputs at scale to distil a model: the share of\n"
    "requests asking logprobs, how much its prompts share a template (MinHash over word 3-shingles),\n"
    "completions run to max_tokens, regular pacing, volume, topical breadth. The score in [0, 1] is a\n"
    "weighted mean of those features; keys at 0.50 or more (and with 5 requests or more) are flagged.\n"
    "Keys sharing a template, a client address or lock-step timing are grouped and the group is scored\n"
    "on its pooled traffic; when a group is flagged, so are its members that share its template or\n"
    "score 0.35 or more. Prints one line per key, highest score first, then the reasons. Without\n"
    "prompt texts (--no-log-prompts) it works from hashes, counts and timing. Times: unix seconds or\n"
    "UTC dates like 2026-11-28 or 2026-11-28T14:30:00.";

int cmd_audit(int argc, char **argv) {
    const char *db = NULL, *report = NULL, *since = NULL, *until = NULL;
    int json = 0;
    cli_flag flags[] = {
        {"db", FLAG_STR, &db, "the usage db of distil serve", 1, 0},
        {"json", FLAG_BOOL, &json, "print one JSON object (keys, groups, features, reasons) instead of the table", 0, 0},
        {"report", FLAG_STR, &report, "also write a markdown report (method, thresholds, flagged keys) to this file", 0, 0},
        {"since", FLAG_STR, &since, "only requests at or after this time (default: no bound)", 0, 0},
        {"until", FLAG_STR, &until, "only requests before this time (default: no bound)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("audit", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_audit_opts o = {.db_path = db, .since = -INFINITY, .until = INFINITY, .json = json, .report_path = report};
    dl_error err;
    if ((since && dl_audit_parse_time(since, &o.since, &err)) || (until && dl_audit_parse_time(until, &o.until, &err))) {
        cli_error(&err);
        return 2;
    }
    if (o.since >= o.until) return cli_errorf("--since must be before --until"), 2;
    if (dl_audit_run(&o, stdout, &err)) return cli_error(&err);
    if (report) dl_log("audit: report written to %s", report);
    return 0;
}
