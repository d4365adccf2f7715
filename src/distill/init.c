/* A student started from the teacher's own weights: a subset of its layers, its embeddings and
 * its final norm, in a student of the same width (fewer layers). */
#include "distill.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_list(const char *spec, int max_n, int *layers, int *n, dl_error *err) {
    const char *p = spec;
    *n = 0;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 1000000)
            return dl_fail(err, "--layers '%s': expected non-negative layer numbers separated by commas", spec);
        if (*n == max_n) return dl_fail(err, "--layers '%s' lists more than the student's %d layers", spec, max_n);
        layers[(*n)++] = (int)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return dl_fail(err, "--layers '%s': unexpected '%c'", spec, *p);
        if (*p == 0 && end[0] == ',') return dl_fail(err, "--layers '%s' ends with a comma", spec);
    }
    return 0;
}

int dl_parse_layers(const char *spec, int teacher_L, int student_L, int *layers, dl_error *err) {
    if (student_L <= 0 || teacher_L <= 0) return dl_fail(err, "--layers: models without layers");
    if (!spec) {
        if (student_L > teacher_L)
            return dl_fail(err, "the student has %d layers, more than the teacher's %d", student_L, teacher_L);
        // evenly spread, first and last included
        for (int i = 0; i < student_L; i++)
            layers[i] = student_L == 1 ? 0 : (int)((long)i * (teacher_L - 1) / (student_L - 1));
        return 0;
    }
    int n = 0;
    if (parse_list(spec, student_L, layers, &n, err)) return -1;
    if (n != student_L)
        return dl_fail(err, "--layers '%s' names %d layers but the student has %d (num_hidden_layers)", spec, n,
                       student_L);
    for (int i = 0; i < n; i++) {
        if (layers[i] >= teacher_L)
            return dl_fail(err, "--layers '%s': layer %d does not exist (the teacher has layers 0..%d)", spec,
                           layers[i], teacher_L - 1);
        if (i > 0 && layers[i] <= layers[i - 1])
            return dl_fail(err, "--layers '%s' must be strictly increasing", spec);
    }
    return 0;
}

int dl_init_check(const dl_config *t, const dl_config *s, dl_error *err) {
    if (t->C != s->C || t->F != s->F || t->NH != s->NH || t->NKV != s->NKV)
        return dl_fail(err, "--init-from-teacher needs a student as wide as the teacher: hidden %d/%d, intermediate "
                            "%d/%d, heads %d/%d, kv heads %d/%d (student/teacher)",
                       s->C, t->C, s->F, t->F, s->NH, t->NH, s->NKV, t->NKV);
    if (s->V > t->V)
        return dl_fail(err, "--init-from-teacher: the student's vocab_size %d exceeds the teacher's %d", s->V, t->V);
    /* a bias on one side only would be dropped, or left at zero beside copied weights */
    if (s->qkv_bias != t->qkv_bias || s->o_bias != t->o_bias)
        return dl_fail(err, "--init-from-teacher needs the teacher's attention biases in the student: q/k/v biases "
                            "%s/%s, o_proj bias %s/%s (student/teacher); set attention_bias (Llama) or use the "
                            "teacher's model_type (Qwen2) in the student's config",
                       s->qkv_bias ? "yes" : "no", t->qkv_bias ? "yes" : "no", s->o_bias ? "yes" : "no",
                       t->o_bias ? "yes" : "no");
    if (s->rope_theta != t->rope_theta || s->rms_eps != t->rms_eps)
        dl_log("note: the student's rope_theta / rms_norm_eps differ from the teacher's; its copied layers see "
               "slightly different inputs");
    return 0;
}

static void copy_view(dl_model *s, int sv, const dl_model *t, int tv) {
    const dl_tensor_view *a = &s->lay.views[sv], *b = &t->lay.views[tv];
    memcpy(s->params + a->offset, t->params + b->offset, a->numel * sizeof(float));
}

int dl_init_from_teacher(dl_model *s, const dl_model *t, const int *layers, dl_error *err) {
    if (dl_init_check(&t->cfg, &s->cfg, err)) return -1;
    // embed / lm_head rows are [V, C]: the student's V rows are the teacher's first V
    copy_view(s, s->lay.embed, t, t->lay.embed);
    for (int l = 0; l < s->cfg.L; l++) {
        const dl_layer_views *a = &s->lay.layers[l], *b = &t->lay.layers[layers[l]];
        const int sv[13] = {a->ln1, a->wq, a->wk, a->wv, a->wo, a->ln2, a->wgate, a->wup, a->wdown,
                            a->bq, a->bk, a->bv, a->bo};
        const int tv[13] = {b->ln1, b->wq, b->wk, b->wv, b->wo, b->ln2, b->wgate, b->wup, b->wdown,
                            b->bq, b->bk, b->bv, b->bo};
        for (int i = 0; i < 13; i++)
            if (sv[i] >= 0) copy_view(s, sv[i], t, tv[i]); /* biases: -1 on both sides when absent */
    }
    copy_view(s, s->lay.norm, t, t->lay.norm);
    if (!s->cfg.tied) copy_view(s, s->lay.lm_head, t, t->lay.lm_head);
    else if (!t->cfg.tied)
        dl_log("note: the student ties its embeddings and the teacher does not: the teacher's lm_head is not used");
    return 0;
}
