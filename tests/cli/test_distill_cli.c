/* distil teacher-cache, distil distill and distil eval --teacher through the binary: they run,
 * write what their help says, and bad pairings end in "distil: error: ..." before training. */
#include "cli_util.h"
#include "distill/harvest_fixture.h"
#include "harvest/harvest.h"
#include "serve/serve.h"

static char tmp[512], data[700], teacher[700], foreign[700], other_data[700], student[700], cache[700];

static void test_help(void) {
    run_result *r = run_distil(tmp, "distill --help");
    CHECK(r->status == 0);
    static const char *const flags[] = {"--teacher", "--cache", "--student", "--loss", "--temperature", "--beta",
                                        "--skew-alpha", "--ce-weight", "--seq-kd", "--lmbda", "--init-from-teacher",
                                        "--layers", "--steps", "--grad-accum", "--resume", "--stop-at", "--harvest",
                                        "--tokenizer", NULL};
    for (const char *const *f = flags; *f; f++) CHECK_MSG(strstr(r->out, *f) != NULL, "%s missing from help", *f);
    r = run_distil(tmp, "teacher-cache --help");
    CHECK(r->status == 0 && strstr(r->out, "--top-k") && strstr(r->out, "4K + 4 bytes"));
    r = run_distil(tmp, "--help");
    CHECK(strstr(r->out, "distill") && strstr(r->out, "teacher-cache"));
}

static void test_cache_and_distill(void) {
    char a[6000], run1[800], run2[800];
    snprintf(a, sizeof a, "teacher-cache --teacher %s --data %s --top-k 8 --seq-len 32 --out %s --threads 1", teacher,
             data, cache);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strstr(r->err, "36 bytes per token"), "status %d: %s", r->status, r->err);

    snprintf(run1, sizeof run1, "%s/run1", tmp);
    snprintf(a, sizeof a, "distill --cache %s --student %s --data %s --out %s --steps 4 --batch 4 --seq-len 32 "
                          "--eval-interval 0 --threads 1 --log-interval 1 --loss srkl --skew-alpha 0.2", cache, student,
             data, run1);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK(fx_has_checkpoint(run1));
    json_t *m = fx_metrics(run1);
    CHECK(json_array_size(m) == 4 && fx_metric(m, 4, "kd") > 0);
    json_decref(m);

    snprintf(run2, sizeof run2, "%s/run2", tmp);
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --steps 3 --batch 4 --seq-len 32 "
                          "--eval-interval 3 --eval-tokens 128 --threads 1 --loss jsd --beta 0.3 --temperature 2 "
                          "--ce-weight 0.1", teacher, student, data, run2);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    m = fx_metrics(run2);
    CHECK(fx_metric(m, 3, "val_kl") > 0 && fx_metric(m, 3, "val_agreement") >= 0);
    json_decref(m);

    /* eval --teacher: the student against the teacher, and the teacher against itself */
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32 --json", run2, teacher, data);
    r = run_distil(tmp, a);
    json_error_t je;
    json_t *o = json_loads(r->out, 0, &je);
    CHECK_MSG(r->status == 0 && o, "status %d: %s", r->status, r->err);
    double kl = json_number_value(json_object_get(o, "kl"));
    CHECK(kl > 0 && json_object_get(o, "agreement") && json_object_get(o, "top5") && json_object_get(o, "mean_loss"));
    json_decref(o);
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32 --json", teacher, teacher, data);
    r = run_distil(tmp, a);
    o = json_loads(r->out, 0, &je);
    CHECK(o && fabs(json_number_value(json_object_get(o, "kl"))) < 1e-9 &&
          json_number_value(json_object_get(o, "agreement")) == 1.0 &&
          json_number_value(json_object_get(o, "top5")) == 1.0);
    json_decref(o);
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32", run2, teacher, data);
    r = run_distil(tmp, a);
    CHECK(r->status == 0 && strstr(r->out, "agreement") && strstr(r->out, "perplexity"));
}

