/* The scheduler thread: queue -> slots -> prefill -> (sample, emit, batched decode) per step.
 * The scheduler holds one job reference per choice, dropped when it is done with that choice. */
#include "sched.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    dl_job *job;
    int choice;
    int n_gen;
    const dl_ivec *prompt;
    int fed;       /* prompt tokens in the cache; the prompt is done when fed == prompt->len */
    dl_kv_cache kv;
    float *logits; /* (V) the next token's logits, valid once the prompt is done */
    dl_rng rng;
} slot;

/* A short prompt rides along in the batched steps, one token a step, instead of being
 * prefilled on its own: a prefill of a few tokens costs the whole batch several steps
 * (sgemm on a few rows), one more row in a step costs little. A long prompt is prefilled in
 * one call, all but its last token, which then rides along like the rest. */
#define RIDE_ALONG_MAX 16

struct dl_sched {
    const dl_model *m;
    const dl_tokenizer *tok;
    int eot, max_batch, max_queue;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dl_job *head, *tail;
    int queued_jobs, queued_choices, stop, joined;
    slot *slots;           /* [0, n_active) in use; only the scheduler thread touches them */
    int n_active;
    dl_kv_cache **batch_kv; /* (max_batch) */
    int32_t *batch_tok;
    float *batch_logits;    /* (max_batch, V) */
    dl_api_top *top;        /* (DL_API_MAX_TOP_LOGPROBS) scratch */
    const dl_wm *wm;        /* NULL: no watermark */
    long long steps, rows, tokens; /* the scheduler thread's counters */
    dl_sched_stats shown;           /* what dl_sched_get_stats reads (under mu) */
};

/* ---- the queue (under s->mu) ------------------------------------------------------------- */

int dl_sched_submit(dl_sched *s, dl_job *j) {
    pthread_mutex_lock(&s->mu);
    int ok = !s->stop && s->queued_jobs < s->max_queue;
    if (ok) {
        pthread_mutex_lock(&j->mu);
        j->refs += j->n_choices;
        pthread_mutex_unlock(&j->mu);
        j->next_choice = 0;
        j->next = NULL;
        if (s->tail) s->tail->next = j;
        else s->head = j;
        s->tail = j;
        s->queued_jobs++;
        s->queued_choices += j->n_choices;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : -1;
}

// the next waiting choice, or NULL; the queue keeps a job until its last choice leaves
static dl_job *pop_choice(dl_sched *s, int *choice) {
    dl_job *j = s->head;
    if (!j) return NULL;
    *choice = j->next_choice++;
    s->queued_choices--;
    if (j->next_choice == j->n_choices) {
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        s->queued_jobs--;
    }
    return j;
}

void dl_sched_get_stats(dl_sched *s, dl_sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    *st = s->shown;
    st->queued_jobs = s->queued_jobs;
    st->queued_choices = s->queued_choices;
    pthread_mutex_unlock(&s->mu);
}

/* ---- one choice's life in a slot ---------------------------------------------------------- */

static int is_cancelled(dl_job *j) {
    pthread_mutex_lock(&j->mu);
    int c = j->cancelled;
    pthread_mutex_unlock(&j->mu);
    return c;
}

static void fail_job(dl_job *j, const char *msg) {
    pthread_mutex_lock(&j->mu);
    if (!j->failed) snprintf(j->error, sizeof j->error, "%.255s", msg);
    j->failed = 1;
    j->cancelled = 1;
    pthread_mutex_unlock(&j->mu);
}

static void done_with(dl_job *j, int choice, const char *reason) {
    dl_job_finish(j, choice, reason);
    dl_job_release(j);
}

// slot sl gets (j, choice): a cache for prompt + max_tokens; a long prompt prefilled
static int start_slot(dl_sched *s, slot *sl, dl_job *j, int choice) {
    const dl_ivec *p = &j->prompts[choice / j->n_per_prompt];
    long need = (long)p->len + j->max_tokens;
    dl_error err;
    sl->job = j;
    sl->choice = choice;
    sl->n_gen = 0;
    sl->prompt = p;
    sl->fed = 0;
    dl_rng_seed(&sl->rng, j->seed + (uint64_t)choice);
    int rc = dl_kv_cache_create(&sl->kv, &s->m->cfg, need < s->m->cfg.max_T ? (int)need : s->m->cfg.max_T, &err);
    if (rc == 0 && p->len > RIDE_ALONG_MAX) {
        rc = dl_model_decode(s->m, &sl->kv, p->data, (int)p->len - 1, sl->logits, 0, &err);
        sl->fed = (int)p->len - 1;
    }
    if (rc) {
        fail_job(j, err.msg);
        dl_kv_cache_free(&sl->kv);
        return -1;
    }
    return 0;
}

static int prompt_done(const slot *sl) { return sl->fed == (int)sl->prompt->len; }

// log-softmax of the chosen token and the n_top most likely ones (at temperature 1)
static float token_logprobs(const float *logits, int V, int id, dl_api_top *top, int n_top) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += isfinite(logits[i]) ? exp((double)logits[i] - mx) : 0.0;
    float lse = mx + (float)log(sum);
    int have = 0;
    for (int i = 0; i < V && n_top > 0; i++) {
        /* insertion into a sorted list of at most n_top; ties keep the lower id first */
        if (have == n_top && !(logits[i] > top[have - 1].logprob)) continue;
        int at = have < n_top ? have++ : n_top - 1;
        while (at > 0 && logits[i] > top[at - 1].logprob) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = (dl_api_top){.id = i, .logprob = logits[i]};
    }
    for (int k = 0; k < have; k++) top[k].logprob -= lse;
    return logits[id] - lse;
}

