/* libFuzzer target: the GGUF reader over arbitrary bytes. Whatever it accepts must be safe to
 * walk: every value, every array element and every tensor byte is read. */
#include "formats/gguf.h"
#include <string.h>

static float scratch[1 << 16];

static unsigned touch_kv(const dl_gguf_file *f, const dl_gguf_kv *kv) {
    unsigned sum = (unsigned)strlen(kv->key);
    const char *s;
    size_t n;
    int64_t v;
    double d;
    int b;
    dl_error err;
    if (kv->type != DL_GGUF_ARRAY) {
        if (dl_gguf_get_str(f, kv->key, &s, &n, &err) == 0)
            for (size_t j = 0; j < n; j++) sum += (unsigned char)s[j];
        if (dl_gguf_get_int(f, kv->key, &v, &err) == 0) sum += (unsigned)v;
        if (dl_gguf_get_float(f, kv->key, &d, &err) == 0) sum += d > 0;
        if (dl_gguf_get_bool(f, kv->key, &b, &err) == 0) sum += (unsigned)b;
        return sum;
    }
    for (uint64_t i = 0; i < kv->n; i++) {
        if (kv->elem_type == DL_GGUF_STRING) {
            dl_gguf_arr_str(kv, i, &s, &n);
            for (size_t j = 0; j < n; j++) sum += (unsigned char)s[j];
        } else if (dl_gguf_arr_int(kv, i, &v) == 0) {
            sum += (unsigned)v;
        }
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dl_gguf_file f;
    dl_error err;
    if (dl_gguf_open_mem(&f, data, size, &err) != 0) return 0;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < f.n_kv; i++) sum += touch_kv(&f, &f.kv[i]);
    for (size_t i = 0; i < f.n_tensors; i++) {
        const dl_gguf_tensor *t = &f.tensors[i];
        for (size_t j = 0; j < t->nbytes; j++) sum += t->data[j];
        if (t->numel <= sizeof scratch / sizeof scratch[0] &&
            dl_gguf_tensor_to_f32(t, scratch, (size_t)t->numel, &err) == 0)
            sum += scratch[0] > 0;
        if (dl_gguf_find_tensor(&f, t->name) != t) __builtin_trap(); /* names are unique */
    }
    (void)sum;
    dl_gguf_close(&f);
    return 0;
}
