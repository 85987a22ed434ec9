/* kvcache_kernel.cuh — the forward over a KV cache (decode and chunked
 * prefill; lib/fa2.h fa2_fwd_kvcache), three kernels:
 *
 *   append   k_new/v_new copied into the cache slots cache_seqlens[b] ..
 *            (before the attention reads the cache: same stream, in order)
 *   main     one thread block per (sequence, key head, split, row tile):
 *            the rows are the packed (query, head of the group) pairs of
 *            lib/fa2_kvcache.h, so one K/V tile read from memory serves
 *            every query head that shares the key head; the keys of the
 *            split's chunk (fa2_split_blocks) are walked last to first, each
 *            key row fetched through the block table (fa2_kv_slot_of) by
 *            cp.async, double buffered. The tile step is the forward's
 *            (gpu/fwd_kernel.cuh): S by mma.m16n8k16, the online softmax of
 *            lib/fa2_tile.h, P rounded to the input dtype, O += P V.
 *            One split: O and LSE written as the forward writes them; more:
 *            the float32 partial (O / l, LSE) of the chunk.
 *   combine  num_splits > 1: each row's partials merged by LSE in split
 *            order (fa2_merge_lse, fa2_merge_weight: lib/fa2_kvcache.h), O
 *            rounded to the output dtype once.
 *
 * Each warp owns 16 packed rows; NW warps per block (1 for decode's few
 * rows, 4 for prefill). Decode is bound by reading K and V: a block's warp
 * computes one tile while the next streams in, and the split count fills
 * the GPU with such blocks (fa2_cuda_kvcache_splits).
 */
#ifndef FA2_GPU_KVCACHE_KERNEL_CUH
#define FA2_GPU_KVCACHE_KERNEL_CUH

#include "fa2_kvcache.h"
#include "fwd_kernel.cuh" /* soff, row_key, chunk_off, unroll_for */
#include "kvcache_params.h"

#include <stdlib.h> /* getenv: the measurement knobs */
#include <string.h>

