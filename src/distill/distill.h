/* distill: white-box distillation. A student learns to match a teacher's next-token distribution
 * on the trainer of src/train (same flags, checkpoints, resume, metrics), with the divergences of
 * losses.h.
 *
 * Teacher sources (DESIGN.md: per position, full logits or top-k + leftover mass):
 * - a local teacher model folder, run forward every micro-batch;
 * - a top-k teacher cache (`distil teacher-cache`), memory-mapped, indexed by token position.
 *
 * Memory: the student's logits (B,T,V) and the teacher's are never both held for the batch.
 * The live teacher runs one sequence at a time (its activations are sized (1,T)); the loss of
 * that sequence's T rows turns the student's logits rows into d(loss)/d(logits) in place, then
 * the next sequence runs. So besides the student's (B,T,V) there is one (T,V_teacher) buffer.
 * The cache path holds (B,T,K) ids and log-probabilities.
 *
 * Vocabularies: teacher and data must share the tokenizer (the same token ids, bytes and merges:
 * dl_tok_fingerprint). A teacher whose vocab_size is padded past the student's is truncated to
 * the student's ids (its distribution renormalised over them). A different tokenizer is refused
 * before anything trains; that pair needs the black-box path (distil harvest, then training on
 * the teacher's text).
 *
 * Data modes, per micro-batch:
 * - off-policy: the loader's corpus windows, teacher-forced (live teacher or cache);
 * - sequence-level KD (seq_kd): the first prompt_len tokens of each window are kept and the
 *   live teacher samples the rest (gen_temperature); the student trains on that text;
 * - on-policy (lmbda = P): with probability P (a draw from the run's rng, so resume repeats it)
 *   the student samples the continuations instead, and the teacher scores them (GKD).
 * With generated continuations, only positions that predict a generated token count in the loss
 * (the prompt's own next tokens are masked). seq_kd and on-policy batches need a live teacher;
 * off-policy batches read the cache when one is given.
 *
 * Under mpirun (train/dist.h) each rank runs the live teacher on its own rows of the global
 * batch, reads the cache rows of its own windows, and samples the same generated rows one
 * process would (each row's rng is keyed by its index in the global batch): N processes make
 * the run one process makes with the same global batch. With a harvest, rank 0 alone writes
 * RUN/harvest/ (the others wait), and since the ranks' rows hold different numbers of target
 * tokens, each rank's loss and gradient are weighted by its share of the global batch's targets
 * (the counts summed over ranks every micro-batch).
 *
 * Black-box (harvest): the teacher is a harvest, the OUT.jsonl of `distil harvest` (its text and,
 * when harvested, per-token top logprobs), and the student trains on the teacher's completions
 * with the prompts as context: cross-entropy on every completion token (sequence-level KD),
 * and at the positions where logprobs were harvested and line up with the student's tokens, the
 * top-k loss of losses.h over those alternatives plus a rest bin, as with a cache ((1 - w) KD +
 * w CE there). Prompt tokens are never targets. How lines become sequences, how teacher tokens
 * map to student ids and which positions align: harvest_data.h. The harvest is read whole,
 * checked line by line (a bad line is an error naming it) and written as a data folder
 * RUN/harvest/ (train.bin, val.bin: one record per window of seq-len tokens, padded, so
 * records never see each other; tokenizer.json), which the trainer reads as it reads any data
 * folder, so batches, checkpoints and --resume work as for the other modes. Every 10th record
 * is held out; evaluations report "val_loss" (cross-entropy over held-out completion tokens)
 * and "val_agreement" (the student's argmax against the teacher's most likely harvested
 * alternative, over positions that have one), and the log tells the counts (records, target
 * tokens, positions with top-k targets, unaligned positions, unmapped alternatives).
 *
 * Run folder: as `distil train` (see train/train.h); metrics lines add "kd", "ce" (the two terms
 * of the loss, means over the step) and "on_policy" (share of the step's micro-batches that were
 * the student's samples); with a live teacher, evaluations add "val_kl", "val_agreement",
 * "val_top5" (eval/eval.h dl_eval_teacher) and "teacher_val_loss". */
