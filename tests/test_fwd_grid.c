/*
 * test_fwd_grid.c — the forward pass against the float64 oracle over a grid
 * of problems, under doc/design.md's numerics contract: for O and for LSE,
 *
 *     max|tiled - oracle| <= 2 * max|standard - oracle| + floor(dtype),
 *
 * and for every backend: every output element written, nothing written
 * outside the output views, LSE = +inf exactly on rows that see no key
 * (where O = 0 exactly).
 *
 * The axes (dtype, head dim, causal, window, GQA heads, seqlens, batch or
 * variable lengths, input and output layouts, tile sizes, score magnitude,
 * softmax scale) are not crossed in full: a fixed greedy pairwise design
 * covers every pair of values of every two axes, three times over with
 * different completions. The design is the same in every run (so case N is
 * always the same problem); the data is fresh random data each run.
 */
#include "config.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the axes ------------------------------------------------------------- */

static const fa2_dtype dtypes[] = {FA2_DTYPE_FP32, FA2_DTYPE_FP16, FA2_DTYPE_BF16};
static const int head_dims[] = {8, 32, 40, 64, 96, 128, 256};
static const int causals[] = {0, 1};
/* (left, right); causal forces right = 0 */
static const int64_t windows[][2] = {{-1, -1}, {16, 0}, {7, 3}, {0, -1}, {-1, 2}};
/* (heads_q, heads_kv): MHA, MQA, GQA */
static const int64_t heads[][2] = {{1, 1}, {8, 1}, {8, 2}, {8, 8}};
/* (seqlen_q, seqlen_k): equal, longer and shorter queries, tile multiples
 * and not, a single row, a single key */
static const int64_t shapes[][2] = {{1, 1},    {1, 97},   {97, 1},   {37, 37},
                                    {64, 64},  {65, 130}, {130, 65}, {150, 100},
                                    {100, 150}, {13, 77}};
enum { FIXED_B1, FIXED_B2, VARLEN_A, VARLEN_B, N_BATCHING };
/* tiled backend's tiles besides the default: (block_m, block_n) */
static const int tiles[][2] = {{0, 0}, {16, 32}, {32, 16}, {7, 13}, {128, 16}, {1, 64}};
/* std of q: scores scale*q.k then have std ~ q_sigma (default scale); 4
 * makes the softmax peaky, 0.5 flat */
static const double sigmas[] = {0.5, 1.0, 2.5, 4.0};
static const int explicit_scales[] = {0, 1};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

enum {
    AX_DTYPE,
    AX_HEAD_DIM,
    AX_CAUSAL,
    AX_WINDOW,
    AX_HEADS,
    AX_SHAPE,
    AX_BATCHING,
    AX_LAYOUT,
    AX_OUT_LAYOUT,
    AX_TILES,
    AX_SIGMA,
    AX_SCALE,
    N_AXES
};

static const int axis_size[N_AXES] = {
    COUNT(dtypes), COUNT(head_dims), COUNT(causals), COUNT(windows),
    COUNT(heads),  COUNT(shapes),    N_BATCHING,     TL_LAYOUT_COUNT,
    TL_LAYOUT_COUNT, COUNT(tiles),   COUNT(sigmas),  COUNT(explicit_scales)};

/* ---- a pairwise design ------------------------------------------------------ */

enum { MAX_VALUES = 12, MAX_CASES = 600, ROUNDS = 3 };

static int n_cases;
static unsigned char cases[MAX_CASES][N_AXES];
static unsigned char covered[N_AXES][MAX_VALUES][N_AXES][MAX_VALUES];

static int new_pairs(const int *c, int axis, int value)
{
    int n = 0;
    for (int b = 0; b < N_AXES; b++)
        if (b != axis && c[b] >= 0 && !covered[axis][value][b][c[b]])
            n++;
    return n;
}

static void cover(const int *c, int *uncovered)
{
    for (int a = 0; a < N_AXES; a++)
        for (int b = a + 1; b < N_AXES; b++)
            if (!covered[a][c[a]][b][c[b]]) {
                covered[a][c[a]][b][c[b]] = covered[b][c[b]][a][c[a]] = 1;
                (*uncovered)--;
            }
}

/* Greedy (AETG-style): each new case starts from an uncovered pair and
 * completes the other axes with the values that cover the most new pairs;
 * the best of several candidates is kept. Each round covers every pair. */
