/*
 * test_fwd_cases.c — forward cases small enough to check by hand, and the
 * invariances every backend owes: a single key, identical keys, a dominant
 * key, rows that see nothing; the same bits for any thread count, any
 * memory layout, with or without LSE, with the default scale or the same
 * scale passed explicitly; GQA as repeated heads; variable lengths as
 * separate calls; and the three CPU backends agreeing with each other.
 */
#include "config.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fa2_backend cpu_backends[] = {FA2_BACKEND_CPU_ORACLE,
                                           FA2_BACKEND_CPU_STANDARD,
                                           FA2_BACKEND_CPU_TILED};
static const fa2_dtype dtypes[] = {FA2_DTYPE_FP32, FA2_DTYPE_FP16, FA2_DTYPE_BF16};
#define N_BACKENDS 3
#define N_DTYPES 3

/* ulp of the dtype at |x| (x finite, nonzero or not). */
static double ulp_at(double x, fa2_dtype dt)
{
    const int mant = dt == FA2_DTYPE_FP16 ? 10 : dt == FA2_DTYPE_BF16 ? 7 : 23;
    const int emin = dt == FA2_DTYPE_FP16 ? -14 : -126;
    int e = x == 0.0 ? emin : ilogb(fabs(x));
    if (e < emin)
        e = emin;
    return ldexp(1.0, e - mant);
}

/* Copy the logical values of q, k, v from src to dst (any layouts). */
static void copy_inputs(tl_problem *dst, const tl_problem *src)
{
    const tl_tensor *from[3] = {&src->q, &src->k, &src->v};
    tl_tensor *to[3] = {&dst->q, &dst->k, &dst->v};
    int64_t idx[4];
    for (int t = 0; t < 3; t++) {
        ck_assert_int_eq(tl_numel(from[t]), tl_numel(to[t]));
        for (int64_t f = 0; f < tl_numel(from[t]); f++) {
            tl_unflatten(from[t], f, idx);
            tl_set(to[t], idx, tl_get(from[t], idx));
        }
    }
    free(dst->o64);
    free(dst->lse64);
    dst->o64 = dst->lse64 = NULL;
}

/* Assert that two tensors hold the same bits element by element. */
static void expect_same_bits(const tl_tensor *a, const tl_tensor *b,
                             const char *what, const char *desc)
{
    const int64_t n = tl_numel(a);
    ck_assert_int_eq(n, tl_numel(b));
    uint32_t *x = tl_view_bits(a), *y = tl_view_bits(b);
    int64_t first = -1, count = 0;
    for (int64_t i = 0; i < n; i++)
        if (x[i] != y[i]) {
            if (first < 0)
                first = i;
            count++;
        }
    const uint32_t xf = first >= 0 ? x[first] : 0, yf = first >= 0 ? y[first] : 0;
    free(x);
    free(y);
    ck_assert_msg(count == 0, "%s: %lld of %lld elements differ (first at flat "
                  "index %lld: 0x%x vs 0x%x) on %s", what, (long long)count,
                  (long long)n, (long long)first, xf, yf, desc);
}

/* Snapshot of the outputs (bits in logical order). */
typedef struct outputs {
    uint32_t *o, *lse;
    int64_t no, nl;
} outputs;

static void take(outputs *s, const tl_problem *p)
{
    s->o = tl_view_bits(&p->o);
    s->no = tl_numel(&p->o);
    s->lse = p->lse.base ? tl_view_bits(&p->lse) : NULL;
    s->nl = p->lse.base ? tl_numel(&p->lse) : 0;
}

static void release(outputs *s)
{
    free(s->o);
    free(s->lse);
}

static void expect_same_outputs(const outputs *a, const tl_problem *p,
                                const char *what)
{
    outputs b;
    take(&b, p);
    int64_t diff_o = 0, diff_l = 0;
    for (int64_t i = 0; i < a->no; i++)
        diff_o += a->o[i] != b.o[i];
    for (int64_t i = 0; a->lse && b.lse && i < a->nl; i++)
        diff_l += a->lse[i] != b.lse[i];
    release(&b);
    ck_assert_msg(diff_o == 0 && diff_l == 0, "%s: %lld elements of o and %lld "
                  "of lse differ on %s", what, (long long)diff_o, (long long)diff_l,
                  p->desc);
}

