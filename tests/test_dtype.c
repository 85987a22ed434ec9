/*
 * test_dtype.c — the fp16 and bf16 conversions (lib/dtype.c): exact
 * widening, round-to-nearest-even narrowing, NaN/Inf/overflow/subnormal
 * behaviour, checked exhaustively over all 65536 patterns and against a
 * float64 reference rounding for many random floats.
 */
#include "config.h"
#include "testlib.h"

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

static int fp16_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu); }
static int bf16_is_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu); }

/* The value of an fp16 pattern from its definition, in double. */
static double fp16_value(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -v : v;
}

static double bf16_value(uint16_t h)
{
    const int s = h >> 15, e = (h >> 7) & 0xff, m = h & 0x7f;
    double v;
    if (e == 0)
        v = ldexp((double)m, -133); /* 2^-126 * m / 128 */
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 128.0, e - 127);
    return s ? -v : v;
}

/* Reference rounding of a finite double to a binary format with `mant`
 * fraction bits, minimum normal exponent emin and largest finite value
 * max, to nearest with ties to even (rint in the default mode), overflow to
 * Inf where the rounded magnitude exceeds max. */
static double ref_round(double x, int mant, int emin, double max)
{
    const double a = fabs(x);
    if (a == 0.0)
        return x;
    int e = ilogb(a);
    if (e < emin)
        e = emin;
    const double quantum = ldexp(1.0, e - mant);
    double r = rint(a / quantum) * quantum; /* a / quantum is exact */
    if (r > max)
        r = INFINITY;
    return copysign(r, x);
}

static double ref_fp16(double x) { return ref_round(x, 10, -14, 65504.0); }
static double ref_bf16(double x) { return ref_round(x, 7, -126, 0x1.fep127); }

/* ---- widening ------------------------------------------------------------ */

START_TEST(fp16_to_float_is_exact_for_every_pattern)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = fa2_fp16_to_float((uint16_t)h);
        const double ref = fp16_value((uint16_t)h);
        if (isnan(ref)) {
            TL_CHECK(isnan(f), "fp16 0x%04x is NaN but widened to %g", h,
                          (double)f);
        } else {
            TL_CHECK((double)f == ref && !signbit(f) == !signbit(ref),
                          "fp16 0x%04x widened to %a, expected %a", h, (double)f, ref);
        }
    }
}
END_TEST

START_TEST(bf16_to_float_is_exact_for_every_pattern)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = fa2_bf16_to_float((uint16_t)h);
        const double ref = bf16_value((uint16_t)h);
        if (isnan(ref)) {
            TL_CHECK(isnan(f), "bf16 0x%04x is NaN but widened to %g", h,
                          (double)f);
        } else {
            TL_CHECK((double)f == ref && !signbit(f) == !signbit(ref),
                          "bf16 0x%04x widened to %a, expected %a", h, (double)f, ref);
        }
    }
}
END_TEST

/* ---- round trips -------------------------------------------------------- */

START_TEST(fp16_round_trip_keeps_every_pattern_and_nan_stays_nan)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const uint16_t back = fa2_float_to_fp16(fa2_fp16_to_float((uint16_t)h));
        if (fp16_is_nan((uint16_t)h))
            TL_CHECK(fp16_is_nan(back), "fp16 NaN 0x%04x came back as 0x%04x",
                          h, back);
        else
            TL_CHECK(back == h, "fp16 0x%04x came back as 0x%04x", h, back);
    }
}
END_TEST

START_TEST(bf16_round_trip_keeps_every_pattern_and_nan_stays_nan)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const uint16_t back = fa2_float_to_bf16(fa2_bf16_to_float((uint16_t)h));
        if (bf16_is_nan((uint16_t)h))
            TL_CHECK(bf16_is_nan(back), "bf16 NaN 0x%04x came back as 0x%04x",
                          h, back);
        else
            TL_CHECK(back == h, "bf16 0x%04x came back as 0x%04x", h, back);
    }
}
END_TEST

/* ---- rounding ----------------------------------------------------------- */

