/* distil import gguf | hf: a llama.cpp GGUF file, or a Hugging Face folder, as a model folder. */
#include "cli.h"
#include "convert/convert.h"
#include <string.h>

static const char *SUMMARY =
    "Reads a GGUF file of architecture \"llama\" (tensors in f32, f16, bf16 or q8_0, dequantised\n"
    "to f32) and writes a model folder: config.json, model.safetensors and, for a byte-level BPE\n"
    "vocabulary (tokenizer.ggml.model \"gpt2\") or a SentencePiece-style one (\"llama\", with byte\n"
    "fallback), tokenizer.json.";

static void usage(FILE *out) {
    fprintf(out, "usage: distil import gguf --file FILE.gguf --out DIR\n"
                 "       distil import hf --dir HF_DIR --out DIR [--dtype f32|f16|bf16]\n"
                 "       distil import llama2c --checkpoint MODEL.bin --tokenizer TOKENIZER.bin --out DIR\n");
}

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

static const char *HF_SUMMARY =
    "Reads a Hugging Face model folder (LlamaForCausalLM or Qwen2ForCausalLM, the latter with\n"
    "q/k/v biases; model.safetensors or the shards of model.safetensors.index.json; weights in\n"
    "f32, f16 or bf16) and writes a model folder: config.json, model.safetensors and the\n"
    "tokenizer.json copied. Every command that takes a model folder also reads such a folder\n"
    "directly; importing converts the weights once and checks everything up front.";

static int import_hf(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *dtype_s = "f32";
    cli_flag flags[] = {
        {"dir", FLAG_STR, &dir, "Hugging Face model folder to read", 1, 0},
        {"out", FLAG_STR, &out, "model folder to write (created if needed)", 1, 0},
        {"dtype", FLAG_STR, &dtype_s, "type of the written weights: f32 (default), f16 or bf16", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("import hf", HF_SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    dl_dtype dtype = strcmp(dtype_s, "f32") == 0 ? DL_F32 : strcmp(dtype_s, "f16") == 0 ? DL_F16
                   : strcmp(dtype_s, "bf16") == 0 ? DL_BF16 : DL_DTYPE_UNKNOWN;
    if (dtype == DL_DTYPE_UNKNOWN) {
        cli_errorf("--dtype '%s' is not one of f32, f16, bf16", dtype_s);
        return 2;
    }
    dl_error err;
    double t0 = dl_now();
    if (dl_import_hf(dir, out, dtype, &err)) return cli_error(&err);
    dl_log("wrote %s in %.2f s", out, dl_now() - t0);
    return 0;
}

static const char *L2C_SUMMARY =
    "Reads a llama2.c checkpoint (the legacy format or version 1, fp32) and its tokenizer.bin and\n"
    "writes a model folder: config.json (rope_theta 10000, rms_norm_eps 1e-5), model.safetensors\n"
    "(f32; the query and key rows moved from llama2.c's interleaved RoPE layout to Hugging Face's)\n"
    "and a SentencePiece-style tokenizer.json (byte fallback, as Llama 2's). Both files must have\n"
    "the same vocabulary size.";

static int import_llama2c(int argc, char **argv) {
    const char *ckpt = NULL, *tok = NULL, *out = NULL, *dtype = "f32";
    cli_flag flags[] = {
        {"checkpoint", FLAG_STR, &ckpt, "llama2.c model file (model.bin)", 1, 0},
        {"tokenizer", FLAG_STR, &tok, "llama2.c tokenizer file (tokenizer.bin)", 1, 0},
        {"out", FLAG_STR, &out, "model folder to write (created if needed)", 1, 0},
        {"dtype", FLAG_STR, &dtype, "type of the written weights: f32 (the default and, for now, the only one)", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("import llama2c", L2C_SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (strcmp(dtype, "f32") != 0) {
        cli_errorf("--dtype '%s': llama2c imports are written as f32 only", dtype);
        return 2;
    }
    dl_error err;
    double t0 = dl_now();
    if (dl_import_llama2c(ckpt, tok, out, &err)) return cli_error(&err);
    dl_log("wrote %s in %.2f s", out, dl_now() - t0);
    return 0;
}

int cmd_import(int argc, char **argv) {
    static const cli_sub subs[] = {{"gguf", import_gguf}, {"hf", import_hf}, {"llama2c", import_llama2c}, {NULL, NULL}};
    return cli_dispatch("import", usage, subs, argc, argv);
}
