/*
 * fa2_kvcache.h — the maths of the forward over a KV cache that every view
 * shares: the tiled CPU mirror (cpu/tiled_kvcache.c), the simulator
 * (sim/sched_decode.c) and the CUDA decode kernels (gpu/) call these
 * functions; none re-derives them. Like fa2_tile.h, everything is
 * `static inline` FA2_HD: compiled as C11 and as CUDA.
 *
 *  - the tiling of decode: the Nq queries of the Hq / Hkv query heads that
 *    share a key head are packed as the rows of one tile (row r = query
 *    r / group, head r % group of the group), so a tile of K/V read from
 *    memory serves every head of the group;
 *  - the page walk: key index -> (page, slot) through the block table;
 *  - the split of a key range into num_splits chunks of whole tiles, and
 *    the library's default num_splits;
 *  - the merge of partial (O, LSE) pairs computed over disjoint key sets,
 *    in a fixed order: split-KV's combine step, and a ring attention's.
 */
#ifndef FA2_KVCACHE_H
#define FA2_KVCACHE_H

#include "fa2_tile.h"

#include <math.h>
#include <stdint.h>

/* ---- the decode tiling ----------------------------------------------------- */

/* Keys per tile of the tiled CPU backend's forward over a KV cache when
 * the caller gives none (and so the grain of its split): 64 up to head dim
 * 128, 32 above. The CUDA kernels have their own (gpu/kvcache_params.h,
 * FA2_KVC_BLOCK_N); to reproduce them, pass theirs as block_n. */
FA2_HD static inline int fa2_kvcache_block_n(int64_t head_dim)
{
    return head_dim <= 128 ? 64 : 32;
}

/* Packed rows per tile: the rows of a (sequence, key head) are Nq * group;
 * the kernels give each warp 16 of them, one warp for up to 16 rows
 * (decode: Nq group <= 16) and four (64 rows) above, so decode reads each
 * K/V tile once per split. */
FA2_HD static inline int fa2_kvcache_block_m(int64_t rows)
{
    return rows <= 16 ? 16 : 64;
}

/* Row r of a packed tile is query r / group of head (kv_head * group +
 * r % group): the heads of one query are neighbours. */
FA2_HD static inline int64_t fa2_kvcache_row_query(int64_t r, int64_t group)
{
    return r / group;
}
FA2_HD static inline int64_t fa2_kvcache_row_head(int64_t r, int64_t group,
                                                  int64_t kv_head)
{
    return kv_head * group + r % group;
}

/* The key blocks packed rows [r_lo, r_hi) visit: those with a key that at
 * least one of their queries (r_lo / group .. (r_hi - 1) / group) sees,
 * as fa2_fwd_kv_blocks does for a block of consecutive queries. */
FA2_HD static inline fa2_block_range fa2_kvcache_kv_blocks(const fa2_mask *m,
                                                           int64_t r_lo,
                                                           int64_t r_hi,
                                                           int64_t group,
                                                           int block_n)
{
    fa2_block_range r;
    int64_t col_lo, col_hi;
    fa2_visible_cols(m, r_lo / group, (r_hi - 1) / group + 1, &col_lo, &col_hi);
    if (r_hi <= r_lo || col_hi <= col_lo) {
        r.lo = r.hi = 0;
        return r;
    }
    r.lo = col_lo / block_n;
    r.hi = fa2_ceil_div(col_hi, block_n);
    return r;
}

/* ---- the page walk ----------------------------------------------------------- */

/* Where key `key` of a sequence lives: k_cache[i0, i1] (dims 0 and 1). */
typedef struct fa2_kv_slot {
    int64_t i0; /* contiguous: the batch index; paged: the page           */
    int64_t i1; /* contiguous: the key index;   paged: the slot in it     */
} fa2_kv_slot;

/* block_table_row: the sequence's row of the block table, NULL for a
 * contiguous cache (then batch is dim 0 and key dim 1). Entries are
 * validated before any view walks them (FA2_ERR_BLOCK_TABLE). */
