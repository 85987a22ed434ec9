/*
 * test_tile.c — the tile logic every implementation shares (lib/fa2_tile.h)
 * against brute force over the mask predicate: which key blocks a query
 * block visits, which tiles need the element mask, which query blocks a key
 * block's backward visits; bottom-right causal alignment by hand; and the
 * online-softmax helpers on their edge cases.
 */
#include "config.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>

/* A random mask problem: seqlens 0..200 (0 included), any window side
 * bounded or not (sometimes wider than the keys), causal or not, and tile
 * sizes 1..80. */
typedef struct mask_case {
    fa2_mask m;
    int causal;
    int64_t wl, wr;
    int bm, bn;
} mask_case;

static void random_case(tl_rng *r, mask_case *c)
{
    const int64_t nq = tl_range(r, 0, 8) == 0 ? tl_range(r, 0, 3) : tl_range(r, 1, 200);
    const int64_t nk = tl_range(r, 0, 8) == 0 ? tl_range(r, 0, 3) : tl_range(r, 1, 200);
    c->causal = (int)tl_range(r, 0, 1);
    c->wl = tl_range(r, 0, 2) == 0 ? -1 : tl_range(r, 0, nk + 10);
    c->wr = tl_range(r, 0, 2) == 0 ? -1 : tl_range(r, 0, nk + 10);
    const int small = (int)tl_range(r, 0, 1);
    c->bm = (int)(small ? tl_range(r, 1, 9) : tl_range(r, 1, 80));
    c->bn = (int)(small ? tl_range(r, 1, 9) : tl_range(r, 1, 80));
    c->m = fa2_mask_make(nq, nk, c->causal, c->wl, c->wr);
}

#define CASE_FMT "Nq=%lld Nk=%lld causal=%d window=(%lld,%lld) tiles=%dx%d (FA2_TEST_SEED=%llu)"
#define CASE_ARGS(c)                                                          \
    (long long)(c).m.seqlen_q, (long long)(c).m.seqlen_k, (c).causal,         \
        (long long)(c).wl, (long long)(c).wr, (c).bm, (c).bn,                 \
        (unsigned long long)tl_seed()

/* Does tile (m_block, n_block) hold a visible (row, col)? */
static int tile_has_visible(const mask_case *c, int64_t mb, int64_t nb)
{
    for (int64_t i = mb * c->bm; i < (mb + 1) * c->bm && i < c->m.seqlen_q; i++)
        for (int64_t j = nb * c->bn; j < (nb + 1) * c->bn && j < c->m.seqlen_k; j++)
            if (fa2_mask_visible(&c->m, i, j))
                return 1;
    return 0;
}

enum { CASES_PER_LOOP = 60, LOOPS = 60 };

START_TEST(fwd_kv_blocks_visits_exactly_the_blocks_with_a_visible_key)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        const int64_t mblocks = fa2_num_blocks(c.m.seqlen_q, c.bm);
        const int64_t nblocks = fa2_num_blocks(c.m.seqlen_k, c.bn);
        for (int64_t mb = 0; mb < mblocks; mb++) {
            const fa2_block_range kv = fa2_fwd_kv_blocks(&c.m, mb, c.bm, c.bn);
            TL_CHECK(kv.lo >= 0 && kv.hi >= kv.lo && kv.hi <= nblocks,
                     "query block %lld: range [%lld, %lld) outside [0, %lld) on " CASE_FMT,
                     (long long)mb, (long long)kv.lo, (long long)kv.hi,
                     (long long)nblocks, CASE_ARGS(c));
            for (int64_t nb = 0; nb < nblocks; nb++) {
                const int visited = nb >= kv.lo && nb < kv.hi;
                TL_CHECK(visited == tile_has_visible(&c, mb, nb),
                         "query block %lld, key block %lld: visited=%d but has a "
                         "visible key=%d on " CASE_FMT, (long long)mb, (long long)nb,
                         visited, !visited, CASE_ARGS(c));
            }
            /* the visiting order: last block first, each once */
            for (int64_t step = 0; step < fa2_block_count(kv); step++)
                TL_CHECK(fa2_kv_block_at(kv, step) == kv.hi - 1 - step,
                         "step %lld visits block %lld", (long long)step,
                         (long long)fa2_kv_block_at(kv, step));
        }
    }
}
END_TEST

