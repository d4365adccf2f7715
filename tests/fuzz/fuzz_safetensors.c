/* libFuzzer target: the safetensors reader over arbitrary bytes (written to a temp file, since
 * the reader maps files). Whatever it accepts is read back in full. */
#include "formats/safetensors.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char path[256];
static float scratch[1 << 16];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(path, sizeof path, "/tmp/fuzz-safetensors-%d.bin", (int)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    size_t wrote = size ? fwrite(data, 1, size, fp) : 0;
    fclose(fp);
    if (wrote != size) return 0;
    dl_st_file f;
    dl_error err;
    if (dl_st_open(&f, path, &err) != 0) return 0;
    volatile unsigned sum = 0;
    for (int i = 0; i < f.n; i++) {
        const dl_st_tensor *t = &f.tensors[i];
        const uint8_t *p = t->data;
        for (size_t j = 0; j < t->nbytes; j++) sum += p[j];
        if (t->numel <= sizeof scratch / sizeof scratch[0] && dl_st_read_f32(t, scratch, t->numel, &err) == 0 && t->numel)
            sum += scratch[0] > 0;
        if (dl_st_find(&f, t->name) == NULL) __builtin_trap();
    }
    (void)sum;
    dl_st_close(&f);
    return 0;
}
