/* provenance: the keyed watermark `distil serve` puts into what it samples, and the tests that
 * look for it in a text, in a model's predictions, or in what an API generates.
 *
 * The watermark (a keyed green list, as Kirchenbauer et al. 2023, with a keyed PRF):
 *   key16   = BLAKE2b-128 of the key file's bytes (crypto_generichash, no key), so any non-empty
 *             file is a key; only key16 is kept in memory, and it is never logged or sent.
 *   h(c, t) = SipHash-2-4 with key16 (crypto_shorthash) of the 4(H+1) bytes
 *             LE32(c_1) .. LE32(c_H) LE32(t), read as a little-endian uint64;
 *             c = the H tokens right before t, oldest first (prompt tokens included).
 *   t is green after c  when  h(c, t) < floor(gamma * 2^64).
 * Sampling adds delta to the logits of the green tokens before temperature, top-k and top-p, so
 * greedy decoding sees the bias too. A position with fewer than H tokens before it is left
 * unwatermarked, and detection never scores it.
 *
 * Detection scores (context, token) pairs: each distinct pair once (a repeat carries no new
 * evidence, and counting it would break the independence the test rests on), and optionally not
 * the pairs a prompt already holds (a copy of the prompt says nothing about the sampler). With n
 * pairs scored, g of them green: z = (g - gamma n) / sqrt(n gamma (1 - gamma)) and the exact
 * one-sided binomial p-value P[X >= g], X ~ Bin(n, gamma): the probability of at least g green
 * pairs for a text or model that never saw the key. */
#ifndef DISTIL_PROVENANCE_H
#define DISTIL_PROVENANCE_H

#include "base/base.h"
#include "harvest/harvest.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* ---- the watermark (watermark.c) ------------------------------------------------------------ */
#define DL_WM_KEY_BYTES 16
#define DL_WM_MAX_CONTEXT 8
#define DL_WM_MAX_KEY_FILE (1 << 20) /* bytes: a key file is a secret, not a data set */

typedef struct dl_wm {
    unsigned char key[DL_WM_KEY_BYTES]; /* key16 above */
    double gamma;                       /* share of green pairs, in (0, 1) (default 0.25) */
    float delta;                        /* logit bias of green tokens, >= 0 (default 2) */
    int H;                              /* context tokens, 1..DL_WM_MAX_CONTEXT (default 1) */
    uint64_t threshold;                 /* floor(gamma * 2^64) */
} dl_wm;

/* gamma in (0, 1), delta finite and >= 0, H in 1..DL_WM_MAX_CONTEXT. */
int dl_wm_check(double gamma, double delta, int H, dl_error *err);
/* A watermark from secret bytes (n > 0). */
int dl_wm_init(dl_wm *wm, const void *secret, size_t n, double gamma, double delta, int H, dl_error *err);
/* A watermark from a key file: refused when unreadable, empty or over DL_WM_MAX_KEY_FILE bytes. */
int dl_wm_load(dl_wm *wm, const char *key_file, double gamma, double delta, int H, dl_error *err);
void dl_wm_wipe(dl_wm *wm);
/* 1 when t is green after the H tokens ctx[0..H). */
int dl_wm_green(const dl_wm *wm, const int32_t *ctx, int32_t t);
/* logits (V) += delta on every id green after ctx[0..H): V hashes. */
void dl_wm_bias(const dl_wm *wm, const int32_t *ctx, float *logits, int V);

/* ---- the binomial test (binom.c) ------------------------------------------------------------- */
/* ln P[X >= g], X ~ Bin(n, gamma), summed in log space so it stays accurate far below 1e-308:
 * 0 when g <= 0, -inf when g > n. */
double dl_binom_log_sf(long g, long n, double gamma);
/* (g - gamma n) / sqrt(n gamma (1 - gamma)); 0 when n = 0. */
double dl_binom_z(long g, long n, double gamma);

/* ---- scoring pairs (score.c) ------------------------------------------------------------------ */
typedef struct dl_wm_stats {
    long tokens;     /* tokens (or predictions) looked at */
    long no_context; /* fewer than H tokens before them: not scored */
    long repeats;    /* a pair scored already: not scored again */
    long excluded;   /* a pair the prompt (or, for a model, the text) holds: not scored */
    long n, green;   /* pairs scored, and the green ones among them */
    double gamma;
    double z;        /* 0 when n = 0 */
    double log_p;    /* ln of the p-value; 0 (p = 1) when n = 0 */
    double p;        /* exp(log_p); 0 when that underflows (log_p still holds it) */
} dl_wm_stats;

typedef struct dl_wm_scorer dl_wm_scorer;
/* A scorer keeps the pairs it has seen, so one scorer over many sequences scores each distinct
 * pair once across all of them. wm is not copied. NULL when out of memory. */
