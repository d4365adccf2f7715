/* safetensors dtype names and element sizes. */
#include "formats/safetensors.h"
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    [DL_F32] = {"F32", 4}, [DL_F16] = {"F16", 2}, [DL_BF16] = {"BF16", 2}, [DL_I32] = {"I32", 4},
    [DL_I64] = {"I64", 8}, [DL_U8] = {"U8", 1},   [DL_I8] = {"I8", 1},     [DL_U16] = {"U16", 2},
};

const char *dl_dtype_name(dl_dtype t) {
    if ((unsigned)t >= DL_DTYPE_UNKNOWN) return "unknown";
    return DTYPES[t].name;
}

size_t dl_dtype_size(dl_dtype t) {
    if ((unsigned)t >= DL_DTYPE_UNKNOWN) return 0;
    return DTYPES[t].size;
}

dl_dtype dl_dtype_from_name(const char *name) {
    for (int t = 0; t < DL_DTYPE_UNKNOWN; t++)
        if (strcmp(DTYPES[t].name, name) == 0) return (dl_dtype)t;
    return DL_DTYPE_UNKNOWN;
}
