/* Hugging Face tokenizer.json: read and write.
 *
 * We write what `tokenizers` writes for a GPT-2 style byte-level BPE: model BPE with vocab
 * {token: id} and merges, tokens spelled in GPT-2's byte-to-unicode alphabet, specials both in
 * model.vocab and added_tokens (as its trainer does), ByteLevel pre-tokenizer, post-processor
 * and decoder. We read that, the pair form of merges (["a", "b"]), and the pre-tokenizer
 * spelling of newer models: Sequence [Split(Regex, Isolated), ByteLevel(use_regex: false)].
 * A model with byte_fallback true is SentencePiece-style and goes to spm_json.c.
 * The file is untrusted: every field is type-checked and every id range-checked, and anything
 * we would not encode the way HF does is refused with a message rather than half-supported. */
#include "tokenizer/internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ------------------------------------------------------------------------------- */

static int expect(const json_t *v, json_type want, const char *where, dl_error *err) {
    static const char *const names[] = {"an object", "an array", "a string", "an integer", "a number", "true",
                                        "false", "null"};
    if (!v) return dl_fail(err, "%s: missing", where);
    if (json_typeof(v) == want) return 0;
    if (want == JSON_TRUE && json_is_boolean(v)) return 0;
    return dl_fail(err, "%s: expected %s, got %s", where, want == JSON_TRUE ? "a boolean" : names[want], dl_json_type_name(v));
}

