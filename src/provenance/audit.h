/* audit: reads the usage log that `distil serve` keeps (one row per request) and scores each API
 * key, and each group of keys that look like one actor, for harvesting: collecting a model's
 * outputs at scale to distil it.
 *
 * Per key it measures traffic features (how often logprobs are asked, how much the prompts share
 * a template, how regular the arrivals are, ...), maps each to [0, 1] and takes their weighted mean
 * over the features it could measure: the harvest score. The weights and every threshold are one
 * table, dl_audit_model_default (audit_model.c). Keys are linked into groups when they share a
 * prompt template (MinHash + LSH over word 3-shingles), a client address, or fire in lock-step; a
 * group is scored on its pooled traffic, so a harvester spread over many quiet keys is caught even
 * when no single key crosses the threshold.
 *
 * A score is evidence for a human to weigh, not proof: it says a key's traffic resembles bulk
 * collection, not what the outputs were used for. */
#ifndef DISTIL_PROVENANCE_AUDIT_H
#define DISTIL_PROVENANCE_AUDIT_H

#include "base/base.h"
#include <stdio.h>

/* ---- the model: features, weights, thresholds (one place) ------------------------------------ */
enum {
    DL_AUDIT_F_LOGPROBS,   /* share of requests asking for logprobs */
    DL_AUDIT_F_TEMPLATE,   /* many distinct prompts cut from one template */
    DL_AUDIT_F_SATURATION, /* share of completions that stop at max_tokens */
    DL_AUDIT_F_REGULARITY, /* arrivals more regular than chance */
    DL_AUDIT_F_STEADINESS, /* activity spread evenly over the key's active period */
    DL_AUDIT_F_HOURS,      /* active around the clock (only for keys seen over days) */
    DL_AUDIT_F_VOLUME,     /* requests relative to the median key */
    DL_AUDIT_F_BREADTH,    /* content words rarely repeat: a sweep over topics */
    DL_AUDIT_F_SPREAD,     /* the traffic is spread over several keys (groups) */
    DL_AUDIT_NF
};

typedef struct dl_audit_model {
    const char *name[DL_AUDIT_NF];    /* short names used in JSON and the report */
    const char *meaning[DL_AUDIT_NF]; /* how the raw measure becomes a value in [0, 1] */
    double weight[DL_AUDIT_NF];
    double threshold;       /* score at or above which a key (or group) is flagged */
    double member_min;      /* a member of a flagged group is flagged only from this score up */
    int min_requests;       /* fewer requests: a key is scored but never flagged on its own */
    double similarity_full; /* mean Jaccard between a key's prompts that counts as fully templated */
    double volume_decades;  /* volume reaches 1 at 10^this times the median key's requests */
    int spread_full;        /* spread reaches 1 at this many keys */
    double hours_min_days;  /* the hours feature needs a key active over at least this many days */
    double hours_floor;     /* hours of the day active that count as 0 (a working day) */
    double link_jaccard;    /* template link: estimated Jaccard of two keys' template shingle sets */
    int address_max_keys;   /* an address shared by more keys is a proxy or NAT: no link */
    double lockstep_window; /* lock-step: partner request within this fraction of the mean gap */
    double lockstep_share;  /* ... for at least this share of both keys' requests */
    int sim_sample;         /* distinct prompts sampled per key for the similarity estimate */
} dl_audit_model;

extern const dl_audit_model dl_audit_model_default;

/* ---- the log: requests as the audit sees them ------------------------------------------------ */
/* One request (a row of serve's usage table). Strings may be NULL. */
typedef struct dl_audit_request {
    double time;            /* unix seconds */
    long long key_id;       /* 0: no key */
    const char *key_name;
    const char *client;     /* client address */
    const char *prompt_hash;
    const char *prompt;     /* NULL when the server ran with --no-log-prompts */
    int status;             /* HTTP status */
    int max_tokens, n, logprobs; /* -1: not given (logprobs >= 0: asked) */
    long long prompt_tokens, completion_tokens;
} dl_audit_request;

typedef struct dl_audit_log dl_audit_log;
dl_audit_log *dl_audit_log_new(dl_error *err);
void dl_audit_log_free(dl_audit_log *log);
/* Adds one request (strings are copied or digested). */
int dl_audit_log_add(dl_audit_log *log, const dl_audit_request *r, dl_error *err);
/* Adds the rows of a usage db (opened read-only; the server may be running) with
 * since <= time < until. Rows with malformed fields are counted and skipped. */
int dl_audit_read_db(dl_audit_log *log, const char *path, double since, double until, dl_error *err);