/* ---- hand-checkable cases ------------------------------------------------ */

/* One key: softmax is 1 on it, so O = v (bit for bit; fp32 tiled within a
 * few ulp: its P = exp2 of the FMA's rounding residual of m c, 1 only to
 * float precision, and O = (P v) / P) and LSE = scale q.k. */
START_TEST(single_key_gives_o_equal_to_v_and_lse_equal_to_the_score)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_dtype dt = dtypes[_i];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dt;
    s.batch = 2;
    s.seqlen_q = 5;
    s.seqlen_k = 1;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 64;
    s.q_sigma = 2.0;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    const double scale = 1.0 / 8.0;
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        const fa2_backend be = cpu_backends[bi];
        tl_problem_run_ok(&p, be);
        for (int64_t b = 0; b < 2; b++)
            for (int64_t i = 0; i < 5; i++)
                for (int64_t h = 0; h < 4; h++) {
                    double dot = 0.0, adot = 0.0;
                    for (int64_t c = 0; c < 64; c++) {
                        const int64_t qi[4] = {b, i, h, c}, ki[4] = {b, 0, h / 2, c};
                        const double o = tl_get(&p.o, qi), v = tl_get(&p.v, ki);
                        const int exact = !(be == FA2_BACKEND_CPU_TILED &&
                                            dt == FA2_DTYPE_FP32);
                        ck_assert_msg(exact ? o == v : fabs(o - v) <= 4 * ulp_at(v, dt),
                                      "%s: o[%lld,%lld,%lld,%lld] = %a but v = %a on %s",
                                      fa2_backend_name(be), (long long)b, (long long)i,
                                      (long long)h, (long long)c, o, v, p.desc);
                        dot += tl_get(&p.q, qi) * tl_get(&p.k, ki);
                        adot += fabs(tl_get(&p.q, qi) * tl_get(&p.k, ki));
                    }
                    const int64_t li[3] = {b, h, i};
                    const double lse = tl_get(&p.lse, li), ref = scale * dot;
                    /* the score's rounding: float32 accumulation (all but the
                     * oracle), and standard attention stores S in the dtype */
                    double tol = scale * 64 * 0x1p-24 * adot + 4 * ulp_at(ref, FA2_DTYPE_FP32);
                    if (be == FA2_BACKEND_CPU_STANDARD)
                        tol += scale * tl_unit_roundoff(dt) * fabs(dot);
                    ck_assert_msg(fabs(lse - ref) <= tol, "%s: lse[%lld,%lld,%lld] = "
                                  "%.9g, scale q.k = %.9g on %s", fa2_backend_name(be),
                                  (long long)b, (long long)h, (long long)i, lse, ref,
                                  p.desc);
                }
    }
    tl_problem_free(&p);
}
END_TEST

/* All keys equal: every score is the same, the weights uniform, and O the
 * mean of the values. */
START_TEST(identical_keys_give_uniform_weights_and_o_is_the_mean_of_v)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_dtype dt = dtypes[_i];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dt;
    s.seqlen_q = 9;
    s.seqlen_k = 77; /* two key blocks of the default tiling */
    s.heads_q = s.heads_kv = 2;
    s.head_dim = 32;
    s.q_sigma = 3.0;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    for (int64_t j = 1; j < 77; j++) /* every key := key 0 */
        for (int64_t h = 0; h < 2; h++)
            for (int64_t c = 0; c < 32; c++) {
                const int64_t k0[4] = {0, 0, h, c}, kj[4] = {0, j, h, c};
                tl_set(&p.k, kj, tl_get(&p.k, k0));
            }
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        const fa2_backend be = cpu_backends[bi];
        tl_problem_run_ok(&p, be);
        for (int64_t h = 0; h < 2; h++)
            for (int64_t c = 0; c < 32; c++) {
                double mean = 0.0, vmax = 0.0;
                for (int64_t j = 0; j < 77; j++) {
                    const int64_t vi[4] = {0, j, h, c};
                    mean += tl_get(&p.v, vi) / 77.0;
                    vmax = fmax(vmax, fabs(tl_get(&p.v, vi)));
                }
                /* output rounding, and standard's P = 1/77 in the dtype */
                const double tol = ulp_at(mean, dt) + 2 * tl_unit_roundoff(dt) * vmax +
                                   77 * 0x1p-24 * vmax;
                for (int64_t i = 0; i < 9; i++) {
                    const int64_t oi[4] = {0, i, h, c};
                    const double o = tl_get(&p.o, oi);
                    ck_assert_msg(fabs(o - mean) <= tol, "%s: o[0,%lld,%lld,%lld] = "
                                  "%.9g, mean of v %.9g (tol %.3g) on %s",
                                  fa2_backend_name(be), (long long)i, (long long)h,
                                  (long long)c, o, mean, tol, p.desc);
                }
            }
    }
    tl_problem_free(&p);
}
END_TEST

