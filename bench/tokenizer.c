/* Tokenizer benchmark: trains a byte-level BPE on a corpus, then times encode and decode of
 * the whole corpus and checks that they round-trip. Prints one JSON line.
 * usage: bench_tokenizer CORPUS [VOCAB_SIZE (4096)] */
#include "base/base.h"
#include "tokenizer/tokenizer.h"
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CORPUS [VOCAB_SIZE]\n", argv[0]);
        return 2;
    }
    int vocab = argc > 2 ? atoi(argv[2]) : 4096;
    dl_error err;
    char *text;
    size_t len;
    if (dl_read_file(argv[1], &text, &len, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }

    double t0 = dl_now();
    dl_tokenizer *t = dl_tok_train(text, len, vocab, NULL, &err);
    double train_s = dl_now() - t0;
    if (!t) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }

    /* encode and decode the whole corpus repeatedly for at least a second each */
    dl_ivec ids = {0};
    double enc_s = 0;
    int enc_reps = 0;
    while (enc_reps < 3 || enc_s < 1.0) {
        ids.len = 0;
        double s = dl_now();
        if (dl_tok_encode(t, text, len, 1, &ids, &err)) {
            fprintf(stderr, "bench_tokenizer: encode: %s\n", err.msg);
            return 1;
        }
        enc_s += dl_now() - s;
        enc_reps++;
    }
    dl_buf out = {0};
    double dec_s = 0;
    int dec_reps = 0;
    while (dec_reps < 3 || dec_s < 1.0) {
        out.len = 0;
        double s = dl_now();
        if (dl_tok_decode(t, ids.data, ids.len, &out, &err)) {
            fprintf(stderr, "bench_tokenizer: decode: %s\n", err.msg);
            return 1;
        }
        dec_s += dl_now() - s;
        dec_reps++;
    }
    int roundtrip = out.len == len && memcmp(out.data, text, len) == 0;
    if (!roundtrip) fprintf(stderr, "bench_tokenizer: decode(encode(corpus)) differs from the corpus\n");

    printf("{\"corpus_bytes\": %zu, \"vocab_size\": %d, \"train_seconds\": %.3f, \"tokens\": %zu, "
           "\"bytes_per_token\": %.3f, \"encode_mb_per_s\": %.2f, \"decode_mb_per_s\": %.2f, \"roundtrip\": %s}\n",
           len, dl_tok_vocab_size(t), train_s, ids.len, ids.len ? (double)len / (double)ids.len : 0.0,
           (double)len * enc_reps / enc_s / 1e6, (double)len * dec_reps / dec_s / 1e6, roundtrip ? "true" : "false");
    dl_ivec_free(&ids);
    dl_buf_free(&out);
    dl_tok_free(t);
    free(text);
    return roundtrip ? 0 : 1;
}
