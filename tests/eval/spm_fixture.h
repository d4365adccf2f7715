/* A SentencePiece-style tokenizer in which a space has two tokens (U+2581 and the byte token
 * <0x20>: both decode to " "), and a model whose greedy continuation alternates between them,
 * by construction: every layer's output projections are zero, so the last hidden state is the
 * normalised embedding of the last token. U+2581's embedding is e1 and every other token's e0;
 * lm_head maps e0 to U+2581 and e1 to <0x20>. Shared by tests/eval and tests/cli. */
#ifndef EVAL_SPM_FIXTURE_H
#define EVAL_SPM_FIXTURE_H

#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "test.h"

enum { SPM_SPACE = 3 + 256, SPM_BYTE_SPACE = 3 + 0x20, SPM_V = 3 + 256 + 3 };

static inline void spm_die(const char *what, const dl_error *err) {
    fprintf(stderr, "spm fixture: %s: %s\n", what, err->msg);
    exit(2);
}

/* <unk> <s> </s>, <0x00>..<0xFF>, then U+2581, "a" and U+2581 "a". */
static inline dl_tokenizer *spm_tokenizer(void) {
    static char bytes[256][7];
    const char *pieces[SPM_V];
    size_t lens[SPM_V];
    float scores[SPM_V];
    pieces[0] = "<unk>", pieces[1] = "<s>", pieces[2] = "</s>";
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[3 + b] = bytes[b];
    }
    pieces[SPM_SPACE] = "\xe2\x96\x81", pieces[SPM_SPACE + 1] = "a", pieces[SPM_SPACE + 2] = "\xe2\x96\x81" "a";
    for (int i = 0; i < SPM_V; i++) lens[i] = strlen(pieces[i]), scores[i] = i < SPM_SPACE ? 0.0f : -1.0f;
    dl_spm_opts o = {.unk_id = 0, .bos_id = 1, .eos_id = 2, .add_prefix = 1, .add_bos = 0};
    dl_error err;
    dl_tokenizer *t = dl_tok_spm_new(SPM_V, pieces, lens, scores, NULL, &o, &err);
    if (!t) spm_die("tokenizer", &err);
    return t;
}

static inline void spm_model(dl_model *m) {
    dl_config c = {.V = SPM_V, .C = 8, .F = 16, .L = 1, .NH = 2, .NKV = 1, .max_T = 32, .rms_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tied = 0, .bos_id = 1, .eos_id = 2};
    dl_error err;
    if (dl_model_create(m, &c, &err)) spm_die("model", &err);
    dl_model_init_random(m, 1);
    for (int v = 0; v < m->lay.n_views; v++) { /* norm weights stay 1, everything else 0 */
        const dl_tensor_view *t = &m->lay.views[v];
        if (!strstr(t->name, "norm")) memset(m->params + t->offset, 0, t->numel * sizeof(float));
    }
    float *embed = m->params + m->lay.views[m->lay.embed].offset;
    float *head = m->params + m->lay.views[m->lay.lm_head].offset;
    for (int id = 0; id < SPM_V; id++) embed[(size_t)id * c.C + (id == SPM_SPACE)] = 1.0f;
    head[(size_t)SPM_SPACE * c.C + 0] = 10.0f;
    head[(size_t)SPM_BYTE_SPACE * c.C + 1] = 10.0f;
}

#endif
