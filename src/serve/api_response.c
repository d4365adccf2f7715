/* Response bodies in OpenAI's shapes: completions ("text_completion"), chat
 * ("chat.completion" and "chat.completion.chunk"), errors and the model list. Token text is
 * repaired to valid UTF-8 (a token may hold half a character); chat logprobs also give each
 * token's raw bytes, as OpenAI does, so a client can put split characters back together. */
#include "api.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* json_object_set_new takes the value's reference even when it fails, and fails on a NULL
 * value, so building a tree is a chain of sets whose failures are OR-ed together. */
static int set(json_t *o, const char *k, json_t *v) { return json_object_set_new(o, k, v) ? 1 : 0; }
static int push(json_t *a, json_t *v) { return json_array_append_new(a, v) ? 1 : 0; }

static json_t *repaired(const char *s, size_t n) {
    dl_buf b = {0};
    json_t *v = dl_utf8_repair(&b, s, n) ? NULL : json_stringn(b.data, b.len);
    dl_buf_free(&b);
    return v;
}

/* The bytes of a token; ids past the tokenizer (padded vocabularies) have none. */
static const char *token_raw(const dl_tokenizer *tok, int id, size_t *len) {
    const char *s = id >= 0 && id < dl_tok_vocab_size(tok) ? dl_tok_token(tok, id, len) : NULL;
    if (!s) *len = 0;
    return s ? s : "";
}

static json_t *token_string(const dl_tokenizer *tok, int id) {
    size_t n;
    const char *s = token_raw(tok, id, &n);
    return repaired(s, n);
}

static json_t *token_bytes(const dl_tokenizer *tok, int id) {
    size_t n;
    const unsigned char *s = (const unsigned char *)token_raw(tok, id, &n);
    json_t *a = json_array();
    int bad = !a;
    for (size_t i = 0; a && i < n; i++) bad |= push(a, json_integer(s[i]));
    if (bad) json_decref(a);
    return bad ? NULL : a;
}

/* JSON has no -Infinity: a token the model rules out gets a very low finite logprob. */
static json_t *logprob_value(float lp) { return json_real(isfinite(lp) ? lp : -9999.0); }

// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} for tokens [k0, k1)
static json_t *completion_logprobs(const dl_api_choice *c, size_t k0, size_t k1, const dl_tokenizer *tok) {
    json_t *o = json_object(), *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    int bad = (!o) | set(o, "tokens", toks) | set(o, "token_logprobs", lps) | set(o, "top_logprobs", tops) |
              set(o, "text_offset", offs);
    for (size_t k = k0; !bad && k < k1; k++) {
        bad |= push(toks, token_string(tok, c->tokens.data[k])) | push(lps, logprob_value(c->logprob[k])) |
               push(offs, json_integer((json_int_t)c->start[k]));
        json_t *alt = json_object();
        for (int j = 0; alt && !bad && j < c->n_top; j++) {
            const dl_api_top *t = &c->top[k * (size_t)c->n_top + (size_t)j];
            size_t n;
            const char *s = token_raw(tok, t->id, &n);
            dl_buf key = {0};
            /* two ids with the same text keep the more likely one (the first, the list is sorted) */
            bad |= dl_utf8_repair(&key, s, n) ? 1 : 0;
            if (!bad && !json_object_get(alt, key.data)) bad |= set(alt, key.data, logprob_value(t->logprob));
            dl_buf_free(&key);
        }
        bad |= push(tops, alt);
    }
    if (bad) json_decref(o);
    return bad ? NULL : o;
}

static json_t *chat_token(const dl_tokenizer *tok, int id, float lp) {
    json_t *o = json_object();
    int bad = !o || set(o, "token", token_string(tok, id)) | set(o, "logprob", logprob_value(lp)) |
                        set(o, "bytes", token_bytes(tok, id));
    if (bad) json_decref(o);
    return bad ? NULL : o;
}

// {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}], "refusal": null}
static json_t *chat_logprobs(const dl_api_choice *c, size_t k0, size_t k1, const dl_tokenizer *tok) {
    json_t *o = json_object(), *content = json_array();
    int bad = (!o) | set(o, "content", content) | set(o, "refusal", json_null());
    for (size_t k = k0; !bad && k < k1; k++) {
        json_t *t = chat_token(tok, c->tokens.data[k], c->logprob[k]), *alts = json_array();
        bad |= !t || set(t, "top_logprobs", alts);
        for (int j = 0; !bad && j < c->n_top; j++) {
            const dl_api_top *a = &c->top[k * (size_t)c->n_top + (size_t)j];
            bad |= push(alts, chat_token(tok, a->id, a->logprob));
        }
        bad |= push(content, t);
    }
    if (bad) json_decref(o);
    return bad ? NULL : o;
}

static json_t *logprobs_of(const dl_api_request *r, const dl_api_choice *c, size_t k0, size_t k1,
                           const dl_tokenizer *tok) {
    if (r->logprobs < 0) return json_null();
    return r->chat ? chat_logprobs(c, k0, k1, tok) : completion_logprobs(c, k0, k1, tok);
}

