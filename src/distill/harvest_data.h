/* Black-box distillation data: a harvest (the OUT.jsonl of distil harvest, harvest/harvest.h)
 * turned into the student's token sequences with per-position targets. Private to src/distill
 * and its tests.
 *
 * One line -> one record (harvest_parse.c). Read from the line:
 *   prompt      "prompt" (a string: completions), or "messages" rendered with distil serve's
 *               chat template (dl_chat_render, tokenizer.h; chat), so the student learns to answer in the format
 *               it will be served in
 *   completion  "completion" (a string), finish_reason ("stop" means the teacher ended it)
 *   logprobs    optional, either shape (told apart by "content"):
 *               completions {"tokens": [str], "token_logprobs": [num|null],
 *                            "top_logprobs": null | [null | {str: num}]}
 *               chat {"content": [{"token", "logprob", "bytes"?, "top_logprobs":
 *                                  [{"token", "logprob", "bytes"?}]}]}
 *               Each token keeps its bytes ("bytes" when given, else the string's UTF-8), its own
 *               log-probability (when given) and its alternatives (bytes, log-probability).
 * Malformed lines are errors naming the field (the caller adds the file and line): not JSON or
 * duplicate keys, a missing prompt or completion, wrong types, arrays of mismatched lengths,
 * bytes outside 0..255, more than HD_MAX_ALTS alternatives at one position, log-probabilities
 * above HD_LOGP_SLACK or whose probabilities add up past 1 + HD_MASS_SLACK at one position.
 * (JSON has no NaN or infinity; numbers too large for a double fail as "not JSON".)
 *
 * Record -> student sequence (harvest_map.c):
 *   ids = encode(prompt) + completion (+ <|endoftext|> when the teacher stopped by itself and
 *   the student's tokenizer has one). The prompt is encoded as the server does (completions:
 *   special-token strings become their ids; chat: never). Only completion tokens are targets:
 *   the student learns the teacher's answers, not the prompts, which a harvest usually draws
 *   from elsewhere.
 *   Completion tokens, "direct": when every sampled token has a student id with exactly its
 *   bytes and together they spell the completion (or every token came with its raw "bytes":
 *   then they are what the teacher wrote, and the completion text may differ only where the
 *   server replaced invalid UTF-8), the teacher's own tokens are the sequence, so every
 *   position is aligned (the common case: the student took the teacher's tokenizer.json).
 *   Otherwise the completion is encoded with the student's tokenizer and a
 *   student token is aligned when it covers exactly the bytes of one teacher token (within the
 *   part of the completion the teacher's tokens spell); the other positions are trained on
 *   cross-entropy only ("unaligned").
 *   An aligned position's top-k targets: the alternatives whose bytes are a student token (the
 *   others are "unmapped" and their mass joins the rest bin), plus the sampled token with its
 *   own log-probability when it is not among them; ids met twice have their probabilities
 *   added; rest = 1 - the kept mass, floored at 0. top1 is the student id of the most likely
 *   alternative (-1 when it has none): the teacher's argmax, for the agreement measure.
 *   A sequence longer than max_len (T + 1) keeps the first T completion tokens at most and the
 *   end of the prompt (at least one token) before them: "truncated". */
#ifndef DISTIL_DISTILL_HARVEST_DATA_H
#define DISTIL_DISTILL_HARVEST_DATA_H

#include "distill.h"

#define HD_MAX_ALTS 64        /* alternatives per position (OpenAI allows 20) */
#define HD_LOGP_SLACK 1e-4    /* log-probabilities up to this are taken as rounding of 0 */
#define HD_MASS_SLACK 1e-3    /* alternatives' probabilities may add up to 1 + this */
#define HD_MAX_LINE (64u << 20)

/* ---- records (harvest_parse.c) ---------------------------------------------------------------- */
typedef struct hd_span { size_t off, len; } hd_span; /* bytes in hd_record.bytes */
typedef struct hd_alt { hd_span b; float logp; } hd_alt;

typedef struct hd_record {
    dl_buf prompt, completion;
    int chat, stopped, has_logprobs;
    int raw;             /* every sampled token came with its "bytes" */
    dl_buf bytes;        /* every token's and alternative's bytes */
    size_t n_tok;
    hd_span *tok;        /* (n_tok) the sampled tokens */
    float *tok_logp;     /* (n_tok) their log-probabilities; NAN when not given */
    size_t *alt_at;      /* (n_tok + 1): token j's alternatives are alts[alt_at[j] .. alt_at[j + 1]) */
    hd_alt *alts;
    size_t n_alt, cap_tok, cap_alt;
} hd_record;

/* Parses one line (without its newline) into r (emptied first). */
int hd_parse_line(hd_record *r, const char *line, size_t len, dl_error *err);
void hd_record_free(hd_record *r);

