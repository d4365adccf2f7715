/* BPE training.
 *
 * The corpus is pre-tokenized once and reduced to its unique words with their counts. Each
 * word is an array of token ids. For every adjacent pair we keep its total count and the
 * list of words it occurs in; a max-heap orders pairs by (count, then smallest ids), with lazy
 * deletion: an entry whose count is out of date is re-pushed with the current count when it
 * reaches the top. A merge rewrites only the words on the merged pair's list and adjusts the
 * counts of the pairs around each occurrence, so a merge costs what it touches, not the corpus.
 * Only pairs that contain the new token can gain count, and they are pushed after the merge. */
#include "tokenizer/internal.h"
#include <stdlib.h>
#include <string.h>

typedef struct hent { int64_t count; int32_t a, b; } hent;

typedef struct tpair {
    int32_t a, b;
    int64_t count;
    int32_t *words; /* words it occurs in; may hold stale entries, never the same word twice in a row */
    uint32_t nw, cw;
    uint32_t mark; /* the merge step that last put it on the changed list */
} tpair;

typedef struct trainer {
    tok_strmap wmap; /* word bytes -> word index */
    int64_t *wcount;
    size_t *woff;    /* into syms */
    uint32_t *wlen;
    uint32_t *wstep; /* last merge step that rewrote the word */
    size_t nwords, cwords;
    int32_t *syms;
    tpair *pairs;
    size_t npairs, cpairs;
    tok_u64map pmap; /* pair key -> index in pairs */
    hent *heap;
    size_t nheap, cheap;
    int32_t *changed;
    size_t nchanged, cchanged;
    uint32_t step;
    int oom;
    dl_error *err;
} trainer;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* ---- counting words ------------------------------------------------------------------------ */

static int count_word(void *vc, const char *p, size_t n) {
    trainer *tr = vc;
    if (n > UINT32_MAX) return dl_fail(tr->err, "pre-token of %zu bytes is too long", n);
    int added;
    tok_strent *e = tok_strmap_put(&tr->wmap, p, n, tok_hash_bytes(p, n), &added);
    if (!e) return dl_fail(tr->err, "out of memory counting words");
    if (!added) {
        tr->wcount[e->val]++;
        return 0;
    }
    if (grow((void **)&tr->wcount, &tr->cwords, tr->nwords + 1, sizeof *tr->wcount))
        return dl_fail(tr->err, "out of memory counting words");
    e->val = tr->nwords;
    tr->wcount[tr->nwords++] = 1;
    return 0;
}

/* ---- pair bookkeeping ---------------------------------------------------------------------- */

static int hent_better(const hent *x, const hent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static void heap_push(trainer *tr, hent x) {
    if (grow((void **)&tr->heap, &tr->cheap, tr->nheap + 1, sizeof *tr->heap)) {
        tr->oom = 1;
        return;
    }
    size_t i = tr->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hent_better(&x, &tr->heap[p])) break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = x;
}

static hent heap_pop(trainer *tr) {
    hent top = tr->heap[0], x = tr->heap[--tr->nheap];
    size_t i = 0, m = tr->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hent_better(&tr->heap[c + 1], &tr->heap[c])) c++;
        if (!hent_better(&tr->heap[c], &x)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (m) tr->heap[i] = x;
    return top;
}