/* One key whose score beats every other by more than 40 (weights e^-40):
 * O is that key's value, to the output's rounding. */
START_TEST(a_dominant_key_gives_o_equal_to_its_value)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_dtype dt = dtypes[_i];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dt;
    s.batch = 2;
    s.seqlen_q = 1;
    s.seqlen_k = 90;
    s.heads_q = s.heads_kv = 3;
    s.head_dim = 32;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    const int64_t star = tl_range(&r, 0, 89);
    const double scale = 1.0 / sqrt(32.0);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 3; h++) {
            double qq = 0.0;
            for (int64_t c = 0; c < 32; c++) {
                const int64_t qi[4] = {b, 0, h, c};
                qq += tl_get(&p.q, qi) * tl_get(&p.q, qi);
            }
            for (int64_t j = 0; j < 90; j++)
                for (int64_t c = 0; c < 32; c++) {
                    const int64_t qi[4] = {b, 0, h, c}, kj[4] = {b, j, h, c};
                    /* the others: |score| < 0.1 * |q| |k| scale, small */
                    if (j == star)
                        tl_set(&p.k, kj, tl_get(&p.q, qi) * 60.0 / (scale * qq));
                    else
                        tl_set(&p.k, kj, 0.01 * tl_get(&p.k, kj));
                }
        }
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        const fa2_backend be = cpu_backends[bi];
        tl_problem_run_ok(&p, be);
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < 3; h++)
                for (int64_t c = 0; c < 32; c++) {
                    const int64_t oi[4] = {b, 0, h, c}, vi[4] = {b, star, h, c};
                    const double o = tl_get(&p.o, oi), v = tl_get(&p.v, vi);
                    ck_assert_msg(fabs(o - v) <= 4 * ulp_at(v, dt), "%s: o[%lld,0,%lld,%lld]"
                                  " = %a, the dominant key's value %a on %s",
                                  fa2_backend_name(be), (long long)b, (long long)h,
                                  (long long)c, o, v, p.desc);
                }
    }
    tl_problem_free(&p);
}
END_TEST

/* Rows that see no key: O = 0 exactly and LSE = +inf; the others finite.
 * Which rows, by hand:
 *  0: causal, Nq = 20 > Nk = 6: rows 0..13 (diagonal i - 14 < 0);
 *  1: window (3, 2), Nq = 20, Nk = 5: rows 0..12 (i - 15 + 2 < 0);
 *  2: causal with window (0, 0) and Nq = 9 > Nk = 4: rows 0..4;
 *  3: variable lengths, a sequence with no keys: all its rows. */