dl_wm_scorer *dl_wm_scorer_new(const dl_wm *wm);
void dl_wm_scorer_free(dl_wm_scorer *s);
/* Looks at positions i in [0, n): the pair (ctx[i-H .. i-1], tok[i]); i < H, or tok[i] < 0,
 * counts as no context. A pair whose H+1 ids occur consecutively in prompt[0..n_prompt) is
 * excluded (prompt may be NULL). For a text tok == ctx; for a model's predictions tok[i] is
 * its guess of ctx[i] from ctx[0..i). */
int dl_wm_score(dl_wm_scorer *s, const int32_t *ctx, const int32_t *tok, size_t n, const int32_t *prompt,
                size_t n_prompt, dl_error *err);
void dl_wm_scorer_stats(const dl_wm_scorer *s, dl_wm_stats *out);

/* ---- detectors (detect_text.c, detect_model.c, detect_api.c) --------------------------------- */
typedef enum { DL_DETECT_TEXT, DL_DETECT_MODEL, DL_DETECT_API } dl_detect_mode;

typedef struct dl_detect_cfg {
    const char *key_file;
    double gamma;            /* as the server's --wm-gamma (default 0.25) */
    int context;             /* as the server's --wm-context (default 1) */
    double delta;            /* the server's --wm-delta, for the report only (< 0: not given) */
    const char *tokenizer;   /* text, api: the watermarking server's tokenizer.json; model: checked
                              * against the suspect's when given */
    const char *input;       /* text: the file ("-" = stdin); model: the text the suspect reads */
    const char *prompt_file; /* text: pairs it holds are excluded (NULL: none) */
    const char *suspect;     /* model: the suspect's model folder */
    int unmarked_text;       /* model: the text was not written with the key, so the pairs it holds
                              * are scored too (more pairs; wrong for watermarked text) */
    int batch;               /* model: windows per forward (0: as memory allows) */
    dl_harvest_opts harvest; /* api: endpoint, key, prompts, max_tokens, temperature, ... */
    const char *harvest_out; /* api: keep the completions here (resumable); NULL: a temp file */
} dl_detect_cfg;

/* gamma 0.25, context 1, delta not given, the harvest defaults. */
void dl_detect_cfg_default(dl_detect_cfg *cfg);

typedef struct dl_detect_result {
    dl_detect_mode mode;
    dl_wm_stats st;
    long sequences;   /* texts scored: 1, the suspect's windows, or the API's completions */
    long failed;      /* api: prompts that got no completion */
    int vocab;        /* the tokenizer's (or the suspect's) vocabulary */
    char tokenizer[512];
} dl_detect_result;

/* detect text: the text (valid UTF-8, else an error naming the first bad byte) is tokenized
 * alone, as plain text; its first H tokens serve only as context. */
int dl_detect_text(const dl_detect_cfg *cfg, dl_detect_result *res, dl_error *err);

/* detect model (reading mode): the suspect reads the text (its own tokenizer.json) in windows of
 * its context length, `batch` windows per forward; at every position its top-1 prediction p of
 * the next token is scored as the pair (the H text tokens before that token, p). A pair that
 * also occurs in the text as (context, next token) is not scored (predicting it may only copy
 * the text, and in watermarked text such pairs are green more often), unless cfg->unmarked_text
 * says the text was written without the key (ordinary text of the domain): then its pairs are
 * independent of the key and excluding them would only throw away the commonest pairs. */
int dl_detect_model(const dl_detect_cfg *cfg, dl_detect_result *res, dl_error *err);
/* The suspect's top-1 guesses: windows ids[0, T), ids[T, 2T), ... are read B at a time, and
 * pred[i] (i >= 1) is its argmax for ids[i] from ids[w T .. i - 1], w = (i - 1) / T (the window
 * holding ids[i - 1]); pred[0] = -1. The model's training buffers are (re)sized for (B, T). */
int dl_detect_predict(dl_model *m, const int32_t *ids, size_t n, int B, int T, int32_t *pred, dl_error *err);

/* detect api: the prompts go to the suspect's OpenAI-compatible API through dl_harvest_run; each
 * completion is tokenized alone and scored, pairs de-duplicated across all completions, pairs its
 * own prompt holds excluded. Chat prompts: their messages' contents are the prompt. */
int dl_detect_api(const dl_detect_cfg *cfg, dl_detect_result *res, dl_error *err);

/* ---- output (detect_report.c) ------------------------------------------------------------------ */
/* Human lines, or one JSON object (json), on out. */
void dl_detect_print(FILE *out, const dl_detect_cfg *cfg, const dl_detect_result *res, int json);
/* A short markdown report (method, parameters, figures, what the p-value means and what it does
 * not), written atomically. */
int dl_detect_report(const char *path, const dl_detect_cfg *cfg, const dl_detect_result *res, dl_error *err);
/* "1.23e-45" from a natural log, also below the smallest double. */
void dl_format_p(double log_p, char *out, size_t n);

#endif
