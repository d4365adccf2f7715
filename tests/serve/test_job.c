/* A job's choices as tokens arrive: stop strings cut the text (also across tokens and in the
 * middle of one), streaming never sees bytes that a stop string or an unfinished UTF-8
 * character may still take back, and the tokens kept match the text kept. */
#include "serve/sched.h"
#include "test.h"

static dl_job *new_job(int n_prompts, int n, char **stop, int n_stop) {
    dl_ivec prompts[2] = {{0}, {0}};
    for (int i = 0; i < n_prompts; i++) dl_ivec_push(&prompts[i], 1 + i);
    dl_sampler_cfg cfg = {0.0f, 0, 1.0f};
    dl_job *j = dl_job_new(prompts, n_prompts, n, 10, &cfg, 7, -1, stop, n_stop, 1);
    for (int i = 0; i < n_prompts; i++) dl_ivec_free(&prompts[i]);
    return j;
}

static int push(dl_job *j, int choice, const char *text) {
    return dl_job_push_token(j, choice, 42, text, strlen(text), -1.0f, NULL);
}

static void test_stop_across_tokens(void) {
    char *stop[2] = {"END", "\n\n"};
    dl_job *j = new_job(1, 1, stop, 2);
    dl_api_choice *c = &j->choices[0];
    CHECK(push(j, 0, "ab") == 0 && c->final_len == 2 && c->out_tokens == 1);
    CHECK(push(j, 0, "E") == 0 && c->final_len == 2);  /* "E" may begin "END" */
    CHECK(push(j, 0, "N") == 0 && c->final_len == 2);  /* so may "EN" */
    CHECK(c->out_tokens == 1);                          /* the held tokens are not sent either */
    CHECK(push(j, 0, "D!") == 1);                       /* "END" completed inside a token */
    CHECK(c->done && !strcmp(c->finish_reason, "stop"));
    CHECK(c->text.len == 2 && !strcmp(c->text.data, "ab") && c->final_len == 2);
    CHECK(c->tokens.len == 4 && c->out_tokens == 1);
    CHECK(j->n_done == 1);
    dl_job_release(j);

    j = new_job(1, 1, stop, 2);
    c = &j->choices[0];
    CHECK(push(j, 0, "xE") == 0 && c->final_len == 1);
    CHECK(push(j, 0, "x") == 0 && c->final_len == 3); /* "Ex" can no longer become a stop */
    CHECK(push(j, 0, "\n") == 0 && c->final_len == 3);
    CHECK(push(j, 0, "\n") == 1 && !strcmp(c->text.data, "xEx") && c->out_tokens == 2);
    dl_job_release(j);

    j = new_job(1, 1, stop, 2);
    c = &j->choices[0];
    CHECK(push(j, 0, "END") == 1 && c->text.len == 0 && c->out_tokens == 0); /* stop right away */
    dl_job_release(j);

    j = new_job(1, 1, stop, 2);
    c = &j->choices[0];
    CHECK(push(j, 0, "abENDcdEND") == 1 && !strcmp(c->text.data, "ab") && c->out_tokens == 1); /* the first one wins */
    dl_job_release(j);
}

static void test_utf8_holdback(void) {
    dl_job *j = new_job(1, 1, NULL, 0);
    dl_api_choice *c = &j->choices[0];
    CHECK(push(j, 0, "a\xe2\x82") == 0 && c->final_len == 1); /* the euro sign is not complete yet */
    CHECK(push(j, 0, "\xac") == 0 && c->final_len == 4);
    CHECK(push(j, 0, "\xf0") == 0 && c->final_len == 4);
    /* finishing releases whatever was held, complete or not */
    CHECK(dl_job_finish(j, 0, "length") == 1);
    CHECK(c->final_len == 5 && c->out_tokens == 3 && !strcmp(c->finish_reason, "length"));
    CHECK(dl_job_finish(j, 0, "stop") == 0 && !strcmp(c->finish_reason, "length")); /* only once */
    dl_job_release(j);
}

static void test_choices_and_refs(void) {
    char *stop[1] = {"."};
    dl_job *j = new_job(2, 3, stop, 1);
    CHECK(j->n_choices == 6 && j->prompts[1].len == 1 && j->prompts[1].data[0] == 2);
    CHECK(j->stop[0] != stop[0] && !strcmp(j->stop[0], ".")); /* copied */
    for (int i = 0; i < 5; i++) CHECK(dl_job_finish(j, i, "length") == 0);
    CHECK(push(j, 5, "x.") == 1 && j->n_done == 6);
    dl_job_wait(j); /* returns at once: all done */
    dl_job_cancel(j);
    CHECK(j->cancelled == 1);
    dl_job_release(j);

    char *too_many[5] = {"a", "b", "c", "d", "e"};
    CHECK(new_job(1, 1, too_many, 5) == NULL);
}

int main(void) {
    test_stop_across_tokens();
    test_utf8_holdback();
    test_choices_and_refs();
    TEST_MAIN_END();
}
