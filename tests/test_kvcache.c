/*
 * test_kvcache.c — the forward over a KV cache (fa2_fwd_kvcache) against
 * its float64 oracle, under doc/design.md's numerics contract:
 *
 *     max|tiled - oracle| <= 2 * max|standard - oracle| + floor(dtype)
 *
 * for O and LSE, over a grid of caches: contiguous and paged (pages of 16
 * to 256 slots, random block tables over shuffled pages, padded table
 * rows), empty and length-1 caches, appends that cross a page boundary,
 * GQA 8/1, 8/2 and MHA, causal, windows, num_splits 1 .. 16 and the
 * library's choice, one or four key warps, several key tiles. For every
 * backend: every output written, +inf LSE and zero O exactly on rows that see no key, and the
 * caches after the call equal, byte for byte, to the test's own append.
 * Also the shared maths (lib/fa2_kvcache.h): the LSE merge (exact up to
 * rounding, empty and non-finite parts), the split of a key range, the
 * default split count; and NaN propagation through the split-KV merge.
 */
#include "config.h"
#include "kvlib.h"

#include "fa2_kvcache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const fa2_dtype dtypes[] = {FA2_DTYPE_FP32, FA2_DTYPE_FP16, FA2_DTYPE_BF16};
static const int64_t page_sizes[] = {0, 16, 32, 64, 128, 256}; /* 0: contiguous */
static const int64_t heads[][2] = {{8, 1}, {8, 2}, {4, 4}, {1, 1}};
static const int64_t seqlens_q[] = {1, 4, 8, 3};
static const int64_t head_dims[] = {32, 64, 128, 40};
static const int64_t windows[][2] = {{-1, -1}, {-1, -1}, {40, 0}, {5, 3}, {-1, 2}};
static const int splits[] = {0, 1, 2, 3, 5, 16, 7, 4};
static const int block_ns[] = {0, 16, 32, 64};

enum { GRID_CASES = 144 };

/* Case i of the grid: the axes cycle with co-prime periods, so every pair
 * of values of two axes meets within the grid; the data is fresh each run. */
static void grid_spec(int i, kv_spec *s, tl_rng *r)
{
    kv_spec_init(s);
    s->dtype = dtypes[i % COUNT(dtypes)];
    s->page_size = page_sizes[(i / 3) % COUNT(page_sizes)];
    s->heads_q = heads[i % COUNT(heads)][0];
    s->heads_kv = heads[i % COUNT(heads)][1];
    s->seqlen_q = seqlens_q[(i / 2) % COUNT(seqlens_q)];
    s->head_dim = head_dims[(i / 13) % COUNT(head_dims)];
    s->causal = (i / 5) % 2;
    s->window_left = windows[i % COUNT(windows)][0];
    s->window_right = windows[i % COUNT(windows)][1];
    s->num_splits = splits[(i / 7) % COUNT(splits)];
    s->block_n = block_ns[(i / 11) % COUNT(block_ns)];
    /* four key warps on every other case with decode's few packed rows */
    if (s->seqlen_q * (s->heads_q / s->heads_kv) <= FA2_KVCACHE_KEY_WARPS_ROWS && i % 2)
        s->key_warps = FA2_KVCACHE_KEY_WARPS_MAX;
    s->num_threads = 1 + i % 3;
    s->batch = 1 + i % 3;
    s->q_sigma = (i % 4 == 3) ? 3.0 : 1.0;
    s->seqlen_new = i % 5 == 0 ? 0 : (i % 7 == 3 ? 2 : s->seqlen_q);
    kv_spec_draw_cache(s, i, 6, 40, 420, r);
}

