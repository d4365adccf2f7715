/* A tiny model folder for tests that serve one: a byte-level BPE (vocab 300) trained on a few
 * sentences, and random weights (2 layers, hidden 32) scaled by weight_scale (larger: a peakier
 * next-token distribution). */
#ifndef DISTIL_TEST_TINY_MODEL_H
#define DISTIL_TEST_TINY_MODEL_H
#include "base/base.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include <stdio.h>
#include <string.h>

static const char *TINY_CORPUS = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat.\n"
                                 "the quick brown fox jumps over the lazy dog. the cat saw the fox and the dog ran.\n";

static inline int make_tiny_model(const char *dir, int max_T, float weight_scale) {
    dl_error err;
    char p[1200];
    dl_tokenizer *tok = dl_tok_train(TINY_CORPUS, strlen(TINY_CORPUS), 300, NULL, &err);
    if (!tok) return fprintf(stderr, "tokenizer: %s\n", err.msg), -1;
    dl_config c = {.V = dl_tok_vocab_size(tok), .C = 32, .F = 64, .L = 2, .NH = 4, .NKV = 2, .max_T = max_T,
                   .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = 1, .bos_id = -1, .eos_id = -1};
    dl_model m;
    int rc = dl_model_create(&m, &c, &err);
    if (rc == 0) {
        dl_model_init_random(&m, 5);
        for (size_t i = 0; i < m.lay.total; i++) m.params[i] *= weight_scale;
        rc = dl_model_save(&m, dir, &err) || dl_path_join(p, sizeof p, dir, "tokenizer.json", &err) ||
             dl_tok_save(tok, p, &err);
        dl_model_free(&m);
    }
    dl_tok_free(tok);
    if (rc) fprintf(stderr, "model: %s\n", err.msg);
    return rc ? -1 : 0;
}
#endif
