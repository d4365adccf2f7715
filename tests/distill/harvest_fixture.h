/* A harvest written here, without a server: a teacher continues prompts of fixture words, and
 * each answer becomes one line in the exact shapes distil serve + distil harvest produce
 * (harvest/harvest.h): completions {"tokens", "token_logprobs", "top_logprobs" {text: logprob},
 * "text_offset"} or chat {"content": [{"token", "logprob", "bytes", "top_logprobs"}]}, the
 * logprobs at temperature 1, the top alternatives most likely first (ties: lower id). */
#ifndef DISTILL_HARVEST_FIXTURE_H
#define DISTILL_HARVEST_FIXTURE_H

#include "distill_fixture.h"
#include "model/sampler.h"

/* A data folder (as fx_data) over words drawn independently and uniformly, with no punctuation:
 * at a word boundary every word is as likely as the next, so which one a trained model ranks
 * first is its own quirk, which the corpus cannot teach and the teacher's logprobs can. */
static inline int hx_data(const char *dir, int vocab_size) {
    dl_error err;
    char p[1024];
    dl_buf text = {0};
    unsigned x = 777u;
    for (int i = 0; i < 4000; i++) {
        x = x * 1103515245u + 12345u;
        dl_buf_printf(&text, "%s%s", FX_WORDS[(x >> 16) % 20], i % 40 == 39 ? "\n" : " ");
    }
    dl_tokenizer *tok = dl_tok_train(text.data, text.len, vocab_size, NULL, &err);
    dl_ivec ids = {0};
    if (!tok || dl_tok_encode(tok, text.data, text.len, 1, &ids, &err)) fx_die("data", &err);
    size_t n_val = ids.len / 6;
    uint32_t V = (uint32_t)dl_tok_vocab_size(tok);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (dl_mkdir_p(dir, &err) || dl_tok_save(tok, p, &err)) fx_die("save tokenizer", &err);
    snprintf(p, sizeof p, "%s/train.bin", dir);
    if (dl_tokfile_write(p, ids.data, ids.len - n_val, V, &err)) fx_die("train.bin", &err);
    snprintf(p, sizeof p, "%s/val.bin", dir);
    if (dl_tokfile_write(p, ids.data + ids.len - n_val, n_val, V, &err)) fx_die("val.bin", &err);
    dl_ivec_free(&ids);
    dl_tok_free(tok);
    dl_buf_free(&text);
    return (int)V;
}

typedef struct hx_opts {
    int prompts, max_tokens, top_k; /* top_k < 0: no logprobs */
    int chat;
    uint64_t seed;
} hx_opts;

static inline void hx_log_softmax(const float *z, int V, float *lp) {
    double m = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) m = fmax(m, z[v]);
    for (int v = 0; v < V; v++) s += exp(z[v] - m);
    for (int v = 0; v < V; v++) lp[v] = (float)(z[v] - m - log(s));
}

/* As the server's UTF-8 repair for this ASCII fixture: a byte >= 0x80 (a stray byte a barely
 * trained teacher may sample) becomes U+FFFD. */
static inline json_t *hx_text(const char *s, size_t n) {
    dl_buf b = {0};
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x80) dl_buf_append(&b, s + i, 1);
        else dl_buf_append(&b, "\xef\xbf\xbd", 3);
    json_t *v = json_stringn(b.data ? b.data : "", b.len);
    dl_buf_free(&b);
    return v;
}

static inline json_t *hx_str(const dl_tokenizer *tok, int id) {
    size_t n;
    const char *s = dl_tok_token(tok, id, &n);
    return hx_text(s ? s : "", s ? n : 0);
}

static inline json_t *hx_chat_token(const dl_tokenizer *tok, int id, float lp) {
    size_t n;
    const char *s = dl_tok_token(tok, id, &n);
    json_t *bytes = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)s[i]));
    return json_pack("{s:o, s:f, s:o}", "token", hx_str(tok, id), "logprob", (double)lp, "bytes", bytes);
}

/* ids of the k largest lp, most likely first, ties to the lower id */
static inline void hx_topk(const float *lp, int V, int k, int *out) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int v = 0; v < V; v++) {
            int used = 0;
            for (int i = 0; i < j; i++) used |= out[i] == v;
            if (!used && (best < 0 || lp[v] > lp[best])) best = v;
        }
        out[j] = best;
    }
}