/* Run standard, tiled and oracle on p; check all three, bound the tiled. */
static void check_all_backends(kv_problem *p)
{
    kv_err std, tiled, oracle;
    fa2_status st = kv_problem_run(p, FA2_BACKEND_CPU_STANDARD);
    ck_assert_msg(st == FA2_OK, "standard: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p->desc);
    kv_measure(p, &std);
    kv_check_outputs(p, &std, "standard");

    st = kv_problem_run(p, FA2_BACKEND_CPU_ORACLE);
    ck_assert_msg(st == FA2_OK, "oracle: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p->desc);
    kv_measure(p, &oracle);
    kv_check_outputs(p, &oracle, "oracle");
    /* the oracle backend is the float64 oracle rounded once */
    ck_assert_msg(oracle.o_max <= tl_unit_roundoff(p->s.dtype) * 4 &&
                  oracle.lse_max <= 1e-5, "oracle backend off its float64 self "
                  "by %g / %g on %s", oracle.o_max, oracle.lse_max, p->desc);

    st = kv_problem_run(p, FA2_BACKEND_CPU_TILED);
    ck_assert_msg(st == FA2_OK, "tiled: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p->desc);
    kv_measure(p, &tiled);
    kv_check_outputs(p, &tiled, "tiled");
    kv_check_bound(p, &tiled, &std, "tiled");
}

START_TEST(tiled_is_within_twice_standard_error_on_a_grid_of_caches)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_problem p;
    grid_spec(_i, &s, &r);
    kv_problem_init(&p, &s, &r);
    check_all_backends(&p);
    kv_problem_free(&p);
}
END_TEST

/* Every split count gives the same attention up to rounding: the paged
 * cache of one long sequence and a short one, 1 .. 16 splits. */
/* One long sequence (1000 keys) and a short one (70) in 32-key tiles, two
 * new tokens each, GQA 8/2, d 64, causal, fp16 or bf16 by case i. */
static void long_and_short_spec(kv_spec *s, int i)
{
    kv_spec_init(s);
    s->dtype = i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    s->batch = 2;
    s->seqlen_q = 2;
    s->heads_q = 8;
    s->heads_kv = 2;
    s->head_dim = 64;
    s->capacity = 1024;
    s->lens[0] = 1000;
    s->lens[1] = 70;
    s->seqlen_new = 2;
    s->causal = 1;
    s->block_n = 32;
}

START_TEST(every_split_count_gives_the_same_attention_up_to_rounding)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    long_and_short_spec(&s, _i);
    s.page_size = 32;
    s.num_splits = 1 + _i;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    check_all_backends(&p);
    kv_problem_free(&p);
}
END_TEST

/* Four warps sharing a block's keys (tile t to running state t % 4, the
 * four merged by LSE in order) give the same attention up to rounding,
 * with 1 .. 4 splits over one long sequence and a short one: a chunk with
 * fewer tiles than warps leaves some states empty, which the merge skips. */
START_TEST(four_key_warps_give_the_same_attention_up_to_rounding)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    long_and_short_spec(&s, _i);
    s.page_size = _i % 2 ? 32 : 0;
    s.num_splits = 1 + _i;
    s.key_warps = FA2_KVCACHE_KEY_WARPS_MAX;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    check_all_backends(&p);
    int kw = 0;
    ck_assert_int_eq(fa2_kvcache_key_warps(&p.args, FA2_BACKEND_CPU_TILED, &kw), FA2_OK);
    ck_assert_int_eq(kw, FA2_KVCACHE_KEY_WARPS_MAX);
    kv_problem_free(&p);
}
END_TEST

/* Caches with nothing in them: without an append every row sees no key
 * (O = 0, LSE = +inf); with one, the new tokens see each other only. */
START_TEST(an_empty_cache_gives_rows_that_see_no_key_or_only_the_new_tokens)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = FA2_DTYPE_BF16;
    s.batch = 3;
    s.seqlen_q = 4;
    s.heads_q = 8;
    s.heads_kv = 1;
    s.page_size = _i ? 16 : 0;
    s.capacity = 64;
    s.causal = 1;
    s.num_splits = 3;
    s.seqlen_new = _i ? 4 : 0;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    check_all_backends(&p);
    if (!_i)
        for (int64_t x = 0; x < s.batch * s.heads_q * s.seqlen_q; x++)
            ck_assert(p.lse64[x] == INFINITY);
    kv_problem_free(&p);
}
END_TEST

/* Sequences may share the pages they only read (a common prefix): the
 * second sequence's first two pages are the first one's; appends go to
 * pages of their own. */
