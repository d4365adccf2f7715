/* audit internals: the in-memory log, prompt digests, measures and links (audit*.c only). */
#ifndef DISTIL_PROVENANCE_AUDIT_INTERNAL_H
#define DISTIL_PROVENANCE_AUDIT_INTERNAL_H

#include "audit.h"
#include <stdint.h>

#define AUDIT_SIG 64            /* MinHash slots */
#define AUDIT_KEEP 64           /* smallest shingle (and word) hashes kept per distinct prompt */
#define AUDIT_TEXT_MAX 65536    /* bytes of a prompt that are read */
#define AUDIT_BREADTH_PROMPTS 256 /* distinct prompts a key's breadth is measured on */
#define AUDIT_SLICES_MAX 4096   /* steadiness: slices of the active period, at most */

/* One request, with its key, client and prompt as indices into the log's tables (-1: none). */
typedef struct audit_row {
    double t;
    int key, client, prompt;
    int status, max_tokens, n, logprobs;
    long long pt, ct;
} audit_row;

/* A distinct prompt (by its hash). Its text, when logged, is kept only as the sorted, smallest
 * AUDIT_KEEP hashes of its word 3-shingles and of its words (a bottom-k sketch of each set). */
typedef struct audit_prompt {
    uint64_t id;
    size_t sh_off, word_off;    /* into pool */
    int n_sh, n_words, has_text;
} audit_prompt;

typedef struct audit_keyrec {
    long long id;
    char name[DL_AUDIT_NAME_MAX];
} audit_keyrec;

/* uint64 -> int, open addressing (ids are mixed hashes, so probing spreads) */
typedef struct audit_map {
    uint64_t *k;
    int32_t *v;
    size_t cap, len;
} audit_map;

struct dl_audit_log {
    audit_row *rows;
    size_t n_rows, cap_rows;
    audit_keyrec *keys;
    int n_keys, cap_keys;
    audit_map key_map;
    char **clients;
    int n_clients, cap_clients;
    audit_map client_map;
    audit_prompt *prompts;
    int n_prompts, cap_prompts;
    audit_map prompt_map;
    uint32_t *pool;
    size_t pool_len, pool_cap;
    long long skipped;
};

/* audit_text.c */
uint64_t audit_mix(uint64_t x);
uint64_t audit_hash_bytes(const void *p, size_t n, uint64_t seed);
/* Words (lowercased runs of letters, digits and non-ASCII bytes, the chat template's role lines
 * left out) -> sorted unique smallest hashes of 3-word shingles and of words (at most
 * AUDIT_KEEP each) in sh / words; counts in *n_sh, *n_words. -1: out of memory. */
int audit_digest_text(const char *text, uint32_t sh[AUDIT_KEEP], int *n_sh, uint32_t words[AUDIT_KEEP], int *n_words);
/* MinHash signature of a set of 32-bit hashes (n > 0). */
void audit_minhash(const uint32_t *set, int n, uint32_t sig[AUDIT_SIG]);
/* Share of equal slots: the estimated Jaccard of the two sets. */
double audit_sig_jaccard(const uint32_t *a, const uint32_t *b);

/* audit_measure.c: raw features of a set of rows (indices into log->rows, sorted by time). */
int audit_measure(const dl_audit_log *L, const int *rows, int n, const dl_audit_model *m, dl_audit_features *x);
/* The shingles found in at least half (and at least 2) of the distinct prompts of the rows, as a
 * MinHash signature; *ok = 0 when there are fewer than 3 such shingles. */
int audit_template_sig(const dl_audit_log *L, const int *rows, int n, uint32_t sig[AUDIT_SIG], int *ok);

/* audit_model.c: raw features -> values in [0, 1] (NAN: not measured) and the score. */
void audit_values(const dl_audit_model *m, const dl_audit_features *x, double value[DL_AUDIT_NF]);
double audit_score(const dl_audit_model *m, const double value[DL_AUDIT_NF]);

/* audit_link.c: links keys into groups. rows_of[k] / n_rows_of[k]: the rows of key k, by time.
 * group_of[k] receives a group number (keys alone get their own); links are summed per group. */
typedef struct audit_links {
    int *root;                  /* per key: the index of its group's root key */
    int *template_links, *address_links, *lockstep_links; /* per root */
    double *template_jaccard_sum;
    int *shared_address;        /* per root: a client index its keys share, -1 none */
    int *template_key;          /* per key: 1 when a template link joined it to another key */
    int proxies;
} audit_links;
int audit_link_keys(const dl_audit_log *L, int *const *rows_of, const int *n_rows_of, const dl_audit_model *m,
                    audit_links *out, dl_error *err);
void audit_links_free(audit_links *l);

/* audit_log.c: src as valid UTF-8 without control characters ('?' instead), cut to fit n bytes */
void audit_printable(char *dst, size_t n, const char *src);

/* audit_format.c: pieces shared by the table, the JSON and the report */
void audit_format_time(double t, char *out, size_t n);      /* "YYYY-MM-DD HH:MM:SS" UTC, or "-" */
void audit_group_name(int g, char *out, size_t n);          /* "g1", "g2", ...; "-" for -1 */
const char *audit_flag_word(int flagged);                   /* "key", "group" or "-" */
/* The feature columns of the table and the report, in their order: distinct, similarity,
 * logprobs, saturation, regularity, steadiness, breadth. */
#define AUDIT_N_COLUMNS 7
void audit_key_columns(const dl_audit_key *k, double v[AUDIT_N_COLUMNS]);
/* "linked by 9 shared templates (Jaccard 0.95), 2 shared addresses (10.0.0.7), 0 lock-step" */
void audit_group_links(const dl_audit_group *g, char *out, size_t n);
/* The one-paragraph summary both outputs start with. */
void audit_summary_line(const dl_audit_result *res, const char *db_name, dl_buf *b);

#endif
