/* libFuzzer target: llama2.c's tokenizer.bin over arbitrary bytes. The first two bytes are the
 * vocabulary size the checkpoint would give (little-endian), the rest is the file. A tokenizer
 * that loads must encode and decode text (spm_check.h). */
#include "spm_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int n_vocab = data[0] | data[1] << 8;
    dl_error err;
    dl_tokenizer *t = dl_tok_load_llama2c(data + 2, size - 2, n_vocab, &err);
    if (!t) return 0;
    static const char text[] = "Hello, world! don't 12345 </s>\n\t\xc3\xa9\xff\xfe  x \xe6\x97\xa5\xf0\x9f\x98\x80";
    fuzz_roundtrip(t, text, sizeof text - 1, 0);
    fuzz_roundtrip(t, text, sizeof text - 1, 1);
    dl_tok_free(t);
    return 0;
}
