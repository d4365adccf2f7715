/* distil export gguf: a model folder as a llama.cpp GGUF file. */
#include "cli.h"
#include "convert/convert.h"
#include <string.h>

static const char *SUMMARY =
    "Writes a model folder (config.json, model.safetensors, tokenizer.json) as a GGUF v3 file that\n"
    "llama.cpp loads: architecture \"llama\" (attn_q/attn_k rows permuted for llama.cpp's RoPE) or,\n"
    "for a model with q/k/v biases and no output bias, \"qwen2\" (nothing permuted); the vocabulary\n"
    "(a byte-level BPE as \"gpt2\", a SentencePiece-style one as \"llama\" with scores and token\n"
    "types). Norm weights stay f32 in every --dtype; with q8_0 a matrix whose rows are not a\n"
    "multiple of 32 is written as f16.";

static void usage(FILE *out) {
    fprintf(out, "usage: distil export gguf --model DIR --out FILE.gguf [--dtype f32|f16|q8_0] [--arch llama|qwen2]\n");
}

static int export_gguf(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *dtype_s = "f32", *arch_s = "llama";
    cli_flag flags[] = {
        {"model", FLAG_STR, &dir, "model folder (config.json, model.safetensors, tokenizer.json)", 1, 0},
        {"out", FLAG_STR, &out, "GGUF file to write", 1, 0},
        {"dtype", FLAG_STR, &dtype_s, "type of the matrices: f32 (default), f16 or q8_0", 0, 0},
        {"arch", FLAG_STR, &arch_s, "GGUF architecture: llama (default) or qwen2 (needs q/k/v biases, no output bias)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("export gguf", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_error err;
    dl_export_dtype dtype;
    dl_gguf_arch arch;
    if (dl_export_dtype_parse(dtype_s, &dtype, &err) || dl_gguf_arch_parse(arch_s, &arch, &err)) return cli_error(&err);
    double t0 = dl_now();
    if (dl_export_gguf(dir, out, dtype, arch, &err)) return cli_error(&err);
    dl_log("wrote %s (%s, %s) in %.2f s", out, dl_gguf_arch_name(arch), dl_export_dtype_name(dtype), dl_now() - t0);
    return 0;
}

int cmd_export(int argc, char **argv) {
    static const cli_sub subs[] = {{"gguf", export_gguf}, {NULL, NULL}};
    return cli_dispatch("export", usage, subs, argc, argv);
}
