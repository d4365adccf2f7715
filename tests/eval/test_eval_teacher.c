/* dl_eval_teacher: a model against itself agrees everywhere with KL 0; against another model
 * the metrics equal a direct computation here (in double, from the training forward's logits);
 * a teacher padded with extra vocabulary rows gives the same numbers as the unpadded one. */
#include "data/data.h"
#include "eval/eval.h"
#include "model/model.h"
#include "test.h"

enum { V = 40 };
static char tmp[512], path[700];

static dl_config cfg(int vocab, int L) {
    return (dl_config){.V = vocab, .C = 16, .F = 32, .L = L, .NH = 2, .NKV = 1, .max_T = 32, .rms_eps = 1e-5f,
                       .rope_theta = 10000.0f, .tied = 0, .bos_id = -1, .eos_id = -1};
}

static void make(dl_model *m, dl_config c, uint64_t seed, float gain) {
    dl_error err;
    if (dl_model_create(m, &c, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
    dl_model_init_random(m, seed);
    for (size_t i = 0; i < m->lay.total; i++) m->params[i] *= gain;
}

static void write_tokens(int n) {
    int32_t ids[200];
    dl_error err;
    for (int i = 0; i < n; i++) ids[i] = (i * 13 + i / 7) % V;
    if (dl_tokfile_write(path, ids, (size_t)n, V, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
}

static void test_self(void) {
    dl_model a, b;
    make(&a, cfg(V, 2), 1, 4.0f);
    make(&b, cfg(V, 2), 1, 4.0f);
    dl_tokfile f;
    dl_error err;
    CHECK(dl_tokfile_open(&f, path, &err) == 0);
    dl_eval_teacher_result r;
    CHECK_MSG(dl_eval_teacher(&a, &b, &f, 3, 8, 0, &r, &err) == 0, "%s", err.msg);
    CHECK(fabs(r.kl) < 1e-9);
    CHECK(r.agreement == 1.0 && r.top5 == 1.0);
    CHECK_CLOSE(r.teacher_loss, r.student.mean_loss, 1e-6, 1e-6);
    CHECK(r.student.tokens == f.n_tokens - 1);
    dl_tokfile_close(&f);
    dl_model_free(&a);
    dl_model_free(&b);
}

/* Direct sums over every window, one position at a time (B = 1, the whole window). */
static void reference(dl_model *s, dl_model *t, const dl_tokfile *f, int T, double out[4]) {
    dl_error err;
    dl_model_alloc_train(s, 1, T, &err);
    dl_model_alloc_train(t, 1, T, &err);
    uint64_t P = f->n_tokens - 1, n = 0;
    memset(out, 0, 4 * sizeof(double));
    for (uint64_t w = 0; w * T < P; w++) {
        int32_t in[64], tg[64];
        int cnt = 0;
        for (int i = 0; i < T; i++) {
            uint64_t at = w * T + (uint64_t)i;
            in[i] = at < P ? dl_tokfile_get(f, at) : 0;
            tg[i] = at < P ? dl_tokfile_get(f, at + 1) : -1;
            cnt += at < P;
        }
        dl_model_forward(s, in, NULL, 1, T);
        dl_model_forward(t, in, NULL, 1, T);
        for (int i = 0; i < cnt; i++) {
            const float *zs = s->logits + (size_t)i * s->cfg.V, *zt = t->logits + (size_t)i * t->cfg.V;
            double ss = 0, st = 0, kl = 0;
            for (int v = 0; v < V; v++) ss += exp(zs[v]), st += exp(zt[v]);
            int as = 0, at = 0, ranks = 0;
            for (int v = 0; v < V; v++) {
                double p = exp(zt[v]) / st, q = exp(zs[v]) / ss;
                kl += p * log(p / q);
                if (zs[v] > zs[as]) as = v;
                if (zt[v] > zt[at]) at = v;
            }
            // top-5 by rank: v is in a model's top 5 when fewer than 5 ids beat it
            for (int v = 0; v < V; v++) {
                int bs = 0, bt = 0;
                for (int u = 0; u < V; u++) bs += zs[u] > zs[v], bt += zt[u] > zt[v];
                ranks += bs < 5 && bt < 5;
            }
            out[0] += kl, out[1] += as == at, out[2] += ranks / 5.0, out[3] += log(st) - zt[tg[i]];
            n++;
        }
    }
    for (int k = 0; k < 4; k++) out[k] /= (double)n;
}

static void test_against_reference(void) {
    dl_model s, t, padded;
    make(&s, cfg(V, 1), 2, 1.0f);
    make(&t, cfg(V, 2), 3, 5.0f);
    make(&padded, cfg(V + 3, 2), 9, 1.0f);
    /* padded = t with three more vocabulary rows, whose logits would dominate if not truncated */
    for (int i = 0; i < t.lay.n_views; i++) {
        const dl_tensor_view *a = &t.lay.views[i], *b = &padded.lay.views[dl_layout_find(&padded.lay, a->name)];
        memcpy(padded.params + b->offset, t.params + a->offset, a->numel * sizeof(float));
        if (b->numel > a->numel)
            for (size_t j = a->numel; j < b->numel; j++) padded.params[b->offset + j] = 3.0f;
    }
    dl_tokfile f;
    dl_error err;
    CHECK(dl_tokfile_open(&f, path, &err) == 0);
    double ref[4];
    reference(&s, &t, &f, 8, ref);
    dl_eval_teacher_result r, rp;
    CHECK_MSG(dl_eval_teacher(&s, &t, &f, 3, 8, 0, &r, &err) == 0, "%s", err.msg);
    CHECK(r.kl > 0.05); /* the two models really differ */
    CHECK_CLOSE(r.kl, ref[0], 1e-6, 1e-5);
    CHECK_CLOSE(r.agreement, ref[1], 1e-12, 0);
    CHECK_CLOSE(r.top5, ref[2], 1e-12, 0);
    CHECK_CLOSE(r.teacher_loss, ref[3], 1e-6, 1e-5);
    CHECK_MSG(dl_eval_teacher(&s, &padded, &f, 2, 8, 0, &rp, &err) == 0, "%s", err.msg);
    CHECK_CLOSE(rp.kl, r.kl, 1e-6, 1e-5);
    CHECK(rp.agreement == r.agreement && rp.top5 == r.top5);
    CHECK_CLOSE(rp.teacher_loss, r.teacher_loss, 1e-6, 1e-5);

    /* a max_tokens cut scores exactly that many positions */
    CHECK(dl_eval_teacher(&s, &t, &f, 2, 8, 21, &r, &err) == 0 && r.student.tokens == 21);
    /* bad pairs */
    CHECK(dl_eval_teacher(&padded, &t, &f, 2, 8, 0, &r, &err) != 0 && strstr(err.msg, "smaller") != NULL);
    dl_model shortctx;
    dl_config c = cfg(V, 1);
    c.max_T = 4;
    make(&shortctx, c, 1, 1.0f);
    CHECK(dl_eval_teacher(&s, &shortctx, &f, 2, 8, 0, &r, &err) != 0 && strstr(err.msg, "teacher") != NULL);
    dl_model_free(&shortctx);
    dl_tokfile_close(&f);
    dl_model_free(&s);
    dl_model_free(&t);
    dl_model_free(&padded);
}

int main(void) {
    dl_log_set_level(DL_LOG_QUIET);
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("eval-teacher"));
    snprintf(path, sizeof path, "%s/val.bin", tmp);
    write_tokens(61); /* 60 positions: 7 full windows of 8 and one of 4 */
    test_self();
    test_against_reference();
    dl_error err;
    CHECK(dl_rm_rf(tmp, &err) == 0);
    TEST_MAIN_END();
}
