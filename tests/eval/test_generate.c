/* dl_generate: greedy output equals a greedy loop over the training forward; each stop
 * (max tokens, end token, full context, callback) ends where it should; a seed fixes the text;
 * dl_generate_ids hands over the ids sampled, also of two tokens with the same text. */
#include "eval/generate.h"
#include "spm_fixture.h"
#include "test.h"

static const char *CORPUS =
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat.\n"
    "the quick brown fox jumps over the lazy dog. the cat saw the fox and the dog ran.\n";

typedef struct {
    dl_buf text;
    int calls, stop_after;
} sink;

static int collect(const char *s, size_t n, void *user) {
    sink *k = user;
    dl_buf_append(&k->text, s, n);
    k->calls++;
    return k->stop_after > 0 && k->calls >= k->stop_after;
}

static void make_model(dl_model *m, int V, int max_T, uint64_t seed) {
    dl_config c = {.V = V, .C = 32, .F = 48, .L = 2, .NH = 4, .NKV = 2, .max_T = max_T, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 0, .bos_id = -1, .eos_id = -1};
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] *= 5.0f;
}

/* Greedy by brute force: the whole sequence through dl_model_forward at every step. */
static void greedy_reference(dl_model *m, const dl_tokenizer *tok, const char *prompt, int max_tokens, dl_buf *out) {
    dl_ivec ids = {0};
    dl_error err;
    dl_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &err);
    size_t n0 = ids.len;
    if (dl_model_alloc_train(m, 1, m->cfg.max_T, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    int V = m->cfg.V;
    for (int g = 0; g < max_tokens && ids.len < (size_t)m->cfg.max_T; g++) {
        dl_model_forward(m, ids.data, NULL, 1, (int)ids.len);
        const float *row = m->logits + (ids.len - 1) * (size_t)V;
        int best = 0;
        for (int i = 1; i < V; i++)
            if (row[i] > row[best]) best = i;
        if (best == dl_tok_eot_id(tok)) break;
        dl_ivec_push(&ids, best);
    }
    dl_tok_decode(tok, ids.data + n0, ids.len - n0, out, &err);
    dl_model_free_train(m);
    dl_ivec_free(&ids);
}

static dl_tokenizer *make_tokenizer(void) {
    dl_error err;
    dl_tokenizer *tok = dl_tok_train(CORPUS, strlen(CORPUS), 300, NULL, &err);
    if (!tok) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    return tok;
}

static void test_greedy_matches_forward(const dl_tokenizer *tok) {
    dl_model m;
    make_model(&m, dl_tok_vocab_size(tok), 48, 31);
    dl_sampler_cfg greedy = {0.0f, 0, 1.0f};
    const char *prompts[3] = {"the cat", "a dog met", "<|endoftext|>the"};
    for (int p = 0; p < 3; p++) {
        sink k = {0};
        dl_generate_result res;
        dl_error err = {{0}};
        CHECK_MSG(dl_generate(&m, tok, prompts[p], 20, &greedy, 1, collect, &k, &res, &err) == 0, "%s", err.msg);
        dl_buf want = {0};
        greedy_reference(&m, tok, prompts[p], 20, &want);
        CHECK_MSG(k.text.len == want.len && (want.len == 0 || memcmp(k.text.data, want.data, want.len) == 0),
                  "prompt '%s': generated '%s', forward says '%s'", prompts[p], k.text.data ? k.text.data : "",
                  want.data ? want.data : "");
        CHECK(res.n_generated == k.calls);
        CHECK(res.stop == DL_STOP_EOS || (res.stop == DL_STOP_MAX_TOKENS && res.n_generated == 20));
        CHECK(res.n_prompt > 0 && res.seconds >= 0);
        dl_buf_free(&want);
        dl_buf_free(&k.text);
    }
    dl_model_free(&m);
}

static void test_stops(const dl_tokenizer *tok) {
    dl_model m;
    make_model(&m, dl_tok_vocab_size(tok), 16, 5);
    /* zero lm_head: every logit 0, the argmax is token 0 */
    const dl_tensor_view *head = &m.lay.views[m.lay.lm_head];
    memset(m.params + head->offset, 0, head->numel * sizeof(float));
    dl_sampler_cfg greedy = {0.0f, 0, 1.0f};
    dl_generate_result res;
    dl_error err = {{0}};
    sink k = {0};
    /* "the cat" is a few tokens; 16 positions: the last generated token is never fed back */
    dl_ivec ids = {0};
    dl_tok_encode(tok, "the cat", 7, 1, &ids, &err);
    int n_prompt = (int)ids.len;
    dl_ivec_free(&ids);
    CHECK(dl_generate(&m, tok, "the cat", 100, &greedy, 0, collect, &k, &res, &err) == 0);
    CHECK(res.stop == DL_STOP_CONTEXT_FULL && res.n_prompt == n_prompt);
    CHECK_MSG(res.n_generated == 16 - n_prompt + 1, "generated %d", res.n_generated);
    CHECK(k.calls == res.n_generated && k.text.len == (size_t)res.n_generated && k.text.data[0] == 0);
    dl_buf_free(&k.text);

    k = (sink){0};
    CHECK(dl_generate(&m, tok, "the cat", 5, &greedy, 0, collect, &k, &res, &err) == 0);
    CHECK(res.stop == DL_STOP_MAX_TOKENS && res.n_generated == 5 && k.calls == 5);
    dl_buf_free(&k.text);

    k = (sink){.stop_after = 3};
    CHECK(dl_generate(&m, tok, "the cat", 10, &greedy, 0, collect, &k, &res, &err) == 0);
    CHECK(res.stop == DL_STOP_CALLBACK && res.n_generated == 3);
    dl_buf_free(&k.text);

    k = (sink){0};
    CHECK(dl_generate(&m, tok, "the cat", 0, &greedy, 0, collect, &k, &res, &err) == 0);
    CHECK(res.stop == DL_STOP_MAX_TOKENS && res.n_generated == 0 && k.calls == 0);

    /* token 0 as the config's end token: nothing is generated */
    m.cfg.eos_id = 0;
    CHECK(dl_generate(&m, tok, "the cat", 10, &greedy, 0, collect, &k, &res, &err) == 0);
    CHECK(res.stop == DL_STOP_EOS && res.n_generated == 0 && k.calls == 0);
    m.cfg.eos_id = -1;

    /* an empty prompt starts from <|endoftext|> */
    CHECK_MSG(dl_generate(&m, tok, "", 2, &greedy, 0, collect, &k, &res, &err) == 0, "%s", err.msg);
    CHECK(res.n_prompt == 1 && res.n_generated == 2);
    dl_buf_free(&k.text);

    /* errors */
    char longp[512] = {0};
    for (int i = 0; i < 100; i++) strcat(longp, "fox ");
    CHECK(dl_generate(&m, tok, longp, 1, &greedy, 0, collect, &k, &res, &err) == -1 && strstr(err.msg, "context"));
    dl_sampler_cfg bad = {1.0f, 0, 0.0f};
    CHECK(dl_generate(&m, tok, "the", 1, &bad, 0, collect, &k, &res, &err) == -1 && strstr(err.msg, "top-p"));
    CHECK(dl_generate(&m, tok, "the", -1, &greedy, 0, collect, &k, &res, &err) == -1);
    dl_model_free(&m);
}

static void test_seed(const dl_tokenizer *tok) {
    dl_model m;
    make_model(&m, dl_tok_vocab_size(tok), 64, 77);
    m.cfg.eos_id = -1;
    dl_sampler_cfg c = {1.0f, 0, 0.95f};
    sink a = {0}, b = {0}, o = {0};
    dl_generate_result res;
    dl_error err = {{0}};
    CHECK(dl_generate(&m, tok, "the", 40, &c, 5, collect, &a, &res, &err) == 0);
    CHECK(dl_generate(&m, tok, "the", 40, &c, 5, collect, &b, &res, &err) == 0);
    CHECK(dl_generate(&m, tok, "the", 40, &c, 6, collect, &o, &res, &err) == 0);
    CHECK(a.text.len > 0 && a.text.len == b.text.len && memcmp(a.text.data, b.text.data, a.text.len) == 0);
    CHECK(o.text.len != a.text.len || memcmp(a.text.data, o.text.data, a.text.len) != 0);
    dl_buf_free(&a.text);
    dl_buf_free(&b.text);
    dl_buf_free(&o.text);
    dl_model_free(&m);
}

static dl_tokenizer *g_spm;

typedef struct {
    int32_t ids[16];
    int n, text_ok;
} id_sink;

static int collect_ids(int32_t id, const char *s, size_t n, void *user) {
    id_sink *k = user;
    size_t len;
    const char *t = dl_tok_token(g_spm, id, &len);
    k->text_ok &= t && len == n && memcmp(t, s, n) == 0;
    if (k->n < 16) k->ids[k->n] = id;
    k->n++;
    return 0;
}

/* Two tokens with the same text: the ids handed over are the ones sampled (spm_fixture.h says
 * which by construction: U+2581 then <0x20>, again and again), and the text is theirs. */
static void test_ids_same_text(void) {
    dl_model m;
    spm_model(&m);
    dl_sampler_cfg greedy = {0.0f, 0, 1.0f};
    id_sink k = {.text_ok = 1};
    dl_generate_result res;
    dl_error err = {{0}};
    CHECK_MSG(dl_generate_ids(&m, g_spm, "a", 6, &greedy, 0, collect_ids, &k, &res, &err) == 0, "%s",
              err.msg);
    CHECK(k.n == 6 && res.n_generated == 6 && k.text_ok);
    for (int i = 0; i < 6 && i < k.n; i++)
        CHECK_MSG(k.ids[i] == (i % 2 ? SPM_BYTE_SPACE : SPM_SPACE), "token %d: id %d", i, k.ids[i]);
    /* the text-only form says the same */
    sink t = {0};
    CHECK(dl_generate(&m, g_spm, "a", 6, &greedy, 0, collect, &t, &res, &err) == 0);
    CHECK(t.text.len == 6 && memcmp(t.text.data, "      ", 6) == 0);
    dl_buf_free(&t.text);
    dl_model_free(&m);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    dl_tokenizer *tok = make_tokenizer();
    test_greedy_matches_forward(tok);
    test_stops(tok);
    test_seed(tok);
    dl_tok_free(tok);
    g_spm = spm_tokenizer();
    test_ids_same_text();
    dl_tok_free(g_spm);
    TEST_MAIN_END();
}
