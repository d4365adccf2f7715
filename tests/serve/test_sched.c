/* The batching scheduler against single-stream generation: prompts decoded together, with more
 * of them than slots (so slots are reused mid-flight), must give each the text dl_generate
 * gives it alone, greedy and seeded; logprobs must be the model's log-softmax at each
 * position; cancelling, a full queue and stopping must end every job. */
#include "eval/generate.h"
#include "serve/sched.h"
#include "test.h"
#include "ops/ops.h"

static const char *CORPUS = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat.\n"
                            "the quick brown fox jumps over the lazy dog. the cat saw the fox and the dog ran.\n";

static dl_tokenizer *tok;
static dl_model model;

static void setup(void) {
    dl_error err;
    tok = dl_tok_train(CORPUS, strlen(CORPUS), 300, NULL, &err);
    dl_config c = {.V = dl_tok_vocab_size(tok), .C = 32, .F = 48, .L = 2, .NH = 4, .NKV = 2, .max_T = 64,
                   .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = 0, .bos_id = -1, .eos_id = dl_tok_eot_id(tok)};
    if (!tok || dl_model_create(&model, &c, &err)) { fprintf(stderr, "setup: %s\n", err.msg); exit(2); }
    dl_model_init_random(&model, 11);
    for (size_t i = 0; i < model.lay.total; i++) model.params[i] *= 4.0f;
}

static int collect(const char *s, size_t n, void *user) {
    dl_buf_append(user, s, n);
    return 0;
}

static void reference_text(const char *prompt, int max_tokens, const dl_sampler_cfg *cfg, uint64_t seed, dl_buf *out) {
    dl_generate_result res;
    dl_error err;
    dl_buf_append(out, "", 0);
    if (dl_generate(&model, tok, prompt, max_tokens, cfg, seed, collect, out, &res, &err)) fprintf(stderr, "%s\n", err.msg);
}

static dl_job *job_for(const char *prompt, int n, int max_tokens, const dl_sampler_cfg *cfg, uint64_t seed, int n_top) {
    dl_ivec ids = {0};
    dl_error err;
    dl_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &err);
    dl_job *j = dl_job_new(&ids, 1, n, max_tokens, cfg, seed, n_top, NULL, 0, 0);
    dl_ivec_free(&ids);
    return j;
}

/* short prompts ride along in the batched steps; the last one is long enough to be prefilled */
#define NP 8
static const char *PROMPTS[NP] = {"the cat", "a dog met", "the quick brown", "fox", "the lazy dog ran and", "mat", "on the",
                                  "a cat and a dog met on the mat. the quick brown fox jumps over the lazy dog. the"};

static void test_matches_single_stream(float temperature) {
    dl_error err;
    dl_sched *s = dl_sched_start(&model, tok, 3, 16, &err);
    dl_sampler_cfg cfg = {temperature, 0, 1.0f};
    dl_job *jobs[NP];
    dl_ivec ids = {0};
    dl_tok_encode(tok, PROMPTS[NP - 1], strlen(PROMPTS[NP - 1]), 1, &ids, &err);
    CHECK_MSG(ids.len > 16, "the long prompt is only %zu tokens", ids.len);
    dl_ivec_free(&ids);
    for (int p = 0; p < NP; p++) {
        jobs[p] = job_for(PROMPTS[p], 1, 10 + p, &cfg, 100 + (uint64_t)p, -1);
        CHECK(dl_sched_submit(s, jobs[p]) == 0);
    }
    int same = 0;
    for (int p = 0; p < NP; p++) {
        dl_job_wait(jobs[p]);
        dl_buf want = {0};
        reference_text(PROMPTS[p], 10 + p, &cfg, 100 + (uint64_t)p, &want);
        const dl_api_choice *c = &jobs[p]->choices[0];
        int eq = c->text.len == want.len && !memcmp(c->text.data ? c->text.data : "", want.data, want.len);
        CHECK_MSG(eq, "T=%.1f prompt '%s': batched '%.*s', alone '%s'", (double)temperature, PROMPTS[p], (int)c->text.len,
                  c->text.data ? c->text.data : "", want.data);
        same += eq;
        CHECK(c->done && !jobs[p]->failed && (int)c->tokens.len <= 10 + p);
        CHECK(!strcmp(c->finish_reason, (int)c->tokens.len == 10 + p ? "length" : "stop"));
        dl_buf_free(&want);
        dl_job_release(jobs[p]);
    }
    dl_sched_stats st;
    dl_sched_get_stats(s, &st);
    /* 3 slots for 7 prompts: the steps carried more than one row on average */
    CHECK_MSG(st.steps > 0 && st.rows > st.steps, "steps %lld rows %lld", st.steps, st.rows);
    CHECK(same == NP);
    dl_sched_free(s);
}

