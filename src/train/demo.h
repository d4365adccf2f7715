/* demo: the main job end to end on one corpus — train a tokenizer, prepare data, train a small
 * model, report its validation loss and show samples. */
#ifndef DISTIL_DEMO_H
#define DISTIL_DEMO_H

#include "base/base.h"

typedef struct dl_demo_opts {
    const char *corpus; /* NULL: the KJV Bible that scripts/install-deps.sh writes */
    const char *out;    /* run folder */
    int vocab_size;
    int steps;
    int threads;
    uint64_t seed;
    int samples;        /* how many prompts to continue */
    int sample_tokens;  /* tokens per sample */
} dl_demo_opts;

void dl_demo_opts_default(dl_demo_opts *o);
/* Where the default corpus is looked for, in order: $DISTIL_DATA_DIR/kjv.txt,
 * /usr/local/share/distil/kjv.txt, $HOME/.local/share/distil/kjv.txt. Fills path (n bytes) with the
 * first that exists, or fails with a message that says how to get one. */
int dl_demo_default_corpus(char *path, size_t n, dl_error *err);
int dl_demo_run(const dl_demo_opts *o, dl_error *err);

#endif