START_TEST(fp16_ties_round_to_even)
{
    /* ulp(1) = 2^-10: 1 + 2^-11 is halfway between 1 (even) and 1 + 2^-10 */
    ck_assert_uint_eq(fa2_float_to_fp16(1.0f + 0x1p-11f), 0x3c00u);
    /* 1 + 3*2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even) */
    ck_assert_uint_eq(fa2_float_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02u);
    /* just off the tie goes to the nearer side */
    ck_assert_uint_eq(fa2_float_to_fp16(1.0f + 0x1p-11f + 0x1p-23f), 0x3c01u);
    ck_assert_uint_eq(fa2_float_to_fp16(1.0f + 3 * 0x1p-11f - 0x1p-23f), 0x3c01u);
    /* the same at another binade and negative */
    ck_assert_uint_eq(fa2_float_to_fp16(-(1024.0f + 0.5f)), 0xe400u);
    ck_assert_uint_eq(fa2_float_to_fp16(-(1024.0f + 1.5f)), 0xe402u);
    /* a carry out of the mantissa bumps the exponent: 2 - 2^-11 -> 2 */
    ck_assert_uint_eq(fa2_float_to_fp16(2.0f - 0x1p-11f), 0x4000u);
}
END_TEST

START_TEST(bf16_ties_round_to_even)
{
    /* ulp(1) = 2^-7 */
    ck_assert_uint_eq(fa2_float_to_bf16(1.0f + 0x1p-8f), 0x3f80u);
    ck_assert_uint_eq(fa2_float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82u);
    ck_assert_uint_eq(fa2_float_to_bf16(1.0f + 0x1p-8f + 0x1p-23f), 0x3f81u);
    ck_assert_uint_eq(fa2_float_to_bf16(1.0f + 3 * 0x1p-8f - 0x1p-23f), 0x3f81u);
    ck_assert_uint_eq(fa2_float_to_bf16(-(1.0f + 0x1p-8f)), 0xbf80u);
    ck_assert_uint_eq(fa2_float_to_bf16(2.0f - 0x1p-9f), 0x4000u);
}
END_TEST

START_TEST(fp16_overflows_to_inf_from_65520)
{
    ck_assert_uint_eq(fa2_float_to_fp16(65504.0f), 0x7bffu);          /* max   */
    ck_assert_uint_eq(fa2_float_to_fp16(65519.996f), 0x7bffu);        /* below */
    ck_assert_uint_eq(fa2_float_to_fp16(65520.0f), 0x7c00u);          /* tie -> even = Inf */
    ck_assert_uint_eq(fa2_float_to_fp16(-65520.0f), 0xfc00u);
    ck_assert_uint_eq(fa2_float_to_fp16(1e6f), 0x7c00u);
    ck_assert_uint_eq(fa2_float_to_fp16(FLT_MAX), 0x7c00u);
    ck_assert_uint_eq(fa2_float_to_fp16(INFINITY), 0x7c00u);
    ck_assert_uint_eq(fa2_float_to_fp16(-INFINITY), 0xfc00u);
}
END_TEST

START_TEST(bf16_overflows_to_inf_above_its_max)
{
    ck_assert_uint_eq(fa2_float_to_bf16(0x1.fep127f), 0x7f7fu);
    ck_assert_uint_eq(fa2_float_to_bf16(FLT_MAX), 0x7f80u);
    ck_assert_uint_eq(fa2_float_to_bf16(-FLT_MAX), 0xff80u);
    ck_assert_uint_eq(fa2_float_to_bf16(INFINITY), 0x7f80u);
    ck_assert_uint_eq(fa2_float_to_bf16(-INFINITY), 0xff80u);
}
END_TEST

