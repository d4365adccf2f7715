/* A tiny model folder for the server tests: a BPE tokenizer trained on a few lines and a
 * random Llama model of its vocabulary, saved as config.json + model.safetensors +
 * tokenizer.json. Weights are scaled up so greedy text varies with the prompt. */
#ifndef DISTIL_TEST_SERVE_FIXTURE_H
#define DISTIL_TEST_SERVE_FIXTURE_H
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *FIXTURE_CORPUS =
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat.\n"
    "the quick brown fox jumps over the lazy dog. the cat saw the fox and the dog ran.\n"
    "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 100 \xf0\x9f\x98\x80 smile.\n";

static void fixture_die(const char *what, const dl_error *err) {
    fprintf(stderr, "fixture: %s: %s\n", what, err->msg);
    exit(2);
}

/* eos: 1 gives the tokenizer <|endoftext|> and makes it eos_token_id, so generation may stop
 * early; 0 leaves the model without any end token, so every request runs to max_tokens. */
static void make_model_dir(const char *dir, int C, int L, int F, int max_T, float scale, int eos, uint64_t seed) {
    dl_error err;
    const char *no_end[] = {"<|pad|>", NULL};
    dl_tokenizer *tok = dl_tok_train(FIXTURE_CORPUS, strlen(FIXTURE_CORPUS), 320, eos ? NULL : no_end, &err);
    if (!tok) fixture_die("tokenizer", &err);
    dl_config c = {.V = dl_tok_vocab_size(tok), .C = C, .F = F, .L = L, .NH = 4, .NKV = 2, .max_T = max_T,
                   .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = 1, .bos_id = -1,
                   .eos_id = eos ? dl_tok_eot_id(tok) : -1};
    dl_model m;
    if (dl_model_create(&m, &c, &err)) fixture_die("model", &err);
    dl_model_init_random(&m, seed);
    for (size_t i = 0; i < m.lay.total; i++) m.params[i] *= scale;
    char path[1024];
    if (dl_model_save(&m, dir, &err)) fixture_die("save", &err);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (dl_tok_save(tok, path, &err)) fixture_die("tokenizer save", &err);
    dl_model_free(&m);
    dl_tok_free(tok);
}
#endif
