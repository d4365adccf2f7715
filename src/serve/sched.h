/* sched: the batching scheduler. One thread owns the model. Requests arrive as jobs (a job holds
 * every choice of one request: prompts x n); their choices wait in a queue and enter up to
 * max_batch decoding slots, each with a KV cache of its own. Then they advance together: each
 * step samples one token for every choice whose prompt is in, and feeds every slot's next
 * token (a sampled one, or the next token of a prompt still going in) through the model in one
 * batched call (dl_model_decode_batch). Short prompts go in that way, a token a step; long ones
 * are prefilled in one call first. A choice that finishes frees its slot for the next waiting
 * one at once, so short and long requests mix. */
#ifndef DISTIL_SERVE_SCHED_H
#define DISTIL_SERVE_SCHED_H

#include "api.h"
#include "model/model.h"
#include "model/sampler.h"
#include "provenance/provenance.h"
#include <pthread.h>

typedef struct dl_job {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a choice finishes, and on every token when streaming */
    int refs;          /* the submitter's and the scheduler's */

    /* inputs, fixed at creation */
    int n_prompts, n_per_prompt, n_choices; /* choice i continues prompt i / n_per_prompt */
    dl_ivec *prompts;
    int max_tokens;
    dl_sampler_cfg scfg;
    uint64_t seed;     /* choice i samples from an rng seeded with seed + i */
    int n_top;         /* -1: no logprobs; else alternatives per token */
    char *stop[DL_API_MAX_STOP];
    int n_stop;
    int stream;

    /* outputs, under mu */
    dl_api_choice *choices;
    int n_done;
    int cancelled;     /* the client went away, or the server is stopping */
    int failed;        /* the model failed; error says why */
    char error[256];

    /* the scheduler's bookkeeping (under the scheduler's lock) */
    int next_choice;
    struct dl_job *next;
} dl_job;

/* A job for the given prompt ids (copied). Returns NULL when out of memory. */
dl_job *dl_job_new(const dl_ivec *prompts, int n_prompts, int n_per_prompt, int max_tokens,
                   const dl_sampler_cfg *scfg, uint64_t seed, int n_top, char *const *stop, int n_stop,
                   int stream);
/* Asks the scheduler to drop the job's choices (finished as they are). */
void dl_job_cancel(dl_job *j);
/* Blocks until every choice is done. */
void dl_job_wait(dl_job *j);
void dl_job_release(dl_job *j);

/* The scheduler's side (job.c). Appends a sampled token (its bytes, its logprob, and n_top
 * alternatives) to a choice and checks the stop strings: returns 1 when a stop string ended
 * the choice (it is then finished), 0 to go on, -1 when out of memory. */
int dl_job_push_token(dl_job *j, int choice, int32_t id, const char *bytes, size_t n, float logprob,
                      const dl_api_top *top);
/* Marks a choice done ("stop", "length", or NULL for cancelled/failed). Returns 1 when it was
 * the job's last. */
int dl_job_finish(dl_job *j, int choice, const char *reason);

typedef struct dl_sched dl_sched;
typedef struct dl_sched_stats {
    int queued_jobs, queued_choices, active;
    long long steps, rows, tokens; /* batched decode steps, rows they held, tokens sampled */
} dl_sched_stats;

/* The end tokens are the config's eos_token_id and the tokenizer's "<|endoftext|>". */
dl_sched *dl_sched_start(const dl_model *m, const dl_tokenizer *tok, int max_batch, int max_queue,
                         dl_error *err);
/* Every choice from now on is sampled with the watermark: delta on the logits of the tokens green
 * after the last H tokens of prompt + completion, before sampling and logprobs (fewer than H
 * tokens: no bias). wm stays the caller's and must outlive the scheduler; call it before the
 * first submit. */
void dl_sched_set_watermark(dl_sched *s, const dl_wm *wm);
/* Queues a job (the scheduler takes a reference). Returns -1, leaving the job untouched, when
 * max_queue jobs are already waiting or the scheduler is stopping. */
int dl_sched_submit(dl_sched *s, dl_job *j);
void dl_sched_get_stats(dl_sched *s, dl_sched_stats *st);
/* Cancels whatever is queued or running and joins the thread; later submits fail. */
void dl_sched_stop(dl_sched *s);
void dl_sched_free(dl_sched *s);

#endif
