/*
 * test_nonfinite.c — the contract for non-finite inputs and for finite
 * inputs at the edge of float32 (doc/algorithm.md, "Non-finite inputs"),
 * in every CPU backend and the float64 oracle alike:
 *
 *   - a NaN in q_i makes O_i and LSE_i NaN, and nothing else;
 *   - a NaN in k_j makes O and LSE NaN on exactly the rows that see key j;
 *   - a NaN in v_j[c] makes O[., c] NaN on every row that sees key j and
 *     leaves LSE and the other columns alone;
 *   - a +inf score makes its row NaN; -inf scores weigh 0, and a row whose
 *     scores are all -inf is a row that sees no key (O = 0, LSE = +inf);
 *   - the backward carries a NaN of q_i into dq_i and into dk_j, dv_j of
 *     every key j row i sees, and leaves the other rows of dq and the other
 *     heads finite;
 *   - large logits are right (or NaN honestly), never a plausible wrong
 *     number: fp16 q = k = 12288 gives the mean of v; softmax_scale 1e20
 *     picks the top key; a backward whose LSE is too large for float32 to
 *     rebuild P from gives NaN, not garbage;
 *   - standard attention scales the scores before rounding them to fp16.
 */
#include "config.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fa2_backend backends[] = {FA2_BACKEND_CPU_ORACLE,
                                       FA2_BACKEND_CPU_STANDARD,
                                       FA2_BACKEND_CPU_TILED};
static const fa2_dtype dtypes[] = {FA2_DTYPE_FP32, FA2_DTYPE_FP16, FA2_DTYPE_BF16};
#define N_BACKENDS 3
#define N 40 /* query and key rows: several 16-row tiles */
#define D 16
#define H 2  /* two query heads, two key heads: head 1 is a bystander */

/* loop index -> dtype (i % 3) and causal (i / 3) */
static void make(tl_problem *p, int i, tl_rng *r)
{
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[i % 3];
    s.causal = i / 3;
    s.seqlen_q = s.seqlen_k = N;
    s.heads_q = s.heads_kv = H;
    s.head_dim = D;
    s.block_m = s.block_n = 16;
    s.num_threads = 2;
    tl_problem_init(p, &s, r);
}

static double o_at(const tl_problem *p, int64_t i, int64_t h, int64_t c)
{
    const int64_t idx[4] = {0, i, h, c};
    return tl_get(&p->o, idx);
}

static double lse_at(const tl_problem *p, int64_t i, int64_t h)
{
    const int64_t idx[3] = {0, h, i};
    return tl_get(&p->lse, idx);
}

static void set4(tl_tensor *t, int64_t i, int64_t h, int64_t c, double v)
{
    const int64_t idx[4] = {0, i, h, c};
    tl_set(t, idx, v);
}

/* Does row i see key j (no window here: causal or not)? */
static int sees(const tl_problem *p, int64_t i, int64_t j)
{
    return !p->spec.causal || j <= i;
}

/* Run every backend (and the float64 oracle) and hand each output to
 * `check`; the oracle's float64 outputs are checked through a problem whose
 * o/lse hold them rounded, so one checker serves all. */
typedef void (*fwd_check_fn)(const tl_problem *p, const char *who, void *ctx);

static void for_every_backend(tl_problem *p, fwd_check_fn check, void *ctx)
{
    for (int b = 0; b < N_BACKENDS; b++) {
        tl_problem_run_ok(p, backends[b]);
        check(p, fa2_backend_name(backends[b]), ctx);
    }
    /* the float64 oracle with float64 outputs (what the tests compare to) */
    double *o64 = malloc(sizeof(double) * N * H * D);
    double *l64 = malloc(sizeof(double) * H * N);
    ck_assert(o64 && l64);
    ck_assert_int_eq(fa2_oracle_fwd_f64(&p->args, o64, l64), FA2_OK);
    tl_tensor_poison(&p->o);
    tl_tensor_poison(&p->lse);
    for (int64_t i = 0; i < N; i++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t c = 0; c < D; c++)
                set4(&p->o, i, h, c, o64[(i * H + h) * D + c]);
            const int64_t idx[3] = {0, h, i};
            tl_set(&p->lse, idx, l64[h * N + i]);
        }
    free(o64);
    free(l64);
    check(p, "oracle_f64", ctx);
}

