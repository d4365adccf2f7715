/* Can this teacher teach this student? Same token ids (tokenizer), and vocabularies that hold
 * every id of the tokenizer. Checked before anything trains. */
#include "distill.h"

int dl_teacher_check_tokenizer(const char *teacher_dir, const char *student_tokenizer, int *vocab,
                               dl_error *err) {
    char tp[4096];
    if (dl_path_join(tp, sizeof tp, teacher_dir, "tokenizer.json", err)) return -1;
    if (!dl_path_exists(tp))
        return dl_fail(err, "teacher %s has no tokenizer.json: white-box distillation needs it to check that teacher "
                            "and student share token ids (copy the teacher's tokenizer.json into its folder)",
                       teacher_dir);
    if (!dl_path_exists(student_tokenizer)) return dl_fail(err, "%s is missing", student_tokenizer);
    uint64_t ht, hs;
    int vt, vs;
    if (dl_tok_fingerprint_file(tp, &ht, &vt, err) || dl_tok_fingerprint_file(student_tokenizer, &hs, &vs, err))
        return -1;
    if (ht != hs)
        return dl_fail(err, "the teacher's tokenizer (%s, %d tokens) differs from the student's (%s, %d tokens): "
                            "white-box distillation compares logits id by id, so both must use one tokenizer. "
                            "For a teacher with another tokenizer use the black-box path: collect its "
                            "completions with `distil harvest` and distil from the text",
                       tp, vt, student_tokenizer, vs);
    if (vocab) *vocab = vt;
    return 0;
}

int dl_teacher_check_vocab(const dl_config *teacher, const dl_config *student, int tokenizer_vocab,
                           dl_error *err) {
    if (teacher->V < tokenizer_vocab)
        return dl_fail(err, "the teacher's vocab_size %d is smaller than its tokenizer's %d tokens", teacher->V,
                       tokenizer_vocab);
    if (student->V < tokenizer_vocab)
        return dl_fail(err, "the student's vocab_size %d is smaller than the tokenizer's %d tokens", student->V,
                       tokenizer_vocab);
    if (student->V > teacher->V)
        return dl_fail(err, "the student's vocab_size %d is larger than the teacher's %d: the teacher has no logits "
                            "for ids %d..%d (a teacher padded past the student is fine, not the reverse)",
                       student->V, teacher->V, teacher->V, student->V - 1);
    return 0;
}
