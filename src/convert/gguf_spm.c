/* SentencePiece-style vocabularies in GGUF (tokenizer.ggml.model "llama"), both ways:
 *   tokenizer.ggml.tokens      pieces ("U+2581the", "<0x0A>", "<s>"), string array
 *   tokenizer.ggml.scores      f32 array, one per token
 *   tokenizer.ggml.token_type  int array (1 normal, 2 unknown, 3 control, 4 user-defined,
 *                              5 unused, 6 byte), one per token; inferred when absent
 *   tokenizer.ggml.{bos,eos,unknown}_token_id, add_bos_token (default true),
 *   add_space_prefix (SentencePiece's add_dummy_prefix, default true)
 * Export pads the vocabulary up to the model's rows with unused "[PAD<id>]" tokens (score 0),
 * as for the byte-level BPE, and import drops them again. */
#include "convert/internal.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- GGUF -> tokenizer.json ------------------------------------------------------------------ */

static int opt_bool(const dl_gguf_file *f, const char *key, int def, int *out, dl_error *err) {
    *out = def;
    return dl_gguf_find(f, key) ? dl_gguf_get_bool(f, key, out, err) : 0;
}

/* A token id key: absent -> -1; present -> an id below n. */
static int opt_id(const dl_gguf_file *f, const char *key, uint64_t n, int *out, dl_error *err) {
    int64_t v = -1;
    if (dl_gguf_find(f, key) && dl_gguf_get_int(f, key, &v, err)) return -1;
    if (v < -1 || v >= (int64_t)n)
        return dl_fail(err, "key '%s' = %lld is outside the vocabulary (%llu tokens)", key, (long long)v,
                       (unsigned long long)n);
    *out = (int)v;
    return 0;
}

static int read_options(const dl_gguf_file *f, uint64_t n, dl_spm_opts *o, dl_error *err) {
    if (opt_id(f, "tokenizer.ggml.unknown_token_id", n, &o->unk_id, err) ||
        opt_id(f, "tokenizer.ggml.bos_token_id", n, &o->bos_id, err) ||
        opt_id(f, "tokenizer.ggml.eos_token_id", n, &o->eos_id, err) ||
        opt_bool(f, "tokenizer.ggml.add_bos_token", 1, &o->add_bos, err) ||
        opt_bool(f, "tokenizer.ggml.add_space_prefix", 1, &o->add_prefix, err))
        return -1;
    return 0;
}

/* The arrays, each with one entry per token (after the trailing pads are dropped). */
typedef struct spm_arrays {
    const dl_gguf_kv *tokens, *scores, *types;
    uint64_t n;
} spm_arrays;

static int read_arrays(const dl_gguf_file *f, int V, spm_arrays *a, dl_error *err) {
    const char *tt = "tokenizer.ggml.token_type";
    a->types = NULL;
    if (dl_gguf_get_arr(f, "tokenizer.ggml.tokens", DL_GGUF_STRING, &a->tokens, err) ||
        dl_gguf_get_arr(f, "tokenizer.ggml.scores", DL_GGUF_F32, &a->scores, err) ||
        (dl_gguf_find(f, tt) && dl_gguf_get_arr(f, tt, DL_GGUF_I64, &a->types, err)))
        return -1;
    uint64_t n = a->tokens->n;
    if (n == 0 || n > (uint64_t)V)
        return dl_fail(err, "tokenizer.ggml.tokens has %llu tokens, the model's vocabulary is %d", (unsigned long long)n, V);
    if (a->scores->n != n)
        return dl_fail(err, "tokenizer.ggml.scores has %llu entries for %llu tokens", (unsigned long long)a->scores->n,
                       (unsigned long long)n);
    if (a->types && a->types->n != n)
        return dl_fail(err, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                       (unsigned long long)a->types->n, (unsigned long long)n);
    a->n = conv_strip_pads(a->tokens, a->types, n);
    if (a->n == 0) return dl_fail(err, "tokenizer.ggml.tokens holds nothing but padding");
    return 0;
}