/* ---- forward ---------------------------------------------------------------- */

typedef struct nan_at {
    int64_t row, head, col;
    int in_key; /* the NaN is in k (row = key) rather than in q (row = query) */
} nan_at;

/* The rows a NaN in q or k reaches: its own query row, or every row that
 * sees the key, of its head; LSE and every column of O NaN there, finite
 * everywhere else. */
static void check_rows_nan(const tl_problem *p, const char *who, void *ctx)
{
    const nan_at *at = ctx;
    for (int64_t i = 0; i < N; i++)
        for (int64_t h = 0; h < H; h++) {
            const int hit = h == at->head && (at->in_key ? sees(p, i, at->row)
                                                         : i == at->row);
            const double l = lse_at(p, i, h);
            TL_CHECK(hit ? isnan(l) : isfinite(l), "%s: LSE[%lld, %lld] = %g, "
                     "expected %s (NaN in %s %lld) on %s", who, (long long)h,
                     (long long)i, l, hit ? "NaN" : "finite",
                     at->in_key ? "key" : "q row", (long long)at->row, p->desc);
            for (int64_t c = 0; c < D; c++) {
                const double o = o_at(p, i, h, c);
                TL_CHECK(hit ? isnan(o) : isfinite(o), "%s: O[%lld, %lld, %lld] = "
                         "%g, expected %s on %s", who, (long long)i, (long long)h,
                         (long long)c, o, hit ? "NaN" : "finite", p->desc);
            }
        }
}

START_TEST(a_nan_in_a_query_row_makes_that_row_nan_and_no_other)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    make(&p, _i, &r);
    nan_at at = {.row = 23, .head = 0, .col = 5, .in_key = 0};
    set4(&p.q, at.row, at.head, at.col, NAN);
    for_every_backend(&p, check_rows_nan, &at);
    tl_problem_free(&p);
}
END_TEST

START_TEST(a_nan_in_a_key_makes_exactly_the_rows_that_see_it_nan)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    make(&p, _i, &r);
    nan_at at = {.row = 20, .head = 0, .col = 2, .in_key = 1};
    set4(&p.k, at.row, at.head, at.col, NAN);
    for_every_backend(&p, check_rows_nan, &at);
    tl_problem_free(&p);
}
END_TEST

static void check_v_nan(const tl_problem *p, const char *who, void *ctx)
{
    const nan_at *at = ctx;
    for (int64_t i = 0; i < N; i++)
        for (int64_t h = 0; h < H; h++) {
            const double l = lse_at(p, i, h);
            TL_CHECK(isfinite(l), "%s: LSE[%lld, %lld] = %g: a NaN in v must not "
                     "reach LSE, on %s", who, (long long)h, (long long)i, l, p->desc);
            if (h != at->head) {
                for (int64_t c = 0; c < D; c++)
                    TL_CHECK(isfinite(o_at(p, i, h, c)), "%s: O of head %lld is "
                             "not finite on %s", who, (long long)h, p->desc);
                continue;
            }
            for (int64_t c = 0; c < D; c++) {
                const double o = o_at(p, i, h, c);
                if (c != at->col)
                    TL_CHECK(isfinite(o), "%s: O[%lld, %lld, %lld] = %g: a NaN in "
                             "column %lld of v reached column %lld, on %s", who,
                             (long long)i, (long long)h, (long long)c, o,
                             (long long)at->col, (long long)c, p->desc);
                else if (sees(p, i, at->row))
                    TL_CHECK(isnan(o), "%s: O[%lld, %lld, %lld] = %g, expected NaN: "
                             "the row sees key %lld whose v is NaN, on %s", who,
                             (long long)i, (long long)h, (long long)c, o,
                             (long long)at->row, p->desc);
                /* rows that do not see the key: a blocked product may carry
                 * 0 * NaN into them (documented); not specified */
            }
        }
}

START_TEST(a_nan_in_a_value_makes_its_column_nan_on_every_row_that_sees_it)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    make(&p, _i, &r);
    nan_at at = {.row = 20, .head = 0, .col = 7};
    set4(&p.v, at.row, at.head, at.col, NAN);
    for_every_backend(&p, check_v_nan, &at);
    tl_problem_free(&p);
}
END_TEST

/* q_i = (+inf, 0.5, ...): score s_j = +inf where k_j[0] > 0, -inf where it
 * is < 0 (k never holds a zero). */
