/* libFuzzer target: tokenizer.json loading over arbitrary bytes (written to a temp file). A
 * tokenizer that loads must encode any text and decode it back to the same bytes, as its
 * header promises (spm_check.h: with the limits of a SentencePiece-style one); a mismatch traps. */
#include "spm_check.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(path, sizeof path, "/tmp/fuzz-tokenizer-%d.json", (int)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    size_t wrote = size ? fwrite(data, 1, size, fp) : 0;
    fclose(fp);
    if (wrote != size) return 0;
    dl_error err;
    dl_tokenizer *t = dl_tok_load(path, &err);
    if (!t) return 0;
    static const char text[] = "Hello, world! don't 12345 <|endoftext|>\n\t\xc3\xa9\xff\xfe  x";
    fuzz_roundtrip(t, text, sizeof text - 1, 0);
    fuzz_roundtrip(t, text, sizeof text - 1, 1);
    dl_tok_free(t);
    return 0;
}
