/* GGUF tokenizer.ggml.* keys -> a Hugging Face tokenizer.json for a byte-level BPE ("gpt2"; a
 * SentencePiece-style "llama" vocabulary goes to gguf_spm.c).
 * Every string comes from an untrusted file: NULs, invalid UTF-8, duplicate spellings and
 * unknown token types are refused with the index of the offending entry. */
#include "convert/internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *bytelevel(int add_prefix_space, int trim_offsets, int use_regex) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", add_prefix_space,
                     "trim_offsets", trim_offsets, "use_regex", use_regex);
}

/* llama.cpp's pre-tokenizer names that our regex pre-tokenizer can reproduce. */
static int pretokenizer(const dl_gguf_file *f, json_t **pt, int *ignore_merges, dl_error *err) {
    const char *s = "default";
    size_t n = 7;
    if (dl_gguf_find(f, "tokenizer.ggml.pre") && dl_gguf_get_str(f, "tokenizer.ggml.pre", &s, &n, err)) return -1;
    *ignore_merges = 0;
#define IS(name) (n == strlen(name) && memcmp(s, name, n) == 0)
    if (IS("gpt-2") || IS("default")) {
        *pt = bytelevel(0, 1, 1);
    } else if (IS("llama-bpe") || IS("llama3") || IS("llama-v3")) {
        *ignore_merges = 1; /* as llama.cpp does for this pre-tokenizer */
        *pt = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type", "Split",
                        "pattern", "Regex", CONV_LLAMA3_REGEX, "behavior", "Isolated", "invert", 0, bytelevel(0, 1, 0));
    } else if (IS("qwen2")) {
        *pt = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type", "Split",
                        "pattern", "Regex", CONV_QWEN2_REGEX, "behavior", "Isolated", "invert", 0, bytelevel(0, 0, 0));
    } else {
        return dl_fail(err, "tokenizer.ggml.pre '%.*s' is not supported (gpt-2, default, llama-bpe, qwen2)",
                       (int)(n > 64 ? 64 : n), s);
    }
#undef IS
    return *pt ? 0 : dl_fail(err, "out of memory");
}

static int type_of(const dl_gguf_kv *types, uint64_t i, int64_t *out) {
    if (!types) {
        *out = TOKTYPE_NORMAL;
        return 0;
    }
    return dl_gguf_arr_int(types, i, out);
}

/* 1 if token id is an unused "[PAD<id>]": what export writes for a padded model row or an
 * unused id inside the vocabulary (cl100k has some between its special tokens). */
static int is_pad(const dl_gguf_kv *tokens, const dl_gguf_kv *types, uint64_t id) {
    char want[64];
    int64_t ty;
    const char *s;
    size_t len;
    if (type_of(types, id, &ty) || ty != TOKTYPE_UNUSED) return 0;
    dl_gguf_arr_str(tokens, id, &s, &len);
    snprintf(want, sizeof want, "[PAD%llu]", (unsigned long long)id);
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* The pads at the end fill the vocabulary up to the model's size; the tokenizer never makes
 * them, so they are left out of tokenizer.json (as before export). */
uint64_t conv_strip_pads(const dl_gguf_kv *tokens, const dl_gguf_kv *types, uint64_t n) {
    while (n > 0 && is_pad(tokens, types, n - 1)) n--;
    return n;
}

/* A NUL-terminated copy of array element i, refusing NUL bytes inside. */
static int element(const dl_gguf_kv *kv, uint64_t i, dl_buf *out, const char *what, dl_error *err) {
    const char *s;
    size_t len;
    dl_gguf_arr_str(kv, i, &s, &len);
    if (memchr(s, 0, len)) return dl_fail(err, "%s %llu holds a NUL byte", what, (unsigned long long)i);
    out->len = 0;
    if (dl_buf_append(out, s, len) || dl_buf_append(out, "", 0)) return dl_fail(err, "out of memory");
    return 0;
}

static int add_token(json_t *vocab, json_t *added, const char *key, uint64_t id, int64_t type, dl_error *err) {
    const json_t *prev = json_object_get(vocab, key);
    if (prev)
        return dl_fail(err, "tokens %lld and %llu are both spelt '%.100s'", (long long)json_integer_value(prev),
                       (unsigned long long)id, key);
    if (json_object_set_new(vocab, key, json_integer((json_int_t)id)))
        return dl_fail(err, "token %llu is not valid UTF-8", (unsigned long long)id);
    if (type == TOKTYPE_NORMAL || type == TOKTYPE_UNKNOWN || type == TOKTYPE_UNUSED) return 0;
    if (type == TOKTYPE_BYTE)
        return dl_fail(err, "token %llu has type BYTE, which a gpt2 vocabulary does not use", (unsigned long long)id);
    if (type != TOKTYPE_CONTROL && type != TOKTYPE_USER_DEFINED)
        return dl_fail(err, "token %llu has unknown type %lld", (unsigned long long)id, (long long)type);
    json_t *a = json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)id, "content", key, "single_word", 0,
                          "lstrip", 0, "rstrip", 0, "normalized", 0, "special", type == TOKTYPE_CONTROL);
    if (!a || json_array_append_new(added, a)) return dl_fail(err, "out of memory");
    return 0;
}