static json_t *usage_of(const dl_api_meta *m) {
    json_t *u = json_object();
    int bad = !u || set(u, "prompt_tokens", json_integer(m->prompt_tokens)) |
                        set(u, "completion_tokens", json_integer(m->completion_tokens)) |
                        set(u, "total_tokens", json_integer(m->prompt_tokens + m->completion_tokens));
    if (bad) json_decref(u);
    return bad ? NULL : u;
}

static json_t *envelope(const dl_api_request *r, const dl_api_meta *m, const char *object) {
    json_t *o = json_object();
    int bad = !o || set(o, "id", json_string(m->id)) | set(o, "object", json_string(object)) |
                        set(o, "created", json_integer(m->created)) | set(o, "model", repaired(m->model, strlen(m->model))) |
                        set(o, "system_fingerprint", json_null());
    if (bad) json_decref(o);
    return bad ? NULL : o;
}

static char *dump(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static json_t *choice_json(const dl_api_request *r, const dl_api_choice *c, int index, const dl_tokenizer *tok) {
    json_t *o = json_object();
    json_t *text = repaired(c->text.data ? c->text.data : "", c->text.len);
    int bad = (!o) | set(o, "index", json_integer(index));
    if (r->chat) {
        json_t *msg = json_object();
        bad |= (!msg) | set(msg, "role", json_string("assistant")) | set(msg, "content", text);
        bad |= set(o, "message", msg);
    } else
        bad |= set(o, "text", text);
    bad |= set(o, "logprobs", logprobs_of(r, c, 0, c->out_tokens, tok)) |
           set(o, "finish_reason", json_string(c->finish_reason ? c->finish_reason : "stop"));
    if (bad) json_decref(o);
    return bad ? NULL : o;
}

char *dl_api_response_body(const dl_api_request *r, const dl_api_meta *meta, const dl_api_choice *choices,
                           int n_choices, const dl_tokenizer *tok) {
    json_t *o = envelope(r, meta, r->chat ? "chat.completion" : "text_completion"), *arr = json_array();
    int bad = (!o) | set(o, "choices", arr);
    for (int i = 0; !bad && i < n_choices; i++) bad |= push(arr, choice_json(r, &choices[i], i, tok));
    bad |= set(o, "usage", usage_of(meta));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return dump(o);
}

static int append_event(dl_buf *out, json_t *o) {
    char *s = dump(o);
    if (!s) return -1;
    int rc = dl_buf_printf(out, "data: %s\n\n", s);
    free(s);
    return rc;
}

int dl_api_stream_chunk(dl_buf *out, const dl_api_request *r, const dl_api_meta *meta, const dl_api_choice *c,
                        int index, size_t t0, size_t t1, size_t k0, size_t k1, const char *finish_reason,
                        int first, const dl_tokenizer *tok) {
    json_t *o = envelope(r, meta, r->chat ? "chat.completion.chunk" : "text_completion"), *arr = json_array(),
           *ch = json_object();
    int bad = (!o) | set(o, "choices", arr) | push(arr, ch);
    json_t *text = repaired(c->text.data ? c->text.data + t0 : "", t1 - t0);
    bad |= !ch || set(ch, "index", json_integer(index));
    if (r->chat) {
        json_t *delta = json_object();
        if (first && delta) bad |= set(delta, "role", json_string("assistant"));
        if (t1 > t0 || first) bad |= set(delta, "content", text);
        else json_decref(text);
        bad |= set(ch, "delta", delta);
    } else
        bad |= set(ch, "text", text);
    bad |= set(ch, "logprobs", k1 > k0 ? logprobs_of(r, c, k0, k1, tok) : json_null()) |
           set(ch, "finish_reason", finish_reason ? json_string(finish_reason) : json_null());
    if (bad) {
        json_decref(o);
        return -1;
    }
    return append_event(out, o);
}

int dl_api_stream_usage(dl_buf *out, const dl_api_request *r, const dl_api_meta *meta) {
    json_t *o = envelope(r, meta, r->chat ? "chat.completion.chunk" : "text_completion");
    int bad = (!o) | set(o, "choices", json_array()) | set(o, "usage", usage_of(meta));
    if (bad) {
        json_decref(o);
        return -1;
    }
    return append_event(out, o);
}

char *dl_api_models_body(const char *model, long long created) {
    json_t *o = json_object(), *arr = json_array(), *m = json_object();
    int bad = (!o) | set(o, "object", json_string("list")) | set(o, "data", arr) | push(arr, m);
    bad |= !m || set(m, "id", repaired(model, strlen(model))) | set(m, "object", json_string("model")) |
                     set(m, "created", json_integer(created)) | set(m, "owned_by", json_string("distil"));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return dump(o);
}

char *dl_api_error_body(const dl_api_error *e) {
    json_t *o = json_object(), *err = json_object();
    int bad = (!o) | set(o, "error", err);
    bad |= !err || set(err, "message", repaired(e->message, strlen(e->message))) |
                       set(err, "type", json_string(e->type ? e->type : "server_error")) |
                       set(err, "param", e->param[0] ? json_string(e->param) : json_null()) |
                       set(err, "code", e->code ? json_string(e->code) : json_null());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return dump(o);
}

void dl_api_choice_free(dl_api_choice *c) {
    dl_ivec_free(&c->tokens);
    free(c->logprob);
    free(c->top);
    free(c->start);
    dl_buf_free(&c->text);
    memset(c, 0, sizeof *c);
}
