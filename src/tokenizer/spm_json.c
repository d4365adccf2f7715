/* A SentencePiece-style tokenizer as Hugging Face's tokenizer.json, in the form its Llama 2
 * conversion writes:
 *   normalizer     Sequence [Prepend("U+2581"), Replace(" " -> "U+2581")]  (no Prepend: no dummy prefix)
 *   pre_tokenizer  null
 *   decoder        Sequence [Replace("U+2581" -> " "), ByteFallback, Fuse, Strip(" ", 1, 0)]
 *   post_processor TemplateProcessing with <s> first (add_bos), or null
 *   model          BPE, byte_fallback true, fuse_unk true, vocab {piece: id}, merges
 * Control and user-defined tokens are added_tokens (special true / false) and in model.vocab.
 * Reading takes that form (anything else is refused naming the field): token types come from
 * added_tokens (special: control, or unknown for model.unk_token; not special: user-defined)
 * and from the <0xXX> spelling (byte); the rest are normal. */
#include "tokenizer/internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SPACE_PIECE "\xe2\x96\x81"

/* ---- reading -------------------------------------------------------------------------------- */

static int is_type(const json_t *v, const char *type) {
    return json_is_object(v) && json_is_string(json_object_get(v, "type")) &&
           strcmp(json_string_value(json_object_get(v, "type")), type) == 0;
}

static int str_is(const json_t *v, const char *s) { return json_is_string(v) && strcmp(json_string_value(v), s) == 0; }

/* {"type": "Replace", "pattern": {"String": from}, "content": to} */
static int is_replace(const json_t *v, const char *from, const char *to) {
    return is_type(v, "Replace") && str_is(json_object_get(json_object_get(v, "pattern"), "String"), from) &&
           str_is(json_object_get(v, "content"), to);
}

static int is_null(const json_t *v) { return !v || json_is_null(v); }

/* Sequence [Prepend, Replace] -> 1, Sequence [Replace] or a bare Replace -> 0, else -1. */
static int parse_normalizer(const json_t *v) {
    if (is_replace(v, " ", SPACE_PIECE)) return 0;
    const json_t *seq = json_object_get(v, "normalizers");
    if (!is_type(v, "Sequence") || !json_is_array(seq)) return -1;
    size_t n = json_array_size(seq);
    if (n == 1 && is_replace(json_array_get(seq, 0), " ", SPACE_PIECE)) return 0;
    const json_t *pre = json_array_get(seq, 0);
    if (n == 2 && is_type(pre, "Prepend") && str_is(json_object_get(pre, "prepend"), SPACE_PIECE) &&
        is_replace(json_array_get(seq, 1), " ", SPACE_PIECE))
        return 1;
    return -1;
}

/* Sequence [Replace, ByteFallback, Fuse] and, with the dummy prefix, Strip(" ", 1, 0). */
static int decoder_ok(const json_t *v, int add_prefix) {
    const json_t *seq = json_object_get(v, "decoders");
    if (!is_type(v, "Sequence") || !json_is_array(seq) || json_array_size(seq) != (size_t)(3 + add_prefix)) return 0;
    if (!is_replace(json_array_get(seq, 0), SPACE_PIECE, " ") || !is_type(json_array_get(seq, 1), "ByteFallback") ||
        !is_type(json_array_get(seq, 2), "Fuse"))
        return 0;
    if (!add_prefix) return 1;
    const json_t *st = json_array_get(seq, 3);
    return is_type(st, "Strip") && str_is(json_object_get(st, "content"), " ") &&
           json_integer_value(json_object_get(st, "start")) == 1 && json_integer_value(json_object_get(st, "stop")) == 0;
}

/* null, or TemplateProcessing: *bos is the special token its single template starts with
 * (NULL when it starts with the sequence). */
static int parse_post(const json_t *v, const char **bos, dl_error *err) {
    *bos = NULL;
    if (is_null(v)) return 0;
    if (!is_type(v, "TemplateProcessing"))
        return dl_fail(err, "post_processor: only null or TemplateProcessing is supported for a byte-fallback BPE");
    const json_t *first = json_array_get(json_object_get(v, "single"), 0);
    if (!json_is_object(first)) return dl_fail(err, "post_processor.single: expected a non-empty array of objects");
    const json_t *id = json_object_get(json_object_get(first, "SpecialToken"), "id");
    if (json_object_get(first, "SpecialToken") && !json_is_string(id))
        return dl_fail(err, "post_processor.single[0].SpecialToken.id: expected a string");
    *bos = json_string_value(id);
    return 0;
}

