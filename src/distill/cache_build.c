/* distil teacher-cache: run the teacher over every window of a token file and store, per
 * position, its top-k ids and log-probabilities and the leftover mass (layout in distill.h).
 * Rows go straight to their place in a temp file (pwrite), which is fsynced and renamed at the
 * end, so a cache under its real name is always complete. */
#include "distill.h"
#include "formats/safetensors.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dl_tcache_build_opts_default(dl_tcache_build_opts *o) {
    *o = (dl_tcache_build_opts){.top_k = 32, .seq_len = 256, .batch = 8};
}

typedef struct builder {
    const dl_tcache_build_opts *o;
    dl_model teacher;
    dl_tokfile tokens;
    char data_path[4096], tmp[4200];
    int fd, V; /* V: the tokenizer's ids, the cache's vocabulary */
    uint64_t tok_hash, n_rows;
    size_t per_row_ids; /* bytes of one row's ids */
} builder;

static void put32(unsigned char *p, uint32_t x) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(x >> (8 * i));
}
static void put64(unsigned char *p, uint64_t x) {
    put32(p, (uint32_t)x);
    put32(p + 4, (uint32_t)(x >> 32));
}

static int write_at(builder *b, const void *data, size_t len, uint64_t off, dl_error *err) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = pwrite(b->fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return dl_fail(err, "%s: write failed: %s", b->tmp, strerror(errno));
        p += w, off += (uint64_t)w, len -= (size_t)w;
    }
    return 0;
}

static int check_opts(const dl_tcache_build_opts *o, dl_error *err) {
    if (!o->teacher || !o->data || !o->out) return dl_fail(err, "teacher-cache: teacher, data and out are required");
    if (o->top_k < 1) return dl_fail(err, "teacher-cache: --top-k must be positive (got %d)", o->top_k);
    if (o->seq_len < 1) return dl_fail(err, "teacher-cache: --seq-len must be positive (got %d)", o->seq_len);
    if (o->batch < 1) return dl_fail(err, "teacher-cache: --batch must be positive (got %d)", o->batch);
    if (o->threads < 0) return dl_fail(err, "teacher-cache: --threads must be >= 0 (got %d)", o->threads);
    return 0;
}

/* DATA is a token file or a folder with train.bin; a tokenizer.json beside the tokens must be
 * the teacher's. */
static int open_data(builder *b, dl_error *err) {
    const char *d = b->o->data;
    char tok[4096];
    if (dl_is_dir(d)) {
        if (dl_path_join(b->data_path, sizeof b->data_path, d, "train.bin", err) ||
            dl_path_join(tok, sizeof tok, d, "tokenizer.json", err))
            return -1;
    } else {
        snprintf(b->data_path, sizeof b->data_path, "%s", d);
        const char *slash = strrchr(d, '/');
        int n = slash ? (int)(slash - d) : 1;
        snprintf(tok, sizeof tok, "%.*s/tokenizer.json", n, slash ? d : ".");
    }
    int vocab;
    if (dl_path_exists(tok) && dl_teacher_check_tokenizer(b->o->teacher, tok, &vocab, err)) return -1;
    if (dl_tokfile_open(&b->tokens, b->data_path, err)) return -1;
    if (b->tokens.vocab_size > (uint32_t)b->V)
        return dl_fail(err, "%s was made with a vocabulary of %u ids, more than the teacher's tokenizer has (%d)",
                       b->data_path, b->tokens.vocab_size, b->V);
    return 0;
}