FA2_HD static inline fa2_kv_slot fa2_kv_slot_of(const int32_t *block_table_row,
                                                int64_t page_size, int64_t batch,
                                                int64_t key)
{
    fa2_kv_slot s;
    if (block_table_row) {
        /* 32-bit division where it fits (every cache the CUDA kernels
         * take): a 64-bit one costs a GPU thread tens of instructions */
        if (key <= 0x7fffffff && page_size <= 0x7fffffff) {
            const uint32_t pg = (uint32_t)key / (uint32_t)page_size;
            s.i0 = block_table_row[pg];
            s.i1 = (int64_t)((uint32_t)key - pg * (uint32_t)page_size);
        } else {
            s.i0 = block_table_row[key / page_size];
            s.i1 = key % page_size;
        }
    } else {
        s.i0 = batch;
        s.i1 = key;
    }
    return s;
}

/* ---- split-KV: which key blocks chunk s covers ------------------------------ */

/* The key blocks [r.lo, r.hi) a tile visits (fa2_fwd_kv_blocks) cut into
 * num_splits chunks of ceil(n / num_splits) whole blocks, chunk `split`
 * being the split-th from the left; the last chunks may be shorter or
 * empty (lo == hi). Inside a chunk the blocks are visited last to first
 * (fa2_kv_block_at), as in the forward. */
FA2_HD static inline fa2_block_range fa2_split_blocks(fa2_block_range r,
                                                      int num_splits, int split)
{
    fa2_block_range c;
    const int64_t n = r.hi - r.lo;
    const int64_t per = n > 0 ? fa2_ceil_div(n, num_splits) : 0;
    c.lo = r.lo + per * split;
    c.hi = c.lo + per;
    if (c.lo > r.hi)
        c.lo = r.hi;
    if (c.hi > r.hi)
        c.hi = r.hi;
    return c;
}

/* The library's num_splits for a decode problem (what fa2_kvcache_num_splits
 * returns when args->num_splits is 0), a pure function of the sizes so the
 * kernels' launch, the mirror and the simulator agree:
 *   units   = batch * heads_kv * ceil(rows / block_m) tiles (rows = Nq * group)
 *   blocks  = ceil(seqlen_k / block_n), seqlen_k the cache capacity (known
 *             on the host even when the lengths live on the device)
 *   workers = SMs (GPU) or worker threads (CPU).
 * One split when the tiles alone fill at least 80% of the workers (the
 * partials would only cost traffic). Otherwise the fewest splits whose
 * wave efficiency units*s / (workers * ceil(units*s / workers)) is within
 * 95% of the best over 1 .. min(FA2_KVCACHE_MAX_SPLITS, blocks, workers),
 * counting only splits that leave every chunk at least 2 tiles. (85% was
 * measured too loose on the H200: decode at batch 8, 32k keys ran 8% faster
 * with 12 splits (97% of the waves) than with the 11 (89%) it gave;
 * doc/NOTES-kvcache.md.) */
FA2_HD static inline int fa2_kvcache_splits_heuristic(int64_t batch,
                                                      int64_t heads_kv,
                                                      int64_t rows,
                                                      int64_t seqlen_k,
                                                      int block_m, int block_n,
                                                      int64_t workers)
{
    const int64_t units = batch * heads_kv * fa2_ceil_div(rows, block_m);
    const int64_t blocks = fa2_ceil_div(seqlen_k, block_n);
    if (units <= 0 || workers <= 0 || units * 5 >= workers * 4 || blocks < 4)
        return 1;
    int64_t max_s = blocks / 2; /* every chunk at least 2 tiles */
    if (max_s > workers)
        max_s = workers;
    if (max_s > 128)
        max_s = 128; /* FA2_KVCACHE_MAX_SPLITS */
    /* efficiency of s as the fraction num / den, compared exactly */
    int64_t best_num = 0, best_den = 1;
    for (int64_t s = 1; s <= max_s; s++) {
        const int64_t num = units * s;
        const int64_t den = workers * fa2_ceil_div(units * s, workers);
        if (num * best_den > best_num * den) {
            best_num = num;
            best_den = den;
        }
    }
    for (int64_t s = 1; s <= max_s; s++) {
        const int64_t num = units * s;
        const int64_t den = workers * fa2_ceil_div(units * s, workers);
        /* num / den >= 0.95 best_num / best_den */
        if (num * best_den * 100 >= best_num * den * 95)
            return (int)s;
    }
    return 1;
}

