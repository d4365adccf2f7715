/* distil distill with a live teacher: the student moves towards the teacher, a stopped and
 * resumed run (with on-policy batches drawing from the run's rng) ends bit-for-bit where an
 * uninterrupted one does, seq-kd and on-policy batches happen, a padded teacher works, and
 * --init-from-teacher copies exactly the chosen layers. */
#include "distill_fixture.h"
#include "distill/rollout.h"
#include "eval/eval.h"
#include "model/sampler.h"

static char root[512], data[700], teacher[700], padded[700], wide[700], student_cfg[700];
static int V;

/* KL(teacher || student) on val.bin for the model in dir, or a fresh random student. */
static double val_kl(const char *dir, uint64_t seed) {
    dl_error err;
    dl_model s, t;
    dl_tokfile f;
    char p[1024];
    snprintf(p, sizeof p, "%s/val.bin", data);
    if (dir) {
        if (dl_model_load(&s, dir, &err)) fx_die("load student", &err);
    } else {
        dl_config c = fx_config(V, 2);
        if (dl_model_create(&s, &c, &err)) fx_die("student", &err);
        dl_model_init_random(&s, seed);
    }
    if (dl_model_load(&t, teacher, &err) || dl_tokfile_open(&f, p, &err)) fx_die("load", &err);
    dl_eval_teacher_result r;
    if (dl_eval_teacher(&s, &t, &f, 4, 32, 0, &r, &err)) fx_die("eval", &err);
    dl_tokfile_close(&f);
    dl_model_free(&s);
    dl_model_free(&t);
    return r.kl;
}

static void test_kl_falls(void) {
    dl_error err = {{0}};
    char out[800];
    snprintf(out, sizeof out, "%s/kl", root);
    dl_distill_opts o = fx_opts(teacher, student_cfg, data, out, 40);
    o.train.eval_interval = 20;
    o.train.eval_tokens = 256;
    double before = val_kl(NULL, o.train.seed);
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    double after = val_kl(out, 0);
    CHECK_MSG(after < 0.1 * before, "KL %g -> %g", before, after);
    json_t *m = fx_metrics(out);
    CHECK(fx_metric(m, 40, "kd") < fx_metric(m, 1, "kd"));
    CHECK(fx_metric(m, 1, "loss") == fx_metric(m, 1, "kd")); /* ce_weight 0: the loss is the KD term */
    CHECK(fx_metric(m, 1, "on_policy") == 0);
    /* evaluations carry the teacher metrics, and KL falls between them */
    double vk = fx_metric(m, 40, "val_kl"), ag = fx_metric(m, 40, "val_agreement");
    CHECK(vk == vk && ag >= 0 && ag <= 1 && fx_metric(m, 20, "val_top5") >= 0);
    CHECK(fx_metric(m, 20, "val_kl") > vk);
    CHECK(fx_metric(m, 40, "teacher_val_loss") > 0);
    json_decref(m);
}

/* Half the micro-batches are the student's own samples: the rng must come back exactly. */
static void test_resume(void) {
    dl_error err = {{0}};
    char a[800], b[800], ck[900];
    snprintf(a, sizeof a, "%s/ra", root);
    snprintf(b, sizeof b, "%s/rb", root);
    dl_distill_opts o = fx_opts(teacher, student_cfg, data, a, 8);
    o.lmbda = 0.5;
    o.kd.kind = DL_KD_JSD;
    o.kd.ce_weight = 0.2f;
    o.train.grad_accum = 2;
    o.train.save_interval = 3;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    o.train.out = b;
    o.train.stop_at = 5;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    snprintf(ck, sizeof ck, "%s/checkpoints/step_00000005", b);
    CHECK(dl_is_dir(ck) && dl_rm_rf(ck, &err) == 0); /* a crash after step 5: resume from step 3 */
    o.train.stop_at = 0;
    o.train.resume = 1;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    CHECK(fx_same_params(a, b));
    json_t *ma = fx_metrics(a), *mb = fx_metrics(b);
    double share = 0;
    for (long s = 1; s <= 8; s++) {
        CHECK(fx_metric(ma, s, "loss") == fx_metric(mb, s, "loss"));
        CHECK(fx_metric(ma, s, "on_policy") == fx_metric(mb, s, "on_policy"));
        share += fx_metric(ma, s, "on_policy") / 8;
    }
    CHECK_MSG(share > 0.1 && share < 0.9, "on-policy share %g", share);
    json_decref(ma);
    json_decref(mb);

    /* distil train cannot resume a distillation */
    dl_train_opts t = o.train;
    CHECK(dl_train(&t, &err) != 0 && strstr(err.msg, "distil distill") != NULL);
}