typedef struct inf_case {
    int64_t row;
    int any_positive; /* some visible key has k[0] > 0 */
} inf_case;

static void check_inf(const tl_problem *p, const char *who, void *ctx)
{
    const inf_case *ic = ctx;
    const double l = lse_at(p, ic->row, 0);
    if (ic->any_positive) {
        TL_CHECK(isnan(l), "%s: LSE = %g, expected NaN: a +inf score, on %s", who,
                 l, p->desc);
        for (int64_t c = 0; c < D; c++)
            TL_CHECK(isnan(o_at(p, ic->row, 0, c)), "%s: O[%lld] = %g, expected "
                     "NaN: a +inf score, on %s", who, (long long)c,
                     o_at(p, ic->row, 0, c), p->desc);
    } else {
        TL_CHECK(l == INFINITY, "%s: LSE = %g, expected +inf: every score -inf "
                 "is a row that sees no key, on %s", who, l, p->desc);
        for (int64_t c = 0; c < D; c++)
            TL_CHECK(o_at(p, ic->row, 0, c) == 0.0, "%s: O[%lld] = %g, expected 0 "
                     "on %s", who, (long long)c, o_at(p, ic->row, 0, c), p->desc);
    }
    for (int64_t i = 0; i < N; i++) /* the other rows are untouched */
        if (i != ic->row)
            TL_CHECK(isfinite(lse_at(p, i, 0)), "%s: row %lld LSE not finite on %s",
                     who, (long long)i, p->desc);
}

START_TEST(a_plus_inf_score_makes_its_row_nan_and_minus_inf_scores_weigh_zero)
{
    for (int any_positive = 0; any_positive < 2; any_positive++) {
        tl_rng r;
        TL_RNG(&r);
        tl_problem p;
        make(&p, _i, &r);
        inf_case ic = {.row = 30, .any_positive = any_positive};
        for (int64_t j = 0; j < N; j++) { /* k[j][0] < 0 for every key ... */
            const int64_t idx[4] = {0, j, 0, 0};
            tl_set(&p.k, idx, -fabs(tl_get(&p.k, idx)) - 0.25);
        }
        if (any_positive) /* ... but one the row sees */
            set4(&p.k, 3, 0, 0, 1.5);
        set4(&p.q, ic.row, 0, 0, INFINITY);
        for (int64_t c = 1; c < D; c++)
            set4(&p.q, ic.row, 0, c, 0.5);
        for_every_backend(&p, check_inf, &ic);
        tl_problem_free(&p);
    }
}
END_TEST

/* ---- backward --------------------------------------------------------------- */

typedef struct bwd_set {
    tl_tensor dout, dq, dk, dv;
    fa2_bwd_args a;
} bwd_set;

/* The backward of p's current outputs (o, lse) with random dout. */
static void bwd_set_init(bwd_set *b, tl_problem *p, tl_rng *r)
{
    const int64_t *qs = p->q.t.shape, *ks = p->k.t.shape;
    tl_tensor_alloc(&b->dout, p->spec.dtype, 4, qs, TL_CONTIGUOUS);
    tl_tensor_alloc(&b->dq, p->spec.dtype, 4, qs, TL_CONTIGUOUS);
    tl_tensor_alloc(&b->dk, p->spec.dtype, 4, ks, TL_CONTIGUOUS);
    tl_tensor_alloc(&b->dv, p->spec.dtype, 4, ks, TL_CONTIGUOUS);
    tl_tensor_fill_normal(&b->dout, r, 1.0);
    fa2_bwd_args_init(&b->a);
    const fa2_fwd_args *f = &p->args;
    b->a.q = f->q, b->a.k = f->k, b->a.v = f->v, b->a.o = f->o, b->a.lse = f->lse;
    b->a.dout = b->dout.t;
    b->a.dq = b->dq.t, b->a.dk = b->dk.t, b->a.dv = b->dv.t;
    b->a.softmax_scale = f->softmax_scale;
    b->a.causal = f->causal;
    b->a.block_m = f->block_m, b->a.block_n = f->block_n;
    b->a.num_threads = f->num_threads;
}

static void bwd_set_free(bwd_set *b)
{
    tl_tensor_free(&b->dout);
    tl_tensor_free(&b->dq);
    tl_tensor_free(&b->dk);
    tl_tensor_free(&b->dv);
}