START_TEST(visible_cols_is_the_union_of_the_rows_windows)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        if (c.m.seqlen_q == 0)
            continue;
        const int64_t lo = tl_range(&r, 0, c.m.seqlen_q - 1);
        const int64_t hi = tl_range(&r, lo, c.m.seqlen_q);
        int64_t col_lo, col_hi;
        fa2_visible_cols(&c.m, lo, hi, &col_lo, &col_hi);
        for (int64_t j = -2; j < c.m.seqlen_k + 2; j++) {
            int seen = 0;
            for (int64_t i = lo; i < hi && !seen; i++)
                seen = fa2_mask_visible(&c.m, i, j);
            TL_CHECK(seen == (j >= col_lo && j < col_hi),
                     "rows [%lld, %lld): col %lld seen=%d but range [%lld, %lld) on "
                     CASE_FMT, (long long)lo, (long long)hi, (long long)j, seen,
                     (long long)col_lo, (long long)col_hi, CASE_ARGS(c));
        }
    }
}
END_TEST

/* If the tile logic says a tile needs no mask, the kernel skips masking:
 * then every (valid row, col) of the tile must be visible, col < seqlen_k
 * included. Conversely only tiles with a hidden pair are masked. */
START_TEST(tile_needs_mask_is_zero_exactly_when_every_pair_is_visible)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        const int64_t mblocks = fa2_num_blocks(c.m.seqlen_q, c.bm);
        const int64_t nblocks = fa2_num_blocks(c.m.seqlen_k, c.bn);
        for (int64_t mb = 0; mb < mblocks; mb++) {
            const int64_t row_lo = mb * c.bm;
            const int64_t row_hi = row_lo + c.bm < c.m.seqlen_q ? row_lo + c.bm
                                                                  : c.m.seqlen_q;
            for (int64_t nb = 0; nb < nblocks; nb++) {
                const int64_t col_lo = nb * c.bn;
                int all = 1;
                for (int64_t i = row_lo; i < row_hi && all; i++)
                    for (int64_t j = col_lo; j < col_lo + c.bn && all; j++)
                        all = fa2_mask_visible(&c.m, i, j); /* j >= Nk: hidden */
                const int needs = fa2_tile_needs_mask(&c.m, row_lo, row_hi, col_lo, c.bn);
                TL_CHECK(needs || all, "tile (%lld, %lld) has a hidden pair but "
                         "fa2_tile_needs_mask says 0 on " CASE_FMT, (long long)mb,
                         (long long)nb, CASE_ARGS(c));
                TL_CHECK(!needs || !all, "tile (%lld, %lld) is fully visible but "
                         "fa2_tile_needs_mask says 1 on " CASE_FMT, (long long)mb,
                         (long long)nb, CASE_ARGS(c));
            }
        }
    }
}
END_TEST

/* The backward's query blocks for a key block are the transpose of the
 * forward relation: query block i is visited for key block j exactly when
 * j is visited for i (both: the tile holds a visible pair). */
START_TEST(bwd_q_blocks_is_the_transpose_of_fwd_kv_blocks)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        const int64_t mblocks = fa2_num_blocks(c.m.seqlen_q, c.bm);
        const int64_t nblocks = fa2_num_blocks(c.m.seqlen_k, c.bn);
        for (int64_t nb = 0; nb < nblocks; nb++) {
            const fa2_block_range qr = fa2_bwd_q_blocks(&c.m, nb, c.bm, c.bn);
            TL_CHECK(qr.lo >= 0 && qr.hi >= qr.lo && qr.hi <= mblocks,
                     "key block %lld: range [%lld, %lld) outside [0, %lld) on " CASE_FMT,
                     (long long)nb, (long long)qr.lo, (long long)qr.hi,
                     (long long)mblocks, CASE_ARGS(c));
            for (int64_t mb = 0; mb < mblocks; mb++) {
                const fa2_block_range kv = fa2_fwd_kv_blocks(&c.m, mb, c.bm, c.bn);
                const int fwd = nb >= kv.lo && nb < kv.hi;
                const int bwd = mb >= qr.lo && mb < qr.hi;
                TL_CHECK(fwd == bwd, "tile (%lld, %lld): forward visits=%d, "
                         "backward visits=%d on " CASE_FMT, (long long)mb,
                         (long long)nb, fwd, bwd, CASE_ARGS(c));
                TL_CHECK(bwd == tile_has_visible(&c, mb, nb), "tile (%lld, %lld): "
                         "backward visits=%d against brute force on " CASE_FMT,
                         (long long)mb, (long long)nb, bwd, CASE_ARGS(c));
            }
        }
    }
}
END_TEST

