#include "checkpoint.h"
#include "formats/safetensors.h"
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const CKPT_FILES[] = {"model.safetensors", "config.json", "tokenizer.json",
                                         "optimizer.safetensors", "trainer_state.json", NULL};

/* "step_00001234" -> 1234; -1 for any other name (temp folders, stray files). */
static long parse_step_name(const char *name) {
    if (strncmp(name, "step_", 5) != 0 || !name[5]) return -1;
    long v = 0;
    for (const char *p = name + 5; *p; p++) {
        if (*p < '0' || *p > '9' || v > (1L << 40)) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static int ckpt_root(const char *run_dir, char *out, size_t n, dl_error *err) {
    return dl_path_join(out, n, run_dir, "checkpoints", err);
}

/* ---- writing -------------------------------------------------------------------------------- */
static int write_optimizer(const char *path, const dl_layout *lay, const float *m, const float *v,
                           dl_error *err) {
    int n = 2 * lay->n_views;
    dl_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    if (!ts) return dl_fail(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const dl_tensor_view *view = &lay->views[i / 2];
        const char *prefix = i % 2 ? "exp_avg_sq." : "exp_avg.";
        size_t len = strlen(prefix) + strlen(view->name) + 1;
        if (!(ts[i].name = malloc(len))) { rc = dl_fail(err, "out of memory"); break; }
        snprintf(ts[i].name, len, "%s%s", prefix, view->name);
        ts[i].dtype = DL_F32;
        ts[i].ndim = view->ndim;
        for (int d = 0; d < view->ndim; d++) ts[i].shape[d] = view->shape[d];
        ts[i].numel = view->numel;
        ts[i].data = (i % 2 ? v : m) + view->offset;
        ts[i].nbytes = view->numel * sizeof(float);
    }
    if (rc == 0) rc = dl_st_write(path, ts, n, NULL, err);
    for (int i = 0; i < n; i++) free(ts[i].name);
    free(ts);
    return rc;
}

static int write_files(const char *dir, const dl_ckpt *c, dl_error *err) {
    char p[4096];
    if (dl_model_save(c->model, dir, err)) return -1;
    if (dl_path_join(p, sizeof p, dir, "tokenizer.json", err) || dl_copy_file(c->tokenizer, p, err)) return -1;
    if (dl_path_join(p, sizeof p, dir, "optimizer.safetensors", err) ||
        write_optimizer(p, &c->model->lay, c->exp_avg, c->exp_avg_sq, err))
        return -1;
    if (dl_path_join(p, sizeof p, dir, "trainer_state.json", err) || dl_json_save(c->state, p, err)) return -1;
    return 0;
}

int dl_ckpt_write(const char *run_dir, long step, const dl_ckpt *c, char *dir_out, size_t n, dl_error *err) {
    char root[4096], name[64], tmp[4200];
    if (ckpt_root(run_dir, root, sizeof root, err) || dl_mkdir_p(root, err)) return -1;
    snprintf(name, sizeof name, "step_%08ld", step);
    if (dl_path_join(dir_out, n, root, name, err)) return -1;
    snprintf(tmp, sizeof tmp, "%s/.%s.partial", root, name);
    if (dl_rm_rf(tmp, err) || dl_mkdir_p(tmp, err)) return -1;
    if (write_files(tmp, c, err) || dl_fsync_dir(tmp, err)) {
        dl_rm_rf(tmp, NULL);
        return dl_fail_ctx(err, "checkpoint %s", dir_out);
    }
    /* a checkpoint of the same step can only be a leftover of an earlier attempt: replace it */
    if (dl_rm_rf(dir_out, err)) return -1;
    if (rename(tmp, dir_out) != 0) {
        int e = errno;
        dl_rm_rf(tmp, NULL);
        return dl_fail(err, "checkpoint %s: rename failed: %s", dir_out, strerror(e));
    }
    return dl_fsync_dir(root, err);
}

/* ---- listing ---------------------------------------------------------------------------------- */
typedef struct step_list { long *v; int n, cap; } step_list;

static int list_steps(const char *root, step_list *out, dl_error *err) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(root);
    if (!d) return errno == ENOENT ? 0 : dl_fail(err, "%s: cannot open folder: %s", root, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        long s = parse_step_name(e->d_name);
        if (s < 0) continue;
        if (out->n == out->cap) {
            int nc = out->cap ? 2 * out->cap : 16;
            long *p = realloc(out->v, (size_t)nc * sizeof *p);
            if (!p) { closedir(d); free(out->v); return dl_fail(err, "out of memory"); }
            out->v = p;
            out->cap = nc;
        }
        out->v[out->n++] = s;
    }
    closedir(d);
    return 0;
}

static int cmp_long_desc(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

static int is_complete(const char *dir) {
    char p[4200];
    for (const char *const *f = CKPT_FILES; *f; f++) {
        snprintf(p, sizeof p, "%s/%s", dir, *f);
        if (!dl_path_exists(p)) return 0;
    }
    return 1;
}

int dl_ckpt_find_newest(const char *run_dir, char *dir, size_t n, long *step, dl_error *err) {
    char root[4096], name[64];
    step_list sl;
    if (ckpt_root(run_dir, root, sizeof root, err) || list_steps(root, &sl, err)) return -1;
    if (sl.n > 1) qsort(sl.v, (size_t)sl.n, sizeof *sl.v, cmp_long_desc);
    int found = 0;
    for (int i = 0; i < sl.n && !found; i++) {
        snprintf(name, sizeof name, "step_%08ld", sl.v[i]);
        if (dl_path_join(dir, n, root, name, err)) { free(sl.v); return -1; }
        /* renames make folders complete; this guards against files deleted by hand */
        if (is_complete(dir)) {
            *step = sl.v[i];
            found = 1;
        } else {
            dl_log("warning: %s is incomplete; skipping it", dir);
        }
    }
    free(sl.v);
    return found;
}

static int remove_partials(const char *root, dl_error *err) {
    DIR *d = opendir(root);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t k = strlen(e->d_name);
        if (strncmp(e->d_name, ".step_", 6) != 0 || k < 8 || strcmp(e->d_name + k - 8, ".partial") != 0) continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", root, e->d_name);
        rc = dl_rm_rf(p, err);
    }
    closedir(d);
    return rc;
}

int dl_ckpt_prune(const char *run_dir, int keep, dl_error *err) {
    char root[4096], name[64], p[4200];
    step_list sl;
    if (ckpt_root(run_dir, root, sizeof root, err) || list_steps(root, &sl, err)) return -1;
    if (sl.n > 1) qsort(sl.v, (size_t)sl.n, sizeof *sl.v, cmp_long_desc);
    int rc = 0;
    for (int i = keep; i < sl.n && rc == 0; i++) {
        snprintf(name, sizeof name, "step_%08ld", sl.v[i]);
        snprintf(p, sizeof p, "%s/%s", root, name);
        rc = dl_rm_rf(p, err);
    }
    free(sl.v);
    return rc ? -1 : remove_partials(root, err);
}

/* ---- optimizer state ---------------------------------------------------------------------------- */
static int read_moment(const dl_st_file *f, const char *prefix, const dl_tensor_view *view, float *dst,
                       dl_error *err) {
    char name[DL_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s%s", prefix, view->name);
    const dl_st_tensor *t = dl_st_find(f, name);
    if (!t) return dl_fail(err, "tensor '%s' is missing", name);
    int same_shape = t->ndim == view->ndim;
    for (int d = 0; same_shape && d < view->ndim; d++) same_shape = t->shape[d] == view->shape[d];
    if (!same_shape || t->numel != view->numel)
        return dl_fail(err, "tensor '%s' has %zu elements in another shape than the model's (%zu)", name,
                       t->numel, view->numel);
    return dl_st_read_f32(t, dst + view->offset, view->numel, err);
}

int dl_ckpt_read_optimizer(const char *dir, const dl_layout *lay, float *exp_avg, float *exp_avg_sq,
                           dl_error *err) {
    char p[4096];
    if (dl_path_join(p, sizeof p, dir, "optimizer.safetensors", err)) return -1;
    dl_st_file f;
    if (dl_st_open(&f, p, err)) return -1;
    int rc = 0;
    for (int i = 0; i < lay->n_views && rc == 0; i++)
        rc = read_moment(&f, "exp_avg.", &lay->views[i], exp_avg, err) ||
                     read_moment(&f, "exp_avg_sq.", &lay->views[i], exp_avg_sq, err)
                 ? -1
                 : 0;
    dl_st_close(&f);
    return rc ? dl_fail_ctx(err, "%s", p) : 0;
}
