/* Reading the top-k teacher cache (layout in distill.h). Everything in the file is checked when
 * it is opened, so readers index the mapping without further checks. */
#include "distill.h"
#include "formats/safetensors.h"
#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char MAGIC[8] = {'D', 'S', 'T', 'L', 'T', 'K', 'C', 0};

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int32_t id_at(const dl_tcache *c, size_t i) {
    const unsigned char *p = c->ids + i * (size_t)c->id_bytes;
    return c->id_bytes == 2 ? (int32_t)rd16(p) : (int32_t)rd32(p);
}

static float rest_at(const dl_tcache *c, uint64_t row) {
    uint32_t bits = rd32(c->rest + row * 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int parse_header(dl_tcache *c, const unsigned char *h, size_t len, dl_error *err) {
    if (len < DL_TCACHE_HEADER)
        return dl_fail(err, "%zu bytes: too short for a teacher cache header (%d bytes)", len, DL_TCACHE_HEADER);
    if (memcmp(h, MAGIC, 8) != 0) return dl_fail(err, "not a teacher cache (bad magic; make one with distil teacher-cache)");
    if (rd32(h + 8) != 1) return dl_fail(err, "version %u is not supported (this build reads 1)", rd32(h + 8));
    uint32_t K = rd32(h + 12), V = rd32(h + 16), idb = rd32(h + 20), T = rd32(h + 24);
    if (V < 1 || V > (1u << 30)) return dl_fail(err, "vocabulary size %u is out of range", V);
    if (K < 1 || K > V) return dl_fail(err, "K = %u must be in [1, vocabulary size %u]", K, V);
    if (idb != (V <= 65536 ? 2u : 4u))
        return dl_fail(err, "id width %u bytes does not fit the vocabulary size %u", idb, V);
    if (T < 1 || T > (1u << 24)) return dl_fail(err, "seq_len %u is out of range", T);
    c->K = (int)K, c->vocab = (int)V, c->id_bytes = (int)idb, c->seq_len = (int)T;
    c->n_rows = rd64(h + 32);
    c->tok_hash = rd64(h + 40);
    c->data_hash = rd64(h + 48);
    c->n_tokens = rd64(h + 56);
    uint64_t want = c->n_tokens > 0 ? (c->n_tokens - 1) / T * T : 0;
    if (c->n_rows != want)
        return dl_fail(err, "%" PRIu64 " rows, but a token file of %" PRIu64 " tokens in windows of %u has %" PRIu64,
                       c->n_rows, c->n_tokens, T, want);
    return 0;
}

static int check_size(dl_tcache *c, size_t len, dl_error *err) {
    size_t per = (size_t)c->K * (size_t)(c->id_bytes + 2) + 4, body, total;
    if (c->n_rows > SIZE_MAX || dl_mul_size((size_t)c->n_rows, per, &body) ||
        dl_add_size(body, DL_TCACHE_HEADER, &total))
        return dl_fail(err, "%" PRIu64 " rows of K = %d overflow", c->n_rows, c->K);
    if (total != len)
        return dl_fail(err, "the file has %zu bytes but its header describes %zu (truncated or damaged)", len, total);
    const unsigned char *base = c->map.data;
    c->ids = base + DL_TCACHE_HEADER;
    c->logp = c->ids + (size_t)c->n_rows * c->K * c->id_bytes;
    c->rest = c->logp + (size_t)c->n_rows * c->K * 2;
    return 0;
}

static int check_rows(const dl_tcache *c, dl_error *err) {
    for (uint64_t r = 0; r < c->n_rows; r++) {
        for (int k = 0; k < c->K; k++) {
            size_t i = (size_t)r * c->K + (size_t)k;
            int32_t id = id_at(c, i);
            if (id < 0 || id >= c->vocab)
                return dl_fail(err, "row %" PRIu64 " slot %d: id %d is outside [0, %d)", r, k, (int)id, c->vocab);
            if (!isfinite(dl_f16_to_f32(rd16(c->logp + 2 * i))))
                return dl_fail(err, "row %" PRIu64 " slot %d: the log-probability is not finite", r, k);
        }
        float rest = rest_at(c, r);
        if (!(rest >= 0.0f && rest <= 1.0f))
            return dl_fail(err, "row %" PRIu64 ": leftover mass %g is outside [0, 1]", r, (double)rest);
    }
    return 0;
}

int dl_tcache_open(dl_tcache *c, const char *path, dl_error *err) {
    memset(c, 0, sizeof *c);
    if (dl_mmap_open(&c->map, path, err)) return dl_fail_ctx(err, "teacher cache");
    const unsigned char *h = c->map.data;
    if (parse_header(c, h, c->map.len, err) || check_size(c, c->map.len, err) || check_rows(c, err)) {
        dl_tcache_close(c);
        return dl_fail_ctx(err, "teacher cache %s", path);
    }
    return 0;
}

void dl_tcache_close(dl_tcache *c) {
    dl_mmap_close(&c->map);
    memset(c, 0, sizeof *c);
}

void dl_tcache_read(const dl_tcache *c, uint64_t row, int n, int32_t *ids, float *logp, float *rest) {
    size_t first = (size_t)row * (size_t)c->K, count = (size_t)n * (size_t)c->K;
    for (size_t i = 0; i < count; i++) {
        ids[i] = id_at(c, first + i);
        logp[i] = dl_f16_to_f32(rd16(c->logp + 2 * (first + i)));
    }
    for (int r = 0; r < n; r++) rest[r] = rest_at(c, row + (uint64_t)r);
}

size_t dl_tcache_bytes_per_token(const dl_tcache *c) { return (size_t)c->K * (size_t)(c->id_bytes + 2) + 4; }

int dl_tcache_check_run(const dl_tcache *c, uint64_t tok_hash, const dl_tokfile *train, uint64_t data_hash, int T,
                        int student_V, dl_error *err) {
    if (c->tok_hash != tok_hash)
        return dl_fail(err, "the cache was made with another tokenizer than this run's data (its ids would mean other "
                            "tokens); rebuild it with distil teacher-cache");
    if (c->n_tokens != train->n_tokens || c->data_hash != data_hash)
        return dl_fail(err, "the cache was made from another token file (%" PRIu64 " tokens) than this run's "
                            "train.bin (%" PRIu64 " tokens); rebuild it with distil teacher-cache",
                       c->n_tokens, train->n_tokens);
    if (c->seq_len != T)
        return dl_fail(err, "the cache was made with --seq-len %d, this run uses %d: each row depends on the tokens "
                            "before it in its window, so both must be the same",
                       c->seq_len, T);
    if (c->vocab > student_V)
        return dl_fail(err, "the cache covers %d ids but the student's vocab_size is %d", c->vocab, student_V);
    return 0;
}
