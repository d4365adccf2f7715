/* One harvest line -> one record (format and checks in harvest_data.h). Lines are untrusted:
 * every field is type-checked before it is used, and every error names the field. */
#include "harvest_data.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- growing the record --------------------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * size);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

// tok, tok_logp and alt_at share cap_tok (alt_at needs one entry more)
static int add_token(hd_record *r, hd_span b, float logp) {
    if (r->n_tok + 2 > r->cap_tok) {
        size_t n = r->cap_tok ? 2 * r->cap_tok : 16;
        hd_span *t = realloc(r->tok, n * sizeof *t);
        if (t) r->tok = t;
        float *l = t ? realloc(r->tok_logp, n * sizeof *l) : NULL;
        if (l) r->tok_logp = l;
        size_t *a = l ? realloc(r->alt_at, n * sizeof *a) : NULL;
        if (!a) return -1;
        r->alt_at = a;
        r->cap_tok = n;
    }
    r->tok[r->n_tok] = b;
    r->tok_logp[r->n_tok] = logp;
    r->alt_at[r->n_tok] = r->n_alt;
    r->n_tok++;
    r->alt_at[r->n_tok] = r->n_alt;
    return 0;
}

static int add_alt(hd_record *r, hd_span b, float logp) {
    if (grow((void **)&r->alts, &r->cap_alt, r->n_alt + 1, sizeof *r->alts)) return -1;
    r->alts[r->n_alt++] = (hd_alt){b, logp};
    r->alt_at[r->n_tok] = r->n_alt; // the alternatives of the last token added
    return 0;
}

static int add_bytes(hd_record *r, const char *s, size_t n, hd_span *out) {
    *out = (hd_span){r->bytes.len, n};
    return n ? dl_buf_append(&r->bytes, s, n) : 0;
}

void hd_record_free(hd_record *r) {
    dl_buf_free(&r->prompt);
    dl_buf_free(&r->completion);
    dl_buf_free(&r->bytes);
    free(r->tok), free(r->tok_logp), free(r->alt_at), free(r->alts);
    memset(r, 0, sizeof *r);
}

static void record_clear(hd_record *r) {
    r->prompt.len = r->completion.len = r->bytes.len = 0;
    r->chat = r->stopped = r->has_logprobs = r->raw = 0;
    r->n_tok = r->n_alt = 0;
}

/* ---- values --------------------------------------------------------------------------------- */

/* A log-probability: a number <= HD_LOGP_SLACK (rounding of 0 is taken as 0); very negative
 * ones are held at -1e4 (probability 0 in float, still finite). null -> NAN where allowed. */
static int read_logp(json_t *v, int nullable, float *out, const char *what, dl_error *err) {
    if (nullable && json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v)) return dl_fail(err, "%s must be a number, got %s", what, dl_json_type_name(v));
    double x = json_number_value(v);
    if (!(x <= HD_LOGP_SLACK)) return dl_fail(err, "%s = %g is positive: not a log-probability", what, x);
    *out = (float)(x > 0 ? 0 : x < -1e4 ? -1e4 : x);
    return 0;
}

/* A token's bytes: its "bytes" array when given, else its string's UTF-8. */
static int read_bytes(hd_record *r, json_t *token, json_t *bytes, hd_span *out, const char *what, dl_error *err) {
    if (!bytes || json_is_null(bytes))
        return add_bytes(r, json_string_value(token), json_string_length(token), out) ? dl_fail(err, "out of memory")
                                                                                       : 0;
    if (!json_is_array(bytes)) return dl_fail(err, "%s.bytes must be an array, got %s", what, dl_json_type_name(bytes));
    *out = (hd_span){r->bytes.len, json_array_size(bytes)};
    size_t i;
    json_t *b;
    json_array_foreach(bytes, i, b) {
        if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 255)
            return dl_fail(err, "%s.bytes[%zu] must be an integer in 0..255", what, i);
        char c = (char)json_integer_value(b);
        if (dl_buf_append(&r->bytes, &c, 1)) return dl_fail(err, "out of memory");
    }
    return 0;
}