START_TEST(sequences_may_share_the_pages_they_only_read)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = FA2_DTYPE_FP16;
    s.batch = 2;
    s.seqlen_q = 2;
    s.heads_q = 8;
    s.heads_kv = 2;
    s.page_size = 16;
    s.capacity = 128;
    s.lens[0] = 70;
    s.lens[1] = 40;
    s.seqlen_new = _i ? 2 : 0;
    s.causal = 1;
    s.num_splits = 3;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    const int64_t stride = p.args.block_table_stride;
    p.block_table[stride] = p.block_table[0];
    p.block_table[stride + 1] = p.block_table[1];
    ck_assert_int_eq(fa2_oracle_kvcache_f64(&p.args, p.o64, p.lse64), FA2_OK);
    check_all_backends(&p);
    kv_problem_free(&p);
}
END_TEST

/* ---- the shared maths ---------------------------------------------------- */

/* One row's partial attention over keys [lo, hi) in float64. */
static double part_f64(const double *s, const double *v, int64_t lo, int64_t hi,
                       int64_t d, double *o)
{
    double m = -INFINITY, l = 0.0;
    for (int64_t j = lo; j < hi; j++)
        m = s[j] > m ? s[j] : m;
    for (int64_t c = 0; c < d; c++)
        o[c] = 0.0;
    for (int64_t j = lo; j < hi; j++) {
        const double w = exp(s[j] - m);
        l += w;
        for (int64_t c = 0; c < d; c++)
            o[c] += w * v[j * d + c];
    }
    if (l == 0.0)
        return INFINITY;
    for (int64_t c = 0; c < d; c++)
        o[c] /= l;
    return m + log(l);
}

/* Merging the parts of a split softmax gives the whole one: the float32
 * merge of exact parts is within a few float32 ulps of the exact whole. */
START_TEST(merging_the_parts_of_a_split_softmax_gives_the_whole)
{
    tl_rng r;
    TL_RNG(&r);
    enum { N = 300, D = 16, MAXP = 16 };
    static double s[N], v[N * D], o[D];
    float po[MAXP * D], plse[MAXP], out[D];
    const int parts = 1 + _i % MAXP;
    for (int j = 0; j < N; j++) {
        s[j] = 4.0 * tl_normal(&r);
        for (int c = 0; c < D; c++)
            v[j * D + c] = tl_normal(&r);
    }
    const double lse = part_f64(s, v, 0, N, D, o);
    const fa2_block_range all = {0, N};
    for (int i = 0; i < parts; i++) {
        const fa2_block_range c = fa2_split_blocks(all, parts, i);
        double oi[D];
        plse[i] = (float)part_f64(s, v, c.lo, c.hi, D, oi);
        for (int x = 0; x < D; x++)
            po[i * D + x] = (float)oi[x];
    }
    const float m = fa2_merge_partials(parts, plse, 1, po, D, D, out);
    ck_assert_msg(fabs(m - lse) <= 8 * 0x1p-24 * fabs(lse) + 1e-6,
                  "merged lse %.9g vs %.9g (%d parts)", m, lse, parts);
    for (int c = 0; c < D; c++)
        ck_assert_msg(fabs(out[c] - o[c]) <= 1e-5, "o[%d] %.9g vs %.9g (%d parts)",
                      c, out[c], o[c], parts);
}
END_TEST

START_TEST(merging_one_part_returns_it_unchanged)
{
    const float o[4] = {0.25f, -1.5f, 3.0e-3f, 7.0f};
    float out[4];
    const float lse = 12.345678f;
    ck_assert(fa2_merge_partials(1, &lse, 1, o, 4, 4, out) == lse);
    ck_assert(memcmp(out, o, sizeof o) == 0);
}
END_TEST

/* An empty part (+inf as the forward writes, or -inf) is skipped, its o
 * never read: merging it with others is merging the others. */
