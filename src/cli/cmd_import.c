/* distil import gguf: a llama.cpp GGUF file as a model folder. */
#include "cli.h"
#include "convert/convert.h"
#include <string.h>

static const char *SUMMARY =
    "Reads a GGUF file of architecture \"llama\" (tensors in f32, f16, bf16 or q8_0, dequantised\n"
    "to f32) and writes a model folder: config.json, model.safetensors and, for a byte-level BPE\n"
    "vocabulary (tokenizer.ggml.model \"gpt2\"), tokenizer.json.";

static void usage(FILE *out) { fprintf(out, "usage: distil import gguf --file FILE.gguf --out DIR\n"); }

static int import_gguf(int argc, char **argv) {
    const char *file = NULL, *out = NULL;
    cli_flag flags[] = {
        {"file", FLAG_STR, &file, "GGUF file to read", 1, 0},
        {"out", FLAG_STR, &out, "model folder to write (created if needed)", 1, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("import gguf", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    double t0 = dl_now();
    if (dl_import_gguf(file, out, &err)) return cli_error(&err);
    dl_log("wrote %s in %.2f s", out, dl_now() - t0);
    return 0;
}

int cmd_import(int argc, char **argv) {
    static const cli_sub subs[] = {{"gguf", import_gguf}, {NULL, NULL}};
    return cli_dispatch("import", usage, subs, argc, argv);
}
