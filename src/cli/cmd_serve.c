/* distil serve: a model folder behind an OpenAI-compatible HTTP API until SIGTERM or SIGINT. */
#include "cli.h"
#include "provenance/provenance.h"
#include "serve/serve.h"
#include <pthread.h>
#include <signal.h>

static const char *SUMMARY =
    "Serves a model folder (config.json, model.safetensors, tokenizer.json) over HTTP with OpenAI's API:\n"
    "GET /v1/models, POST /v1/completions, POST /v1/chat/completions (streaming, logprobs), GET /health,\n"
    "GET /metrics (Prometheus). Clients send 'Authorization: Bearer KEY' with a key from `distil keys create`\n"
    "(unless --no-auth); every request is logged to the SQLite --db. Concurrent requests are decoded together.\n"
    "Chat template: each message becomes \"### System:\\n\", \"### User:\\n\" or \"### Assistant:\\n\", its content and\n"
    "a blank line; then \"### Assistant:\\n\" asks for the reply. Logprobs are the model's at temperature 1.\n"
    "With --watermark-key-file every sampled token carries a keyed watermark (distil detect finds it): delta\n"
    "is added to the logits of the tokens green after the last H tokens (prompt included), before temperature,\n"
    "top-k and top-p; logprobs are then those of the biased distribution. The key is never logged or stored.\n"
    "SIGTERM or SIGINT: stop accepting connections, finish the requests in flight (up to --drain-seconds),\n"
    "close the database, exit 0. Prints 'listening on http://HOST:PORT' on stdout once ready.";

static int check_flags(int port, int max_batch, int max_queue, int max_body_kb, int threads, double drain) {
    if (port < 0 || port > 65535) return cli_errorf("--port %d is outside 0..65535", port);
    if (max_batch < 1 || max_batch > 4096) return cli_errorf("--max-batch %d is outside 1..4096", max_batch);
    if (max_queue < 1) return cli_errorf("--max-queue %d must be at least 1", max_queue);
    if (max_body_kb < 1) return cli_errorf("--max-body-kb %d must be at least 1", max_body_kb);
    if (threads < 0) return cli_errorf("--threads %d must be >= 0", threads);
    if (!(drain >= 0)) return cli_errorf("--drain-seconds must be >= 0");
    return 0;
}

static int run(const dl_serve_cfg *cfg) {
    /* the signals are taken synchronously by this thread: every thread started from here on
     * inherits the mask, so none of them is interrupted */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    dl_error err;
    dl_server *s = dl_serve_start(cfg, &err);
    if (!s) return cli_error(&err);
    printf("listening on http://%s:%d\n", cfg->host, dl_serve_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    dl_log("serve: %s: draining in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    int cancelled = dl_serve_stop(s);
    dl_log("serve: stopped%s", cancelled ? " (some requests were cancelled at the drain deadline)" : "");
    return 0;
}

int cmd_serve(int argc, char **argv) {
    dl_serve_cfg cfg;
    dl_serve_cfg_default(&cfg);
    int no_auth = 0, no_log_prompts = 0, max_body_kb = 1024, threads = 0;
    double drain = cfg.drain_seconds;
    cli_flag flags[] = {
        {"model", FLAG_STR, &cfg.model_dir, "model folder", 1, 0},
        {"db", FLAG_STR, &cfg.db_path, "SQLite file for the usage log and the API keys (created if missing)", 1, 0},
        {"host", FLAG_STR, &cfg.host, "address to listen on (default 127.0.0.1)", 0, 0},
        {"port", FLAG_INT, &cfg.port, "port (default 8080; 0 = any free port)", 0, 0},
        {"model-name", FLAG_STR, &cfg.model_name, "the model id clients ask for (default: the folder's name)", 0, 0},
        {"no-auth", FLAG_BOOL, &no_auth, "accept requests without an API key (local use)", 0, 0},
        {"no-log-prompts", FLAG_BOOL, &no_log_prompts, "log prompt hashes but not prompt texts", 0, 0},
        {"max-batch", FLAG_INT, &cfg.max_batch, "choices decoded together (default 16)", 0, 0},
        {"max-queue", FLAG_INT, &cfg.max_queue, "requests waiting before 503 (default 64)", 0, 0},
        {"max-body-kb", FLAG_INT, &max_body_kb, "largest request body in KiB before 413 (default 1024)", 0, 0},
        {"drain-seconds", FLAG_DOUBLE, &drain, "on SIGTERM, how long in-flight requests may finish (default 30)", 0, 0},
        {"threads", FLAG_INT, &threads, "CPU threads for the model (default: all cores)", 0, 0},
        {"watermark-key-file", FLAG_STR, &cfg.wm_key_file, "watermark every completion with the key in this file (any bytes; default: no watermark)", 0, 0},
        {"wm-gamma", FLAG_DOUBLE, &cfg.wm_gamma, "watermark: share of green tokens, in (0, 1) (default 0.25)", 0, 0},
        {"wm-delta", FLAG_DOUBLE, &cfg.wm_delta, "watermark: logit bias of green tokens, >= 0 (default 2)", 0, 0},
        {"wm-context", FLAG_INT, &cfg.wm_context, "watermark: tokens of context H that pick the green list, 1..8 (default 1)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("serve", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (check_flags(cfg.port, cfg.max_batch, cfg.max_queue, max_body_kb, threads, drain)) return 2;
    dl_error err;
    if (dl_wm_check(cfg.wm_gamma, cfg.wm_delta, cfg.wm_context, &err)) return cli_error(&err), 2;
    int wm_flag = flags[13].seen || flags[14].seen || flags[15].seen; /* the three --wm-* settings */
    if (wm_flag && !cfg.wm_key_file) return cli_errorf("--wm-gamma, --wm-delta and --wm-context need --watermark-key-file"), 2;
    cfg.no_auth = no_auth;
    cfg.log_prompts = !no_log_prompts;
    cfg.max_body = (size_t)max_body_kb * 1024;
    cfg.drain_seconds = drain;
    dl_set_threads(threads);
    return run(&cfg);
}
