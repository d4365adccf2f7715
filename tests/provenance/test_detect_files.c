/* The detectors as the CLI calls them, on files: detect text gives what scoring its ids directly
 * gives; detect model finds the suspect folder's tokenizer and checks it against --tokenizer;
 * the report and the printed lines carry the figures; and bad input fails cleanly: a missing or
 * empty key file, a text that is not UTF-8, a suspect folder that is not a model, a tokenizer
 * that differs. A text with nothing to score gives p = 1, not an error. */
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "wm_fixture.h"

static const char *CORPUS = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat.\n"
                            "the quick brown fox jumps over the lazy dog. the cat saw the fox and the dog ran.\n";
static const char *tmp;
static char key_path[600], tok_path[600], model_dir[600], text_path[600];
static dl_tokenizer *tok;

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    fclose(f);
}

static void setup(void) {
    dl_error err;
    tok = dl_tok_train(CORPUS, strlen(CORPUS), 300, NULL, &err);
    if (!tok) wm_fixture_die("tokenizer", &err);
    snprintf(key_path, sizeof key_path, "%s/wm.key", tmp);
    write_bytes(key_path, "secret key bytes", 16);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", tmp);
    snprintf(model_dir, sizeof model_dir, "%s/suspect", tmp);
    snprintf(text_path, sizeof text_path, "%s/text.txt", tmp);
    if (dl_tok_save(tok, tok_path, &err)) wm_fixture_die("tokenizer save", &err);
    dl_model m;
    wm_make_model(&m, dl_tok_vocab_size(tok), 32, 1, 64, 4.0f, 5);
    char p[700];
    snprintf(p, sizeof p, "%s/tokenizer.json", model_dir);
    if (dl_model_save(&m, model_dir, &err) || dl_tok_save(tok, p, &err)) wm_fixture_die("model save", &err);
    dl_model_free(&m);
    write_bytes(text_path, CORPUS, strlen(CORPUS));
}

static dl_detect_cfg cfg_for(const char *input) {
    dl_detect_cfg c;
    dl_detect_cfg_default(&c);
    c.key_file = key_path;
    c.tokenizer = tok_path;
    c.input = input;
    c.suspect = model_dir;
    return c;
}

static void test_text_matches_ids(void) {
    dl_detect_cfg c = cfg_for(text_path);
    char prompt_path[700];
    snprintf(prompt_path, sizeof prompt_path, "%s/prompt.txt", tmp);
    write_bytes(prompt_path, "the cat sat on the mat.", 23);
    c.prompt_file = prompt_path;
    dl_detect_result r;
    dl_error err;
    CHECK(dl_detect_text(&c, &r, &err) == 0);
    dl_ivec ids = {0}, pids = {0};
    dl_tok_encode(tok, CORPUS, strlen(CORPUS), 0, &ids, &err);
    dl_tok_encode(tok, "the cat sat on the mat.", 23, 0, &pids, &err);
    dl_wm wm;
    CHECK(dl_wm_load(&wm, key_path, 0.25, 0, 1, &err) == 0);
    dl_wm_scorer *s = dl_wm_scorer_new(&wm);
    dl_wm_score(s, ids.data, ids.data, ids.len, pids.data, pids.len, &err);
    dl_wm_stats st;
    dl_wm_scorer_stats(s, &st);
    CHECK(r.st.n == st.n && r.st.green == st.green && r.st.excluded == st.excluded && r.st.excluded > 0);
    CHECK(r.st.repeats > 0 && r.st.tokens == (long)ids.len && r.sequences == 1);
    CHECK(r.vocab == dl_tok_vocab_size(tok) && strstr(r.tokenizer, "tokenizer.json"));
    dl_wm_scorer_free(s);
    dl_ivec_free(&ids);
    dl_ivec_free(&pids);

    /* the report: written atomically, with the figures and what the p-value means */
    char report[700], *md = NULL, p[64];
    size_t n;
    snprintf(report, sizeof report, "%s/report.md", tmp);
    CHECK(dl_detect_report(report, &c, &r, &err) == 0);
    CHECK(dl_read_file(report, &md, &n, &err) == 0);
    dl_format_p(r.st.log_p, p, sizeof p);
    char green[64];
    snprintf(green, sizeof green, "| green (g) | %ld ", r.st.green);
    CHECK(md && strstr(md, "# distil detect text") && strstr(md, green) && strstr(md, p));
    CHECK(md && strstr(md, "not the probability") && strstr(md, "gamma (green share) | 0.25"));
    free(md);
}

static void test_formats(void) {
    char p[64];
    dl_format_p(0.0, p, sizeof p);
    CHECK(!strcmp(p, "1"));
    dl_format_p(log(0.0123), p, sizeof p);
    CHECK(!strcmp(p, "0.0123"));
    dl_format_p(-2000.0 * log(10.0) + log(3.5), p, sizeof p); /* 3.5e-2000 */
    CHECK_MSG(!strcmp(p, "3.50e-2000"), "%s", p);
    dl_format_p(-INFINITY, p, sizeof p);
    CHECK(!strcmp(p, "0"));
}