/* The workers the GPU's split choice counts (fa2_kvcache_splits_heuristic):
 * the decode blocks resident at once, SMs x blocks_per_sm (the blocks one
 * SM's shared memory holds), but no more an SM than keep
 * FA2_KVCACHE_GPU_KV_BYTES_PER_SM of K and V tiles (block_n keys of K and
 * of V at the kernel's head dim) streaming on it: that many bytes in flight
 * keep HBM busy, and more splits only add partials and the combine.
 * Measured on the H200 at head dim 128 only (2026-12-03,
 * doc/NOTES-kvcache.md; bf16, Hq 32 / Hkv 8, batch 64, 4k keys, 32-key
 * tiles of 16 KB): one split (512 blocks, 3.9 an SM) ran at cuDNN's speed,
 * three (1536 blocks, six resident an SM) 3% slower; four such blocks are
 * 64 KB an SM. Other head dims get the same bytes (8 blocks at 64, 2 at
 * 256), not yet measured. The kernels' launch and the simulator both
 * count workers so. */
#define FA2_KVCACHE_GPU_KV_BYTES_PER_SM (64 * 1024)
/* Bytes of one decode tile: block_n keys of K and of V, 16-bit elements. */
FA2_HD static inline int64_t fa2_kvcache_tile_bytes(int64_t block_n, int64_t kernel_head_dim)
{
    return 2 * block_n * kernel_head_dim * 2;
}
FA2_HD static inline int64_t fa2_kvcache_gpu_workers(int64_t sms, int64_t blocks_per_sm,
                                                     int64_t block_n, int64_t kernel_head_dim)
{
    const int64_t tile_bytes = fa2_kvcache_tile_bytes(block_n, kernel_head_dim);
    int64_t cap = tile_bytes > 0 ? FA2_KVCACHE_GPU_KV_BYTES_PER_SM / tile_bytes : 1;
    if (cap < 1)
        cap = 1;
    return sms * (blocks_per_sm < cap ? blocks_per_sm : cap);
}

/* The GPU's num_splits (the kernels' launch and the simulator), from a
 * model of the decode kernel as measured on the H200 (doc/NOTES-kvcache.md):
 * a block streams its chunk of K/V tiles at a rate of its own until
 * `workers` (fa2_kvcache_gpu_workers) blocks stream at once, which keep
 * HBM busy; past that the blocks share the bandwidth. With
 *   per(s)  = ceil(blocks / s) tiles a chunk (what fa2_split_blocks gives),
 *   used(s) = ceil(blocks / per(s)), the non-empty chunks,
 *   n(s)    = units x used(s), the blocks that stream,
 * s splits take time ~ per(s) x max(workers, n(s)), for the splits whose
 * blocks all fit on the GPU at once (n(s) <= sms x blocks_per_sm = resident).
 * The choice is the fewest splits within 3% of the least such time (each
 * split adds partials and terms to the combine). Where one split's blocks
 * already exceed `resident`, the blocks start in waves and the last ones
 * run with few beside them, so the split count instead caps a block at
 * FA2_KVCACHE_GPU_BLOCK_BYTES_MAX of K and V.
 * Against fa2_kvcache_splits_heuristic's wave efficiency (the CPU's rule,
 * and the GPU's before): it counts that chunks are whole tiles (batch 1,
 * Hkv 8, 128k keys: 63 splits gave chunks of 66 tiles and one of 4; 64
 * splits of 64 tiles ran 1% faster), and it lets blocks fill the SMs'
 * shared memory when fewer would leave HBM idle. The byte cap: Hq = Hkv
 * = 32, batch 64, 4k keys, d 128 (2048 blocks of 2 MB, 2.6 waves of six
 * an SM): one split 0.93x cuDNN, two (1 MB) 1.00x, four (512 KB) 1.02x,
 * six 1.02x. */