START_TEST(empty_parts_are_skipped_and_their_o_never_read)
{
    const float o[3][2] = {{1.0f, 2.0f}, {NAN, NAN}, {-3.0f, 0.5f}};
    const float with[3] = {0.7f, _i ? -INFINITY : INFINITY, 1.9f};
    const float o2[2][2] = {{1.0f, 2.0f}, {-3.0f, 0.5f}};
    const float without[2] = {0.7f, 1.9f};
    float a[2], b[2];
    const float la = fa2_merge_partials(3, with, 1, &o[0][0], 2, 2, a);
    const float lb = fa2_merge_partials(2, without, 1, &o2[0][0], 2, 2, b);
    ck_assert(la == lb);
    ck_assert(memcmp(a, b, sizeof a) == 0);
}
END_TEST

START_TEST(merging_only_empty_parts_is_a_row_that_sees_no_key)
{
    const float lse[3] = {INFINITY, -INFINITY, INFINITY};
    const float o[3] = {NAN, 1.0f, 2.0f};
    float out[1] = {5.0f};
    ck_assert(fa2_merge_partials(3, lse, 1, o, 1, 1, out) == INFINITY);
    ck_assert(out[0] == 0.0f && !signbit(out[0]));
}
END_TEST

/* A NaN LSE (a part saw a NaN score) makes the whole row NaN; a NaN in one
 * part's o reaches only that column, even where its weight underflows. */
START_TEST(nan_in_a_part_propagates_through_the_merge)
{
    const float lse_nan[3] = {0.5f, NAN, 2.0f};
    const float o[3][2] = {{1.0f, 2.0f}, {3.0f, 4.0f}, {5.0f, 6.0f}};
    float out[2];
    ck_assert(isnan(fa2_merge_partials(3, lse_nan, 1, &o[0][0], 2, 2, out)));
    ck_assert(isnan(out[0]) && isnan(out[1]));

    const float lse[2] = {-200.0f, 0.0f}; /* part 0's weight: exp(-200) = 0 */
    const float ov[2][2] = {{NAN, 1.0f}, {3.0f, 4.0f}};
    const float m = fa2_merge_partials(2, lse, 1, &ov[0][0], 2, 2, out);
    ck_assert(m == 0.0f);
    ck_assert(isnan(out[0]));
    ck_assert(out[1] == 4.0f);
}
END_TEST

/* The chunks of a split cover the range, in order, without overlap, each
 * at most ceil(n / splits) blocks. */
START_TEST(the_chunks_of_a_split_tile_the_key_range)
{
    for (int64_t lo = 0; lo < 3; lo++)
        for (int64_t n = 0; n < 40; n++)
            for (int sp = 1; sp <= 20; sp++) {
                const fa2_block_range r = {lo, lo + n};
                int64_t next = lo;
                for (int i = 0; i < sp; i++) {
                    const fa2_block_range c = fa2_split_blocks(r, sp, i);
                    ck_assert(c.lo <= c.hi);
                    if (c.hi > c.lo) {
                        ck_assert_int_eq(c.lo, next);
                        ck_assert(c.hi - c.lo <= fa2_ceil_div(n, sp));
                        next = c.hi;
                    }
                }
                ck_assert_int_eq(next, lo + n);
            }
}
END_TEST

/* The default split count: 1 when the tiles alone fill the workers or the
 * keys are few, more when a few long sequences would leave SMs idle, never
 * more than FA2_KVCACHE_MAX_SPLITS, and a pure function of its inputs. */
START_TEST(the_default_split_count_fills_the_workers)
{
    /* 64 sequences x 8 key heads = 512 tiles on 132 SMs: no split */
    ck_assert_int_eq(fa2_kvcache_splits_heuristic(64, 8, 4, 8192, 64, 128, 132), 1);
    /* 256 keys: too few to split */
    ck_assert_int_eq(fa2_kvcache_splits_heuristic(1, 8, 4, 256, 64, 128, 132), 1);
    /* one sequence, 8 key heads, 8k keys on 132 SMs: split */
    const int s = fa2_kvcache_splits_heuristic(1, 8, 4, 8192, 64, 128, 132);
    ck_assert_int_gt(s, 4);
    ck_assert_int_le(s, 32); /* chunks of at least 2 tiles of 128 */
    for (int64_t b = 1; b <= 64; b *= 2)
        for (int64_t n = 128; n <= 1 << 20; n *= 4) {
            const int x = fa2_kvcache_splits_heuristic(b, 8, 4, n, 64, 128, 132);
            ck_assert(x >= 1 && x <= FA2_KVCACHE_MAX_SPLITS);
            ck_assert_int_eq(x, fa2_kvcache_splits_heuristic(b, 8, 4, n, 64, 128, 132));
        }
}
END_TEST