namespace fa2gpu {

/* Sequence b's keys after the append, clamped to [0, capacity]: the
 * lengths live on the device, unchecked (gpu/kvcache_launch.cu). */
__device__ __forceinline__ int64_t fa2gpu_kvcache_seqlen_k(const fa2_kvcache_params &p,
                                                          int b)
{
    int64_t n = (int64_t)p.cache_seqlens[b] + p.seqlen_new;
    return n < 0 ? 0 : n > p.capacity ? p.capacity : n;
}

/* The packed rows [row_lo, row_lo + ROWS) of q (zero-filled past `rows`
 * and past head_dim) into a swizzled smem tile: row r is query
 * fa2_kvcache_row_query(r) of head fa2_kvcache_row_head(r). */
template <int ROWS, int HD, int SD, int NTHREADS>
__device__ __forceinline__ void load_q_packed(uint16_t *s, const fa2_kvcache_params &p,
                                              int b, int hk, int row_lo, int rows,
                                              int tid)
{
    constexpr int CPR = HD / 8;
    const uint16_t *const q = (const uint16_t *)p.q;
    for (int idx = tid; idx < ROWS * CPR; idx += NTHREADS) {
        const int r = idx / CPR, c = idx % CPR;
        const bool ok = r < rows && c * 8 < p.head_dim;
        const uint16_t *src = q;
        if (ok) {
            const int64_t pr = row_lo + r;
            src += b * p.q_sb + fa2_kvcache_row_query(pr, p.group) * p.q_sr +
                   fa2_kvcache_row_head(pr, p.group, hk) * p.q_sh + c * 8;
        }
        cp_async_16(s + soff<SD>(r, c), src, ok ? 16 : 0);
    }
}

/* The page-walk results of a key tile: where its 16-row groups start. A
 * page holds a multiple of 16 slots and tiles start at multiples of 16, so
 * the 16 rows of a group share a page and lie at consecutive slots. */
template <int BN>
struct kv_tile_slots {
    fa2_kv_slot g[BN / 16];
};

/* The slots of the tile starting at key col_lo (fa2_kv_slot_of): with a
 * block table, one table load per group. Computed a step before the tile
 * is copied, so the copies never wait for the table (measured on the H200:
 * walking the table at the copy made paged decode 20% slower than the
 * contiguous cache; doc/NOTES-kvcache.md). A page size that is a power of
 * two (page_shift >= 0: 16, 64, 256, ...) takes a shift and a mask where
 * fa2_kv_slot_of divides (the same page and slot: keys are >= 0); a
 * division is ~20 instructions of the one warp's stream, twice a tile. */
template <int BN>
__device__ __forceinline__ kv_tile_slots<BN> kv_tile_walk(const int32_t *table_row,
                                                         int64_t page_size, int page_shift,
                                                         int b, int col_lo)
{
    kv_tile_slots<BN> t;
#pragma unroll
    for (int g16 = 0; g16 < BN / 16; g16++) {
        const int key = col_lo + g16 * 16;
        if (table_row && page_shift >= 0) {
            t.g[g16].i0 = table_row[(uint32_t)key >> page_shift];
            t.g[g16].i1 = (int64_t)((uint32_t)key & ((uint32_t)page_size - 1u));
        } else {
            t.g[g16] = fa2_kv_slot_of(table_row, page_size, b, key);
        }
    }
    return t;
}

/* Key rows of one key head (base: the cache's pointer offset by the head)
 * at the tile's slots into a swizzled smem tile; rows past `valid`, and
 * groups whose page is outside the pool, zero-filled. A thread keeps one
 * column chunk and copies every RSTEP-th row of each 16-row group, a fixed
 * number of rows: unrolled, the shared-memory side of a copy is one of
 * KEYS base addresses (a row's swizzle depends on r mod 8 only) plus an
 * immediate, and a full tile (every row valid, every column real, every
 * page in the pool: all of decode's tiles but the last) needs no
 * predicate. (With the trip count left to the thread's first row, ptxas
 * kept a loop with a branch and 64-bit address arithmetic per copy, ~25
 * instructions each and 32 copies a tile, most of a one-warp decode
 * block's instructions: ncu on the H200 had that warp issuing every 3.8
 * cycles, bound by its own instruction stream rather than by memory;
 * doc/NOTES-kvcache.md.) */
template <int BN, int HD, int SD, int NTHREADS>
__device__ __forceinline__ void load_kv_tile(uint16_t *s, const uint16_t *base,
                                             int64_t s0, int64_t s1,
                                             const kv_tile_slots<BN> &slots,
                                             bool paged, int64_t num_pages, int valid,
                                             int d, int tid)
{
    constexpr int CPR = HD / 8;
    static_assert(NTHREADS % CPR == 0, "a thread keeps one column chunk");
    constexpr int RSTEP = NTHREADS / CPR;
    static_assert(RSTEP <= 16 && 16 % RSTEP == 0 && BN % 16 == 0, "row groups");
    static_assert(SD != 32, "soff's r mod 8 swizzle");
    constexpr int ROWS_PER_THREAD = 16 / RSTEP; /* of a 16-row group */
    constexpr int KEYS = RSTEP >= 8 ? 1 : 8 / RSTEP; /* distinct r mod 8 */
    const int r0 = tid / CPR, c = tid % CPR;
    /* soff(r, c) = r SD + ((c ^ (r & 7)) << 3), r = r0 + 16 g16 + RSTEP i:
     * the part that varies with i mod KEYS, per thread */
    const uint32_t s32 = smem_addr(s);
    uint32_t dst0[KEYS];
#pragma unroll
    for (int j = 0; j < KEYS; j++)
        dst0[j] = s32 + 2u * (uint32_t)soff<SD>(r0 + j * RSTEP, c);
    auto dst = [&](int g16, int i) {
        /* (r0 + j RSTEP) and (r0 + i RSTEP + 16 g16) share r mod 8 */
        return dst0[i % KEYS] + 2u * (uint32_t)((16 * g16 + (i - i % KEYS) * RSTEP) * SD);
    };
    const int64_t step = (int64_t)RSTEP * s1;
    bool full = valid >= BN && d >= HD;
#pragma unroll
    for (int g16 = 0; g16 < BN / 16; g16++)
        full = full && (!paged || (slots.g[g16].i0 >= 0 && slots.g[g16].i0 < num_pages));
    if (full) {
#pragma unroll
        for (int g16 = 0; g16 < BN / 16; g16++) {
            const fa2_kv_slot sl = slots.g[g16];
            const uint16_t *src = base + sl.i0 * s0 + (sl.i1 + r0) * s1 + c * 8;
#pragma unroll
            for (int i = 0; i < ROWS_PER_THREAD; i++) {
                cp_async_16_s32(dst(g16, i), src, 16);
                src += step;
            }
        }
        return;
    }
    const bool col_ok = c * 8 < d;
#pragma unroll
    for (int g16 = 0; g16 < BN / 16; g16++) {
        const fa2_kv_slot sl = slots.g[g16];
        const bool page_ok = !paged || (sl.i0 >= 0 && sl.i0 < num_pages);
        const bool group_ok = col_ok && page_ok;
        const uint16_t *src = group_ok ? base + sl.i0 * s0 + (sl.i1 + r0) * s1 + c * 8 : base;
#pragma unroll
        for (int i = 0; i < ROWS_PER_THREAD; i++) {
            const int r = g16 * 16 + r0 + i * RSTEP;
            const bool ok = group_ok && r < valid;
            cp_async_16_s32(dst(g16, i), ok ? src : base, ok ? 16 : 0);
            src += group_ok ? step : 0;
        }
    }
}

template <int HD, bool IS_BF16, int NW, int STAGES, int BN, int KW>
__global__ void __launch_bounds__(NW * 32 * KW)
    kvcache_kernel(const __grid_constant__ fa2_kvcache_params p)
{
    constexpr int BM = 16 * NW;
    constexpr int SD = HD;
    static_assert(KW == 1 || NW == 1, "key warps share a one-warp block's rows");
    /* the threads that copy one warp's tiles: all of them, or with key
     * warps each warp its own */
    constexpr int NTHREADS = KW > 1 ? 32 : NW * 32;
    constexpr int NT = BN / 8, DT = HD / 8, KQ = HD / 16, KP = BN / 16;
    /* tiles in flight ahead of the one being computed: decode streams K and
     * V, and a warp's bytes in flight are what keeps HBM busy */
    constexpr int AHEAD = STAGES - 1;
    static_assert(STAGES >= 2, "at least double buffering");

    /* Q is staged once, for its fragments (kept in registers): where it fits
     * (BM <= BN, decode) in the last stage's V buffer, which the first
     * tiles do not use and issue(STAGES - 1) fills only after the barrier
     * that follows the fragments' loads: a smaller block, more of them on
     * an SM */
    extern __shared__ __align__(128) uint16_t smem[];
    constexpr bool Q_ALIASED = FA2_KVC_Q_ALIASED(NW, BN, KW);
    /* key warps: warp w's stages at w, KW + w, ... ([STAGES][KW][BN][SD]) */
    const int kw = KW > 1 ? (int)(threadIdx.x >> 5) : 0;
    uint16_t *const sK0 = smem + (Q_ALIASED ? 0 : BM * SD);  /* [STAGES][BN][SD] */
    uint16_t *const sV0 = sK0 + STAGES * KW * BN * SD;       /* [STAGES][BN][SD] */
    uint16_t *const sQ = Q_ALIASED ? sV0 + (STAGES - 1) * BN * SD : smem; /* [BM][SD] */
    uint16_t *const sK = sK0 + kw * BN * SD; /* stage s at s * KW * BN * SD */
    uint16_t *const sV = sV0 + kw * BN * SD;
    constexpr int STAGE_ELEMS = KW * BN * SD;

    const int tid = KW > 1 ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const int warp = KW > 1 ? 0 : tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;

    int64_t bid = blockIdx.x;
    const int rb = (int)(bid % p.row_blocks);
    bid /= p.row_blocks;
    const int split = (int)(bid % p.num_splits);
    bid /= p.num_splits;
    const int hk = (int)(bid % p.heads_kv);
    const int b = (int)(bid / p.heads_kv);

    const int64_t seqlen_k = fa2gpu_kvcache_seqlen_k(p, b);
    const int total_rows = p.seqlen_q * p.group;
    const int row_lo = rb * BM;
    const int rows = total_rows - row_lo < BM ? total_rows - row_lo : BM;
    const int d = p.head_dim;
    const fa2_mask mask = fa2_mask_make(p.seqlen_q, seqlen_k, p.causal,
                                        p.window_left, p.window_right);
    const fa2_block_range chunk = fa2_split_blocks(
        fa2_kvcache_kv_blocks(&mask, row_lo, row_lo + rows, p.group, BN),
        p.num_splits, split);
    const int nsteps_chunk = (int)fa2_block_count(chunk);
    /* with key warps, this warp's tiles of the chunk: kw, kw + KW, ... */
    const int nsteps = KW > 1 ? (nsteps_chunk - kw + KW - 1) / KW : nsteps_chunk;
    auto tile_of = [&](int step) { return KW > 1 ? step * KW + kw : step; };
    /* the tile's queries, for the tile-level mask test */
    const int64_t tok_lo = fa2_kvcache_row_query(row_lo, p.group);
    const int64_t tok_hi = fa2_kvcache_row_query(row_lo + rows - 1, p.group) + 1;

    const int32_t *const table_row =
        p.block_table ? p.block_table + b * p.block_table_stride : NULL;
    const uint16_t *const gK = (const uint16_t *)p.k_cache + hk * p.k_sh;
    const uint16_t *const gV = (const uint16_t *)p.v_cache + hk * p.v_sh;

    float acc[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            acc[dt][e] = 0.0f;
    fa2_row_state st[2] = {fa2_row_state_init(), fa2_row_state_init()};
    int vis_lo[2], vis_hi[2];
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const int64_t tok = fa2_kvcache_row_query(row_lo + warp * 16 + g + hf * 8, p.group);
        int64_t lo, hi;
        fa2_visible_cols(&mask, tok, tok + 1, &lo, &hi);
        vis_lo[hf] = (int)lo;
        vis_hi[hf] = (int)hi;
    }

    /* tile `step` of the chunk into buffer step % STAGES, as two commit
     * groups (K, then V), from its slots; past the chunk's end two empty
     * groups, so that the waits below count the same at every step */
    const bool paged = table_row != NULL;
    const int page_shift =
        paged && p.page_size > 0 && p.page_size <= 0x40000000 && (p.page_size & (p.page_size - 1)) == 0
            ? __ffsll(p.page_size) - 1
            : -1;
    auto walk = [&](int step) {
        kv_tile_slots<BN> none = {};
        return step < nsteps ? kv_tile_walk<BN>(table_row, p.page_size, page_shift, b,
                                                (int)(fa2_kv_block_at(chunk, tile_of(step)) * BN))
                             : none; /* past the chunk: no table entry is read */
    };
    auto issue = [&](int step, const kv_tile_slots<BN> &slots) {
        if (step < nsteps) {
            const int lo = (int)(fa2_kv_block_at(chunk, tile_of(step)) * BN);
            const int cols = (int)(seqlen_k - lo < BN ? seqlen_k - lo : BN);
            const int buf = step % STAGES;
            load_kv_tile<BN, HD, SD, NTHREADS>(sK + buf * STAGE_ELEMS, gK, p.k_s0, p.k_s1, slots,
                                               paged, p.num_pages, cols, d, tid);
            cp_async_commit();
            load_kv_tile<BN, HD, SD, NTHREADS>(sV + buf * STAGE_ELEMS, gV, p.v_s0, p.v_s1, slots,
                                               paged, p.num_pages, cols, d, tid);
            cp_async_commit();
        } else {
            cp_async_commit();
            cp_async_commit();
        }
    };

    load_q_packed<BM, HD, SD, NTHREADS * KW>(sQ, p, b, hk, row_lo, rows, (int)threadIdx.x);
    cp_async_commit();
#pragma unroll
    for (int s = 0; s < AHEAD; s++)
        issue(s, walk(s));
    kv_tile_slots<BN> next = walk(AHEAD); /* the next tile to issue */

    const int q_row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
    const int q_key = row_key<SD>(lane & 7) ^ (lane >> 4);
    const int k_row = (lane & 7) + (lane >> 4) * 8;
    const int k_key = row_key<SD>(lane & 7) ^ ((lane >> 3) & 1);
    const int v_row = (lane & 7) + ((lane >> 3) & 1) * 8;
    const int v_key = row_key<SD>(lane & 7) ^ (lane >> 4);

    /* Q's MMA fragments, kept in registers for the whole chunk */
    cp_async_wait<2 * AHEAD>(); /* in flight: the first AHEAD tiles */
    __syncthreads();
    uint32_t qa[KQ][4];
    {
        const uint16_t *const sQl = sQ + q_row * SD;
        unroll_for<KQ>([&](auto kk_) {
            constexpr int kk = decltype(kk_)::value;
            ldmatrix_x4(qa[kk], sQl + chunk_off<kk>(q_key));
        });
    }

    for (int step = 0; step < nsteps; step++) {
        const int buf = step % STAGES;
        const int col_lo = (int)(fa2_kv_block_at(chunk, tile_of(step)) * BN);
        cp_async_wait<2 * AHEAD - 1>(); /* in flight: V_step and the AHEAD - 1 next tiles */
        /* K_step visible; every warp done with step - 1's buffer (key
         * warps: each warp's buffers are its own) */
        if (KW > 1)
            __syncwarp();
        else
            __syncthreads();
        issue(step + AHEAD, next);
        next = walk(step + AHEAD + 1); /* its table loads land during this step */
        const uint16_t *const cK = sK + buf * STAGE_ELEMS;
        const uint16_t *const cV = sV + buf * STAGE_ELEMS;

        /* S = Q K^T */
        float s[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                s[nt][e] = 0.0f;
        const uint16_t *const sKl = cK + k_row * SD;
        unroll_for<KQ>([&](auto kk_) {
            constexpr int kk = decltype(kk_)::value;
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
                uint32_t bk[4];
                ldmatrix_x4(bk, sKl + np * 16 * SD + chunk_off<kk>(k_key));
                mma_16816<IS_BF16>(s[2 * np], qa[kk], bk[0], bk[1]);
                mma_16816<IS_BF16>(s[2 * np + 1], qa[kk], bk[2], bk[3]);
            }
        });

        /* the element mask, on the tiles that need it (as the forward) */
        if (fa2_tile_needs_mask(&mask, tok_lo, tok_hi, col_lo, BN)) {
            const int c0 = col_lo + 2 * t;
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int lo = vis_lo[hf] - c0, hi = vis_hi[hf] - c0;
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (nt * 8 + e < lo || nt * 8 + e >= hi)
                            s[nt][2 * hf + e] = FA2_NEG_INF;
            }
        }

        /* the online softmax (lib/fa2_tile.h). The one-FFMA P where it is
         * exact for both of a lane's rows in every lane (|m c| < 2^24:
         * every ordinary row), else fa2_softmax_p, right for any finite
         * score (and equal to the one-FFMA P where that is exact): one
         * warp-uniform branch. (Per row, ptxas if-converted the two forms
         * and issued both for every element.) */
        float alpha[2], max_scaled[2];
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float mx = FA2_NEG_INF;
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
                mx = fmaxf(mx, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            alpha[hf] = fa2_softmax_rescale(&st[hf], mx, p.scale_log2, &max_scaled[hf]);
        }
        auto exp_rows = [&](auto p_of) {
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                float sum = 0.0f;
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const float pe = p_of(s[nt][2 * hf + e], p.scale_log2, max_scaled[hf]);
                        s[nt][2 * hf + e] = pe;
                        sum += pe;
                    }
                fa2_softmax_accumulate(&st[hf], alpha[hf], sum);
            }
        };
        if (__all_sync(0xffffffffu, fa2_softmax_ffma_exact(max_scaled[0]) &&
                                        fa2_softmax_ffma_exact(max_scaled[1])))
            exp_rows([](float x, float c, float ms) { return fa2_softmax_p_ffma(x, c, ms); });
        else
            exp_rows([](float x, float c, float ms) { return fa2_softmax_p(x, c, ms); });
        /* O's rescale, skipped when no row's max moved (alpha 1 exactly:
         * most tiles of a long cache) */
        if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
            for (int dt = 0; dt < DT; dt++) {
                acc[dt][0] *= alpha[0];
                acc[dt][1] *= alpha[0];
                acc[dt][2] *= alpha[1];
                acc[dt][3] *= alpha[1];
            }
        }
        uint32_t pa[KP][4];
