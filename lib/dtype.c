/* dtype.c — fp16 and bf16 conversions: portable C, round to nearest even,
 * NaN and Inf preserved, subnormals kept. No compiler intrinsics, so the
 * CPU backends give the same bits on every host. */
#include "config.h"
#include "fa2_internal.h"

#include <string.h>

static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Keep the bits of m above `shift`, rounding the dropped ones to nearest,
 * ties to even. */
static uint32_t shift_round_even(uint32_t m, unsigned shift)
{
    const uint32_t kept = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    return kept + (rem > half || (rem == half && (kept & 1u)));
}

uint16_t fa2_float_to_fp16(float x)
{
    const uint32_t f = float_bits(x);
    const uint16_t sign = (uint16_t)((f >> 16) & 0x8000u);
    const uint32_t a = f & 0x7fffffffu;

    if (a > 0x7f800000u) /* NaN: quiet it, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* >= 65520 rounds to Inf (65504 is the max) */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: a half subnormal, or zero */
        const uint32_t e = a >> 23;
        if (e < 102) /* below 2^-25: rounds to zero */
            return sign;
        /* value = m * 2^(e-150); in units of 2^-24 that is m >> (126-e) */
        const uint32_t m = (a & 0x7fffffu) | 0x800000u;
        return (uint16_t)(sign | shift_round_even(m, 126u - e));
    }
    /* normal: rebias the exponent (127 -> 15), round 23 -> 10 mantissa
     * bits; a carry out of the mantissa correctly bumps the exponent */
    return (uint16_t)(sign | shift_round_even(a - ((127u - 15u) << 23), 13));
}

float fa2_fp16_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t m = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in float */
        const float v = (float)m * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    if (e == 31) /* Inf or NaN */
        return bits_float(sign | 0x7f800000u | (m << 13));
    return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t fa2_float_to_bf16(float x)
{
    const uint32_t f = float_bits(x);
    if ((f & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet it */
        return (uint16_t)((f >> 16) | 0x0040u);
    /* round to nearest even on the low 16 bits; Inf stays Inf and a large
     * finite value correctly overflows to Inf */
    return (uint16_t)((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

float fa2_bf16_to_float(uint16_t h) { return bits_float((uint32_t)h << 16); }

float fa2_round_to_dtype(float x, fa2_dtype t)
{
    switch (t) {
    case FA2_DTYPE_FP16: return fa2_fp16_to_float(fa2_float_to_fp16(x));
    case FA2_DTYPE_BF16: return fa2_bf16_to_float(fa2_float_to_bf16(x));
    case FA2_DTYPE_FP32: break;
    }
    return x;
}

void fa2_round_buffer(float *buf, int64_t n, fa2_dtype t)
{
    if (t == FA2_DTYPE_FP32)
        return;
    for (int64_t i = 0; i < n; i++)
        buf[i] = fa2_round_to_dtype(buf[i], t);
}