#define FA2_KVCACHE_GPU_BLOCK_BYTES_MAX (512 * 1024)
FA2_HD static inline int fa2_kvcache_gpu_splits(int64_t batch, int64_t heads_kv,
                                                int64_t rows, int64_t seqlen_k,
                                                int block_m, int block_n, int64_t sms,
                                                int64_t blocks_per_sm,
                                                int64_t kernel_head_dim)
{
    const int64_t units = batch * heads_kv * fa2_ceil_div(rows, block_m);
    const int64_t blocks = fa2_ceil_div(seqlen_k, block_n);
    const int64_t workers =
        fa2_kvcache_gpu_workers(sms, blocks_per_sm, block_n, kernel_head_dim);
    const int64_t resident = sms * (blocks_per_sm > 0 ? blocks_per_sm : 1);
    if (units <= 0 || workers <= 0 || blocks < 4)
        return 1;
    int64_t max_s = blocks / 2; /* every chunk at least 2 tiles */
    if (max_s > 128)
        max_s = 128; /* FA2_KVCACHE_MAX_SPLITS */
    if (units > resident) { /* waves even at one split: cap a block's bytes */
        const int64_t need = fa2_ceil_div(blocks * fa2_kvcache_tile_bytes(block_n, kernel_head_dim),
                                          FA2_KVCACHE_GPU_BLOCK_BYTES_MAX);
        return (int)(need < 1 ? 1 : need < max_s ? need : max_s);
    }
    int64_t best = -1;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t s = 1; s <= max_s; s++) {
            const int64_t per = fa2_ceil_div(blocks, s);
            const int64_t n = units * fa2_ceil_div(blocks, per);
            if (s > 1 && n > resident)
                break; /* n grows with s */
            const int64_t cost = per * (n > workers ? n : workers);
            if (pass == 0 && (best < 0 || cost < best))
                best = cost;
            if (pass == 1 && cost * 100 <= best * 103)
                return (int)s;
        }
    return 1;
}

/* The CUDA backend's key warps when the caller gives none: four warps
 * share a decode block's keys (key_warps in fa2.h) for one new token of a
 * GQA group over a long cache whose (sequence, key head) pairs alone
 * leave SMs without a block, else one. GPU time on the H200 (2026-12-03,
 * bf16, d 128, Hq 32, four against one key warp, same process;
 * doc/NOTES-kvcache.md): Hkv 8, Nq 1: 0.966-0.995 at every batch 1-8 and
 * cache 32k-128k measured (batch 1, 128k: 125.5 against 128.3 us; batch
 * 8, 128k: 930.5 against 949.9); slower or even elsewhere, so one warp
 * there: 4 queries (1.031 at batch 1, 32k), MHA (0.985-1.022), pages of
 * 16 keys (1.013-1.043: a 32-key tile spans two pages), 4k keys (1.07),
 * and where the pairs fill the GPU (batch 64, 4k: 1.23). Only up to
 * kernel head dim 128: four warps' K/V stages at head dim 256 take 270336
 * bytes of shared memory, more than a block of any GPU gets (the launch
 * refuses key_warps 4 there). page_size: 0 for a contiguous cache. */
#define FA2_KVCACHE_KEY_WARPS_MIN_KEYS 32768
#define FA2_KVCACHE_KEY_WARPS_MIN_PAGE 64
#define FA2_KVCACHE_KEY_WARPS_HEAD_DIM_MAX 128
FA2_HD static inline int fa2_kvcache_gpu_key_warps(int64_t batch, int64_t heads_kv,
                                                   int64_t seqlen_q, int64_t group,
                                                   int64_t capacity, int64_t page_size,
                                                   int64_t kernel_head_dim, int64_t sms)
{
    const int one_token_gqa =
        seqlen_q == 1 && group >= 2 && group <= 16 /* FA2_KVCACHE_KEY_WARPS_ROWS */;
    const int pages_ok = page_size == 0 || page_size >= FA2_KVCACHE_KEY_WARPS_MIN_PAGE;
    if (!one_token_gqa || !pages_ok || capacity < FA2_KVCACHE_KEY_WARPS_MIN_KEYS ||
        kernel_head_dim > FA2_KVCACHE_KEY_WARPS_HEAD_DIM_MAX)
        return 1;
    return batch * heads_kv < sms ? 4 /* FA2_KVCACHE_KEY_WARPS_MAX */ : 1;
}

