/* Streaming token-file writer, private to src/data: dl_data_prepare appends chunk by chunk so a
 * large corpus never needs all its ids in memory at once. */
#ifndef DISTIL_TOKWRITER_H
#define DISTIL_TOKWRITER_H

#include "data.h"

/* Tokens stream into a dl_atomic_file; the header is written last. */
typedef struct dl_tokwriter {
    dl_atomic_file file;
    int dtype_bytes;
    uint32_t vocab_size;
    uint64_t n_tokens;
} dl_tokwriter;

int dl_tokwriter_open(dl_tokwriter *w, const char *path, uint32_t vocab_size, dl_error *err);
/* Fails (leaving the writer open; call abort) on an id outside [0, vocab_size). */
int dl_tokwriter_append(dl_tokwriter *w, const int32_t *ids, size_t n, dl_error *err);
/* Writes the header, fsyncs and renames into place. The writer is closed either way. */
int dl_tokwriter_finish(dl_tokwriter *w, dl_error *err);
/* Closes and removes the temp file. Safe to call twice. */
void dl_tokwriter_abort(dl_tokwriter *w);

#endif
