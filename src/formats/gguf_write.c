/* GGUF writer: key-value pairs are serialised into a buffer as they are added; tensors are
 * remembered and streamed out by dl_gguf_write, so a large model is not copied into memory. */
#include "formats/gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char name[DL_GGUF_NAME_MAX + 1];
    uint32_t type;
    int ndim;
    uint64_t ne[DL_GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
    int owned;
} wtensor;

struct dl_gguf_writer {
    dl_buf kv;        /* serialised pairs */
    uint64_t n_kv;
    dl_buf keys;      /* every key so far, each NUL-terminated, to refuse duplicates */
    uint64_t arr_left; /* elements still owed to the open array */
    uint32_t arr_type;
    uint32_t alignment;
    wtensor *tensors;
    size_t n_tensors, cap;
};

dl_gguf_writer *dl_gguf_writer_new(dl_error *err) {
    dl_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) {
        dl_fail(err, "out of memory");
        return NULL;
    }
    w->alignment = DL_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void dl_gguf_writer_free(dl_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (w->tensors[i].owned) free((void *)w->tensors[i].data);
    free(w->tensors);
    dl_buf_free(&w->kv);
    dl_buf_free(&w->keys);
    free(w);
}

/* ---- serialisation helpers ------------------------------------------------------------- */
static int put_u32(dl_buf *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return dl_buf_append(b, p, 4);
}

static int put_u64(dl_buf *b, uint64_t v) { return put_u32(b, (uint32_t)v) || put_u32(b, (uint32_t)(v >> 32)); }

static int put_str(dl_buf *b, const char *s, size_t n) { return put_u64(b, n) || dl_buf_append(b, s, n); }

static int oom(dl_error *err) { return dl_fail(err, "out of memory"); }

/* Checks a new key (not empty, not too long, not seen, no array left open) and writes it
 * with its value type. */
static int begin_kv(dl_gguf_writer *w, const char *key, uint32_t type, dl_error *err) {
    if (w->arr_left)
        return dl_fail(err, "gguf: key '%s' added while an array still needs %llu elements", key,
                       (unsigned long long)w->arr_left);
    size_t n = strlen(key);
    if (n == 0 || n > DL_GGUF_KEY_MAX) return dl_fail(err, "gguf: key of %zu bytes (1 to %d)", n, DL_GGUF_KEY_MAX);
    for (size_t off = 0; off < w->keys.len; off += strlen(w->keys.data + off) + 1)
        if (strcmp(w->keys.data + off, key) == 0) return dl_fail(err, "gguf: key '%s' added twice", key);
    if (dl_buf_append(&w->keys, key, n + 1) || put_str(&w->kv, key, n) || put_u32(&w->kv, type)) return oom(err);
    w->n_kv++;
    return 0;
}

int dl_gguf_set_alignment(dl_gguf_writer *w, uint32_t alignment, dl_error *err) {
    if (alignment < 8 || (alignment & (alignment - 1)) != 0)
        return dl_fail(err, "gguf: alignment %u is not a power of two of at least 8", alignment);
    if (dl_gguf_add_u32(w, "general.alignment", alignment, err)) return -1;
    w->alignment = alignment;
    return 0;
}

int dl_gguf_add_u32(dl_gguf_writer *w, const char *key, uint32_t v, dl_error *err) {
    if (begin_kv(w, key, DL_GGUF_U32, err)) return -1;
    return put_u32(&w->kv, v) ? oom(err) : 0;
}

int dl_gguf_add_i32(dl_gguf_writer *w, const char *key, int32_t v, dl_error *err) {
    if (begin_kv(w, key, DL_GGUF_I32, err)) return -1;
    return put_u32(&w->kv, (uint32_t)v) ? oom(err) : 0;
}

int dl_gguf_add_f32(dl_gguf_writer *w, const char *key, float v, dl_error *err) {
    if (begin_kv(w, key, DL_GGUF_F32, err)) return -1;
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return put_u32(&w->kv, bits) ? oom(err) : 0;
}

int dl_gguf_add_bool(dl_gguf_writer *w, const char *key, int v, dl_error *err) {
    if (begin_kv(w, key, DL_GGUF_BOOL, err)) return -1;
    uint8_t b = v ? 1 : 0;
    return dl_buf_append(&w->kv, &b, 1) ? oom(err) : 0;
}

int dl_gguf_add_str(dl_gguf_writer *w, const char *key, const char *s, dl_error *err) {
    if (begin_kv(w, key, DL_GGUF_STRING, err)) return -1;
    return put_str(&w->kv, s, strlen(s)) ? oom(err) : 0;
}

int dl_gguf_begin_arr(dl_gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n, dl_error *err) {
    if (elem_type != DL_GGUF_STRING && elem_type != DL_GGUF_I32 && elem_type != DL_GGUF_F32)
        return dl_fail(err, "gguf: key '%s': arrays of %s are not supported by the writer", key,
                       dl_gguf_vtype_name(elem_type));
    if (begin_kv(w, key, DL_GGUF_ARRAY, err)) return -1;
    if (put_u32(&w->kv, elem_type) || put_u64(&w->kv, n)) return oom(err);
    w->arr_left = n;
    w->arr_type = elem_type;
    return 0;
}

static int push_check(dl_gguf_writer *w, uint32_t type, dl_error *err) {
    if (!w->arr_left) return dl_fail(err, "gguf: array element pushed with no array open (or one too many)");
    if (w->arr_type != type)
        return dl_fail(err, "gguf: %s element pushed into an array of %s", dl_gguf_vtype_name(type),
                       dl_gguf_vtype_name(w->arr_type));
    w->arr_left--;
    return 0;
}