START_TEST(rows_that_see_no_key_give_o_zero_and_lse_inf)
{
    tl_rng r;
    TL_RNG(&r);
    const int variant = _i % 4;
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[_i / 4];
    s.heads_q = 2;
    s.heads_kv = 1;
    s.head_dim = 16;
    s.out_layout = TL_PADDED;
    int64_t blind_lo = 0, blind_hi = 0; /* blind rows [lo, hi) along dim 1 */
    switch (variant) {
    case 0: s.seqlen_q = 20; s.seqlen_k = 6; s.causal = 1; blind_hi = 14; break;
    case 1: s.seqlen_q = 20; s.seqlen_k = 5; s.window_left = 3; s.window_right = 2;
        blind_hi = 13; break;
    case 2: s.seqlen_q = 9; s.seqlen_k = 4; s.causal = 1; s.window_left = 0;
        blind_hi = 5; break;
    default:
        s.num_seqs = 3;
        s.lens_q[0] = 4; s.lens_k[0] = 7;
        s.lens_q[1] = 6; s.lens_k[1] = 0; /* blind: rows 4..9 */
        s.lens_q[2] = 3; s.lens_k[2] = 5;
        blind_lo = 4;
        blind_hi = 10;
        break;
    }
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        const fa2_backend be = cpu_backends[bi];
        tl_problem_run_ok(&p, be);
        for (int64_t i = 0; i < p.total_q; i++)
            for (int64_t h = 0; h < 2; h++) {
                const int blind = i >= blind_lo && i < blind_hi;
                const int64_t li[3] = {0, h, i};
                const double lse = tl_get(&p.lse, li);
                ck_assert_msg(blind ? lse == INFINITY : isfinite(lse), "%s: row %lld "
                              "head %lld: lse = %g, expected %s on %s",
                              fa2_backend_name(be), (long long)i, (long long)h, lse,
                              blind ? "+inf" : "finite", p.desc);
                for (int64_t c = 0; c < 16 && blind; c++) {
                    const int64_t oi[4] = {0, i, h, c};
                    ck_assert_msg(tl_get(&p.o, oi) == 0.0, "%s: o[0,%lld,%lld,%lld] = "
                                  "%g on a row that sees no key, on %s",
                                  fa2_backend_name(be), (long long)i, (long long)h,
                                  (long long)c, tl_get(&p.o, oi), p.desc);
                }
            }
        tl_err e;
        tl_measure(&p, &e);
        tl_check_written(&p, &e, fa2_backend_name(be));
    }
    tl_problem_free(&p);
}
END_TEST

/* ---- invariances ----------------------------------------------------------- */

/* Work is split into independent items, each writing only its own outputs:
 * the thread count cannot change a bit. */
START_TEST(outputs_are_the_same_bits_for_any_thread_count)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[_i % N_DTYPES];
    s.batch = 2;
    s.seqlen_q = 150;
    s.seqlen_k = 130;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 40;
    s.causal = 1;
    s.q_sigma = 2.0;
    const fa2_backend be = cpu_backends[_i / N_DTYPES];
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    p.args.num_threads = 1;
    tl_problem_run_ok(&p, be);
    outputs one;
    take(&one, &p);
    const int threads[] = {2, 3, 7};
    for (int t = 0; t < 3; t++) {
        char what[64];
        p.args.num_threads = threads[t];
        tl_problem_run_ok(&p, be);
        snprintf(what, sizeof what, "%s with %d threads vs 1", fa2_backend_name(be),
                 threads[t]);
        expect_same_outputs(&one, &p, what);
    }
    release(&one);
    tl_problem_free(&p);
}
END_TEST

/* Strides are only addressing: every input layout and output layout gives
 * the bits of the contiguous call. */
START_TEST(strided_inputs_and_outputs_give_the_bits_of_contiguous_ones)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[(_i / N_BACKENDS) % N_DTYPES];
    s.batch = 2;
    s.seqlen_q = 70;
    s.seqlen_k = 45;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 24;
    s.window_left = 20;
    s.window_right = 5;
    tl_problem ref;
    tl_problem_init(&ref, &s, &r);
    tl_problem_run_ok(&ref, be);
    for (int in = 0; in < TL_LAYOUT_COUNT; in++)
        for (int out = 0; out < TL_LAYOUT_COUNT; out++) {
            if (in == TL_CONTIGUOUS && out == TL_CONTIGUOUS)
                continue;
            tl_spec t = s;
            t.layout = (tl_layout)in;
            t.out_layout = (tl_layout)out;
            tl_problem p;
            tl_problem_init(&p, &t, &r);
            copy_inputs(&p, &ref);
            tl_problem_run_ok(&p, be);
            char what[96];
            snprintf(what, sizeof what, "%s o (%s in, %s out)", fa2_backend_name(be),
                     tl_layout_name(t.layout), tl_layout_name(t.out_layout));
            expect_same_bits(&ref.o, &p.o, what, p.desc);
            expect_same_bits(&ref.lse, &p.lse, "lse", p.desc);
            ck_assert_msg(tl_outside_touched(&p.o) == 0 && tl_outside_touched(&p.lse) == 0,
                          "%s wrote between the elements of a strided output on %s",
                          fa2_backend_name(be), p.desc);
            tl_problem_free(&p);
        }
    tl_problem_free(&ref);
}
END_TEST

