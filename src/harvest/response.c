/* What comes back: a response body checked field by field and turned into one OUT line.
 * Bodies are untrusted; anything not shaped like a completion is an error that names the field. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

/* Completions: {"tokens": [T strings], "token_logprobs": [T numbers|null],
 * "top_logprobs": null | [T objects|null of numbers], "text_offset": [T integers]}. */
static int check_completion_logprobs(json_t *lp, dl_error *err) {
    json_t *toks = json_object_get(lp, "tokens"), *lps = json_object_get(lp, "token_logprobs");
    json_t *tops = json_object_get(lp, "top_logprobs"), *offs = json_object_get(lp, "text_offset");
    if (!json_is_array(toks)) return dl_fail(err, "choices[0].logprobs.tokens must be an array");
    size_t T = json_array_size(toks);
    if (!json_is_array(lps) || json_array_size(lps) != T)
        return dl_fail(err, "choices[0].logprobs.token_logprobs must be an array as long as tokens (%zu)", T);
    if (tops && !json_is_null(tops) && (!json_is_array(tops) || json_array_size(tops) != T))
        return dl_fail(err, "choices[0].logprobs.top_logprobs must be null or an array as long as tokens (%zu)", T);
    if (offs && !json_is_null(offs) && (!json_is_array(offs) || json_array_size(offs) != T))
        return dl_fail(err, "choices[0].logprobs.text_offset must be an array as long as tokens (%zu)", T);
    for (size_t t = 0; t < T; t++) {
        json_t *lpv = json_array_get(lps, t), *top = json_array_get(tops, t), *off = json_array_get(offs, t);
        if (!json_is_string(json_array_get(toks, t)))
            return dl_fail(err, "choices[0].logprobs.tokens[%zu] must be a string", t);
        if (!json_is_number(lpv) && !json_is_null(lpv))
            return dl_fail(err, "choices[0].logprobs.token_logprobs[%zu] must be a number", t);
        if (top && !json_is_null(top) && !json_is_object(top))
            return dl_fail(err, "choices[0].logprobs.top_logprobs[%zu] must be an object", t);
        const char *k;
        json_t *v;
        json_object_foreach(top, k, v) if (!json_is_number(v)) return dl_fail(
            err, "choices[0].logprobs.top_logprobs[%zu] must map tokens to numbers", t);
        if (off && !json_is_integer(off))
            return dl_fail(err, "choices[0].logprobs.text_offset[%zu] must be an integer", t);
    }
    return 0;
}

/* One chat token {"token", "logprob", "bytes"?} (an entry of content or of its top_logprobs). */
static int check_chat_token(json_t *t, size_t i, size_t j, dl_error *err) {
    char at[96];
    if (j == (size_t)-1) snprintf(at, sizeof at, "choices[0].logprobs.content[%zu]", i);
    else snprintf(at, sizeof at, "choices[0].logprobs.content[%zu].top_logprobs[%zu]", i, j);
    if (!json_is_object(t)) return dl_fail(err, "%s must be an object", at);
    if (!json_is_string(json_object_get(t, "token"))) return dl_fail(err, "%s.token must be a string", at);
    if (!json_is_number(json_object_get(t, "logprob"))) return dl_fail(err, "%s.logprob must be a number", at);
    json_t *bytes = json_object_get(t, "bytes"), *b;
    size_t k;
    if (bytes && !json_is_null(bytes) && !json_is_array(bytes))
        return dl_fail(err, "%s.bytes must be null or an array", at);
    json_array_foreach(bytes, k, b) {
        if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 255)
            return dl_fail(err, "%s.bytes[%zu] must be an integer in 0..255", at, k);
    }
    return 0;
}

/* Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]} */
static int check_chat_logprobs(json_t *lp, dl_error *err) {
    json_t *content = json_object_get(lp, "content"), *t;
    if (!json_is_array(content) && !json_is_null(content))
        return dl_fail(err, "choices[0].logprobs.content must be an array");
    size_t i;
    json_array_foreach(content, i, t) {
        if (check_chat_token(t, i, (size_t)-1, err)) return -1;
        json_t *tops = json_object_get(t, "top_logprobs"), *a;
        if (!json_is_array(tops))
            return dl_fail(err, "choices[0].logprobs.content[%zu].top_logprobs must be an array", i);
        size_t j;
        json_array_foreach(tops, j, a) if (check_chat_token(a, i, j, err)) return -1;
    }
    return 0;
}

/* choices[0] -> the completion text and finish reason. */
static int read_choice(json_t *c0, int chat, json_t **text, json_t **finish, dl_error *err) {
    if (!json_is_object(c0)) return dl_fail(err, "choices[0] must be an object, got %s", dl_json_type_name(c0));
    if (chat) {
        json_t *msg = json_object_get(c0, "message");
        if (!json_is_object(msg)) return dl_fail(err, "choices[0].message must be an object");
        *text = json_object_get(msg, "content");
        if (!json_is_string(*text)) return dl_fail(err, "choices[0].message.content must be a string");
    } else {
        *text = json_object_get(c0, "text");
        if (!json_is_string(*text)) return dl_fail(err, "choices[0].text must be a string");
    }
    *finish = json_object_get(c0, "finish_reason");
    if (*finish && !json_is_string(*finish) && !json_is_null(*finish))
        return dl_fail(err, "choices[0].finish_reason must be a string or null");
    return 0;
}