#pragma unroll
        for (int kk = 0; kk < KP; kk++) {
            pa[kk][0] = pack2<IS_BF16>(s[2 * kk][0], s[2 * kk][1]);
            pa[kk][1] = pack2<IS_BF16>(s[2 * kk][2], s[2 * kk][3]);
            pa[kk][2] = pack2<IS_BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[kk][3] = pack2<IS_BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        }

        cp_async_wait<2 * AHEAD>(); /* in flight: the AHEAD next tiles */
        if (KW > 1)
            __syncwarp();
        else
            __syncthreads();

        /* O += round(P) V */
        const uint16_t *const sVl = cV + v_row * SD;
#pragma unroll
        for (int kk = 0; kk < KP; kk++) {
            unroll_for<DT / 2>([&](auto dp_) {
                constexpr int dp = decltype(dp_)::value;
                uint32_t bv[4];
                ldmatrix_x4_trans(bv, sVl + kk * 16 * SD + chunk_off<dp>(v_key));
                mma_16816<IS_BF16>(acc[2 * dp], pa[kk], bv[0], bv[1]);
                mma_16816<IS_BF16>(acc[2 * dp + 1], pa[kk], bv[2], bv[3]);
            });
        }
    }
    cp_async_wait<0>();
    /* the combine (launched as this grid's programmatic dependent) may be
     * scheduled now: its blocks wait in pdl_wait for this grid's writes,
     * and start the moment the last of them lands instead of a launch
     * later */
    pdl_launch_dependents();

    /* the row's end: l over the quad, 1/l once */
    float inv_l[2], lse[2];
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        float l = st[hf].l;
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        st[hf].l = l;
        inv_l[hf] = fa2_softmax_inv_l(st[hf]);
        lse[hf] = fa2_softmax_lse(st[hf], p.scale);
    }
    const int64_t Hq = p.heads_q, Nq = p.seqlen_q;
    if constexpr (KW > 1) {
        /* key warps: each warp's normalised partial (O / l, LSE) of its
         * tiles into the stages (free now), then the KW merged by LSE in
         * warp order, as the combine merges splits */
        __syncthreads();
        float *const mO = reinterpret_cast<float *>(sK0); /* [KW][16][HD] */
        float *const mL = mO + KW * 16 * HD;              /* [KW][16]     */
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int r = g + hf * 8;
#pragma unroll
            for (int dt = 0; dt < DT; dt++) {
                const int c = dt * 8 + 2 * t;
                *reinterpret_cast<float2 *>(mO + (kw * 16 + r) * HD + c) =
                    make_float2(acc[dt][2 * hf] * inv_l[hf], acc[dt][2 * hf + 1] * inv_l[hf]);
            }
            if (t == 0)
                mL[kw * 16 + r] = lse[hf];
        }
        __syncthreads();
        for (int idx = (int)threadIdx.x; idx < 16 * (HD / 2); idx += 32 * KW) {
            const int r = idx / (HD / 2), c = 2 * (idx % (HD / 2));
            if (r >= rows || c >= d)
                continue;
            const float m = fa2_merge_lse(KW, mL + r, 16);
            float o0 = 0.0f, o1 = 0.0f;
#pragma unroll
            for (int w = 0; w < KW; w++) {
                const float x = mL[w * 16 + r];
                if (fa2_merge_part_empty(x))
                    continue;
                const float wt = fa2_merge_weight(x, m);
                const float2 v = *reinterpret_cast<const float2 *>(mO + (w * 16 + r) * HD + c);
                o0 += __fmul_rn(wt, v.x);
                o1 += __fmul_rn(wt, v.y);
            }
            const int64_t pr = row_lo + r;
            const int64_t tok = fa2_kvcache_row_query(pr, p.group);
            const int64_t hq = fa2_kvcache_row_head(pr, p.group, hk);
            if (p.num_splits == 1) {
                uint16_t *const o = (uint16_t *)p.o + b * p.o_sb + tok * p.o_sr + hq * p.o_sh;
                *reinterpret_cast<uint32_t *>(o + c) = pack2<IS_BF16>(o0, o1);
                if (p.lse && c == 0)
                    p.lse[b * p.lse_sb + hq * p.lse_sh + tok * p.lse_sr] = m;
            } else {
                const int64_t row = (((int64_t)split * p.batch + b) * Hq + hq) * Nq + tok;
                *reinterpret_cast<float2 *>(p.o_part + row * d + c) = make_float2(o0, o1);
                if (c == 0)
                    p.lse_part[row] = m;
            }
#ifdef FA2_TRAFFIC_COUNTERS
            if (p.traffic && c == 0) { /* the row's stores, once */
                const bool one = p.num_splits == 1;
                atomicAdd(&p.traffic[one ? FA2_TRAFFIC_O : FA2_TRAFFIC_O_PART_W],
                          (unsigned long long)d * (one ? 2u : 4u));
                if (!one || p.lse)
                    atomicAdd(&p.traffic[one ? FA2_TRAFFIC_LSE : FA2_TRAFFIC_LSE_PART_W], 4ull);
            }
#endif
        }
    } else { /* one key warp: each thread its rows' fragments */
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int r = warp * 16 + g + hf * 8;
            if (r >= rows)
                continue;
            const int64_t pr = row_lo + r;
            const int64_t tok = fa2_kvcache_row_query(pr, p.group);
            const int64_t hq = fa2_kvcache_row_head(pr, p.group, hk);
            if (p.num_splits == 1) {
                uint16_t *const o = (uint16_t *)p.o + b * p.o_sb + tok * p.o_sr + hq * p.o_sh;
#pragma unroll
                for (int dt = 0; dt < DT; dt++) {
                    const int c = dt * 8 + 2 * t;
                    if (c < d)
                        *reinterpret_cast<uint32_t *>(o + c) =
                            pack2<IS_BF16>(acc[dt][2 * hf] * inv_l[hf],
                                           acc[dt][2 * hf + 1] * inv_l[hf]);
                }
                if (p.lse && t == 0)
                    p.lse[b * p.lse_sb + hq * p.lse_sh + tok * p.lse_sr] = lse[hf];
#ifdef FA2_TRAFFIC_COUNTERS
                if (p.traffic && t == 0) {
                    atomicAdd(&p.traffic[FA2_TRAFFIC_O], (unsigned long long)d * 2u);
                    if (p.lse)
                        atomicAdd(&p.traffic[FA2_TRAFFIC_LSE], 4ull);
                }
#endif
            } else {
                const int64_t row = (((int64_t)split * p.batch + b) * Hq + hq) * Nq + tok;
                float *const o = p.o_part + row * d;
#pragma unroll
                for (int dt = 0; dt < DT; dt++) {
                    const int c = dt * 8 + 2 * t;
                    if (c < d)
                        *reinterpret_cast<float2 *>(o + c) =
                            make_float2(acc[dt][2 * hf] * inv_l[hf],
                                        acc[dt][2 * hf + 1] * inv_l[hf]);
                }
                if (t == 0)
                    p.lse_part[row] = lse[hf];
#ifdef FA2_TRAFFIC_COUNTERS
                if (p.traffic && t == 0) {
                    atomicAdd(&p.traffic[FA2_TRAFFIC_O_PART_W], (unsigned long long)d * 4u);
                    atomicAdd(&p.traffic[FA2_TRAFFIC_LSE_PART_W], 4ull);
                }
#endif
            }
        }
    }