static double g_at(const tl_tensor *t, int64_t i, int64_t h, int64_t c)
{
    const int64_t idx[4] = {0, i, h, c};
    return tl_get(t, idx);
}

START_TEST(the_backward_carries_a_nan_query_row_into_its_gradients_only)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    make(&p, _i, &r);
    const int64_t row = 23;
    set4(&p.q, row, 0, 5, NAN);
    bwd_set b;
    bwd_set_init(&b, &p, &r);
    for (int be = 0; be < N_BACKENDS; be++) {
        const char *who = fa2_backend_name(backends[be]);
        tl_problem_run_ok(&p, backends[be]); /* o, lse of this backend */
        tl_tensor_poison(&b.dq);
        tl_tensor_poison(&b.dk);
        tl_tensor_poison(&b.dv);
        ck_assert_int_eq(fa2_bwd(&b.a, backends[be]), FA2_OK);
        for (int64_t i = 0; i < N; i++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t c = 0; c < D; c++) {
                    const double dq = g_at(&b.dq, i, h, c);
                    const int hit = i == row && h == 0;
                    TL_CHECK(hit ? isnan(dq) : isfinite(dq), "%s: dq[%lld, %lld, "
                             "%lld] = %g, expected %s on %s", who, (long long)i,
                             (long long)h, (long long)c, dq, hit ? "NaN" : "finite",
                             p.desc);
                    const double dk = g_at(&b.dk, i, h, c), dv = g_at(&b.dv, i, h, c);
                    if (h == 1) {
                        TL_CHECK(isfinite(dk) && isfinite(dv), "%s: dk/dv of the "
                                 "other head not finite on %s", who, p.desc);
                    } else if (sees(&p, row, i)) {
                        TL_CHECK(isnan(dk) && isnan(dv), "%s: dk/dv[%lld, %lld] = "
                                 "%g/%g, expected NaN: key %lld is seen by the NaN "
                                 "row, on %s", who, (long long)i, (long long)c, dk,
                                 dv, (long long)i, p.desc);
                    }
                }
    }
    /* the float64 oracle's own gradients agree */
    double *dq64 = malloc(sizeof(double) * N * H * D);
    double *dk64 = malloc(sizeof(double) * N * H * D);
    double *dv64 = malloc(sizeof(double) * N * H * D);
    ck_assert(dq64 && dk64 && dv64);
    ck_assert_int_eq(fa2_oracle_bwd_f64(&b.a, dq64, dk64, dv64), FA2_OK);
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < D; c++) {
            const int64_t at0 = (i * H + 0) * D + c, at1 = (i * H + 1) * D + c;
            TL_CHECK(i == row ? isnan(dq64[at0]) : isfinite(dq64[at0]),
                     "oracle_f64: dq[%lld] wrong NaN-ness", (long long)i);
            TL_CHECK(isfinite(dq64[at1]) && isfinite(dk64[at1]) && isfinite(dv64[at1]),
                     "oracle_f64: head 1 not finite");
            TL_CHECK(sees(&p, row, i) ? isnan(dk64[at0]) && isnan(dv64[at0])
                                      : isfinite(dk64[at0]) && isfinite(dv64[at0]),
                     "oracle_f64: dk/dv[%lld] wrong NaN-ness", (long long)i);
        }
    free(dq64);
    free(dk64);
    free(dv64);
    bwd_set_free(&b);
    tl_problem_free(&p);
}
END_TEST

/* ---- large logits ------------------------------------------------------------ */

/* fp16 q = k = 12288 (3 * 2^12), d = 64: every score is 9 * 2^30, exact
 * in float32 whatever the summation order (1.2e9 scaled), so every key
 * weighs the same and O is the mean of v. (The 10000 is the same
 * case, but 64 * 10^8 is not exact in float32 partial sums, so its scores
 * differ by an ulp from tile to tile and only the top ones count.) Before
 * the fix the tiled mirror subtracted round(m c), 48 away from m c here: P
 * = 2^48 overflowed fp16. The oracle and the tiled mirror must give the
 * mean; standard attention stores S in fp16, where 1.2e9 is inf: it may
 * say NaN, never a wrong number. */
