/* corpus -> DIR/train.bin, DIR/val.bin, DIR/tokenizer.json */
#include "data.h"
#include "tokwriter.h"
#include <string.h>
#include <unistd.h>

enum { CHUNK_BYTES = 1 << 20, PROGRESS_MIN_BYTES = 4 << 20 };

/* The split point: the first line start at or after (1 - f) of the text, or failing that the
 * last line start before it. Returns 0 or len when the text has no usable line boundary. */
static size_t split_point(const char *text, size_t len, double val_fraction) {
    size_t want = (size_t)((double)len * (1.0 - val_fraction));
    if (want >= len) want = len - 1;
    for (size_t i = want; i < len; i++)
        if (text[i] == '\n' && i + 1 < len) return i + 1;
    for (size_t i = want; i-- > 0;)
        if (text[i] == '\n') return i + 1;
    return 0;
}

/* End of the chunk starting at `from`: about CHUNK_BYTES, cut after a newline so that no word or
 * special-token string is split (a run of blank lines at a cut may pre-tokenize differently from
 * one piece: at most once per MiB, and harmless). */
static size_t chunk_end(const char *text, size_t from, size_t end) {
    if (end - from <= CHUNK_BYTES) return end;
    const char *nl = memchr(text + from + CHUNK_BYTES, '\n', end - from - CHUNK_BYTES);
    return nl ? (size_t)(nl - text) + 1 : end;
}

/* Encodes text[from..end) into path, chunk by chunk. */
static int encode_part(const dl_tokenizer *tok, const char *text, size_t from, size_t end, const char *path,
                       dl_progress *prog, uint64_t *n_out, dl_error *err) {
    dl_tokwriter w;
    if (dl_tokwriter_open(&w, path, (uint32_t)dl_tok_vocab_size(tok), err)) return -1;
    dl_ivec ids = {0};
    int rc = 0;
    for (size_t at = from; at < end && rc == 0;) {
        size_t stop = chunk_end(text, at, end);
        ids.len = 0;
        /* allow_special: a corpus marks document ends with "<|endoftext|>", which must become the
         * EOT id rather than the letters of its name */
        rc = dl_tok_encode(tok, text + at, stop - at, 1, &ids, err);
        if (rc == 0) rc = dl_tokwriter_append(&w, ids.data, ids.len, err);
        at = stop;
        if (prog) dl_progress_update(prog, (long)(at >> 10), NULL);
    }
    dl_ivec_free(&ids);
    if (rc) {
        dl_tokwriter_abort(&w);
        return dl_fail_ctx(err, "%s", path);
    }
    *n_out = w.n_tokens;
    return dl_tokwriter_finish(&w, err);
}

static int check_size(const char *name, uint64_t n, dl_error *err) {
    if (n >= DL_DATA_MIN_TOKENS) return 0;
    return dl_fail(err, "%s would hold only %llu tokens (at least %d needed): use a larger corpus or another "
                        "validation fraction", name, (unsigned long long)n, DL_DATA_MIN_TOKENS);
}

static int prepare_text(const char *text, size_t len, const dl_tokenizer *tok, double val_fraction,
                        const char *outdir, dl_error *err) {
    size_t cut = split_point(text, len, val_fraction);
    if (cut == 0 || cut >= len)
        return dl_fail(err, "corpus has no line break to split train from validation at; it needs several lines");
    char train_path[4096], val_path[4096];
    if (dl_path_join(train_path, sizeof train_path, outdir, "train.bin", err) ||
        dl_path_join(val_path, sizeof val_path, outdir, "val.bin", err))
        return -1;
    dl_progress prog, *pp = NULL;
    if (len >= PROGRESS_MIN_BYTES) {
        dl_progress_start(&prog, "encode KiB", (long)(len >> 10));
        pp = &prog;
    }
    uint64_t n_train = 0, n_val = 0;
    int rc = encode_part(tok, text, 0, cut, train_path, pp, &n_train, err);
    if (rc == 0) rc = encode_part(tok, text, cut, len, val_path, pp, &n_val, err);
    if (pp) dl_progress_finish(pp);
    if (rc) return -1;
    if (check_size("train.bin", n_train, err) || check_size("val.bin", n_val, err)) {
        unlink(train_path); /* too small to train on: leave no file that looks usable */
        unlink(val_path);
        return -1;
    }
    dl_log("data: %s: %llu tokens from %zu bytes; %s: %llu tokens from %zu bytes", train_path,
           (unsigned long long)n_train, cut, val_path, (unsigned long long)n_val, len - cut);
    return 0;
}

int dl_data_prepare(const char *corpus, const char *tokenizer_path, double val_fraction, const char *outdir,
                    dl_error *err) {
    if (!(val_fraction > 0 && val_fraction < 0.5))
        return dl_fail(err, "validation fraction %g must be above 0 and below 0.5", val_fraction);
    dl_mmap text; /* mapped, not read: a corpus may be larger than the memory we want to spend */
    if (dl_mmap_open(&text, corpus, err)) return -1;
    if (text.len == 0) {
        dl_mmap_close(&text);
        return dl_fail(err, "%s: the corpus is empty", corpus);
    }
    dl_tokenizer *tok = dl_tok_load(tokenizer_path, err);
    if (!tok) {
        dl_mmap_close(&text);
        return dl_fail_ctx(err, "cannot load tokenizer");
    }
    char tok_copy[4096];
    int rc = dl_mkdir_p(outdir, err);
    if (rc == 0) rc = prepare_text(text.data, text.len, tok, val_fraction, outdir, err);
    if (rc == 0) rc = dl_path_join(tok_copy, sizeof tok_copy, outdir, "tokenizer.json", err);
    if (rc == 0) rc = dl_copy_file(tokenizer_path, tok_copy, err);
    if (rc && err && !strstr(err->msg, corpus)) dl_fail_ctx(err, "%s", corpus);
    dl_tok_free(tok);
    dl_mmap_close(&text);
    return rc;
}