/* ---- one record as the student's sequence (harvest_map.c) --------------------------------------- */
typedef struct hd_counts {
    long records;    /* lines read (blank lines aside) */
    long used;       /* records with at least one target */
    long train, val; /* records of each split */
    long tokens;     /* target positions (completion tokens and end tokens) */
    long topk;       /* target positions with top-k targets */
    long unaligned;  /* target positions of records with logprobs, trained on cross-entropy only */
    long alts;       /* alternatives read at aligned positions */
    long unmapped;   /* of which had no student token with their bytes */
    long direct;     /* records whose sequence is the teacher's own tokens */
    long truncated;  /* records cut to seq-len + 1 tokens */
} hd_counts;

typedef struct hd_seq {
    dl_ivec ids;      /* prompt + completion, at most max_len */
    int first;        /* ids[first..] are the completion, so positions first-1 .. len-2 are targets */
    /* per completion token i (ids[first + i]): */
    dl_ivec n_alt;    /* top-k targets (0: cross-entropy only) */
    dl_ivec top1;     /* the teacher's argmax as a student id, or -1 */
    dl_ivec alt_ids;  /* the targets of every token, in order */
    float *alt_logp, *rest;
    size_t cap_logp, cap_rest;
} hd_seq;

typedef struct hd_vocab {
    const dl_tokenizer *tok;
    int V;            /* ids must be below this (the student's vocab_size) */
    int eot;          /* appended after a completion that stopped; -1: none */
    int start;        /* an empty prompt becomes this token; -1: none */
} hd_vocab;

/* The student id whose bytes are exactly b[0..n), or -1. */
int hd_student_id(const hd_vocab *v, const char *b, size_t n);
/* r -> s (emptied first); adds to c's tokens, topk, unaligned, alts, unmapped, direct, truncated. */
int hd_map_record(const hd_record *r, const hd_vocab *v, int max_len, hd_seq *s, hd_counts *c, dl_error *err);
void hd_seq_free(hd_seq *s);

/* ---- the whole harvest (harvest_set.c) ----------------------------------------------------------
 * Record i of a split fills window i of its token file: tokens i*T .. i*T+T-1 hold ids[0..T)
 * (padded with the eot token, or 0), and one more token ends the file, so the loader's window i
 * (data.h) is exactly record i and its last target, ids[T], lives in the labels only.
 * Position g = i*T + t predicts ids[t + 1]. Every 10th used record is held out for validation
 * (the 10th, 20th, ...; with fewer than 10 records, the last one). */
typedef struct hd_labels {
    size_t n_pos;     /* records x T */
    int32_t *target;  /* (n_pos) the id position g predicts, -1 where nothing is learned */
    int32_t *top1;    /* (n_pos) the teacher's argmax, -1: not known */
    uint8_t *n_alt;   /* (n_pos) top-k targets at g, 0: cross-entropy only */
    size_t *alt_at;   /* (n_pos) g's first entry in ids / logp */
    float *rest;      /* (n_pos) */
    int32_t *ids;     /* all positions' top-k ids */
    float *logp;
    size_t n_alts;
    int32_t *tokens;  /* the token file: records x T + 1 ids */
    size_t n_tokens;
} hd_labels;

typedef struct hd_set {
    hd_labels train, val;
    hd_counts n;
    int T, K;         /* K: the most top-k targets at one position */
    uint64_t hash;    /* of the harvest file's bytes */
} hd_set;

/* Reads and maps the whole harvest; fails naming the file and line of a bad record. */
int hd_set_build(hd_set *s, const char *path, const hd_vocab *v, int T, dl_error *err);
/* DIR/train.bin, DIR/val.bin (vocab_size v->V), DIR/tokenizer.json (a copy of tokenizer_path). */
int hd_set_write(const hd_set *s, const char *dir, int V, const char *tokenizer_path, dl_error *err);
void hd_set_free(hd_set *s);

/* ---- the loss of harvest rows (harvest_kd.c) -----------------------------------------------------
 * Per row n of z (N,V) with target[n] in [0, V): n_alt[n] > 0 rows take the top-k loss of
 * losses.h over ids/logp[alt_at[n] ..) and rest[n] ((1 - w) KD + w CE); n_alt[n] == 0 rows take
 * cross-entropy. The loss is the mean over all counted rows; z becomes scale * d(loss)/dz in
 * place (0 for rows not counted). kd is the mean over the top-k rows, ce over the rows whose
 * cross-entropy was computed (all with w > 0, else the cross-entropy-only rows). */
typedef struct hd_loss {
    double loss, kd, ce;
    int rows, topk_rows, ce_rows; /* the counts the three means are over */
} hd_loss;

typedef struct hd_work {
    int32_t *ids;     /* (N, K) gathered */
    float *logp, *rest, *lse, *ce; /* (N, K), (N), (N), (N) */
    size_t cap_rows, cap_k;
} hd_work;

int hd_rows_loss(const dl_kd_cfg *cfg, float *z, int N, int V, const int32_t *target, const uint8_t *n_alt,
                 const size_t *alt_at, const int32_t *ids, const float *logp, const float *rest, float scale,
                 hd_work *w, hd_loss *out, dl_error *err);
void hd_work_free(hd_work *w);

#endif
