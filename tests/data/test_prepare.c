/* dl_data_prepare: the split, the round trip of text through train.bin + val.bin, special
 * tokens, chunked encoding of a larger corpus, and its errors. */
#include "data/data.h"
#include "test.h"

static char dir[512], tok_path[700];

static const char *path_in(const char *name) {
    static char p[16][700];
    static int k;
    k = (k + 1) % 16;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fwrite(text, 1, n, f);
    fclose(f);
}

/* Lines of a made-up story with a document separator every 5 lines. */
static void make_corpus(dl_buf *b, int lines) {
    static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "far",
                                        "away", "from", "big", "dog", "who", "barked"};
    unsigned x = 12345;
    for (int l = 0; l < lines; l++) {
        int n = 4 + l % 7;
        for (int w = 0; w < n; w++) {
            x = x * 1103515245u + 12345u;
            dl_buf_printf(b, "%s%s", w ? " " : "", words[(x >> 16) % 16]);
        }
        dl_buf_append(b, ".\n", 2);
        if (l % 5 == 4) dl_buf_append(b, DL_EOT "\n", strlen(DL_EOT) + 1);
    }
}

/* Decodes a token file and appends its text to out. */
static int decode_file(const dl_tokenizer *t, const char *path, dl_buf *out, int *eot_count) {
    dl_tokfile f;
    dl_error err;
    if (dl_tokfile_open(&f, path, &err)) { fprintf(stderr, "%s\n", err.msg); return -1; }
    int32_t *ids = malloc((f.n_tokens + 1) * sizeof *ids);
    for (uint64_t i = 0; i < f.n_tokens; i++) {
        ids[i] = dl_tokfile_get(&f, i);
        *eot_count += ids[i] == dl_tok_eot_id(t);
    }
    int rc = dl_tok_decode(t, ids, f.n_tokens, out, &err);
    free(ids);
    dl_tokfile_close(&f);
    return rc;
}

static void test_round_trip(int lines, double fraction) {
    dl_buf corpus = {0};
    make_corpus(&corpus, lines);
    const char *cpath = path_in("corpus.txt"), *out = path_in("prepared");
    write_text(cpath, corpus.data, corpus.len);
    dl_error err = {{0}};
    CHECK_MSG(dl_data_prepare(cpath, tok_path, fraction, out, &err) == 0, "%s", err.msg);

    dl_tokenizer *t = dl_tok_load(tok_path, &err);
    CHECK(t != NULL);
    if (!t) return;
    char p[800];
    dl_buf train = {0}, val = {0};
    int eot_train = 0, eot_val = 0;
    snprintf(p, sizeof p, "%s/train.bin", out);
    CHECK(decode_file(t, p, &train, &eot_train) == 0);
    snprintf(p, sizeof p, "%s/val.bin", out);
    CHECK(decode_file(t, p, &val, &eot_val) == 0);
    /* nothing lost or repeated: train then val is the corpus */
    CHECK(train.len + val.len == corpus.len);
    CHECK(train.len <= corpus.len && memcmp(train.data, corpus.data, train.len) == 0);
    CHECK(val.len > 0 && memcmp(val.data, corpus.data + train.len, val.len) == 0);
    /* cut at a line start, near the asked fraction */
    CHECK(train.len > 0 && train.data[train.len - 1] == '\n');
    double got = (double)val.len / (double)corpus.len;
    CHECK_MSG(fabs(got - fraction) < 0.01, "validation got %.4f of the text, asked %.4f", got, fraction);
    /* the separators became the EOT id, one per 5 lines */
    CHECK(eot_train + eot_val == lines / 5);
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    dl_tokenizer *copy = dl_tok_load(p, &err);
    CHECK(copy && dl_tok_vocab_size(copy) == dl_tok_vocab_size(t));
    dl_tokfile f;
    snprintf(p, sizeof p, "%s/train.bin", out);
    CHECK(dl_tokfile_open(&f, p, &err) == 0 && f.vocab_size == (uint32_t)dl_tok_vocab_size(t));
    dl_tokfile_close(&f);
    dl_tok_free(copy);
    dl_tok_free(t);
    dl_buf_free(&train);
    dl_buf_free(&val);
    dl_buf_free(&corpus);
}

static void expect_fail(const char *corpus, const char *tok, double f, const char *phrase) {
    dl_error err = {{0}};
    const char *out = path_in("failed");
    CHECK_MSG(dl_data_prepare(corpus, tok, f, out, &err) == -1, "prepared %s", corpus);
    CHECK_MSG(strstr(err.msg, phrase) != NULL, "wanted '%s' in '%s'", phrase, err.msg);
}

static void test_errors(void) {
    const char *empty = path_in("empty.txt"), *oneline = path_in("oneline.txt"), *few = path_in("few.txt");
    const char *good = path_in("corpus.txt");
    write_text(empty, "", 0);
    expect_fail(empty, tok_path, 0.1, "empty");
    expect_fail(path_in("missing.txt"), tok_path, 0.1, "missing.txt");
    expect_fail(good, path_in("missing-tok.json"), 0.1, "cannot load tokenizer");
    write_text(path_in("bad-tok.json"), "{\"model\": 3}", 12);
    expect_fail(good, path_in("bad-tok.json"), 0.1, "cannot load tokenizer");
    expect_fail(good, tok_path, 0.0, "validation fraction");
    expect_fail(good, tok_path, 0.5, "validation fraction");
    expect_fail(good, tok_path, -0.2, "validation fraction");
    expect_fail(good, tok_path, NAN, "validation fraction");
    const char *line = "the cat sat on the mat and the dog sat on the cat";
    write_text(oneline, line, strlen(line));
    expect_fail(oneline, tok_path, 0.1, "line break");
    write_text(few, "the cat sat.\nthe dog ran.\n", 26);
    expect_fail(few, tok_path, 0.3, "at least 32");
    CHECK(!dl_path_exists(path_in("failed/train.bin"))); /* too small to keep */
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir("prepare"));
    snprintf(tok_path, sizeof tok_path, "%s/tok.json", dir);
    dl_log_set_level(DL_LOG_QUIET);
    dl_buf text = {0};
    make_corpus(&text, 400);
    dl_error err = {{0}};
    dl_tokenizer *t = dl_tok_train(text.data, text.len, 300, NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t || dl_tok_save(t, tok_path, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    dl_tok_free(t);
    dl_buf_free(&text);

    test_round_trip(600, 0.1);
    test_round_trip(40000, 0.05); /* about 1.5 MB: encoded in several chunks */
    test_errors();
    CHECK(dl_rm_rf(dir, &err) == 0);
    TEST_MAIN_END();
}
