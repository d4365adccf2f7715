/* Hugging Face model folder -> native model folder. The weights go through dl_model_load, which
 * reads a single file or shards and checks names and shapes against config.json; the tokenizer
 * is loaded once to prove distil can use it, then copied byte for byte (so a normalizer or
 * added-token flag our writer would not spell survives). */
#include "convert/internal.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The tokenizer must load and fit the model: ids past vocab_size would index nothing. */
static int check_tokenizer(const char *path, const dl_config *cfg, dl_error *err) {
    if (!dl_path_exists(path)) return dl_fail(err, "%s: missing (a model folder needs its tokenizer)", path);
    dl_tokenizer *tok = dl_tok_load(path, err);
    if (!tok) return -1;
    int n = dl_tok_vocab_size(tok);
    dl_tok_free(tok);
    if (n > cfg->V)
        return dl_fail(err, "%s: %d token ids, more than the model's vocab_size %d", path, n, cfg->V);
    return 0;
}

/* Writing into the folder we read would replace its config.json under its own shards. */
static int same_folder(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

int dl_import_hf(const char *hf_dir, const char *out_dir, dl_dtype dtype, dl_error *err) {
    if (dtype != DL_F32 && dtype != DL_F16 && dtype != DL_BF16)
        return dl_fail(err, "import hf: dtype must be F32, F16 or BF16");
    if (same_folder(hf_dir, out_dir)) return dl_fail(err, "import hf: --out is the folder being read (%s)", hf_dir);
    char tok_src[4096], tok_dst[4096];
    if (dl_path_join(tok_src, sizeof tok_src, hf_dir, "tokenizer.json", err) ||
        dl_path_join(tok_dst, sizeof tok_dst, out_dir, "tokenizer.json", err))
        return -1;
    dl_model m;
    if (dl_model_load(&m, hf_dir, err)) return -1;
    int rc = check_tokenizer(tok_src, &m.cfg, err);
    if (rc == 0) rc = dl_mkdir_p(out_dir, err);
    if (rc == 0) rc = dl_copy_file(tok_src, tok_dst, err);
    if (rc == 0) rc = dl_model_save_as(&m, out_dir, dtype, err);
    if (rc == 0)
        dl_log("%s: %s model, %zu parameters%s, written as %s", hf_dir,
               m.cfg.qkv_bias && !m.cfg.o_bias ? "Qwen2" : "Llama", m.lay.total,
               m.cfg.qkv_bias ? (m.cfg.o_bias ? " (q/k/v/o biases)" : " (q/k/v biases)") : "",
               dl_dtype_name(dtype));
    dl_model_free(&m);
    return rc;
}