// log-softmax of the model at each generated position, by a plain decode of prompt + tokens
static void test_logprobs(void) {
    dl_error err;
    dl_sched *s = dl_sched_start(&model, tok, 4, 4, &err);
    dl_sampler_cfg cfg = {0.9f, 0, 1.0f};
    dl_job *j = job_for("the dog", 2, 8, &cfg, 5, 3);
    CHECK(dl_sched_submit(s, j) == 0);
    dl_job_wait(j);
    dl_ivec ids = {0};
    dl_tok_encode(tok, "the dog", 7, 1, &ids, &err);
    size_t np = ids.len;
    int V = model.cfg.V;
    double worst = 0;
    for (int ch = 0; ch < 2; ch++) {
        const dl_api_choice *c = &j->choices[ch];
        CHECK(c->n_top == 3 && c->tokens.len > 0);
        ids.len = np;
        for (size_t k = 0; k < c->tokens.len; k++) dl_ivec_push(&ids, c->tokens.data[k]);
        float *logits = malloc(ids.len * (size_t)V * sizeof(float));
        dl_kv_cache kv;
        CHECK(dl_kv_cache_create(&kv, &model.cfg, (int)ids.len, &err) == 0);
        CHECK(dl_model_decode(&model, &kv, ids.data, (int)ids.len, logits, 1, &err) == 0);
        for (size_t k = 0; k < c->tokens.len; k++) {
            const float *row = logits + (np - 1 + k) * (size_t)V;
            double mx = row[0], sum = 0;
            for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
            for (int i = 0; i < V; i++) sum += exp(row[i] - mx);
            double lse = mx + log(sum);
            double d = fabs(c->logprob[k] - (row[c->tokens.data[k]] - lse));
            const dl_api_top *t = c->top + k * 3;
            for (int a = 0; a < 3; a++) d = fmax(d, fabs(t[a].logprob - (row[t[a].id] - lse)));
            worst = fmax(worst, d);
            CHECK(t[0].logprob >= t[1].logprob && t[1].logprob >= t[2].logprob && c->logprob[k] <= t[0].logprob + 1e-6);
            int best = dl_argmax(row, V);
            CHECK(t[0].id == best);
        }
        dl_kv_cache_free(&kv);
        free(logits);
    }
    CHECK_MSG(worst < 2e-3, "logprobs differ from the model's log-softmax by %.3g", worst);
    dl_ivec_free(&ids);
    dl_job_release(j);
    dl_sched_free(s);
}

static void test_cancel_queue_stop(void) {
    dl_error err;
    dl_sched *s = dl_sched_start(&model, tok, 1, 1, &err);
    dl_sampler_cfg cfg = {1.0f, 0, 1.0f};
    /* eos never ends these: only max_tokens, a cancel or the stop does */
    dl_model *m = &model;
    int eos = m->cfg.eos_id;
    m->cfg.eos_id = -1;
    dl_job *a = job_for("the", 1, 60, &cfg, 1, -1), *b = job_for("a", 1, 60, &cfg, 2, -1), *c = job_for("x", 1, 5, &cfg, 3, -1);
    CHECK(dl_sched_submit(s, a) == 0);
    int b_in = dl_sched_submit(s, b) == 0;
    CHECK(dl_sched_submit(s, c) == -1); /* one slot and one queue place are taken */
    dl_job_cancel(a);
    dl_job_wait(a);
    CHECK(a->n_done == 1 && a->choices[0].finish_reason == NULL);
    if (b_in) {
        dl_job_wait(b);
        CHECK(!strcmp(b->choices[0].finish_reason, "length") && b->choices[0].tokens.len == 60);
    }
    /* stop with work in flight: every job ends, later submits fail */
    dl_job *d = job_for("the cat", 1, 60, &cfg, 4, -1), *e = job_for("dog", 1, 60, &cfg, 5, -1);
    CHECK(dl_sched_submit(s, d) == 0);
    int e_in = dl_sched_submit(s, e) == 0;
    dl_sched_stop(s);
    dl_job_wait(d);
    if (e_in) dl_job_wait(e);
    CHECK(dl_sched_submit(s, c) == -1);
    m->cfg.eos_id = eos;
    dl_job_release(a);
    dl_job_release(b);
    dl_job_release(c);
    dl_job_release(d);
    dl_job_release(e);
    dl_sched_free(s);
    CHECK(dl_sched_start(&model, tok, 0, 1, &err) == NULL && strstr(err.msg, "max batch"));
}

int main(int argc, char **argv) {
    (void)argc;
    dl_ops_tune_runtime(argv); /* idle OpenMP and OpenBLAS threads sleep instead of spinning */
    setup();
    test_matches_single_stream(0.0f);
    test_matches_single_stream(0.8f);
    test_logprobs();
    test_cancel_queue_stop();
    dl_model_free(&model);
    dl_tok_free(tok);
    TEST_MAIN_END();
}
