/* Prompt texts as sets: words, word 3-shingles, bottom-k sketches and MinHash signatures.
 * Jaccard similarity of shingle sets is what "these prompts share a template" means here: two
 * fills of one template share the template's shingles and differ in the fill's. */
#include "audit_internal.h"
#include <stdlib.h>
#include <string.h>

/* splitmix64's finaliser: a bijection that spreads every input bit */
uint64_t audit_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* FNV-1a, then mixed */
uint64_t audit_hash_bytes(const void *p, size_t n, uint64_t seed) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return audit_mix(h);
}

static int is_word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80; }

/* The chat template's role lines (serve/api.h) are the server's, not the client's: skipped. */
static size_t role_line(const char *p) {
    static const char *ROLES[] = {"### System:", "### User:", "### Assistant:"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(ROLES[i]);
        if (strncmp(p, ROLES[i], n) == 0 && (p[n] == '\n' || p[n] == 0)) return n;
    }
    return 0;
}

/* Hashes of the words of text (at most AUDIT_TEXT_MAX bytes), in order; *out malloc'ed. */
static int word_hashes(const char *text, uint64_t **out, int *n) {
    size_t len = strnlen(text, AUDIT_TEXT_MAX);
    uint64_t *w = malloc((len / 2 + 1) * sizeof *w);
    if (!w) return -1;
    int k = 0;
    size_t i = 0;
    while (i < len) {
        if ((i == 0 || text[i - 1] == '\n') && text[i] == '#') i += role_line(text + i);
        if (i >= len) break;
        if (!is_word_byte((unsigned char)text[i])) {
            i++;
            continue;
        }
        uint64_t h = 0xcbf29ce484222325ull;
        for (; i < len && is_word_byte((unsigned char)text[i]); i++) {
            unsigned char c = (unsigned char)text[i];
            h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 0x100000001b3ull;
        }
        w[k++] = audit_mix(h);
    }
    *out = w;
    *n = k;
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts h[0..n), drops repeats, keeps the AUDIT_KEEP smallest in out; returns how many. */
static int bottom_k(uint32_t *h, int n, uint32_t out[AUDIT_KEEP]) {
    qsort(h, (size_t)n, sizeof *h, cmp_u32);
    int k = 0;
    for (int i = 0; i < n && k < AUDIT_KEEP; i++)
        if (k == 0 || h[i] != out[k - 1]) out[k++] = h[i];
    return k;
}

int audit_digest_text(const char *text, uint32_t sh[AUDIT_KEEP], int *n_sh, uint32_t words[AUDIT_KEEP], int *n_words) {
    uint64_t *w;
    int nw;
    *n_sh = *n_words = 0;
    if (word_hashes(text, &w, &nw)) return -1;
    uint32_t *tmp = malloc(((size_t)nw + 1) * sizeof *tmp);
    if (!tmp) return free(w), -1;
    int ns = 0;
    if (nw > 0 && nw < 3) tmp[ns++] = (uint32_t)(audit_mix(w[0] ^ audit_mix(nw > 1 ? w[1] : 0)) >> 32);
    for (int i = 0; i + 2 < nw; i++) tmp[ns++] = (uint32_t)(audit_mix(w[i] ^ audit_mix(w[i + 1] ^ audit_mix(w[i + 2]))) >> 32);
    *n_sh = bottom_k(tmp, ns, sh);
    for (int i = 0; i < nw; i++) tmp[i] = (uint32_t)(w[i] >> 32);
    *n_words = bottom_k(tmp, nw, words);
    free(tmp);
    free(w);
    return 0;
}

void audit_minhash(const uint32_t *set, int n, uint32_t sig[AUDIT_SIG]) {
    for (int k = 0; k < AUDIT_SIG; k++) {
        uint64_t seed = audit_mix((uint64_t)(k + 1) * 0xd1b54a32d192ed03ull);
        uint32_t best = UINT32_MAX;
        for (int i = 0; i < n; i++) {
            uint32_t v = (uint32_t)(audit_mix(set[i] ^ seed) >> 32);
            if (v < best) best = v;
        }
        sig[k] = best;
    }
}

double audit_sig_jaccard(const uint32_t *a, const uint32_t *b) {
    int same = 0;
    for (int k = 0; k < AUDIT_SIG; k++) same += a[k] == b[k];
    return (double)same / AUDIT_SIG;
}