/* The alternatives of one position may not claim more than all the probability. */
static int check_mass(const hd_record *r, const char *what, dl_error *err) {
    double s = 0;
    for (size_t a = r->alt_at[r->n_tok - 1]; a < r->n_alt; a++) s += exp((double)r->alts[a].logp);
    if (s > 1.0 + HD_MASS_SLACK)
        return dl_fail(err, "%s: the alternatives' probabilities add up to %.6g, more than 1", what, s);
    return 0;
}

static int check_count(size_t n, const char *what, dl_error *err) {
    if (n <= HD_MAX_ALTS) return 0;
    return dl_fail(err, "%s holds %zu alternatives, more than %d", what, n, HD_MAX_ALTS);
}

/* ---- completions shape ------------------------------------------------------------------------ */

static int completion_alts(hd_record *r, json_t *top, size_t t, dl_error *err) {
    char what[96];
    snprintf(what, sizeof what, "logprobs.top_logprobs[%zu]", t);
    if (!top || json_is_null(top)) return 0;
    if (!json_is_object(top)) return dl_fail(err, "%s must be an object or null, got %s", what, dl_json_type_name(top));
    if (check_count(json_object_size(top), what, err)) return -1;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(top, key, klen, v) {
        hd_span b;
        float lp;
        if (read_logp(v, 0, &lp, what, err)) return -1;
        if (add_bytes(r, key, klen, &b) || add_alt(r, b, lp)) return dl_fail(err, "out of memory");
    }
    return check_mass(r, what, err);
}

static int parse_completion_shape(hd_record *r, json_t *lp, dl_error *err) {
    json_t *toks = json_object_get(lp, "tokens"), *lps = json_object_get(lp, "token_logprobs");
    json_t *tops = json_object_get(lp, "top_logprobs");
    if (!json_is_array(toks)) return dl_fail(err, "logprobs.tokens must be an array, got %s", dl_json_type_name(toks));
    size_t n = json_array_size(toks);
    if (!json_is_array(lps) || json_array_size(lps) != n)
        return dl_fail(err, "logprobs.token_logprobs must be an array as long as logprobs.tokens (%zu)", n);
    if (tops && !json_is_null(tops) && (!json_is_array(tops) || json_array_size(tops) != n))
        return dl_fail(err, "logprobs.top_logprobs must be null or an array as long as logprobs.tokens (%zu)", n);
    for (size_t t = 0; t < n; t++) {
        json_t *tok = json_array_get(toks, t);
        char what[96];
        snprintf(what, sizeof what, "logprobs.token_logprobs[%zu]", t);
        hd_span b;
        float l;
        if (!json_is_string(tok)) return dl_fail(err, "logprobs.tokens[%zu] must be a string", t);
        if (read_logp(json_array_get(lps, t), 1, &l, what, err) || read_bytes(r, tok, NULL, &b, what, err)) return -1;
        if (add_token(r, b, l)) return dl_fail(err, "out of memory");
        if (completion_alts(r, json_array_get(tops, t), t, err)) return -1;
    }
    return 0;
}

/* ---- chat shape ------------------------------------------------------------------------------ */

static int chat_token(hd_record *r, json_t *o, const char *what, hd_span *b, float *lp, dl_error *err) {
    if (!json_is_object(o)) return dl_fail(err, "%s must be an object, got %s", what, dl_json_type_name(o));
    json_t *tok = json_object_get(o, "token");
    if (!json_is_string(tok)) return dl_fail(err, "%s.token must be a string", what);
    char lwhat[224];
    snprintf(lwhat, sizeof lwhat, "%s.logprob", what);
    if (read_logp(json_object_get(o, "logprob"), 0, lp, lwhat, err)) return -1;
    return read_bytes(r, tok, json_object_get(o, "bytes"), b, what, err);
}