START_TEST(visible_rows_is_the_union_of_the_cols_windows)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        if (c.m.seqlen_k == 0)
            continue;
        const int64_t lo = tl_range(&r, 0, c.m.seqlen_k - 1);
        const int64_t hi = tl_range(&r, lo, c.m.seqlen_k);
        int64_t row_lo, row_hi;
        fa2_visible_rows(&c.m, lo, hi, &row_lo, &row_hi);
        for (int64_t i = -2; i < c.m.seqlen_q + 2; i++) {
            int seen = 0;
            for (int64_t j = lo; j < hi && !seen && i >= 0 && i < c.m.seqlen_q; j++)
                seen = fa2_mask_visible(&c.m, i, j);
            TL_CHECK(seen == (i >= row_lo && i < row_hi),
                     "cols [%lld, %lld): row %lld sees=%d but range [%lld, %lld) on "
                     CASE_FMT, (long long)lo, (long long)hi, (long long)i, seen,
                     (long long)row_lo, (long long)row_hi, CASE_ARGS(c));
        }
    }
}
END_TEST

/* ---- the mask by hand ------------------------------------------------------ */

static void expect_row(const fa2_mask *m, int64_t row, int64_t first, int64_t last)
{
    for (int64_t j = -1; j <= m->seqlen_k; j++) {
        const int want = j >= first && j <= last;
        ck_assert_msg(fa2_mask_visible(m, row, j) == want,
                      "Nq=%lld Nk=%lld window=(%lld,%lld): row %lld col %lld "
                      "visible=%d, expected %d", (long long)m->seqlen_q,
                      (long long)m->seqlen_k, (long long)m->window_left,
                      (long long)m->window_right, (long long)row, (long long)j,
                      !want, want);
    }
}

START_TEST(causal_is_aligned_to_the_bottom_right)
{
    /* Nq = 2, Nk = 5: row 0 is key 3's query, row 1 key 4's */
    fa2_mask m = fa2_mask_make(2, 5, 1, -1, -1);
    expect_row(&m, 0, 0, 3);
    expect_row(&m, 1, 0, 4);
    /* Nq = 5, Nk = 2: rows 0..2 see nothing, row 3 sees key 0 */
    m = fa2_mask_make(5, 2, 1, -1, -1);
    expect_row(&m, 0, 0, -1);
    expect_row(&m, 2, 0, -1);
    expect_row(&m, 3, 0, 0);
    expect_row(&m, 4, 0, 1);
    /* Nq = Nk: the usual lower triangle */
    m = fa2_mask_make(4, 4, 1, -1, -1);
    expect_row(&m, 0, 0, 0);
    expect_row(&m, 3, 0, 3);
}
END_TEST

START_TEST(window_is_left_and_right_of_the_aligned_diagonal)
{
    /* Nq = Nk = 8, window (2, 1): row 4 sees 2..5 */
    fa2_mask m = fa2_mask_make(8, 8, 0, 2, 1);
    expect_row(&m, 4, 2, 5);
    expect_row(&m, 0, 0, 1);
    expect_row(&m, 7, 5, 7);
    /* causal overrides the right side: window (2, 5) causal = (2, 0) */
    m = fa2_mask_make(8, 8, 1, 2, 5);
    expect_row(&m, 4, 2, 4);
    /* Nq = 3, Nk = 10, window (1, 1): row 0's diagonal is key 7 */
    m = fa2_mask_make(3, 10, 0, 1, 1);
    expect_row(&m, 0, 6, 8);
    expect_row(&m, 2, 8, 9);
    /* only a right bound, and window (0, 0): just the diagonal */
    m = fa2_mask_make(4, 4, 0, -1, 1);
    expect_row(&m, 1, 0, 2);
    m = fa2_mask_make(4, 6, 0, 0, 0);
    expect_row(&m, 1, 3, 3);
    /* a window far wider than the keys is no window */
    m = fa2_mask_make(4, 6, 0, 100, 100);
    expect_row(&m, 0, 0, 5);
    /* Nq = 20, Nk = 5, window (3, 2): row i's diagonal is i - 15, so rows
     * 0..12 see nothing and row 13 sees key 0 */
    m = fa2_mask_make(20, 5, 0, 3, 2);
    expect_row(&m, 12, 0, -1);
    expect_row(&m, 13, 0, 0);
}
END_TEST

START_TEST(mask_make_normalises_unbounded_sides_and_causal)
{
    fa2_mask m = fa2_mask_make(3, 7, 0, -1, -1);
    ck_assert_int_eq(m.window_left, -1);
    ck_assert_int_eq(m.window_right, -1);
    ck_assert_int_eq(m.diag_offset, 4);
    m = fa2_mask_make(3, 7, 1, -1, 9);
    ck_assert_int_eq(m.window_right, 0);
    m = fa2_mask_make(3, 7, 0, -5, -3);
    ck_assert_int_eq(m.window_left, -1);
    ck_assert_int_eq(m.window_right, -1);
}
END_TEST

