/* GGUF reader. The file is untrusted: a cursor reads every field through a bounds check, counts
 * are capped by what the bytes left could hold before anything is allocated for them, and
 * tensor data is placed only after every offset has been checked against the file. */
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include <stdlib.h>
#include <string.h>

/* Beyond what the file size bounds: no real model has a million pairs or tensors. */
#define MAX_KV ((uint64_t)1 << 20)
#define MAX_TENSORS ((uint64_t)1 << 20)
/* The fewest bytes a pair can take (key length, value type, a 1-byte value) and a tensor info
 * (name length, n_dims, type, offset), even malformed: counts above what the bytes left can
 * hold are refused before anything is allocated for them. */
#define MIN_KV_BYTES 13
#define MIN_TENSOR_BYTES 24

static const uint8_t VSIZE[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}; /* by dl_gguf_vtype */
static const char *const VNAME[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                    "bool", "string", "array", "u64", "i64", "f64"};
#define N_VTYPES (sizeof VSIZE / sizeof VSIZE[0])

const char *dl_gguf_vtype_name(uint32_t t) { return t < N_VTYPES ? VNAME[t] : "unknown"; }

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- cursor ---------------------------------------------------------------------------- */
typedef struct {
    const uint8_t *p;
    size_t len, pos;
    dl_error *err;
} cursor;

static size_t left(const cursor *c) { return c->len - c->pos; }