static int parse_chat_shape(hd_record *r, json_t *lp, dl_error *err) {
    json_t *content = json_object_get(lp, "content"), *t;
    r->raw = 1;
    if (json_is_null(content)) return 0;
    if (!json_is_array(content))
        return dl_fail(err, "logprobs.content must be an array, got %s", dl_json_type_name(content));
    size_t i;
    json_array_foreach(content, i, t) {
        char what[96], awhat[192];
        snprintf(what, sizeof what, "logprobs.content[%zu]", i);
        hd_span b;
        float l;
        if (chat_token(r, t, what, &b, &l, err)) return -1;
        if (add_token(r, b, l)) return dl_fail(err, "out of memory");
        json_t *raw = json_object_get(t, "bytes");
        r->raw &= raw && !json_is_null(raw);
        json_t *tops = json_object_get(t, "top_logprobs"), *a;
        if (!json_is_array(tops)) return dl_fail(err, "%s.top_logprobs must be an array", what);
        snprintf(awhat, sizeof awhat, "%s.top_logprobs", what);
        if (check_count(json_array_size(tops), awhat, err)) return -1;
        size_t j;
        json_array_foreach(tops, j, a) {
            snprintf(awhat, sizeof awhat, "%s.top_logprobs[%zu]", what, j);
            if (chat_token(r, a, awhat, &b, &l, err)) return -1;
            if (add_alt(r, b, l)) return dl_fail(err, "out of memory");
        }
        if (check_mass(r, what, err)) return -1;
    }
    return 0;
}

/* ---- the line --------------------------------------------------------------------------------- */

static int read_prompt(hd_record *r, json_t *o, dl_error *err) {
    json_t *prompt = json_object_get(o, "prompt"), *msgs = json_object_get(o, "messages");
    if (prompt && msgs) return dl_fail(err, "has both 'prompt' and 'messages'");
    if (msgs) {
        r->chat = 1;
        char param[DL_CHAT_PARAM_MAX];
        return dl_chat_render(msgs, 0, &r->prompt, param, err) ? -1 : 0;
    }
    if (!prompt) return dl_fail(err, "has neither 'prompt' nor 'messages'");
    if (!json_is_string(prompt)) return dl_fail(err, "'prompt' must be a string, got %s", dl_json_type_name(prompt));
    return dl_buf_append(&r->prompt, json_string_value(prompt), json_string_length(prompt)) ? dl_fail(err, "out of memory")
                                                                                             : 0;
}

static int read_line(hd_record *r, json_t *o, dl_error *err) {
    if (!json_is_object(o)) return dl_fail(err, "must be a JSON object, got %s", dl_json_type_name(o));
    if (read_prompt(r, o, err)) return -1;
    json_t *c = json_object_get(o, "completion"), *fin = json_object_get(o, "finish_reason");
    if (!c) return dl_fail(err, "'completion' is missing");
    if (!json_is_string(c)) return dl_fail(err, "'completion' must be a string, got %s", dl_json_type_name(c));
    if (dl_buf_append(&r->completion, json_string_value(c), json_string_length(c))) return dl_fail(err, "out of memory");
    if (fin && !json_is_null(fin) && !json_is_string(fin))
        return dl_fail(err, "'finish_reason' must be a string or null, got %s", dl_json_type_name(fin));
    r->stopped = json_is_string(fin) && strcmp(json_string_value(fin), "stop") == 0;
    json_t *lp = json_object_get(o, "logprobs");
    if (!lp || json_is_null(lp)) return 0;
    if (!json_is_object(lp)) return dl_fail(err, "'logprobs' must be an object or null, got %s", dl_json_type_name(lp));
    r->has_logprobs = 1;
    return json_object_get(lp, "content") ? parse_chat_shape(r, lp, err) : parse_completion_shape(r, lp, err);
}

int hd_parse_line(hd_record *r, const char *line, size_t len, dl_error *err) {
    record_clear(r);
    json_error_t je;
    /* ALLOW_NUL: a model may emit byte 0, and "\u0000" is valid JSON */
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!o) return dl_fail(err, "not valid JSON (column %d): %s", je.column, je.text);
    int rc = read_line(r, o, err);
    json_decref(o);
    return rc;
}