static int fill_vocab(const dl_gguf_kv *tokens, const dl_gguf_kv *types, uint64_t n, json_t *vocab, json_t *added,
                      dl_error *err) {
    dl_buf key = {0};
    int rc = 0;
    for (uint64_t id = 0; id < n && rc == 0; id++) {
        int64_t type;
        if (is_pad(tokens, types, id)) continue; /* an unused id: a hole in tokenizer.json too */
        if (type_of(types, id, &type)) rc = dl_fail(err, "token %llu: type out of range", (unsigned long long)id);
        if (rc == 0) rc = element(tokens, id, &key, "token", err);
        if (rc == 0) rc = add_token(vocab, added, key.data, id, type, err);
    }
    dl_buf_free(&key);
    return rc;
}

static int fill_merges(const dl_gguf_kv *merges, json_t *out, dl_error *err) {
    dl_buf m = {0};
    int rc = 0;
    for (uint64_t i = 0; i < merges->n && rc == 0; i++) {
        rc = element(merges, i, &m, "merge", err);
        json_t *s = rc == 0 ? json_string(m.data) : NULL;
        if (rc == 0 && !s) rc = dl_fail(err, "merge %llu is not valid UTF-8", (unsigned long long)i);
        if (rc == 0 && json_array_append_new(out, s)) rc = dl_fail(err, "out of memory");
    }
    dl_buf_free(&m);
    return rc;
}

static json_t *root_json(json_t *added, json_t *pt, json_t *vocab, json_t *merges, int ignore_merges) {
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", ignore_merges, "vocab", vocab, "merges", merges);
    return json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:o, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added, "normalizer", "pre_tokenizer", pt, "post_processor", bytelevel(1, 0, 1),
                     "decoder", bytelevel(1, 1, 1), "model", model);
}

/* *kind: 0 no vocabulary, 1 "gpt2", 2 "llama" (SentencePiece-style, gguf_spm.c). */
static int check_model(const dl_gguf_file *f, int *kind, dl_error *err) {
    *kind = 0;
    if (!dl_gguf_find(f, "tokenizer.ggml.model")) return 0;
    const char *s;
    size_t n;
    if (dl_gguf_get_str(f, "tokenizer.ggml.model", &s, &n, err)) return -1;
    if (n == 4 && memcmp(s, "gpt2", 4) == 0) *kind = 1;
    else if (n == 5 && memcmp(s, "llama", 5) == 0) *kind = 2;
    else return dl_fail(err, "tokenizer.ggml.model '%.*s' is not supported; only 'gpt2' (byte-level BPE) and "
                             "'llama' (SentencePiece-style)", (int)(n > 64 ? 64 : n), s);
    return 0;
}

static int vocab_arrays(const dl_gguf_file *f, int V, const dl_gguf_kv **tokens, const dl_gguf_kv **types,
                        const dl_gguf_kv **merges, dl_error *err) {
    *types = NULL;
    if (dl_gguf_get_arr(f, "tokenizer.ggml.tokens", DL_GGUF_STRING, tokens, err) ||
        dl_gguf_get_arr(f, "tokenizer.ggml.merges", DL_GGUF_STRING, merges, err))
        return -1;
    const char *tt = "tokenizer.ggml.token_type";
    if (dl_gguf_find(f, tt) && dl_gguf_get_arr(f, tt, DL_GGUF_I64, types, err)) return -1;
    if ((*tokens)->n == 0 || (*tokens)->n > (uint64_t)V)
        return dl_fail(err, "tokenizer.ggml.tokens has %llu tokens, the model's vocabulary is %d",
                       (unsigned long long)(*tokens)->n, V);
    if (*types && (*types)->n != (*tokens)->n)
        return dl_fail(err, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                       (unsigned long long)(*types)->n, (unsigned long long)(*tokens)->n);
    return 0;
}

int conv_vocab_to_json(const dl_gguf_file *f, int V, json_t **out, dl_error *err) {
    *out = NULL;
    int kind;
    const dl_gguf_kv *tokens, *types, *merges;
    if (check_model(f, &kind, err)) return -1;
    if (kind == 0) return 0;
    if (kind == 2) return conv_spm_vocab_to_json(f, V, out, err);
    if (vocab_arrays(f, V, &tokens, &types, &merges, err)) return -1;
    json_t *pt = NULL;
    int ignore_merges;
    if (pretokenizer(f, &pt, &ignore_merges, err)) return -1;
    json_t *vocab = json_object(), *added = json_array(), *jm = json_array();
    int rc = vocab && added && jm ? 0 : dl_fail(err, "out of memory");
    if (rc == 0) rc = fill_vocab(tokens, types, conv_strip_pads(tokens, types, tokens->n), vocab, added, err);
    if (rc == 0) rc = fill_merges(merges, jm, err);
    if (rc) {
        json_decref(pt);
        json_decref(vocab);
        json_decref(added);
        json_decref(jm);
        return -1;
    }
    *out = root_json(added, pt, vocab, jm, ignore_merges);
    return *out ? 0 : dl_fail(err, "out of memory");
}
