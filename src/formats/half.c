/* float16 / bfloat16 <-> float32, round to nearest even, with inf, nan and subnormals. */
#include "formats/safetensors.h"
#include <string.h>

static uint32_t f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

float dl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf, nan keeps its payload */
    if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0) return bits_f32(sign);
    /* subnormal (man * 2^-24): shift the leading one up to the implicit-bit position */
    uint32_t e = 113;
    while (!(man & 0x400u)) {
        man <<= 1;
        e--;
    }
    return bits_f32(sign | (e << 23) | ((man & 0x3ffu) << 13));
}

/* Rounds m >> shift to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t m, int shift) {
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return q;
}

uint16_t dl_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) /* inf stays inf; nan stays a (quiet) nan */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int e = (int)exp - 127 + 15; /* biased f16 exponent */
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        /* f16 subnormal: value = M * 2^(e-38) with M the 24-bit significand, so the f16
         * mantissa is M >> (14-e); below 2^-25 everything rounds to zero */
        if (e < -10) return (uint16_t)sign;
        return (uint16_t)(sign | shift_round_even(man | 0x800000u, 14 - e));
    }
    /* a carry out of the mantissa bumps the exponent, and out of the top gives inf: both right */
    return (uint16_t)(sign | shift_round_even(((uint32_t)e << 23) | man, 13));
}

float dl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t dl_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    return (uint16_t)shift_round_even(x, 16);
}
