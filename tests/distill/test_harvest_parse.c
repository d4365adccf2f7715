/* Harvest lines -> records -> the student's sequences (harvest_data.h): both logprob shapes,
 * bytes against strings, the teacher's own (non-canonical) tokens, a different tokenization
 * (alignment by bytes), unmapped alternatives and the rest mass, the end token, truncation,
 * the file layout and split, and malformed lines (each a clear error, never a crash).
 * Expected ids come from the tokenizer directly (dl_tok_encode, dl_tok_id), not from the code
 * under test. */
#include "distill/harvest_data.h"
#include "distill_fixture.h"
#include <jansson.h>

static dl_tokenizer *tok;
static hd_vocab voc;
static char root[512];

static int id_of(const char *s) { return dl_tok_id(tok, s); }

static dl_ivec enc(const char *s, int special) {
    dl_ivec v = {0};
    dl_error err;
    if (dl_tok_encode(tok, s, strlen(s), special, &v, &err)) fx_die("encode", &err);
    return v;
}

static char *piece(int id) { // the token's bytes as a C string (the fixture's tokens are ASCII)
    static char buf[8][64];
    static int slot;
    size_t n;
    const char *s = dl_tok_token(tok, id, &n);
    char *b = buf[slot++ % 8];
    snprintf(b, 64, "%.*s", (int)n, s);
    return b;
}