/* An optional boolean field: absent or null -> def. */
static int opt_bool(const json_t *obj, const char *key, int def, int *out, const char *where, dl_error *err) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return dl_fail(err, "%s.%s: expected a boolean, got %s", where, key, dl_json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int expect_type(const json_t *obj, const char *type, const char *where, dl_error *err) {
    if (expect(obj, JSON_OBJECT, where, err)) return -1;
    const json_t *ty = json_object_get(obj, "type");
    char w[128];
    snprintf(w, sizeof w, "%s.type", where);
    if (expect(ty, JSON_STRING, w, err)) return -1;
    if (strcmp(json_string_value(ty), type) != 0)
        return dl_fail(err, "%s: type '%s' is not supported (only %s)", where, json_string_value(ty), type);
    return 0;
}

static int parse_bytelevel(const json_t *v, const char *where, int *use_regex, dl_error *err) {
    if (expect_type(v, "ByteLevel", where, err)) return -1;
    char w[128];
    snprintf(w, sizeof w, "%s.add_prefix_space", where);
    const json_t *aps = json_object_get(v, "add_prefix_space");
    if (expect(aps, JSON_TRUE, w, err)) return -1;
    if (json_is_true(aps))
        return dl_fail(err, "%s: add_prefix_space true is not supported (it would not round-trip text)", where);
    int trim;
    if (opt_bool(v, "trim_offsets", 1, &trim, where, err)) return -1;
    return opt_bool(v, "use_regex", 1, use_regex, where, err);
}

static int parse_split(const json_t *v, const char **pattern, dl_error *err) {
    const char *where = "pre_tokenizer.pretokenizers[0]";
    if (expect_type(v, "Split", where, err)) return -1;
    const json_t *pat = json_object_get(v, "pattern");
    if (expect(pat, JSON_OBJECT, "pre_tokenizer.pretokenizers[0].pattern", err)) return -1;
    const json_t *re = json_object_get(pat, "Regex");
    if (!re) return dl_fail(err, "%s.pattern: only {\"Regex\": ...} patterns are supported", where);
    if (expect(re, JSON_STRING, "pre_tokenizer.pretokenizers[0].pattern.Regex", err)) return -1;
    const json_t *beh = json_object_get(v, "behavior");
    if (expect(beh, JSON_STRING, "pre_tokenizer.pretokenizers[0].behavior", err)) return -1;
    if (strcmp(json_string_value(beh), "Isolated") != 0)
        return dl_fail(err, "%s.behavior: '%s' is not supported (only Isolated)", where, json_string_value(beh));
    int invert;
    if (opt_bool(v, "invert", 0, &invert, where, err)) return -1;
    if (invert) return dl_fail(err, "%s.invert: true is not supported", where);
    *pattern = json_string_value(re);
    return 0;
}

static int parse_pretok(dl_tokenizer *t, const json_t *v, dl_error *err) {
    if (expect(v, JSON_OBJECT, "pre_tokenizer", err)) return -1;
    const json_t *ty = json_object_get(v, "type");
    if (expect(ty, JSON_STRING, "pre_tokenizer.type", err)) return -1;
    int use_regex;
    if (strcmp(json_string_value(ty), "ByteLevel") == 0) {
        if (parse_bytelevel(v, "pre_tokenizer", &use_regex, err)) return -1;
        return use_regex ? tok_set_pattern(t, PRETOK_BYTELEVEL, TOK_GPT2_PATTERN, err)
                         : tok_set_pattern(t, PRETOK_NONE, NULL, err);
    }
    if (strcmp(json_string_value(ty), "Sequence") != 0)
        return dl_fail(err, "pre_tokenizer: type '%s' is not supported (ByteLevel, or Sequence of Split and ByteLevel)",
                       json_string_value(ty));
    const json_t *seq = json_object_get(v, "pretokenizers");
    if (expect(seq, JSON_ARRAY, "pre_tokenizer.pretokenizers", err)) return -1;
    if (json_array_size(seq) == 1) {
        if (parse_bytelevel(json_array_get(seq, 0), "pre_tokenizer.pretokenizers[0]", &use_regex, err)) return -1;
        return use_regex ? tok_set_pattern(t, PRETOK_BYTELEVEL, TOK_GPT2_PATTERN, err)
                         : tok_set_pattern(t, PRETOK_NONE, NULL, err);
    }
    if (json_array_size(seq) != 2)
        return dl_fail(err, "pre_tokenizer: a Sequence of %zu pre-tokenizers is not supported (only [Split, ByteLevel])",
                       json_array_size(seq));
    const char *pattern = NULL;
    if (parse_split(json_array_get(seq, 0), &pattern, err)) return -1;
    if (parse_bytelevel(json_array_get(seq, 1), "pre_tokenizer.pretokenizers[1]", &use_regex, err)) return -1;
    if (use_regex)
        return dl_fail(err, "pre_tokenizer.pretokenizers[1]: a ByteLevel with use_regex true after a Split is not supported");
    return tok_set_pattern(t, PRETOK_SPLIT, pattern, err);
}

/* Null, absent, or {"type": "ByteLevel", ...}. */
static int parse_optional_bytelevel(const json_t *v, const char *where, dl_error *err) {
    if (!v || json_is_null(v)) return 0;
    return expect_type(v, "ByteLevel", where, err);
}

static int parse_added(dl_tokenizer *t, const json_t *arr, dl_error *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (expect(arr, JSON_ARRAY, "added_tokens", err)) return -1;
    size_t n = json_array_size(arr);
    if (n > TOK_MAX_ADDED) return dl_fail(err, "added_tokens: %zu entries (at most %d)", n, TOK_MAX_ADDED);
    t->added = calloc(n + 1, sizeof *t->added);
    if (!t->added) return dl_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        char w[64];
        snprintf(w, sizeof w, "added_tokens[%zu]", i);
        if (expect(o, JSON_OBJECT, w, err)) return -1;
        const json_t *id = json_object_get(o, "id"), *content = json_object_get(o, "content");
        snprintf(w, sizeof w, "added_tokens[%zu].id", i);
        if (expect(id, JSON_INTEGER, w, err)) return -1;
        snprintf(w, sizeof w, "added_tokens[%zu].content", i);
        if (expect(content, JSON_STRING, w, err)) return -1;
        json_int_t idv = json_integer_value(id);
        if (idv < 0 || idv >= TOK_MAX_VOCAB)
            return dl_fail(err, "added_tokens[%zu].id: %lld is out of range", i, (long long)idv);
        size_t len = json_string_length(content);
        if (len == 0 || len > TOK_MAX_TOKEN_BYTES)
            return dl_fail(err, "added_tokens[%zu].content: length %zu out of range", i, len);
        snprintf(w, sizeof w, "added_tokens[%zu]", i);
        int special, normalized, flag;
        if (opt_bool(o, "special", 0, &special, w, err) || opt_bool(o, "normalized", 0, &normalized, w, err))
            return -1;
        static const char *const unsupported[] = {"single_word", "lstrip", "rstrip"};
        for (int k = 0; k < 3; k++) {
            if (opt_bool(o, unsupported[k], 0, &flag, w, err)) return -1;
            if (flag) return dl_fail(err, "%s (%s): %s true is not supported", w, json_string_value(content), unsupported[k]);
        }
        for (int k = 0; k < t->n_added; k++) {
            if (t->added[k].id == (int32_t)idv)
                return dl_fail(err, "added_tokens: id %lld is used twice", (long long)idv);
            if (t->added[k].len == len && memcmp(t->added[k].content, json_string_value(content), len) == 0)
                return dl_fail(err, "added_tokens: '%s' is listed twice", json_string_value(content));
        }
        tok_added *a = &t->added[t->n_added];
        if (!(a->content = strdup(json_string_value(content)))) return dl_fail(err, "out of memory");
        t->n_added++;
        a->id = (int32_t)idv;
        a->len = len;
        a->special = special;
        a->normalized = normalized;
    }
    return 0;
}