static void test_errors(void) {
    char a[6000], out[800];
    snprintf(out, sizeof out, "%s/bad", tmp);
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --steps 2", foreign, student, data, out);
    run_result *r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "distil harvest");
    CHECK(!dl_path_exists(out));
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --loss kl", teacher, student, data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "fkl");
    snprintf(a, sizeof a, "distill --teacher %s --student %s --data %s --out %s --seq-len 32 --init-from-teacher --layers 0,7",
             teacher, student, data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "layer 7 does not exist");
    snprintf(a, sizeof a, "distill --cache %s --student %s --data %s --out %s --seq-len 16", cache, student, data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--seq-len 32");
    snprintf(a, sizeof a, "distill --cache %s --student %s --data %s --out %s --seq-len 32", cache, student,
             other_data, out);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "another tokenizer");
    CHECK(!dl_path_exists(out));
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s", teacher, foreign, data);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "black-box");
    snprintf(a, sizeof a, "teacher-cache --teacher %s --data %s --out %s/c --top-k 0", teacher, data, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--top-k");
    r = run_distil(tmp, "distill --student x --data y --out z");
    CHECK_CLEAN_ERROR(r, "--teacher");
}

/* The required check through the real server and client: a teacher trained on words drawn
 * independently (harvest_fixture.h: which word it ranks first is its own quirk) is served
 * in-process (no auth, a free port) and harvested in both shapes; a student distilled from the
 * completions agrees with it on the corpus more than the same student trained the same steps on
 * the corpus itself, and more than an untrained one. The top 20 alternatives cover every word:
 * the teacher's preferences among them are small (~0.1 nats), and fewer alternatives leave most
 * of the words in the rest bin, where only the noisy samples tell them apart. Both shapes line up position by position
 * (the student takes the teacher's tokenizer; chat answers carry raw bytes). */
static void harvest_from_server(const char *model, const char *out, int chat, int prompts, int max_tokens) {
    char pp[800], url[64], db[800];
    snprintf(pp, sizeof pp, "%s.prompts.jsonl", out);
    FILE *f = fopen(pp, "wb");
    for (int i = 0; f && i < prompts; i++)
        fprintf(f, "{\"id\": %d, \"prompt\": \"%s %s\"}\n", i, FX_WORDS[i % 20], FX_WORDS[(i * 7 + 3) % 20]);
    if (f) fclose(f);
    dl_serve_cfg sc;
    dl_serve_cfg_default(&sc);
    snprintf(db, sizeof db, "%s.usage.sqlite", out);
    sc.model_dir = model, sc.db_path = db, sc.no_auth = 1, sc.port = 0;
    dl_error err = {{0}};
    dl_server *s = dl_serve_start(&sc, &err);
    CHECK_MSG(s != NULL, "serve: %s", err.msg);
    if (!s) return;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", dl_serve_port(s));
    dl_harvest_opts ho;
    dl_harvest_opts_default(&ho);
    ho.endpoint = url, ho.prompts_path = pp, ho.out_path = out, ho.chat = chat, ho.top_logprobs = 20;
    ho.max_tokens = max_tokens, ho.concurrency = 4;
    dl_harvest_result res;
    CHECK_MSG(dl_harvest_run(&ho, &res, &err) == 0 && res.written == prompts && res.failed == 0, "harvest: %s",
              err.msg);
    CHECK(dl_serve_stop(s) == 0);
}

static double cli_agreement(const char *model, const char *teacher_dir, const char *data_dir) {
    char a[3000];
    snprintf(a, sizeof a, "eval --model %s --teacher %s --data %s --seq-len 32 --json", model, teacher_dir, data_dir);
    run_result *r = run_distil(tmp, a);
    json_t *o = json_loads(r->out, 0, NULL);
    double ag = o ? json_number_value(json_object_get(o, "agreement")) : -1;
    json_decref(o);
    return ag;
}

