/* The loss of harvest rows (hd_rows_loss) against a reference written here in double: rows with
 * top-k targets take (1 - w) tau^2 D + w CE over K + 1 bins (kd_ref.h, from the formulas of
 * losses.h), rows without take plain cross-entropy, rows without a target nothing, and the loss
 * is the mean over counted rows. Mixed batches (runs of different K, cross-entropy rows and
 * ignored rows interleaved), several divergences and temperatures; the gradient is checked
 * against central differences of the reference (H = 1e-5), with the tolerances of
 * test_kd_grad.c. */
#include "distill/harvest_data.h"
#include "kd_ref.h"
#include "test.h"

#define H 1e-5
#define N 12
#define V 11

typedef struct {
    float z[N * V];
    int32_t target[N];
    uint8_t n_alt[N];
    size_t alt_at[N];
    float rest[N];
    int32_t ids[N * 4];
    float logp[N * 4];
} rows;

/* Rows: 0-2 three targets, 3 ignored, 4-5 cross-entropy, 6-7 two targets, 8 three, 9 ignored
 * with targets (never read), 10 cross-entropy, 11 one target. */
static void make_rows(rows *r, uint64_t seed) {
    static const int kinds[N] = {3, 3, 3, -1, 0, 0, 2, 2, 3, -2, 0, 1};
    dl_rng g;
    dl_rng_seed(&g, seed);
    size_t at = 0;
    for (int n = 0; n < N; n++) {
        for (int v = 0; v < V; v++) r->z[n * V + v] = 2.0f * dl_rng_normal(&g);
        int k = kinds[n] > 0 ? kinds[n] : kinds[n] == -2 ? 2 : 0;
        r->target[n] = kinds[n] < 0 ? -1 : (int32_t)dl_rng_below(&g, V);
        r->n_alt[n] = (uint8_t)k;
        r->alt_at[n] = at;
        float zt[V];
        for (int v = 0; v < V; v++) zt[v] = 2.0f * dl_rng_normal(&g);
        if (k > 0) kd_make_topk(zt, V, 1, V, k, &g, r->ids + at, r->logp + at, &r->rest[n]);
        else r->rest[n] = 0;
        at += (size_t)k;
    }
}

/* The reference: the mean over counted rows, in double. */
static double ref_rows(const dl_kd_cfg *cfg, const rows *r, const double *z) {
    double s = 0;
    int count = 0;
    for (int n = 0; n < N; n++) {
        if (r->target[n] < 0) continue;
        const double *x = z + n * V;
        count++;
        if (r->n_alt[n] == 0) {
            double m = -INFINITY, e = 0;
            for (int v = 0; v < V; v++) m = fmax(m, x[v]);
            for (int v = 0; v < V; v++) e += exp(x[v] - m);
            s += m + log(e) - x[r->target[n]];
            continue;
        }
        ref_teacher t = {.ids = r->ids + r->alt_at[n], .logp = r->logp + r->alt_at[n], .rest = &r->rest[n],
                         .K = r->n_alt[n]};
        s += ref_loss(cfg, x, &t, &r->target[n], 1, V);
    }
    return count ? s / count : 0;
}

static void check_cfg(const dl_kd_cfg *cfg, uint64_t seed, float scale) {
    rows r;
    make_rows(&r, seed);
    double z[N * V];
    for (int i = 0; i < N * V; i++) z[i] = r.z[i];
    double want = ref_rows(cfg, &r, z);
    float g[N * V];
    memcpy(g, r.z, sizeof g);
    hd_work w = {0};
    hd_loss out;
    dl_error err = {{0}};
    int rc = hd_rows_loss(cfg, g, N, V, r.target, r.n_alt, r.alt_at, r.ids, r.logp, r.rest, scale, &w, &out, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_CLOSE(out.loss, want, 1e-7, 1e-5);
    CHECK(out.rows == 10 && out.topk_rows == 7);
    double gmax = 0, worst = 0;
    for (int i = 0; i < N * V; i++) gmax = fmax(gmax, fabs(g[i]));
    for (int i = 0; i < N * V; i++) {
        double keep = z[i];
        z[i] = keep + H;
        double up = ref_rows(cfg, &r, z);
        z[i] = keep - H;
        double down = ref_rows(cfg, &r, z);
        z[i] = keep;
        double num = scale * (up - down) / (2 * H), diff = fabs(num - g[i]) - 1e-4 * fabs(num);
        worst = fmax(worst, diff);
    }
    CHECK_MSG(worst <= 2e-6 * gmax, "%s tau %g w %g: gradient off by %g (largest entry %g)", dl_kd_name(cfg->kind),
              (double)cfg->tau, (double)cfg->ce_weight, worst, gmax);
    for (int v = 0; v < V; v++) CHECK(g[3 * V + v] == 0.0f && g[9 * V + v] == 0.0f); /* ignored rows */
    hd_work_free(&w);
}

/* Every row ignored: a zero gradient and a zero loss. */
static void test_nothing_counted(void) {
    rows r;
    make_rows(&r, 9);
    for (int n = 0; n < N; n++) r.target[n] = -1;
    hd_work w = {0};
    hd_loss out;
    dl_error err;
    dl_kd_cfg cfg = {DL_KD_FKL, 0.5f, 0.1f, 1.0f, 0.0f};
    CHECK(hd_rows_loss(&cfg, r.z, N, V, r.target, r.n_alt, r.alt_at, r.ids, r.logp, r.rest, 1.0f, &w, &out, &err) == 0);
    int zero = 1;
    for (int i = 0; i < N * V; i++) zero &= r.z[i] == 0.0f;
    CHECK(zero && out.rows == 0 && out.loss == 0);
    hd_work_free(&w);
}

/* A repeated id in a row's targets is refused, not averaged over. */
static void test_bad_targets(void) {
    rows r;
    make_rows(&r, 4);
    r.ids[1] = r.ids[0];
    hd_work w = {0};
    hd_loss out;
    dl_error err = {{0}};
    dl_kd_cfg cfg = {DL_KD_FKL, 0.5f, 0.1f, 1.0f, 0.0f};
    CHECK(hd_rows_loss(&cfg, r.z, N, V, r.target, r.n_alt, r.alt_at, r.ids, r.logp, r.rest, 1.0f, &w, &out, &err) != 0);
    CHECK(strstr(err.msg, "twice") != NULL);
    hd_work_free(&w);
}

int main(void) {
    dl_kd_cfg fkl = {DL_KD_FKL, 0.5f, 0.1f, 1.0f, 0.0f};
    check_cfg(&fkl, 1, 1.0f);
    dl_kd_cfg fkl_ce = {DL_KD_FKL, 0.5f, 0.1f, 1.0f, 0.3f};
    check_cfg(&fkl_ce, 2, 0.5f);
    dl_kd_cfg jsd = {DL_KD_JSD, 0.4f, 0.1f, 2.0f, 0.2f};
    check_cfg(&jsd, 3, 1.0f);
    dl_kd_cfg rkl = {DL_KD_RKL, 0.5f, 0.1f, 0.7f, 0.0f};
    check_cfg(&rkl, 4, 1.0f);
    dl_kd_cfg srkl = {DL_KD_SRKL, 0.5f, 0.2f, 1.5f, 0.5f};
    check_cfg(&srkl, 5, 0.25f);
    test_nothing_counted();
    test_bad_targets();
    TEST_MAIN_END();
}