/* The GPU's split count (fa2_kvcache_gpu_splits) on the H200's figures
 * (132 SMs, six decode blocks an SM, d 128, 32-key tiles of 16 KB, four
 * blocks an SM keep HBM busy): where one split's blocks fit at once, every
 * split count whose blocks fit is at most 3% better by the model
 * per(s) x max(workers, blocks streaming), and no smaller count is within
 * 3%; where they do not fit, no block streams more than
 * FA2_KVCACHE_GPU_BLOCK_BYTES_MAX; always a pure function in range. */
static int64_t gpu_split_cost(int64_t units, int64_t blocks, int64_t workers, int64_t s,
                              int64_t *streaming)
{
    const int64_t per = fa2_ceil_div(blocks, s);
    *streaming = units * fa2_ceil_div(blocks, per);
    return per * (*streaming > workers ? *streaming : workers);
}

START_TEST(the_gpus_split_count_fills_the_sms_once_with_whole_chunks)
{
    const int64_t sms = 132, per_sm = 6, hd = 128, bn = 32;
    const int64_t workers = fa2_kvcache_gpu_workers(sms, per_sm, bn, hd);
    ck_assert_int_eq(workers, 4 * sms);
    /* measured shapes (Hq 32, Nq 1; doc/NOTES-kvcache.md) */
    ck_assert_int_eq(fa2_kvcache_gpu_splits(64, 8, 4, 4096, 16, bn, sms, per_sm, hd), 1);
    ck_assert_int_eq(fa2_kvcache_gpu_splits(8, 32, 1, 4096, 16, bn, sms, per_sm, hd), 2);
    ck_assert_int_eq(fa2_kvcache_gpu_splits(8, 8, 4, 32768, 16, bn, sms, per_sm, hd), 8);
    /* 2048 blocks of 2 MB do not fit at once: 512 KB chunks */
    ck_assert_int_eq(fa2_kvcache_gpu_splits(64, 32, 1, 4096, 16, bn, sms, per_sm, hd), 4);
    /* 4096 tiles over 64 or 66 splits: whole chunks of 64 or 63, not 63
     * splits of 66 and one of 4 */
    const int s128k = fa2_kvcache_gpu_splits(1, 8, 4, 131072, 16, bn, sms, per_sm, hd);
    ck_assert_int_eq(4096 % s128k == 0 || fa2_ceil_div(4096, s128k) * s128k - 4096 < s128k,
                     1);
    for (int64_t b = 1; b <= 256; b *= 2)
        for (int64_t hkv = 1; hkv <= 32; hkv *= 4)
            for (int64_t n = 64; n <= 1 << 20; n *= 2) {
                const int s = fa2_kvcache_gpu_splits(b, hkv, 4, n, 16, bn, sms, per_sm, hd);
                ck_assert(s >= 1 && s <= FA2_KVCACHE_MAX_SPLITS);
                ck_assert_int_eq(s, fa2_kvcache_gpu_splits(b, hkv, 4, n, 16, bn, sms,
                                                           per_sm, hd));
                const int64_t units = b * hkv, blocks = fa2_ceil_div(n, bn);
                if (blocks < 4) {
                    ck_assert_int_eq(s, 1);
                    continue;
                }
                if (units > sms * per_sm) {
                    ck_assert(fa2_ceil_div(blocks, s) * 2 * bn * hd * 2 <=
                                  FA2_KVCACHE_GPU_BLOCK_BYTES_MAX ||
                              s == blocks / 2 || s == FA2_KVCACHE_MAX_SPLITS);
                    continue;
                }
                int64_t streaming, best = -1;
                const int64_t cost = gpu_split_cost(units, blocks, workers, s, &streaming);
                ck_assert(s == 1 || streaming <= sms * per_sm);
                int64_t last = 1; /* the admissible counts are 1 .. last */
                for (int64_t x = 1; x <= blocks / 2 && x <= FA2_KVCACHE_MAX_SPLITS; x++) {
                    int64_t sx;
                    const int64_t cx = gpu_split_cost(units, blocks, workers, x, &sx);
                    if (x > 1 && sx > sms * per_sm)
                        break;
                    last = x;
                    best = best < 0 || cx < best ? cx : best;
                }
                ck_assert(s <= last);
                ck_assert_msg(cost * 100 <= best * 103, "b %lld hkv %lld n %lld: %d splits "
                              "cost %lld, the best %lld", (long long)b, (long long)hkv,
                              (long long)n, s, (long long)cost, (long long)best);
                for (int64_t x = 1; x < s; x++) {
                    int64_t sx;
                    ck_assert(gpu_split_cost(units, blocks, workers, x, &sx) * 100 >
                              best * 103);
                }
            }
}
END_TEST