static int check_model(const json_t *m, dl_error *err) {
    if (!str_is(json_object_get(m, "type"), "BPE") && json_object_get(m, "type"))
        return dl_fail(err, "model.type: only BPE is supported");
    const json_t *v = json_object_get(m, "dropout");
    if (!is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
        return dl_fail(err, "model.dropout: only null is supported");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        v = json_object_get(m, affixes[k]);
        if (!is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return dl_fail(err, "model.%s: only null or \"\" is supported", affixes[k]);
    }
    if (json_is_true(json_object_get(m, "ignore_merges")))
        return dl_fail(err, "model.ignore_merges: true is not supported for a byte-fallback BPE");
    v = json_object_get(m, "unk_token");
    if (!is_null(v) && !json_is_string(v))
        return dl_fail(err, "model.unk_token: expected a string or null, got %s", dl_json_type_name(v));
    if (!json_is_object(json_object_get(m, "vocab"))) return dl_fail(err, "model.vocab: expected an object");
    if (!json_is_array(json_object_get(m, "merges"))) return dl_fail(err, "model.merges: expected an array");
    return 0;
}

/* What the file says about its tokens, gathered before the tokenizer is built. */
typedef struct spm_read {
    const json_t *vocab;
    int32_t n;
    const char **piece;
    size_t *len;
    uint8_t *type;
    tok_merge *merges;
    int32_t n_merges;
} spm_read;

static int read_vocab(spm_read *r, dl_error *err) {
    size_t n = json_object_size(r->vocab);
    if (n == 0 || n > TOK_MAX_VOCAB) return dl_fail(err, "model.vocab: %zu entries (1 to %d)", n, TOK_MAX_VOCAB);
    r->n = (int32_t)n;
    r->piece = calloc(n, sizeof *r->piece);
    r->len = calloc(n, sizeof *r->len);
    r->type = calloc(n, 1);
    if (!r->piece || !r->len || !r->type) return dl_fail(err, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)r->vocab, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || (size_t)id >= n)
            return dl_fail(err, "model.vocab['%.100s']: expected an id from 0 to %zu (ids must be 0..n-1)", key, n - 1);
        if (r->piece[id])
            return dl_fail(err, "model.vocab: id %lld is used by both '%.100s' and '%.100s'", (long long)id, r->piece[id], key);
        int b;
        r->piece[id] = key;
        r->len[id] = strlen(key);
        r->type[id] = tok_spm_byte_piece(key, r->len[id], &b) ? DL_TOK_BYTE : DL_TOK_NORMAL;
    }
    return 0;
}

static int flag_false(const json_t *o, const char *key) { return is_null(json_object_get(o, key)) || json_is_false(json_object_get(o, key)); }

/* Marks the added tokens: special ones control (unknown for unk), the others user-defined. */
static int read_added(spm_read *r, const json_t *arr, const char *unk, dl_error *err) {
    if (is_null(arr)) return 0;
    if (!json_is_array(arr)) return dl_fail(err, "added_tokens: expected an array");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *a = json_array_get(arr, i), *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || !json_is_string(content))
            return dl_fail(err, "added_tokens[%zu]: expected an object with an integer id and a string content", i);
        const json_t *vid = json_object_get(r->vocab, json_string_value(content));
        if (!vid || json_integer_value(vid) != json_integer_value(id))
            return dl_fail(err, "added_tokens[%zu] ('%.100s', id %lld) is not in model.vocab under that id", i,
                           json_string_value(content), (long long)json_integer_value(id));
        if (!flag_false(a, "single_word") || !flag_false(a, "lstrip") || !flag_false(a, "rstrip"))
            return dl_fail(err, "added_tokens[%zu]: single_word, lstrip and rstrip must be false", i);
        const json_t *sp = json_object_get(a, "special");
        if (!is_null(sp) && !json_is_boolean(sp)) return dl_fail(err, "added_tokens[%zu].special: expected a boolean", i);
        int is_unk = unk && strcmp(json_string_value(content), unk) == 0;
        r->type[json_integer_value(id)] = !json_is_true(sp) ? DL_TOK_USER_DEFINED : is_unk ? DL_TOK_UNKNOWN : DL_TOK_CONTROL;
    }
    return 0;
}

static int32_t vocab_id(const spm_read *r, const char *piece) {
    const json_t *v = json_object_get(r->vocab, piece);
    return v ? (int32_t)json_integer_value(v) : -1;
}