static int find_added_by_id(const dl_tokenizer *t, json_int_t id) {
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k].id == id) return k;
    return -1;
}

static int parse_model(dl_tokenizer *t, const json_t *model, dl_error *err) {
    if (expect(model, JSON_OBJECT, "model", err)) return -1;
    const json_t *ty = json_object_get(model, "type");
    if (ty) {
        if (expect(ty, JSON_STRING, "model.type", err)) return -1;
        if (strcmp(json_string_value(ty), "BPE") != 0)
            return dl_fail(err, "model.type: '%s' is not supported (only BPE)", json_string_value(ty));
    }
    const json_t *v = json_object_get(model, "dropout");
    if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
        return dl_fail(err, "model.dropout: only null is supported");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        v = json_object_get(model, affixes[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return dl_fail(err, "model.%s: only null or \"\" is supported", affixes[k]);
    }
    v = json_object_get(model, "unk_token");
    if (v && !json_is_null(v) && !json_is_string(v))
        return dl_fail(err, "model.unk_token: expected a string or null, got %s", dl_json_type_name(v));
    int flag;
    if (opt_bool(model, "byte_fallback", 0, &flag, "model", err)) return -1;
    if (opt_bool(model, "fuse_unk", 0, &flag, "model", err)) return -1;
    if (opt_bool(model, "ignore_merges", 0, &t->ignore_merges, "model", err)) return -1;

    const json_t *vocab = json_object_get(model, "vocab");
    if (expect(vocab, JSON_OBJECT, "model.vocab", err)) return -1;
    const json_t *merges = json_object_get(model, "merges");
    if (expect(merges, JSON_ARRAY, "model.merges", err)) return -1;
    size_t nv = json_object_size(vocab), nm = json_array_size(merges);
    if (nv > TOK_MAX_VOCAB) return dl_fail(err, "model.vocab: %zu entries (at most %d)", nv, TOK_MAX_VOCAB);
    if (nm > TOK_MAX_VOCAB) return dl_fail(err, "model.merges: %zu entries (at most %d)", nm, TOK_MAX_VOCAB);

    /* ids: unique. Gaps are allowed (cl100k leaves ids unused between its special tokens; an
     * unused id decodes as an error), but only a few: ids stay below twice the number of
     * tokens plus 1024, so a small file cannot make us allocate tables for a huge id range. */
    size_t cap = 2 * (nv + (size_t)t->n_added) + 1024;
    if (cap > TOK_MAX_VOCAB) cap = TOK_MAX_VOCAB;
    const char **key_of = calloc(cap + 1, sizeof *key_of);
    if (!key_of) return dl_fail(err, "out of memory");
    int rc = -1;
    size_t n = 0; /* largest id + 1 */
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val)) {
            dl_fail(err, "model.vocab['%.100s']: expected an integer id, got %s", key, dl_json_type_name(val));
            goto done;
        }
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= cap) {
            dl_fail(err, "model.vocab['%.100s']: id %lld is out of range (0..%zu for %zu tokens)", key, (long long)id,
                    cap - 1, nv + (size_t)t->n_added);
            goto done;
        }
        if (key_of[id]) {
            dl_fail(err, "model.vocab: id %lld is used by both '%.100s' and '%.100s'", (long long)id, key_of[id], key);
            goto done;
        }
        key_of[id] = key;
        if ((size_t)id >= n) n = (size_t)id + 1;
    }
    for (int k = 0; k < t->n_added; k++) {
        tok_added *a = &t->added[k];
        const json_t *vid = json_object_get(vocab, a->content);
        if (vid && json_integer_value(vid) != a->id) {
            dl_fail(err, "added token '%.100s' has id %d but model.vocab gives it %lld", a->content, (int)a->id,
                    (long long)json_integer_value(vid));
            goto done;
        }
        if ((size_t)a->id >= cap) {
            dl_fail(err, "added token '%.100s': id %d is out of range (0..%zu for %zu tokens)", a->content, (int)a->id,
                    cap - 1, nv + (size_t)t->n_added);
            goto done;
        }
        if (key_of[a->id] && !vid) {
            dl_fail(err, "id %d is used by both model.vocab '%.100s' and added token '%.100s'", (int)a->id,
                    key_of[a->id], a->content);
            goto done;
        }
        a->in_vocab = vid != NULL;
        if ((size_t)a->id >= n) n = (size_t)a->id + 1;
    }
    for (int k = 0; k < t->n_added; k++) key_of[t->added[k].id] = t->added[k].content;
    if (tok_alloc_ids(t, (int32_t)n, err)) goto done;
    if (tok_strmap_init(&t->bytes_map, n)) {
        dl_fail(err, "out of memory");
        goto done;
    }

    /* tokens: byte-level spelling -> raw bytes; added tokens keep their text */
    dl_buf raw = {0};
    for (size_t id = 0; id < n; id++) {
        if (!key_of[id]) continue; /* an unused id stays a hole */
        int k = find_added_by_id(t, (json_int_t)id);
        raw.len = 0;
        int bl = tok_bl_to_bytes(key_of[id], strlen(key_of[id]), &raw) == 0;
        if (k < 0 && !bl) {
            dl_fail(err, "model.vocab: token '%.100s' (id %zu) is not in the byte-level alphabet", key_of[id], id);
            goto done_raw;
        }
        if (k >= 0) {
            if (tok_set_token(t, (int32_t)id, t->added[k].content, t->added[k].len, TOK_ADDED, err)) goto done_raw;
            if (t->added[k].in_vocab && bl && raw.len) { /* so that merges and byte lookups can reach it */
                int added;
                tok_strent *e = tok_strmap_put(&t->bytes_map, raw.data, raw.len, tok_hash_bytes(raw.data, raw.len), &added);
                if (!e) {
                    dl_fail(err, "out of memory");
                    goto done_raw;
                }
                e->val = id;
            }
        } else if (tok_set_token(t, (int32_t)id, raw.data, raw.len, TOK_REGULAR, err)) {
            goto done_raw;
        }
        if (raw.len == 0 && k < 0) {
            dl_fail(err, "model.vocab: the empty string is not a token");
            goto done_raw;
        }
    }

    /* merges: "a b" or ["a", "b"]; both parts and their concatenation must be tokens */
    t->merges = malloc((nm + 1) * sizeof *t->merges);
    if (!t->merges) {
        dl_fail(err, "out of memory");
        goto done_raw;
    }
    dl_buf cat = {0};
    for (size_t i = 0; i < nm; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) {
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ') || sp == s || !sp[1]) {
                dl_fail(err, "model.merges[%zu]: '%.100s' is not two tokens separated by one space", i, s);
                goto done_cat;
            }
            a = s;
            la = (size_t)(sp - s);
            b = sp + 1;
            lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            la = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            lb = json_string_length(json_array_get(m, 1));
        } else {
            dl_fail(err, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"], got %s", i, dl_json_type_name(m));
            goto done_cat;
        }
        cat.len = 0;
        if (dl_buf_append(&cat, a, la) || dl_buf_append(&cat, "", 1) || dl_buf_append(&cat, b, lb) ||
            dl_buf_append(&cat, "", 1) || dl_buf_append(&cat, a, la) || dl_buf_append(&cat, b, lb)) {
            dl_fail(err, "out of memory");
            goto done_cat;
        }
        const char *sa = cat.data, *sb = cat.data + la + 1, *sc = cat.data + la + lb + 2;
        const json_t *ia = json_object_get(vocab, sa), *ib = json_object_get(vocab, sb), *ic = json_object_get(vocab, sc);
        if (!ia || !ib) {
            dl_fail(err, "model.merges[%zu]: unknown token '%.100s'", i, ia ? sb : sa);
            goto done_cat;
        }
        if (!ic) {
            dl_fail(err, "model.merges[%zu]: '%.100s' + '%.100s' = '%.200s' is not in model.vocab", i, sa, sb, sc);
            goto done_cat;
        }
        t->merges[i] = (tok_merge){(int32_t)json_integer_value(ia), (int32_t)json_integer_value(ib),
                                   (int32_t)json_integer_value(ic)};
    }
    t->n_merges = (int32_t)nm;
    rc = 0;