static void make_design(void)
{
    tl_rng r;
    tl_rng_fixed(&r, 0xfa2f0a2dull); /* fixed: the design, not the data */
    n_cases = 0;
    for (int round = 0; round < ROUNDS; round++) {
        memset(covered, 0, sizeof covered);
        int uncovered = 0;
        for (int a = 0; a < N_AXES; a++)
            for (int b = a + 1; b < N_AXES; b++)
                uncovered += axis_size[a] * axis_size[b];
        while (uncovered > 0 && n_cases < MAX_CASES) {
            int best[N_AXES], best_score = -1;
            for (int cand = 0; cand < 24; cand++) {
                int c[N_AXES];
                for (int a = 0; a < N_AXES; a++)
                    c[a] = -1;
                /* a random uncovered pair to start from */
                int pick = (int)tl_range(&r, 0, uncovered - 1);
                for (int a = 0; a < N_AXES && c[0] < 0 && pick >= 0; a++)
                    for (int b = a + 1; b < N_AXES && pick >= 0; b++)
                        for (int va = 0; va < axis_size[a] && pick >= 0; va++)
                            for (int vb = 0; vb < axis_size[b] && pick >= 0; vb++)
                                if (!covered[a][va][b][vb] && pick-- == 0) {
                                    c[a] = va;
                                    c[b] = vb;
                                }
                int order[N_AXES];
                for (int a = 0; a < N_AXES; a++)
                    order[a] = a;
                for (int a = N_AXES - 1; a > 0; a--) {
                    const int j = (int)tl_range(&r, 0, a), t = order[a];
                    order[a] = order[j];
                    order[j] = t;
                }
                for (int oi = 0; oi < N_AXES; oi++) {
                    const int ax = order[oi];
                    if (c[ax] >= 0)
                        continue;
                    int bv = 0, bs = -1;
                    const int start = (int)tl_range(&r, 0, axis_size[ax] - 1);
                    for (int k = 0; k < axis_size[ax]; k++) {
                        const int v = (start + k) % axis_size[ax];
                        const int sc = new_pairs(c, ax, v);
                        if (sc > bs) {
                            bs = sc;
                            bv = v;
                        }
                    }
                    c[ax] = bv;
                }
                int score = 0;
                for (int a = 0; a < N_AXES; a++)
                    for (int b = a + 1; b < N_AXES; b++)
                        score += !covered[a][c[a]][b][c[b]];
                if (score > best_score) {
                    best_score = score;
                    memcpy(best, c, sizeof best);
                }
            }
            for (int a = 0; a < N_AXES; a++)
                cases[n_cases][a] = (unsigned char)best[a];
            n_cases++;
            cover(best, &uncovered);
        }
    }
}

/* The problem of case i (before the tile sizes, which the test applies). */
static void case_spec(int i, tl_spec *s, int *block_m, int *block_n)
{
    const unsigned char *c = cases[i];
    tl_spec_init(s);
    s->dtype = dtypes[c[AX_DTYPE]];
    s->head_dim = head_dims[c[AX_HEAD_DIM]];
    s->causal = causals[c[AX_CAUSAL]];
    s->window_left = windows[c[AX_WINDOW]][0];
    s->window_right = windows[c[AX_WINDOW]][1];
    s->heads_q = heads[c[AX_HEADS]][0];
    s->heads_kv = heads[c[AX_HEADS]][1];
    const int64_t nq = shapes[c[AX_SHAPE]][0], nk = shapes[c[AX_SHAPE]][1];
    switch (c[AX_BATCHING]) {
    case FIXED_B1:
    case FIXED_B2:
        s->batch = c[AX_BATCHING] == FIXED_B1 ? 1 : 2;
        s->seqlen_q = nq;
        s->seqlen_k = nk;
        break;
    case VARLEN_A: { /* an empty sequence and a length-1 sequence */
        const int64_t lq[] = {nq, 0, 1, nq / 2 + 1}, lk[] = {nk, 0, 1, nk / 3 + 1};
        s->num_seqs = 4;
        memcpy(s->lens_q, lq, sizeof lq);
        memcpy(s->lens_k, lk, sizeof lk);
        break;
    }
    default: { /* rows without keys, keys without rows, one row */
        const int64_t lq[] = {1, 0, nq, 5, nq / 3 + 2}, lk[] = {nk, 7, nk, 0, nk};
        s->num_seqs = 5;
        memcpy(s->lens_q, lq, sizeof lq);
        memcpy(s->lens_k, lk, sizeof lk);
        break;
    }
    }
    s->layout = (tl_layout)c[AX_LAYOUT];
    s->out_layout = (tl_layout)c[AX_OUT_LAYOUT];
    *block_m = tiles[c[AX_TILES]][0];
    *block_n = tiles[c[AX_TILES]][1];
    s->q_sigma = sigmas[c[AX_SIGMA]];
    if (explicit_scales[c[AX_SCALE]])
        s->softmax_scale = (float)(1.3 / sqrt((double)s->head_dim));
}

/* Run backend b on p and check what every backend owes: outputs written,
 * nothing outside them, LSE +inf exactly on rows that see no key. */
static void run_measure(tl_problem *p, fa2_backend b, const char *who, tl_err *e)
{
    tl_problem_run_ok(p, b);
    tl_measure(p, e);
    tl_check_written(p, e, who);
}

/* The maximum error of a tiny problem (one row of head dim 8 holds 8
 * outputs) is a maximum over a handful of rounding errors, too noisy for a
 * factor of 2 to separate two equally good implementations. A problem with
 * fewer than MIN_SAMPLE outputs that see a key is therefore drawn again,
 * with fresh data, until the maxima are taken over at least that many. */