#ifdef FA2_TRAFFIC_COUNTERS
    if (p.traffic && threadIdx.x == 0) { /* the block's reads, once */
        const unsigned long long row_bytes = (unsigned long long)d * 2u;
        unsigned long long kv_rows = 0;
        if (nsteps_chunk > 0) {
            const int64_t hi = chunk.hi * BN < seqlen_k ? chunk.hi * BN : seqlen_k;
            kv_rows = (unsigned long long)(hi - chunk.lo * BN);
        }
        atomicAdd(&p.traffic[FA2_TRAFFIC_Q], (unsigned long long)rows * row_bytes);
        atomicAdd(&p.traffic[FA2_TRAFFIC_K], kv_rows * row_bytes);
        atomicAdd(&p.traffic[FA2_TRAFFIC_V], kv_rows * row_bytes);
    }
#endif
}

/* The combine step: one block of 128 threads per row (b, hq, tok). The
 * row's S LSEs and S partials (S x d floats, copied into shared memory by
 * cp.async; the main kernel writes every split's, a split that saw no key
 * too) all in flight at once, so the block waits out one memory latency,
 * not one per split (measured on the H200: the first version, one warp per
 * row summing split after split, took 32 us for 32 rows of 55 splits,
 * longer than the main kernel; doc/NOTES-kvcache.md), nor two (LSEs, then
 * the parts they say are not empty: the version before this one). The
 * merged LSE is fa2_merge_lse's three pieces
 * (lib/fa2_kvcache.h): the max over the lanes' shares, the terms in
 * parallel, their sum in split order; each thread then sums its two
 * columns over the splits in split order with fa2_merge_weight's weights,
 * as fa2_merge_partials does. Shared memory: kvcache_combine_smem. */