done_cat:
    dl_buf_free(&cat);
done_raw:
    dl_buf_free(&raw);
done:
    free(key_of);
    return rc;
}

static dl_tokenizer *parse_root(const json_t *root, dl_error *err) {
    if (expect(root, JSON_OBJECT, "top level", err)) return NULL;
    if (json_is_true(json_object_get(json_object_get(root, "model"), "byte_fallback")))
        return tok_spm_from_json(root, err); /* SentencePiece-style (spm_json.c) */
    const json_t *v = json_object_get(root, "version");
    if (v && !(json_is_string(v) && strcmp(json_string_value(v), "1.0") == 0)) {
        dl_fail(err, "version: expected \"1.0\"");
        return NULL;
    }
    v = json_object_get(root, "normalizer");
    const json_t *nty = json_is_object(v) ? json_object_get(v, "type") : NULL;
    if (json_is_string(nty) && strcmp(json_string_value(nty), "NFC") == 0) { /* Qwen2's */
        dl_log("tokenizer.json: normalizer NFC is not applied; input text is taken to be in NFC already");
    } else if (v && !json_is_null(v)) {
        dl_fail(err, "normalizer: only null and NFC are supported (got %s)",
                json_is_string(nty) ? json_string_value(nty) : dl_json_type_name(v));
        return NULL;
    }
    if (parse_optional_bytelevel(json_object_get(root, "post_processor"), "post_processor", err)) return NULL;
    if (expect_type(json_object_get(root, "decoder"), "ByteLevel", "decoder", err)) return NULL;
    const json_t *model = json_object_get(root, "model");
    if (expect(model, JSON_OBJECT, "model", err)) return NULL;
    dl_tokenizer *t = tok_alloc(err);
    if (!t) return NULL;
    if (parse_pretok(t, json_object_get(root, "pre_tokenizer"), err) || parse_added(t, json_object_get(root, "added_tokens"), err) ||
        parse_model(t, model, err) || tok_finish(t, err)) {
        dl_tok_free(t);
        return NULL;
    }
    return t;
}

