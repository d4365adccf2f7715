/* libFuzzer target: llama2.c checkpoints (legacy and version 1) over arbitrary bytes. What the
 * reader accepts must be a model whose every parameter can be read. */
#include "convert/convert.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dl_model m;
    dl_error err;
    if (dl_llama2c_read(&m, data, size, &err) != 0) return 0;
    volatile float sum = 0;
    for (size_t i = 0; i < m.lay.total; i++) sum += m.params[i];
    (void)sum;
    dl_model_free(&m);
    return 0;
}
