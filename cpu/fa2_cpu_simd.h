/*
 * fa2_cpu_simd.h — branch-free element functions for the CPU hot loops, so
 * that the compiler can vectorise them:
 *
 *   - widening fp16/bf16 -> float (exact, same result as lib/dtype.c);
 *   - rounding a float to fp16/bf16 precision (round to nearest even, NaN
 *     kept, overflow to Inf: the same result as fa2_round_to_dtype);
 *   - exp2 for the softmax (a few ulp of exp2f, results below 2^-126 flushed
 *     to zero as the GPU's ex2.approx.ftz does).
 *
 * tests/test_cpu_simd.c checks each against the reference in lib/dtype.c and
 * libm. They are CPU-only: the kernels use the hardware's conversions.
 */
#ifndef FA2_CPU_SIMD_H
#define FA2_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#include "fa2.h"

/* Hot loops are compiled for the baseline and for AVX2+FMA and AVX-512
 * hosts; the loader picks the best at run time (GNU ifunc). The FMA in the
 * softmax (fa2_softmax_p's fused multiply-add) needs a target with FMA to
 * vectorise at all: a plain "avx2" clone lacks it and calls libm's fmaf
 * once per element (measured: the softmax then cost more than the tile
 * products), so the clones are the x86-64 levels v3 (AVX2 + FMA + F16C)
 * and v4 (AVX-512), which GCC >= 12 dispatches by feature. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__) && \
    !defined(FA2_NO_TARGET_CLONES) && (defined(__clang__) || __GNUC__ >= 12)
#define FA2_CPU_CLONES __attribute__((target_clones( \
    "default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define FA2_CPU_CLONES
#endif

static inline uint32_t fa2_simd_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float fa2_simd_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* fp16 -> float: shift the magnitude into place and let one multiply by
 * 2^112 rebias the exponent (it also normalises subnormals exactly); then
 * restore Inf/NaN and the sign. */
static inline float fa2_simd_fp16_to_float(uint16_t h)
{
    const uint32_t mag = (uint32_t)(h & 0x7fffu) << 13;
    const uint32_t u = fa2_simd_bits(fa2_simd_float(mag) * 0x1p112f);
    /* all ones for Inf/NaN: a mask, not a branch, so the loop vectorises */
    const uint32_t special = 0u - (uint32_t)((h & 0x7c00u) == 0x7c00u);
    const uint32_t r = (u & ~special) | ((mag | 0x7f800000u) & special);
    return fa2_simd_float(r | ((uint32_t)(h & 0x8000u) << 16));
}

static inline float fa2_simd_bf16_to_float(uint16_t h)
{
    return fa2_simd_float((uint32_t)h << 16);
}

/* x rounded to fp16 precision, as a float. Normal range: round the low 13
 * mantissa bits away (ties to even). Below 2^-14 fp16 is subnormal with a
 * fixed quantum of 2^-24: adding and removing 0.75 (whose float ulp is
 * 2^-24) rounds to that quantum, ties to even. */
static inline float fa2_simd_round_fp16(float x)
{
    const uint32_t u = fa2_simd_bits(x);
    const uint32_t a = u & 0x7fffffffu;
    const uint32_t rn = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u;
    float r = fa2_simd_float(rn);
    const float sub = fa2_simd_float(fa2_simd_bits((x + 0.75f) - 0.75f) |
                                     (u & 0x80000000u));
    r = a < 0x38800000u ? sub : r;
    r = a >= 0x477ff000u ? fa2_simd_float((u & 0x80000000u) | 0x7f800000u) : r;
    return a > 0x7f800000u ? x : r;
}

static inline float fa2_simd_round_bf16(float x)
{
    const uint32_t u = fa2_simd_bits(x);
    const float r = fa2_simd_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
    return (u & 0x7fffffffu) > 0x7f800000u ? x : r;
}

/* 2^x. x = n + f with n = round(x), |f| <= 1/2; 2^f by a degree-7
 * polynomial (Taylor coefficients of e^(f ln 2), truncation error < 1e-8
 * relative on that interval), times 2^n built in the exponent bits. Inputs below -126
 * (including -inf) give 0, like the GPU's flush-to-zero ex2. */
static inline float fa2_simd_exp2(float x)
{
    const float shifter = 0x1.8p23f;
    const float xc = x < -126.0f ? -126.0f : (x > 127.0f ? 127.0f : x);
    const float t = xc + shifter;
    const float n = t - shifter;
    const float f = xc - n;
    const int32_t ni = (int32_t)(fa2_simd_bits(t) - fa2_simd_bits(shifter));
    float p = 1.5252733804059841e-5f;
    p = p * f + 1.5403530393381606e-4f;
    p = p * f + 1.3333558146428443e-3f;
    p = p * f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    const float scale = fa2_simd_float((uint32_t)(ni + 127) << 23);
    const float r = p * scale;
    return x < -126.0f ? 0.0f : r;
}

/* x rounded to dtype precision (identity for fp32). */
static inline float fa2_simd_round(float x, fa2_dtype t)
{
    return t == FA2_DTYPE_FP16 ? fa2_simd_round_fp16(x)
           : t == FA2_DTYPE_BF16 ? fa2_simd_round_bf16(x) : x;
}

/* Round x[0..n) to dtype precision in place: one loop per dtype, so the
 * choice is made once per row, not per element. */
static inline void fa2_simd_round_row(float *x, int64_t n, fa2_dtype t)
{
    if (t == FA2_DTYPE_FP16) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            x[j] = fa2_simd_round_fp16(x[j]);
    } else if (t == FA2_DTYPE_BF16) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            x[j] = fa2_simd_round_bf16(x[j]);
    }
}

#endif /* FA2_CPU_SIMD_H */
