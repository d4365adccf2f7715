/* Open-addressing hash maps (linear probing, power-of-two capacity, at most half full). */
#include "tokenizer/internal.h"
#include <stdlib.h>
#include <string.h>

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0x94D049BB133111EBULL;
        h ^= h >> 29;
    }
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ h >> 32;
}

static size_t pow2_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    return cap;
}

int tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_for(expected);
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->slots ? 0 : -1;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slots);
    dl_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

void tok_strmap_clear(tok_strmap *m) {
    memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = 0;
    m->keys.len = 0;
}

static int strmap_grow(tok_strmap *m) {
    size_t nc = m->cap * 2;
    tok_strent *ns = calloc(nc, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        tok_strent *e = &m->slots[i];
        if (!e->used) continue;
        size_t j = e->hash & (nc - 1);
        while (ns[j].used) j = (j + 1) & (nc - 1);
        ns[j] = *e;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = nc;
    return 0;
}

const tok_strent *tok_strmap_get(const tok_strmap *m, const void *key, size_t len, uint64_t hash) {
    if (!m->cap) return NULL;
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const tok_strent *e = &m->slots[i];
        if (!e->used) return NULL;
        if (e->hash == hash && e->len == len && memcmp(m->keys.data + e->off, key, len) == 0) return e;
    }
}

tok_strent *tok_strmap_put(tok_strmap *m, const void *key, size_t len, uint64_t hash, int *added) {
    *added = 0;
    if (len > UINT32_MAX) return NULL;
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m)) return NULL;
    size_t i = hash & (m->cap - 1);
    for (;; i = (i + 1) & (m->cap - 1)) {
        tok_strent *e = &m->slots[i];
        if (!e->used) break;
        if (e->hash == hash && e->len == len && memcmp(m->keys.data + e->off, key, len) == 0) return e;
    }
    size_t off = m->keys.len;
    if (dl_buf_append(&m->keys, key, len)) return NULL;
    tok_strent *e = &m->slots[i];
    e->hash = hash;
    e->val = 0;
    e->off = off;
    e->len = (uint32_t)len;
    e->used = 1;
    m->n++;
    *added = 1;
    return e;
}

int tok_u64map_init(tok_u64map *m, size_t expected) {
    m->n = 0;
    m->cap = pow2_for(expected);
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].val = -1;
    return 0;
}

void tok_u64map_free(tok_u64map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int u64map_grow(tok_u64map *m) {
    size_t nc = m->cap * 2;
    tok_u64ent *ns = malloc(nc * sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < nc; i++) ns[i].val = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].val < 0) continue;
        size_t j = tok_u64_slot(m->slots[i].key, nc);
        while (ns[j].val >= 0) j = (j + 1) & (nc - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = nc;
    return 0;
}

int64_t *tok_u64map_put(tok_u64map *m, uint64_t key) {
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m)) return NULL;
    size_t i = tok_u64_slot(key, m->cap);
    for (;; i = (i + 1) & (m->cap - 1)) {
        tok_u64ent *e = &m->slots[i];
        if (e->val < 0) break;
        if (e->key == key) return &e->val;
    }
    m->slots[i].key = key;
    m->n++;
    return &m->slots[i].val; /* still -1: the caller stores a value >= 0 */
}