__host__ __device__ constexpr int kvcache_combine_part_offset(int splits)
{
    return (2 * splits + 3) & ~3; /* floats: the LSEs and weights, 16-byte aligned */
}

template <bool IS_BF16>
__global__ void __launch_bounds__(128)
    kvcache_combine_kernel(const __grid_constant__ fa2_kvcache_params p)
{
    extern __shared__ __align__(16) float s_comb[];
    const int S = p.num_splits, d = p.head_dim, tid = threadIdx.x;
    const int lane = tid & 31;
    const int64_t nrows = (int64_t)p.batch * p.heads_q * p.seqlen_q;
    const int64_t row = blockIdx.x;
    const int64_t tok = row % p.seqlen_q;
    const int64_t hq = (row / p.seqlen_q) % p.heads_q;
    const int64_t b = row / ((int64_t)p.seqlen_q * p.heads_q);
    const int64_t split_stride = nrows; /* rows per split */
    float *const ls = s_comb;     /* [S] the parts' LSEs     */
    float *const ws = s_comb + S; /* [S] terms, then weights */
    float *const part = s_comb + kvcache_combine_part_offset(S); /* [S][d] */
    const float *const o_i = p.o_part + row * d;
    pdl_wait(); /* the main kernel's partials are all written */
    /* the LSEs and every part's O in flight together: one memory trip, not
     * two (a part that saw no key was written too: copied, and not used) */
    const float lse_i = tid < S ? p.lse_part[row + tid * split_stride] : 0.0f;
    const int c4 = d / 4;
    if (128 % c4 == 0) { /* a thread keeps one column chunk: no division */
        const int c = (tid % c4) * 4, step = 128 / c4;
        for (int i = tid / c4; i < S; i += step)
            cp_async_16(part + i * d + c, o_i + i * split_stride * d + c, 16);
    } else {
        for (int idx = tid; idx < S * c4; idx += 128) {
            const int i = idx / c4, c = (idx - i * c4) * 4;
            cp_async_16(part + i * d + c, o_i + i * split_stride * d + c, 16);
        }
    }
    cp_async_commit();
    if (tid < S) /* S <= FA2_KVCACHE_MAX_SPLITS = 128 threads */
        ls[tid] = lse_i;
    __syncthreads();
    /* the max: each lane over splits lane, lane + 32, ...; then over the
     * lanes (NaN wins, as in fa2_merge_lse_max); every warp alike */
    float mx = fa2_merge_lse_max((S - lane + 31) / 32, ls + lane, 32);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float o = __shfl_xor_sync(0xffffffffu, mx, off);
        mx = mx != mx || o != o ? NAN : fmaxf(mx, o);
    }
    if (tid < S)
        ws[tid] = fa2_merge_lse_term(ls[tid], mx);
    __syncthreads();
    float sum = 0.0f;
    for (int i = 0; i < S; i++)
        sum += ws[i];
    const float m = fa2_merge_lse_finish(mx, sum);
    __syncthreads();
    if (tid < S)
        ws[tid] = fa2_merge_weight(ls[tid], m);
    cp_async_wait<0>();
    __syncthreads();
    uint16_t *const o = (uint16_t *)p.o + b * p.o_sb + tok * p.o_sr + hq * p.o_sh;
    for (int c = 2 * tid; c < d; c += 256) {
        float o0 = 0.0f, o1 = 0.0f;
        /* an empty part adds -0.0, the identity of the sum (x + -0 = x for
         * every x), instead of a branch: the loads of the next splits then
         * issue before this one's adds (the branch made each split wait
         * out its shared-memory loads: ~S x 30 cycles) */
#pragma unroll 4
        for (int i = 0; i < S; i++) {
            const bool empty = fa2_merge_part_empty(ls[i]);
            const float w = ws[i];
            const float2 v = *reinterpret_cast<const float2 *>(part + i * d + c);
            o0 += empty ? -0.0f : __fmul_rn(w, v.x);
            o1 += empty ? -0.0f : __fmul_rn(w, v.y);
        }
        *reinterpret_cast<uint32_t *>(o + c) = pack2<IS_BF16>(o0, o1);
    }
    if (p.lse && tid == 0)
        p.lse[b * p.lse_sb + hq * p.lse_sh + tok * p.lse_sr] = m;