START_TEST(default_softmax_scale_equals_passing_one_over_sqrt_d)
{
    tl_rng r;
    TL_RNG(&r);
    static const int dims[] = {8, 40, 96, 136, 256};
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[(_i / N_BACKENDS) % N_DTYPES];
    s.head_dim = dims[(_i / (N_BACKENDS * N_DTYPES)) % 5];
    s.seqlen_q = 33;
    s.seqlen_k = 70;
    s.causal = 1;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    tl_problem_run_ok(&p, be);
    outputs def;
    take(&def, &p);
    p.args.softmax_scale = (float)(1.0 / sqrt((double)s.head_dim));
    tl_problem_run_ok(&p, be);
    expect_same_outputs(&def, &p, "explicit 1/sqrt(d) vs default");
    /* and a different scale does change the result */
    p.args.softmax_scale *= 1.5f;
    tl_problem_run_ok(&p, be);
    outputs other;
    take(&other, &p);
    int64_t diff = 0;
    for (int64_t i = 0; i < def.no; i++)
        diff += def.o[i] != other.o[i];
    ck_assert_msg(diff > 0, "softmax_scale * 1.5 changed nothing on %s", p.desc);
    release(&def);
    release(&other);
    tl_problem_free(&p);
}
END_TEST

START_TEST(lse_null_is_allowed_and_leaves_o_unchanged)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[(_i / N_BACKENDS) % N_DTYPES];
    s.batch = 2;
    s.seqlen_q = 40;
    s.seqlen_k = 90;
    s.heads_q = 2;
    s.head_dim = 32;
    s.heads_kv = 1;
    s.causal = 1;
    tl_problem with;
    tl_problem_init(&with, &s, &r);
    tl_problem_run_ok(&with, be);
    s.no_lse = 1;
    tl_problem without;
    tl_problem_init(&without, &s, &r);
    copy_inputs(&without, &with);
    ck_assert(without.args.lse.data == NULL);
    tl_problem_run_ok(&without, be);
    expect_same_bits(&with.o, &without.o, "o with lse vs without", without.desc);
    tl_problem_free(&with);
    tl_problem_free(&without);
}
END_TEST

/* GQA/MQA is attention with each key/value head repeated for its group of
 * query heads: the same bits as the MHA call on repeated heads. */
START_TEST(gqa_equals_mha_with_repeated_kv_heads)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    const int64_t hkv = (_i / N_BACKENDS) % 2 ? 1 : 2; /* MQA, GQA */
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[(_i / (2 * N_BACKENDS)) % N_DTYPES];
    s.batch = 2;
    s.seqlen_q = 50;
    s.seqlen_k = 66;
    s.heads_q = 6;
    s.heads_kv = hkv;
    s.head_dim = 16;
    s.window_left = 9;
    tl_problem g;
    tl_problem_init(&g, &s, &r);
    tl_problem_run_ok(&g, be);
    tl_spec m = s;
    m.heads_kv = 6;
    tl_problem mha;
    tl_problem_init(&mha, &m, &r);
    for (int t = 0; t < 2; t++) { /* q as is, k and v repeated */
        tl_tensor *src = t ? &g.v : &g.k, *dst = t ? &mha.v : &mha.k;
        int64_t idx[4];
        for (int64_t f = 0; f < tl_numel(dst); f++) {
            tl_unflatten(dst, f, idx);
            int64_t from[4] = {idx[0], idx[1], idx[2] / (6 / hkv), idx[3]};
            tl_set(dst, idx, tl_get(src, from));
        }
    }
    int64_t idx[4];
    for (int64_t f = 0; f < tl_numel(&g.q); f++) {
        tl_unflatten(&g.q, f, idx);
        tl_set(&mha.q, idx, tl_get(&g.q, idx));
    }
    tl_problem_run_ok(&mha, be);
    expect_same_bits(&g.o, &mha.o, "o, GQA vs repeated heads", g.desc);
    expect_same_bits(&g.lse, &mha.lse, "lse, GQA vs repeated heads", g.desc);
    tl_problem_free(&g);
    tl_problem_free(&mha);
}
END_TEST