START_TEST(fp16_subnormals_round_correctly)
{
    ck_assert_uint_eq(fa2_float_to_fp16(0x1p-24f), 0x0001u);   /* smallest      */
    ck_assert_uint_eq(fa2_float_to_fp16(0x1p-25f), 0x0000u);   /* tie -> 0      */
    ck_assert_uint_eq(fa2_float_to_fp16(-0x1p-25f), 0x8000u);  /* keeps sign    */
    ck_assert_uint_eq(fa2_float_to_fp16(0x1.000002p-25f), 0x0001u);
    ck_assert_uint_eq(fa2_float_to_fp16(3 * 0x1p-25f), 0x0002u); /* 1.5 -> 2 */
    ck_assert_uint_eq(fa2_float_to_fp16(5 * 0x1p-25f), 0x0002u); /* 2.5 -> 2 */
    ck_assert_uint_eq(fa2_float_to_fp16(1023 * 0x1p-24f), 0x03ffu);
    ck_assert_uint_eq(fa2_float_to_fp16(1023.5f * 0x1p-24f), 0x0400u); /* -> normal */
    ck_assert_uint_eq(fa2_float_to_fp16(0x1p-14f), 0x0400u);
    ck_assert_uint_eq(fa2_float_to_fp16(0x1p-30f), 0x0000u);
    ck_assert_uint_eq(fa2_float_to_fp16(0x1p-149f), 0x0000u); /* float subnormal */
    ck_assert_uint_eq(fa2_float_to_fp16(-0.0f), 0x8000u);
    ck_assert_uint_eq(fa2_float_to_fp16(0.0f), 0x0000u);
    ck_assert(fa2_fp16_to_float(0x0001u) == 0x1p-24f);
    ck_assert(fa2_fp16_to_float(0x03ffu) == 1023 * 0x1p-24f);
}
END_TEST

START_TEST(bf16_subnormals_round_correctly)
{
    ck_assert_uint_eq(fa2_float_to_bf16(0x1p-133f), 0x0001u);  /* smallest      */
    ck_assert_uint_eq(fa2_float_to_bf16(0x1p-134f), 0x0000u);  /* tie -> 0      */
    ck_assert_uint_eq(fa2_float_to_bf16(3 * 0x1p-134f), 0x0002u);
    ck_assert_uint_eq(fa2_float_to_bf16(-0x1p-126f), 0x8080u);
    ck_assert_uint_eq(fa2_float_to_bf16(0x1p-149f), 0x0000u);
    ck_assert_uint_eq(fa2_float_to_bf16(-0.0f), 0x8000u);
    ck_assert(fa2_bf16_to_float(0x0001u) == 0x1p-133f);
}
END_TEST

START_TEST(nan_inputs_give_nan_of_any_payload_and_sign)
{
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
                             0x7fbfffffu, 0x7fffffffu, 0x7f802000u, 0x7fc0deadu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        const float x = bitsf(nans[i]);
        ck_assert_msg(fp16_is_nan(fa2_float_to_fp16(x)), "float NaN 0x%08x -> fp16 "
                      "0x%04x", nans[i], fa2_float_to_fp16(x));
        ck_assert_msg(bf16_is_nan(fa2_float_to_bf16(x)), "float NaN 0x%08x -> bf16 "
                      "0x%04x", nans[i], fa2_float_to_bf16(x));
        ck_assert(isnan(fa2_round_to_dtype(x, FA2_DTYPE_FP16)));
        ck_assert(isnan(fa2_round_to_dtype(x, FA2_DTYPE_BF16)));
        ck_assert(isnan(fa2_round_to_dtype(x, FA2_DTYPE_FP32)));
    }
}
END_TEST

/* Random floats of every magnitude (uniform bit patterns), values near
 * the ties, and normal data, against the float64 reference rounding. */
