/* The tokenizer as GGUF keys: model "gpt2", tokens in their tokenizer.json spelling (GPT-2's
 * byte-to-unicode form), token types, merges "a b" in rank order, special token ids. */
#include "convert/internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* What the tokenizer API does not tell, read from tokenizer.json itself (already validated by
 * dl_tok_load, so only what we use is looked at). */
typedef struct {
    const char *pre;  /* llama.cpp's name of the pre-tokenizer */
    uint8_t *user;    /* [n] 1 for an added token that is not special */
} vocab_meta;

static int bytelevel_uses_regex(const json_t *bl) {
    const json_t *v = json_object_get(bl, "use_regex");
    return !v || json_is_true(v); /* HF's default is true */
}

static int pre_name(const json_t *pt, const char **out, dl_error *err) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    const json_t *seq = json_object_get(pt, "pretokenizers");
    if (type && strcmp(type, "Sequence") == 0 && json_array_size(seq) == 1) {
        pt = json_array_get(seq, 0);
        type = json_string_value(json_object_get(pt, "type"));
    }
    if (type && strcmp(type, "ByteLevel") == 0) {
        if (!bytelevel_uses_regex(pt))
            return dl_fail(err, "a ByteLevel pre-tokenizer without its regex has no GGUF name");
        *out = "gpt-2";
        return 0;
    }
    const char *re = json_string_value(json_object_get(json_object_get(json_array_get(seq, 0), "pattern"), "Regex"));
    if (re && strcmp(re, CONV_GPT2_REGEX) == 0) *out = "gpt-2";
    else if (re && strcmp(re, CONV_LLAMA3_REGEX) == 0) *out = "llama-bpe";
    else if (re && strcmp(re, CONV_QWEN2_REGEX) == 0) *out = "qwen2";
    else return dl_fail(err, "the pre-tokenizer regex is not GPT-2's, Llama 3's or Qwen2's, so GGUF has no name for it");
    return 0;
}

static int read_meta(const char *path, int n, vocab_meta *vm, dl_error *err) {
    json_t *root = dl_json_load(path, err);
    if (!root) return -1;
    int rc = pre_name(json_object_get(root, "pre_tokenizer"), &vm->pre, err);
    /* llama.cpp ignores merges for 'llama-bpe' and for no other pre-tokenizer */
    int theirs = rc == 0 && strcmp(vm->pre, "llama-bpe") == 0;
    int ours = json_is_true(json_object_get(json_object_get(root, "model"), "ignore_merges"));
    if (rc == 0 && theirs != ours)
        dl_log("%s: llama.cpp tokenizes '%s' with ignore_merges %s, this tokenizer has it %s: "
               "a word that is itself a token may be split differently", path, vm->pre, theirs ? "on" : "off",
               ours ? "on" : "off");
    vm->user = calloc((size_t)n + 1, 1);
    if (rc == 0 && !vm->user) rc = dl_fail(err, "out of memory");
    const json_t *added = json_object_get(root, "added_tokens");
    for (size_t i = 0; rc == 0 && i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        json_int_t id = json_integer_value(json_object_get(a, "id"));
        if (!json_is_true(json_object_get(a, "special")) && id >= 0 && id < n) vm->user[id] = 1;
    }
    json_decref(root);
    if (rc) {
        free(vm->user);
        vm->user = NULL;
        dl_fail_ctx(err, "%s", path);
    }
    return rc;
}

static int write_tokens(dl_gguf_writer *w, const dl_tokenizer *tok, int V, dl_error *err) {
    int n = dl_tok_vocab_size(tok);
    if (dl_gguf_begin_arr(w, "tokenizer.ggml.tokens", DL_GGUF_STRING, (uint64_t)V, err)) return -1;
    dl_buf s = {0};
    int rc = 0;
    for (int id = 0; id < V && rc == 0; id++) {
        s.len = 0;
        /* ids past the tokenizer (a padded model) and unused ids inside it get a placeholder */
        if (id < n && dl_tok_token(tok, id, NULL)) rc = dl_tok_spelling(tok, id, &s, err);
        else if (dl_buf_printf(&s, "[PAD%d]", id)) rc = dl_fail(err, "out of memory");
        if (rc == 0) rc = dl_gguf_push_str(w, s.data, s.len, err);
    }
    dl_buf_free(&s);
    return rc;
}

