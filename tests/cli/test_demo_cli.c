/* distil demo end to end on a small generated corpus with tiny step counts: the teacher, the
 * distilled student, the comparison table and the files it promises; and bad corpora. */
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
                          "--sample-tokens 8 --threads 1 --seed 3", corpus, out);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && !r->signaled, "status %d: %s", r->status, r->err);
    static const char *const rows[] = {"teacher sample 1", "teacher", "student", "parameters", "validation loss",
                                       "top-1 agreement", "generation tokens/s", "teacher: And it came to pass",
                                       "student: And it came to pass", NULL};
    for (const char *const *s = rows; *s; s++) CHECK_MSG(strstr(r->out, *s) != NULL, "'%s' missing: %s", *s, r->out);
    /* the student has fewer parameters than the teacher: read both numbers off the table */
    const char *pl = strstr(r->out, "parameters");
    unsigned long tp = 0, sp = 0;
    CHECK(pl && sscanf(pl + strlen("parameters"), "%lu %lu", &tp, &sp) == 2);
    CHECK_MSG(sp > 0 && sp * 3 < tp, "teacher %lu student %lu parameters", tp, sp);
    const char *files[] = {"tokenizer.json", "config.json", "student.json", "data/train.bin", "data/val.bin",
                           "model/model.safetensors", "model/tokenizer.json", "student/model.safetensors",
                           "student/config.json", "student/metrics.jsonl", NULL};
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
    r = run_distil(tmp, "demo --help");
    CHECK(r->status == 0 && strstr(r->out, "--student-steps") && strstr(r->out, "student"));
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("demo-cli"));
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmp);
    snprintf(out, sizeof out, "%s/run", tmp);
    write_corpus(corpus);
    test_demo_bad_input();
    test_demo_runs();
    TEST_MAIN_END();
}
