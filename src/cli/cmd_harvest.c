/* distil harvest: prompts in, completions and logprobs out, from an OpenAI-compatible endpoint. */
#include "cli.h"
#include "harvest/harvest.h"
#include <stdlib.h>

static const char *SUMMARY =
    "Sends every prompt of a JSONL file to an OpenAI-compatible endpoint (/v1/completions, or\n"
    "/v1/chat/completions with --chat), N requests at a time, and appends one JSON line per answer\n"
    "to OUT: id, prompt or messages, completion, finish_reason, usage and, with --top-logprobs,\n"
    "the endpoint's per-token logprobs as it sent them.\n"
    "Prompts file lines: {\"id\": \"q1\", \"prompt\": \"...\"} or {\"id\": 2, \"messages\": [...]} (the id\n"
    "defaults to the line number). A malformed line stops the run before any request is sent.\n"
    "429 (honouring Retry-After), 5xx, timeouts and connection errors are retried with exponential\n"
    "backoff; other 4xx answers fail that prompt. Failed prompts are listed in OUT.failures.jsonl\n"
    "and the exit status is 1. Run the same command again to resume: ids already in OUT are skipped.\n"
    "The API key may also come from the environment variable DISTIL_API_KEY; it is never printed.";

int cmd_harvest(int argc, char **argv) {
    dl_harvest_opts o;
    dl_harvest_opts_default(&o);
    cli_flag flags[] = {
        {"endpoint", FLAG_STR, &o.endpoint, "server URL, e.g. http://127.0.0.1:8080 (or .../v1)", 1, 0},
        {"prompts", FLAG_STR, &o.prompts_path, "prompts, one JSON object a line", 1, 0},
        {"out", FLAG_STR, &o.out_path, "answers, one JSON object a line (appended; resumed)", 1, 0},
        {"failures", FLAG_STR, &o.failures_path, "where failed prompts are listed (default OUT.failures.jsonl)", 0, 0},
        CLI_HARVEST_REQUEST_FLAGS(o),
        {"top-logprobs", FLAG_INT, &o.top_logprobs, "ask per-token logprobs with K alternatives (default: none)", 0, 0},
        {"backoff", FLAG_DOUBLE, &o.backoff_s, "first wait before a retry, doubling after (default 0.5 s)", 0, 0},
        {"max-backoff", FLAG_DOUBLE, &o.max_backoff_s, "longest wait before a retry, Retry-After included (default 60 s)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("harvest", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!o.api_key) o.api_key = getenv("DISTIL_API_KEY");
    dl_harvest_result res;
    dl_error err;
    if (dl_harvest_run(&o, &res, &err)) return cli_error(&err);
    dl_log("harvest: %ld prompts: %ld already in %s, %ld written, %ld failed, %ld retries, %ld completion tokens, "
           "%.1f s",
           res.total, res.skipped, o.out_path, res.written, res.failed, res.retries, res.completion_tokens, res.seconds);
    if (res.failed)
        return cli_errorf("%ld prompts failed (listed in %s%s); run the same command again to retry them", res.failed,
                          o.failures_path ? o.failures_path : o.out_path, o.failures_path ? "" : ".failures.jsonl");
    return 0;
}
