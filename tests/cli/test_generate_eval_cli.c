/* distil generate and distil eval on a model folder built here (random weights, a small
 * trained tokenizer): the output matches the library, flags do what --help says, and bad
 * input ends in "distil: error: ...". */
#include "cli_util.h"
#include "data/data.h"
#include "eval/eval.h"
#include "eval/generate.h"
#include "eval/spm_fixture.h"
#include <jansson.h>

static const char *CORPUS =
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat.\n"
    "the quick brown fox jumps over the lazy dog. the cat saw the fox and the dog ran.\n";

static char tmp[512], model_dir[700], data_dir[700], val_path[800];
static dl_model g_model;
static dl_tokenizer *g_tok;

static void setup(void) {
    dl_error err;
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    snprintf(data_dir, sizeof data_dir, "%s/data", tmp);
    snprintf(val_path, sizeof val_path, "%s/val.bin", data_dir);
    g_tok = dl_tok_train(CORPUS, strlen(CORPUS), 300, NULL, &err);
    dl_config c = {.V = dl_tok_vocab_size(g_tok), .C = 32, .F = 64, .L = 2, .NH = 4, .NKV = 2, .max_T = 64,
                   .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = 1, .bos_id = -1, .eos_id = -1};
    char p[900];
    dl_ivec ids = {0};
    for (int i = 0; i < 6; i++) dl_tok_encode(g_tok, CORPUS, strlen(CORPUS), 1, &ids, &err);
    if (dl_model_create(&g_model, &c, &err)) { fprintf(stderr, "setup: %s\n", err.msg); exit(2); }
    dl_model_init_random(&g_model, 3);
    for (size_t i = 0; i < g_model.lay.total; i++) g_model.params[i] *= 5.0f;
    if (dl_model_save(&g_model, model_dir, &err) || dl_mkdir_p(data_dir, &err) ||
        dl_tokfile_write(val_path, ids.data, ids.len, (uint32_t)c.V, &err) ||
        dl_path_join(p, sizeof p, model_dir, "tokenizer.json", &err) || dl_tok_save(g_tok, p, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        exit(2);
    }
    dl_ivec_free(&ids);
}

static int collect(const char *s, size_t n, void *user) {
    dl_buf_append(user, s, n);
    return 0;
}

/* prompt + what the library generates + "\n": what `distil generate` must print */
static void expected_output(const char *prompt, int max_tokens, dl_sampler_cfg c, uint64_t seed, dl_buf *out) {
    dl_error err;
    dl_generate_result res;
    dl_buf_append(out, prompt, strlen(prompt));
    if (dl_generate(&g_model, g_tok, prompt, max_tokens, &c, seed, collect, out, &res, &err))
        fprintf(stderr, "generate: %s\n", err.msg);
    dl_buf_append(out, "\n", 1);
}

static void test_generate(void) {
    char a[2000];
    snprintf(a, sizeof a, "generate --model %s --prompt 'the cat' --max-tokens 12 --temperature 0", model_dir);
    run_result *r = run_distil(tmp, a);
    dl_buf want = {0};
    expected_output("the cat", 12, (dl_sampler_cfg){0.0f, 0, 1.0f}, 0, &want);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK_MSG(strcmp(r->out, want.data) == 0, "got '%s' want '%s'", r->out, want.data);
    CHECK(strstr(r->err, "generated") != NULL);
    dl_buf_free(&want);

    snprintf(a, sizeof a, "generate --model %s --prompt 'a dog' --max-tokens 30 --temperature 1.2 --top-k 40 "
                          "--top-p 0.9 --seed 17 --threads 1", model_dir);
    r = run_distil(tmp, a);
    expected_output("a dog", 30, (dl_sampler_cfg){1.2f, 40, 0.9f}, 17, &want);
    CHECK_MSG(r->status == 0 && strcmp(r->out, want.data) == 0, "got '%s' want '%s'", r->out, want.data);
    static char first[sizeof r->out];
    snprintf(first, sizeof first, "%s", r->out);
    dl_buf_free(&want);
    snprintf(a, sizeof a, "generate --model %s --prompt 'a dog' --max-tokens 30 --temperature 1.2 --top-k 40 "
                          "--top-p 0.9 --seed 18", model_dir);
    r = run_distil(tmp, a);
    CHECK(r->status == 0 && strncmp(r->out, "a dog", 5) == 0 && strcmp(r->out, first) != 0);

    r = run_distil(tmp, "generate --help");
    CHECK(r->status == 0 && strstr(r->out, "--top-p") && strstr(r->out, "--max-tokens") && strstr(r->out, "--seed"));
}

static int collect_id(int32_t id, const char *s, size_t n, void *user) {
    (void)s, (void)n;
    dl_buf_printf(user, ((dl_buf *)user)->len ? " %d" : "%d", (int)id);
    return 0;
}

/* --ids prints the ids the library samples: for the byte-level model, and for a SentencePiece
 * vocabulary where U+2581 and <0x20> both read " " (spm_fixture.h: they alternate). */
static void test_generate_ids(void) {
    char a[2000], spm_dir[800], p[900];
    snprintf(a, sizeof a, "generate --model %s --prompt 'the cat' --max-tokens 12 --temperature 0 --ids", model_dir);
    run_result *r = run_distil(tmp, a);
    dl_buf want = {0};
    dl_generate_result res;
    dl_error err;
    dl_sampler_cfg greedy = {0.0f, 0, 1.0f};
    if (dl_generate_ids(&g_model, g_tok, "the cat", 12, &greedy, 0, collect_id, &want, &res, &err))
        fprintf(stderr, "generate: %s\n", err.msg);
    dl_buf_append(&want, "\n", 1);
    CHECK_MSG(r->status == 0 && strcmp(r->out, want.data) == 0, "got '%s' want '%s'", r->out, want.data);
    dl_buf_free(&want);

    snprintf(spm_dir, sizeof spm_dir, "%s/spm", tmp);
    dl_model m;
    spm_model(&m);
    dl_tokenizer *tok = spm_tokenizer();
    if (dl_model_save(&m, spm_dir, &err) || dl_path_join(p, sizeof p, spm_dir, "tokenizer.json", &err) ||
        dl_tok_save(tok, p, &err))
        spm_die("save", &err);
    dl_tok_free(tok);
    dl_model_free(&m);
    snprintf(a, sizeof a, "generate --model %s --prompt a --max-tokens 6 --temperature 0 --ids", spm_dir);
    r = run_distil(tmp, a);
    char spm_want[200];
    snprintf(spm_want, sizeof spm_want, "%d %d %d %d %d %d\n", SPM_SPACE, SPM_BYTE_SPACE, SPM_SPACE, SPM_BYTE_SPACE,
             SPM_SPACE, SPM_BYTE_SPACE);
    CHECK_MSG(r->status == 0 && strcmp(r->out, spm_want) == 0, "got '%s' want '%s' (%s)", r->out, spm_want, r->err);
    snprintf(a, sizeof a, "generate --model %s --prompt a --max-tokens 6 --temperature 0", spm_dir);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strcmp(r->out, "a      \n") == 0, "got '%s'", r->out);
}

