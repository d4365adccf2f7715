/* distil distill --harvest end to end on a harvest written here from a trained teacher
 * (harvest_fixture.h): the student trained on it agrees with the teacher (top-1 on the corpus's
 * val.bin, dl_eval_teacher) more than one trained the same steps on the corpus itself and more
 * than an untrained one; a stopped and resumed run ends bit for bit where an uninterrupted one
 * does; metrics and the data folder are as documented; bad pairings fail before training. */
#include "eval/eval.h"
#include "harvest_fixture.h"

static char root[512], data[700], teacher[700], student_cfg[700], tokenizer[800], hv[700], hv_chat[700];
static int V;

/* Top-1 agreement with the teacher on the corpus's val.bin, of the model in dir. */
static double agreement(const char *dir) {
    dl_error err;
    dl_model s, t;
    dl_tokfile f;
    char p[1024];
    snprintf(p, sizeof p, "%s/val.bin", data);
    if (dl_model_load(&s, dir, &err) || dl_model_load(&t, teacher, &err) || dl_tokfile_open(&f, p, &err))
        fx_die("load", &err);
    dl_eval_teacher_result r;
    if (dl_eval_teacher(&s, &t, &f, 4, 32, 0, &r, &err)) fx_die("eval", &err);
    dl_tokfile_close(&f);
    dl_model_free(&s);
    dl_model_free(&t);
    return r.agreement;
}

static dl_distill_opts harvest_opts(const char *harvest, const char *out, int steps) {
    dl_distill_opts o = fx_opts(NULL, student_cfg, NULL, out, steps);
    o.harvest = harvest;
    o.tokenizer = tokenizer;
    o.train.batch = 8;
    o.train.seq_len = 32;
    return o;
}

static void test_agreement(void) {
    enum { STEPS = 60 };
    dl_error err = {{0}};
    char out[800], corpus_run[800], fresh[800];
    snprintf(out, sizeof out, "%s/bb", root);
    dl_distill_opts o = harvest_opts(hv, out, STEPS);
    o.train.eval_interval = 30;
    o.kd.ce_weight = 0.1f;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);

    /* the same student, steps and batches, on the corpus the teacher learnt from */
    snprintf(corpus_run, sizeof corpus_run, "%s/corpus", root);
    dl_train_opts t = o.train;
    t.data = data;
    t.out = corpus_run;
    CHECK_MSG(dl_train(&t, &err) == 0, "%s", err.msg);
    /* and untrained */
    snprintf(fresh, sizeof fresh, "%s/fresh", root);
    t.steps = 1, t.lr = 1e-12, t.min_lr = 1e-12, t.out = fresh, t.warmup = 1;
    CHECK_MSG(dl_train(&t, &err) == 0, "%s", err.msg);

    double a_bb = agreement(out), a_corpus = agreement(corpus_run), a_fresh = agreement(fresh);
    fprintf(stderr, "top-1 agreement with the teacher: harvest %.3f, corpus %.3f, untrained %.3f\n", a_bb, a_corpus,
            a_fresh);
    CHECK_MSG(a_bb > a_corpus + 0.03 && a_bb > a_fresh + 0.1, "harvest %.3f corpus %.3f untrained %.3f", a_bb,
              a_corpus, a_fresh);

    json_t *m = fx_metrics(out);
    CHECK(fx_metric(m, STEPS, "loss") < fx_metric(m, 1, "loss"));
    CHECK(fx_metric(m, 1, "topk_share") > 0.9); /* the teacher's tokenizer: every position aligned */
    double va30 = fx_metric(m, 30, "val_agreement"), va = fx_metric(m, STEPS, "val_agreement");
    CHECK_MSG(va >= 0 && va <= 1 && fx_metric(m, STEPS, "val_agreement_positions") > 0, "val_agreement %g", va);
    CHECK(fx_metric(m, STEPS, "val_loss") < fx_metric(m, 30, "val_loss") + 0.05 && va30 == va30);
    json_decref(m);
    char p[900];
    snprintf(p, sizeof p, "%s/harvest/train.bin", out);
    CHECK(dl_path_exists(p));
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    CHECK(dl_path_exists(p));
}