/* ---- merging partial results by LSE ----------------------------------------- */
/* Attention of one query row over a key set split into disjoint parts:
 * part i gives o_i = sum_j p_ij v_j / l_i over its keys and lse_i =
 * ln sum_j exp(s_ij). Over the union, lse = ln sum_i exp(lse_i) and
 * o = sum_i exp(lse_i - lse) o_i: exact in real arithmetic
 * (doc/algorithm.md section 8). Parts are taken in index order 0, 1, ...,
 * so the result does not depend on which part finished first.
 *
 * Non-finite values (doc/algorithm.md section 5):
 *  - a part that saw no key has lse_i = +inf (what the forward writes) or
 *    -inf (weight 0 by definition): either way it is skipped, its o_i never
 *    read; when every part is empty the row sees no key: o = 0, lse = +inf;
 *  - a NaN lse_i (the part saw a NaN or +inf score) makes lse and every
 *    element of o NaN;
 *  - a NaN in o_i[c] of a non-empty part reaches o[c], even when its weight
 *    underflows to 0 (0 * NaN = NaN): a NaN in a visible v_j stays. */

#define FA2_LOG2E 1.44269504088896340736f

/* lse_i of an empty part (+-inf). */
FA2_HD static inline int fa2_merge_part_empty(float lse_i)
{
    return lse_i == INFINITY || lse_i == -INFINITY;
}

/* The merged LSE in three pieces, so that a kernel can compute the terms
 * in parallel and still sum them in index order:
 *   mx  = fa2_merge_lse_max(...)    the largest finite part (NaN: a NaN part;
 *                                   -inf: every part empty)
 *   t_i = fa2_merge_lse_term(lse_i, mx)   exp(lse_i - mx), 0 if empty
 *   lse = fa2_merge_lse_finish(mx, t_0 + t_1 + ... in index order) */
FA2_HD static inline float fa2_merge_lse_max(int n, const float *lse, int64_t stride)
{
    float mx = FA2_NEG_INF;
    for (int i = 0; i < n; i++) {
        const float x = lse[i * stride];
        if (x != x)
            return NAN;
        if (!fa2_merge_part_empty(x) && x > mx)
            mx = x;
    }
    return mx;
}

FA2_HD static inline float fa2_merge_lse_term(float lse_i, float mx)
{
    return fa2_merge_part_empty(lse_i) ? 0.0f : exp2f(FA2_MUL_RN(lse_i - mx, FA2_LOG2E));
}

FA2_HD static inline float fa2_merge_lse_finish(float mx, float sum)
{
    if (mx != mx)
        return NAN;
    if (mx == FA2_NEG_INF)
        return INFINITY; /* every part empty: the row sees no key */
    return mx + logf(sum);
}

/* The merged LSE of n parts lse[0], lse[stride], ... (first pass). */
FA2_HD static inline float fa2_merge_lse(int n, const float *lse, int64_t stride)
{
    const float mx = fa2_merge_lse_max(n, lse, stride);
    float sum = 0.0f;
    if (mx == mx && mx != FA2_NEG_INF)
        for (int i = 0; i < n; i++)
            sum += fa2_merge_lse_term(lse[i * stride], mx);
    return fa2_merge_lse_finish(mx, sum);
}

/* The weight exp(lse_i - lse) of part i in the merged o (second pass);
 * 0 for an empty part, NaN when lse is NaN. */
FA2_HD static inline float fa2_merge_weight(float lse_i, float lse)
{
    if (fa2_merge_part_empty(lse_i))
        return 0.0f;
    return exp2f(FA2_MUL_RN(lse_i - lse, FA2_LOG2E));
}

/* One row: o_out[c] = sum over parts i in order of weight_i * o_i[c], with
 * o_i = o + i * o_stride; returns the merged LSE. A kernel parallel over c
 * calls fa2_merge_lse and fa2_merge_weight itself and sums in the same
 * order. */
FA2_HD static inline float fa2_merge_partials(int n, const float *lse,
                                              int64_t lse_stride, const float *o,
                                              int64_t o_stride, int64_t d,
                                              float *o_out)
{
    const float m = fa2_merge_lse(n, lse, lse_stride);
    for (int64_t c = 0; c < d; c++)
        o_out[c] = 0.0f;
    for (int i = 0; i < n; i++) {
        const float x = lse[i * lse_stride];
        if (fa2_merge_part_empty(x))
            continue;
        const float w = fa2_merge_weight(x, m);
        const float *oi = o + i * o_stride;
        for (int64_t c = 0; c < d; c++)
            o_out[c] += FA2_MUL_RN(w, oi[c]);
    }
    return m;
}

#endif /* FA2_KVCACHE_H */