/* fa2_kvcache_num_splits reports the caller's count when given, else the
 * backend's choice, and the tiled backend then runs exactly that. */
START_TEST(num_splits_reports_the_count_the_backend_runs)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.heads_q = 8;
    s.heads_kv = 8;
    s.capacity = 4096;
    s.lens[0] = 4000;
    s.num_threads = 2;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    int n = -1;
    ck_assert_int_eq(fa2_kvcache_num_splits(&p.args, FA2_BACKEND_CPU_TILED, &n), FA2_OK);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, FA2_KVCACHE_MAX_SPLITS);
    p.args.num_splits = 9;
    ck_assert_int_eq(fa2_kvcache_num_splits(&p.args, FA2_BACKEND_CPU_TILED, &n), FA2_OK);
    ck_assert_int_eq(n, 9);
    size_t bytes = 0;
    ck_assert_int_eq(fa2_kvcache_workspace_size(&p.args, FA2_BACKEND_CPU_TILED, &bytes),
                     FA2_OK);
    ck_assert_uint_eq(bytes, 9u * 1 * 8 * 1 * (32 + 1) * sizeof(float));
    p.args.num_splits = 1;
    ck_assert_int_eq(fa2_kvcache_workspace_size(&p.args, FA2_BACKEND_CPU_TILED, &bytes),
                     FA2_OK);
    ck_assert_uint_eq(bytes, 0);
    kv_problem_free(&p);
}
END_TEST

/* ---- non-finite values through the split-KV merge -------------------------- */

/* A NaN in cached key j makes exactly the rows that see j NaN (O and LSE),
 * in every backend and for every split count; a NaN in a new value's
 * column c reaches column c of the rows that see that token. */