static void test_harvest(void) {
    char hdata[700], hteacher[700], hstudent[700], hv[800], hv_chat[800], run[800], run_chat[800], corpus_run[800],
        fresh[800], a[6000];
    snprintf(hdata, sizeof hdata, "%s/hdata", tmp);
    snprintf(hteacher, sizeof hteacher, "%s/hteacher", tmp);
    snprintf(hstudent, sizeof hstudent, "%s/hstudent.json", tmp);
    int V = hx_data(hdata, 300);
    fx_trained_teacher(hteacher, fx_config(V, 2), hdata, 40);
    fx_write_config(hstudent, fx_config(V, 1));
    snprintf(hv, sizeof hv, "%s/harvest.jsonl", tmp);
    snprintf(hv_chat, sizeof hv_chat, "%s/harvest_chat.jsonl", tmp);
    harvest_from_server(hteacher, hv, 0, 200, 16);
    harvest_from_server(hteacher, hv_chat, 1, 12, 8);

    snprintf(run, sizeof run, "%s/bb", tmp);
    const char *sched = "--steps 60 --batch 8 --seq-len 32 --lr 0.01 --min-lr 0.001 --warmup 2 --seed 5 --threads 1";
    snprintf(a, sizeof a, "distill --harvest %s --student %s --tokenizer %s/tokenizer.json --out %s %s --ce-weight 0.1 "
                          "--eval-interval 60 --log-interval 1", hv, hstudent, hdata, run, sched);
    run_result *r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    CHECK(strstr(r->err, "200 records") && strstr(r->err, "top-k targets"));
    json_t *m = fx_metrics(run);
    CHECK_MSG(fx_metric(m, 1, "topk_share") > 0.8, "topk_share %g", fx_metric(m, 1, "topk_share"));
    CHECK(fx_metric(m, 60, "val_agreement") > 0 && fx_metric(m, 60, "loss") < fx_metric(m, 1, "loss"));
    json_decref(m);
    snprintf(corpus_run, sizeof corpus_run, "%s/corpus", tmp);
    snprintf(a, sizeof a, "train --config %s --data %s --out %s %s --eval-interval 0", hstudent, hdata, corpus_run, sched);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0, "status %d: %s", r->status, r->err);
    snprintf(fresh, sizeof fresh, "%s/fresh", tmp);
    fx_model(fresh, fx_config(V, 1), 5, 1.0f, hdata);
    double ag_bb = cli_agreement(run, hteacher, hdata), ag_corpus = cli_agreement(corpus_run, hteacher, hdata),
           ag_fresh = cli_agreement(fresh, hteacher, hdata);
    CHECK_MSG(ag_bb > ag_corpus + 0.1 && ag_bb > ag_fresh + 0.1, "agreement: harvest %g, corpus %g, untrained %g",
              ag_bb, ag_corpus, ag_fresh);

    snprintf(run_chat, sizeof run_chat, "%s/bb_chat", tmp);
    snprintf(a, sizeof a, "distill --harvest %s --student %s --tokenizer %s/tokenizer.json --out %s --steps 2 "
                          "--batch 4 --seq-len 32 --eval-interval 0 --threads 1 --log-interval 1", hv_chat, hstudent,
             hdata, run_chat);
    r = run_distil(tmp, a);
    CHECK_MSG(r->status == 0 && strstr(r->err, "12 records") && strstr(r->err, " 0 unaligned") &&
                  strstr(r->err, "12 records as the teacher's own tokens"),
              "status %d: %s", r->status, r->err);

    /* bad pairings and a broken harvest end cleanly, before training */
    snprintf(a, sizeof a, "distill --harvest %s --teacher %s --student %s --tokenizer %s/tokenizer.json --out %s/x",
             hv, hteacher, hstudent, hdata, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--teacher");
    snprintf(a, sizeof a, "distill --harvest %s --student %s --out %s/x", hv, hstudent, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "--tokenizer");
    snprintf(a, sizeof a, "distill --harvest %s --student %s --tokenizer %s/tokenizer.json --out %s/x", hv, hstudent,
             hdata, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "seq-len 256 exceeds the student's max_position_embeddings 64");
    char bad[800], x[800];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);
    write_text(bad, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\": \"b\", "
                    "\"logprobs\": {\"tokens\": [\"b\"], \"token_logprobs\": [1.5]}}\n");
    snprintf(a, sizeof a, "distill --harvest %s --student %s --tokenizer %s/tokenizer.json --out %s/x --seq-len 32",
             bad, hstudent, hdata, tmp);
    r = run_distil(tmp, a);
    CHECK_CLEAN_ERROR(r, "bad.jsonl line 2: logprobs.token_logprobs[0] = 1.5 is positive");
    snprintf(x, sizeof x, "%s/x", tmp);
    CHECK(!fx_has_checkpoint(x));
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    (void)write_text;
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("distill-cli"));
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(other_data, sizeof other_data, "%s/data2", tmp);
    snprintf(teacher, sizeof teacher, "%s/teacher", tmp);
    snprintf(foreign, sizeof foreign, "%s/foreign", tmp);
    snprintf(student, sizeof student, "%s/student.json", tmp);
    snprintf(cache, sizeof cache, "%s/k8.cache", tmp);
    int V = fx_data(data, 300, 0), V2 = fx_data(other_data, 290, 1);
    fx_trained_teacher(teacher, fx_config(V, 2), data, 30);
    fx_model(foreign, fx_config(V2, 2), 1, 1.0f, other_data);
    fx_write_config(student, fx_config(V, 2));
    test_help();
    test_cache_and_distill();
    test_errors();
    test_harvest();
    dl_error err;
    CHECK(dl_rm_rf(tmp, &err) == 0);
    TEST_MAIN_END();
}