#ifdef FA2_TRAFFIC_COUNTERS
    if (p.traffic && tid == 0) {
        /* the S LSEs and the S parts' O (every part is copied) */
        atomicAdd(&p.traffic[FA2_TRAFFIC_LSE_PART_R], 4ull * (unsigned long long)S);
        atomicAdd(&p.traffic[FA2_TRAFFIC_O_PART_R], (unsigned long long)S * d * 4u);
        atomicAdd(&p.traffic[FA2_TRAFFIC_O], (unsigned long long)d * 2u);
        if (p.lse)
            atomicAdd(&p.traffic[FA2_TRAFFIC_LSE], 4ull);
    }
#endif
}

/* Launch `kern` after the stream's previous kernel as its programmatic
 * dependent where the device has that (sm_90 on): the blocks may be
 * scheduled once the previous grid calls pdl_launch_dependents and wait
 * in pdl_wait, which saves the launch gap between the two kernels
 * (FA2_CUDA_KVCACHE_PDL=0: an ordinary launch, a measurement knob). */
static cudaError_t launch_dependent(void (*kern)(const fa2_kvcache_params), unsigned grid,
                                    unsigned threads, int smem, cudaStream_t stream,
                                    const fa2_kvcache_params &p)
{
    int dev = 0, major = 0;
    const char *e = getenv("FA2_CUDA_KVCACHE_PDL");
    const bool allowed = !(e && e[0] == '0') && cudaGetDevice(&dev) == cudaSuccess &&
                         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                                                dev) == cudaSuccess &&
                         major >= 9;
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = (size_t)smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = allowed ? 1 : 0;
    cudaError_t err = cudaLaunchKernelEx(&cfg, kern, p);
    return err != cudaSuccess ? err : cudaGetLastError();
}

