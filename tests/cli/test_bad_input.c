/* Bad input through the command line: every case ends with "distil: error: ..." and a
 * non-zero exit, never a crash. */
#include "cli_util.h"

static const char *tmp;
static char path_buf[8][700];

static const char *p(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tmp, name);
    return path_buf[slot];
}

static void test_flags(void) {
    run_result *r = run_distil(tmp, "frobnicate");
    CHECK_CLEAN_ERROR(r, "unknown command 'frobnicate'");
    r = run_distil(tmp, "train --bogus 1");
    CHECK_CLEAN_ERROR(r, "unknown flag '--bogus'");
    r = run_distil(tmp, "train --config x.json --data d --out o --steps abc");
    CHECK_CLEAN_ERROR(r, "--steps expects an integer");
    r = run_distil(tmp, "tokenizer train --corpus x.txt");
    CHECK_CLEAN_ERROR(r, "is required");
    r = run_distil(tmp, "generate --model");
    CHECK_CLEAN_ERROR(r, "--model needs a value");
    const char *cmds[] = {"demo", "tokenizer train", "data prepare", "train", "generate", "eval"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a[100];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        r = run_distil(tmp, a);
        CHECK_MSG(r->status == 0 && strstr(r->out, "usage: distil") != NULL, "%s: status %d out %s", a,
                  r->status, r->out);
    }
}

static void test_bad_config(void) {
    write_text(p(0, "bad_dims.json"),
               "{\"vocab_size\": 300, \"hidden_size\": 100, \"intermediate_size\": 64, \"num_hidden_layers\": 2,"
               " \"num_attention_heads\": 3, \"num_key_value_heads\": 3}");
    char a[2200];
    snprintf(a, sizeof a, "train --config %s --data %s --out %s", p(0, "bad_dims.json"), p(1, "nodata"),
             p(2, "run"));
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "not divisible");
    write_text(p(0, "bad_types.json"), "{\"vocab_size\": \"many\", \"hidden_size\": 64}");
    snprintf(a, sizeof a, "train --config %s --data %s --out %s", p(0, "bad_types.json"), p(1, "nodata"),
             p(2, "run"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "vocab_size");
}

static void test_empty_corpus(void) {
    write_text(p(0, "empty.txt"), "");
    char a[2200];
    snprintf(a, sizeof a, "tokenizer train --corpus %s --vocab-size 300 --out %s", p(0, "empty.txt"),
             p(1, "tok.json"));
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "empty");
    CHECK(!dl_path_exists(p(1, "tok.json")));
}

static void test_bad_tokenizer(void) {
    write_text(p(0, "corpus.txt"), "some text\nmore text\nand more\n");
    write_text(p(1, "no_model.json"), "{\"version\": \"1.0\", \"added_tokens\": []}");
    char a[2200];
    snprintf(a, sizeof a, "data prepare --corpus %s --tokenizer %s --val-fraction 0.1 --out %s",
             p(0, "corpus.txt"), p(1, "no_model.json"), p(2, "data"));
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "no_model.json");
    write_text(p(1, "truncated.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
    snprintf(a, sizeof a, "data prepare --corpus %s --tokenizer %s --val-fraction 0.1 --out %s",
             p(0, "corpus.txt"), p(1, "truncated.json"), p(2, "data"));
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "truncated.json");
}

static void test_bad_model_folder(void) {
    char dir[800], a[2200], f[900];
    snprintf(dir, sizeof dir, "%s/model", tmp);
    dl_error err;
    CHECK(dl_mkdir_p(dir, &err) == 0);
    snprintf(f, sizeof f, "%s/config.json", dir);
    write_text(f, "{\"vocab_size\": 300, \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 1,"
                  " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"tie_word_embeddings\": true}");
    /* a safetensors header that promises more bytes than the file holds */
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    FILE *fp = fopen(f, "wb");
    uint64_t hl = 4096;
    fwrite(&hl, 8, 1, fp);
    fputs("{\"model.embed_tokens.weight\"", fp);
    fclose(fp);
    snprintf(a, sizeof a, "generate --model %s --prompt hi --max-tokens 4", dir);
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "model.safetensors");
    snprintf(a, sizeof a, "eval --model %s/missing --data %s/missing.bin", tmp, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "missing");
}

int main(void) {
    tmp = test_tmpdir("badinput");
    test_flags();
    test_bad_config();
    test_empty_corpus();
    test_bad_tokenizer();
    test_bad_model_folder();
    dl_error err;
    dl_rm_rf(tmp, &err);
    TEST_MAIN_END();
}