static int check_logprobs(json_t *c0, dl_error *err) {
    json_t *lp = json_object_get(c0, "logprobs");
    if (!lp || json_is_null(lp))
        return dl_fail(err, "logprobs were asked for but choices[0].logprobs is %s (does the endpoint support them?)",
                       lp ? "null" : "missing");
    if (!json_is_object(lp)) return dl_fail(err, "choices[0].logprobs must be an object, got %s", dl_json_type_name(lp));
    /* the shape follows the body, not the route: llama.cpp's server, for one, answers
     * /v1/completions with the chat shape */
    return json_object_get(lp, "content") ? check_chat_logprobs(lp, err) : check_completion_logprobs(lp, err);
}

/* Appends ,"logprobs":<choices[0].logprobs as the endpoint wrote it> (see json_span.c). */
static int append_raw_logprobs(dl_buf *line, const char *body, size_t len, json_t *lp) {
    size_t i = 0, at, end;
    while (i < len && strchr(" \t\r\n", body[i])) i++;
    if (dl_buf_append(line, ",\"logprobs\":", 12)) return -1;
    if (!hv_span_member(body, len, i, "choices", &at) && !hv_span_first(body, len, at, &at) &&
        !hv_span_member(body, len, at, "logprobs", &at) && !hv_span_end(body, len, at, &end))
        return hv_span_append_compact(line, body, at, end);
    /* escaped member names defeat the byte scan: fall back to jansson, exact to the last bit */
    char *s = json_dumps(lp, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int rc = s ? dl_buf_append(line, s, strlen(s)) : -1;
    free(s);
    return rc;
}

static int build_line(json_t *r, const char *body, size_t len, int chat, int want_logprobs, const hv_prompt *p,
                      dl_buf *line, long *completion_tokens, dl_error *err) {
    if (!json_is_object(r)) return dl_fail(err, "the response must be a JSON object, got %s", dl_json_type_name(r));
    json_t *e = json_object_get(r, "error");
    if (e && !json_is_null(e)) {
        char msg[300];
        char *s = json_dumps(r, JSON_COMPACT);
        hv_error_text(s ? s : "", s ? strlen(s) : 0, msg, sizeof msg);
        free(s);
        return dl_fail(err, "the endpoint answered an error: %s", msg);
    }
    json_t *choices = json_object_get(r, "choices"), *text = NULL, *finish = NULL;
    if (!choices) return dl_fail(err, "the response has no 'choices'");
    if (!json_is_array(choices)) return dl_fail(err, "'choices' must be an array, got %s", dl_json_type_name(choices));
    if (json_array_size(choices) == 0) return dl_fail(err, "'choices' is empty");
    json_t *c0 = json_array_get(choices, 0);
    if (read_choice(c0, chat, &text, &finish, err)) return -1;
    json_t *usage = json_object_get(r, "usage"), *model = json_object_get(r, "model");
    if (usage && !json_is_object(usage) && !json_is_null(usage))
        return dl_fail(err, "'usage' must be an object, got %s", dl_json_type_name(usage));
    if (want_logprobs && check_logprobs(c0, err)) return -1;
    json_t *ct = json_object_get(usage, "completion_tokens");
    *completion_tokens = json_is_integer(ct) && json_integer_value(ct) >= 0 && json_integer_value(ct) < (1LL << 40)
                             ? (long)json_integer_value(ct) : 0;
    json_t *o = json_pack("{s:O,s:O,s:O,s:O,s:O,s:O}", "id", p->id, chat ? "messages" : "prompt", p->input,
                          "model", json_is_string(model) ? model : json_null(), "completion", text,
                          "finish_reason", finish ? finish : json_null(), "usage", usage ? usage : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    size_t n = s ? strlen(s) : 0;
    /* the object's closing brace comes after the raw logprobs */
    int bad = !s || dl_buf_append(line, s, n - 1) ||
              (want_logprobs && append_raw_logprobs(line, body, len, json_object_get(c0, "logprobs"))) ||
              dl_buf_append(line, "}\n", 2);
    free(s);
    return bad ? dl_fail(err, "out of memory") : 0;
}

int hv_response_line(const char *body, size_t len, int chat, int want_logprobs, const hv_prompt *p, dl_buf *line,
                     long *completion_tokens, dl_error *err) {
    *completion_tokens = 0;
    if (len == 0) return dl_fail(err, "the response body is empty");
    json_error_t je;
    /* ALLOW_NUL: a model can emit byte 0, and "\u0000" is valid JSON */
    json_t *r = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!r) return dl_fail(err, "the response is not valid JSON (line %d, column %d): %s", je.line, je.column, je.text);
    size_t keep = line->len;
    int rc = build_line(r, body, len, chat, want_logprobs, p, line, completion_tokens, err);
    json_decref(r);
    if (rc) line->len = keep;
    return rc;
}

static void printable(char *out, size_t n, const char *s, size_t len, int ascii_only) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c < 0x20 || c == 0x7f || (ascii_only && c >= 0x80) ? '?' : (char)c;
    }
    /* a cut may split a UTF-8 character: drop its pieces so the text stays valid */
    if (k + 1 >= n && k < len) {
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80) k--;
        if (k > 0 && (unsigned char)out[k - 1] >= 0xC0) k--;
    }
    out[k] = 0;
}

void hv_error_text(const char *body, size_t len, char *out, size_t n) {
    if (n == 0) return;
    if (len == 0) {
        snprintf(out, n, "(empty body)");
        return;
    }
    json_t *r = json_loadb(body, len, 0, NULL), *e = json_object_get(r, "error");
    json_t *msg = json_is_object(e) ? json_object_get(e, "message") : e;
    if (json_is_string(msg)) printable(out, n, json_string_value(msg), json_string_length(msg), 0);
    else printable(out, n, body, len, 1);
    json_decref(r);
}