/* Copies the arrays into the form dl_tok_spm_new takes. */
static dl_tokenizer *build(const spm_arrays *a, const dl_spm_opts *o, dl_error *err) {
    size_t n = (size_t)a->n;
    const char **pieces = malloc(n * sizeof *pieces);
    size_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    uint8_t *types = a->types ? malloc(n) : NULL;
    dl_tokenizer *t = NULL;
    int rc = pieces && lens && scores && (types || !a->types) ? 0 : dl_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        dl_gguf_arr_str(a->tokens, i, &pieces[i], &lens[i]);
        memcpy(&scores[i], a->scores->data + 4 * i, 4);
        int64_t ty;
        if (types && (dl_gguf_arr_int(a->types, i, &ty) || ty < DL_TOK_NORMAL || ty > DL_TOK_BYTE))
            rc = dl_fail(err, "token %zu has an unknown token type", i);
        else if (types)
            types[i] = (uint8_t)ty;
    }
    if (rc == 0) t = dl_tok_spm_new((int)n, pieces, lens, scores, types, o, err);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return t;
}

int conv_spm_vocab_to_json(const dl_gguf_file *f, int V, json_t **out, dl_error *err) {
    spm_arrays a;
    dl_spm_opts o;
    if (read_arrays(f, V, &a, err) || read_options(f, a.n, &o, err)) return -1;
    dl_tokenizer *t = build(&a, &o, err);
    if (!t) return dl_fail_ctx(err, "tokenizer.ggml (llama)");
    *out = dl_tok_to_json(t, err);
    dl_tok_free(t);
    return *out ? 0 : -1;
}

/* ---- tokenizer -> GGUF ----------------------------------------------------------------------- */

static int write_tokens(dl_gguf_writer *w, const dl_tokenizer *tok, int V, dl_error *err) {
    int n = dl_tok_vocab_size(tok);
    dl_buf s = {0};
    int rc = dl_gguf_begin_arr(w, "tokenizer.ggml.tokens", DL_GGUF_STRING, (uint64_t)V, err);
    for (int id = 0; id < V && rc == 0; id++) {
        s.len = 0;
        if (id < n) rc = dl_tok_spelling(tok, id, &s, err);
        else if (dl_buf_printf(&s, "[PAD%d]", id)) rc = dl_fail(err, "out of memory");
        if (rc == 0) rc = dl_gguf_push_str(w, s.data, s.len, err);
    }
    dl_buf_free(&s);
    return rc;
}

static int write_scores_types(dl_gguf_writer *w, const dl_tokenizer *tok, int V, dl_error *err) {
    int n = dl_tok_vocab_size(tok);
    if (dl_gguf_begin_arr(w, "tokenizer.ggml.scores", DL_GGUF_F32, (uint64_t)V, err)) return -1;
    for (int id = 0; id < V; id++)
        if (dl_gguf_push_f32(w, id < n ? dl_tok_score(tok, id) : 0.0f, err)) return -1;
    if (dl_gguf_begin_arr(w, "tokenizer.ggml.token_type", DL_GGUF_I32, (uint64_t)V, err)) return -1;
    for (int id = 0; id < V; id++)
        if (dl_gguf_push_i32(w, id < n ? dl_tok_type(tok, id) : DL_TOK_UNUSED, err)) return -1;
    return 0;
}

/* The config's bos/eos when it has them, else the tokenizer's. */
static int write_ids(dl_gguf_writer *w, const dl_spm_opts *o, const dl_config *cfg, dl_error *err) {
    int bos = cfg->bos_id >= 0 ? cfg->bos_id : o->bos_id, eos = cfg->eos_id >= 0 ? cfg->eos_id : o->eos_id;
    if (bos >= cfg->V || eos >= cfg->V)
        return dl_fail(err, "bos/eos token id (%d/%d) is outside the vocabulary (%d)", bos, eos, cfg->V);
    if (bos >= 0 && dl_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos, err)) return -1;
    if (eos >= 0 && dl_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos, err)) return -1;
    if (o->unk_id >= 0 && dl_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)o->unk_id, err)) return -1;
    return dl_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", o->add_bos, err) ||
                   dl_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", o->add_prefix, err)
               ? -1
               : 0;
}

int conv_write_spm_vocab(dl_gguf_writer *w, const dl_tokenizer *tok, const dl_config *cfg, dl_error *err) {
    dl_spm_opts o;
    dl_tok_is_spm(tok, &o);
    if (dl_tok_vocab_size(tok) > cfg->V)
        return dl_fail(err, "the tokenizer has %d tokens but the model's vocab_size is %d", dl_tok_vocab_size(tok), cfg->V);
    if (dl_gguf_add_str(w, "tokenizer.ggml.model", "llama", err) || write_tokens(w, tok, cfg->V, err) ||
        write_scores_types(w, tok, cfg->V, err) || write_ids(w, &o, cfg, err))
        return -1;
    return 0;
}
