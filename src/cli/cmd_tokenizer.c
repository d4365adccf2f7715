#include "cli.h"
#include "tokenizer/tokenizer.h"
#include <stdlib.h>
#include <string.h>

static int tok_train(int argc, char **argv) {
    const char *corpus = NULL, *out = NULL, *special = NULL;
    int vocab = 0;
    cli_flag flags[] = {
        {"corpus", FLAG_STR, &corpus, "text file to train on", 1, 0},
        {"vocab-size", FLAG_INT, &vocab, "vocabulary size: 256 bytes + merges + special tokens", 1, 0},
        {"out", FLAG_STR, &out, "tokenizer.json to write", 1, 0},
        {"special", FLAG_STR, &special, "one more special token, after " DL_EOT, 0, 0},
        {0},
    };
    int rc = cli_parse("tokenizer train",
                       "Train a byte-level BPE (GPT-2 pre-tokenizer, special token " DL_EOT
                       ") and write it as a Hugging Face tokenizer.json.",
                       flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    const char *specials[] = {DL_EOT, special, NULL};
    dl_error err;
    double t0 = dl_now();
    dl_tokenizer *t = dl_tok_train_file(corpus, vocab, specials, out, &err);
    if (!t) return cli_error(&err);
    dl_log("wrote %s: vocabulary %d (%d merges), trained in %.2fs", out, dl_tok_vocab_size(t), dl_tok_n_merges(t),
           dl_now() - t0);
    dl_tok_free(t);
    return 0;
}

/* The input of encode/decode: --text, or the one positional FILE ("-": stdin). Returns 0, 1
 * (an error was printed) or 2 (bad usage). */
static int read_input(const char *cmd, const char *text, int npos, char **pos, char **data, size_t *len, dl_error *err) {
    if ((text != NULL) == (npos == 1)) {
        cli_errorf("distil %s: give either --text or one FILE (see distil %s --help)", cmd, cmd);
        return 2;
    }
    if (text) {
        *len = strlen(text);
        *data = malloc(*len + 1);
        if (!*data) return cli_errorf("out of memory");
        memcpy(*data, text, *len + 1);
        return 0;
    }
    if (strcmp(pos[0], "-") != 0) {
        if (dl_read_file(pos[0], data, len, err)) return cli_error(err);
        return 0;
    }
    dl_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (dl_buf_append(&b, chunk, n)) return dl_buf_free(&b), cli_errorf("out of memory");
    if (dl_buf_append(&b, "", 0)) return dl_buf_free(&b), cli_errorf("out of memory");
    *data = b.data;
    *len = b.len;
    return 0;
}

static int tok_encode(int argc, char **argv) {
    const char *tok_path = NULL, *text = NULL;
    int plain = 0;
    cli_flag flags[] = {
        {"tokenizer", FLAG_STR, &tok_path, "tokenizer.json", 1, 0},
        {"text", FLAG_STR, &text, "text to encode (instead of FILE)", 0, 0},
        {"plain", FLAG_BOOL, &plain, "encode special-token strings as plain text", 0, 0},
        {0},
    };
    char *pos[1];
    int npos;
    int rc = cli_parse("tokenizer encode", "Encode --text S or FILE (- for stdin); prints the token ids on one line.", flags, argc,
                       argv, pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    char *data;
    size_t len;
    if ((rc = read_input("tokenizer encode", text, npos, pos, &data, &len, &err))) return rc;
    dl_tokenizer *t = dl_tok_load(tok_path, &err);
    dl_ivec ids = {0};
    if (!t || dl_tok_encode(t, data, len, !plain, &ids, &err)) {
        free(data);
        dl_tok_free(t);
        return cli_error(&err);
    }
    for (size_t i = 0; i < ids.len; i++) printf(i ? " %d" : "%d", (int)ids.data[i]);
    printf("\n");
    dl_ivec_free(&ids);
    free(data);
    dl_tok_free(t);
    return 0;
}

static int tok_decode(int argc, char **argv) {
    const char *tok_path = NULL, *text = NULL;
    cli_flag flags[] = {
        {"tokenizer", FLAG_STR, &tok_path, "tokenizer.json", 1, 0},
        {"ids", FLAG_STR, &text, "ids separated by spaces or commas (instead of FILE)", 0, 0},
        {0},
    };
    char *pos[1];
    int npos;
    int rc = cli_parse("tokenizer decode", "Decode token ids (--ids or FILE, - for stdin) and write the bytes to stdout.", flags,
                       argc, argv, pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    char *data;
    size_t len;
    if ((rc = read_input("tokenizer decode", text, npos, pos, &data, &len, &err))) return rc;
    dl_tokenizer *t = dl_tok_load(tok_path, &err);
    dl_ivec ids = {0};
    dl_buf out = {0};
    if (!t || dl_tok_parse_ids(data, len, &ids, &err) || dl_tok_decode(t, ids.data, ids.len, &out, &err)) {
        free(data);
        dl_ivec_free(&ids);
        dl_buf_free(&out);
        dl_tok_free(t);
        return cli_error(&err);
    }
    fwrite(out.data, 1, out.len, stdout);
    dl_buf_free(&out);
    dl_ivec_free(&ids);
    free(data);
    dl_tok_free(t);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: distil tokenizer COMMAND [flags]   (distil tokenizer COMMAND --help for its flags)\n\n"
               "commands:\n"
               "  train    train a byte-level BPE on a corpus, write tokenizer.json\n"
               "  encode   print the token ids of a text\n"
               "  decode   print the text of token ids\n");
}

int cmd_tokenizer(int argc, char **argv) {
    static const cli_sub subs[] = {{"train", tok_train}, {"encode", tok_encode}, {"decode", tok_decode}, {NULL, NULL}};
    return cli_dispatch("tokenizer", usage, subs, argc, argv);
}