static int truncated(cursor *c, const char *what, size_t need) {
    return dl_fail(c->err, "the file ends inside %s (at byte %zu, %zu bytes needed, %zu left)", what, c->pos, need,
                   left(c));
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (left(c) < 4) return truncated(c, what, 4);
    *v = le32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (left(c) < 8) return truncated(c, what, 8);
    *v = le64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

/* A string's bytes stay in the file; only its length is checked. what names the string in
 * messages; NULL leaves that to the caller (dl_fail_ctx), so that a loop over a big array does
 * not format a name per element. */
static int rd_str(cursor *c, const uint8_t **s, uint64_t *n, const char *what) {
    if (rd_u64(c, n, what ? what : "a string length")) return -1;
    if (*n > left(c))
        return dl_fail(c->err, "%s%slength %llu runs past the end of the file (byte %zu, %zu bytes left)",
                       what ? what : "", what ? ": " : "", (unsigned long long)*n, c->pos, left(c));
    *s = c->p + c->pos;
    c->pos += (size_t)*n;
    return 0;
}

/* A NUL-terminated copy of a name read from the file; empty names and NULs inside are refused. */
static char *copy_name(const uint8_t *s, uint64_t n, uint64_t max, const char *what, dl_error *err) {
    if (n == 0) {
        dl_fail(err, "%s is empty", what);
    } else if (n > max) {
        dl_fail(err, "%s is %llu bytes long (at most %llu)", what, (unsigned long long)n, (unsigned long long)max);
    } else if (memchr(s, 0, (size_t)n)) {
        dl_fail(err, "%s holds a NUL byte", what);
    } else {
        char *out = malloc((size_t)n + 1);
        if (!out) {
            dl_fail(err, "out of memory");
            return NULL;
        }
        memcpy(out, s, (size_t)n);
        out[n] = 0;
        return out;
    }
    return NULL;
}

/* ---- header ---------------------------------------------------------------------------- */
static int parse_header(cursor *c, dl_gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
    if (c->len < 4) return dl_fail(c->err, "file is %zu bytes, too short for the GGUF magic", c->len);
    if (memcmp(c->p, "GGUF", 4) != 0) return dl_fail(c->err, "not a GGUF file (the first 4 bytes are not 'GGUF')");
    c->pos = 4;
    if (rd_u32(c, &f->version, "the header (version)")) return -1;
    uint32_t v = f->version;
    if (v != 0 && (v & 0xFFFF) == 0)
        return dl_fail(c->err, "version field 0x%08x: a big-endian GGUF file (only little-endian is supported)", v);
    if (v != 2 && v != 3) return dl_fail(c->err, "GGUF version %u is not supported (only 2 and 3)", v);
    if (rd_u64(c, n_tensors, "the header (tensor count)") || rd_u64(c, n_kv, "the header (key-value count)"))
        return -1;
    if (*n_kv > MAX_KV || *n_kv > left(c) / MIN_KV_BYTES)
        return dl_fail(c->err, "%llu key-value pairs cannot fit in the %zu bytes left", (unsigned long long)*n_kv,
                       left(c));
    if (*n_tensors > MAX_TENSORS || *n_tensors > left(c) / MIN_TENSOR_BYTES)
        return dl_fail(c->err, "%llu tensors cannot fit in the %zu bytes left", (unsigned long long)*n_tensors,
                       left(c));
    return 0;
}

/* ---- key-value pairs ------------------------------------------------------------------- */
static int parse_strings(cursor *c, dl_gguf_kv *kv) {
    if (kv->type == DL_GGUF_ARRAY) {
        kv->str_off = malloc((size_t)kv->n * sizeof *kv->str_off + 1); /* n <= bytes left / 8 */
        if (!kv->str_off) return dl_fail(c->err, "out of memory");
    }
    size_t start = c->pos;
    for (uint64_t i = 0; i < kv->n; i++) {
        if (kv->str_off) kv->str_off[i] = c->pos - start;
        const uint8_t *s;
        uint64_t n;
        if (rd_str(c, &s, &n, NULL))
            return dl_fail_ctx(c->err, "key '%.64s' (string %llu)", kv->key, (unsigned long long)i);
    }
    return 0;
}

static int parse_value(cursor *c, dl_gguf_kv *kv) {
    char what[128];
    snprintf(what, sizeof what, "key '%.64s' (value type)", kv->key);
    if (rd_u32(c, &kv->type, what)) return -1;
    if (kv->type >= N_VTYPES) return dl_fail(c->err, "key '%.64s': unknown value type %u", kv->key, kv->type);
    kv->elem_type = kv->type;
    kv->n = 1;
    if (kv->type == DL_GGUF_ARRAY) {
        snprintf(what, sizeof what, "key '%.64s' (array header)", kv->key);
        if (rd_u32(c, &kv->elem_type, what) || rd_u64(c, &kv->n, what)) return -1;
        if (kv->elem_type == DL_GGUF_ARRAY)
            return dl_fail(c->err, "key '%.64s': nested arrays are not supported", kv->key);
        if (kv->elem_type >= N_VTYPES)
            return dl_fail(c->err, "key '%.64s': unknown array element type %u", kv->key, kv->elem_type);
        size_t min = kv->elem_type == DL_GGUF_STRING ? 8 : VSIZE[kv->elem_type];
        if (kv->n > left(c) / min)
            return dl_fail(c->err, "key '%.64s': an array of %llu %s values cannot fit in the %zu bytes left", kv->key,
                           (unsigned long long)kv->n, VNAME[kv->elem_type], left(c));
    }
    kv->data = c->p + c->pos;
    if (kv->elem_type == DL_GGUF_STRING) return parse_strings(c, kv);
    size_t nb = (size_t)kv->n * VSIZE[kv->elem_type]; /* checked against the bytes left above */
    snprintf(what, sizeof what, "key '%.64s' (value)", kv->key);
    if (nb > left(c)) return truncated(c, what, nb);
    if (kv->elem_type == DL_GGUF_BOOL)
        for (size_t i = 0; i < nb; i++)
            if (kv->data[i] > 1)
                return dl_fail(c->err, "key '%.64s': boolean value %u is not 0 or 1", kv->key, kv->data[i]);
    c->pos += nb;
    return 0;
}

static int parse_kv(cursor *c, dl_gguf_kv *kv, size_t i) {
    char what[64];
    snprintf(what, sizeof what, "the key of pair %zu", i);
    const uint8_t *s;
    uint64_t n;
    if (rd_str(c, &s, &n, what)) return -1;
    if (!(kv->key = copy_name(s, n, DL_GGUF_KEY_MAX, what, c->err))) return -1;
    return parse_value(c, kv);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorting a copy keeps the check O(n log n) for a hostile file with many names. */
static int check_unique(char **names, size_t n, const char *kind, dl_error *err) {
    char **s = malloc(n * sizeof *s + 1);
    if (!s) return dl_fail(err, "out of memory");
    memcpy(s, names, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_name);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(s[i - 1], s[i]) == 0) rc = dl_fail(err, "%s '%.64s' appears twice", kind, s[i]);
    free(s);
    return rc;
}

static int parse_kvs(cursor *c, dl_gguf_file *f, uint64_t n_kv) {
    f->kv = calloc((size_t)n_kv + 1, sizeof *f->kv);
    char **keys = malloc((size_t)n_kv * sizeof *keys + 1);
    int rc = f->kv && keys ? 0 : dl_fail(c->err, "out of memory");
    for (size_t i = 0; i < n_kv && rc == 0; i++) {
        f->n_kv = i + 1; /* so that close frees what this pair allocated, even on failure */
        rc = parse_kv(c, &f->kv[i], i);
        keys[i] = f->kv[i].key;
    }
    if (rc == 0) rc = check_unique(keys, (size_t)n_kv, "key", c->err);
    free(keys);
    return rc;
}

static int read_alignment(dl_gguf_file *f, dl_error *err) {
    f->alignment = DL_GGUF_DEFAULT_ALIGNMENT;
    const dl_gguf_kv *kv = dl_gguf_find(f, "general.alignment");
    if (!kv) return 0;
    if (kv->type != DL_GGUF_U32)
        return dl_fail(err, "general.alignment must be a u32, not %s", dl_gguf_vtype_name(kv->type));
    uint32_t a = le32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0) return dl_fail(err, "general.alignment %u is not a power of two", a);
    f->alignment = a;
    return 0;
}