START_TEST(fp16_q_and_k_of_12288_give_the_mean_of_v)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = FA2_DTYPE_FP16;
    s.seqlen_q = 20;
    s.seqlen_k = 70;
    s.head_dim = 64;
    s.block_m = 16;
    s.block_n = 16;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    int64_t idx[4];
    for (int64_t f = 0; f < tl_numel(&p.q); f++) {
        tl_unflatten(&p.q, f, idx);
        tl_set(&p.q, idx, 12288.0);
    }
    for (int64_t f = 0; f < tl_numel(&p.k); f++) {
        tl_unflatten(&p.k, f, idx);
        tl_set(&p.k, idx, 12288.0);
    }
    double mean[64] = {0};
    for (int64_t j = 0; j < s.seqlen_k; j++)
        for (int64_t c = 0; c < 64; c++) {
            const int64_t vi[4] = {0, j, 0, c};
            mean[c] += tl_get(&p.v, vi) / (double)s.seqlen_k;
        }
    for (int b = 0; b < N_BACKENDS; b++) {
        tl_problem_run_ok(&p, backends[b]);
        const int may_nan = backends[b] == FA2_BACKEND_CPU_STANDARD;
        for (int64_t i = 0; i < s.seqlen_q; i++)
            for (int64_t c = 0; c < 64; c++) {
                const int64_t oi[4] = {0, i, 0, c};
                const double o = tl_get(&p.o, oi);
                TL_CHECK((may_nan && isnan(o)) || fabs(o - mean[c]) <= 4e-3,
                         "%s: O[%lld, %lld] = %g, expected the mean of v %g",
                         fa2_backend_name(backends[b]), (long long)i, (long long)c,
                         o, mean[c]);
            }
    }
    tl_problem_free(&p);
}
END_TEST

/* fp32 with softmax_scale 1e20: the softmax is the max (ties are
 * improbable with random data), so O_i = v of row i's top key, and LSE is
 * scale times the top score. */
START_TEST(a_softmax_scale_of_1e20_picks_the_top_key)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.seqlen_q = 33;
    s.seqlen_k = 50;
    s.head_dim = 16;
    s.softmax_scale = 1e20f;
    s.block_m = 16;
    s.block_n = 16;
    s.causal = _i;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    tl_problem_oracle(&p);
    for (int b = 0; b < N_BACKENDS; b++) {
        tl_problem_run_ok(&p, backends[b]);
        for (int64_t i = 0; i < s.seqlen_q; i++) {
            const int64_t li[3] = {0, 0, i};
            const double lse = tl_get(&p.lse, li), ref = p.lse64[i];
            TL_CHECK(fabs(lse - ref) <= 1e-6 * fabs(ref), "%s: LSE[%lld] = %g, "
                     "oracle %g", fa2_backend_name(backends[b]), (long long)i, lse,
                     ref);
            for (int64_t c = 0; c < 16; c++) {
                const int64_t oi[4] = {0, i, 0, c};
                const double o = tl_get(&p.o, oi), oref = p.o64[i * 16 + c];
                TL_CHECK(fabs(o - oref) <= 1e-6, "%s: O[%lld, %lld] = %g, oracle %g",
                         fa2_backend_name(backends[b]), (long long)i, (long long)c,
                         o, oref);
            }
        }
    }
    tl_problem_free(&p);
}
END_TEST

/* The backward rebuilds P from the float32 LSE: with softmax_scale 1e6,
 * |LSE log2 e| is far past 2^16 and P could not be rebuilt to any useful
 * precision; the tiled backward must say NaN on those rows' dq, and the
 * oracle (which recomputes P) stays finite. */