/* The watermark's bias on the slot's logits, which the sampler and the logprobs both read next.
 * The context is the last H tokens of prompt + completion; with fewer, the position is left alone. */
static void watermark(const dl_sched *s, slot *sl) {
    const dl_wm *wm = s->wm;
    const dl_ivec *gen = &sl->job->choices[sl->choice].tokens;
    size_t plen = sl->prompt->len, have = plen + gen->len;
    if (have < (size_t)wm->H) return;
    int32_t ctx[DL_WM_MAX_CONTEXT];
    for (int k = 0; k < wm->H; k++) {
        size_t p = have - (size_t)wm->H + (size_t)k;
        ctx[k] = p < plen ? sl->prompt->data[p] : gen->data[p - plen];
    }
    dl_wm_bias(wm, ctx, sl->logits, s->m->cfg.V);
}

static int is_end(const dl_sched *s, int id) { return id == s->m->cfg.eos_id || (id >= 0 && id == s->eot); }

/* Samples the slot's next token and hands it to the job. Returns 1 when the choice is over. */
static int sample_slot(dl_sched *s, slot *sl) {
    dl_job *j = sl->job;
    if (is_cancelled(j)) return done_with(j, sl->choice, NULL), 1;
    if (!prompt_done(sl)) return 0;
    if (s->wm) watermark(s, sl);
    int V = s->m->cfg.V, id = dl_sample(sl->logits, V, &j->scfg, &sl->rng);
    if (id < 0) {
        fail_job(j, "the model produced no finite logit");
        return done_with(j, sl->choice, NULL), 1;
    }
    if (is_end(s, id)) return done_with(j, sl->choice, "stop"), 1;
    float lp = j->n_top >= 0 ? token_logprobs(sl->logits, V, id, s->top, j->n_top) : 0.0f;
    size_t n = 0;
    const char *bytes = id < dl_tok_vocab_size(s->tok) ? dl_tok_token(s->tok, id, &n) : NULL;
    if (!bytes) bytes = "\xef\xbf\xbd", n = 3; /* a padded id past the tokenizer has no text */
    sl->n_gen++;
    s->tokens++;
    int rc = dl_job_push_token(j, sl->choice, id, bytes, n, lp, s->top);
    if (rc < 0) fail_job(j, "out of memory");
    if (rc != 0) return done_with(j, sl->choice, NULL), 1; /* a stop string already finished it */
    if (sl->n_gen >= j->max_tokens || sl->kv.pos >= sl->kv.max_T) return done_with(j, sl->choice, "length"), 1;
    return 0;
}

static void free_slot(dl_sched *s, int i) {
    dl_kv_cache_free(&s->slots[i].kv);
    /* keep [0, n_active) dense: the last slot moves into the hole (logits buffers swap too) */
    slot hole = s->slots[i];
    s->slots[i] = s->slots[s->n_active - 1];
    s->slots[s->n_active - 1] = hole;
    s->n_active--;
}

// every active slot feeds its next prompt token or its last sampled one; the logits of all
// come back in one call
static void decode_step(dl_sched *s) {
    int B = s->n_active, V = s->m->cfg.V;
    for (int b = 0; b < B; b++) {
        slot *sl = &s->slots[b];
        const dl_ivec *out = &sl->job->choices[sl->choice].tokens;
        s->batch_kv[b] = &sl->kv;
        s->batch_tok[b] = prompt_done(sl) ? out->data[out->len - 1] : sl->prompt->data[sl->fed];
    }
    dl_error err;
    if (dl_model_decode_batch(s->m, s->batch_kv, s->batch_tok, B, s->batch_logits, &err)) {
        for (int b = 0; b < B; b++) fail_job(s->slots[b].job, err.msg);
        return; /* the next step finds them cancelled */
    }
    for (int b = 0; b < B; b++) {
        slot *sl = &s->slots[b];
        if (!prompt_done(sl)) sl->fed++;
        if (prompt_done(sl)) memcpy(sl->logits, s->batch_logits + (size_t)b * V, (size_t)V * sizeof(float));
    }
    s->steps++;
    s->rows += B;
}