/* ---- tensor infos ---------------------------------------------------------------------- */
static int parse_shape(cursor *c, dl_gguf_tensor *t) {
    uint32_t nd;
    if (rd_u32(c, &nd, "a tensor's dimension count")) return -1;
    if (nd < 1 || nd > DL_GGUF_MAX_DIMS)
        return dl_fail(c->err, "tensor '%s': %u dimensions (1 to %d are supported)", t->name, nd, DL_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    t->numel = 1;
    for (int d = 0; d < DL_GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->ndim) continue;
        if (rd_u64(c, &t->ne[d], "a tensor's dimensions")) return -1;
        if (t->ne[d] == 0) return dl_fail(c->err, "tensor '%s': dimension %d is 0", t->name, d);
        if (t->ne[d] > (uint64_t)INT64_MAX / t->numel)
            return dl_fail(c->err, "tensor '%s': the element count overflows (dimension %d = %llu)", t->name, d,
                           (unsigned long long)t->ne[d]);
        t->numel *= t->ne[d];
    }
    return 0;
}

static int parse_type(cursor *c, dl_gguf_tensor *t) {
    uint32_t block, bytes;
    if (rd_u32(c, &t->type, "a tensor's type")) return -1;
    if (dl_ggml_type_info(t->type, &block, &bytes))
        return dl_fail(c->err, "tensor '%s': unknown ggml type %u", t->name, t->type);
    if (t->ne[0] % block != 0)
        return dl_fail(c->err, "tensor '%s': rows of %llu elements are not a whole number of %s blocks (%u)", t->name,
                       (unsigned long long)t->ne[0], dl_ggml_type_name(t->type), block);
    uint64_t blocks = t->numel / block;
    if (blocks > SIZE_MAX / bytes) return dl_fail(c->err, "tensor '%s': the byte size overflows", t->name);
    t->nbytes = (size_t)blocks * bytes;
    return 0;
}

