/* safetensors writer: tensors in the given order with contiguous offsets, the header padded
 * with spaces to a multiple of 8 (so data starts aligned), streamed to a temp file that is
 * fsynced and renamed: the tensors are never copied into one big buffer. */
#include "formats/safetensors.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_tensor(const dl_st_tensor *t, int i, dl_error *err) {
    if (!t->name || !t->name[0]) return dl_fail(err, "tensor %d has no name", i);
    if (strcmp(t->name, "__metadata__") == 0) return dl_fail(err, "'__metadata__' is not a valid tensor name");
    if ((unsigned)t->dtype >= DL_DTYPE_UNKNOWN) return dl_fail(err, "tensor '%s': unknown dtype", t->name);
    if (t->ndim < 0 || t->ndim > DL_ST_MAX_DIMS)
        return dl_fail(err, "tensor '%s': %d dimensions (0..%d supported)", t->name, t->ndim, DL_ST_MAX_DIMS);
    size_t numel = 1, nbytes;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (uint64_t)t->shape[d] > SIZE_MAX || dl_mul_size(numel, (size_t)t->shape[d], &numel))
            return dl_fail(err, "tensor '%s': bad shape[%d] = %lld", t->name, d, (long long)t->shape[d]);
    }
    if (dl_mul_size(numel, dl_dtype_size(t->dtype), &nbytes) || nbytes != t->nbytes)
        return dl_fail(err, "tensor '%s': shape needs %zu %s elements but nbytes is %zu", t->name, numel,
                       dl_dtype_name(t->dtype), t->nbytes);
    if (nbytes && !t->data) return dl_fail(err, "tensor '%s': no data", t->name);
    return 0;
}

static json_t *tensor_entry(const dl_st_tensor *t, size_t begin) {
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", dl_dtype_name(t->dtype), "shape", shape, "data_offsets",
                     (json_int_t)begin, (json_int_t)(begin + t->nbytes));
}

static json_t *metadata_object(const char *const *md, dl_error *err) {
    json_t *o = json_object();
    for (int i = 0; md[i]; i += 2) {
        if (!md[i + 1]) {
            json_decref(o);
            dl_fail(err, "metadata key '%s' has no value", md[i]);
            return NULL;
        }
        if (json_object_set_new(o, md[i], json_string(md[i + 1]))) {
            json_decref(o);
            dl_fail(err, "metadata '%s' is not valid UTF-8", md[i]);
            return NULL;
        }
    }
    return o;
}

/* The JSON header text, padded with spaces to a multiple of 8. */
static char *build_header(const dl_st_tensor *ts, int n, const char *const *md, size_t *len, dl_error *err) {
    json_t *h = json_object();
    if (md) {
        json_t *m = metadata_object(md, err);
        if (!m) goto fail;
        json_object_set_new(h, "__metadata__", m);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (check_tensor(&ts[i], i, err)) goto fail;
        if (json_object_get(h, ts[i].name)) {
            dl_fail(err, "tensor name '%s' appears twice", ts[i].name);
            goto fail;
        }
        json_t *e = tensor_entry(&ts[i], off);
        if (!e || json_object_set_new(h, ts[i].name, e)) {
            dl_fail(err, "tensor '%s': cannot build header entry", ts[i].name);
            goto fail;
        }
        off += ts[i].nbytes;
    }
    char *s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!s) return dl_fail(err, "cannot serialise header"), NULL;
    size_t k = strlen(s), padded = (k + 7) / 8 * 8;
    char *out = realloc(s, padded + 1);
    if (!out) {
        free(s);
        return dl_fail(err, "out of memory"), NULL;
    }
    memset(out + k, ' ', padded - k);
    out[padded] = 0;
    *len = padded;
    return out;
fail:
    json_decref(h);
    return NULL;
}

static void write_body(dl_atomic_file *f, const char *header, size_t hlen, const dl_st_tensor *ts, int n) {
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    dl_atomic_write(f, lenbytes, 8);
    dl_atomic_write(f, header, hlen);
    for (int i = 0; i < n; i++) dl_atomic_write(f, ts[i].data, ts[i].nbytes);
}

int dl_st_write(const char *path, const dl_st_tensor *tensors, int n, const char *const *metadata, dl_error *err) {
    if (n < 0 || (n > 0 && !tensors)) return dl_fail(err, "%s: bad tensor list", path);
    size_t hlen;
    char *header = build_header(tensors, n, metadata, &hlen, err);
    if (!header) return dl_fail_ctx(err, "%s", path);
    dl_atomic_file f;
    if (dl_atomic_open(&f, path, err)) {
        free(header);
        return -1;
    }
    write_body(&f, header, hlen, tensors, n);
    free(header);
    return dl_atomic_commit(&f, err);
}