/* Chat-shaped harvest, top-k and cross-entropy mixed (--ce-weight): 8 steps in one go, and 5 +
 * resume to 8, give the same losses and weights. */
static void test_resume(void) {
    dl_error err = {{0}};
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/ra", root);
    snprintf(b, sizeof b, "%s/rb", root);
    dl_distill_opts o = harvest_opts(hv_chat, a, 8);
    o.kd.ce_weight = 0.3f;
    o.kd.tau = 2.0f;
    o.train.save_interval = 5;
    o.train.grad_accum = 2;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o.train.out = b;
    o.train.stop_at = 5;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o.train.stop_at = 0;
    o.train.resume = 1;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    CHECK(fx_same_params(a, b));
    json_t *ma = fx_metrics(a), *mb = fx_metrics(b);
    for (long s = 1; s <= 8; s++) CHECK(fx_metric(ma, s, "loss") == fx_metric(mb, s, "loss"));
    CHECK(fx_metric(ma, 8, "ce") > 0 && fx_metric(ma, 8, "kd") > 0);
    json_decref(ma);
    json_decref(mb);

    /* another harvest under the same run folder: refused on resume */
    o.harvest = hv;
    o.train.steps = 10;
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "harvest file is not the one"));
}

static void test_errors(void) {
    dl_error err = {{0}};
    char out[800], one[800];
    snprintf(out, sizeof out, "%s/bad", root);
    dl_distill_opts o = harvest_opts(hv, out, 2);
    o.teacher = teacher;
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "--teacher"));
    o = harvest_opts(hv, out, 2);
    o.train.data = data;
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "--data"));
    o = harvest_opts(hv, out, 2);
    o.tokenizer = NULL; /* a config.json has no tokenizer */
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "--tokenizer"));
    o = harvest_opts(hv, out, 2);
    o.train.seq_len = 128; /* past the student's 64 positions */
    CHECK_MSG(dl_distill(&o, &err) != 0 && strstr(err.msg, "max_position_embeddings"), "%s", err.msg);
    snprintf(one, sizeof one, "%s/one.jsonl", root);
    FILE *f = fopen(one, "wb");
    fputs("{\"prompt\": \"the cat\", \"completion\": \" sat on the mat\"}\n", f);
    fclose(f);
    o = harvest_opts(one, out, 2);
    o.train.eval_interval = 1;
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "hold out"));
    o.train.eval_interval = 0;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o = harvest_opts(one, out, 2);
    o.tokenizer = NULL;
    o.kd.tau = -1;
    CHECK(dl_distill(&o, &err) != 0 && strstr(err.msg, "temperature"));
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(root, sizeof root, "%s", test_tmpdir("harvest-run"));
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(teacher, sizeof teacher, "%s/teacher", root);
    snprintf(student_cfg, sizeof student_cfg, "%s/student.json", root);
    snprintf(tokenizer, sizeof tokenizer, "%s/tokenizer.json", data);
    snprintf(hv, sizeof hv, "%s/harvest.jsonl", root);
    snprintf(hv_chat, sizeof hv_chat, "%s/harvest_chat.jsonl", root);
    V = hx_data(data, 300);
    fx_trained_teacher(teacher, fx_config(V, 2), data, 40);
    fx_write_config(student_cfg, fx_config(V, 1));
    hx_harvest(teacher, hv, &(hx_opts){.prompts = 300, .max_tokens = 24, .top_k = 20, .chat = 0, .seed = 7});
    hx_harvest(teacher, hv_chat, &(hx_opts){.prompts = 24, .max_tokens = 12, .top_k = 4, .chat = 1, .seed = 8});
    test_errors();
    test_resume();
    test_agreement();
    dl_error err;
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