/* seq-kd: every batch is teacher text; lmbda 1: every batch is student text. Both learn. */
static void test_generated_modes(void) {
    dl_error err = {{0}};
    char out[800];
    snprintf(out, sizeof out, "%s/seq", root);
    dl_distill_opts o = fx_opts(teacher, student_cfg, data, out, 3);
    o.seq_kd = 1;
    o.prompt_len = 8;
    o.kd.ce_weight = 0.5f;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    json_t *m = fx_metrics(out);
    CHECK(fx_metric(m, 3, "on_policy") == 0 && fx_metric(m, 3, "ce") > 0 && fx_metric(m, 3, "kd") > 0);
    json_decref(m);

    snprintf(out, sizeof out, "%s/onp", root);
    o = fx_opts(teacher, student_cfg, data, out, 3);
    o.lmbda = 1.0;
    o.gen_temperature = 0.0; /* greedy */
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    m = fx_metrics(out);
    CHECK(fx_metric(m, 1, "on_policy") == 1 && fx_metric(m, 3, "on_policy") == 1);
    json_decref(m);
}

/* Greedy teacher continuations: every generated token is the teacher's argmax (over the
 * student's ids: the teacher here is padded) after the tokens before it, which the training
 * forward recomputes here; the prompt stays and its own next tokens are masked. */
static void test_rollout(void) {
    enum { B = 2, T = 16, P = 5 };
    dl_error err = {{0}};
    dl_model t;
    dl_kv_cache kv;
    if (dl_model_load(&t, padded, &err) || dl_kv_cache_create(&kv, &t.cfg, T, &err)) fx_die("teacher", &err);
    float *logits = malloc((size_t)t.cfg.V * sizeof(float));
    int32_t in[B * T], out_in[B * T], out_tg[B * T], seq[T + 1];
    for (int i = 0; i < B * T; i++) in[i] = (i * 7 + 3) % V;
    dl_rollout g = {&t, &kv, logits, V, P, {0.0f, 0, 1.0f}};
    dl_rng rng;
    dl_rng_seed(&rng, 1);
    CHECK_MSG(dl_rollout_batch(&g, in, B, T, &rng, seq, out_in, out_tg, &err) == 0, "%s", err.msg);
    if (dl_model_alloc_train(&t, 1, T, &err)) fx_die("alloc", &err);
    int bad = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *xi = out_in + b * T, *xt = out_tg + b * T;
        CHECK(memcmp(xi, in + b * T, P * sizeof(int32_t)) == 0);
        dl_model_forward(&t, xi, NULL, 1, T);
        for (int i = 0; i < T; i++) {
            if (i < P - 1) { bad += xt[i] != -1; continue; }
            bad += xt[i] != dl_argmax(t.logits + (size_t)i * t.cfg.V, V);
            if (i + 1 < T) bad += xt[i] != xi[i + 1];
        }
    }
    CHECK_MSG(bad == 0, "%d mismatches", bad);
    free(logits);
    dl_kv_cache_free(&kv);
    dl_model_free(&t);
}

