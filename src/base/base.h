/* base: errors, logging, progress, rng, timing, file io, json glue, UTF-8 boundaries.
 * Everything else in distil stands on this header; it depends on nothing but libc and jansson. */
#ifndef DISTIL_BASE_H
#define DISTIL_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ----------------------------------------------------------------------------
 * Library functions return 0 on success and -1 on failure, filling err->msg with what was
 * wrong and where. err may be NULL when the caller does not care. */
typedef struct dl_error { char msg[1024]; } dl_error;

int dl_fail(dl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes err->msg with "context: " (for example a file name), keeps the status. */
int dl_fail_ctx(dl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- logging ---------------------------------------------------------------------------- */
typedef enum { DL_LOG_QUIET = 0, DL_LOG_INFO = 1, DL_LOG_DEBUG = 2 } dl_log_level;
void dl_log_set_level(dl_log_level lv);
dl_log_level dl_log_get_level(void);
void dl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* info, to stderr */
void dl_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* debug, to stderr */

/* ---- timing ----------------------------------------------------------------------------- */
double dl_now(void); /* monotonic seconds */

/* ---- progress line -----------------------------------------------------------------------
 * On a TTY: one line rewritten in place. Otherwise: a plain log line at most every
 * `min_interval` seconds (and on the last step). */
typedef struct dl_progress {
    const char *label;
    long total, done;
    double t_start, t_last_print;
    double min_interval;
    int tty;
} dl_progress;
void dl_progress_start(dl_progress *p, const char *label, long total);
/* extra: free text appended to the line (for example "loss 3.21 tok/s 1234"). */
void dl_progress_update(dl_progress *p, long done, const char *extra);
void dl_progress_finish(dl_progress *p);

/* ---- rng ---------------------------------------------------------------------------------
 * xoshiro256** seeded with splitmix64. The state is four words so a trainer can save it. */
typedef struct dl_rng { uint64_t s[4]; } dl_rng;
void dl_rng_seed(dl_rng *r, uint64_t seed);
uint64_t dl_rng_u64(dl_rng *r);
float dl_rng_float(dl_rng *r);           /* uniform in [0, 1) */
uint64_t dl_rng_below(dl_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
float dl_rng_normal(dl_rng *r);          /* standard normal (Box-Muller) */

/* ---- file io ---------------------------------------------------------------------------- */
/* Reads a whole file; *out is malloc'ed and NUL-terminated (the NUL is not counted). */
int dl_read_file(const char *path, char **out, size_t *len, dl_error *err);
/* Writes path atomically: temp file in the same folder, fsync, rename, fsync folder. */
int dl_write_file_atomic(const char *path, const void *data, size_t len, dl_error *err);

/* The same, streamed: bytes go to PATH.tmp.PID; commit fsyncs, renames into place and fsyncs
 * the folder; abort (or a failed commit) removes the temp file. A reader never sees a partly
 * written file under the real name. */
typedef struct dl_atomic_file {
    int fd;
    int write_errno; /* first failed write, reported by commit */
    char path[4096], tmp[4200];
} dl_atomic_file;
int dl_atomic_open(dl_atomic_file *f, const char *path, dl_error *err);
/* Appends (or, with pwrite, writes at an offset); on failure returns -1 and commit will fail. */
int dl_atomic_write(dl_atomic_file *f, const void *data, size_t len);
int dl_atomic_pwrite(dl_atomic_file *f, const void *data, size_t len, uint64_t offset);
int dl_atomic_commit(dl_atomic_file *f, dl_error *err);
void dl_atomic_abort(dl_atomic_file *f); /* safe to call twice, or after commit */
int dl_mkdir_p(const char *path, dl_error *err);
int dl_fsync_dir(const char *path, dl_error *err);
int dl_path_exists(const char *path);
int dl_is_dir(const char *path);
/* Removes a folder and everything under it (no symlink following). */
int dl_rm_rf(const char *path, dl_error *err);
/* Joins a and b with one '/'; out must hold n bytes; fails if it would not fit. */
int dl_path_join(char *out, size_t n, const char *a, const char *b, dl_error *err);
int dl_copy_file(const char *src, const char *dst, dl_error *err);

typedef struct dl_mmap { void *data; size_t len; } dl_mmap;
/* Read-only mapping of a whole file (an empty file maps to data=NULL, len=0). */
int dl_mmap_open(dl_mmap *m, const char *path, dl_error *err);
void dl_mmap_close(dl_mmap *m);

/* ---- growable buffers ------------------------------------------------------------------- */
typedef struct dl_ivec { int32_t *data; size_t len, cap; } dl_ivec;
int dl_ivec_push(dl_ivec *v, int32_t x);
int dl_ivec_reserve(dl_ivec *v, size_t cap);
void dl_ivec_free(dl_ivec *v);

typedef struct dl_buf { char *data; size_t len, cap; } dl_buf;
int dl_buf_append(dl_buf *b, const void *p, size_t n);
int dl_buf_printf(dl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dl_buf_free(dl_buf *b);

/* ---- UTF-8 (utf8.c) ---------------------------------------------------------------------- */
/* Length (1..4) of the valid UTF-8 character at s[0..n), RFC 3629 (no overlong forms, no
 * surrogates, nothing past U+10FFFF); 0 when it is invalid or cut short by n. */
size_t dl_utf8_char_len(const char *s, size_t n);

/* One allocation carved into n float arrays in order: *views[i] points at sizes[i] floats
 * (views[i] may be NULL to leave a region unnamed). Returns the block, to free(), and its size in
 * floats in *total (may be NULL); NULL when the sizes overflow or memory runs out. */
float *dl_alloc_floats(float **const *views, const size_t *sizes, int n, size_t *total);

/* Checked size arithmetic: return -1 on overflow. */
int dl_mul_size(size_t a, size_t b, size_t *out);
int dl_add_size(size_t a, size_t b, size_t *out);

/* ---- json glue (jansson) ------------------------------------------------------------------ */
struct json_t;
/* Parses a JSON file; returns NULL and fills err (with line/column) on failure. */
struct json_t *dl_json_load(const char *path, dl_error *err);
/* Typed getters that fail with "KEY: missing" / "KEY: expected an integer" messages. */
int dl_json_get_int(struct json_t *obj, const char *key, long long *out, dl_error *err);
int dl_json_get_double(struct json_t *obj, const char *key, double *out, dl_error *err);
int dl_json_get_bool(struct json_t *obj, const char *key, int *out, dl_error *err);
/* "an object", "an array", "a string", "an integer", "a number", "a boolean" or "null", for
 * messages like "'x' must be a string, got an integer"; "nothing" for NULL (an absent key). */
const char *dl_json_type_name(const struct json_t *v);
/* Atomic write of a JSON value, pretty-printed with sorted keys off (insertion order). */
int dl_json_save(struct json_t *v, const char *path, dl_error *err);

/* ---- threads ------------------------------------------------------------------------------ */
/* Sets OpenMP and OpenBLAS thread counts (n <= 0: leave defaults). */
void dl_set_threads(int n);
int dl_get_threads(void);

#endif
