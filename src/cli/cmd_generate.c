/* distil generate: continue a prompt with a model folder's model and tokenizer. */
#include "cli.h"
#include "eval/generate.h"

static const char *SUMMARY =
    "Prints the prompt, then streams the model's continuation to stdout token by token.\n"
    "The model folder holds config.json, model.safetensors and tokenizer.json.\n"
    "Generation stops at --max-tokens, at the end-of-text token, or when the context is full.";

static int print_token(const char *text, size_t len, void *user) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0; /* a closed pipe stops generation */
}

/* --ids: the generated token ids instead of their text, as the library hands them over (their
 * bytes would not always name them: see dl_token_id_fn). */
static int print_id(int32_t id, const char *text, size_t len, void *user) {
    (void)text, (void)len;
    int *n = user;
    printf((*n)++ ? " %d" : "%d", (int)id);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0;
}

static const char *STOP_NAMES[] = {"max tokens", "end of text", "context full", "output closed"};

static int run(const char *dir, const char *prompt, int max_tokens, const dl_sampler_cfg *scfg, uint64_t seed,
               int want_ids) {
    dl_error err;
    char tok_path[4096];
    if (dl_sampler_check(scfg, &err) || dl_path_join(tok_path, sizeof tok_path, dir, "tokenizer.json", &err))
        return cli_error(&err);
    dl_model m;
    if (dl_model_load(&m, dir, &err)) return cli_error(&err);
    dl_tokenizer *tok = dl_tok_load(tok_path, &err);
    if (!tok) {
        dl_model_free(&m);
        return cli_error(&err);
    }
    if (!want_ids) fputs(prompt, stdout);
    fflush(stdout);
    dl_generate_result res;
    int n_ids = 0;
    int rc = want_ids ? dl_generate_ids(&m, tok, prompt, max_tokens, scfg, seed, print_id, &n_ids, &res, &err)
                      : dl_generate(&m, tok, prompt, max_tokens, scfg, seed, print_token, NULL, &res, &err);
    fputc('\n', stdout);
    fflush(stdout);
    dl_tok_free(tok);
    dl_model_free(&m);
    if (rc) return cli_error(&err);
    dl_log("%d prompt tokens, %d generated in %.2f s (%.1f tokens/s), stopped: %s", res.n_prompt, res.n_generated,
           res.seconds, res.tokens_per_s, STOP_NAMES[res.stop]);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL;
    int max_tokens = 128, top_k = 0, seed = 0, threads = 0, want_ids = 0;
    float temperature = 0.8f, top_p = 1.0f;
    cli_flag flags[] = {
        {"model", FLAG_STR, &dir, "model folder (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"prompt", FLAG_STR, &prompt, "text to continue (may be empty: starts from <|endoftext|>)", 1, 0},
        {"max-tokens", FLAG_INT, &max_tokens, "most tokens to generate (default 128)", 0, 0},
        {"temperature", FLAG_FLOAT, &temperature, "sampling temperature, 0 = greedy (default 0.8)", 0, 0},
        {"top-k", FLAG_INT, &top_k, "sample among the k most likely tokens, 0 = all (default 0)", 0, 0},
        {"top-p", FLAG_FLOAT, &top_p, "sample among the most likely tokens holding this mass (default 1.0)", 0, 0},
        {"seed", FLAG_INT, &seed, "random seed: the same seed gives the same text (default 0)", 0, 0},
        {"threads", FLAG_INT, &threads, "CPU threads (default: all cores)", 0, 0},
        {"ids", FLAG_BOOL, &want_ids, "print the generated token ids on one line instead of the text", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("generate", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (max_tokens < 0) return cli_errorf("--max-tokens %d must be >= 0", max_tokens);
    if (threads < 0) return cli_errorf("--threads %d must be >= 0", threads);
    dl_set_threads(threads);
    dl_sampler_cfg scfg = {.temperature = temperature, .top_k = top_k, .top_p = top_p};
    return run(dir, prompt, max_tokens, &scfg, (uint64_t)(uint32_t)seed, want_ids);
}
