/* demo: the main job end to end on one corpus — train a tokenizer, prepare data, train a small
 * teacher, show its samples, distil a student about a quarter its size from it (white-box: the
 * teacher's weights run beside it), then serve the teacher on 127.0.0.1, harvest its answers
 * (text and top logprobs) and distil a second student of the same size from the harvest alone
 * (black-box: API access only), and print a table of teacher vs both students (parameters,
 * validation loss, top-1 agreement, KL, generation speed, a greedy sample from each). It sits
 * above distill, serve and harvest (cli -> demo -> distill -> train). */
#ifndef DISTIL_DEMO_H
#define DISTIL_DEMO_H

#include "base/base.h"

typedef struct dl_demo_opts {
    const char *corpus; /* NULL: the KJV Bible that scripts/install-deps.sh writes */
    const char *out;    /* run folder: tokenizer.json, data/, config.json, model/ (teacher),
                           student.json, student/ (white-box), prompts.jsonl, harvest.jsonl,
                           usage.sqlite (the server's log), student-bb/ (black-box),
                           watermark.key (the server's watermark), heldout.txt (the plain
                           text the proof has the students read) */
    int vocab_size;
    int steps;          /* teacher training updates */
    int student_steps;  /* student distillation updates */
    int threads;
    uint64_t seed;
    int samples;        /* how many prompts the teacher continues */
    int sample_tokens;  /* tokens per sample, and per greedy generation in the table */
    int harvest_prompts; /* prompts the served teacher answers */
    int harvest_tokens;  /* completion tokens per answer */
    int bb_steps;        /* black-box student updates */
} dl_demo_opts;

void dl_demo_opts_default(dl_demo_opts *o);
/* Where the default corpus is looked for, in order: $DISTIL_DATA_DIR/kjv.txt,
 * /usr/local/share/distil/kjv.txt, $HOME/.local/share/distil/kjv.txt. Fills path (n bytes) with the
 * first that exists, or fails with a message that says how to get one. */
int dl_demo_default_corpus(char *path, size_t n, dl_error *err);
int dl_demo_run(const dl_demo_opts *o, dl_error *err);

/* ---- the comparison (compare.c) ---------------------------------------------------------------
 * Loads the teacher and n students (names: their column titles), scores them on val_path (each
 * student with dl_eval_teacher, so the agreement is top-1 against the teacher), generates
 * max_tokens greedily from prompt with each (timed), and prints the table and the samples to
 * stdout. At most DL_DEMO_MAX_STUDENTS. */
#define DL_DEMO_MAX_STUDENTS 4
int dl_demo_compare(const char *teacher_dir, const char *const *student_dirs, const char *const *names, int n,
                    const char *val_path, const char *prompt, int max_tokens, dl_error *err);

/* ---- inside src/demo ------------------------------------------------------------------------ */
#define DL_DEMO_BATCH 16
#define DL_DEMO_SEQ 128
struct dl_train_opts;
struct dl_serve_cfg;
/* The schedule both students share (demo.c): warmup 5%, evaluations at quarters. */
void dl_demo_train_defaults(struct dl_train_opts *to, const dl_demo_opts *o, const char *cfg, const char *data,
                            const char *out, int steps);

/* The black-box leg (blackbox.c): files it reads and writes. */
typedef struct dl_demo_bb {
    const char *corpus, *teacher, *tokenizer, *student_cfg, *key; /* read (key: the watermark's) */
    const char *db, *prompts, *harvest, *student;            /* written */
} dl_demo_bb;
/* The server's configuration: the teacher on 127.0.0.1, a free port, no API key (the demo adds
 * its watermark key file, with default gamma, delta and context). */
void dl_demo_serve_cfg(struct dl_serve_cfg *c, const char *model_dir, const char *db_path);
/* n prompts cut from lines spread over the training part of the corpus, as harvest JSONL. */
int dl_demo_write_prompts(const char *corpus, const char *path, int n, dl_error *err);
/* Prompts, the served teacher harvested, the black-box student distilled. */
int dl_demo_blackbox(const dl_demo_opts *o, const dl_demo_bb *bb, dl_error *err);

/* The proof (proof.c). A fresh random watermark key, written to path. */
int dl_demo_write_key(const char *path, dl_error *err);
/* Writes the held-out end of the corpus to text_path, runs distil detect model on each student
 * over it and prints pairs, green, z, p-value and a verdict per student. */
int dl_demo_proof(const char *key_file, const char *corpus, const char *text_path, const char *const *dirs,
                  const char *const *names, int n, dl_error *err);

#endif