/* One merge, "a b" or ["a", "b"], as ids; cat is scratch for a + b. */
static int read_merge(spm_read *r, const json_t *m, size_t i, dl_buf *cat, dl_error *err) {
    const char *a, *b, *sp;
    size_t la, lb;
    if (json_is_string(m) && (sp = strchr(json_string_value(m), ' ')) && !strchr(sp + 1, ' ')) {
        a = json_string_value(m);
        la = (size_t)(sp - a);
        b = sp + 1;
        lb = strlen(b);
    } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
               json_is_string(json_array_get(m, 1))) {
        a = json_string_value(json_array_get(m, 0));
        la = strlen(a);
        b = json_string_value(json_array_get(m, 1));
        lb = strlen(b);
    } else {
        return dl_fail(err, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
    }
    cat->len = 0;
    if (dl_buf_append(cat, a, la) || dl_buf_append(cat, "", 1) || dl_buf_append(cat, b, lb) ||
        dl_buf_append(cat, "", 1) || dl_buf_append(cat, a, la) || dl_buf_append(cat, b, lb) || dl_buf_append(cat, "", 1))
        return dl_fail(err, "out of memory");
    const char *sa = cat->data, *sb = sa + la + 1, *sc = sb + lb + 1;
    tok_merge t = {vocab_id(r, sa), vocab_id(r, sb), vocab_id(r, sc)};
    if (t.a < 0 || t.b < 0) return dl_fail(err, "model.merges[%zu]: unknown token '%.100s'", i, t.a < 0 ? sa : sb);
    if (t.c < 0) return dl_fail(err, "model.merges[%zu]: '%.100s' + '%.100s' is not in model.vocab", i, sa, sb);
    r->merges[r->n_merges++] = t;
    return 0;
}

static int read_merges(spm_read *r, const json_t *arr, dl_error *err) {
    size_t n = json_array_size(arr);
    if (n > TOK_MAX_VOCAB) return dl_fail(err, "model.merges: %zu entries (at most %d)", n, TOK_MAX_VOCAB);
    if (!(r->merges = malloc((n + 1) * sizeof *r->merges))) return dl_fail(err, "out of memory");
    dl_buf cat = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = read_merge(r, json_array_get(arr, i), i, &cat, err);
    dl_buf_free(&cat);
    return rc;
}

static int read_options(const json_t *root, spm_read *r, dl_spm_opts *o, dl_error *err) {
    const json_t *v = json_object_get(root, "version");
    if (v && !str_is(v, "1.0")) return dl_fail(err, "version: expected \"1.0\"");
    o->add_prefix = parse_normalizer(json_object_get(root, "normalizer"));
    if (o->add_prefix < 0)
        return dl_fail(err, "normalizer: a byte-fallback BPE needs Sequence [Prepend(\"\xe2\x96\x81\"), "
                            "Replace(\" \" -> \"\xe2\x96\x81\")] or Replace alone");
    if (!is_null(json_object_get(root, "pre_tokenizer")))
        return dl_fail(err, "pre_tokenizer: must be null for a byte-fallback BPE");
    if (!decoder_ok(json_object_get(root, "decoder"), o->add_prefix))
        return dl_fail(err, "decoder: a byte-fallback BPE needs Sequence [Replace(\"\xe2\x96\x81\" -> \" \"), "
                            "ByteFallback, Fuse%s]", o->add_prefix ? ", Strip(\" \", 1, 0)" : "");
    const char *bos;
    if (parse_post(json_object_get(root, "post_processor"), &bos, err)) return -1;
    o->add_bos = bos != NULL;
    o->bos_id = vocab_id(r, bos ? bos : "<s>");
    if (bos && o->bos_id < 0) return dl_fail(err, "post_processor: token '%.100s' is not in model.vocab", bos);
    o->eos_id = vocab_id(r, "</s>");
    return 0;
}

dl_tokenizer *tok_spm_from_json(const json_t *root, dl_error *err) {
    const json_t *model = json_object_get(root, "model");
    spm_read r = {.vocab = json_object_get(model, "vocab")};
    dl_spm_opts o = {-1, -1, -1, 0, 0};
    dl_tokenizer *t = NULL;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (check_model(model, err) || read_vocab(&r, err) || read_options(root, &r, &o, err) ||
        read_added(&r, json_object_get(root, "added_tokens"), unk, err) ||
        read_merges(&r, json_object_get(model, "merges"), err))
        goto done;
    o.unk_id = unk ? vocab_id(&r, unk) : -1;
    if (unk && o.unk_id < 0) {
        dl_fail(err, "model.unk_token '%.100s' is not in model.vocab", unk);
        goto done;
    }
    tok_spm_src src = {.n = r.n, .piece = r.piece, .len = r.len, .type = r.type, .merges = r.merges,
                       .n_merges = r.n_merges, .o = o};
    t = tok_spm_build(&src, err);
done:
    free(r.piece);
    free(r.len);
    free(r.type);
    free(r.merges);
    return t;
}

/* ---- writing -------------------------------------------------------------------------------- */

static json_t *replace_obj(const char *from, const char *to) {
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", from, "content", to);
}

static json_t *normalizer_obj(int add_prefix) {
    json_t *seq = json_array();
    if (add_prefix) json_array_append_new(seq, json_pack("{s:s, s:s}", "type", "Prepend", "prepend", SPACE_PIECE));
    json_array_append_new(seq, replace_obj(" ", SPACE_PIECE));
    return json_pack("{s:s, s:o}", "type", "Sequence", "normalizers", seq);
}