static int write_types(dl_gguf_writer *w, const dl_tokenizer *tok, const vocab_meta *vm, int V, dl_error *err) {
    int n = dl_tok_vocab_size(tok);
    if (dl_gguf_begin_arr(w, "tokenizer.ggml.token_type", DL_GGUF_I32, (uint64_t)V, err)) return -1;
    for (int id = 0; id < V; id++) {
        int type = id >= n || !dl_tok_token(tok, id, NULL) ? TOKTYPE_UNUSED
                   : dl_tok_is_special(tok, id) ? TOKTYPE_CONTROL
                   : vm->user[id] ? TOKTYPE_USER_DEFINED : TOKTYPE_NORMAL;
        if (dl_gguf_push_i32(w, type, err)) return -1;
    }
    return 0;
}

/* "left right" in rank order; a space inside either part would make the pair ambiguous. */
static int write_merges(dl_gguf_writer *w, const dl_tokenizer *tok, dl_error *err) {
    int nm = dl_tok_n_merges(tok);
    if (dl_gguf_begin_arr(w, "tokenizer.ggml.merges", DL_GGUF_STRING, (uint64_t)nm, err)) return -1;
    dl_buf s = {0};
    int rc = 0;
    for (int r = 0; r < nm && rc == 0; r++) {
        int a, b;
        s.len = 0;
        if (dl_tok_merge(tok, r, &a, &b) < 0) {
            rc = dl_fail(err, "merge %d cannot be read", r);
            break;
        }
        rc = dl_tok_spelling(tok, a, &s, err);
        size_t la = s.len;
        if (rc == 0 && dl_buf_append(&s, " ", 1)) rc = dl_fail(err, "out of memory");
        if (rc == 0) rc = dl_tok_spelling(tok, b, &s, err);
        if (rc == 0 && (memchr(s.data, ' ', la) || memchr(s.data + la + 1, ' ', s.len - la - 1)))
            rc = dl_fail(err, "merge %d ('%s') has a token with a space, which GGUF's \"a b\" form cannot hold", r,
                         s.data);
        if (rc == 0) rc = dl_gguf_push_str(w, s.data, s.len, err);
    }
    dl_buf_free(&s);
    return rc;
}

/* The config's ids, else <|endoftext|> (what our models start from and stop at). */
static int write_special_ids(dl_gguf_writer *w, const dl_tokenizer *tok, const dl_config *cfg, dl_error *err) {
    int eot = dl_tok_eot_id(tok);
    int bos = cfg->bos_id >= 0 ? cfg->bos_id : eot, eos = cfg->eos_id >= 0 ? cfg->eos_id : eot;
    if (bos >= cfg->V || eos >= cfg->V)
        return dl_fail(err, "bos/eos token id (%d/%d) is outside the vocabulary (%d)", bos, eos, cfg->V);
    if (bos >= 0 && dl_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos, err)) return -1;
    if (eos >= 0 && dl_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos, err)) return -1;
    /* llama.cpp would otherwise prepend a BOS for some pre-tokenizers; our models never saw one */
    return dl_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 0, err);
}

int conv_write_vocab(dl_gguf_writer *w, const dl_tokenizer *tok, const char *tokenizer_json, const dl_config *cfg,
                     dl_error *err) {
    if (dl_tok_is_spm(tok, NULL)) return conv_write_spm_vocab(w, tok, cfg, err);
    int n = dl_tok_vocab_size(tok);
    if (n > cfg->V)
        return dl_fail(err, "the tokenizer has %d tokens but the model's vocab_size is %d", n, cfg->V);
    vocab_meta vm = {0};
    if (read_meta(tokenizer_json, n, &vm, err)) return -1;
    int rc = dl_gguf_add_str(w, "tokenizer.ggml.model", "gpt2", err) ||
             dl_gguf_add_str(w, "tokenizer.ggml.pre", vm.pre, err) || write_tokens(w, tok, cfg->V, err) ||
             write_types(w, tok, &vm, cfg->V, err) || write_merges(w, tok, err) || write_special_ids(w, tok, cfg, err);
    free(vm.user);
    return rc ? -1 : 0;
}
