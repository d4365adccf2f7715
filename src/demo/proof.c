/* The demo's last act: the proof. The teacher was served with a keyed watermark, so everything
 * the harvest holds leans towards the key's green tokens, and a student distilled from it learns
 * the lean. Each student reads the held-out end of the corpus (distil detect model, reading mode)
 * and its own next-token guesses are scored for greenness over unique (context, guess) pairs.
 * The text is plain, never watermarked: reading the harvested answers instead would bias the test,
 * since a model that merely predicts those texts well guesses green where they are green, and
 * leaving out the pairs they hold swings it the other way (a demo run scored the white-box student
 * z = -20 that way). Over plain text a model that never saw the key is green at rate gamma. */
#include "demo/demo.h"
#include "provenance/provenance.h"
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Flagged below this p-value: one chance in ten million of flagging a model that never saw
 * watermarked text (the p-value is exact under that hypothesis; see distil detect --help). */
#define PROOF_P_FLAG 1e-7

/* A fresh random key for this run (32 bytes from the system's generator). */
int dl_demo_write_key(const char *path, dl_error *err) {
    unsigned char key[32];
    if (sodium_init() < 0) return dl_fail(err, "demo: libsodium cannot start");
    randombytes_buf(key, sizeof key);
    int rc = dl_write_file_atomic(path, key, sizeof key, err);
    sodium_memzero(key, sizeof key);
    return rc;
}

/* The last share of the corpus from a line start on: text the teacher was not trained on and
 * that no student saw as training data (data prepare holds out the same end as validation). */
static int write_heldout(const char *corpus, double share, const char *path, dl_error *err) {
    char *text;
    size_t len;
    if (dl_read_file(corpus, &text, &len, err)) return -1;
    size_t at = (size_t)((double)len * (1.0 - share));
    const char *nl = memchr(text + at, '\n', len - at);
    at = nl ? (size_t)(nl - text) + 1 : at;
    int rc = at < len ? dl_write_file_atomic(path, text + at, len - at, err)
                      : dl_fail(err, "demo: the corpus %s has no held-out text to read", corpus);
    free(text);
    return rc;
}

int dl_demo_proof(const char *key_file, const char *corpus, const char *text_path, const char *const *dirs,
                  const char *const *names, int n, dl_error *err) {
    if (write_heldout(corpus, 0.05, text_path, err)) return -1;
    printf("\nprovenance: each student reads held-out plain text (%s); its own next-token guesses are\n"
           "scored for the served teacher's watermark key (distil detect model --unmarked-text, gamma 0.25, one\n"
           "token of context; unique (context, guess) pairs)\n\n",
           text_path);
    printf("  %-10s %8s %8s %8s %12s  %s\n", "student", "pairs", "green", "z", "p-value", "verdict");
    for (int i = 0; i < n; i++) {
        dl_detect_cfg cfg;
        dl_detect_cfg_default(&cfg);
        cfg.key_file = key_file;
        cfg.suspect = dirs[i];
        cfg.input = text_path;
        cfg.unmarked_text = 1;
        dl_detect_result res;
        if (dl_detect_model(&cfg, &res, err)) return dl_fail_ctx(err, "demo: detect model on %s", dirs[i]);
        char p[32];
        dl_format_p(res.st.log_p, p, sizeof p);
        int flagged = res.st.n > 0 && res.st.log_p < log(PROOF_P_FLAG);
        printf("  %-10s %8ld %8ld %8.2f %12s  %s\n", names[i], res.st.n, res.st.green, res.st.z, p,
               flagged ? "trained on the watermarked API" : "no evidence");
    }
    printf("\n  (flagged when p < %g: the chance that a model which never saw the watermarked text scores this high)\n",
           PROOF_P_FLAG);
    fflush(stdout);
    return 0;
}
