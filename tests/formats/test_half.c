/* f16 / bf16 conversions against references computed a different way: decoding from the
 * IEEE formula with ldexp, and rounding by searching for the nearest representable value. */
#include "formats/safetensors.h"
#include "test.h"
#include <stdint.h>

static double f16_formula(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static uint32_t bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float from_bits(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Nearest positive-or-zero f16 to |x| (finite), ties to even, by binary search over the
 * monotonic bit patterns 0x0000..0x7bff; 0x7c00 (inf) stands in for 65536 as IEEE rounding
 * does when the exponent runs out. */
static uint16_t f16_nearest(double x) {
    double a = fabs(x);
    int lo = 0, hi = 0x7c00;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (f16_formula((uint16_t)mid) <= a) lo = mid;
        else hi = mid;
    }
    double vlo = f16_formula((uint16_t)lo), vhi = hi == 0x7c00 ? 65536.0 : f16_formula((uint16_t)hi);
    int pick = a - vlo < vhi - a ? lo : a - vlo > vhi - a ? hi : (lo % 2 == 0 ? lo : hi);
    return (uint16_t)(pick | (x < 0 || (x == 0 && signbit(x)) ? 0x8000 : 0));
}

static void test_f16_decode_all(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dl_f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) {
            if (m ? !isnan(f) : !(isinf(f) && (signbit(f) != 0) == (h >> 15))) bad++;
        } else if ((double)f != f16_formula((uint16_t)h) || (signbit(f) != 0) != (int)(h >> 15)) {
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d f16 patterns decoded wrongly", bad);
}

static void test_f16_roundtrip_all(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dl_f16_to_f32((uint16_t)h);
        uint16_t back = dl_f32_to_f16(f);
        if (isnan(f)) bad += !(((back >> 10) & 31) == 31 && (back & 1023));
        else bad += back != h;
    }
    CHECK_MSG(bad == 0, "%d f16 patterns did not round-trip", bad);
}

static void test_f16_rounding(void) {
    CHECK(dl_f32_to_f16(1.0f) == 0x3c00);
    CHECK(dl_f32_to_f16(-2.0f) == 0xc000);
    CHECK(dl_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(dl_f32_to_f16(65519.99f) == 0x7bff);
    CHECK(dl_f32_to_f16(65520.0f) == 0x7c00); /* the tie past the largest finite goes to inf */
    CHECK(dl_f32_to_f16(1e10f) == 0x7c00);
    CHECK(dl_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(dl_f32_to_f16(-0.0f) == 0x8000);
    CHECK(dl_f32_to_f16(ldexpf(1, -24)) == 0x0001);           /* smallest subnormal */
    CHECK(dl_f32_to_f16(ldexpf(1, -25)) == 0x0000);           /* tie to even: zero */
    CHECK(dl_f32_to_f16(ldexpf(1.0001f, -25)) == 0x0001);     /* just above the tie */
    CHECK(dl_f32_to_f16(ldexpf(3, -25)) == 0x0002);           /* 1.5 ulp: tie to even 2 */
    CHECK(dl_f32_to_f16(ldexpf(1023, -24)) == 0x03ff);        /* largest subnormal */
    CHECK(dl_f32_to_f16(ldexpf(2047, -25)) == 0x0400);        /* rounds up into the normals */
    CHECK(dl_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00);    /* tie, even stays */
    CHECK(dl_f32_to_f16(1.0f + ldexpf(3, -11)) == 0x3c02);    /* tie, odd goes up */
    CHECK(dl_f32_to_f16(ldexpf(1, -140)) == 0x0000);          /* f32 subnormal */
    uint16_t n = dl_f32_to_f16(NAN);
    CHECK(((n >> 10) & 31) == 31 && (n & 1023) != 0);
    n = dl_f32_to_f16(from_bits(0x7f800001)); /* a nan whose payload lives in the low bits */
    CHECK(((n >> 10) & 31) == 31 && (n & 1023) != 0);

    dl_rng r;
    dl_rng_seed(&r, 7);
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        /* floats spread over the whole f16 range and a little beyond, random signs */
        float f = ldexpf(1.0f + dl_rng_float(&r), (int)dl_rng_below(&r, 48) - 32);
        if (i % 3 == 0) f = from_bits(bits(f) & 0xffffe000u) + ldexpf(1.0f, ((int)((bits(f) >> 23) & 255) - 127) - 11);
        if (dl_rng_u64(&r) & 1) f = -f;
        if (dl_f32_to_f16(f) != f16_nearest(f)) {
            if (bad++ < 5) fprintf(stderr, "f16 of %.9g: got %04x want %04x\n", f, dl_f32_to_f16(f), f16_nearest(f));
        }
    }
    CHECK_MSG(bad == 0, "%d of 200000 random floats rounded wrongly to f16", bad);
}

/* bf16 reference: the two neighbours by truncation, choose by distance in double. */
static uint16_t bf16_nearest(float f) {
    uint32_t lo = bits(f) & 0xffff0000u, hi = lo + 0x10000u;
    double dlo = fabs((double)f - from_bits(lo)), dhi = fabs((double)from_bits(hi) - f);
    if (isinf(from_bits(hi))) dhi = fabs(ldexp(1.0, 128) * (f < 0 ? -1 : 1) - (double)f);
    if (dlo < dhi) return (uint16_t)(lo >> 16);
    if (dhi < dlo) return (uint16_t)(hi >> 16);
    return (uint16_t)(((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

static void test_bf16(void) {
    CHECK(dl_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(dl_f32_to_bf16(3.14159265f) == 0x4049);
    CHECK(dl_f32_to_bf16(from_bits(0x3f808000u)) == 0x3f80); /* tie, even stays */
    CHECK(dl_f32_to_bf16(from_bits(0x3f818000u)) == 0x3f82); /* tie, odd goes up */
    CHECK(dl_f32_to_bf16(from_bits(0x7f7fffffu)) == 0x7f80); /* largest float rounds to inf */
    CHECK(dl_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(dl_f32_to_bf16(from_bits(0x00008001u)) == 0x0001); /* subnormals round too */
    uint16_t n = dl_f32_to_bf16(from_bits(0x7f800001u));
    CHECK(((n >> 7) & 255) == 255 && (n & 127) != 0);
    CHECK(dl_bf16_to_f32(0xc040) == -3.0f);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dl_bf16_to_f32((uint16_t)h);
        if (bits(f) != h << 16) bad++;
        if (!isnan(f) && dl_f32_to_bf16(f) != h) bad++;
    }
    CHECK_MSG(bad == 0, "%d bf16 patterns did not round-trip", bad);
    dl_rng r;
    dl_rng_seed(&r, 11);
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t x = (uint32_t)dl_rng_u64(&r);
        if (i % 4 == 0) x = (x & 0xffff0000u) | 0x8000u; /* exact ties */
        float f = from_bits(x);
        if (isnan(f)) continue;
        if (dl_f32_to_bf16(f) != bf16_nearest(f)) bad++;
    }
    CHECK_MSG(bad == 0, "%d random floats rounded wrongly to bf16", bad);
}

int main(void) {
    test_f16_decode_all();
    test_f16_roundtrip_all();
    test_f16_rounding();
    test_bf16();
    TEST_MAIN_END();
}