static int setup(builder *b, dl_error *err) {
    const dl_tcache_build_opts *o = b->o;
    char tp[4096];
    if (dl_path_join(tp, sizeof tp, o->teacher, "tokenizer.json", err)) return -1;
    if (!dl_path_exists(tp))
        return dl_fail(err, "teacher %s has no tokenizer.json; the cache records which tokenizer its ids belong to",
                       o->teacher);
    if (dl_tok_fingerprint_file(tp, &b->tok_hash, &b->V, err)) return -1;
    if (dl_model_load(&b->teacher, o->teacher, err)) return -1;
    if (b->teacher.cfg.V < b->V)
        return dl_fail(err, "the teacher's vocab_size %d is smaller than its tokenizer's %d tokens", b->teacher.cfg.V,
                       b->V);
    if (o->top_k > b->V) return dl_fail(err, "--top-k %d exceeds the vocabulary (%d ids)", o->top_k, b->V);
    if (o->seq_len > b->teacher.cfg.max_T)
        return dl_fail(err, "--seq-len %d exceeds the teacher's max_position_embeddings %d", o->seq_len,
                       b->teacher.cfg.max_T);
    if (open_data(b, err)) return -1;
    if (b->tokens.n_tokens < (uint64_t)o->seq_len + 1)
        return dl_fail(err, "%s holds %" PRIu64 " tokens, fewer than one window of --seq-len + 1 = %d", b->data_path,
                       b->tokens.n_tokens, o->seq_len + 1);
    b->n_rows = (b->tokens.n_tokens - 1) / (uint64_t)o->seq_len * (uint64_t)o->seq_len;
    return dl_model_alloc_train(&b->teacher, o->batch, o->seq_len, err);
}

static int write_header(builder *b, dl_error *err) {
    unsigned char h[DL_TCACHE_HEADER] = {'D', 'S', 'T', 'L', 'T', 'K', 'C', 0};
    put32(h + 8, 1);
    put32(h + 12, (uint32_t)b->o->top_k);
    put32(h + 16, (uint32_t)b->V);
    put32(h + 20, b->V <= 65536 ? 2u : 4u);
    put32(h + 24, (uint32_t)b->o->seq_len);
    put64(h + 32, b->n_rows);
    put64(h + 40, b->tok_hash);
    put64(h + 48, dl_tokfile_fingerprint(&b->tokens));
    put64(h + 56, b->tokens.n_tokens);
    return write_at(b, h, sizeof h, 0, err);
}

typedef struct chunk { unsigned char *ids, *logp, *rest; int32_t *in; } chunk;

// the top-k of rows (n,Vt) of teacher logits, packed little-endian into c
static int pack_rows(builder *b, chunk *c, const float *logits, int n) {
    int K = b->o->top_k, V = b->V, Vt = b->teacher.cfg.V, idb = b->V <= 65536 ? 2 : 4, failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *scratch = malloc((size_t)V * sizeof(float));
        int32_t *ids = malloc((size_t)K * sizeof(int32_t));
        uint16_t *lp = malloc((size_t)K * sizeof(uint16_t));
        if (!scratch || !ids || !lp) failed = 1;
#pragma omp for schedule(static)
        for (int r = 0; r < n; r++) {
            if (!scratch || !ids || !lp) continue;
            float rest;
            dl_topk_row(logits + (size_t)r * Vt, V, K, scratch, ids, lp, &rest);
            for (int k = 0; k < K; k++) {
                unsigned char *pi = c->ids + ((size_t)r * K + k) * idb, *pl = c->logp + ((size_t)r * K + k) * 2;
                for (int i = 0; i < idb; i++) pi[i] = (unsigned char)((uint32_t)ids[k] >> (8 * i));
                pl[0] = (unsigned char)lp[k], pl[1] = (unsigned char)(lp[k] >> 8);
            }
            uint32_t bits;
            memcpy(&bits, &rest, sizeof bits);
            put32(c->rest + (size_t)r * 4, bits);
        }
        free(scratch), free(ids), free(lp);
    }
    return failed ? -1 : 0;
}