static json_t *decoder_obj(int add_prefix) {
    json_t *seq = json_pack("[o, {s:s}, {s:s}]", replace_obj(SPACE_PIECE, " "), "type", "ByteFallback", "type", "Fuse");
    if (add_prefix)
        json_array_append_new(seq, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    return json_pack("{s:s, s:o}", "type", "Sequence", "decoders", seq);
}

/* <s> $A and <s> $A <s> $B, as the Llama 2 conversion writes it. */
static json_t *post_obj(const char *bos, int bos_id) {
    return json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, "
                     "{s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}",
                     "type", "TemplateProcessing", "single", "SpecialToken", "id", bos, "type_id", 0, "Sequence", "id",
                     "A", "type_id", 0, "pair", "SpecialToken", "id", bos, "type_id", 0, "Sequence", "id", "A",
                     "type_id", 0, "SpecialToken", "id", bos, "type_id", 1, "Sequence", "id", "B", "type_id", 1,
                     "special_tokens", bos, "id", bos, "ids", bos_id, "tokens", bos);
}

static const char *piece_str(const tok_spm *s, int32_t id) { return s->pieces.data + s->poff[id]; }

/* pieces back to back as NUL-terminated strings, for jansson */
static char **piece_strings(const dl_tokenizer *t) {
    char **p = calloc((size_t)t->n_vocab, sizeof *p);
    for (int32_t id = 0; p && id < t->n_vocab; id++) {
        if (!(p[id] = strndup(piece_str(t->spm, id), t->spm->plen[id]))) {
            while (id-- > 0) free(p[id]);
            free(p);
            return NULL;
        }
    }
    return p;
}

static json_t *merges_array(const dl_tokenizer *t, char **p) {
    int pair_form = 0; /* "a b" cannot hold a piece with a space in it */
    for (int32_t r = 0; r < t->n_merges; r++)
        pair_form |= strchr(p[t->merges[r].a], ' ') || strchr(p[t->merges[r].b], ' ');
    json_t *arr = json_array();
    dl_buf s = {0};
    int bad = !arr;
    for (int32_t r = 0; r < t->n_merges && !bad; r++) {
        const char *a = p[t->merges[r].a], *b = p[t->merges[r].b];
        if (pair_form) {
            bad |= json_array_append_new(arr, json_pack("[s, s]", a, b));
            continue;
        }
        s.len = 0;
        bad |= dl_buf_printf(&s, "%s %s", a, b) || json_array_append_new(arr, json_string(s.data));
    }
    dl_buf_free(&s);
    if (bad) json_decref(arr);
    return bad ? NULL : arr;
}

static json_t *added_array(const dl_tokenizer *t) {
    json_t *arr = json_array();
    int bad = !arr;
    for (int k = 0; k < t->n_added && !bad; k++) {
        const tok_added *a = &t->added[k];
        bad |= json_array_append_new(arr, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (int)a->id, "content",
                                                    a->content, "single_word", 0, "lstrip", 0, "rstrip", 0,
                                                    "normalized", 0, "special", a->special));
    }
    if (bad) json_decref(arr);
    return bad ? NULL : arr;
}

static json_t *build_json(const dl_tokenizer *t, char **p) {
    const dl_spm_opts *o = &t->spm->o;
    json_t *vocab = json_object();
    int bad = !vocab;
    for (int32_t id = 0; id < t->n_vocab && !bad; id++) bad |= json_object_set_new(vocab, p[id], json_integer(id));
    json_t *merges = bad ? NULL : merges_array(t, p);
    json_t *unk = o->unk_id >= 0 ? json_string(p[o->unk_id]) : json_null();
    json_t *model = json_pack("{s:s, s:n, s:o, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                              unk, "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1, "byte_fallback",
                              1, "ignore_merges", 0, "vocab", bad ? NULL : vocab, "merges", merges);
    json_t *post = o->add_bos && o->bos_id >= 0 ? post_obj(p[o->bos_id], o->bos_id) : json_null();
    if (bad) json_decref(vocab);
    return json_pack("{s:s, s:n, s:n, s:o, s:o, s:n, s:o, s:o, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added_array(t), "normalizer", normalizer_obj(o->add_prefix), "pre_tokenizer",
                     "post_processor", post, "decoder", decoder_obj(o->add_prefix), "model", model);
}

json_t *tok_spm_to_json(const dl_tokenizer *t, dl_error *err) {
    char **p = piece_strings(t);
    json_t *root = p ? build_json(t, p) : NULL;
    for (int32_t id = 0; p && id < t->n_vocab; id++) free(p[id]);
    free(p);
    if (!root) dl_fail(err, "cannot build the tokenizer JSON (out of memory?)");
    return root;
}
