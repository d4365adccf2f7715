/* safetensors reader: maps the file and checks every length and offset before anything
 * points into it. Tensor data may be unaligned (the header length need not be a multiple of
 * 8), so readers copy with memcpy, never cast. */
#include "formats/safetensors.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Real headers are a few hundred bytes per tensor; anything past this is a broken or hostile file. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct {
    size_t begin, end;
} st_range;

static int parse_shape(json_t *v, dl_st_tensor *t, dl_error *err) {
    if (!json_is_array(v)) return dl_fail(err, "'shape' must be an array of integers");
    size_t nd = json_array_size(v);
    if (nd > DL_ST_MAX_DIMS)
        return dl_fail(err, "'shape' has %zu dimensions (at most %d supported)", nd, DL_ST_MAX_DIMS);
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(v, i);
        if (!json_is_integer(d)) return dl_fail(err, "shape[%zu] must be an integer", i);
        json_int_t x = json_integer_value(d);
        if (x < 0) return dl_fail(err, "shape[%zu] = %lld is negative", i, (long long)x);
        if ((uint64_t)x > SIZE_MAX || dl_mul_size(numel, (size_t)x, &numel))
            return dl_fail(err, "shape product overflows (dimension %zu = %lld)", i, (long long)x);
        t->shape[i] = (int64_t)x;
    }
    t->ndim = (int)nd;
    t->numel = numel;
    return 0;
}

static int parse_offsets(json_t *v, st_range *r, dl_error *err) {
    if (!json_is_array(v) || json_array_size(v) != 2)
        return dl_fail(err, "'data_offsets' must be an array [begin, end]");
    json_t *jb = json_array_get(v, 0), *je = json_array_get(v, 1);
    if (!json_is_integer(jb) || !json_is_integer(je)) return dl_fail(err, "'data_offsets' must hold two integers");
    json_int_t b = json_integer_value(jb), e = json_integer_value(je);
    if (b < 0 || e < b) return dl_fail(err, "data_offsets [%lld, %lld] are not an ordered range", (long long)b, (long long)e);
    r->begin = (size_t)b;
    r->end = (size_t)e;
    return 0;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry; data_len is the size of the byte
 * buffer after the header. */
static int parse_entry(json_t *e, const uint8_t *data, size_t data_len, dl_st_tensor *t, st_range *r,
                       dl_error *err) {
    if (!json_is_object(e)) return dl_fail(err, "entry must be an object");
    json_t *dt = json_object_get(e, "dtype");
    if (!json_is_string(dt)) return dl_fail(err, "'dtype' must be a string");
    t->dtype = dl_dtype_from_name(json_string_value(dt));
    if (t->dtype == DL_DTYPE_UNKNOWN)
        return dl_fail(err, "unsupported dtype '%.32s'", json_string_value(dt));
    if (parse_shape(json_object_get(e, "shape"), t, err)) return -1;
    if (parse_offsets(json_object_get(e, "data_offsets"), r, err)) return -1;
    if (r->end > data_len)
        return dl_fail(err, "data_offsets [%zu, %zu] run past the end of the data (%zu bytes)", r->begin, r->end,
                       data_len);
    size_t want;
    if (dl_mul_size(t->numel, dl_dtype_size(t->dtype), &want))
        return dl_fail(err, "byte size of %zu elements overflows", t->numel);
    if (r->end - r->begin != want)
        return dl_fail(err, "data_offsets hold %zu bytes but %zu %s elements need %zu", r->end - r->begin, t->numel,
                       dl_dtype_name(t->dtype), want);
    t->data = data + r->begin;
    t->nbytes = want;
    return 0;
}

static int check_metadata(json_t *md, dl_error *err) {
    if (!json_is_object(md)) return dl_fail(err, "'__metadata__' must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        if (!json_is_string(v)) return dl_fail(err, "'__metadata__' value of '%.64s' must be a string", k);
    }
    return 0;
}

/* qsort context is not portable, so sort (range, index) pairs and permute afterwards. */
typedef struct {
    st_range r;
    int idx;
} st_slot;

static int slot_cmp(const void *a, const void *b) {
    const st_slot *x = a, *y = b;
    if (x->r.begin != y->r.begin) return x->r.begin < y->r.begin ? -1 : 1;
    if (x->r.end != y->r.end) return x->r.end < y->r.end ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Puts tensors in file order and rejects any two non-empty ranges that share a byte. */
static int sort_and_check_overlap(dl_st_file *f, st_slot *slots, dl_error *err) {
    qsort(slots, (size_t)f->n, sizeof *slots, slot_cmp);
    size_t prev_end = 0;
    int prev = -1;
    for (int i = 0; i < f->n; i++) {
        const st_range *r = &slots[i].r;
        if (r->begin == r->end) continue;
        if (prev >= 0 && r->begin < prev_end)
            return dl_fail(err, "tensors '%.96s' and '%.96s' overlap", f->tensors[prev].name,
                           f->tensors[slots[i].idx].name);
        prev_end = r->end;
        prev = slots[i].idx;
    }
    dl_st_tensor *sorted = malloc((size_t)f->n * sizeof *sorted + 1);
    if (!sorted) return dl_fail(err, "out of memory");
    for (int i = 0; i < f->n; i++) sorted[i] = f->tensors[slots[i].idx];
    free(f->tensors);
    f->tensors = sorted;
    return 0;
}

static int parse_header(dl_st_file *f, json_t *h, const uint8_t *data, size_t data_len, dl_error *err) {
    if (!json_is_object(h)) return dl_fail(err, "header must be a JSON object");
    size_t cap = json_object_size(h);
    f->tensors = calloc(cap + 1, sizeof *f->tensors);
    st_slot *slots = calloc(cap + 1, sizeof *slots);
    if (!f->tensors || !slots) {
        free(slots);
        return dl_fail(err, "out of memory");
    }
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(h, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((rc = check_metadata(val, err))) break;
            f->metadata = json_incref(val);
            continue;
        }
        dl_st_tensor *t = &f->tensors[f->n];
        if ((rc = parse_entry(val, data, data_len, t, &slots[f->n].r, err))) {
            dl_fail_ctx(err, "tensor '%.128s'", key);
            break;
        }
        if (!(t->name = strdup(key))) {
            rc = dl_fail(err, "out of memory");
            break;
        }
        slots[f->n].idx = f->n;
        f->n++;
    }
    if (rc == 0) rc = sort_and_check_overlap(f, slots, err);
    free(slots);
    return rc;
}

static int parse_mapping(dl_st_file *f, dl_error *err) {
    const uint8_t *p = f->map.data;
    size_t len = f->map.len;
    if (len < 8) return dl_fail(err, "file is %zu bytes, too short for the 8-byte header length", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > len - 8)
        return dl_fail(err, "header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)hlen,
                       len);
    if (hlen > ST_MAX_HEADER)
        return dl_fail(err, "header length %llu exceeds the %llu-byte limit", (unsigned long long)hlen,
                       (unsigned long long)ST_MAX_HEADER);
    json_error_t je;
    json_t *h = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h) return dl_fail(err, "header is not valid JSON (line %d, column %d): %s", je.line, je.column, je.text);
    int rc = parse_header(f, h, p + 8 + hlen, len - 8 - (size_t)hlen, err);
    json_decref(h);
    return rc;
}