/* Launch main (and combine) for head dim HD; the caller checked everything
 * and ran the append. */
template <int HD, int NW, int BN, int KW>
fa2_status launch_kvcache_nw(const fa2_kvcache_params &p, bool bf16,
                             cudaStream_t stream)
{
    constexpr int STAGES = FA2_KVC_STAGES(HD, NW);
    constexpr int smem = FA2_KVC_SMEM_BYTES_BN(HD, NW, BN, KW);
    void (*kern)(const fa2_kvcache_params) =
        bf16 ? kvcache_kernel<HD, true, NW, STAGES, BN, KW>
             : kvcache_kernel<HD, false, NW, STAGES, BN, KW>;
    cudaError_t err = cudaSuccess;
    if (smem > 48 * 1024)
        err = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   smem);
    /* all of the SM's L1 as shared memory, so that as many blocks fit as
     * fa2_cuda_kvcache_splits counts on (decode's bytes in flight) */
    if (err == cudaSuccess)
        err = cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout,
                                   cudaSharedmemCarveoutMaxShared);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the head-dim-%d KV-cache kernel needs "
                        "%d bytes of shared memory per block and this device "
                        "refuses that (%s)", HD, smem, cudaGetErrorString(err));
    }
    const int64_t grid = (int64_t)p.row_blocks * p.num_splits * p.heads_kv * p.batch;
    kern<<<(unsigned)grid, NW * 32 * KW, smem, stream>>>(p);
    if ((err = cudaGetLastError()) != cudaSuccess)
        return fa2_fail(FA2_ERR_CUDA, "launching the head-dim-%d KV-cache kernel "
                        "(%lld blocks) failed: %s", HD, (long long)grid,
                        cudaGetErrorString(err));
    if (p.num_splits > 1) {
        const int64_t rows = (int64_t)p.batch * p.heads_q * p.seqlen_q;
        const int csmem = (kvcache_combine_part_offset(p.num_splits) +
                           p.num_splits * p.head_dim) * (int)sizeof(float);
        void (*comb)(const fa2_kvcache_params) =
            bf16 ? kvcache_combine_kernel<true> : kvcache_combine_kernel<false>;
        if (csmem > 48 * 1024 &&
            (err = cudaFuncSetAttribute(comb, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        csmem)) != cudaSuccess) {
            (void)cudaGetLastError();
            return fa2_fail(FA2_ERR_UNSUPPORTED, "the KV-cache combine of %d splits "
                            "needs %d bytes of shared memory and this device refuses "
                            "that (%s)", p.num_splits, csmem, cudaGetErrorString(err));
        }
        if ((err = launch_dependent(comb, (unsigned)rows, 128, csmem, stream, p)) !=
            cudaSuccess)
            return fa2_fail(FA2_ERR_CUDA, "launching the KV-cache combine kernel "
                            "(%lld blocks) failed: %s", (long long)rows,
                            cudaGetErrorString(err));
    }
    return FA2_OK;
}