dl_tokenizer *dl_tok_load(const char *path, dl_error *err) {
    json_t *root = dl_json_load(path, err);
    if (!root) return NULL;
    dl_tokenizer *t = parse_root(root, err);
    json_decref(root);
    if (!t) dl_fail_ctx(err, "%s", path);
    return t;
}

/* ---- writing ------------------------------------------------------------------------------- */

static json_t *bytelevel_obj(int add_prefix_space, int trim_offsets, int use_regex) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", add_prefix_space,
                     "trim_offsets", trim_offsets, "use_regex", use_regex);
}

static json_t *pretok_obj(const dl_tokenizer *t) {
    if (t->pretok == PRETOK_BYTELEVEL) return bytelevel_obj(0, 1, 1);
    if (t->pretok == PRETOK_NONE) return bytelevel_obj(0, 1, 0);
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type", "Split",
                     "pattern", "Regex", t->pattern, "behavior", "Isolated", "invert", 0, bytelevel_obj(0, 1, 0));
}

/* The vocab key of id: byte-level spelling of its bytes, or an added token's text. */
static int vocab_key(const dl_tokenizer *t, int32_t id, dl_buf *out) {
    out->len = 0;
    if (t->kind[id] == TOK_ADDED) return dl_buf_append(out, t->arena.data + t->off[id], t->len[id]);
    if (tok_bytes_to_bl(t->arena.data + t->off[id], t->len[id], out)) return -1;
    return dl_buf_append(out, "", 0); /* NUL-terminates an empty buffer too */
}