START_TEST(block_counts_round_up)
{
    ck_assert_int_eq(fa2_num_blocks(0, 64), 0);
    ck_assert_int_eq(fa2_num_blocks(1, 64), 1);
    ck_assert_int_eq(fa2_num_blocks(64, 64), 1);
    ck_assert_int_eq(fa2_num_blocks(65, 64), 2);
    ck_assert_int_eq(fa2_num_blocks(7, 1), 7);
    ck_assert_int_eq(fa2_ceil_div((int64_t)1 << 40, 3), (((int64_t)1 << 40) + 2) / 3);
    /* a causal square: block i sees blocks 0..i; with Nq < Nk more */
    fa2_mask m = fa2_mask_make(128, 128, 1, -1, -1);
    fa2_block_range r = fa2_fwd_kv_blocks(&m, 1, 64, 64);
    ck_assert_int_eq(r.lo, 0);
    ck_assert_int_eq(r.hi, 2);
    r = fa2_fwd_kv_blocks(&m, 0, 64, 64);
    ck_assert_int_eq(fa2_block_count(r), 1);
    /* a query block that sees nothing visits nothing */
    m = fa2_mask_make(200, 10, 1, -1, -1);
    r = fa2_fwd_kv_blocks(&m, 0, 64, 64);
    ck_assert_int_eq(fa2_block_count(r), 0);
}
END_TEST

/* ---- the online softmax ---------------------------------------------------- */

static const float C = 0.125f * 1.44269504088896341f; /* scale 1/8, log2 e */

START_TEST(rescale_gives_alpha_zero_on_the_first_tile)
{
    fa2_row_state st = fa2_row_state_init();
    ck_assert(st.m == -INFINITY && st.l == 0.0f);
    float ms;
    const float alpha = fa2_softmax_rescale(&st, 3.0f, C, &ms);
    ck_assert_msg(alpha == 0.0f, "alpha = %g", (double)alpha);
    ck_assert(st.m == 3.0f);
    ck_assert(ms == 3.0f * C);
    /* the tile's max itself has P = 1 (to float rounding) */
    ck_assert_float_eq_tol(fa2_softmax_p(3.0f, C, ms), 1.0f, 1e-6f);
}
END_TEST

START_TEST(rescale_gives_alpha_one_when_the_max_does_not_move)
{
    fa2_row_state st = fa2_row_state_init();
    float ms;
    fa2_softmax_rescale(&st, 5.0f, C, &ms);
    fa2_softmax_accumulate(&st, 0.0f, 1.0f);
    const float ms_before = ms;
    float alpha = fa2_softmax_rescale(&st, 5.0f, C, &ms);
    ck_assert_msg(alpha == 1.0f, "alpha = %a", (double)alpha);
    alpha = fa2_softmax_rescale(&st, -2.0f, C, &ms);
    ck_assert_msg(alpha == 1.0f, "alpha = %a", (double)alpha);
    ck_assert(st.m == 5.0f && ms == ms_before);
    /* a larger max shrinks the past by exp2((m_old - m_new) c) */
    alpha = fa2_softmax_rescale(&st, 9.0f, C, &ms);
    ck_assert_double_eq_tol(alpha, exp2((5.0 - 9.0) * C), 1e-6);
    ck_assert(st.m == 9.0f);
}
END_TEST

START_TEST(rows_that_see_only_masked_scores_stay_finite_and_give_lse_inf)
{
    fa2_row_state st = fa2_row_state_init();
    float ms;
    /* the max subtracted for a row that has seen nothing is 0, not -inf */
    ck_assert(fa2_softmax_max_scaled(-INFINITY, C) == 0.0f);
    ck_assert(fa2_softmax_max_scaled(4.0f, C) == 4.0f * C);
    ck_assert(fa2_softmax_p(-INFINITY, C, fa2_softmax_max_scaled(-INFINITY, C)) == 0.0f);
    /* a fully masked tile: max -inf */
    float alpha = fa2_softmax_rescale(&st, -INFINITY, C, &ms);
    ck_assert_msg(!isnan(alpha) && alpha == 0.0f, "alpha = %g", (double)alpha);
    ck_assert_msg(isfinite(ms), "max_scaled = %g", (double)ms);
    const float p = fa2_softmax_p(-INFINITY, C, ms);
    ck_assert_msg(p == 0.0f, "P of a masked score = %g", (double)p);
    fa2_softmax_accumulate(&st, alpha, 0.0f);
    ck_assert(st.l == 0.0f && st.m == -INFINITY);
    /* a second one keeps it so */
    alpha = fa2_softmax_rescale(&st, -INFINITY, C, &ms);
    ck_assert(!isnan(alpha) && isfinite(ms));
    fa2_softmax_accumulate(&st, alpha, 0.0f);
    ck_assert(st.l == 0.0f);
    /* end of the row: O = acc * 1 = 0, LSE = +inf */
    ck_assert(fa2_softmax_inv_l(st) == 1.0f);
    ck_assert(fa2_softmax_lse(st, 0.125f) == INFINITY);
}
END_TEST