/* One answer's logprobs object, for generated ids gen[0..n). */
static inline json_t *hx_logprobs(const dl_tokenizer *tok, const int32_t *gen, float *const *lps, int n, int V,
                                  const hx_opts *o) {
    json_t *toks = json_array(), *lpa = json_array(), *tops = json_array(), *offs = json_array(),
           *content = json_array();
    int top[64];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        hx_topk(lps[i], V, o->top_k, top);
        json_t *alts = o->chat ? json_array() : json_object();
        for (int j = 0; j < o->top_k; j++) {
            if (o->chat) json_array_append_new(alts, hx_chat_token(tok, top[j], lps[i][top[j]]));
            else {
                json_t *s = hx_str(tok, top[j]);
                if (!json_object_get(alts, json_string_value(s)))
                    json_object_set_new(alts, json_string_value(s), json_real(lps[i][top[j]]));
                json_decref(s);
            }
        }
        if (o->chat) {
            json_t *t = hx_chat_token(tok, gen[i], lps[i][gen[i]]);
            json_object_set_new(t, "top_logprobs", alts);
            json_array_append_new(content, t);
        } else {
            size_t len;
            dl_tok_token(tok, gen[i], &len);
            json_array_append_new(toks, hx_str(tok, gen[i]));
            json_array_append_new(lpa, json_real(lps[i][gen[i]]));
            json_array_append_new(tops, alts);
            json_array_append_new(offs, json_integer((json_int_t)off));
            off += len;
        }
    }
    if (o->chat) {
        json_decref(toks), json_decref(lpa), json_decref(tops), json_decref(offs);
        return json_pack("{s:o, s:n}", "content", content, "refusal");
    }
    json_decref(content);
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lpa, "top_logprobs", tops,
                     "text_offset", offs);
}

/* The harvest of o->prompts prompts (3 fixture words each) from the teacher in teacher_dir. */
static inline void hx_harvest(const char *teacher_dir, const char *path, const hx_opts *o) {
    dl_error err;
    dl_model m;
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", teacher_dir);
    dl_tokenizer *tok = dl_tok_load(tp, &err);
    if (!tok || dl_model_load(&m, teacher_dir, &err)) fx_die("harvest teacher", &err);
    int V = m.cfg.V, eot = dl_tok_eot_id(tok);
    dl_kv_cache kv;
    if (dl_kv_cache_create(&kv, &m.cfg, m.cfg.max_T, &err)) fx_die("kv", &err);
    float *logits = malloc((size_t)V * sizeof *logits), *lps[256];
    int32_t gen[256];
    for (int i = 0; i < o->max_tokens; i++) lps[i] = malloc((size_t)V * sizeof(float));
    dl_rng rng;
    dl_rng_seed(&rng, o->seed);
    dl_sampler_cfg sc = {1.0f, 0, 1.0f};
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    for (int p = 0; p < o->prompts; p++) {
        char prompt[128], text[256];
        snprintf(prompt, sizeof prompt, "%s %s %s", FX_WORDS[dl_rng_below(&rng, 20)], FX_WORDS[dl_rng_below(&rng, 20)],
                 FX_WORDS[dl_rng_below(&rng, 20)]);
        /* the server's chat template around one user message */
        snprintf(text, sizeof text, o->chat ? "### User:\n%s\n\n### Assistant:\n" : "%s", prompt);
        dl_ivec ids = {0};
        if (dl_tok_encode(tok, text, strlen(text), !o->chat, &ids, &err)) fx_die("encode", &err);
        dl_kv_cache_reset(&kv);
        if (dl_model_decode(&m, &kv, ids.data, (int)ids.len, logits, 0, &err)) fx_die("decode", &err);
        int n = 0;
        const char *finish = "length";
        dl_buf completion = {0};
        while (n < o->max_tokens) {
            hx_log_softmax(logits, V, lps[n]);
            int id = dl_sample(logits, V, &sc, &rng);
            if (id == eot) {
                finish = "stop";
                break;
            }
            size_t len;
            const char *s = dl_tok_token(tok, id, &len);
            dl_buf_append(&completion, s, len);
            gen[n++] = id;
            if (dl_model_decode(&m, &kv, &gen[n - 1], 1, logits, 0, &err)) fx_die("decode", &err);
        }
        json_t *line = json_pack("{s:i, s:s, s:o, s:s, s:{s:i,s:i,s:i}}", "id", p, "model", "teacher", "completion",
                                 hx_text(completion.data ? completion.data : "", completion.len), "finish_reason", finish,
                                 "usage", "prompt_tokens", (int)ids.len, "completion_tokens", n, "total_tokens",
                                 (int)ids.len + n);
        if (o->chat) json_object_set_new(line, "messages", json_pack("[{s:s,s:s}]", "role", "user", "content", prompt));
        else json_object_set_new(line, "prompt", json_string(prompt));
        if (o->top_k >= 0) json_object_set_new(line, "logprobs", hx_logprobs(tok, gen, lps, n, V, o));
        char *s = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(line);
        dl_buf_free(&completion);
        dl_ivec_free(&ids);
    }
    fclose(f);
    for (int i = 0; i < o->max_tokens; i++) free(lps[i]);
    free(logits);
    dl_kv_cache_free(&kv);
    dl_model_free(&m);
    dl_tok_free(tok);
}

#endif
