/* demo: the main job end to end on one corpus — train a tokenizer, prepare data, train a small
 * teacher, show its samples, distil a student about a quarter its size from it, and print a
 * table of teacher vs student (parameters, validation loss, top-1 agreement, generation speed,
 * a greedy sample from each). It sits above train and distill (cli -> demo -> distill -> train). */
#ifndef DISTIL_DEMO_H
#define DISTIL_DEMO_H

#include "base/base.h"

typedef struct dl_demo_opts {
    const char *corpus; /* NULL: the KJV Bible that scripts/install-deps.sh writes */
    const char *out;    /* run folder: tokenizer.json, data/, config.json, model/ (teacher),
                           student.json, student/ */
    int vocab_size;
    int steps;          /* teacher training updates */
    int student_steps;  /* student distillation updates */
    int threads;
    uint64_t seed;
    int samples;        /* how many prompts the teacher continues */
    int sample_tokens;  /* tokens per sample, and per greedy generation in the table */
} dl_demo_opts;

void dl_demo_opts_default(dl_demo_opts *o);
/* Where the default corpus is looked for, in order: $DISTIL_DATA_DIR/kjv.txt,
 * /usr/local/share/distil/kjv.txt, $HOME/.local/share/distil/kjv.txt. Fills path (n bytes) with the
 * first that exists, or fails with a message that says how to get one. */
int dl_demo_default_corpus(char *path, size_t n, dl_error *err);
int dl_demo_run(const dl_demo_opts *o, dl_error *err);

/* ---- the comparison (compare.c) ---------------------------------------------------------------
 * Loads both model folders, scores them on val_path (the student with dl_eval_teacher, so the
 * agreement is top-1 against the teacher), generates max_tokens greedily from prompt with each
 * (timed), and prints the table and both samples to stdout. */
int dl_demo_compare(const char *teacher_dir, const char *student_dir, const char *val_path, const char *prompt,
                    int max_tokens, dl_error *err);

#endif