START_TEST(masked_tile_after_a_real_one_changes_nothing)
{
    fa2_row_state st = fa2_row_state_init();
    float ms;
    float alpha = fa2_softmax_rescale(&st, 2.0f, C, &ms);
    fa2_softmax_accumulate(&st, alpha, fa2_softmax_p(2.0f, C, ms));
    const fa2_row_state before = st;
    alpha = fa2_softmax_rescale(&st, -INFINITY, C, &ms);
    ck_assert(alpha == 1.0f);
    ck_assert(fa2_softmax_p(-INFINITY, C, ms) == 0.0f);
    fa2_softmax_accumulate(&st, alpha, 0.0f);
    ck_assert(st.m == before.m && st.l == before.l);
}
END_TEST

/* Scores split into tiles of random widths, visited in any order, give
 * LSE = scale m + ln l equal to log-sum-exp computed in double. */
START_TEST(online_softmax_over_random_tiles_gives_the_log_sum_exp)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < 200; n++) {
        const int len = (int)tl_range(&r, 1, 300);
        const float scale = (float)(0.05 + tl_unif(&r));
        const float c = (float)((double)scale * 1.4426950408889634);
        const double sigma = 0.5 + 20.0 * tl_unif(&r);
        float s[300];
        double m = -INFINITY;
        for (int j = 0; j < len; j++) {
            s[j] = (float)(sigma * tl_normal(&r));
            if (tl_range(&r, 0, 9) == 0)
                s[j] = -INFINITY; /* masked */
            m = s[j] > m ? s[j] : m;
        }
        double ref = INFINITY;
        if (m > -INFINITY) {
            double l = 0.0;
            for (int j = 0; j < len; j++)
                l += exp((double)scale * (s[j] - m));
            ref = (double)scale * m + log(l);
        }
        fa2_row_state st = fa2_row_state_init();
        int hi = len;
        while (hi > 0) { /* tiles from the end, as the kernel visits them */
            const int lo = hi - (int)tl_range(&r, 1, hi);
            float tmax = -INFINITY, ms, sum = 0.0f;
            for (int j = lo; j < hi; j++)
                tmax = s[j] > tmax ? s[j] : tmax;
            const float alpha = fa2_softmax_rescale(&st, tmax, c, &ms);
            for (int j = lo; j < hi; j++) {
                const float p = fa2_softmax_p(s[j], c, ms);
                /* P <= 1 up to the rounding of m c, which the FMA does
                 * not see: exp2(half an ulp of |m c|) */
                TL_CHECK(!isnan(p) && p >= 0.0f &&
                         p <= 1.0 + fabs((double)ms) * 0x1p-23 + 0x1p-23,
                         "P = %a with max_scaled %g", (double)p, (double)ms);
                sum += p;
            }
            fa2_softmax_accumulate(&st, alpha, sum);
            hi = lo;
        }
        const double lse = fa2_softmax_lse(st, scale);
        if (isinf(ref)) {
            TL_CHECK(lse == INFINITY, "all masked: LSE = %g", lse);
        } else {
            TL_CHECK(fabs(lse - ref) <= 1e-5 * (1.0 + fabs(ref)),
                     "LSE %.9g, log-sum-exp %.9g (len %d, sigma %g; FA2_TEST_SEED=%llu)",
                     lse, ref, len, sigma, (unsigned long long)tl_seed());
            TL_CHECK(fabs(1.0 / fa2_softmax_inv_l(st) - st.l) <= 1e-6 * st.l,
                     "inv_l is not 1 / l");
        }
    }
}
END_TEST

/* ---- the deterministic backward's dQ order ---------------------------------- */

/* s_j lies in key block j's query range and never decreases with j; the
 * rotated walk visits every query block of the range exactly once. */
START_TEST(bwd_q_start_is_in_range_nondecreasing_and_the_walk_a_permutation)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        const int64_t nblocks = fa2_num_blocks(c.m.seqlen_k, c.bn);
        const int64_t mblocks = fa2_num_blocks(c.m.seqlen_q, c.bm);
        int64_t last = -1;
        for (int64_t nb = 0; nb < nblocks; nb++) {
            const fa2_block_range qr = fa2_bwd_q_blocks(&c.m, nb, c.bm, c.bn);
            if (qr.hi <= qr.lo)
                continue;
            const int64_t s = fa2_bwd_q_start(&c.m, nb, c.bm, c.bn);
            TL_CHECK(s >= qr.lo && s < qr.hi, "key block %lld starts at %lld outside "
                     "[%lld, %lld) on " CASE_FMT, (long long)nb, (long long)s,
                     (long long)qr.lo, (long long)qr.hi, CASE_ARGS(c));
            TL_CHECK(s >= last, "key block %lld starts at %lld, before its "
                     "predecessor's %lld on " CASE_FMT, (long long)nb,
                     (long long)s, (long long)last, CASE_ARGS(c));
            last = s;
            char seen[512] = {0};
            for (int64_t st = 0; st < fa2_block_count(qr); st++) {
                const int64_t i = fa2_bwd_q_block_at(qr, s, st);
                TL_CHECK(i >= qr.lo && i < qr.hi && i < mblocks && i < 512 && !seen[i],
                         "key block %lld step %lld visits %lld (outside the range or "
                         "twice) on " CASE_FMT, (long long)nb, (long long)st,
                         (long long)i, CASE_ARGS(c));
                seen[i] = 1;
            }
        }
    }
}
END_TEST

