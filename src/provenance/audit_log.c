/* The audit's in-memory log: rows with their key, client and prompt interned into tables, so a
 * million rows take tens of bytes each plus a small digest per distinct prompt. */
#include "audit_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- uint64 -> int map ------------------------------------------------------------------------ */

static int map_grow(audit_map *m) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    uint64_t *k = malloc(cap * sizeof *k);
    int32_t *v = malloc(cap * sizeof *v);
    if (!k || !v) return free(k), free(v), -1;
    for (size_t i = 0; i < cap; i++) v[i] = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->v[i] < 0) continue;
        size_t j = (size_t)audit_mix(m->k[i]) & (cap - 1);
        while (v[j] >= 0) j = (j + 1) & (cap - 1);
        k[j] = m->k[i];
        v[j] = m->v[i];
    }
    free(m->k);
    free(m->v);
    m->k = k;
    m->v = v;
    m->cap = cap;
    return 0;
}

/* The value of key, or -1; with insert >= 0 and the key absent, stores insert and returns it. */
static int map_get(audit_map *m, uint64_t key, int insert) {
    if (insert >= 0 && 2 * (m->len + 1) > m->cap && map_grow(m)) return -2;
    if (!m->cap) return -1;
    size_t j = (size_t)audit_mix(key) & (m->cap - 1);
    for (; m->v[j] >= 0; j = (j + 1) & (m->cap - 1))
        if (m->k[j] == key) return m->v[j];
    if (insert < 0) return -1;
    m->k[j] = key;
    m->v[j] = insert;
    m->len++;
    return insert;
}

static void map_free(audit_map *m) {
    free(m->k);
    free(m->v);
}

/* Grows *p (n used, *cap slots of size elem) to hold one more. */
static int grow(void *p, size_t n, size_t *cap, size_t elem) {
    if (n < *cap) return 0;
    size_t c = *cap ? 2 * *cap : 64;
    void *g = realloc(*(void **)p, c * elem);
    if (!g) return -1;
    *(void **)p = g;
    *cap = c;
    return 0;
}

/* ---- the log ---------------------------------------------------------------------------------- */

dl_audit_log *dl_audit_log_new(dl_error *err) {
    dl_audit_log *L = calloc(1, sizeof *L);
    if (!L) dl_fail(err, "out of memory");
    return L;
}

void dl_audit_log_free(dl_audit_log *L) {
    if (!L) return;
    for (int i = 0; i < L->n_clients; i++) free(L->clients[i]);
    free(L->clients);
    free(L->rows);
    free(L->keys);
    free(L->prompts);
    free(L->pool);
    map_free(&L->key_map);
    map_free(&L->client_map);
    map_free(&L->prompt_map);
    free(L);
}

void audit_printable(char *dst, size_t n, const char *src) {
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    size_t o = 0;
    while (*s) {
        int k = (int)dl_utf8_char_len((const char *)s, strnlen((const char *)s, 4));
        if (o + (size_t)(k ? k : 1) + 1 > n) break;
        if (k == 0 || (k == 1 && (*s < 0x20 || *s == 0x7f))) {
            dst[o++] = '?';
            s++;
        } else {
            memcpy(dst + o, s, (size_t)k);
            o += (size_t)k;
            s += k;
        }
    }
    dst[o] = 0;
}

static int key_index(dl_audit_log *L, long long id, const char *name) {
    size_t cap = (size_t)L->cap_keys;
    if (grow(&L->keys, (size_t)L->n_keys, &cap, sizeof *L->keys)) return -1;
    L->cap_keys = (int)cap;
    int k = map_get(&L->key_map, audit_mix((uint64_t)id ^ 0x6b6579u), L->n_keys);
    if (k < -1) return -1;
    if (k == L->n_keys) {
        audit_keyrec *r = &L->keys[L->n_keys++];
        r->id = id;
        if (id == 0) snprintf(r->name, sizeof r->name, "(no key)");
        else snprintf(r->name, sizeof r->name, "key %lld", id);
    }
    if (name && *name && id != 0) audit_printable(L->keys[k].name, sizeof L->keys[k].name, name);
    return k;
}