/* Adds delta occurrences of pair (a,b), found in word w when delta > 0. */
static void pair_add(trainer *tr, int32_t a, int32_t b, int64_t delta, int32_t w) {
    uint64_t key = tok_pair_key(a, b);
    if (delta < 0) {
        int64_t idx = tok_u64map_get(&tr->pmap, key);
        if (idx >= 0) tr->pairs[idx].count += delta;
        return;
    }
    int64_t *slot = tok_u64map_put(&tr->pmap, key);
    if (!slot) {
        tr->oom = 1;
        return;
    }
    if (*slot < 0) {
        if (grow((void **)&tr->pairs, &tr->cpairs, tr->npairs + 1, sizeof *tr->pairs)) {
            tr->oom = 1;
            return;
        }
        tpair *np = &tr->pairs[tr->npairs];
        memset(np, 0, sizeof *np);
        np->a = a;
        np->b = b;
        np->mark = UINT32_MAX;
        *slot = (int64_t)tr->npairs++;
    }
    tpair *p = &tr->pairs[*slot];
    p->count += delta;
    if (p->nw == 0 || p->words[p->nw - 1] != w) {
        size_t cw = p->cw;
        if (grow((void **)&p->words, &cw, (size_t)p->nw + 1, sizeof *p->words) || cw > UINT32_MAX) {
            tr->oom = 1;
            return;
        }
        p->cw = (uint32_t)cw;
        p->words[p->nw++] = w;
    }
    if (p->mark != tr->step) {
        p->mark = tr->step;
        if (grow((void **)&tr->changed, &tr->cchanged, tr->nchanged + 1, sizeof *tr->changed)) {
            tr->oom = 1;
            return;
        }
        tr->changed[tr->nchanged++] = (int32_t)*slot;
    }
}

/* Replaces every (a,b) in word w by c, left to right, and moves the counts of the pairs
 * around each occurrence: x a b y loses (x,a) (a,b) (b,y) and gains (x,c) (c,y). When
 * occurrences touch (a a a with a+a), the left neighbour is the c just written, as in the
 * sequential rewrite that encoding will do. */
static void merge_word(trainer *tr, int32_t w, int32_t a, int32_t b, int32_t c) {
    int32_t *s = tr->syms + tr->woff[w];
    uint32_t n = tr->wlen[w], i = 0, j = 0;
    int64_t cnt = tr->wcount[w];
    while (i < n) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (j > 0) {
                pair_add(tr, s[j - 1], a, -cnt, w);
                pair_add(tr, s[j - 1], c, cnt, w);
            }
            if (i + 2 < n) {
                pair_add(tr, b, s[i + 2], -cnt, w);
                pair_add(tr, c, s[i + 2], cnt, w);
            }
            pair_add(tr, a, b, -cnt, w);
            s[j++] = c;
            i += 2;
        } else {
            s[j++] = s[i++];
        }
    }
    tr->wlen[w] = j;
}

/* ---- the whole training -------------------------------------------------------------------- */

static int nop_added(void *ctx, int idx) {
    (void)ctx;
    (void)idx;
    return 0;
}

typedef struct count_ctx { trainer *tr; const dl_tokenizer *t; pcre2_match_data *md; } count_ctx;

static int count_segment(void *vc, const char *p, size_t n) {
    count_ctx *c = vc;
    return tok_pretokenize(c->t, c->md, p, n, count_word, c->tr, c->tr->err);
}

static void trainer_free(trainer *tr) {
    tok_strmap_free(&tr->wmap);
    free(tr->wcount);
    free(tr->woff);
    free(tr->wlen);
    free(tr->wstep);
    free(tr->syms);
    for (size_t i = 0; i < tr->npairs; i++) free(tr->pairs[i].words);
    free(tr->pairs);
    tok_u64map_free(&tr->pmap);
    free(tr->heap);
    free(tr->changed);
}

static int check_specials(const char *const *specials, int *n_out, dl_error *err) {
    int n = 0;
    for (; specials[n]; n++) {
        size_t len = strlen(specials[n]);
        if (len == 0) return dl_fail(err, "special token %d is empty", n);
        if (len > 1024) return dl_fail(err, "special token %d is %zu bytes long (at most 1024)", n, len);
        if (!tok_utf8_valid(specials[n], len)) return dl_fail(err, "special token %d is not valid UTF-8", n);
        for (int k = 0; k < n; k++)
            if (strcmp(specials[k], specials[n]) == 0) return dl_fail(err, "special token '%s' is listed twice", specials[n]);
        if (n >= 1000) return dl_fail(err, "too many special tokens");
    }
    *n_out = n;
    return 0;
}