/* For every query block, the turns of the key blocks that see it chain up:
 * in each chain exactly one key block waits for nobody, every other waits
 * for the key block one above it (which is in the same chain), so each
 * chain is summed in descending j and a key block only ever waits for one
 * launched before it (key blocks launch in descending j). */
START_TEST(bwd_dq_turns_form_two_descending_chains_per_query_block)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP; n++) {
        mask_case c;
        random_case(&r, &c);
        const int64_t mblocks = fa2_num_blocks(c.m.seqlen_q, c.bm);
        for (int64_t mb = 0; mb < mblocks; mb++) {
            const fa2_block_range kv = fa2_fwd_kv_blocks(&c.m, mb, c.bm, c.bn);
            int heads[2] = {0, 0};
            int64_t prev_chain = 0;
            for (int64_t nb = kv.hi - 1; nb >= kv.lo; nb--) {
                const fa2_dq_turn t = fa2_bwd_dq_turn(&c.m, mb, nb, c.bm, c.bn);
                TL_CHECK(t.mine == nb + 1, "mine is %lld for key block %lld",
                         (long long)t.mine, (long long)nb);
                /* chain 1 (after the wrap) is the top of the range */
                TL_CHECK(t.chain >= 0 && t.chain <= 1 && (nb == kv.hi - 1 ||
                         t.chain <= prev_chain), "query block %lld: key block %lld "
                         "in chain %d below one in chain %lld on " CASE_FMT,
                         (long long)mb, (long long)nb, t.chain,
                         (long long)prev_chain, CASE_ARGS(c));
                if (t.expect == 0) {
                    heads[t.chain]++;
                } else {
                    TL_CHECK(t.expect == nb + 2, "query block %lld: key block %lld "
                             "waits for %lld, not for the key block above it on "
                             CASE_FMT, (long long)mb, (long long)nb,
                             (long long)t.expect - 1, CASE_ARGS(c));
                    const fa2_dq_turn up = fa2_bwd_dq_turn(&c.m, mb, nb + 1, c.bm, c.bn);
                    TL_CHECK(up.chain == t.chain, "query block %lld: key block %lld "
                             "waits for a key block of the other chain on " CASE_FMT,
                             (long long)mb, (long long)nb, CASE_ARGS(c));
                }
                /* the wait is exactly "j + 1 sees i and is in my chain" */
                const int up_same = nb + 1 < kv.hi &&
                    fa2_bwd_dq_turn(&c.m, mb, nb + 1, c.bm, c.bn).chain == t.chain;
                TL_CHECK(up_same == (t.expect != 0), "query block %lld: key block "
                         "%lld's wait does not match its chain on " CASE_FMT,
                         (long long)mb, (long long)nb, CASE_ARGS(c));
                prev_chain = t.chain;
            }
            TL_CHECK(heads[0] <= 1 && heads[1] <= 1, "query block %lld: %d and %d "
                     "chain heads on " CASE_FMT, (long long)mb, heads[0], heads[1],
                     CASE_ARGS(c));
        }
    }
}
END_TEST

/* The whole protocol run by a scheduler that holds at most `slots` key
 * blocks at a time, launched in descending j (the CUDA launch order), each
 * walking its rotated query blocks and waiting at every dQ block for its
 * turn: it always finishes (no deadlock, even one block at a time), every
 * (query block, chain) sees its adds in descending j, and with all key
 * blocks resident and no mask (nk <= nq) nobody ever waits: the fixed order
 * is the order in which the shares arrive anyway. */
enum { SIM_MAX = 64 };

