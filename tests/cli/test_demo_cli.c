/* distil demo end to end on a small generated corpus with tiny step counts: the teacher, the
 * white-box student, the served teacher's harvest and the black-box student, the comparison
 * table with both and the files it promises; and bad corpora and flags. */
#include "cli_util.h"

static char tmp[512], corpus[700], out[700];

/* ~20 KB of varied sentences: enough for a 300-token tokenizer and a validation split (5%) longer
 * than the demo's 128-token evaluation windows. */
static void write_corpus(const char *path) {
    static const char *const who[] = {"The king", "A shepherd", "My brother", "The old woman", "Their captain",
                                      "A child", "The river", "Every stranger"};
    static const char *const did[] = {"walked to", "spoke of", "remembered", "looked upon", "built a wall by",
                                      "sang about", "forgot", "returned to"};
    static const char *const what[] = {"the city gate.", "the dry valley.", "a quiet harbour.", "the northern hills.",
                                       "seven white stones.", "the house of bread.", "an empty field.",
                                       "the long road home."};
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
    uint64_t x = 12345;
    for (int i = 0; i < 600; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull; // a fixed LCG: the same text every run
        fprintf(f, "%s %s %s%s", who[(x >> 33) & 7], did[(x >> 40) & 7], what[(x >> 47) & 7],
                (i % 5 == 4) ? "\n" : " ");
    }
    fclose(f);
}

static int file_nonempty(const char *dir, const char *name) {
    char p[1600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    int c = fgetc(f);
    fclose(f);
    return c != EOF;
}

static void test_demo_runs(void) {
    char a[2000];
    snprintf(a, sizeof a, "demo --corpus %s --out %s --vocab-size 300 --steps 3 --student-steps 2 --samples 1 "
                          "--sample-tokens 8 --threads 1 --seed 3 --harvest-prompts 6 --harvest-tokens 8 --bb-steps 2",
             corpus, out);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && !r->signaled, "status %d: %s", r->status, r->err);
    static const char *const rows[] = {"teacher sample 1", "teacher", "white-box", "black-box", "parameters",
                                       "validation loss", "top-1 agreement", "KL(teacher || student)",
                                       "generation tokens/s", "teacher: And it came to pass",
                                       "white-box: And it came to pass", "black-box: And it came to pass", NULL};
    for (const char *const *s = rows; *s; s++) CHECK_MSG(strstr(r->out, *s) != NULL, "'%s' missing: %s", *s, r->out);
    /* both students have fewer parameters than the teacher: read the numbers off the table */
    const char *pl = strstr(r->out, "parameters");
    unsigned long tp = 0, sp = 0, bp = 0;
    CHECK(pl && sscanf(pl + strlen("parameters"), "%lu %lu %lu", &tp, &sp, &bp) == 3);
    CHECK_MSG(sp > 0 && sp * 3 < tp && bp == sp, "teacher %lu students %lu %lu parameters", tp, sp, bp);
    /* a third column of numbers in the agreement row: the black-box student's */
    const char *ag = strstr(r->out, "top-1 agreement w/ teacher");
    double a1 = -1, a2 = -1;
    CHECK(ag && sscanf(ag + strlen("top-1 agreement w/ teacher"), " 1 %lf %lf", &a1, &a2) == 2);
    CHECK(a1 >= 0 && a1 <= 1 && a2 >= 0 && a2 <= 1);
    /* the harvest: one answer per prompt, with logprobs, from the server the demo ran */
    char hp[1600], *text = NULL;
    size_t len = 0;
    dl_error err;
    snprintf(hp, sizeof hp, "%s/harvest.jsonl", out);
    CHECK(dl_read_file(hp, &text, &len, &err) == 0 && len > 0);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    CHECK_MSG(lines == 6 && strstr(text, "\"top_logprobs\""), "%d harvest lines", lines);
    free(text);
    CHECK(strstr(r->err, "black-box student in") && strstr(r->err, "student-bb"));
    /* the proof: a line per student with pairs, green, z, p-value and a verdict */
    const char *pr = strstr(r->out, "provenance:");
    CHECK_MSG(pr != NULL, "no proof section: %s", r->out);
    for (int i = 0; pr && i < 2; i++) {
        const char *name = i ? "\n  black-box " : "\n  white-box ";
        const char *row = strstr(pr, name);
        long pairs = -1, green = -1;
        double z = 0, p = -1;
        CHECK_MSG(row && sscanf(row + strlen(name), "%ld %ld %lf %lf", &pairs, &green, &z, &p) == 4,
                  "proof row %s: %s", name, pr);
        CHECK_MSG(pairs > 0 && green >= 0 && green <= pairs && p >= 0 && p <= 1, "%ld %ld %g %g", pairs, green, z, p);
    }
    /* the key is the run's own: 32 bytes, never printed */
    char kp[1600], *key = NULL;
    size_t klen = 0;
    snprintf(kp, sizeof kp, "%s/watermark.key", out);
    CHECK(dl_read_file(kp, &key, &klen, &err) == 0 && klen == 32);
    free(key);
    const char *files[] = {"tokenizer.json", "config.json", "student.json", "data/train.bin", "data/val.bin",
                           "model/model.safetensors", "model/tokenizer.json", "student/model.safetensors",
                           "student/config.json", "student/metrics.jsonl", "prompts.jsonl", "usage.sqlite",
                           "student-bb/model.safetensors", "student-bb/metrics.jsonl", "student-bb/harvest/train.bin",
                           "heldout.txt", NULL};
    for (const char **f = files; *f; f++) CHECK_MSG(file_nonempty(out, *f), "%s/%s missing", out, *f);
}

static void test_demo_bad_input(void) {
    char a[2000], missing[800], empty[800];
    snprintf(missing, sizeof missing, "%s/no-such-corpus.txt", tmp);
    snprintf(a, sizeof a, "demo --corpus %s --out %s/bad1 --steps 1 --student-steps 1", missing, tmp);
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "no-such-corpus.txt");
    snprintf(empty, sizeof empty, "%s/empty.txt", tmp);
    write_text(empty, "");
    snprintf(a, sizeof a, "demo --corpus %s --out %s/bad2 --steps 1 --student-steps 1", empty, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "the corpus is empty");
    snprintf(a, sizeof a, "demo --corpus %s --out %s/bad3 --student-steps 0", corpus, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--student-steps");
    snprintf(a, sizeof a, "demo --corpus %s --out %s/bad4 --harvest-tokens 101", corpus, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--harvest-tokens");
    r = run_distil(tmp, "demo --help");
    CHECK(r->status == 0 && strstr(r->out, "--student-steps") && strstr(r->out, "--harvest-prompts") &&
          strstr(r->out, "--bb-steps") && strstr(r->out, "black-box"));
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("demo-cli"));
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmp);
    snprintf(out, sizeof out, "%s/run", tmp);
    write_corpus(corpus);
    test_demo_bad_input();
    test_demo_runs();
    dl_error err;
    CHECK(dl_rm_rf(tmp, &err) == 0);
    TEST_MAIN_END();
}
