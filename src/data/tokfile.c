/* Token files: the 64-byte header (see data.h), a streaming writer and the checked reader. */
#include "data.h"
#include "tokwriter.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char TOK_MAGIC[8] = {'D', 'S', 'T', 'L', 'T', 'O', 'K', 0};
enum { TOK_HEADER = 64, TOK_VERSION = 1 };

static void put_u32(unsigned char *p, uint32_t x) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(x >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t x) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(x >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t x = 0;
    for (int i = 3; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

static int dtype_for_vocab(uint32_t vocab_size) { return vocab_size <= 65536u ? 2 : 4; }

/* ---- writer ---------------------------------------------------------------------------------
 * Tokens go to PATH.tmp.PID; the header (with the final count) is written last, then the file is
 * fsynced and renamed, so a reader never sees a half-written token file under the real name. */
int dl_tokwriter_open(dl_tokwriter *w, const char *path, uint32_t vocab_size, dl_error *err) {
    memset(w, 0, sizeof *w);
    w->file.fd = -1;
    if (vocab_size == 0) return dl_fail(err, "%s: vocab_size must be positive", path);
    w->vocab_size = vocab_size;
    w->dtype_bytes = dtype_for_vocab(vocab_size);
    if (dl_atomic_open(&w->file, path, err)) return -1;
    unsigned char zero[TOK_HEADER] = {0};
    dl_atomic_write(&w->file, zero, sizeof zero);
    return 0;
}

int dl_tokwriter_append(dl_tokwriter *w, const int32_t *ids, size_t n, dl_error *err) {
    unsigned char block[8192];
    size_t per = sizeof block / (size_t)w->dtype_bytes;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        for (size_t j = 0; j < k; j++) {
            int32_t id = ids[i + j];
            if (id < 0 || (uint32_t)id >= w->vocab_size)
                return dl_fail(err, "%s: token id %d at position %llu is outside the vocabulary [0, %u)",
                               w->file.path, (int)id, (unsigned long long)(w->n_tokens + i + j), w->vocab_size);
            unsigned char *p = block + j * (size_t)w->dtype_bytes;
            p[0] = (unsigned char)id;
            p[1] = (unsigned char)(id >> 8);
            if (w->dtype_bytes == 4) {
                p[2] = (unsigned char)(id >> 16);
                p[3] = (unsigned char)(id >> 24);
            }
        }
        if (dl_atomic_write(&w->file, block, k * (size_t)w->dtype_bytes))
            return dl_fail(err, "%s: write failed: %s", w->file.path, strerror(w->file.write_errno));
    }
    w->n_tokens += n;
    return 0;
}

/* The header, with the final count, is written last, over the zeros that held its place. */
int dl_tokwriter_finish(dl_tokwriter *w, dl_error *err) {
    unsigned char h[TOK_HEADER] = {0};
    memcpy(h, TOK_MAGIC, 8);
    put_u32(h + 8, TOK_VERSION);
    put_u32(h + 12, (uint32_t)w->dtype_bytes);
    put_u32(h + 16, w->vocab_size);
    put_u64(h + 24, w->n_tokens);
    dl_atomic_pwrite(&w->file, h, sizeof h, 0);
    return dl_atomic_commit(&w->file, err);
}

void dl_tokwriter_abort(dl_tokwriter *w) { dl_atomic_abort(&w->file); }

int dl_tokfile_write(const char *path, const int32_t *ids, size_t n, uint32_t vocab_size, dl_error *err) {
    dl_tokwriter w;
    if (dl_tokwriter_open(&w, path, vocab_size, err)) return -1;
    if (dl_tokwriter_append(&w, ids, n, err)) {
        dl_tokwriter_abort(&w);
        return -1;
    }
    return dl_tokwriter_finish(&w, err);
}

/* ---- reader ----------------------------------------------------------------------------------- */
static int check_header(dl_tokfile *f, const char *path, dl_error *err) {
    const unsigned char *h = f->map.data;
    if (f->map.len < TOK_HEADER)
        return dl_fail(err, "%s: not a token file: %zu bytes, shorter than the %d-byte header", path, f->map.len,
                       TOK_HEADER);
    if (memcmp(h, TOK_MAGIC, 8) != 0) return dl_fail(err, "%s: not a token file (bad magic)", path);
    uint32_t version = get_u32(h + 8), dtype = get_u32(h + 12);
    if (version != TOK_VERSION)
        return dl_fail(err, "%s: token file version %u is not supported (this build reads version %d)", path,
                       version, TOK_VERSION);
    if (dtype != 2 && dtype != 4)
        return dl_fail(err, "%s: token dtype %u is invalid (expected 2 for uint16 or 4 for uint32)", path, dtype);
    f->dtype_bytes = (int)dtype;
    f->vocab_size = get_u32(h + 16);
    f->n_tokens = get_u64(h + 24);
    if (f->vocab_size == 0) return dl_fail(err, "%s: vocab_size is 0", path);
    if (dtype == 2 && f->vocab_size > 65536u)
        return dl_fail(err, "%s: vocab_size %u does not fit the uint16 dtype", path, f->vocab_size);
    uint64_t body = (uint64_t)(f->map.len - TOK_HEADER);
    if (f->n_tokens > body / dtype || f->n_tokens * dtype != body)
        return dl_fail(err, "%s: header says %llu tokens (%llu bytes) but the file holds %llu bytes of tokens", path,
                       (unsigned long long)f->n_tokens,
                       (unsigned long long)(f->n_tokens > UINT64_MAX / dtype ? UINT64_MAX : f->n_tokens * dtype),
                       (unsigned long long)body);
    f->tokens = h + TOK_HEADER;
    return 0;
}

/* One pass over the ids so that everything downstream (embedding lookups, the loss) may index
 * with them unchecked. It reads at memory speed; a uint16 file with a full 65536 vocabulary
 * cannot hold a bad id and is skipped. */
static int check_ids(const dl_tokfile *f, const char *path, dl_error *err) {
    if (f->dtype_bytes == 2 && f->vocab_size == 65536u) return 0;
    uint32_t bad_at_or_above = f->vocab_size;
    for (uint64_t i = 0; i < f->n_tokens; i++) {
        uint32_t id = (uint32_t)dl_tokfile_get(f, i);
        if (id >= bad_at_or_above)
            return dl_fail(err, "%s: token %llu has id %u, outside the vocabulary [0, %u)", path,
                           (unsigned long long)i, id, f->vocab_size);
    }
    return 0;
}

int dl_tokfile_open(dl_tokfile *f, const char *path, dl_error *err) {
    memset(f, 0, sizeof *f);
    if (dl_mmap_open(&f->map, path, err)) return -1;
    if (check_header(f, path, err) || check_ids(f, path, err)) {
        dl_tokfile_close(f);
        return -1;
    }
    return 0;
}

void dl_tokfile_close(dl_tokfile *f) {
    dl_mmap_close(&f->map);
    memset(f, 0, sizeof *f);
}