enum { MIN_SAMPLE = 1024, MAX_DRAWS = 128 };

/* Standard attention and the tiled backend (default tiles, and block_m x
 * block_n when given) against the oracle on fresh draws of spec s. */
static void check_against_standard(const tl_spec *s, int block_m, int block_n,
                                   tl_rng *r)
{
    tl_err es = {0}, et = {0}, ec = {0}, e;
    tl_problem p;
    int64_t sample = 0;
    for (int draw = 0; draw < MAX_DRAWS && (draw == 0 || sample < MIN_SAMPLE);
         draw++) {
        if (draw > 0)
            tl_problem_free(&p);
        tl_problem_init(&p, s, r);
        const int64_t n = tl_visible_outputs(&p);
        if (n == 0 && draw == 0)
            sample = MIN_SAMPLE; /* no key seen anywhere: one draw says it */
        sample += n;
        run_measure(&p, FA2_BACKEND_CPU_STANDARD, "standard", &e);
        tl_err_merge(&es, &e);
        run_measure(&p, FA2_BACKEND_CPU_TILED, "tiled", &e);
        tl_err_merge(&et, &e);
        if (block_m) {
            p.args.block_m = block_m;
            p.args.block_n = block_n;
            run_measure(&p, FA2_BACKEND_CPU_TILED, "tiled (custom tiles)", &e);
            tl_err_merge(&ec, &e);
        }
    }
    tl_check_bound(&p, &et, &es, "tiled");
    if (block_m) {
        char who[48];
        snprintf(who, sizeof who, "tiled %dx%d", block_m, block_n);
        tl_check_bound(&p, &ec, &es, who);
    }
    tl_problem_free(&p);
}

/* ---- the tests ------------------------------------------------------------ */

START_TEST(tiled_error_is_within_twice_standard_error_against_the_oracle)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    int bm, bn;
    case_spec(_i, &s, &bm, &bn);
    check_against_standard(&s, bm, bn, &r);
}
END_TEST

/* Tile sizes against every kind of mask: the tile logic decides which
 * blocks are visited and which need the element mask, so odd tiles (not
 * dividing the seqlens, 1-wide, wider than the sequence) must all agree. */
static const int custom_tiles[][2] = {{16, 32}, {32, 16}, {7, 13}, {13, 7}, {1, 1},
                                      {1, 64},  {64, 1},  {128, 128}, {200, 3}};
enum { N_MASKS = 5 };

START_TEST(tiled_on_any_tile_size_is_within_twice_standard_error)
{
    tl_rng r;
    TL_RNG(&r);
    const int t = _i / N_MASKS, mask = _i % N_MASKS;
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dtypes[_i % COUNT(dtypes)];
    s.head_dim = 32;
    s.heads_q = 2;
    s.heads_kv = 1;
    s.batch = 1;
    s.seqlen_q = tl_range(&r, 1, 90);
    s.seqlen_k = tl_range(&r, 1, 90);
    s.q_sigma = 2.0;
    switch (mask) {
    case 0: break;
    case 1: s.causal = 1; break;
    case 2: s.window_left = 7; s.window_right = 3; break;
    case 3: s.causal = 1; s.window_left = 5; break;
    default: { /* variable lengths, one of them empty */
        s.num_seqs = 3;
        s.lens_q[0] = s.seqlen_q; s.lens_k[0] = s.seqlen_k;
        s.lens_q[1] = 0; s.lens_k[1] = tl_range(&r, 0, 20);
        s.lens_q[2] = tl_range(&r, 1, 40); s.lens_k[2] = tl_range(&r, 1, 40);
        s.causal = 1;
        break;
    }
    }
    check_against_standard(&s, custom_tiles[t][0], custom_tiles[t][1], &r);
}
END_TEST

/* The grid is what it claims: every value of every axis appears, and every
 * pair of values of two axes appears together in some case. */
START_TEST(design_covers_every_pair_of_axis_values)
{
    for (int a = 0; a < N_AXES; a++)
        for (int b = a + 1; b < N_AXES; b++)
            for (int va = 0; va < axis_size[a]; va++)
                for (int vb = 0; vb < axis_size[b]; vb++) {
                    int found = 0;
                    for (int i = 0; i < n_cases && !found; i++)
                        found = cases[i][a] == va && cases[i][b] == vb;
                    ck_assert_msg(found, "no case has axis %d = %d with axis "
                                  "%d = %d", a, va, b, vb);
                }
    ck_assert_int_ge(n_cases, 200);
}
END_TEST

int main(void)
{
    make_design();
    Suite *s = suite_create("fwd_grid");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, design_covers_every_pair_of_axis_values);
    tcase_add_loop_test(tc, tiled_error_is_within_twice_standard_error_against_the_oracle,
                        0, n_cases);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("tiles");
    tcase_set_timeout(tt, 120);
    tcase_add_loop_test(tt, tiled_on_any_tile_size_is_within_twice_standard_error, 0,
                        COUNT(custom_tiles) * N_MASKS);
    suite_add_tcase(s, tt);
    return tl_run_suite(s);
}