static int client_index(dl_audit_log *L, const char *client) {
    if (!client || !*client) return -1;
    uint64_t h = audit_hash_bytes(client, strlen(client), 0xc11e47);
    int c = map_get(&L->client_map, h, -1);
    if (c >= 0) return c;
    size_t cap = (size_t)L->cap_clients;
    char *copy = malloc(64);
    if (!copy || grow(&L->clients, (size_t)L->n_clients, &cap, sizeof *L->clients)) return free(copy), -2;
    L->cap_clients = (int)cap;
    if (map_get(&L->client_map, h, L->n_clients) < 0) return free(copy), -2;
    audit_printable(copy, 64, client);
    L->clients[L->n_clients] = copy;
    return L->n_clients++;
}

static int pool_add(dl_audit_log *L, const uint32_t *h, int n, size_t *off) {
    while (L->pool_len + (size_t)n > L->pool_cap) {
        size_t cap = L->pool_cap ? 2 * L->pool_cap : 4096;
        uint32_t *g = realloc(L->pool, cap * sizeof *g);
        if (!g) return -1;
        L->pool = g;
        L->pool_cap = cap;
    }
    *off = L->pool_len;
    if (n) memcpy(L->pool + L->pool_len, h, (size_t)n * sizeof *h);
    L->pool_len += (size_t)n;
    return 0;
}

/* A prompt is known by its hash (or, without one, by its text); its text is digested once. */
static int prompt_index(dl_audit_log *L, const char *hash, const char *text) {
    uint64_t id;
    if (hash && *hash) id = audit_hash_bytes(hash, strlen(hash), 0x9a54);
    else if (text) id = audit_hash_bytes(text, strlen(text), 0x7e47);
    else return -1;
    size_t cap = (size_t)L->cap_prompts;
    if (grow(&L->prompts, (size_t)L->n_prompts, &cap, sizeof *L->prompts)) return -2;
    L->cap_prompts = (int)cap;
    int p = map_get(&L->prompt_map, id, L->n_prompts);
    if (p < -1) return -2;
    if (p == L->n_prompts) L->prompts[L->n_prompts++] = (audit_prompt){.id = id};
    audit_prompt *ap = &L->prompts[p];
    if (text && !ap->has_text) {
        uint32_t sh[AUDIT_KEEP], words[AUDIT_KEEP];
        if (audit_digest_text(text, sh, &ap->n_sh, words, &ap->n_words) || pool_add(L, sh, ap->n_sh, &ap->sh_off) ||
            pool_add(L, words, ap->n_words, &ap->word_off))
            return -2;
        ap->has_text = 1;
    }
    return p;
}

int dl_audit_log_add(dl_audit_log *L, const dl_audit_request *r, dl_error *err) {
    if (!isfinite(r->time) || r->key_id < 0 || r->prompt_tokens < 0 || r->completion_tokens < 0)
        return dl_fail(err, "audit: a request with a bad time, key id or token count");
    if (grow(&L->rows, L->n_rows, &L->cap_rows, sizeof *L->rows)) return dl_fail(err, "out of memory");
    int key = key_index(L, r->key_id, r->key_name);
    int client = key < 0 ? -2 : client_index(L, r->client);
    int prompt = client < -1 ? -2 : prompt_index(L, r->prompt_hash, r->prompt);
    if (prompt < -1) return dl_fail(err, "out of memory");
    L->rows[L->n_rows++] = (audit_row){.t = r->time, .key = key, .client = client, .prompt = prompt,
                                       .status = r->status, .max_tokens = r->max_tokens, .n = r->n,
                                       .logprobs = r->logprobs, .pt = r->prompt_tokens, .ct = r->completion_tokens};
    return 0;
}
