/* Text generation: prompt -> tokens -> prefill -> sample, emit, decode, until a stop. */
#include "generate.h"
#include <stdlib.h>
#include <string.h>

/* The prompt's ids; an empty prompt starts from the model's bos or the tokenizer's eot. */
static int prompt_ids(const dl_model *m, const dl_tokenizer *tok, const char *prompt, dl_ivec *ids, dl_error *err) {
    if (dl_tok_encode(tok, prompt, strlen(prompt), 1, ids, err)) return -1;
    if (ids->len == 0) {
        int start = m->cfg.bos_id >= 0 ? m->cfg.bos_id : dl_tok_eot_id(tok);
        if (start < 0 || start >= m->cfg.V)
            return dl_fail(err, "generate: the prompt is empty and there is no bos or %s token to start from", DL_EOT);
        if (dl_ivec_push(ids, start)) return dl_fail(err, "out of memory");
    }
    if (ids->len > (size_t)m->cfg.max_T)
        return dl_fail(err, "generate: the prompt is %zu tokens, longer than the model's context of %d", ids->len,
                       m->cfg.max_T);
    for (size_t i = 0; i < ids->len; i++)
        if (ids->data[i] >= m->cfg.V)
            return dl_fail(err, "generate: prompt token %d is outside the model's vocabulary of %d (tokenizer and "
                                "model do not match)", ids->data[i], m->cfg.V);
    return 0;
}

/* A model may have more rows than the tokenizer has tokens (padded vocabularies): such an
 * id has no text, so it shows as U+FFFD. */
static const char *token_text(const dl_tokenizer *tok, int id, size_t *len) {
    const char *s = id < dl_tok_vocab_size(tok) ? dl_tok_token(tok, id, len) : NULL;
    if (!s) {
        *len = 3;
        return "\xef\xbf\xbd";
    }
    return s;
}

static int is_end(const dl_model *m, const dl_tokenizer *tok, int id) {
    return id == m->cfg.eos_id || (id >= 0 && id == dl_tok_eot_id(tok));
}

// the sample-emit-decode loop; logits hold the last position's logits on entry
static int run_loop(const dl_model *m, const dl_tokenizer *tok, dl_kv_cache *kv, float *logits, int max_tokens,
                    const dl_sampler_cfg *cfg, dl_rng *rng, dl_token_id_fn fn, void *user, dl_generate_result *res,
                    dl_error *err) {
    res->stop = DL_STOP_MAX_TOKENS;
    while (res->n_generated < max_tokens) {
        int32_t id = dl_sample(logits, m->cfg.V, cfg, rng);
        if (id < 0) return dl_fail(err, "generate: the model produced no finite logit (diverged weights?)");
        if (is_end(m, tok, id)) {
            res->stop = DL_STOP_EOS;
            break;
        }
        size_t len;
        const char *text = token_text(tok, id, &len);
        res->n_generated++;
        if (fn && fn(id, text, len, user)) {
            res->stop = DL_STOP_CALLBACK;
            break;
        }
        if (res->n_generated == max_tokens) break;
        if (kv->pos >= kv->max_T) {
            res->stop = DL_STOP_CONTEXT_FULL;
            break;
        }
        if (dl_model_decode(m, kv, &id, 1, logits, 0, err)) return -1;
    }
    return 0;
}

int dl_generate_ids(const dl_model *m, const dl_tokenizer *tok, const char *prompt, int max_tokens,
                    const dl_sampler_cfg *cfg, uint64_t seed, dl_token_id_fn fn, void *user, dl_generate_result *res,
                    dl_error *err) {
    memset(res, 0, sizeof *res);
    if (dl_sampler_check(cfg, err)) return -1;
    if (max_tokens < 0) return dl_fail(err, "generate: max tokens %d must be >= 0", max_tokens);
    double t0 = dl_now();
    dl_ivec ids = {0};
    dl_kv_cache kv = {0};
    float *logits = malloc((size_t)m->cfg.V * sizeof(float));
    int rc = logits ? 0 : dl_fail(err, "out of memory");
    if (rc == 0) rc = prompt_ids(m, tok, prompt, &ids, err);
    if (rc == 0) {
        /* room for the prompt and every generated token but the last, which is never fed back */
        long need = (long)ids.len + max_tokens;
        rc = dl_kv_cache_create(&kv, &m->cfg, need < m->cfg.max_T ? (int)need : m->cfg.max_T, err);
    }
    if (rc == 0) rc = dl_model_decode(m, &kv, ids.data, (int)ids.len, logits, 0, err);
    double t1 = dl_now();
    if (rc == 0) {
        res->n_prompt = (int)ids.len;
        dl_rng rng;
        dl_rng_seed(&rng, seed);
        rc = run_loop(m, tok, &kv, logits, max_tokens, cfg, &rng, fn, user, res, err);
    }
    double t2 = dl_now();
    res->seconds = t2 - t0;
    res->tokens_per_s = t2 > t1 ? res->n_generated / (t2 - t1) : 0;
    dl_kv_cache_free(&kv);
    dl_ivec_free(&ids);
    free(logits);
    return rc;
}

typedef struct text_only {
    dl_token_fn fn;
    void *user;
} text_only;

static int drop_id(int32_t id, const char *text, size_t len, void *user) {
    (void)id;
    const text_only *t = user;
    return t->fn(text, len, t->user);
}

int dl_generate(const dl_model *m, const dl_tokenizer *tok, const char *prompt, int max_tokens,
                const dl_sampler_cfg *cfg, uint64_t seed, dl_token_fn fn, void *user, dl_generate_result *res,
                dl_error *err) {
    text_only t = {fn, user};
    return dl_generate_ids(m, tok, prompt, max_tokens, cfg, seed, fn ? drop_id : NULL, &t, res, err);
}