dl_tokenizer *dl_tok_train(const char *text, size_t len, int vocab_size, const char *const *specials, dl_error *err) {
    static const char *const default_specials[] = {DL_EOT, NULL};
    if (!specials) specials = default_specials;
    int n_special = 0;
    if (check_specials(specials, &n_special, err)) return NULL;
    if (vocab_size < 256 + n_special || vocab_size > TOK_MAX_VOCAB) {
        dl_fail(err, "vocabulary size %d out of range (%d..%d: 256 bytes + merges + %d special)", vocab_size,
                256 + n_special, TOK_MAX_VOCAB, n_special);
        return NULL;
    }
    int32_t target = vocab_size - 256 - n_special;
    double t0 = dl_now();

    dl_tokenizer *t = tok_alloc(err);
    if (!t) return NULL;
    trainer tr = {.err = err};
    tok_merge *merges = NULL;
    pcre2_match_data *md = NULL;
    if (tok_set_pattern(t, PRETOK_BYTELEVEL, TOK_GPT2_PATTERN, err)) goto fail;
    t->added = calloc((size_t)n_special, sizeof *t->added);
    if (n_special && !t->added) goto oom;
    for (int k = 0; k < n_special; k++) {
        tok_added *a = &t->added[t->n_added];
        if (!(a->content = strdup(specials[k]))) goto oom;
        t->n_added++;
        a->len = strlen(a->content);
        a->special = 1;
        a->in_vocab = 1;
        a->id = -1;
    }

    /* 1. unique words and their counts; special strings are cut out first */
    md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md || tok_strmap_init(&tr.wmap, 1 << 14)) goto oom;
    count_ctx cc = {&tr, t, md};
    if (tok_split_added(t, text, len, 1, count_segment, nop_added, &cc, err)) goto fail;
    pcre2_match_data_free(md);
    md = NULL;

    /* 2. words as arrays of byte ids, and the pairs in them */
    size_t nw = tr.nwords, total = tr.wmap.keys.len;
    tr.woff = malloc((nw + 1) * sizeof *tr.woff);
    tr.wlen = malloc((nw + 1) * sizeof *tr.wlen);
    tr.wstep = calloc(nw + 1, sizeof *tr.wstep);
    tr.syms = malloc((total + 1) * sizeof *tr.syms);
    if (!tr.woff || !tr.wlen || !tr.wstep || !tr.syms) goto oom;
    for (size_t i = 0; i < tr.wmap.cap; i++) {
        const tok_strent *e = &tr.wmap.slots[i];
        if (!e->used) continue;
        tr.woff[e->val] = e->off; /* keys sit in the arena in first-seen order */
        tr.wlen[e->val] = e->len;
    }
    for (size_t i = 0; i < total; i++) tr.syms[i] = (unsigned char)tr.wmap.keys.data[i];
    tok_strmap_free(&tr.wmap);
    if (tok_u64map_init(&tr.pmap, 1 << 16)) goto oom;
    for (size_t w = 0; w < nw; w++) {
        const int32_t *s = tr.syms + tr.woff[w];
        for (uint32_t i = 0; i + 1 < tr.wlen[w]; i++) pair_add(&tr, s[i], s[i + 1], tr.wcount[w], (int32_t)w);
    }
    tr.nchanged = 0;
    for (size_t i = 0; i < tr.npairs; i++) heap_push(&tr, (hent){tr.pairs[i].count, tr.pairs[i].a, tr.pairs[i].b});
    if (tr.oom) goto oom;

    /* 3. merges */
    size_t cmerges = 0;
    int32_t n_merges = 0;
    dl_progress prog;
    int prog_on = 0;
    dl_progress_start(&prog, "tokenizer: merges", target);
    while (n_merges < target && tr.nheap > 0) {
        hent top = heap_pop(&tr);
        int64_t idx = tok_u64map_get(&tr.pmap, tok_pair_key(top.a, top.b));
        if (idx < 0) continue;
        tpair *p = &tr.pairs[idx];
        if (p->count != top.count) { /* out of date: put it back with what it has now */
            if (p->count > 0) heap_push(&tr, (hent){p->count, p->a, p->b});
            if (tr.oom) goto oom;
            continue;
        }
        if (p->count <= 0) continue;
        int32_t a = p->a, b = p->b, c = 256 + n_merges;
        if (grow((void **)&merges, &cmerges, (size_t)n_merges + 1, sizeof *merges)) goto oom;
        merges[n_merges++] = (tok_merge){a, b, c};
        tr.step++;
        tr.nchanged = 0;
        int32_t *list = p->words; /* no occurrence of (a,b) can appear again: detach the list */
        uint32_t nlist = p->nw;
        p->words = NULL;
        p->nw = p->cw = 0;
        for (uint32_t k = 0; k < nlist; k++) {
            int32_t w = list[k];
            if (tr.wstep[w] == tr.step) continue;
            tr.wstep[w] = tr.step;
            merge_word(&tr, w, a, b, c);
        }
        free(list);
        for (size_t k = 0; k < tr.nchanged; k++) {
            const tpair *q = &tr.pairs[tr.changed[k]];
            if (q->count > 0) heap_push(&tr, (hent){q->count, q->a, q->b});
        }
        if (tr.oom) goto oom;
        if (prog_on || dl_now() - t0 > 2.0) {
            prog_on = 1;
            dl_progress_update(&prog, n_merges, NULL);
        }
    }
    if (prog_on) dl_progress_finish(&prog);
    if (n_merges < target)
        dl_log("tokenizer: the corpus ran out of pairs after %d merges; vocabulary %d instead of %d", (int)n_merges,
               256 + (int)n_merges + n_special, vocab_size);
    trainer_free(&tr);
    memset(&tr, 0, sizeof tr);

    /* 4. the tokenizer: bytes, merges, specials */
    if (tok_alloc_ids(t, 256 + n_merges + n_special, err)) goto fail;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if (tok_set_token(t, b, &c, 1, TOK_REGULAR, err)) goto fail;
    }
    dl_buf tmp = {0};
    for (int32_t k = 0; k < n_merges; k++) {
        const tok_merge *m = &merges[k];
        tmp.len = 0;
        if (dl_buf_append(&tmp, t->arena.data + t->off[m->a], t->len[m->a]) ||
            dl_buf_append(&tmp, t->arena.data + t->off[m->b], t->len[m->b])) {
            dl_buf_free(&tmp);
            goto oom;
        }
        if (tok_set_token(t, m->c, tmp.data, tmp.len, TOK_REGULAR, err)) {
            dl_buf_free(&tmp);
            goto fail;
        }
    }
    dl_buf_free(&tmp);
    t->merges = merges;
    t->n_merges = n_merges;
    merges = NULL;
    for (int k = 0; k < t->n_added; k++) {
        tok_added *ad = &t->added[k];
        ad->id = 256 + n_merges + k;
        if (tok_set_token(t, ad->id, ad->content, ad->len, TOK_ADDED, err)) goto fail;
    }
    if (tok_finish(t, err)) goto fail;
    dl_debug("tokenizer: trained %d merges on %zu bytes in %.2fs", (int)n_merges, len, dl_now() - t0);
    return t;

oom:
    dl_fail(err, "out of memory while training the tokenizer");
fail:
    if (md) pcre2_match_data_free(md);
    trainer_free(&tr);
    free(merges);
    dl_tok_free(t);
    return NULL;
}

dl_tokenizer *dl_tok_train_file(const char *corpus_path, int vocab_size, const char *const *specials,
                                const char *out_path, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(corpus_path, &text, &len, err)) return NULL;
    if (len == 0) {
        free(text);
        dl_fail(err, "%s: the corpus is empty: there is nothing to learn merges from", corpus_path);
        return NULL;
    }
    dl_tokenizer *t = dl_tok_train(text, len, vocab_size, specials, err);
    free(text);
    if (!t) {
        dl_fail_ctx(err, "%s", corpus_path);
        return NULL;
    }
    if (dl_tok_save(t, out_path, err)) {
        dl_tok_free(t);
        return NULL;
    }
    return t;
}