static void test_nothing_to_score(void) {
    char path[700];
    snprintf(path, sizeof path, "%s/one_token.txt", tmp);
    write_bytes(path, "t", 1); /* one token: context only */
    dl_detect_cfg c = cfg_for(path);
    dl_detect_result r;
    dl_error err;
    CHECK(dl_detect_text(&c, &r, &err) == 0);
    CHECK(r.st.n == 0 && r.st.p == 1.0 && r.st.z == 0.0 && r.st.tokens == 1);
    snprintf(path, sizeof path, "%s/empty.txt", tmp);
    write_bytes(path, "", 0);
    c = cfg_for(path);
    CHECK(dl_detect_text(&c, &r, &err) == 0 && r.st.n == 0 && r.st.p == 1.0);
    CHECK(dl_detect_model(&c, &r, &err) == 0 && r.st.n == 0 && r.st.p == 1.0);
    FILE *f = tmpfile();
    dl_detect_print(f, &c, &r, 0);
    rewind(f);
    char out[1024] = "";
    CHECK(fread(out, 1, sizeof out - 1, f) > 0 && strstr(out, "no pair could be scored"));
    fclose(f);
}

static void test_bad_input(void) {
    dl_detect_result r;
    dl_error err;
    dl_detect_cfg c = cfg_for(text_path);
    char path[700];
    snprintf(path, sizeof path, "%s/nokey", tmp);
    c.key_file = path;
    CHECK(dl_detect_text(&c, &r, &err) != 0 && strstr(err.msg, "nokey"));
    CHECK(dl_detect_model(&c, &r, &err) != 0 && strstr(err.msg, "nokey"));
    CHECK(dl_detect_api(&c, &r, &err) != 0 && strstr(err.msg, "nokey"));
    write_bytes(path, "", 0);
    CHECK(dl_detect_text(&c, &r, &err) != 0 && strstr(err.msg, "empty"));

    snprintf(path, sizeof path, "%s/latin1.txt", tmp);
    write_bytes(path, "caf\xe9 au lait", 12);
    c = cfg_for(path);
    CHECK(dl_detect_text(&c, &r, &err) != 0 && strstr(err.msg, "not valid UTF-8") && strstr(err.msg, "byte 3"));
    CHECK(dl_detect_model(&c, &r, &err) != 0 && strstr(err.msg, "not valid UTF-8"));
    write_bytes(path, "ok \xed\xa0\x80", 6); /* a UTF-16 surrogate */
    CHECK(dl_detect_text(&c, &r, &err) != 0 && strstr(err.msg, "byte 3"));
    write_bytes(path, "cut \xe2\x82", 6); /* truncated */
    CHECK(dl_detect_text(&c, &r, &err) != 0 && strstr(err.msg, "byte 4"));

    c = cfg_for(text_path);
    c.suspect = tmp; /* a folder, not a model */
    CHECK(dl_detect_model(&c, &r, &err) != 0 && strstr(err.msg, "not a model folder"));
    c.suspect = text_path;
    CHECK(dl_detect_model(&c, &r, &err) != 0 && strstr(err.msg, "not a folder"));

    /* a tokenizer other than the suspect's */
    dl_tokenizer *other = dl_tok_train("zzzz yyyy xxxx zzzz yyyy", 24, 270, NULL, &err);
    snprintf(path, sizeof path, "%s/other.json", tmp);
    CHECK(other && dl_tok_save(other, path, &err) == 0);
    dl_tok_free(other);
    c = cfg_for(text_path);
    c.tokenizer = path;
    CHECK(dl_detect_model(&c, &r, &err) != 0 && strstr(err.msg, "not the watermark's tokenizer"));
    c.tokenizer = NULL; /* no check asked */
    CHECK(dl_detect_model(&c, &r, &err) == 0 && r.st.tokens > 0);
    /* --unmarked-text: the pairs the text holds are scored (or counted as repeats) instead */
    dl_detect_result all;
    c.unmarked_text = 1;
    CHECK(dl_detect_model(&c, &all, &err) == 0 && all.st.excluded == 0 && all.st.n >= r.st.n);
    CHECK(all.st.n + all.st.repeats == r.st.n + r.st.repeats + r.st.excluded && all.st.tokens == r.st.tokens);
    c.unmarked_text = 0;
    c.tokenizer = NULL;
    CHECK(dl_detect_text(&c, &r, &err) != 0 && strstr(err.msg, "no tokenizer"));
}

int main(void) {
    dl_set_threads(1);
    dl_log_set_level(DL_LOG_QUIET);
    tmp = test_tmpdir("detect-files");
    setup();
    test_text_matches_ids();
    test_formats();
    test_nothing_to_score();
    test_bad_input();
    dl_tok_free(tok);
    TEST_MAIN_END();
}