static json_t *to_json(const dl_tokenizer *t) {
    int bad = 0;
    json_t *added = json_array();
    for (int k = 0; k < t->n_added; k++) {
        const tok_added *a = &t->added[k];
        bad |= json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (int)a->id,
                                                      "content", a->content, "single_word", 0, "lstrip", 0, "rstrip", 0,
                                                      "normalized", a->normalized, "special", a->special));
    }
    json_t *vocab = json_object(), *merges = json_array();
    dl_buf key = {0}, kb = {0};
    for (int32_t id = 0; id < t->n_vocab && !bad; id++) {
        if (t->kind[id] == TOK_HOLE) continue;
        if (t->kind[id] == TOK_ADDED) {
            int k = find_added_by_id(t, id);
            if (k >= 0 && !t->added[k].in_vocab) continue;
        }
        bad |= vocab_key(t, id, &key) || json_object_set_new(vocab, key.data, json_integer(id));
    }
    int pair_form = 0; /* the legacy "a b" form cannot hold a token with a space in it */
    for (int32_t r = 0; r < t->n_merges && !bad; r++) {
        bad |= vocab_key(t, t->merges[r].a, &key) || vocab_key(t, t->merges[r].b, &kb);
        pair_form |= !bad && (strchr(key.data, ' ') || strchr(kb.data, ' '));
    }
    for (int32_t r = 0; r < t->n_merges && !bad; r++) {
        bad |= vocab_key(t, t->merges[r].a, &key) || vocab_key(t, t->merges[r].b, &kb);
        if (bad) break;
        if (pair_form) {
            bad |= json_array_append_new(merges, json_pack("[s, s]", key.data, kb.data));
        } else {
            bad |= dl_buf_append(&key, " ", 1) || dl_buf_append(&key, kb.data, kb.len) ||
                   json_array_append_new(merges, json_string(key.data));
        }
    }
    dl_buf_free(&key);
    dl_buf_free(&kb);
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", t->ignore_merges, "vocab", vocab, "merges", merges);
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:o, s:o}", "version", "1.0", "truncation",
                             "padding", "added_tokens", added, "normalizer", "pre_tokenizer", pretok_obj(t),
                             "post_processor", bytelevel_obj(1, 0, 1), "decoder", bytelevel_obj(1, 1, 1), "model", model);
    if (bad || !root) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *dl_tok_to_json(const dl_tokenizer *t, dl_error *err) {
    if (t->spm) return tok_spm_to_json(t, err);
    json_t *root = to_json(t);
    if (!root) dl_fail(err, "cannot build the tokenizer JSON (out of memory?)");
    return root;
}

int dl_tok_save(const dl_tokenizer *t, const char *path, dl_error *err) {
    json_t *root = dl_tok_to_json(t, err);
    if (!root) return dl_fail_ctx(err, "%s", path);
    int rc = dl_json_save(root, path, err);
    json_decref(root);
    return rc;
}