/* Packed variable-length sequences give, sequence by sequence, the bits of
 * a fixed-length call on that sequence alone (an empty one included). */
START_TEST(variable_lengths_equal_separate_fixed_length_calls)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[(_i / N_BACKENDS) % N_DTYPES];
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 32;
    s.causal = (_i / (N_BACKENDS * N_DTYPES)) % 2;
    s.num_seqs = 4;
    const int64_t lq[4] = {70, 1, 0, 131}, lk[4] = {65, 9, 3, 129};
    memcpy(s.lens_q, lq, sizeof lq);
    memcpy(s.lens_k, lk, sizeof lk);
    s.max_seqlen_q = (_i / (2 * N_BACKENDS * N_DTYPES)) % 2 ? 200 : 0; /* larger is fine */
    tl_problem packed;
    tl_problem_init(&packed, &s, &r);
    tl_problem_run_ok(&packed, be);
    for (int64_t b = 0; b < 4; b++) {
        if (lq[b] == 0)
            continue;
        tl_spec f = s;
        f.num_seqs = 0;
        f.max_seqlen_q = 0;
        f.batch = 1;
        f.seqlen_q = lq[b];
        f.seqlen_k = lk[b];
        tl_problem one;
        tl_problem_init(&one, &f, &r);
        int64_t idx[4];
        const tl_tensor *src[3] = {&packed.q, &packed.k, &packed.v};
        tl_tensor *dst[3] = {&one.q, &one.k, &one.v};
        for (int t = 0; t < 3; t++) {
            const int64_t start = t == 0 ? packed.cu_q[b] : packed.cu_k[b];
            for (int64_t x = 0; x < tl_numel(dst[t]); x++) {
                tl_unflatten(dst[t], x, idx);
                int64_t from[4] = {0, start + idx[1], idx[2], idx[3]};
                tl_set(dst[t], idx, tl_get(src[t], from));
            }
        }
        tl_problem_run_ok(&one, be);
        for (int64_t x = 0; x < tl_numel(&one.o); x++) {
            tl_unflatten(&one.o, x, idx);
            int64_t at[4] = {0, packed.cu_q[b] + idx[1], idx[2], idx[3]};
            ck_assert_msg(tl_get_bits(&one.o, idx) == tl_get_bits(&packed.o, at),
                          "%s: sequence %lld row %lld head %lld col %lld: 0x%x alone, "
                          "0x%x packed, on %s", fa2_backend_name(be), (long long)b,
                          (long long)idx[1], (long long)idx[2], (long long)idx[3],
                          tl_get_bits(&one.o, idx), tl_get_bits(&packed.o, at),
                          packed.desc);
        }
        for (int64_t x = 0; x < tl_numel(&one.lse); x++) {
            tl_unflatten(&one.lse, x, idx);
            int64_t at[3] = {0, idx[1], packed.cu_q[b] + idx[2]};
            ck_assert_msg(tl_get_bits(&one.lse, idx) == tl_get_bits(&packed.lse, at),
                          "%s: lse of sequence %lld differs packed vs alone on %s",
                          fa2_backend_name(be), (long long)b, packed.desc);
        }
        tl_problem_free(&one);
    }
    tl_problem_free(&packed);
}
END_TEST

/* Causal is the window (unbounded, 0), and a window wider than the keys on
 * both sides is no window: the same bits. */