/* ---- the thread ------------------------------------------------------------------------------ */

// moves waiting choices into free slots; returns the index of the first new slot
static int admit(dl_sched *s) {
    int first = s->n_active, choice;
    dl_job *j;
    while (s->n_active < s->max_batch && (j = pop_choice(s, &choice))) {
        slot *sl = &s->slots[s->n_active++];
        *sl = (slot){.job = j, .choice = choice, .logits = sl->logits};
    }
    return first;
}

static void run_step(dl_sched *s, int first_new) {
    for (int i = first_new; i < s->n_active;) {
        slot *sl = &s->slots[i];
        if (is_cancelled(sl->job) || start_slot(s, sl, sl->job, sl->choice)) {
            done_with(sl->job, sl->choice, NULL);
            /* the slot never got a cache: move the last one here without freeing */
            slot hole = *sl;
            *sl = s->slots[s->n_active - 1];
            s->slots[--s->n_active] = hole;
            continue;
        }
        i++;
    }
    for (int i = 0; i < s->n_active;) {
        if (sample_slot(s, &s->slots[i])) free_slot(s, i);
        else i++;
    }
    if (s->n_active > 0) decode_step(s);
}

static void drain_all(dl_sched *s) {
    for (int i = 0; i < s->n_active; i++) {
        dl_job_cancel(s->slots[i].job);
        done_with(s->slots[i].job, s->slots[i].choice, NULL);
        dl_kv_cache_free(&s->slots[i].kv);
    }
    s->n_active = 0;
    int choice;
    dl_job *j;
    pthread_mutex_lock(&s->mu);
    while ((j = pop_choice(s, &choice))) {
        dl_job_cancel(j);
        done_with(j, choice, NULL);
    }
    pthread_mutex_unlock(&s->mu);
}

// the counters as /metrics sees them (under s->mu)
static void publish(dl_sched *s) {
    s->shown.active = s->n_active;
    s->shown.steps = s->steps;
    s->shown.rows = s->rows;
    s->shown.tokens = s->tokens;
}

static void *sched_main(void *arg) {
    dl_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        publish(s);
        while (!s->stop && !s->head && s->n_active == 0) pthread_cond_wait(&s->cv, &s->mu);
        int stop = s->stop, first_new = stop ? s->n_active : admit(s);
        publish(s);
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        run_step(s, first_new);
    }
    drain_all(s);
    return NULL;
}

static void sched_free(dl_sched *s) {
    for (int i = 0; s->slots && i < s->max_batch; i++) free(s->slots[i].logits);
    free(s->slots);
    free(s->batch_kv);
    free(s->batch_tok);
    free(s->batch_logits);
    free(s->top);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

dl_sched *dl_sched_start(const dl_model *m, const dl_tokenizer *tok, int max_batch, int max_queue,
                         dl_error *err) {
    if (max_batch < 1 || max_queue < 1) {
        dl_fail(err, "scheduler: max batch %d and max queue %d must be at least 1", max_batch, max_queue);
        return NULL;
    }
    dl_sched *s = calloc(1, sizeof *s);
    if (!s) return dl_fail(err, "out of memory"), NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->m = m;
    s->tok = tok;
    s->eot = dl_tok_eot_id(tok);
    s->max_batch = max_batch;
    s->max_queue = max_queue;
    size_t V = (size_t)m->cfg.V, B = (size_t)max_batch;
    s->slots = calloc(B, sizeof *s->slots);
    s->batch_kv = calloc(B, sizeof *s->batch_kv);
    s->batch_tok = calloc(B, sizeof *s->batch_tok);
    s->batch_logits = malloc(B * V * sizeof(float));
    s->top = calloc(DL_API_MAX_TOP_LOGPROBS, sizeof *s->top);
    int ok = s->slots && s->batch_kv && s->batch_tok && s->batch_logits && s->top;
    for (size_t i = 0; ok && i < B; i++) ok = (s->slots[i].logits = malloc(V * sizeof(float))) != NULL;
    if (!ok) {
        sched_free(s);
        dl_fail(err, "scheduler: out of memory for %d slots", max_batch);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, sched_main, s)) {
        sched_free(s);
        dl_fail(err, "scheduler: cannot start its thread");
        return NULL;
    }
    return s;
}

void dl_sched_set_watermark(dl_sched *s, const dl_wm *wm) {
    pthread_mutex_lock(&s->mu); /* the thread reads it after taking mu for its next job */
    s->wm = wm;
    pthread_mutex_unlock(&s->mu);
}

void dl_sched_stop(dl_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!s->joined) pthread_join(s->thread, NULL);
    s->joined = 1;
}

void dl_sched_free(dl_sched *s) {
    if (!s) return;
    dl_sched_stop(s);
    sched_free(s);
}
