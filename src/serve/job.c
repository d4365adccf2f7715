/* Jobs: what one request asked for and what its choices produced so far. The scheduler thread
 * writes tokens in; the request's HTTP thread reads them out (all at the end, or as a stream).
 *
 * Streaming must never send text it may have to take back, so a choice's text has a final
 * part and a held-back tail: bytes that could be the start of a stop string, or the first
 * bytes of a UTF-8 character whose other bytes come with the next token. */
#include "sched.h"
#include <stdlib.h>
#include <string.h>

static void job_free(dl_job *j) {
    for (int i = 0; i < j->n_prompts; i++) dl_ivec_free(&j->prompts[i]);
    free(j->prompts);
    for (int i = 0; i < j->n_choices; i++) dl_api_choice_free(&j->choices[i]);
    free(j->choices);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static int copy_inputs(dl_job *j, const dl_ivec *prompts, char *const *stop) {
    for (int i = 0; i < j->n_prompts; i++) {
        if (dl_ivec_reserve(&j->prompts[i], prompts[i].len)) return -1;
        memcpy(j->prompts[i].data, prompts[i].data, prompts[i].len * sizeof(int32_t));
        j->prompts[i].len = prompts[i].len;
    }
    for (int i = 0; i < j->n_stop; i++)
        if (!(j->stop[i] = strdup(stop[i]))) return -1;
    for (int i = 0; i < j->n_choices; i++) j->choices[i].n_top = j->n_top > 0 ? j->n_top : 0;
    return 0;
}

dl_job *dl_job_new(const dl_ivec *prompts, int n_prompts, int n_per_prompt, int max_tokens,
                   const dl_sampler_cfg *scfg, uint64_t seed, int n_top, char *const *stop, int n_stop,
                   int stream) {
    if (n_prompts <= 0 || n_per_prompt <= 0 || n_stop < 0 || n_stop > DL_API_MAX_STOP) return NULL;
    dl_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->n_prompts = n_prompts;
    j->n_per_prompt = n_per_prompt;
    j->n_choices = n_prompts * n_per_prompt;
    j->max_tokens = max_tokens;
    j->scfg = *scfg;
    j->seed = seed;
    j->n_top = n_top;
    j->n_stop = n_stop;
    j->stream = stream;
    j->prompts = calloc((size_t)n_prompts, sizeof *j->prompts);
    j->choices = calloc((size_t)j->n_choices, sizeof *j->choices);
    if (!j->prompts || !j->choices || copy_inputs(j, prompts, stop)) {
        job_free(j);
        return NULL;
    }
    return j;
}

void dl_job_cancel(dl_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancelled = 1;
    pthread_mutex_unlock(&j->mu);
}

void dl_job_wait(dl_job *j) {
    pthread_mutex_lock(&j->mu);
    while (j->n_done < j->n_choices) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

void dl_job_release(dl_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) job_free(j);
}

static int grow(dl_api_choice *c) {
    if (c->tokens.len < c->cap) return 0;
    size_t cap = c->cap ? 2 * c->cap : 64, per = (size_t)(c->n_top > 0 ? c->n_top : 1);
    float *lp = realloc(c->logprob, cap * sizeof *lp);
    if (lp) c->logprob = lp;
    size_t *st = realloc(c->start, cap * sizeof *st);
    if (st) c->start = st;
    dl_api_top *top = realloc(c->top, cap * per * sizeof *top);
    if (top) c->top = top;
    if (!lp || !st || !top || dl_ivec_reserve(&c->tokens, cap)) return -1;
    c->cap = cap;
    return 0;
}

/* Tokens whose text starts before byte `end` belong to the text up to there. */
static size_t tokens_before(const dl_api_choice *c, size_t end) {
    size_t k = c->tokens.len;
    while (k > 0 && c->start[k - 1] >= end) k--;
    return k;
}

/* Where a stop string first occurs in the text, looking only where the last token could have
 * completed one; -1 if nowhere. */
static long find_stop(const dl_job *j, const dl_buf *t, size_t old_len) {
    long best = -1;
    for (int i = 0; i < j->n_stop; i++) {
        size_t L = strlen(j->stop[i]), from = old_len >= L ? old_len - L + 1 : 0;
        if (t->len < L) continue;
        const char *hit = memmem(t->data + from, t->len - from, j->stop[i], L);
        if (hit && (best < 0 || hit - t->data < best)) best = hit - t->data;
    }
    return best;
}

/* Bytes at the end of the text that might still turn into a stop string or a character. */
static size_t holdback(const dl_job *j, const dl_buf *t) {
    size_t hb = dl_utf8_incomplete_tail(t->data, t->len);
    for (int i = 0; i < j->n_stop; i++) {
        size_t L = strlen(j->stop[i]);
        for (size_t k = L - 1 < t->len ? L - 1 : t->len; k > hb; k--)
            if (memcmp(t->data + t->len - k, j->stop[i], k) == 0) {
                hb = k;
                break;
            }
    }
    return hb;
}

/* cut: a stop string cut the text, so the tokens after the cut do not belong to it */
static int finish_locked(dl_job *j, int choice, const char *reason, int cut) {
    dl_api_choice *c = &j->choices[choice];
    if (c->done) return 0;
    c->done = 1;
    c->finish_reason = reason;
    c->final_len = c->text.len;
    c->out_tokens = cut ? tokens_before(c, c->text.len) : c->tokens.len;
    j->n_done++;
    pthread_cond_broadcast(&j->cv);
    return j->n_done == j->n_choices;
}

int dl_job_push_token(dl_job *j, int choice, int32_t id, const char *bytes, size_t n, float logprob,
                      const dl_api_top *top) {
    pthread_mutex_lock(&j->mu);
    dl_api_choice *c = &j->choices[choice];
    int rc = grow(c);
    size_t k = c->tokens.len, old_len = c->text.len;
    if (rc == 0) {
        c->tokens.data[k] = id;
        c->tokens.len = k + 1;
        c->logprob[k] = logprob;
        c->start[k] = old_len;
        if (c->n_top > 0) memcpy(c->top + k * (size_t)c->n_top, top, (size_t)c->n_top * sizeof *top);
        rc = dl_buf_append(&c->text, bytes, n);
    }
    if (rc == 0) {
        long at = find_stop(j, &c->text, old_len);
        if (at >= 0) {
            c->text.len = (size_t)at;
            c->text.data[at] = 0;
            finish_locked(j, choice, "stop", 1);
            rc = 1;
        } else {
            c->final_len = c->text.len - holdback(j, &c->text);
            c->out_tokens = tokens_before(c, c->final_len);
            if (j->stream) pthread_cond_broadcast(&j->cv);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int dl_job_finish(dl_job *j, int choice, const char *reason) {
    pthread_mutex_lock(&j->mu);
    int last = finish_locked(j, choice, reason, 0);
    pthread_mutex_unlock(&j->mu);
    return last;
}
