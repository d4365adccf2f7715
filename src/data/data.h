/* data: corpus -> token files, and the batch loader.
 *
 * Token file (train.bin / val.bin): a 64-byte little-endian header then the tokens.
 *   0  magic "DSTLTOK\0" (8 bytes)   8 version u32 (1)   12 dtype u32 (2 = uint16, 4 = uint32)
 *   16 vocab_size u32                 20 reserved u32     24 n_tokens u64   32..63 zero
 * uint16 is used when vocab_size <= 65536. */
#ifndef DISTIL_DATA_H
#define DISTIL_DATA_H

#include "base/base.h"
#include "tokenizer/tokenizer.h"

typedef struct dl_tokfile {
    dl_mmap map;
    int dtype_bytes;   /* 2 or 4 */
    uint32_t vocab_size;
    uint64_t n_tokens;
    const void *tokens;
} dl_tokfile;

/* Writes atomically (temp file, fsync, rename); fails on an id outside [0, vocab_size). */
int dl_tokfile_write(const char *path, const int32_t *ids, size_t n, uint32_t vocab_size, dl_error *err);
/* Maps the file and checks the header (magic, version, dtype, n_tokens * dtype == the bytes that
 * follow it) and that every id is below vocab_size, so callers may index embeddings with the ids
 * once they know vocab_size <= the model's V. */
int dl_tokfile_open(dl_tokfile *f, const char *path, dl_error *err);
void dl_tokfile_close(dl_tokfile *f);
static inline int32_t dl_tokfile_get(const dl_tokfile *f, uint64_t i) {
    return f->dtype_bytes == 2 ? (int32_t)((const uint16_t *)f->tokens)[i] : (int32_t)((const uint32_t *)f->tokens)[i];
}

/* Encodes the corpus, splitting it by documents-or-lines so the last val_fraction of the
 * text (at a line boundary) becomes val.bin. Writes DIR/train.bin, DIR/val.bin and a copy of
 * the tokenizer as DIR/tokenizer.json.
 * 0 < val_fraction < 0.5: a run always has held-out text to measure, and it is the smaller part.
 * Special-token strings in the corpus ("<|endoftext|>" between documents) become their ids.
 * Each file must hold at least DL_DATA_MIN_TOKENS tokens, else nothing is kept and it fails. */
#define DL_DATA_MIN_TOKENS 32
int dl_data_prepare(const char *corpus, const char *tokenizer_path, double val_fraction, const char *outdir,
                    dl_error *err);

/* Batch loader: windows of T+1 tokens. Each global batch is B*world windows whose start
 * offsets come from a permutation keyed by (seed, epoch); rank r takes rows r*B .. r*B+B-1.
 * The position (global batch index) is all a checkpoint needs to resume.
 * Window w is tokens w*T .. w*T+T (neighbours share one token). Sample s of the run (counted
 * over all ranks) lies in epoch s / n_windows, so a batch may straddle two epochs, and a file
 * with fewer windows than a batch has rows simply repeats them. Fewer than T+1 tokens: error. */
typedef struct dl_loader {
    const dl_tokfile *f;
    int B, T, rank, world;
    uint64_t seed;
    uint64_t n_windows; /* (n_tokens-1)/T */
    uint64_t batch_index; /* next global batch */
    uint64_t *perm;       /* permutation of windows for the current epoch */
    uint64_t perm_epoch;
} dl_loader;

int dl_loader_init(dl_loader *ld, const dl_tokfile *f, int B, int T, uint64_t seed, int rank, int world,
                   dl_error *err);
/* inputs, targets: (B,T). Advances batch_index. */
void dl_loader_next(dl_loader *ld, int32_t *inputs, int32_t *targets);
/* As dl_loader_next; starts (B) also receives each row's window start, the token index in the
 * file of inputs[b*T] (a teacher cache indexed by token position reads its rows from there). */
void dl_loader_next_starts(dl_loader *ld, int32_t *inputs, int32_t *targets, uint64_t *starts);
void dl_loader_seek(dl_loader *ld, uint64_t batch_index);
void dl_loader_free(dl_loader *ld);

#endif
