/* A Hugging Face folder (tests/fixtures/tiny_qwen2: Qwen2, two BF16 shards and an index, a
 * Qwen2-style tokenizer) through the binary: `distil import hf` and its flags, and the folder
 * used directly where a model folder is taken: generate (the same text as the imported copy),
 * eval, export gguf, serve, distill --teacher; and a Qwen2 config as a student trained from
 * scratch, whose run folder keeps the biases. */
#include "cli_util.h"
#include "model/model.h"
#include "serve/http_client.h"
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>

static char tmp[512], fix[700];

static void test_import_flags(void) {
    char a[2400];
    run_result *r = run_distil(tmp, "import hf --help");
    CHECK(r->status == 0 && strstr(r->out, "--dir") && strstr(r->out, "--dtype") && strstr(r->out, "f32 (default)"));
    r = run_distil(tmp, "import --help");
    CHECK(r->status == 0 && strstr(r->out, "import hf --dir"));
    snprintf(a, sizeof a, "import hf --dir %s --out %s/x --dtype q4", fix, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--dtype 'q4'");
    CHECK(r->status == 2);
    r = run_distil(tmp, "import hf --out x");
    CHECK(r->status == 2 && strstr(r->err, "--dir"));
    snprintf(a, sizeof a, "import hf --dir %s/nothere --out %s/x", tmp, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "nothere");
    snprintf(a, sizeof a, "import hf --dir %s --out %s/imported --dtype bf16", fix, tmp);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strstr(r->err, "Qwen2 model"), "status %d: %s", r->status, r->err);
}

static void test_generate_same(void) {
    static char first[sizeof ((run_result *)0)->out];
    char a[2400];
    snprintf(a, sizeof a, "generate --model %s --prompt 'the 12 the' --max-tokens 12 --temperature 0 --ids", fix);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strlen(r->out) > 12, "status %d: %s", r->status, r->err);
    snprintf(first, sizeof first, "%s", r->out);
    snprintf(a, sizeof a, "generate --model %s/imported --prompt 'the 12 the' --max-tokens 12 --temperature 0 --ids",
             tmp);
    r = run_distil(tmp, a);
    CHECK(r->status == 0 && strcmp(first, r->out) == 0);
}

static void test_data_eval_export(void) {
    char corpus[700], a[2400];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmp);
    dl_buf text = {0};
    for (int i = 0; i < 60; i++) dl_buf_printf(&text, "the 12 in the %d then a thin tin<|endoftext|>\n", i * 7);
    write_text(corpus, text.data);
    dl_buf_free(&text);
    snprintf(a, sizeof a, "data prepare --corpus %s --tokenizer %s/tokenizer.json --out %s/data", corpus, fix, tmp);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    snprintf(a, sizeof a, "eval --model %s --data %s/data/val.bin --seq-len 16 --json", fix, tmp);
    r = run_distil(tmp, a);
    json_t *o = json_loads(r->out, 0, NULL);
    double loss = json_number_value(json_object_get(o, "mean_loss"));
    CHECK_MSG(r->status == 0 && loss > 1 && loss < 20, "status %d loss %g: %s", r->status, loss, r->err);
    json_decref(o);
    snprintf(a, sizeof a, "export gguf --model %s --out %s/q.gguf", fix, tmp);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    snprintf(a, sizeof a, "export gguf --model %s --out %s/q2.gguf --arch qwen2", fix, tmp);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strstr(r->err, "qwen2, f32"), "status %d: %s", r->status, r->err);
    snprintf(a, sizeof a, "import gguf --file %s/q2.gguf --out %s/q2back", tmp, tmp);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    snprintf(a, sizeof a, "export gguf --model %s --out %s/q3.gguf --arch gpt2", fix, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "architecture 'gpt2' is not one of llama, qwen2");
}

/* The fixture as a teacher, and its config as a student from scratch: both runs end in model
 * folders with a Qwen2 config and the bias tensors. */
static void test_student_and_teacher(void) {
    char a[3000], run[800];
    const char *common = "--steps 3 --batch 2 --seq-len 16 --eval-interval 0 --save-interval 0 --threads 1";
    for (int kd = 0; kd < 2; kd++) {
        snprintf(run, sizeof run, "%s/%s", tmp, kd ? "kd" : "train");
        if (kd)
            snprintf(a, sizeof a, "distill --teacher %s --student %s/config.json --data %s/data --out %s %s", fix, fix,
                     tmp, run, common);
        else
            snprintf(a, sizeof a, "train --config %s/config.json --data %s/data --out %s %s", fix, tmp, run, common);
        run_result *r = run_distil(tmp, a);
        CHECK_MSG(r->status == 0, "%s: status %d: %s", kd ? "distill" : "train", r->status, r->err);
        dl_model m;
        dl_error err;
        CHECK_MSG(dl_model_load(&m, run, &err) == 0, "%s", err.msg);
        if (m.params) {
            CHECK(m.cfg.qkv_bias == 1 && m.cfg.o_bias == 0 && dl_layout_find(&m.lay, "model.layers.1.self_attn.k_proj.bias") >= 0);
            dl_model_free(&m);
        }
    }
}

static void test_serve(void) {
    char out_path[700], err_path[700], db[700];
    snprintf(out_path, sizeof out_path, "%s/serve.out", tmp);
    snprintf(err_path, sizeof err_path, "%s/serve.err", tmp);
    snprintf(db, sizeof db, "%s/usage.db", tmp);
    const char *args[] = {"serve", "--model", fix, "--db", db, "--port", "0", "--no-auth", "--threads", "1", NULL};
    pid_t pid = spawn_distil(out_path, err_path, args);
    int port = wait_serve_port(out_path, pid);
    CHECK_MSG(port > 0, "the server did not start");
    if (port > 0) {
        http_resp r;
        int rc = http_request(port, "POST", "/v1/completions", NULL,
                              "{\"model\":\"tiny_qwen2\",\"prompt\":\"the 12\",\"max_tokens\":5,\"temperature\":0}", &r, 10.0);
        CHECK_MSG(rc == 0 && r.status == 200 && strstr(r.body, "\"completion_tokens\":5"), "status %d: %s", r.status,
                  r.body ? r.body : "");
        http_resp_free(&r);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("hf-folder-cli"));
    snprintf(fix, sizeof fix, "%s/tests/fixtures/tiny_qwen2", DISTIL_SOURCE_DIR);
    test_import_flags();
    test_generate_same();
    test_data_eval_export();
    test_student_and_teacher();
    test_serve();
    dl_error err;
    dl_rm_rf(tmp, &err);
    TEST_MAIN_END();
}