int dl_st_open(dl_st_file *f, const char *path, dl_error *err) {
    memset(f, 0, sizeof *f);
    if (dl_mmap_open(&f->map, path, err)) return -1;
    if (parse_mapping(f, err)) {
        dl_st_close(f);
        return dl_fail_ctx(err, "%s", path);
    }
    return 0;
}

void dl_st_close(dl_st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->metadata) json_decref(f->metadata);
    dl_mmap_close(&f->map);
    memset(f, 0, sizeof *f);
}

const dl_st_tensor *dl_st_find(const dl_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

int dl_st_read_f32(const dl_st_tensor *t, float *out, size_t n, dl_error *err) {
    if (n != t->numel)
        return dl_fail(err, "tensor '%s': has %zu elements, caller expected %zu", t->name ? t->name : "?", t->numel, n);
    const uint8_t *src = t->data;
    if (t->dtype == DL_F32) {
        if (n) memcpy(out, src, n * sizeof(float));
        return 0;
    }
    if (t->dtype != DL_F16 && t->dtype != DL_BF16)
        return dl_fail(err, "tensor '%s': dtype %s is not a float type (F32, F16, BF16)", t->name ? t->name : "?",
                       dl_dtype_name(t->dtype));
    float (*conv)(uint16_t) = t->dtype == DL_F16 ? dl_f16_to_f32 : dl_bf16_to_f32;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        out[i] = conv(h);
    }
    return 0;
}
