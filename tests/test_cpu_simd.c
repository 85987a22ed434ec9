/*
 * test_cpu_simd.c — the branch-free element functions of the CPU hot loops
 * (cpu/fa2_cpu_simd.h) against their references: widening and rounding
 * against lib/dtype.c bit for bit, exp2 against libm within a few ulp and
 * flushing to zero below 2^-126 as the GPU's ex2.approx.ftz does.
 */
#include "config.h"
#include "testlib.h"

#include "fa2_cpu_simd.h"

#include <float.h>
#include <math.h>
#include <string.h>

static uint32_t fbits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Same bits, or both NaN (payloads are free). */
static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || fbits(a) == fbits(b);
}

START_TEST(simd_widening_equals_the_reference_for_every_pattern)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float a = fa2_simd_fp16_to_float((uint16_t)h);
        const float b = fa2_fp16_to_float((uint16_t)h);
        TL_CHECK(same_float(a, b), "fp16 0x%04x: simd %a, reference %a", h, (double)a,
                 (double)b);
        const float c = fa2_simd_bf16_to_float((uint16_t)h);
        const float d = fa2_bf16_to_float((uint16_t)h);
        TL_CHECK(same_float(c, d), "bf16 0x%04x: simd %a, reference %a", h, (double)c,
                 (double)d);
    }
}
END_TEST

/* Every float whose top 16 bits are given (all exponents, both signs) with
 * the low bits at and around the fp16/bf16 rounding points, plus random
 * patterns: the simd rounding gives fa2_round_to_dtype's bits. */
START_TEST(simd_rounding_equals_the_reference)
{
    static const uint32_t lows[] = {0x0000u, 0x0001u, 0x0fffu, 0x1000u, 0x1001u,
                                    0x1fffu, 0x2000u, 0x7fffu, 0x8000u, 0x8001u,
                                    0xefffu, 0xf000u, 0xffffu};
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (size_t k = 0; k < sizeof lows / sizeof lows[0]; k++) {
            const float x = bitsf((hi << 16) | lows[k]);
            const float a = fa2_simd_round_fp16(x), b = fa2_round_to_dtype(x, FA2_DTYPE_FP16);
            TL_CHECK(same_float(a, b), "fp16 rounding of %a (0x%08x): simd %a, "
                     "reference %a", (double)x, fbits(x), (double)a, (double)b);
            const float c = fa2_simd_round_bf16(x), d = fa2_round_to_dtype(x, FA2_DTYPE_BF16);
            TL_CHECK(same_float(c, d), "bf16 rounding of %a (0x%08x): simd %a, "
                     "reference %a", (double)x, fbits(x), (double)c, (double)d);
            TL_CHECK(same_float(fa2_simd_round(x, FA2_DTYPE_FP32), x), "fp32 is not "
                     "the identity at %a", (double)x);
        }
    tl_rng r;
    TL_RNG(&r);
    float row[257];
    for (int n = 0; n < 2000; n++) {
        const fa2_dtype dt = n % 2 ? FA2_DTYPE_FP16 : FA2_DTYPE_BF16;
        float ref[257];
        for (int j = 0; j < 257; j++) {
            row[j] = bitsf((uint32_t)tl_u64(&r));
            ref[j] = fa2_round_to_dtype(row[j], dt);
        }
        fa2_simd_round_row(row, 257, dt);
        for (int j = 0; j < 257; j++)
            TL_CHECK(same_float(row[j], ref[j]), "%s row rounding, element %d: %a vs %a",
                     fa2_dtype_name(dt), j, (double)row[j], (double)ref[j]);
    }
}
END_TEST

/* exp2 over the range the softmax uses (arguments <= a few ulp above 0):
 * within 2 ulp of the correctly rounded value; exactly 1 at 0; 0 below
 * -126 and at -inf (flush to zero, no NaN). */
START_TEST(simd_exp2_is_within_two_ulp_of_libm_and_flushes_below_minus_126)
{
    double worst = 0.0;
    float worst_x = 0.0f;
    for (float x = -126.0f; x <= 0.25f; x += 0.000731f) {
        const double ref = exp2((double)x);
        const double ulp = ldexp(1.0, ilogb(ref) - 23);
        const double err = fabs((double)fa2_simd_exp2(x) - ref) / ulp;
        if (err > worst) {
            worst = err;
            worst_x = x;
        }
    }
    ck_assert_msg(worst <= 2.0, "fa2_simd_exp2 is %.2f ulp off at %a", worst,
                  (double)worst_x);
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < 200000; n++) { /* the arguments of P near the max */
        const float x = (float)(-tl_unif(&r) * ldexp(1.0, (int)tl_range(&r, -30, 6)));
        const double ref = exp2((double)x);
        const double ulp = ldexp(1.0, ilogb(ref) - 23);
        TL_CHECK(fabs((double)fa2_simd_exp2(x) - ref) <= 2.0 * ulp,
                 "fa2_simd_exp2(%a) = %a, exp2 %a", (double)x,
                 (double)fa2_simd_exp2(x), ref);
    }
    ck_assert(fa2_simd_exp2(0.0f) == 1.0f);
    ck_assert(fa2_simd_exp2(-1.0f) == 0.5f);
    ck_assert(fa2_simd_exp2(-126.0f) == 0x1p-126f);
    ck_assert(fa2_simd_exp2(-126.5f) == 0.0f);
    ck_assert(fa2_simd_exp2(-1000.0f) == 0.0f);
    ck_assert(fa2_simd_exp2(-INFINITY) == 0.0f);
    ck_assert(fa2_simd_exp2(-FLT_MAX) == 0.0f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cpu_simd");
    TCase *tc = tcase_create("simd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, simd_widening_equals_the_reference_for_every_pattern);
    tcase_add_test(tc, simd_rounding_equals_the_reference);
    tcase_add_test(tc, simd_exp2_is_within_two_ulp_of_libm_and_flushes_below_minus_126);
    suite_add_tcase(s, tc);
    return tl_run_suite(s);
}