/* ---- the result ----------------------------------------------------------------------------- */
/* Raw measures of one key or one group; NAN where not measurable. */
typedef struct dl_audit_features {
    long long requests, prompt_tokens, completion_tokens;
    long long with_prompt;      /* requests that carried a prompt (its hash at least) */
    long long distinct_prompts; /* distinct prompt hashes among them */
    long long with_text;        /* distinct prompts whose text was logged */
    double distinct_ratio;   /* distinct prompts / requests with a prompt */
    double similarity;       /* MinHash estimate of the mean Jaccard between distinct prompts */
    double logprobs_share;
    double saturation;       /* completions with completion_tokens >= max_tokens * n / completed */
    double gap_cv;           /* std / mean of the gaps between requests */
    double burstiness;       /* (std - mean) / (std + mean) of the gaps: -1 periodic, 0 Poisson, 1 bursty */
    double steadiness;       /* share of equal slices of the active period (one per 2 requests) holding a request */
    double hours_active;     /* distinct hours of the day (UTC) with a request */
    double breadth;          /* distinct content words / content words used */
    double volume_ratio;     /* requests / the median key's requests */
    double first, last;      /* unix seconds */
    int keys;                /* 1 for a key, the members of a group */
} dl_audit_features;

enum { DL_AUDIT_NOT_FLAGGED = 0, DL_AUDIT_BY_KEY = 1, DL_AUDIT_BY_GROUP = 2 };

#define DL_AUDIT_NAME_MAX 64
typedef struct dl_audit_key {
    long long id;
    char name[DL_AUDIT_NAME_MAX]; /* printable (control bytes replaced) */
    int group;                    /* index into groups, -1: alone */
    dl_audit_features x;
    double value[DL_AUDIT_NF];    /* each feature in [0, 1]; NAN: not measured */
    double score;                 /* weighted mean of the measured values */
    int judged;                   /* enough requests to be flagged on its own */
    int template_linked;          /* its prompts' template matched another key's (a template link) */
    int flagged;                  /* DL_AUDIT_NOT_FLAGGED, _BY_KEY or _BY_GROUP */
} dl_audit_key;

typedef struct dl_audit_group {
    int *members, n_members;      /* indices into keys */
    dl_audit_features x;
    double value[DL_AUDIT_NF], score;
    int flagged;
    int template_links, address_links, lockstep_links; /* links found between its keys */
    double template_jaccard;      /* mean estimated Jaccard over its template links */
    char address[64];             /* one address its keys share ("" if none) */
} dl_audit_group;

typedef struct dl_audit_result {
    dl_audit_key *keys;           /* by score (the higher of own and group), highest first */
    int n_keys;
    dl_audit_group *groups;       /* groups of 2+ keys, by score */
    int n_groups;
    long long requests, skipped_rows;
    int prompts_logged;           /* some request carried its prompt text */
    int proxies;                  /* addresses shared by too many keys to count as links */
    double first, last;
    double median_requests;       /* of a key */
    const dl_audit_model *model;
} dl_audit_result;

int dl_audit_analyse(const dl_audit_log *log, dl_audit_result *res, dl_error *err);
void dl_audit_result_free(dl_audit_result *res);

/* Plain-words reasons for a key's or a group's score (the features that drove it), most
 * weighty first; returns how many were written (at most max), each NUL-terminated. */
#define DL_AUDIT_REASON_MAX 200
int dl_audit_reasons(const dl_audit_result *res, const dl_audit_features *x, const double value[DL_AUDIT_NF],
                     char out[][DL_AUDIT_REASON_MAX], int max);

/* ---- output ---------------------------------------------------------------------------------- */
/* One line per key (score, group, flag, counts, features), then the reasons of the flagged ones. */
int dl_audit_print_table(const dl_audit_result *res, const char *db_name, FILE *out);
/* One JSON object: summary, model, keys (features, values, score, reasons), groups. malloc'ed. */
char *dl_audit_json(const dl_audit_result *res, const char *db_name);
/* A markdown report: method, features, thresholds, flagged keys and groups with reasons, what the
 * score means; written atomically. */
int dl_audit_write_report(const dl_audit_result *res, const char *db_name, const char *path, dl_error *err);

/* ---- `distil audit` -------------------------------------------------------------------------- */
typedef struct dl_audit_opts {
    const char *db_path;
    double since, until;        /* -INFINITY / INFINITY: no bound */
    int json;                   /* JSON instead of the table on out */
    const char *report_path;    /* NULL: no report */
} dl_audit_opts;
int dl_audit_run(const dl_audit_opts *o, FILE *out, dl_error *err);
/* Unix seconds, or UTC "YYYY-MM-DD", "YYYY-MM-DDTHH:MM" or "YYYY-MM-DDTHH:MM:SS" (a trailing Z
 * is allowed, a space may replace the T). */
int dl_audit_parse_time(const char *text, double *t, dl_error *err);

#endif