static int run_turns(const mask_case *c, int slots, int64_t *waits)
{
    const int64_t nb_all = fa2_num_blocks(c->m.seqlen_k, c->bn);
    const int64_t mblocks = fa2_num_blocks(c->m.seqlen_q, c->bm);
    int64_t turn[SIM_MAX][2], step[SIM_MAX], last_j[SIM_MAX][2];
    int resident[SIM_MAX] = {0};
    for (int64_t i = 0; i < mblocks; i++)
        turn[i][0] = turn[i][1] = 0, last_j[i][0] = last_j[i][1] = INT64_MAX;
    int64_t next = nb_all - 1, done = 0, live = 0;
    *waits = 0;
    for (int64_t j = 0; j < nb_all; j++)
        step[j] = 0;
    for (int64_t tick = 0; done < nb_all; tick++) {
        while (live < slots && next >= 0)
            resident[next--] = 1, live++;
        int moved = 0;
        int64_t adds[SIM_MAX][2];
        for (int64_t j = 0; j < nb_all; j++) {
            if (!resident[j])
                continue;
            const fa2_block_range qr = fa2_bwd_q_blocks(&c->m, j, c->bm, c->bn);
            if (step[j] >= fa2_block_count(qr)) {
                resident[j] = 0, live--, done++, moved = 1;
                continue;
            }
            const int64_t s = fa2_bwd_q_start(&c->m, j, c->bm, c->bn);
            const int64_t i = fa2_bwd_q_block_at(qr, s, step[j]);
            const fa2_dq_turn t = fa2_bwd_dq_turn(&c->m, i, j, c->bm, c->bn);
            adds[j][0] = -1;
            if (turn[i][t.chain] == t.expect) {
                adds[j][0] = i, adds[j][1] = t.chain;
            } else {
                (*waits)++;
            }
        }
        /* all adds of this tick land together (each block one step) */
        for (int64_t j = 0; j < nb_all; j++) {
            if (!resident[j] || adds[j][0] < 0)
                continue;
            const int64_t i = adds[j][0], ch = adds[j][1];
            const fa2_dq_turn t = fa2_bwd_dq_turn(&c->m, i, j, c->bm, c->bn);
            TL_CHECK(turn[i][ch] == t.expect && j < last_j[i][ch], "key blocks %lld "
                     "and %lld add to query block %lld out of order", (long long)j,
                     (long long)last_j[i][ch], (long long)i);
            turn[i][ch] = t.mine, last_j[i][ch] = j, step[j]++, moved = 1;
        }
        if (!moved)
            return 0; /* nobody can move: deadlock */
    }
    /* every key block that sees query block i added exactly once */
    for (int64_t i = 0; i < mblocks; i++) {
        const fa2_block_range kv = fa2_fwd_kv_blocks(&c->m, i, c->bm, c->bn);
        int64_t lo = INT64_MAX;
        for (int ch = 0; ch < 2; ch++)
            if (last_j[i][ch] < lo)
                lo = last_j[i][ch];
        TL_CHECK(kv.hi <= kv.lo || lo == kv.lo, "query block %lld: the last add "
                 "came from key block %lld, expected %lld", (long long)i,
                 (long long)lo, (long long)kv.lo);
    }
    return 1;
}

START_TEST(bwd_dq_turns_never_deadlock_and_cost_no_wait_without_a_mask)
{
    tl_rng r;
    TL_RNG(&r);
    for (int n = 0; n < CASES_PER_LOOP / 4; n++) {
        mask_case c;
        random_case(&r, &c);
        if (fa2_num_blocks(c.m.seqlen_q, c.bm) > SIM_MAX ||
            fa2_num_blocks(c.m.seqlen_k, c.bn) > SIM_MAX)
            continue;
        const int slots[3] = {1, 3, SIM_MAX};
        for (int k = 0; k < 3; k++) {
            int64_t waits;
            TL_CHECK(run_turns(&c, slots[k], &waits), "deadlock with %d resident "
                     "key blocks on " CASE_FMT, slots[k], CASE_ARGS(c));
            const int unmasked = c.m.window_left < 0 && c.m.window_right < 0;
            if (k == 2 && unmasked &&
                fa2_num_blocks(c.m.seqlen_k, c.bn) <= fa2_num_blocks(c.m.seqlen_q, c.bm))
                TL_CHECK(waits == 0, "%lld waits with every key block resident "
                         "and no mask on " CASE_FMT, (long long)waits, CASE_ARGS(c));
        }
    }
    /* the causal case runs wait-free too: its walk never wraps */
    mask_case c;
    c.causal = 1, c.wl = -1, c.wr = 0, c.bm = 64, c.bn = 128;
    c.m = fa2_mask_make(4096, 4096, 1, -1, 0);
    int64_t waits;
    TL_CHECK(run_turns(&c, SIM_MAX, &waits) && waits == 0, "causal 4096, 64x128: "
             "%lld waits", (long long)waits);
    c.causal = 0, c.wr = -1;
    c.m = fa2_mask_make(4096, 4096, 0, -1, -1);
    TL_CHECK(run_turns(&c, SIM_MAX, &waits) && waits == 0, "4096, 64x128: "
             "%lld waits", (long long)waits);
}
END_TEST