/* Four key warps, only where their stages fit a block's shared memory
 * (fa2_kvcache_gpu_key_warps: up to head dim 128); the host refused the
 * others before the append (check_smem in kvcache_launch.cu) */
template <int HD>
fa2_status launch_kvcache_key_warps4(const fa2_kvcache_params &p, bool bf16,
                                     cudaStream_t stream)
{
    if constexpr (HD <= FA2_KVCACHE_KEY_WARPS_HEAD_DIM_MAX)
        return launch_kvcache_nw<HD, 1, FA2_KVC_BLOCK_N(HD), 4>(p, bf16, stream);
    else
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the head-dim-%d KV-cache kernel has no "
                        "four-key-warp build", HD);
}

} // namespace fa2gpu

/* gpu/kvcache_hdNN.cu: one launcher per kernel head dim, both dtypes, the
 * warp count from the packed rows per (sequence, key head) */
#define FA2_KVCACHE_DEFINE_LAUNCHER(HD)                                        \
    extern "C" fa2_status fa2_cuda_kvcache_hd##HD(const fa2_kvcache_params *p, \
                                                  int bf16, int nw, void *stream) \
    {                                                                          \
        const cudaStream_t s = (cudaStream_t)stream;                           \
        if (nw == 1 && p->key_warps == 4) /* FA2_KVCACHE_KEY_WARPS_MAX */      \
            return fa2gpu::launch_kvcache_key_warps4<HD>(*p, bf16 != 0, s);      \
        if (nw == 1)                                                           \
            return fa2gpu::launch_kvcache_nw<HD, 1, FA2_KVC_BLOCK_N(HD), 1>(*p, bf16 != 0, s); \
        return fa2gpu::launch_kvcache_nw<HD, 4, FA2_KVC_BLOCK_N(HD), 1>(*p, bf16 != 0, s); \
    }

#endif /* FA2_GPU_KVCACHE_KERNEL_CUH */