START_TEST(nan_in_the_cache_reaches_exactly_the_rows_that_see_it)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = FA2_DTYPE_BF16;
    s.seqlen_q = 4;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.page_size = 16;
    s.capacity = 512;
    s.lens[0] = 300;
    s.seqlen_new = 4;
    s.causal = 1;
    s.window_left = 40; /* query i sees keys 300 + i - 40 .. 300 + i */
    s.num_splits = 1 + _i * 3;
    s.block_n = 16;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    /* poison key 260 (seen by query 0 only) of kv head 1 */
    const int64_t key = 260, hk = 1, d = s.head_dim;
    const int64_t page = p.block_table[key / 16];
    uint16_t *kc = (uint16_t *)p.k_cache0 +
                   ((page * 16 + key % 16) * s.heads_kv + hk) * d;
    kc[3] = 0x7fc0; /* bf16 NaN */
    memcpy(p.k_expect, p.k_cache0, p.cache_bytes);
    /* restore the append in the expected cache (it was copied above) */
    for (int64_t t = 0; t < s.seqlen_new; t++)
        for (int64_t h = 0; h < s.heads_kv; h++) {
            const int64_t j = s.lens[0] + t;
            const int64_t pg = p.block_table[j / 16];
            memcpy((uint16_t *)p.k_expect + ((pg * 16 + j % 16) * s.heads_kv + h) * d,
                   (uint16_t *)p.k_new + (t * s.heads_kv + h) * d, (size_t)d * 2);
        }
    /* and a NaN in column 5 of new value 2 (seen by queries 2 and 3) */
    ((uint16_t *)p.v_new)[(2 * s.heads_kv + 0) * d + 5] = 0x7fc0;
    const int64_t j2 = s.lens[0] + 2, pg2 = p.block_table[j2 / 16];
    ((uint16_t *)p.v_expect)[((pg2 * 16 + j2 % 16) * s.heads_kv + 0) * d + 5] = 0x7fc0;

    const fa2_backend backends[] = {FA2_BACKEND_CPU_ORACLE, FA2_BACKEND_CPU_STANDARD,
                                    FA2_BACKEND_CPU_TILED};
    for (int bi = 0; bi < 3; bi++) {
        ck_assert_int_eq(kv_problem_run(&p, backends[bi]), FA2_OK);
        ck_assert(memcmp(p.k_cache, p.k_expect, p.cache_bytes) == 0);
        for (int64_t h = 0; h < s.heads_q; h++)
            for (int64_t i = 0; i < s.seqlen_q; i++) {
                const int sees_nan_key = h / 2 == hk && i == 0;
                const float lse = p.lse[h * s.seqlen_q + i];
                ck_assert_msg(isnan(lse) == sees_nan_key, "%s: head %lld query %lld "
                              "lse %g", fa2_backend_name(backends[bi]), (long long)h,
                              (long long)i, lse);
                const uint16_t *o = (const uint16_t *)p.o + (i * s.heads_q + h) * d;
                for (int64_t c = 0; c < d; c++) {
                    const int nan = isnan(fa2_bf16_to_float(o[c]));
                    const int want = sees_nan_key || (h / 2 == 0 && i >= 2 && c == 5);
                    /* a NaN value may spread to rows of the same tile that
                     * do not see it (0 * NaN) except in the oracle */
                    if (!want && h / 2 == 0 && c == 5 &&
                        backends[bi] != FA2_BACKEND_CPU_ORACLE)
                        continue;
                    ck_assert_msg(nan == want, "%s: head %lld query %lld col %lld "
                                  "NaN %d, expected %d", fa2_backend_name(backends[bi]),
                                  (long long)h, (long long)i, (long long)c, nan, want);
                }
            }
    }
    kv_problem_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvcache");
    TCase *tg = tcase_create("grid");
    tcase_set_timeout(tg, 300);
    tcase_add_loop_test(tg, tiled_is_within_twice_standard_error_on_a_grid_of_caches,
                        0, GRID_CASES);
    tcase_add_loop_test(tg, every_split_count_gives_the_same_attention_up_to_rounding,
                        0, 16);
    tcase_add_loop_test(tg, four_key_warps_give_the_same_attention_up_to_rounding, 0, 4);
    tcase_add_loop_test(tg, an_empty_cache_gives_rows_that_see_no_key_or_only_the_new_tokens,
                        0, 2);
    tcase_add_test(tg, num_splits_reports_the_count_the_backend_runs);
    tcase_add_loop_test(tg, sequences_may_share_the_pages_they_only_read, 0, 2);
    tcase_add_loop_test(tg, nan_in_the_cache_reaches_exactly_the_rows_that_see_it, 0, 3);
    suite_add_tcase(s, tg);
    TCase *tm = tcase_create("shared maths");
    tcase_add_loop_test(tm, merging_the_parts_of_a_split_softmax_gives_the_whole, 0, 32);
    tcase_add_test(tm, merging_one_part_returns_it_unchanged);
    tcase_add_loop_test(tm, empty_parts_are_skipped_and_their_o_never_read, 0, 2);
    tcase_add_test(tm, merging_only_empty_parts_is_a_row_that_sees_no_key);
    tcase_add_test(tm, nan_in_a_part_propagates_through_the_merge);
    tcase_add_test(tm, the_chunks_of_a_split_tile_the_key_range);
    tcase_add_test(tm, the_default_split_count_fills_the_workers);
    tcase_add_test(tm, the_gpus_split_count_fills_the_sms_once_with_whole_chunks);
    suite_add_tcase(s, tm);
    return tl_run_suite(s);
}