#ifndef DISTIL_DISTILL_H
#define DISTIL_DISTILL_H

#include "data/data.h"
#include "distill/losses.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/train.h"

/* ---- options (opts.c) ------------------------------------------------------------------------ */
typedef struct dl_distill_opts {
    dl_train_opts train; /* train.config is the student: a config.json, or a model folder (whose
                            weights, when it has any (dl_model_has_weights), are the starting point) */
    const char *teacher; /* teacher model folder (config.json, model.safetensors, tokenizer.json) */
    const char *cache;   /* top-k teacher cache made from DATA/train.bin, or NULL */
    dl_kd_cfg kd;
    int seq_kd;          /* teacher-generated continuations instead of the corpus */
    double lmbda;        /* probability that a micro-batch is the student's own samples */
    int prompt_len;      /* corpus tokens kept as the prompt of generated batches; 0: seq_len / 2 */
    double gen_temperature; /* sampling temperature of generated continuations (0: greedy) */
    int init_from_teacher; /* copy teacher layers, embeddings and final norm into the student */
    const char *layers;  /* "0,2,4": the teacher layers to copy, one per student layer; NULL: evenly spread */
    const char *harvest; /* black-box: a distil harvest OUT.jsonl instead of a teacher, cache and data */
    const char *tokenizer; /* harvest: the student's tokenizer.json (default: STUDENT_DIR/tokenizer.json) */
} dl_distill_opts;

void dl_distill_opts_default(dl_distill_opts *o);
/* Ranges of the distillation options (train options are checked by the trainer). */
int dl_distill_check_opts(const dl_distill_opts *o, dl_error *err);

/* ---- the run (distill.c) --------------------------------------------------------------------- */
/* Checks everything (teacher, tokenizers, vocabularies, cache, layers) before the first update,
 * then trains. Returns as dl_train does. */
int dl_distill(const dl_distill_opts *o, dl_error *err);

/* ---- tokenizer and file identity (fingerprint.c) ----------------------------------------------
 * 64-bit FNV-1a hashes. The tokenizer's covers what a token id means: the vocabulary (each id's
 * bytes and whether it is special) and the merges, so a reformatted tokenizer.json still matches. */
uint64_t dl_tok_fingerprint(const dl_tokenizer *t);
int dl_tok_fingerprint_file(const char *tokenizer_json, uint64_t *out, int *vocab, dl_error *err);
/* The token file's ids, their count and width. */
uint64_t dl_tokfile_fingerprint(const dl_tokfile *f);
uint64_t dl_fingerprint_bytes(const void *p, size_t n);

/* ---- teacher / student pairing (pair.c) ------------------------------------------------------ */
/* Fails unless TEACHER_DIR/tokenizer.json and student_tokenizer describe the same tokenizer; the
 * message names both files and points a different tokenizer to the black-box path. *vocab gets
 * the tokenizer's vocabulary size (may be NULL). */
int dl_teacher_check_tokenizer(const char *teacher_dir, const char *student_tokenizer, int *vocab,
                               dl_error *err);
/* Vocabulary sizes: the tokenizer's ids must fit both models; the teacher may be larger than the
 * student (it is truncated), not smaller. */
int dl_teacher_check_vocab(const dl_config *teacher, const dl_config *student, int tokenizer_vocab,
                           dl_error *err);

/* ---- student initialisation from the teacher (init.c) ----------------------------------------- */
/* Parses "0,2,4" into layers[0..*n); ids must be in [0, teacher_L), strictly increasing, and
 * *n == student_L. spec NULL: student_L layers spread evenly from the first to the last. */
int dl_parse_layers(const char *spec, int teacher_L, int student_L, int *layers, dl_error *err);
/* Same width required (hidden, intermediate, heads, kv heads) and the same attention biases
 * (q/k/v, o), teacher V >= student V. */