START_TEST(narrowing_matches_float64_reference_rounding_on_random_floats)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < 400000; n++) {
        float x;
        switch (n % 4) {
        case 0: /* any bit pattern */
            x = bitsf((uint32_t)tl_u64(&r));
            break;
        case 1: /* the fp16 range, log-uniform */
            x = (float)ldexp(1.0 + tl_unif(&r), (int)tl_range(&r, -27, 16));
            break;
        case 2: { /* an fp16/bf16 tie, nudged by 0 or +-1 float ulp */
            const int bf = (int)tl_range(&r, 0, 1);
            const uint16_t h = (uint16_t)tl_range(&r, 0, 0x7bfe);
            const double lo = bf ? bf16_value(h) : fp16_value(h);
            const double hi = bf ? bf16_value((uint16_t)(h + 1)) : fp16_value((uint16_t)(h + 1));
            if (!isfinite(hi))
                continue;
            const float mid = (float)((lo + hi) / 2);
            const int nudge = (int)tl_range(&r, -1, 1);
            x = nudge == 0 ? mid : nextafterf(mid, nudge > 0 ? INFINITY : 0.0f);
            if (tl_range(&r, 0, 1))
                x = -x;
            break;
        }
        default:
            x = (float)(tl_normal(&r) * ldexp(1.0, (int)tl_range(&r, -10, 10)));
            break;
        }
        if (isnan(x))
            continue;
        const double f16 = fa2_fp16_to_float(fa2_float_to_fp16(x));
        const double r16 = ref_fp16((double)x);
        TL_CHECK(f16 == r16 && !signbit(f16) == !signbit(r16),
                      "fp16(%a) = %a, expected %a", (double)x, f16, r16);
        const double b16 = fa2_bf16_to_float(fa2_float_to_bf16(x));
        const double rb = ref_bf16((double)x);
        TL_CHECK(b16 == rb && !signbit(b16) == !signbit(rb),
                      "bf16(%a) = %a, expected %a", (double)x, b16, rb);
        TL_CHECK(fa2_round_to_dtype(x, FA2_DTYPE_FP16) == (float)r16, "fa2_round_to_dtype(%a, fp16) != %a", (double)x, r16);
        TL_CHECK(fa2_round_to_dtype(x, FA2_DTYPE_BF16) == (float)rb, "fa2_round_to_dtype(%a, bf16) != %a", (double)x, rb);
        TL_CHECK(fbits(fa2_round_to_dtype(x, FA2_DTYPE_FP32)) == fbits(x),
                 "fa2_round_to_dtype(%a, fp32) is not the identity", (double)x);
    }
}
END_TEST

START_TEST(dtype_names_and_sizes)
{
    ck_assert_str_eq(fa2_dtype_name(FA2_DTYPE_FP32), "fp32");
    ck_assert_str_eq(fa2_dtype_name(FA2_DTYPE_FP16), "fp16");
    ck_assert_str_eq(fa2_dtype_name(FA2_DTYPE_BF16), "bf16");
    ck_assert_str_eq(fa2_dtype_name((fa2_dtype)7), "?");
    ck_assert_str_eq(fa2_dtype_name((fa2_dtype)-1), "?");
    ck_assert_uint_eq(fa2_dtype_size(FA2_DTYPE_FP32), 4);
    ck_assert_uint_eq(fa2_dtype_size(FA2_DTYPE_FP16), 2);
    ck_assert_uint_eq(fa2_dtype_size(FA2_DTYPE_BF16), 2);
    ck_assert_uint_eq(fa2_dtype_size((fa2_dtype)7), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dtype");
    TCase *tc = tcase_create("conversions");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fp16_to_float_is_exact_for_every_pattern);
    tcase_add_test(tc, bf16_to_float_is_exact_for_every_pattern);
    tcase_add_test(tc, fp16_round_trip_keeps_every_pattern_and_nan_stays_nan);
    tcase_add_test(tc, bf16_round_trip_keeps_every_pattern_and_nan_stays_nan);
    tcase_add_test(tc, fp16_ties_round_to_even);
    tcase_add_test(tc, bf16_ties_round_to_even);
    tcase_add_test(tc, fp16_overflows_to_inf_from_65520);
    tcase_add_test(tc, bf16_overflows_to_inf_above_its_max);
    tcase_add_test(tc, fp16_subnormals_round_correctly);
    tcase_add_test(tc, bf16_subnormals_round_correctly);
    tcase_add_test(tc, nan_inputs_give_nan_of_any_payload_and_sign);
    tcase_add_test(tc, narrowing_matches_float64_reference_rounding_on_random_floats);
    tcase_add_test(tc, dtype_names_and_sizes);
    suite_add_tcase(s, tc);
    return tl_run_suite(s);
}
