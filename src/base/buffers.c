#include "base.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int dl_ivec_reserve(dl_ivec *v, size_t cap) {
    if (cap <= v->cap) return 0;
    size_t nc = v->cap ? v->cap : 16;
    while (nc < cap) nc *= 2;
    int32_t *p = realloc(v->data, nc * sizeof *p);
    if (!p) return -1;
    v->data = p;
    v->cap = nc;
    return 0;
}

int dl_ivec_push(dl_ivec *v, int32_t x) {
    if (v->len == v->cap && dl_ivec_reserve(v, v->len + 1)) return -1;
    v->data[v->len++] = x;
    return 0;
}

void dl_ivec_free(dl_ivec *v) {
    free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

int dl_buf_append(dl_buf *b, const void *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *q = realloc(b->data, nc);
        if (!q) return -1;
        b->data = q;
        b->cap = nc;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int dl_buf_printf(dl_buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof small) return dl_buf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = dl_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void dl_buf_free(dl_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

float *dl_alloc_floats(float **const *views, const size_t *sizes, int n, size_t *total) {
    size_t sum = 0;
    for (int i = 0; i < n; i++)
        if (dl_add_size(sum, sizes[i], &sum)) return NULL;
    if (total) *total = sum;
    float *mem = sum < SIZE_MAX / sizeof(float) ? malloc((sum ? sum : 1) * sizeof(float)) : NULL;
    if (!mem) return NULL;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (views[i]) *views[i] = mem + off;
        off += sizes[i];
    }
    return mem;
}