int dl_init_check(const dl_config *teacher, const dl_config *student, dl_error *err);
/* Copies embeddings (the student's first V rows), the chosen layers (with their biases), the
 * final norm, and lm_head (the teacher's, or its embeddings when the teacher is tied and the
 * student is not). */
int dl_init_from_teacher(dl_model *student, const dl_model *teacher, const int *layers, dl_error *err);

/* ---- top-k teacher cache (cache.c, cache_build.c) ---------------------------------------------
 * File layout (little-endian), built for one token file and one window length T:
 *   0  magic "DSTLTKC\0"   8 version u32 (1)   12 K u32   16 vocab u32 (ids < vocab)
 *   20 id_bytes u32 (2 when vocab <= 65536, else 4)       24 seq_len u32 (T)   28 reserved u32 (0)
 *   32 n_rows u64          40 tokenizer fingerprint u64   48 token file fingerprint u64
 *   56 n_tokens u64 (of the token file)
 *   64 ids      (n_rows, K) id_bytes each
 *      logp     (n_rows, K) fp16: the teacher's log-probabilities (temperature 1) of those ids,
 *               largest first (ties: lower id first)
 *      rest     (n_rows)    fp32: 1 - sum_k exp(logp_k) over the stored (rounded) values, >= 0
 * Row i is the teacher's distribution of token i+1 given the tokens from the start of i's window
 * (i - i % T) up to i: the windows of the loader (data.h), so a run with the same T reads rows
 * start .. start+T-1 for a window starting at `start`. n_rows = ((n_tokens - 1) / T) * T.
 * The teacher's distribution is over the tokenizer's ids (a padded teacher is renormalised over
 * them). Bytes per token: K * (id_bytes + 2) + 4, so 4K + 4 up to 65536 ids. */
#define DL_TCACHE_HEADER 64
typedef struct dl_tcache {
    dl_mmap map;
    int K, vocab, id_bytes, seq_len;
    uint64_t n_rows, n_tokens, tok_hash, data_hash;
    const unsigned char *ids, *logp, *rest; /* into the mapping; read with memcpy (any alignment) */
} dl_tcache;

/* Maps the file and checks the header, the size, and every id, log-probability and rest value. */
int dl_tcache_open(dl_tcache *c, const char *path, dl_error *err);
void dl_tcache_close(dl_tcache *c);
/* Rows row .. row+n-1: ids (n,K), logp (n,K), rest (n). The caller keeps row + n <= n_rows. */
void dl_tcache_read(const dl_tcache *c, uint64_t row, int n, int32_t *ids, float *logp, float *rest);
/* The checks a run makes before it trains on the cache. */
int dl_tcache_check_run(const dl_tcache *c, uint64_t tok_hash, const dl_tokfile *train, uint64_t data_hash, int T,
                        int student_V, dl_error *err);
size_t dl_tcache_bytes_per_token(const dl_tcache *c);

/* The K most likely ids of one row of logits over V ids (V <= the row's length), largest first
 * (ties: lower id), their log-probabilities rounded to fp16 (as stored) and the leftover mass
 * computed from the rounded values. scratch: V floats. */
void dl_topk_row(const float *logits, int V, int K, float *scratch, int32_t *ids, uint16_t *logp_f16, float *rest);

typedef struct dl_tcache_build_opts {
    const char *teacher; /* model folder with tokenizer.json */
    const char *data;    /* token file, or a folder: FOLDER/train.bin (and its tokenizer.json is checked) */
    const char *out;     /* cache file, written atomically */
    int top_k;
    int seq_len;         /* T: must equal the --seq-len of the runs that read the cache */
    int batch;           /* windows per teacher forward */
    int threads;
} dl_tcache_build_opts;

void dl_tcache_build_opts_default(dl_tcache_build_opts *o);
int dl_tcache_build(const dl_tcache_build_opts *o, dl_error *err);

#endif
