/* ggml tensor types (block geometry, names) and the Q8_0 codec. */
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include <math.h>
#include <string.h>

typedef struct {
    const char *name;
    uint32_t block, bytes; /* elements per block, bytes per block; 0 = no such type */
} ggml_type_desc;

/* Indexed by type number. Gaps are numbers ggml retired; a file using them is refused. */
static const ggml_type_desc TYPES[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},         [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},      [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},   [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110},  [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},        [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};

int dl_ggml_type_info(uint32_t type, uint32_t *block, uint32_t *block_bytes) {
    if (type >= sizeof TYPES / sizeof TYPES[0] || TYPES[type].block == 0) return -1;
    if (block) *block = TYPES[type].block;
    if (block_bytes) *block_bytes = TYPES[type].bytes;
    return 0;
}

const char *dl_ggml_type_name(uint32_t type) {
    if (dl_ggml_type_info(type, NULL, NULL)) return "unknown";
    return TYPES[type].name;
}

/* Saturating, so that a NaN or infinite weight cannot make the cast undefined. */
static int8_t to_i8(float r) {
    if (r >= 127.0f) return 127;
    if (r <= -128.0f) return -128;
    return r == r ? (int8_t)r : 0;
}

/* x is (n), out is (n/32 blocks of 34 bytes). The scale is computed in f32 and stored as f16,
 * and q uses the f32 scale: the same bytes ggml's reference quantiser writes. */
void dl_q8_0_quantize(const float *x, uint8_t *out, size_t n) {
    for (size_t b = 0; b < n / DL_Q8_0_BLOCK; b++) {
        const float *xb = x + b * DL_Q8_0_BLOCK;
        uint8_t *ob = out + b * DL_Q8_0_BYTES;
        float amax = 0.0f;
        for (int i = 0; i < DL_Q8_0_BLOCK; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f;
        float inv = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = dl_f32_to_f16(d);
        memcpy(ob, &h, 2);
        for (int i = 0; i < DL_Q8_0_BLOCK; i++) ob[2 + i] = (uint8_t)to_i8(roundf(xb[i] * inv));
    }
}

void dl_q8_0_dequantize(const uint8_t *in, float *y, size_t n) {
    for (size_t b = 0; b < n / DL_Q8_0_BLOCK; b++) {
        const uint8_t *ib = in + b * DL_Q8_0_BYTES;
        uint16_t h;
        memcpy(&h, ib, 2);
        float d = dl_f16_to_f32(h);
        for (int i = 0; i < DL_Q8_0_BLOCK; i++) y[b * DL_Q8_0_BLOCK + i] = d * (float)(int8_t)ib[2 + i];
    }
}