static int parse_tensor(cursor *c, dl_gguf_tensor *t, size_t i, uint32_t alignment) {
    char what[64];
    snprintf(what, sizeof what, "the name of tensor %zu", i);
    const uint8_t *s;
    uint64_t n;
    if (rd_str(c, &s, &n, what)) return -1;
    if (!(t->name = copy_name(s, n, DL_GGUF_NAME_MAX, what, c->err))) return -1;
    if (parse_shape(c, t) || parse_type(c, t) || rd_u64(c, &t->offset, "a tensor's data offset")) return -1;
    if (t->offset % alignment != 0)
        return dl_fail(c->err, "tensor '%s': data offset %llu is not a multiple of the alignment %u", t->name,
                       (unsigned long long)t->offset, alignment);
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const dl_gguf_tensor *x = *(const dl_gguf_tensor *const *)a, *y = *(const dl_gguf_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int check_overlap(dl_gguf_file *f, dl_error *err) {
    const dl_gguf_tensor **s = malloc(f->n_tensors * sizeof *s + 1);
    if (!s) return dl_fail(err, "out of memory");
    for (size_t i = 0; i < f->n_tensors; i++) s[i] = &f->tensors[i];
    qsort(s, f->n_tensors, sizeof *s, cmp_offset);
    int rc = 0;
    for (size_t i = 1; i < f->n_tensors && rc == 0; i++)
        if (s[i]->offset - s[i - 1]->offset < s[i - 1]->nbytes)
            rc = dl_fail(err, "tensors '%s' and '%s' overlap in the data section", s[i - 1]->name, s[i]->name);
    free(s);
    return rc;
}

/* The data section starts at the first aligned byte after the infos. */
static int place_data(dl_gguf_file *f, size_t end_of_infos, dl_error *err) {
    f->data_offset = end_of_infos;
    if (f->n_tensors == 0) return 0;
    uint64_t start = ((uint64_t)end_of_infos + f->alignment - 1) / f->alignment * f->alignment;
    if (start > f->len)
        return dl_fail(err, "the data section would start at byte %llu, past the end of the file (%zu bytes)",
                       (unsigned long long)start, f->len);
    f->data_offset = (size_t)start;
    size_t avail = f->len - f->data_offset;
    for (size_t i = 0; i < f->n_tensors; i++) {
        dl_gguf_tensor *t = &f->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return dl_fail(err, "tensor '%s': %zu bytes at data offset %llu run past the end of the file "
                                "(%zu data bytes)", t->name, t->nbytes, (unsigned long long)t->offset, avail);
        t->data = f->base + f->data_offset + t->offset;
    }
    return check_overlap(f, err);
}

static int parse_tensors(cursor *c, dl_gguf_file *f, uint64_t n_tensors) {
    f->tensors = calloc((size_t)n_tensors + 1, sizeof *f->tensors);
    char **names = malloc((size_t)n_tensors * sizeof *names + 1);
    int rc = f->tensors && names ? 0 : dl_fail(c->err, "out of memory");
    for (size_t i = 0; i < n_tensors && rc == 0; i++) {
        f->n_tensors = i + 1;
        rc = parse_tensor(c, &f->tensors[i], i, f->alignment);
        names[i] = f->tensors[i].name;
    }
    if (rc == 0) rc = check_unique(names, (size_t)n_tensors, "tensor", c->err);
    free(names);
    if (rc == 0) rc = place_data(f, c->pos, c->err);
    return rc;
}

static int parse(dl_gguf_file *f, dl_error *err) {
    cursor c = {f->base, f->len, 0, err};
    uint64_t n_tensors, n_kv;
    if (parse_header(&c, f, &n_tensors, &n_kv) || parse_kvs(&c, f, n_kv) || read_alignment(f, err)) return -1;
    return parse_tensors(&c, f, n_tensors);
}

int dl_gguf_open(dl_gguf_file *f, const char *path, dl_error *err) {
    memset(f, 0, sizeof *f);
    if (dl_mmap_open(&f->map, path, err)) return -1;
    f->base = f->map.data;
    f->len = f->map.len;
    if (parse(f, err)) {
        dl_gguf_close(f);
        return dl_fail_ctx(err, "%s", path);
    }
    return 0;
}

int dl_gguf_open_mem(dl_gguf_file *f, const void *data, size_t len, dl_error *err) {
    memset(f, 0, sizeof *f);
    f->base = data;
    f->len = data ? len : 0;
    if (parse(f, err)) {
        dl_gguf_close(f);
        return -1;
    }
    return 0;
}

void dl_gguf_close(dl_gguf_file *f) {
    for (size_t i = 0; f->kv && i < f->n_kv; i++) {
        free(f->kv[i].key);
        free(f->kv[i].str_off);
    }
    free(f->kv);
    for (size_t i = 0; f->tensors && i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    dl_mmap_close(&f->map);
    memset(f, 0, sizeof *f);
}

/* ---- lookups --------------------------------------------------------------------------- */
const dl_gguf_kv *dl_gguf_find(const dl_gguf_file *f, const char *key) {
    for (size_t i = 0; i < f->n_kv; i++)
        if (strcmp(f->kv[i].key, key) == 0) return &f->kv[i];
    return NULL;
}

const dl_gguf_tensor *dl_gguf_find_tensor(const dl_gguf_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static int is_int_type(uint32_t t) {
    return t <= DL_GGUF_I32 || t == DL_GGUF_U64 || t == DL_GGUF_I64;
}

static int int_at(uint32_t t, const uint8_t *p, int64_t *out) {
    switch (t) {
    case DL_GGUF_U8: *out = p[0]; return 0;
    case DL_GGUF_I8: *out = (int8_t)p[0]; return 0;
    case DL_GGUF_U16: *out = le16(p); return 0;
    case DL_GGUF_I16: *out = (int16_t)le16(p); return 0;
    case DL_GGUF_U32: *out = le32(p); return 0;
    case DL_GGUF_I32: *out = (int32_t)le32(p); return 0;
    case DL_GGUF_I64: *out = (int64_t)le64(p); return 0;
    case DL_GGUF_U64:
        if (le64(p) > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)le64(p);
        return 0;
    default: return -1;
    }
}

static const dl_gguf_kv *find_scalar(const dl_gguf_file *f, const char *key, dl_error *err) {
    const dl_gguf_kv *kv = dl_gguf_find(f, key);
    if (!kv) return dl_fail(err, "key '%s' is missing", key), NULL;
    if (kv->type == DL_GGUF_ARRAY) return dl_fail(err, "key '%s' is an array, expected a single value", key), NULL;
    return kv;
}

int dl_gguf_get_int(const dl_gguf_file *f, const char *key, int64_t *out, dl_error *err) {
    const dl_gguf_kv *kv = find_scalar(f, key, err);
    if (!kv) return -1;
    if (!is_int_type(kv->type)) return dl_fail(err, "key '%s' must be an integer, not %s", key, VNAME[kv->type]);
    if (int_at(kv->type, kv->data, out)) return dl_fail(err, "key '%s': value is out of range", key);
    return 0;
}

int dl_gguf_get_float(const dl_gguf_file *f, const char *key, double *out, dl_error *err) {
    const dl_gguf_kv *kv = find_scalar(f, key, err);
    if (!kv) return -1;
    if (kv->type == DL_GGUF_F32) {
        float v;
        memcpy(&v, kv->data, 4);
        *out = v;
    } else if (kv->type == DL_GGUF_F64) {
        memcpy(out, kv->data, 8);
    } else {
        return dl_fail(err, "key '%s' must be a float, not %s", key, VNAME[kv->type]);
    }
    return 0;
}

int dl_gguf_get_bool(const dl_gguf_file *f, const char *key, int *out, dl_error *err) {
    const dl_gguf_kv *kv = find_scalar(f, key, err);
    if (!kv) return -1;
    if (kv->type != DL_GGUF_BOOL) return dl_fail(err, "key '%s' must be a bool, not %s", key, VNAME[kv->type]);
    *out = kv->data[0];
    return 0;
}

int dl_gguf_get_str(const dl_gguf_file *f, const char *key, const char **s, size_t *len, dl_error *err) {
    const dl_gguf_kv *kv = find_scalar(f, key, err);
    if (!kv) return -1;
    if (kv->type != DL_GGUF_STRING) return dl_fail(err, "key '%s' must be a string, not %s", key, VNAME[kv->type]);
    *len = (size_t)le64(kv->data);
    *s = (const char *)kv->data + 8;
    return 0;
}

int dl_gguf_get_arr(const dl_gguf_file *f, const char *key, uint32_t want, const dl_gguf_kv **out, dl_error *err) {
    const dl_gguf_kv *kv = dl_gguf_find(f, key);
    if (!kv) return dl_fail(err, "key '%s' is missing", key);
    int ok = kv->type == DL_GGUF_ARRAY &&
             (kv->elem_type == want || (want == DL_GGUF_I64 && is_int_type(kv->elem_type)));
    if (!ok)
        return dl_fail(err, "key '%s' must be an array of %s, not %s%s", key,
                       want == DL_GGUF_I64 ? "integers" : dl_gguf_vtype_name(want),
                       kv->type == DL_GGUF_ARRAY ? "an array of " : "", dl_gguf_vtype_name(kv->elem_type));
    *out = kv;
    return 0;
}

void dl_gguf_arr_str(const dl_gguf_kv *kv, uint64_t i, const char **s, size_t *len) {
    const uint8_t *p = kv->data + kv->str_off[i];
    *len = (size_t)le64(p);
    *s = (const char *)p + 8;
}

int dl_gguf_arr_int(const dl_gguf_kv *kv, uint64_t i, int64_t *out) {
    return int_at(kv->elem_type, kv->data + (size_t)i * VSIZE[kv->elem_type], out);
}

/* ---- tensor data ----------------------------------------------------------------------- */
int dl_gguf_tensor_to_f32(const dl_gguf_tensor *t, float *out, size_t n, dl_error *err) {
    if (n != t->numel)
        return dl_fail(err, "tensor '%s' has %llu elements, the caller expected %zu", t->name,
                       (unsigned long long)t->numel, n);
    switch (t->type) {
    case DL_GGML_F32: memcpy(out, t->data, n * sizeof(float)); return 0;
    case DL_GGML_Q8_0: dl_q8_0_dequantize(t->data, out, n); return 0;
    case DL_GGML_F16:
    case DL_GGML_BF16: {
        float (*conv)(uint16_t) = t->type == DL_GGML_F16 ? dl_f16_to_f32 : dl_bf16_to_f32;
        for (size_t i = 0; i < n; i++) out[i] = conv(le16(t->data + 2 * i));
        return 0;
    }
    default:
        return dl_fail(err, "tensor '%s' has type %s (only F32, F16, BF16 and Q8_0 can be converted)", t->name,
                       dl_ggml_type_name(t->type));
    }
}