static char *dump(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Parses and maps one line; fails the test (and returns -1) on an error. */
static int map_line(char *line, int max_len, hd_seq *s, hd_counts *c) {
    hd_record r = {0};
    dl_error err = {{0}};
    int rc = hd_parse_line(&r, line, strlen(line), &err) || hd_map_record(&r, &voc, max_len, s, c, &err);
    CHECK_MSG(rc == 0, "%s: %s", err.msg, line);
    hd_record_free(&r);
    free(line);
    return rc ? -1 : 0;
}

/* ---- completions shape, the teacher's tokenizer --------------------------------------------- */

static void test_completions_direct(void) {
    const char *prompt = "the dog ran", *completion = " to the log and";
    dl_ivec p = enc(prompt, 1), c = enc(completion, 0);
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array();
    for (size_t i = 0; i < c.len; i++) {
        json_array_append_new(toks, json_string(piece(c.data[i])));
        json_array_append_new(lps, json_real(-0.25));
        /* alternatives: the sampled token, a real token, and one the student does not have */
        json_t *alt = json_pack("{s:f, s:f, s:f}", piece(c.data[i]), -0.25, " cat", -2.0, "qqzzx", -3.0);
        json_array_append_new(tops, alt);
    }
    CHECK(id_of(" cat") >= 0 && id_of("qqzzx") < 0);
    json_t *o = json_pack("{s:s, s:s, s:s, s:{s:o, s:o, s:o}}", "prompt", prompt, "completion", completion,
                          "finish_reason", "length", "logprobs", "tokens", toks, "token_logprobs", lps, "top_logprobs",
                          tops);
    hd_seq s = {0};
    hd_counts n = {0};
    if (map_line(dump(o), 100, &s, &n)) return;
    CHECK(s.first == (int)p.len && s.ids.len == p.len + c.len);
    CHECK(memcmp(s.ids.data, p.data, p.len * 4) == 0 && memcmp(s.ids.data + p.len, c.data, c.len * 4) == 0);
    CHECK(n.direct == 1 && n.tokens == (long)c.len && n.topk == (long)c.len && n.unaligned == 0);
    CHECK(n.alts == 3 * (long)c.len && n.unmapped == (long)c.len);
    size_t at = 0;
    for (size_t i = 0; i < c.len; i++) {
        int k = s.n_alt.data[i];
        CHECK_MSG(k == 2 && c.data[i] != id_of(" cat"), "position %zu: %d targets", i, k);
        CHECK(s.alt_ids.data[at] == c.data[i] && s.top1.data[i] == c.data[i]);
        /* the unmapped alternative's mass stays in the rest bin */
        double kept = exp(-0.25) + exp(-2.0);
        CHECK_CLOSE(s.rest[i], 1 - kept, 1e-6, 0);
        at += (size_t)k;
    }
    dl_ivec_free(&p), dl_ivec_free(&c);
    hd_seq_free(&s);
}

/* The teacher wrote " log" byte by byte: its tokens are the sequence, every one aligned. */
static void test_noncanonical_direct(void) {
    const char *completion = " log";
    dl_ivec one = enc(completion, 0);
    CHECK(one.len == 1);
    dl_ivec_free(&one);
    json_t *content = json_array();
    for (int i = 0; i < 4; i++) {
        char ch[2] = {completion[i], 0};
        json_array_append_new(content, json_pack("{s:s, s:f, s:[i], s:[{s:s, s:f}]}", "token", ch, "logprob", -0.5,
                                                 "bytes", (int)(unsigned char)ch[0], "top_logprobs", "token", ch,
                                                 "logprob", -0.5));
    }
    json_t *o = json_pack("{s:[{s:s,s:s}], s:s, s:n, s:{s:o}}", "messages", "role", "user", "content", "x",
                          "completion", completion, "finish_reason", "logprobs", "content", content);
    hd_seq s = {0};
    hd_counts n = {0};
    if (map_line(dump(o), 100, &s, &n)) return;
    CHECK(n.direct == 1 && n.topk == 4 && s.ids.len - (size_t)s.first == 4);
    for (int i = 0; i < 4; i++) CHECK(s.ids.data[s.first + i] == (unsigned char)completion[i]);
    hd_seq_free(&s);
}

/* ---- chat shape: template, bytes over strings --------------------------------------------------- */

static void test_chat_bytes(void) {
    const char *completion = " the dog";
    dl_ivec c = enc(completion, 0);
    json_t *content = json_array();
    for (size_t i = 0; i < c.len; i++) {
        json_t *bytes = json_array();
        for (const char *q = piece(c.data[i]); *q; q++) json_array_append_new(bytes, json_integer((unsigned char)*q));
        /* the strings are garbage: the bytes decide */
        json_t *alt = json_pack("{s:s, s:f, s:[i,i,i,i]}", "token", "\xef\xbf\xbd", "logprob", -1.5, "bytes", ' ', 'r',
                                'e', 'd');
        json_array_append_new(content, json_pack("{s:s, s:f, s:o, s:[o]}", "token", "\xef\xbf\xbd", "logprob", -0.5,
                                                 "bytes", bytes, "top_logprobs", alt));
    }
    json_t *o = json_pack("{s:[{s:s,s:s},{s:s,s:[{s:s,s:s}]}], s:s, s:s, s:{s:o}}", "messages", "role", "system",
                          "content", "be brief", "role", "user", "content", "type", "text", "text", "the cat",
                          "completion", completion, "finish_reason", "stop", "logprobs", "content", content);
    hd_seq s = {0};
    hd_counts n = {0};
    if (map_line(dump(o), 100, &s, &n)) return;
    /* distil serve's template (serve/api.h), then the completion and the end token */
    dl_ivec p = enc("### System:\nbe brief\n\n### User:\nthe cat\n\n### Assistant:\n", 0);
    CHECK(s.first == (int)p.len && memcmp(s.ids.data, p.data, p.len * 4) == 0);
    CHECK(s.ids.len == p.len + c.len + 1 && s.ids.data[s.ids.len - 1] == dl_tok_eot_id(tok));
    CHECK(n.direct == 1 && n.tokens == (long)c.len + 1 && n.topk == (long)c.len);
    int red = id_of(" red");
    CHECK(red >= 0 && s.top1.data[0] == red && s.alt_ids.data[0] == red);
    CHECK(s.n_alt.data[c.len] == 0); /* the end token: cross-entropy only */
    dl_ivec_free(&p), dl_ivec_free(&c);
    hd_seq_free(&s);
}

/* Raw bytes that are not UTF-8: the server repaired the completion text, the bytes are still the
 * teacher's tokens; without bytes (completions shape) the repaired strings cannot be mapped. */
static void test_invalid_utf8(void) {
    json_t *content = json_pack("[{s:s, s:f, s:[i], s:[{s:s, s:f, s:[i]}]}, {s:s, s:f, s:[i,i,i,i], s:[]}]", "token",
                                "\xef\xbf\xbd", "logprob", -0.5, "bytes", 0xC3, "top_logprobs", "token",
                                "\xef\xbf\xbd", "logprob", -0.5, "bytes", 0xC3, "token", " dog", "logprob", -0.5,
                                "bytes", ' ', 'd', 'o', 'g', "top_logprobs");
    json_t *o = json_pack("{s:s, s:s, s:{s:o}}", "prompt", "a", "completion", "\xef\xbf\xbd dog", "logprobs", "content",
                          content);
    hd_seq s = {0};
    hd_counts n = {0};
    if (map_line(dump(o), 100, &s, &n)) return;
    CHECK(n.direct == 1 && s.ids.len == (size_t)s.first + 2 && s.ids.data[s.first] == 0xC3);
    CHECK(s.ids.data[s.first + 1] == id_of(" dog") && n.topk == 2 && n.unaligned == 0);
    /* the completions shape of the same answer: the string "\ufffd" is no student token */
    o = json_pack("{s:s, s:s, s:{s:[s,s], s:[f,f], s:[{s:f},{s:f}]}}", "prompt", "a", "completion", "\xef\xbf\xbd dog",
                  "logprobs", "tokens", "\xef\xbf\xbd", " dog", "token_logprobs", -0.5, -0.5, "top_logprobs",
                  "\xef\xbf\xbd", -0.5, " dog", -0.5);
    memset(&n, 0, sizeof n);
    if (map_line(dump(o), 100, &s, &n)) return;
    dl_ivec c = enc("\xef\xbf\xbd dog", 0);
    CHECK(n.direct == 0 && s.ids.len - (size_t)s.first == c.len && n.unaligned == (long)c.len - 1);
    CHECK(s.n_alt.data[c.len - 1] == 1); /* " dog" still lines up */
    dl_ivec_free(&c);
    hd_seq_free(&s);
}

/* ---- another tokenizer: only positions whose bytes match a teacher token are aligned ------------- */

static void test_alignment(void) {
    const char *completion = " cat sat on the mat";
    dl_ivec c = enc(completion, 0);
    /* teacher tokens: the student's, except that the 2nd and 3rd are one (not a student token) */
    CHECK(c.len == 5 && id_of(" sat on") < 0);
    const char *t[4] = {piece(c.data[0]), " sat on", piece(c.data[3]), piece(c.data[4])};
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array();
    for (int i = 0; i < 4; i++) {
        json_array_append_new(toks, json_string(t[i]));
        json_array_append_new(lps, i == 2 ? json_null() : json_real(-0.5));
        json_array_append_new(tops, i == 3 ? json_null() : json_pack("{s:f}", t[i], -0.5));
    }
    json_t *o = json_pack("{s:s, s:s, s:{s:o, s:o, s:o}}", "prompt", "a", "completion", completion, "logprobs",
                          "tokens", toks, "token_logprobs", lps, "top_logprobs", tops);
    hd_seq s = {0};
    hd_counts n = {0};
    if (map_line(dump(o), 100, &s, &n)) return;
    CHECK(n.direct == 0 && n.tokens == 5 && n.unaligned == 2);
    CHECK(s.ids.len - (size_t)s.first == 5 && memcmp(s.ids.data + s.first, c.data, 5 * 4) == 0);
    /* " cat": its alternative; " sat", " on": none; " the": alternative, no logprob of its own;
     * " mat": no alternatives but its own logprob */
    static const int want[5] = {1, 0, 0, 1, 1};
    for (int i = 0; i < 5; i++) CHECK_MSG(s.n_alt.data[i] == want[i], "position %d: %d", i, s.n_alt.data[i]);
    CHECK(n.topk == 3 && n.alts == 2 && n.unmapped == 0);
    dl_ivec_free(&c);
    hd_seq_free(&s);
}

/* The tokens stop spelling the completion part way: alignment stops there. */
static void test_spelling_mismatch(void) {
    const char *completion = " the dog ran";
    dl_ivec c = enc(completion, 0);
    CHECK(c.len == 3);
    json_t *o = json_pack("{s:s, s:s, s:{s:[s,s,s], s:[f,f,f], s:[{s:f},{s:f},{s:f}]}}", "prompt", "a", "completion",
                          completion, "logprobs", "tokens", piece(c.data[0]), " cat", piece(c.data[2]),
                          "token_logprobs", -0.1, -0.1, -0.1, "top_logprobs", " a", -1.0, " a", -1.0, " a", -1.0);
    hd_seq s = {0};
    hd_counts n = {0};
    if (map_line(dump(o), 100, &s, &n)) return;
    CHECK(n.direct == 0 && n.unaligned == 2 && s.n_alt.data[0] == 2 && s.n_alt.data[2] == 0);
    dl_ivec_free(&c);
    hd_seq_free(&s);
}

/* Without logprobs: the completion, cross-entropy only; too long: cut to max_len. */
static void test_plain_and_truncated(void) {
    hd_seq s = {0};
    hd_counts n = {0};
    const char *prompt = "the cat sat on the mat and the dog", *completion = " ran to the log and saw a big red hen";
    dl_ivec p = enc(prompt, 1), c = enc(completion, 0);
    if (map_line(dump(json_pack("{s:s, s:s, s:n}", "prompt", prompt, "completion", completion, "logprobs")), 100, &s,
                 &n))
        return;
    CHECK(n.topk == 0 && n.unaligned == 0 && n.direct == 0 && n.truncated == 0 && n.tokens == (long)c.len);
    /* 8 tokens: the completion's first 7 after the prompt's last token */
    memset(&n, 0, sizeof n);
    if (map_line(dump(json_pack("{s:s, s:s}", "prompt", prompt, "completion", completion)), 8, &s, &n)) return;
    CHECK(n.truncated == 1 && s.ids.len == 8 && s.first == 1 && s.ids.data[0] == p.data[p.len - 1]);
    CHECK(memcmp(s.ids.data + 1, c.data, 7 * 4) == 0 && n.tokens == 7);
    /* a short completion keeps as much of the prompt's end as fits */
    memset(&n, 0, sizeof n);
    if (map_line(dump(json_pack("{s:s, s:s}", "prompt", prompt, "completion", " ran")), 4, &s, &n)) return;
    CHECK(s.ids.len == 4 && s.first == 3 && s.ids.data[2] == p.data[p.len - 1] && n.truncated == 1);
    dl_ivec_free(&p), dl_ivec_free(&c);
    hd_seq_free(&s);
}

/* ---- malformed lines ---------------------------------------------------------------------------- */

static void test_malformed(void) {
    static const char *const cases[][2] = {
        {"{\"prompt\": \"a\", \"completion\": \"b\"", "not valid JSON"},
        {"[1, 2]", "must be a JSON object"},
        {"{\"prompt\": \"a\"}", "'completion' is missing"},
        {"{\"prompt\": \"a\", \"completion\": 7}", "'completion' must be a string"},
        {"{\"completion\": \"b\"}", "neither 'prompt' nor 'messages'"},
        {"{\"prompt\": 3, \"completion\": \"b\"}", "'prompt' must be a string"},
        {"{\"prompt\": \"a\", \"messages\": [], \"completion\": \"b\"}", "both"},
        {"{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}], \"completion\": \"b\"}", "messages[0].role"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 5}], \"completion\": \"b\"}", "messages[0].content"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"finish_reason\": 1}", "'finish_reason'"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": []}", "'logprobs' must be an object"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": []}}",
         "as long as logprobs.tokens (1)"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [0], "
         "\"top_logprobs\": [{}, {}]}}", "top_logprobs must be null or an array as long"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [1], \"token_logprobs\": [0]}}",
         "logprobs.tokens[0] must be a string"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [0.5]}}",
         "is positive"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [\"x\"]}}",
         "must be a number"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [NaN]}}",
         "not valid JSON"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [-1e999]}}",
         "not valid JSON"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [0], "
         "\"top_logprobs\": [{\"b\": -0.1, \"c\": -0.2}]}}", "add up to"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [0], "
         "\"top_logprobs\": [{\"b\": -1, \"b\": -2}]}}", "not valid JSON"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"content\": [{\"token\": \"b\", \"logprob\": 0, "
         "\"bytes\": [300], \"top_logprobs\": []}]}}", "bytes[0] must be an integer in 0..255"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"content\": [{\"token\": \"b\", \"logprob\": 0}]}}",
         "content[0].top_logprobs must be an array"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"content\": [{\"token\": \"b\", \"logprob\": 0, "
         "\"top_logprobs\": [{\"token\": \"c\", \"logprob\": 2}]}]}}", "top_logprobs[0].logprob = 2 is positive"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"content\": 3}}", "content must be an array"},
    };
    hd_record r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dl_error err = {{0}};
        int rc = hd_parse_line(&r, cases[i][0], strlen(cases[i][0]), &err);
        CHECK_MSG(rc != 0 && strstr(err.msg, cases[i][1]), "case %zu: rc %d, '%s'", i, rc, err.msg);
    }
    /* more alternatives than a position may hold */
    dl_buf b = {0};
    dl_buf_printf(&b, "{\"prompt\": \"a\", \"completion\": \"b\", \"logprobs\": {\"tokens\": [\"b\"], "
                      "\"token_logprobs\": [0], \"top_logprobs\": [{");
    for (int i = 0; i < HD_MAX_ALTS + 1; i++) dl_buf_printf(&b, "%s\"t%d\": -20", i ? ", " : "", i);
    dl_buf_printf(&b, "}]}}");
    dl_error err = {{0}};
    CHECK(hd_parse_line(&r, b.data, b.len, &err) != 0 && strstr(err.msg, "more than 64"));
    dl_buf_free(&b);
    hd_record_free(&r);
}

