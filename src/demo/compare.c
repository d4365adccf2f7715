/* The demo's closing table: teacher vs student on the same validation windows and prompt. */
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
    printf("%-8s %s", who, prompt);
    for (size_t i = 0; i < b->len; i++) putchar(b->data[i] == '\n' || b->data[i] == '\r' ? ' ' : b->data[i]);
    printf("\n");
}

static void print_table(const side *t, const side *s, const dl_eval_teacher_result *r) {
    printf("\n%-28s %12s %12s\n", "", "teacher", "student");
    printf("%-28s %12zu %12zu\n", "parameters", t->m.lay.total, s->m.lay.total);
    printf("%-28s %12.4f %12.4f\n", "validation loss (nats)", t->val_loss, s->val_loss);
    printf("%-28s %12.2f %12.2f\n", "validation perplexity", exp(t->val_loss), exp(s->val_loss));
    printf("%-28s %12s %12.3f\n", "top-1 agreement w/ teacher", "1", r->agreement);
    printf("%-28s %12s %12.4f\n", "KL(teacher || student)", "0", r->kl);
    printf("%-28s %12.1f %12.1f\n", "generation tokens/s", t->tokens_per_s, s->tokens_per_s);
    printf("(over %llu validation positions; greedy generation of %d and %d tokens)\n\n",
           (unsigned long long)r->student.tokens, t->generated, s->generated);
}

int dl_demo_compare(const char *teacher_dir, const char *student_dir, const char *val_path, const char *prompt,
                    int max_tokens, dl_error *err) {
    side t, s;
    dl_tokfile f;
    int rc = -1, have_f = 0;
    memset(&t, 0, sizeof t);
    memset(&s, 0, sizeof s);
    if (side_load(&t, teacher_dir, err) || side_load(&s, student_dir, err)) goto done;
    if (dl_tokfile_open(&f, val_path, err)) goto done;
    have_f = 1;
    dl_eval_teacher_result r;
    if (dl_eval_teacher(&s.m, &t.m, &f, EVAL_B, EVAL_T, EVAL_TOKENS, &r, err)) goto done;
    t.val_loss = r.teacher_loss;
    s.val_loss = r.student.mean_loss;
    if (side_generate(&t, prompt, max_tokens, err) || side_generate(&s, prompt, max_tokens, err)) goto done;
    print_table(&t, &s, &r);
    print_sample("teacher:", prompt, &t.text);
    print_sample("student:", prompt, &s.text);
    rc = 0;
done:
    if (have_f) dl_tokfile_close(&f);
    side_free(&t);
    side_free(&s);
    return rc;
}