/* The pairs schedule (gpu/fwd_kernel_sm90.cuh): a head's 2 ceil(M/2) slots
 * name each of its M query blocks once (an odd M leaves one slot empty),
 * and under a causal mask of equal lengths the two blocks of every full
 * pair visit the same number of key blocks together (block_m 128, block_n
 * 128 or 64: the kernel's tiles at head dims 128 and 256), so a static
 * round robin of pairs is balanced. */
START_TEST(pair_slots_name_every_query_block_once_and_causal_pairs_cost_the_same)
{
    enum { MAX_M = 70 };
    for (int M = 1; M <= MAX_M; M++) {
        int seen[MAX_M] = {0}, empty = 0;
        const int slots = 2 * fa2_pair_count(M);
        for (int r = 0; r < slots; r++) {
            const int m = fa2_pair_slot_block(r, M);
            if (m < 0) {
                empty++;
                continue;
            }
            TL_CHECK(m < M, "M %d slot %d: block %d", M, r, m);
            seen[m]++;
        }
        TL_CHECK(empty == (M & 1), "M %d: %d empty slots", M, empty);
        for (int m = 0; m < M; m++)
            TL_CHECK(seen[m] == 1, "M %d: block %d named %d times", M, m, seen[m]);
        const int block_ns[2] = {128, 64};
        for (int b = 0; b < 2; b++) {
            const fa2_mask mk = fa2_mask_make((int64_t)M * 128, (int64_t)M * 128, 1, -1, -1);
            int64_t first = -1;
            for (int u = 0; u < M / 2; u++) { /* the full pairs */
                const int64_t cost =
                    fa2_block_count(fa2_fwd_kv_blocks(&mk, fa2_pair_slot_block(2 * u, M), 128,
                                                      block_ns[b])) +
                    fa2_block_count(fa2_fwd_kv_blocks(&mk, fa2_pair_slot_block(2 * u + 1, M),
                                                      128, block_ns[b]));
                if (first < 0)
                    first = cost;
                TL_CHECK(cost == first, "M %d block_n %d: pair %d visits %lld key blocks, "
                         "pair 0 %lld", M, block_ns[b], u, (long long)cost, (long long)first);
            }
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tile");
    TCase *tb = tcase_create("blocks");
    tcase_set_timeout(tb, 60);
    tcase_add_loop_test(tb, fwd_kv_blocks_visits_exactly_the_blocks_with_a_visible_key, 0, LOOPS);
    tcase_add_loop_test(tb, tile_needs_mask_is_zero_exactly_when_every_pair_is_visible, 0, LOOPS);
    tcase_add_loop_test(tb, bwd_q_blocks_is_the_transpose_of_fwd_kv_blocks, 0, LOOPS);
    tcase_add_loop_test(tb, visible_cols_is_the_union_of_the_rows_windows, 0, LOOPS);
    tcase_add_loop_test(tb, visible_rows_is_the_union_of_the_cols_windows, 0, LOOPS);
    suite_add_tcase(s, tb);
    TCase *to = tcase_create("dq order");
    tcase_set_timeout(to, 60);
    tcase_add_loop_test(to, bwd_q_start_is_in_range_nondecreasing_and_the_walk_a_permutation, 0, LOOPS);
    tcase_add_loop_test(to, bwd_dq_turns_form_two_descending_chains_per_query_block, 0, LOOPS);
    tcase_add_loop_test(to, bwd_dq_turns_never_deadlock_and_cost_no_wait_without_a_mask, 0, LOOPS / 4);
    suite_add_tcase(s, to);
    TCase *tm = tcase_create("mask");
    tcase_add_test(tm, causal_is_aligned_to_the_bottom_right);
    tcase_add_test(tm, window_is_left_and_right_of_the_aligned_diagonal);
    tcase_add_test(tm, mask_make_normalises_unbounded_sides_and_causal);
    tcase_add_test(tm, block_counts_round_up);
    tcase_add_test(tm, pair_slots_name_every_query_block_once_and_causal_pairs_cost_the_same);
    suite_add_tcase(s, tm);
    TCase *ts = tcase_create("softmax");
    tcase_add_test(ts, rescale_gives_alpha_zero_on_the_first_tile);
    tcase_add_test(ts, rescale_gives_alpha_one_when_the_max_does_not_move);
    tcase_add_test(ts, rows_that_see_only_masked_scores_stay_finite_and_give_lse_inf);
    tcase_add_test(ts, masked_tile_after_a_real_one_changes_nothing);
    tcase_add_loop_test(ts, online_softmax_over_random_tiles_gives_the_log_sum_exp, 0, 5);
    suite_add_tcase(s, ts);
    return tl_run_suite(s);
}