/* Every prefix of a valid chat line, and random byte changes to it: an error or a record, never a
 * crash or a read out of bounds (the sanitizer build watches). */
static void test_mutations(void) {
    const char *line = "{\"messages\": [{\"role\": \"user\", \"content\": \"the cat\"}], \"completion\": \" sat\", "
                       "\"finish_reason\": \"stop\", \"logprobs\": {\"content\": [{\"token\": \" sat\", "
                       "\"logprob\": -0.5, \"bytes\": [32, 115, 97, 116], \"top_logprobs\": [{\"token\": \" ran\", "
                       "\"logprob\": -1.5, \"bytes\": [32, 114, 97, 110]}]}]}}";
    size_t n = strlen(line);
    hd_record r = {0};
    hd_seq s = {0};
    hd_counts c = {0};
    dl_error err;
    int ok = 0;
    for (size_t k = 0; k <= n; k++)
        if (hd_parse_line(&r, line, k, &err) == 0) ok += hd_map_record(&r, &voc, 16, &s, &c, &err) == 0;
    CHECK(ok == 1); /* only the whole line */
    char *m = malloc(n + 1);
    dl_rng g;
    dl_rng_seed(&g, 11);
    for (int i = 0; i < 2000; i++) {
        memcpy(m, line, n + 1);
        for (int j = 0; j < 3; j++) m[dl_rng_below(&g, n)] = "0:,[]{}\"-9e. a\\"[dl_rng_below(&g, 15)];
        if (hd_parse_line(&r, m, n, &err) == 0) hd_map_record(&r, &voc, 16, &s, &c, &err);
    }
    free(m);
    hd_record_free(&r);
    hd_seq_free(&s);
}

