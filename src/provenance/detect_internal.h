/* Shared by the three detectors (detect_*.c), private to src/provenance. */
#ifndef DISTIL_PROVENANCE_DETECT_INTERNAL_H
#define DISTIL_PROVENANCE_DETECT_INTERNAL_H

#include "provenance.h"

/* The watermark of cfg (key file, gamma, context; delta only when given). */
int detect_load_wm(const dl_detect_cfg *cfg, dl_wm *wm, dl_error *err);
/* A whole file ("-": stdin), which must be valid UTF-8 (the error names the first bad byte),
 * tokenized alone (no special tokens) and appended to ids. what names it in messages ("text",
 * "prompt file"). */
int detect_read_ids(const char *path, const char *what, const dl_tokenizer *tok, dl_ivec *ids, dl_error *err);
/* res->tokenizer, res->vocab */
void detect_note_tokenizer(dl_detect_result *res, const char *path, int vocab);
/* detect text and api: the watermark and the watermarking server's tokenizer (cfg->tokenizer,
 * required), noted in res. On failure nothing is left to free or wipe. */
int detect_load_wm_tokenizer(const dl_detect_cfg *cfg, dl_detect_result *res, dl_wm *wm, dl_tokenizer **tok,
                             dl_error *err);

#endif