START_TEST(causal_equals_window_minus1_0_and_a_wide_window_equals_none)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[(_i / N_BACKENDS) % N_DTYPES];
    s.seqlen_q = 100;
    s.seqlen_k = 75;
    s.heads_q = 2;
    s.head_dim = 16;
    s.heads_kv = 2;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    p.args.causal = 1;
    tl_problem_run_ok(&p, be);
    outputs causal;
    take(&causal, &p);
    p.args.causal = 0;
    p.args.window_left = -1;
    p.args.window_right = 0;
    tl_problem_run_ok(&p, be);
    expect_same_outputs(&causal, &p, "window (-1, 0) vs causal");
    p.args.causal = 1;
    p.args.window_right = 7; /* causal overrides the right side */
    tl_problem_run_ok(&p, be);
    expect_same_outputs(&causal, &p, "causal with window (-1, 7) vs causal");
    release(&causal);

    p.args.causal = 0;
    p.args.window_left = p.args.window_right = -1;
    tl_problem_run_ok(&p, be);
    outputs none;
    take(&none, &p);
    p.args.window_left = 175; /* Nq + Nk: reaches every key from every row */
    p.args.window_right = 175;
    tl_problem_run_ok(&p, be);
    expect_same_outputs(&none, &p, "window (175, 175) vs none");
    release(&none);
    tl_problem_free(&p);
}
END_TEST

/* Every sequence empty is a valid call (with the library's own dense views,
 * whose strides are 0 for an empty dim) that writes nothing. */
START_TEST(all_sequences_empty_is_valid_and_touches_nothing)
{
    const fa2_backend be = cpu_backends[_i % N_BACKENDS];
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, o[8], lse[8];
    for (int i = 0; i < 8; i++)
        o[i] = lse[i] = -7.0f;
    const int32_t cu[3] = {0, 0, 0};
    fa2_fwd_args a;
    fa2_fwd_args_init(&a);
    a.q = fa2_tensor_4d(q, FA2_DTYPE_FP32, 1, 0, 4, 8);
    a.k = a.v = a.q;
    a.o = fa2_tensor_4d(o, FA2_DTYPE_FP32, 1, 0, 4, 8);
    a.lse = fa2_tensor_lse(lse, 1, 4, 0);
    a.cu_seqlens_q = a.cu_seqlens_k = cu;
    a.num_seqs = 2;
    fa2_status st = fa2_fwd(&a, be);
    ck_assert_msg(st == FA2_OK, "%s: %s (%s)", fa2_backend_name(be),
                  fa2_status_str(st), fa2_last_error());
    for (int i = 0; i < 8; i++)
        ck_assert(o[i] == -7.0f && lse[i] == -7.0f);
    /* keys but no queries, and queries of a sequence with no keys */
    const int32_t cq[3] = {0, 0, 0}, ck[3] = {0, 1, 1};
    a.cu_seqlens_q = cq;
    a.cu_seqlens_k = ck;
    a.k = a.v = fa2_tensor_4d(q, FA2_DTYPE_FP32, 1, 1, 1, 8);
    a.q = fa2_tensor_4d(q, FA2_DTYPE_FP32, 1, 0, 1, 8);
    a.o = fa2_tensor_4d(o, FA2_DTYPE_FP32, 1, 0, 1, 8);
    a.lse = fa2_tensor_lse(lse, 1, 1, 0);
    st = fa2_fwd(&a, be);
    ck_assert_msg(st == FA2_OK, "%s: %s (%s)", fa2_backend_name(be),
                  fa2_status_str(st), fa2_last_error());
}
END_TEST

/* The three CPU backends agree: the oracle's float64 result rounded to the
 * output dtype (to half an ulp, plus the float32 step on the way), and
 * standard and tiled within a few ulp of the dtype of it. */
