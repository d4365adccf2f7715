/* Import of GGUF files that are well-formed but not a model we can take: each is a good export
 * copied with one edit, refused with a message naming the problem, and nothing half-written
 * is left behind as a model. */
#include "convert_util.h"

static char g_dir[512], g_good[1024];

/* Imports a copy of the good file with edit e; expects failure mentioning want. */
static void expect_import_error(const gguf_edit *e, const char *want, int line) {
    char bad[1100], out[1100];
    snprintf(bad, sizeof bad, "%s/bad.gguf", g_dir);
    snprintf(out, sizeof out, "%s/bad-out", g_dir);
    gguf_copy(g_good, bad, e);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    if (system(cmd) != 0) exit(2);
    dl_error err = {{0}};
    int rc = dl_import_gguf(bad, out, &err);
    char model[1200];
    snprintf(model, sizeof model, "%s/model.safetensors", out);
    if (rc != -1 || !strstr(err.msg, want) || !strstr(err.msg, bad) || dl_path_exists(model)) {
        t_fail++;
        fprintf(stderr, "line %d: expected an import error containing '%s', got rc=%d msg='%s'\n", line, want, rc, err.msg);
    } else {
        t_pass++;
    }
}
#define IMPORT_FAILS(want, ...) expect_import_error(&(gguf_edit){__VA_ARGS__}, want, __LINE__)

static void test_model_errors(void) {
    IMPORT_FAILS("tensor 'blk.1.ffn_up.weight' is missing", .drop_tensor = "blk.1.ffn_up.weight");
    IMPORT_FAILS("tensor 'token_embd.weight' is missing", .drop_tensor = "token_embd.weight");
    IMPORT_FAILS("tensor 'blk.0.attn_k.weight' has shape [32, 64], the hyperparameters need [64, 32]",
                 .swap_tensor = "blk.0.attn_k.weight");
    IMPORT_FAILS("tensor 'blk.0.ffn_gate.weight' has type Q4_0", .q4_tensor = "blk.0.ffn_gate.weight");
    IMPORT_FAILS("unexpected tensor 'rope_freqs.weight'", .extra_tensor = "rope_freqs.weight");
    IMPORT_FAILS("general.architecture is 'gpt2'; only 'llama'", .str_key = "general.architecture", .str_val = "gpt2");
    IMPORT_FAILS("key 'general.architecture' is missing", .drop_key = "general.architecture");
    /* a llama file relabelled qwen2: its keys are llama.*, so the qwen2.* ones are missing */
    IMPORT_FAILS("'qwen2.embedding_length' is missing", .str_key = "general.architecture", .str_val = "qwen2");
    IMPORT_FAILS("key 'llama.block_count' is missing", .drop_key = "llama.block_count");
    IMPORT_FAILS("key 'llama.embedding_length' is missing", .drop_key = "llama.embedding_length");
    IMPORT_FAILS("key 'llama.attention.layer_norm_rms_epsilon' is missing",
                 .drop_key = "llama.attention.layer_norm_rms_epsilon");
    IMPORT_FAILS("key 'llama.context_length' must be an integer, not string", .str_key = "llama.context_length",
                 .str_val = "32");
    IMPORT_FAILS("RoPE scaling 'yarn' is not supported", .str_key = "llama.rope.scaling.type", .str_val = "yarn");
}

static void test_vocab_errors(void) {
    IMPORT_FAILS("key 'tokenizer.ggml.scores' is missing", .str_key = "tokenizer.ggml.model", .str_val = "llama");
    IMPORT_FAILS("tokenizer.ggml.model 'bert' is not supported", .str_key = "tokenizer.ggml.model", .str_val = "bert");
    IMPORT_FAILS("tokenizer.ggml.pre 'deepseek-llm' is not supported", .str_key = "tokenizer.ggml.pre",
                 .str_val = "deepseek-llm");
    IMPORT_FAILS("key 'tokenizer.ggml.merges' is missing", .drop_key = "tokenizer.ggml.merges");
    IMPORT_FAILS("key 'tokenizer.ggml.tokens' is missing", .drop_key = "tokenizer.ggml.tokens");
    IMPORT_FAILS("token 0 has type BYTE", .bad_token_type = 1);
}

/* Files that are fine to import even though they differ from what we export. */
static void test_accepted(void) {
    char file[1100], out[1100], tj[1200];
    snprintf(file, sizeof file, "%s/ok.gguf", g_dir);
    snprintf(out, sizeof out, "%s/ok-notok", g_dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", out);
    dl_error err;
    /* no vocabulary at all: the model alone */
    gguf_copy(g_good, file, &(gguf_edit){.drop_key = "tokenizer.ggml.model"});
    CHECK_MSG(dl_import_gguf(file, out, &err) == 0, "%s", err.msg);
    CHECK(!dl_path_exists(tj));
    dl_model m;
    CHECK(dl_model_load(&m, out, &err) == 0);
    dl_model_free(&m);
    /* no pre-tokenizer name means llama.cpp's "default", read as GPT-2's regex */
    snprintf(out, sizeof out, "%s/ok-nopre", g_dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", out);
    gguf_copy(g_good, file, &(gguf_edit){.drop_key = "tokenizer.ggml.pre"});
    CHECK_MSG(dl_import_gguf(file, out, &err) == 0, "%s", err.msg);
    dl_tokenizer *t = dl_tok_load(tj, &err);
    CHECK(t != NULL);
    dl_tok_free(t);
    /* optional keys absent: head_count_kv defaults to head_count, which would not match attn_k */
    gguf_copy(g_good, file, &(gguf_edit){.drop_key = "llama.attention.head_count_kv"});
    CHECK(dl_import_gguf(file, out, &err) == -1 && strstr(err.msg, "blk.0.attn_k.weight' has shape"));
}

static void test_not_gguf(void) {
    char file[1100];
    snprintf(file, sizeof file, "%s/config.json", g_dir);
    FILE *fp = fopen(file, "w");
    fputs("{\"not\": \"gguf\"}", fp);
    fclose(fp);
    dl_error err;
    CHECK(dl_import_gguf(file, g_dir, &err) == -1 && strstr(err.msg, "not a GGUF file"));
    CHECK(dl_import_gguf("/nonexistent.gguf", g_dir, &err) == -1 && strstr(err.msg, "cannot open"));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir("gguf-import-errors"));
    dl_tokenizer *tok = train_tokenizer(290);
    dl_config cfg = small_config(dl_tok_vocab_size(tok), 64, 96, 0);
    dl_model m;
    random_model(&m, &cfg, 5);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/good", g_dir);
    snprintf(g_good, sizeof g_good, "%s/good.gguf", g_dir);
    save_folder(&m, tok, dir);
    dl_error err;
    if (dl_export_gguf(dir, g_good, DL_EXPORT_F32, DL_GGUF_LLAMA, &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    test_model_errors();
    test_vocab_errors();
    test_accepted();
    test_not_gguf();
    dl_model_free(&m);
    dl_tok_free(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