/* A padded teacher (vocab_size V + 13, same tokenizer) teaches a V student. */
static void test_padded_teacher(void) {
    dl_error err = {{0}};
    char out[800];
    snprintf(out, sizeof out, "%s/pad", root);
    dl_distill_opts o = fx_opts(padded, student_cfg, data, out, 3);
    o.kd.kind = DL_KD_RKL;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    json_t *m = fx_metrics(out);
    CHECK(fx_metric(m, 3, "loss") > 0);
    json_decref(m);
}

static double max_diff(const dl_model *s, int sv, const dl_model *t, int tv) {
    const dl_tensor_view *a = &s->lay.views[sv], *b = &t->lay.views[tv];
    double d = a->numel <= b->numel ? 0 : 1e9;
    for (size_t i = 0; i < a->numel && i < b->numel; i++)
        d = fmax(d, fabs((double)s->params[a->offset + i] - t->params[b->offset + i]));
    return d;
}

/* Layers 0 and 2 of a 3-layer teacher into a 2-layer student, through a run whose learning rate
 * is too small to move a weight: the student's weights are the teacher's. */
static void test_init_from_teacher(void) {
    dl_error err = {{0}};
    char out[800];
    snprintf(out, sizeof out, "%s/init", root);
    dl_distill_opts o = fx_opts(wide, student_cfg, data, out, 1);
    o.init_from_teacher = 1;
    o.layers = "0,2";
    o.train.lr = 1e-12;
    o.train.min_lr = 0;
    CHECK_MSG(dl_distill(&o, &err) == 0, "%s", err.msg);
    dl_model s, t;
    if (dl_model_load(&s, out, &err) || dl_model_load(&t, wide, &err)) fx_die("load", &err);
    double d = fmax(max_diff(&s, s.lay.embed, &t, t.lay.embed), max_diff(&s, s.lay.norm, &t, t.lay.norm));
    d = fmax(d, max_diff(&s, s.lay.lm_head, &t, t.lay.lm_head));
    const int pick[2] = {0, 2};
    for (int l = 0; l < 2; l++) {
        const dl_layer_views *a = &s.lay.layers[l], *b = &t.lay.layers[pick[l]];
        d = fmax(d, max_diff(&s, a->wq, &t, b->wq));
        d = fmax(d, max_diff(&s, a->wdown, &t, b->wdown));
        d = fmax(d, max_diff(&s, a->ln2, &t, b->ln2));
    }
    CHECK_MSG(d < 1e-6, "max difference %g", d);
    /* and not layer 1 in the student's second slot */
    CHECK(max_diff(&s, s.lay.layers[1].wq, &t, t.lay.layers[1].wq) > 1e-3);
    dl_model_free(&s);
    dl_model_free(&t);

    /* the default spreads the layers from the first to the last */
    int layers[4];
    CHECK(dl_parse_layers(NULL, 5, 3, layers, &err) == 0 && layers[0] == 0 && layers[1] == 2 && layers[2] == 4);
    CHECK(dl_parse_layers(NULL, 6, 1, layers, &err) == 0 && layers[0] == 0);
    CHECK(dl_parse_layers("1, 3,5", 6, 3, layers, &err) == 0 && layers[1] == 3 && layers[2] == 5);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(root, sizeof root, "%s", test_tmpdir("distill-run"));
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(teacher, sizeof teacher, "%s/teacher", root);
    snprintf(padded, sizeof padded, "%s/padded", root);
    snprintf(wide, sizeof wide, "%s/wide", root);
    snprintf(student_cfg, sizeof student_cfg, "%s/student.json", root);
    V = fx_data(data, 300, 0);
    fx_trained_teacher(teacher, fx_config(V, 2), data, 60);
    fx_model(padded, fx_config(V + 13, 2), 11, 4.0f, data);
    fx_model(wide, fx_config(V, 3), 12, 3.0f, data);
    fx_write_config(student_cfg, fx_config(V, 2));
    test_kl_falls();
    test_resume();
    test_generated_modes();
    test_rollout();
    test_padded_teacher();
    test_init_from_teacher();
    dl_error err;
    CHECK(dl_rm_rf(root, &err) == 0);
    TEST_MAIN_END();
}
