/* What the detectors share: the key, reading a text, tokenizing it. */
#include "detect_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dl_detect_cfg_default(dl_detect_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->gamma = 0.25;
    cfg->context = 1;
    cfg->delta = -1;
    dl_harvest_opts_default(&cfg->harvest);
}

int detect_load_wm(const dl_detect_cfg *cfg, dl_wm *wm, dl_error *err) {
    return dl_wm_load(wm, cfg->key_file, cfg->gamma, cfg->delta >= 0 ? cfg->delta : 0.0, cfg->context, err);
}

static int read_stdin(char **out, size_t *len, dl_error *err) {
    dl_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t k = read(0, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            dl_buf_free(&b);
            return dl_fail(err, "stdin: read failed: %s", strerror(errno));
        }
        if (k == 0) break;
        if (dl_buf_append(&b, chunk, (size_t)k)) {
            dl_buf_free(&b);
            return dl_fail(err, "stdin: out of memory");
        }
    }
    if (dl_buf_append(&b, "", 0)) return dl_fail(err, "stdin: out of memory");
    *out = b.data;
    *len = b.len;
    return 0;
}

static int read_text(const char *path, const char *what, char **out, size_t *len, dl_error *err) {
    *out = NULL;
    *len = 0;
    if (!path) return dl_fail(err, "no %s given", what);
    int rc = strcmp(path, "-") == 0 ? read_stdin(out, len, err) : dl_read_file(path, out, len, err);
    if (rc) return dl_fail_ctx(err, "%s", what);
    for (size_t i = 0, k; i < *len; i += k)
        if (!(k = dl_utf8_char_len(*out + i, *len - i))) {
            unsigned bad = (unsigned char)(*out)[i];
            free(*out);
            *out = NULL;
            return dl_fail(err, "%s %s is not valid UTF-8 (byte %zu, 0x%02x): give the text as the server returned it",
                           what, strcmp(path, "-") ? path : "on stdin", i, bad);
        }
    return 0;
}

int detect_read_ids(const char *path, const char *what, const dl_tokenizer *tok, dl_ivec *ids, dl_error *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = read_text(path, what, &text, &len, err);
    if (rc == 0) rc = dl_tok_encode(tok, text, len, 0, ids, err);
    free(text);
    return rc;
}

void detect_note_tokenizer(dl_detect_result *res, const char *path, int vocab) {
    snprintf(res->tokenizer, sizeof res->tokenizer, "%s", path ? path : "");
    res->vocab = vocab;
}

int detect_load_wm_tokenizer(const dl_detect_cfg *cfg, dl_detect_result *res, dl_wm *wm, dl_tokenizer **tok,
                             dl_error *err) {
    if (detect_load_wm(cfg, wm, err)) return -1;
    *tok = cfg->tokenizer ? dl_tok_load(cfg->tokenizer, err) : NULL;
    if (!*tok) {
        dl_wm_wipe(wm);
        return cfg->tokenizer ? -1 : dl_fail(err, "no tokenizer given (the watermarking server's tokenizer.json)");
    }
    detect_note_tokenizer(res, cfg->tokenizer, dl_tok_vocab_size(*tok));
    return 0;
}
