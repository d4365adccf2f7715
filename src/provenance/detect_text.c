/* detect text: is this text watermarked with this key? */
#include "detect_internal.h"

/* The text's ids and, with a prompt file, the prompt's. */
static int read_ids(const dl_detect_cfg *cfg, const dl_tokenizer *tok, dl_ivec *ids, dl_ivec *prompt, dl_error *err) {
    if (detect_read_ids(cfg->input, "text", tok, ids, err)) return -1;
    return cfg->prompt_file ? detect_read_ids(cfg->prompt_file, "prompt file", tok, prompt, err) : 0;
}

int dl_detect_text(const dl_detect_cfg *cfg, dl_detect_result *res, dl_error *err) {
    *res = (dl_detect_result){.mode = DL_DETECT_TEXT};
    dl_wm wm;
    dl_tokenizer *tok;
    if (detect_load_wm_tokenizer(cfg, res, &wm, &tok, err)) return -1;
    dl_ivec ids = {0}, prompt = {0};
    dl_wm_scorer *s = dl_wm_scorer_new(&wm);
    int rc = s ? read_ids(cfg, tok, &ids, &prompt, err) : dl_fail(err, "out of memory");
    if (rc == 0) rc = dl_wm_score(s, ids.data, ids.data, ids.len, cfg->prompt_file ? prompt.data : NULL, prompt.len, err);
    if (rc == 0) {
        dl_wm_scorer_stats(s, &res->st);
        res->sequences = 1;
    }
    dl_wm_scorer_free(s);
    dl_ivec_free(&ids);
    dl_ivec_free(&prompt);
    dl_tok_free(tok);
    dl_wm_wipe(&wm);
    return rc;
}