int dl_gguf_push_str(dl_gguf_writer *w, const char *s, size_t len, dl_error *err) {
    if (push_check(w, DL_GGUF_STRING, err)) return -1;
    return put_str(&w->kv, s, len) ? oom(err) : 0;
}

int dl_gguf_push_i32(dl_gguf_writer *w, int32_t v, dl_error *err) {
    if (push_check(w, DL_GGUF_I32, err)) return -1;
    return put_u32(&w->kv, (uint32_t)v) ? oom(err) : 0;
}

int dl_gguf_push_f32(dl_gguf_writer *w, float v, dl_error *err) {
    if (push_check(w, DL_GGUF_F32, err)) return -1;
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return put_u32(&w->kv, bits) ? oom(err) : 0;
}

/* ---- tensors --------------------------------------------------------------------------- */
static int check_tensor(const char *name, uint32_t type, int ndim, const uint64_t *ne, size_t nbytes, dl_error *err) {
    size_t n = strlen(name);
    if (n == 0 || n > DL_GGUF_NAME_MAX)
        return dl_fail(err, "gguf: tensor name '%s' must be 1 to %d bytes", name, DL_GGUF_NAME_MAX);
    uint32_t block, bytes;
    if (dl_ggml_type_info(type, &block, &bytes)) return dl_fail(err, "gguf: tensor '%s': unknown type %u", name, type);
    if (ndim < 1 || ndim > DL_GGUF_MAX_DIMS) return dl_fail(err, "gguf: tensor '%s': %d dimensions", name, ndim);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++)
        if (ne[d] == 0 || ne[d] > SIZE_MAX || dl_mul_size(numel, (size_t)ne[d], &numel))
            return dl_fail(err, "gguf: tensor '%s': bad dimension %d", name, d);
    if (ne[0] % block != 0)
        return dl_fail(err, "gguf: tensor '%s': a row of %llu is not a whole number of %s blocks", name,
                       (unsigned long long)ne[0], dl_ggml_type_name(type));
    size_t want;
    if (dl_mul_size(numel / block, bytes, &want) || want != nbytes)
        return dl_fail(err, "gguf: tensor '%s': %zu bytes given, its type and shape need %zu", name, nbytes, want);
    return 0;
}

static int has_tensor(const dl_gguf_writer *w, const char *name) {
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return 1;
    return 0;
}

int dl_gguf_add_tensor(dl_gguf_writer *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                       const void *data, size_t nbytes, int take, dl_error *err) {
    int rc = check_tensor(name, type, ndim, ne, nbytes, err);
    if (rc == 0 && has_tensor(w, name)) rc = dl_fail(err, "gguf: tensor '%s' added twice", name);
    if (rc == 0 && w->n_tensors == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) rc = oom(err);
        else w->tensors = t, w->cap = cap;
    }
    if (rc) {
        if (take) free((void *)data);
        return -1;
    }
    wtensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, strlen(name) + 1);
    t->type = type;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->ne[d] = ne[d];
    t->data = data;
    t->nbytes = nbytes;
    t->owned = take;
    return 0;
}

/* ---- the file -------------------------------------------------------------------------- */
static size_t pad_to(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Header and tensor infos, padded so that the data section starts aligned. */
static int build_head(const dl_gguf_writer *w, dl_buf *b) {
    if (dl_buf_append(b, "GGUF", 4) || put_u32(b, DL_GGUF_VERSION) || put_u64(b, w->n_tensors) || put_u64(b, w->n_kv) ||
        dl_buf_append(b, w->kv.data, w->kv.len))
        return -1;
    size_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (put_str(b, t->name, strlen(t->name)) || put_u32(b, (uint32_t)t->ndim)) return -1;
        for (int d = 0; d < t->ndim; d++)
            if (put_u64(b, t->ne[d])) return -1;
        if (put_u32(b, t->type) || put_u64(b, off)) return -1;
        off += pad_to(t->nbytes, w->alignment);
    }
    static const uint8_t zeros[64];
    size_t pad = w->n_tensors ? pad_to(b->len, w->alignment) - b->len : 0;
    for (size_t k = 0; k < pad; k += sizeof zeros)
        if (dl_buf_append(b, zeros, pad - k < sizeof zeros ? pad - k : sizeof zeros)) return -1;
    return 0;
}

static void write_zeros(dl_atomic_file *f, size_t n) {
    static const uint8_t zeros[256];
    for (size_t k = 0; k < n; k += sizeof zeros) dl_atomic_write(f, zeros, n - k < sizeof zeros ? n - k : sizeof zeros);
}

static void write_body(const dl_gguf_writer *w, dl_atomic_file *f, const dl_buf *head) {
    dl_atomic_write(f, head->data, head->len);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        dl_atomic_write(f, t->data, t->nbytes);
        write_zeros(f, pad_to(t->nbytes, w->alignment) - t->nbytes);
    }
}

int dl_gguf_write(dl_gguf_writer *w, const char *path, dl_error *err) {
    if (w->arr_left) return dl_fail(err, "gguf: an array still needs %llu elements", (unsigned long long)w->arr_left);
    dl_buf head = {0};
    if (build_head(w, &head)) {
        dl_buf_free(&head);
        return oom(err);
    }
    dl_atomic_file f;
    if (dl_atomic_open(&f, path, err)) {
        dl_buf_free(&head);
        return -1;
    }
    write_body(w, &f, &head);
    dl_buf_free(&head);
    return dl_atomic_commit(&f, err);
}