// windows w0 .. w0+nb-1 -> rows w0*T ..
static int do_windows(builder *b, chunk *c, uint64_t w0, int nb, dl_error *err) {
    int T = b->o->seq_len, K = b->o->top_k, idb = b->V <= 65536 ? 2 : 4;
    for (int i = 0; i < nb; i++)
        for (int t = 0; t < T; t++) c->in[i * T + t] = dl_tokfile_get(&b->tokens, (w0 + (uint64_t)i) * T + (uint64_t)t);
    dl_model_forward(&b->teacher, c->in, NULL, nb, T);
    int n = nb * T;
    if (pack_rows(b, c, b->teacher.logits, n)) return dl_fail(err, "out of memory");
    uint64_t row = w0 * (uint64_t)T, ids_at = DL_TCACHE_HEADER, logp_at = ids_at + b->n_rows * K * idb,
             rest_at = logp_at + b->n_rows * K * 2;
    if (write_at(b, c->ids, (size_t)n * K * idb, ids_at + row * K * idb, err) ||
        write_at(b, c->logp, (size_t)n * K * 2, logp_at + row * K * 2, err) ||
        write_at(b, c->rest, (size_t)n * 4, rest_at + row * 4, err))
        return -1;
    return 0;
}

static int fill(builder *b, dl_error *err) {
    int T = b->o->seq_len, B = b->o->batch, K = b->o->top_k;
    size_t rows = (size_t)B * T;
    chunk c = {malloc(rows * K * 4), malloc(rows * K * 2), malloc(rows * 4), malloc(rows * sizeof(int32_t))};
    int rc = c.ids && c.logp && c.rest && c.in ? 0 : dl_fail(err, "out of memory");
    uint64_t n_windows = b->n_rows / (uint64_t)T;
    dl_progress prog;
    dl_progress_start(&prog, "teacher-cache", (long)n_windows);
    for (uint64_t w = 0; w < n_windows && rc == 0; w += (uint64_t)B) {
        int nb = n_windows - w < (uint64_t)B ? (int)(n_windows - w) : B;
        rc = do_windows(b, &c, w, nb, err);
        dl_progress_update(&prog, (long)(w + (uint64_t)nb), NULL);
    }
    dl_progress_finish(&prog);
    free(c.ids), free(c.logp), free(c.rest), free(c.in);
    return rc;
}

static int write_cache(builder *b, dl_error *err) {
    snprintf(b->tmp, sizeof b->tmp, "%s.tmp.%d", b->o->out, (int)getpid());
    b->fd = open(b->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b->fd < 0) return dl_fail(err, "%s: cannot create: %s", b->tmp, strerror(errno));
    int rc = write_header(b, err);
    if (rc == 0) rc = fill(b, err);
    if (rc == 0 && fsync(b->fd) != 0) rc = dl_fail(err, "%s: fsync failed: %s", b->tmp, strerror(errno));
    if (close(b->fd) != 0 && rc == 0) rc = dl_fail(err, "%s: close failed: %s", b->tmp, strerror(errno));
    b->fd = -1;
    if (rc == 0 && rename(b->tmp, b->o->out) != 0)
        rc = dl_fail(err, "%s: rename failed: %s", b->o->out, strerror(errno));
    if (rc) {
        unlink(b->tmp);
        return -1;
    }
    char dir[4096];
    const char *slash = strrchr(b->o->out, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - b->o->out) : 1, slash ? b->o->out : ".");
    return dl_fsync_dir(dir[0] ? dir : "/", err);
}

int dl_tcache_build(const dl_tcache_build_opts *o, dl_error *err) {
    if (check_opts(o, err)) return -1;
    if (o->threads > 0) dl_set_threads(o->threads);
    builder b;
    memset(&b, 0, sizeof b);
    b.o = o;
    b.fd = -1;
    double t0 = dl_now();
    int rc = setup(&b, err);
    if (rc == 0) rc = write_cache(&b, err);
    if (rc == 0)
        dl_log("teacher cache %s: %" PRIu64 " positions, top-%d, %zu bytes per token, %.1f s", o->out, b.n_rows,
               o->top_k, (size_t)o->top_k * (b.V <= 65536 ? 4 : 6) + 4, dl_now() - t0);
    dl_tokfile_close(&b.tokens);
    dl_model_free(&b.teacher);
    return rc;
}
