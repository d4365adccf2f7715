/* The demo's closing table: the teacher vs each student on the same validation windows and prompt. */
#include "demo/demo.h"
#include "eval/eval.h"
#include "eval/generate.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Validation windows: the same for both models, small enough to take seconds. */
#define EVAL_B 8
#define EVAL_T 128
#define EVAL_TOKENS 32768

typedef struct {
    dl_model m;
    dl_tokenizer *tok;
    double val_loss, tokens_per_s;
    int generated;
    dl_buf text; /* the greedy sample */
} side;

static int collect(const char *text, size_t len, void *user) {
    return dl_buf_append((dl_buf *)user, text, len);
}

static int side_load(side *s, const char *dir, dl_error *err) {
    memset(s, 0, sizeof *s);
    char tp[4096];
    if (dl_model_load(&s->m, dir, err)) return -1;
    if (dl_path_join(tp, sizeof tp, dir, "tokenizer.json", err)) return -1;
    s->tok = dl_tok_load(tp, err);
    return s->tok ? 0 : -1;
}

static void side_free(side *s) {
    if (s->tok) dl_tok_free(s->tok);
    dl_model_free(&s->m); // safe on the zeroed model of a failed load
    dl_buf_free(&s->text);
}

/* Greedy, so the sample is the model's own most likely text and the two are comparable. */
static int side_generate(side *s, const char *prompt, int max_tokens, dl_error *err) {
    dl_sampler_cfg greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    dl_generate_result res;
    if (dl_generate(&s->m, s->tok, prompt, max_tokens, &greedy, 1, collect, &s->text, &res, err)) return -1;
    s->tokens_per_s = res.tokens_per_s;
    s->generated = res.n_generated;
    return 0;
}

/* One line of sample text: newlines shown as spaces so the table stays readable. */
static void print_sample(const char *who, const char *prompt, const dl_buf *b) {
    printf("%s: %s", who, prompt);
    for (size_t i = 0; i < b->len; i++) putchar(b->data[i] == '\n' || b->data[i] == '\r' ? ' ' : b->data[i]);
    printf("\n");
}

/* One row: the teacher's value (a number, or text when fmt is NULL) then each student's. */
static void row(const char *what, const char *teacher_text, double teacher, const double *v, int n, const char *fmt) {
    char cell[32];
    printf("%-28s", what);
    if (teacher_text) printf(" %12s", teacher_text);
    else snprintf(cell, sizeof cell, fmt, teacher), printf(" %12s", cell);
    for (int i = 0; i < n; i++) snprintf(cell, sizeof cell, fmt, v[i]), printf(" %12s", cell);
    printf("\n");
}

static void print_table(const side *t, const side *s, const dl_eval_teacher_result *r, const char *const *names,
                        int n) {
    double v[DL_DEMO_MAX_STUDENTS];
    printf("\n%-28s %12s", "", "teacher");
    for (int i = 0; i < n; i++) printf(" %12s", names[i]);
    printf("\n");
    for (int i = 0; i < n; i++) v[i] = (double)s[i].m.lay.total;
    row("parameters", NULL, (double)t->m.lay.total, v, n, "%.0f");
    for (int i = 0; i < n; i++) v[i] = s[i].val_loss;
    row("validation loss (nats)", NULL, t->val_loss, v, n, "%.4f");
    for (int i = 0; i < n; i++) v[i] = exp(s[i].val_loss);
    row("validation perplexity", NULL, exp(t->val_loss), v, n, "%.2f");
    for (int i = 0; i < n; i++) v[i] = r[i].agreement;
    row("top-1 agreement w/ teacher", "1", 0, v, n, "%.3f");
    for (int i = 0; i < n; i++) v[i] = r[i].kl;
    row("KL(teacher || student)", "0", 0, v, n, "%.4f");
    for (int i = 0; i < n; i++) v[i] = s[i].tokens_per_s;
    row("generation tokens/s", NULL, t->tokens_per_s, v, n, "%.1f");
    printf("(over %llu validation positions; greedy generation of %d tokens by the teacher",
           (unsigned long long)r[0].student.tokens, t->generated);
    for (int i = 0; i < n; i++) printf(", %d by the %s student", s[i].generated, names[i]);
    printf(")\n\n");
}

int dl_demo_compare(const char *teacher_dir, const char *const *student_dirs, const char *const *names, int n,
                    const char *val_path, const char *prompt, int max_tokens, dl_error *err) {
    side t, s[DL_DEMO_MAX_STUDENTS];
    dl_eval_teacher_result r[DL_DEMO_MAX_STUDENTS];
    dl_tokfile f;
    int rc = -1, have_f = 0;
    if (n < 1 || n > DL_DEMO_MAX_STUDENTS) return dl_fail(err, "demo: 1 to %d students to compare", DL_DEMO_MAX_STUDENTS);
    memset(&t, 0, sizeof t);
    memset(s, 0, sizeof s);
    if (side_load(&t, teacher_dir, err) || dl_tokfile_open(&f, val_path, err)) goto done;
    have_f = 1;
    for (int i = 0; i < n; i++) {
        if (side_load(&s[i], student_dirs[i], err) ||
            dl_eval_teacher(&s[i].m, &t.m, &f, EVAL_B, EVAL_T, EVAL_TOKENS, &r[i], err))
            goto done;
        s[i].val_loss = r[i].student.mean_loss;
    }
    t.val_loss = r[0].teacher_loss;
    if (side_generate(&t, prompt, max_tokens, err)) goto done;
    for (int i = 0; i < n; i++)
        if (side_generate(&s[i], prompt, max_tokens, err)) goto done;
    print_table(&t, s, r, names, n);
    print_sample("teacher", prompt, &t.text);
    for (int i = 0; i < n; i++) print_sample(names[i], prompt, &s[i].text);
    rc = 0;
done:
    if (have_f) dl_tokfile_close(&f);
    side_free(&t);
    for (int i = 0; i < n; i++) side_free(&s[i]);
    return rc;
}