START_TEST(every_cpu_backend_agrees_with_the_float64_oracle)
{
    tl_rng r;
    TL_RNG(&r);
    const fa2_dtype dt = dtypes[_i % N_DTYPES];
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dt;
    s.batch = 2;
    s.seqlen_q = 1 + tl_range(&r, 0, 100);
    s.seqlen_k = 1 + tl_range(&r, 0, 100);
    s.heads_q = 4;
    s.heads_kv = 1;
    s.head_dim = 64;
    s.causal = (int)tl_range(&r, 0, 1);
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    tl_problem_oracle(&p);
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        const fa2_backend be = cpu_backends[bi];
        tl_problem_run_ok(&p, be);
        int64_t idx[4];
        const int64_t Nq = p.total_q, H = 4, d = 64;
        for (int64_t f = 0; f < tl_numel(&p.o); f++) {
            tl_unflatten(&p.o, f, idx);
            const double ref = p.o64[((idx[0] * Nq + idx[1]) * H + idx[2]) * d + idx[3]];
            const double o = tl_get(&p.o, idx);
            const double tol = be == FA2_BACKEND_CPU_ORACLE
                                   ? 0.5 * ulp_at(ref, dt) + 0x1p-24 * fabs(ref)
                                   : 8 * tl_unit_roundoff(dt) + 64 * 0x1p-24;
            TL_CHECK(fabs(o - ref) <= tol, "%s: o = %a, oracle %a (tol %.3g) at "
                     "[%lld,%lld,%lld,%lld] on %s", fa2_backend_name(be), o, ref, tol,
                     (long long)idx[0], (long long)idx[1], (long long)idx[2],
                     (long long)idx[3], p.desc);
        }
        for (int64_t f = 0; f < tl_numel(&p.lse); f++) {
            tl_unflatten(&p.lse, f, idx);
            const double ref = p.lse64[(idx[0] * H + idx[1]) * Nq + idx[2]];
            const double l = tl_get(&p.lse, idx);
            const double tol = be == FA2_BACKEND_CPU_ORACLE ? 0.5 * ulp_at(ref, FA2_DTYPE_FP32)
                               : be == FA2_BACKEND_CPU_STANDARD
                                   ? 8 * tl_unit_roundoff(dt) * (1 + fabs(ref))
                                   : 64 * 0x1p-24 * (1 + fabs(ref));
            TL_CHECK(fabs(l - ref) <= tol || (isinf(ref) && l == ref),
                     "%s: lse = %.9g, oracle %.9g on %s", fa2_backend_name(be), l,
                     ref, p.desc);
        }
    }
    tl_problem_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fwd_cases");
    TCase *th = tcase_create("by_hand");
    tcase_set_timeout(th, 60);
    tcase_add_loop_test(th, single_key_gives_o_equal_to_v_and_lse_equal_to_the_score, 0, N_DTYPES);
    tcase_add_loop_test(th, identical_keys_give_uniform_weights_and_o_is_the_mean_of_v, 0, N_DTYPES);
    tcase_add_loop_test(th, a_dominant_key_gives_o_equal_to_its_value, 0, N_DTYPES);
    tcase_add_loop_test(th, rows_that_see_no_key_give_o_zero_and_lse_inf, 0, 4 * N_DTYPES);
    suite_add_tcase(s, th);
    TCase *ti = tcase_create("invariances");
    tcase_set_timeout(ti, 60);
    tcase_add_loop_test(ti, outputs_are_the_same_bits_for_any_thread_count, 0,
                        N_DTYPES * N_BACKENDS);
    tcase_add_loop_test(ti, strided_inputs_and_outputs_give_the_bits_of_contiguous_ones,
                        0, N_BACKENDS * N_DTYPES);
    tcase_add_loop_test(ti, default_softmax_scale_equals_passing_one_over_sqrt_d, 0,
                        N_BACKENDS * N_DTYPES * 5);
    tcase_add_loop_test(ti, lse_null_is_allowed_and_leaves_o_unchanged, 0,
                        N_BACKENDS * N_DTYPES);
    tcase_add_loop_test(ti, gqa_equals_mha_with_repeated_kv_heads, 0,
                        N_BACKENDS * 2 * N_DTYPES);
    tcase_add_loop_test(ti, variable_lengths_equal_separate_fixed_length_calls, 0,
                        N_BACKENDS * N_DTYPES * 4);
    tcase_add_loop_test(ti, causal_equals_window_minus1_0_and_a_wide_window_equals_none,
                        0, N_BACKENDS * N_DTYPES);
    tcase_add_loop_test(ti, all_sequences_empty_is_valid_and_touches_nothing, 0,
                        N_BACKENDS);
    tcase_add_loop_test(ti, every_cpu_backend_agrees_with_the_float64_oracle, 0,
                        N_DTYPES * 3);
    suite_add_tcase(s, ti);
    return tl_run_suite(s);
}