START_TEST(a_backward_whose_lse_float32_cannot_carry_is_nan_not_wrong)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.seqlen_q = s.seqlen_k = 24;
    s.head_dim = 16;
    s.softmax_scale = 1e6f;
    s.block_m = s.block_n = 16;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    tl_problem_run_ok(&p, FA2_BACKEND_CPU_TILED);
    bwd_set b;
    bwd_set_init(&b, &p, &r);
    ck_assert_int_eq(fa2_bwd(&b.a, FA2_BACKEND_CPU_TILED), FA2_OK);
    int64_t nan_rows = 0;
    for (int64_t i = 0; i < 24; i++) {
        const double lse2 = lse_at(&p, i, 0) * 1.4426950408889634;
        if (fabs(lse2) < 65536.0)
            continue;
        nan_rows++;
        for (int64_t c = 0; c < 16; c++)
            TL_CHECK(isnan(g_at(&b.dq, i, 0, c)), "tiled: dq[%lld, %lld] = %g with "
                     "LSE %g: P cannot be rebuilt from a float32 LSE that large, "
                     "expected NaN", (long long)i, (long long)c,
                     g_at(&b.dq, i, 0, c), lse_at(&p, i, 0));
    }
    ck_assert_msg(nan_rows > 0, "no row had an LSE past 2^16: the test tests nothing");
    double *dq64 = malloc(sizeof(double) * 24 * 16);
    ck_assert(dq64);
    ck_assert_int_eq(fa2_oracle_bwd_f64(&b.a, dq64, NULL, NULL), FA2_OK);
    for (int64_t x = 0; x < 24 * 16; x++)
        TL_CHECK(isfinite(dq64[x]), "oracle dq[%lld] not finite", (long long)x);
    free(dq64);
    bwd_set_free(&b);
    tl_problem_free(&p);
}
END_TEST

/* ---- standard attention's rounding ------------------------------------------ */

/* d = 128, q = k = 24: the unscaled score 73728 is past fp16's 65504, the
 * scaled one (6517) is not. A framework scales before its matmul's output
 * is stored; so does the yardstick, in both passes. */
START_TEST(standard_attention_scales_before_rounding_scores_to_fp16)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = FA2_DTYPE_FP16;
    s.seqlen_q = 8;
    s.seqlen_k = 12;
    s.head_dim = 128;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    int64_t idx[4];
    for (int64_t f = 0; f < tl_numel(&p.q); f++) {
        tl_unflatten(&p.q, f, idx);
        tl_set(&p.q, idx, 24.0);
    }
    for (int64_t f = 0; f < tl_numel(&p.k); f++) {
        tl_unflatten(&p.k, f, idx);
        tl_set(&p.k, idx, 24.0);
    }
    tl_problem_run_ok(&p, FA2_BACKEND_CPU_STANDARD);
    for (int64_t f = 0; f < tl_numel(&p.o); f++) {
        tl_unflatten(&p.o, f, idx);
        TL_CHECK(isfinite(tl_get(&p.o, idx)), "standard: O[%lld] = %g: the scaled "
                 "scores (6517) fit fp16", (long long)f, tl_get(&p.o, idx));
    }
    bwd_set b;
    bwd_set_init(&b, &p, &r);
    ck_assert_int_eq(fa2_bwd(&b.a, FA2_BACKEND_CPU_STANDARD), FA2_OK);
    const tl_tensor *g[3] = {&b.dq, &b.dk, &b.dv};
    for (int t = 0; t < 3; t++)
        for (int64_t f = 0; f < tl_numel(g[t]); f++) {
            tl_unflatten(g[t], f, idx);
            TL_CHECK(isfinite(tl_get(g[t], idx)), "standard backward: gradient %d "
                     "[%lld] = %g, expected finite", t, (long long)f,
                     tl_get(g[t], idx));
        }
    bwd_set_free(&b);
    tl_problem_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nonfinite");
    TCase *tn = tcase_create("nan_and_inf");
    tcase_set_timeout(tn, 120);
    tcase_add_loop_test(tn, a_nan_in_a_query_row_makes_that_row_nan_and_no_other, 0, 6);
    tcase_add_loop_test(tn, a_nan_in_a_key_makes_exactly_the_rows_that_see_it_nan, 0, 6);
    tcase_add_loop_test(tn, a_nan_in_a_value_makes_its_column_nan_on_every_row_that_sees_it, 0, 6);
    tcase_add_loop_test(tn, a_plus_inf_score_makes_its_row_nan_and_minus_inf_scores_weigh_zero, 0, 6);
    tcase_add_loop_test(tn, the_backward_carries_a_nan_query_row_into_its_gradients_only, 0, 6);
    suite_add_tcase(s, tn);
    TCase *tl = tcase_create("large_logits");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, fp16_q_and_k_of_12288_give_the_mean_of_v);
    tcase_add_loop_test(tl, a_softmax_scale_of_1e20_picks_the_top_key, 0, 2);
    tcase_add_test(tl, a_backward_whose_lse_float32_cannot_carry_is_nan_not_wrong);
    tcase_add_test(tl, standard_attention_scales_before_rounding_scores_to_fp16);
    suite_add_tcase(s, tl);
    return tl_run_suite(s);
}
