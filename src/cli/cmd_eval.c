/* distil eval: loss, perplexity and speed of a model folder on a token file; with --teacher,
 * also how closely it follows the teacher. */
#include "cli.h"
#include "distill/distill.h"
#include "eval/eval.h"
#include <jansson.h>
#include <stdlib.h>

static const char *SUMMARY =
    "Scores a token file (.bin from `distil data prepare`; a folder means FOLDER/val.bin) with the\n"
    "model: mean next-token loss (nats), perplexity and tokens/s. Windows of --seq-len tokens,\n"
    "--batch at a time. With --teacher (same tokenizer) it adds kl = KL(teacher || model) in nats, agreement\n"
    "(share of positions where both rank the same token first), top5 (mean overlap of their five most likely\n"
    "tokens, 0..1) and teacher_loss.";

static int print_result(const dl_eval_result *r, int as_json) {
    if (!as_json) {
        printf("mean loss %.4f  perplexity %.3f  tokens %llu  tokens/s %.1f\n", r->mean_loss, r->perplexity,
               (unsigned long long)r->tokens, r->tokens_per_s);
        return 0;
    }
    json_t *o = json_pack("{s:f, s:f, s:f, s:I}", "mean_loss", r->mean_loss, "perplexity", r->perplexity,
                          "tokens_per_s", r->tokens_per_s, "tokens", (json_int_t)r->tokens);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    if (!s) return cli_errorf("cannot format the result as JSON");
    printf("%s\n", s);
    free(s);
    return 0;
}

static int print_teacher(const dl_eval_teacher_result *r, int as_json) {
    if (!as_json) {
        print_result(&r->student, 0);
        printf("kl %.4f  agreement %.4f  top5 %.4f  teacher loss %.4f\n", r->kl, r->agreement, r->top5,
               r->teacher_loss);
        return 0;
    }
    const dl_eval_result *s = &r->student;
    json_t *o = json_pack("{s:f, s:f, s:f, s:I, s:f, s:f, s:f, s:f}", "mean_loss", s->mean_loss, "perplexity",
                          s->perplexity, "tokens_per_s", s->tokens_per_s, "tokens", (json_int_t)s->tokens, "kl", r->kl,
                          "agreement", r->agreement, "top5", r->top5, "teacher_loss", r->teacher_loss);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    if (!text) return cli_errorf("cannot format the result as JSON");
    printf("%s\n", text);
    free(text);
    return 0;
}

/* Same tokenizer (both folders' tokenizer.json), then both models over the file. */
static int run_teacher(dl_model *m, const char *dir, const char *teacher, const dl_tokfile *f, int B, int T,
                       int max_tokens, int as_json) {
    dl_error err;
    char tp[4096];
    dl_model t;
    if (dl_path_join(tp, sizeof tp, dir, "tokenizer.json", &err)) return cli_error(&err);
    if (dl_teacher_check_tokenizer(teacher, tp, NULL, &err) || dl_model_load(&t, teacher, &err)) return cli_error(&err);
    dl_eval_teacher_result res;
    int rc = dl_eval_teacher(m, &t, f, B, T, (uint64_t)max_tokens, &res, &err);
    dl_model_free(&t);
    if (rc) return cli_error(&err);
    return print_teacher(&res, as_json);
}

static int run(const char *dir, const char *data, const char *teacher, int B, int T, int max_tokens, int as_json) {
    dl_error err;
    char path[4096];
    if (dl_is_dir(data)) {
        if (dl_path_join(path, sizeof path, data, "val.bin", &err)) return cli_error(&err);
    } else {
        snprintf(path, sizeof path, "%s", data);
    }
    dl_model m;
    if (dl_model_load(&m, dir, &err)) return cli_error(&err);
    dl_tokfile f;
    if (dl_tokfile_open(&f, path, &err)) {
        dl_model_free(&m);
        return cli_error(&err);
    }
    if (T == 0) T = m.cfg.max_T < 256 ? m.cfg.max_T : 256;
    if (teacher) {
        int rc = run_teacher(&m, dir, teacher, &f, B, T, max_tokens, as_json);
        dl_tokfile_close(&f);
        dl_model_free(&m);
        return rc;
    }
    dl_eval_result res;
    int rc = dl_eval_tokens(&m, &f, B, T, (uint64_t)max_tokens, &res, &err);
    dl_tokfile_close(&f);
    dl_model_free(&m);
    if (rc) return cli_error(&err);
    return print_result(&res, as_json);
}

int cmd_eval(int argc, char **argv) {
    const char *dir = NULL, *data = NULL, *teacher = NULL;
    int B = 8, T = 0, max_tokens = 0, threads = 0, as_json = 0;
    cli_flag flags[] = {
        {"model", FLAG_STR, &dir, "model folder (config.json, model.safetensors)", 1, 0},
        {"data", FLAG_STR, &data, "token file, or a folder holding val.bin", 1, 0},
        {"batch", FLAG_INT, &B, "windows per forward pass (default 8)", 0, 0},
        {"seq-len", FLAG_INT, &T, "tokens per window (default: min(256, max_position_embeddings))", 0, 0},
        {"max-tokens", FLAG_INT, &max_tokens, "score at most this many positions, 0 = the whole file (default 0)", 0, 0},
        {"threads", FLAG_INT, &threads, "CPU threads (default: all cores)", 0, 0},
        {"json", FLAG_BOOL, &as_json, "print one JSON object: mean_loss, perplexity, tokens_per_s, tokens", 0, 0},
        {"teacher", FLAG_STR, &teacher, "teacher model folder: add kl, agreement, top5, teacher_loss", 0, 0},
        {NULL, 0, NULL, NULL, 0, 0},
    };
    int rc = cli_parse("eval", SUMMARY, flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (B <= 0) return cli_errorf("--batch %d must be positive", B);
    if (flags[3].seen && T <= 0) return cli_errorf("--seq-len %d must be positive", T);
    if (max_tokens < 0) return cli_errorf("--max-tokens %d must be >= 0", max_tokens);
    if (threads < 0) return cli_errorf("--threads %d must be >= 0", threads);
    dl_set_threads(threads);
    return run(dir, data, teacher, B, T, max_tokens, as_json);
}