/* ---- the whole file ---------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
}

static void test_set(void) {
    char path[700];
    snprintf(path, sizeof path, "%s/h.jsonl", root);
    dl_buf b = {0};
    for (int i = 0; i < 12; i++)
        dl_buf_printf(&b, "{\"id\": %d, \"prompt\": \"the cat\", \"completion\": \" sat on the mat %d\"}\n%s", i, i,
                      i == 4 ? "\n" : "");
    dl_buf_printf(&b, "{\"id\": 99, \"prompt\": \"the cat\", \"completion\": \"\"}\n"); /* nothing to learn */
    dl_buf_append(&b, "", 1);
    write_file(path, b.data);
    hd_set s;
    dl_error err = {{0}};
    int T = 16;
    CHECK_MSG(hd_set_build(&s, path, &voc, T, &err) == 0, "%s", err.msg);
    CHECK(s.n.records == 13 && s.n.used == 12 && s.n.train == 11 && s.n.val == 1);
    CHECK(s.train.n_pos == 11 * (size_t)T && s.train.n_tokens == 11 * (size_t)T + 1 && s.val.n_pos == (size_t)T);
    /* window 0 is record 0: the prompt, then the completion, then padding; targets from the completion on */
    dl_ivec p = enc("the cat", 1), c = enc(" sat on the mat 0", 0);
    CHECK(memcmp(s.train.tokens, p.data, p.len * 4) == 0 && memcmp(s.train.tokens + p.len, c.data, c.len * 4) == 0);
    for (int t = 0; t < T; t++) {
        size_t next = (size_t)t + 1;
        int want = next >= p.len && next < p.len + c.len ? c.data[next - p.len] : -1;
        CHECK_MSG(s.train.target[t] == want, "t %d: %d, want %d", t, s.train.target[t], want);
    }
    /* the held-out record is the 10th (id 9) */
    dl_ivec c9 = enc(" sat on the mat 9", 0);
    CHECK(memcmp(s.val.tokens + p.len, c9.data, c9.len * 4) == 0);
    char dir[800];
    snprintf(dir, sizeof dir, "%s/hdata", root);
    CHECK(hd_set_write(&s, dir, voc.V, DISTIL_SOURCE_DIR "/no-such-tokenizer.json", &err) != 0);
    hd_set_free(&s);
    dl_ivec_free(&p), dl_ivec_free(&c), dl_ivec_free(&c9);

    /* a bad line is named; a cut-off last line says what probably happened */
    b.len = 0;
    dl_buf_printf(&b, "{\"prompt\": \"a\", \"completion\": \"b\"}\n\n{\"prompt\": \"a\"}\n");
    dl_buf_append(&b, "", 1);
    write_file(path, b.data);
    CHECK(hd_set_build(&s, path, &voc, T, &err) != 0 && strstr(err.msg, "line 3: 'completion' is missing"));
    hd_set_free(&s);
    write_file(path, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"compl");
    CHECK(hd_set_build(&s, path, &voc, T, &err) != 0 && strstr(err.msg, "line 2") && strstr(err.msg, "no newline"));
    hd_set_free(&s);
    write_file(path, "\n");
    CHECK(hd_set_build(&s, path, &voc, T, &err) != 0 && strstr(err.msg, "no completion"));
    hd_set_free(&s);
    CHECK(hd_set_build(&s, "/no/such/harvest.jsonl", &voc, T, &err) != 0 && strstr(err.msg, "harvest"));
    hd_set_free(&s);
    dl_buf_free(&b);
}

int main(void) {
    dl_error err;
    snprintf(root, sizeof root, "%s", test_tmpdir("harvest-parse"));
    char *text = fx_corpus(3000, 0);
    tok = dl_tok_train(text, strlen(text), 300, NULL, &err);
    free(text);
    if (!tok) fx_die("tokenizer", &err);
    voc = (hd_vocab){tok, dl_tok_vocab_size(tok), dl_tok_eot_id(tok), dl_tok_eot_id(tok)};
    test_completions_direct();
    test_noncanonical_direct();
    test_chat_bytes();
    test_invalid_utf8();
    test_alignment();
    test_spelling_mismatch();
    test_plain_and_truncated();
    test_malformed();
    test_mutations();
    test_set();
    dl_tok_free(tok);
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