static void test_generate_errors(void) {
    char a[2000];
    run_result *r = run_distil(tmp, "generate --prompt hi");
    CHECK_CLEAN_ERROR(r, "--model is required");
    snprintf(a, sizeof a, "generate --model %s/nowhere --prompt hi", tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "not a model folder");
    snprintf(a, sizeof a, "generate --model %s --prompt hi --top-p 1.5", model_dir);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "top-p");
    snprintf(a, sizeof a, "generate --model %s --prompt hi --temperature -1", model_dir);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "temperature");
    snprintf(a, sizeof a, "generate --model %s --prompt hi --max-tokens -4", model_dir);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--max-tokens");
    /* a folder without tokenizer.json */
    char bare[800];
    dl_error err;
    snprintf(bare, sizeof bare, "%s/bare", tmp);
    CHECK(dl_model_save(&g_model, bare, &err) == 0);
    snprintf(a, sizeof a, "generate --model %s --prompt hi", bare);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "tokenizer.json");
}

static void test_eval(void) {
    dl_tokfile f;
    dl_error err;
    dl_eval_result want;
    CHECK(dl_tokfile_open(&f, val_path, &err) == 0);
    CHECK(dl_eval_tokens(&g_model, &f, 8, 64, 0, &want, &err) == 0);
    uint64_t n_tokens = f.n_tokens;
    dl_tokfile_close(&f);

    char a[2000];
    snprintf(a, sizeof a, "eval --model %s --data %s --json", model_dir, data_dir); /* a folder: its val.bin */
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    json_error_t je;
    json_t *o = json_loads(r->out, 0, &je);
    CHECK_MSG(o != NULL, "not JSON: %s", r->out);
    if (o) {
        CHECK_CLOSE(json_real_value(json_object_get(o, "mean_loss")), want.mean_loss, 1e-6, 1e-6);
        CHECK_CLOSE(json_real_value(json_object_get(o, "perplexity")), exp(want.mean_loss), 0, 1e-5);
        CHECK(json_real_value(json_object_get(o, "tokens_per_s")) > 0);
        CHECK(json_integer_value(json_object_get(o, "tokens")) == (json_int_t)(n_tokens - 1));
        json_decref(o);
    }
    snprintf(a, sizeof a, "eval --model %s --data %s --batch 2 --seq-len 16 --max-tokens 50 --threads 1", model_dir,
             val_path);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strstr(r->out, "mean loss") && strstr(r->out, "perplexity") &&
                  strstr(r->out, "tokens 50 "),
              "status %d out %s err %s", r->status, r->out, r->err);

    r = run_distil(tmp, "eval --help");
    CHECK(r->status == 0 && strstr(r->out, "--seq-len") && strstr(r->out, "--json"));
    snprintf(a, sizeof a, "eval --model %s --data %s/missing.bin", model_dir, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "missing.bin");
    snprintf(a, sizeof a, "eval --model %s --data %s --seq-len 65", model_dir, val_path);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "max_position_embeddings");
    snprintf(a, sizeof a, "eval --model %s --data %s --batch 0", model_dir, val_path);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--batch");
    snprintf(a, sizeof a, "eval --model %s --data %s", data_dir, val_path);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "config.json");
    /* a folder whose config.json is broken */
    char broken[800], cfg[900];
    snprintf(broken, sizeof broken, "%s/broken", tmp);
    CHECK(dl_model_save(&g_model, broken, &err) == 0);
    snprintf(cfg, sizeof cfg, "%s/config.json", broken);
    write_text(cfg, "{\"vocab_size\": ");
    snprintf(a, sizeof a, "eval --model %s --data %s", broken, val_path);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "invalid JSON");
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("generate-eval-cli"));
    setup();
    test_generate();
    test_generate_ids();
    test_generate_errors();
    test_eval();
    dl_model_free(&g_model);
    dl_tok_free(g_tok);
    dl_error err;
    dl_rm_rf(tmp, &err);
    TEST_MAIN_END();
}
