/* fwd_kernel.cuh — the FlashAttention-2 forward kernel (FA2 paper,
 * Algorithm 1; doc/design.md, "The numerics contract"), one template instantiated per head dim
 * and dtype by gpu/fwd_hdNN.cu.
 *
 * One thread block is one (sequence, head, query block). Its warps split
 * the block's query rows (FA2's split-Q: each warp owns block_m / warps
 * rows, every warp reads the same K/V tiles, no shared-memory reduction).
 *
 *   prologue: cp.async Q (once) and K/V of the first key block
 *   for each key block j, last to first (fa2_kv_block_at):
 *       wait K_j; barrier; cp.async K/V of the next key block into the
 *         other buffer (double buffering: its copy overlaps this block;
 *         with one V buffer, head dim >= 224, the next V is copied after
 *         P V and overlaps the next S and softmax)
 *       S = Q K_j^T                  ldmatrix + mma.m16n8k16, f32 acc
 *       element mask                 only on tiles fa2_tile_needs_mask says
 *       online softmax in registers  quad shuffles for row max; exp2 with
 *                                    scale*log2(e) folded in (fa2_tile.h);
 *                                    O rescaled only when a max moved
 *       wait V_j; barrier
 *       O += round(P) V_j            P straight from the S registers,
 *                                    V through ldmatrix.trans
 *   epilogue: l summed over the quad, O * (1/l) staged through the warp's
 *             own rows of the Q buffer and written once with 16-byte
 *             stores; LSE written once.
 *
 * Every index decision (which key blocks, which need a mask, the mask) and
 * every softmax update comes from lib/fa2_tile.h: the same code the CPU
 * mirror runs, so the two agree to rounding.
 *
 * Shared memory: rows of smem_cols elements (a multiple of 64, or 32),
 * 16-byte chunk c of row r stored at chunk c ^ (r % 8) (c ^ ((r / 2) % 4)
 * for 64-byte rows), so the 8 row addresses of every ldmatrix phase and of
 * the O staging stores fall in 8 different bank groups.
 */
#ifndef FA2_GPU_FWD_KERNEL_CUH
#define FA2_GPU_FWD_KERNEL_CUH

#include "config.h"
#include "fa2_internal.h"
#include "fa2_philox.h"
#include "fa2_score.h"
#include "fa2_tile.h"
#include "fwd_config.h"
#include "fwd_params.h"
#include "ptx.cuh"

#include <cuda_runtime.h>
#include <type_traits>

namespace fa2gpu {

/* f(std::integral_constant<int, i>) for i = 0 .. N-1, unrolled at compile
 * time (so that i can be a template argument). */
template <int I, int N, typename F> __device__ __forceinline__ void unroll_for_(F &&f)
{
    if constexpr (I < N) {
        f(std::integral_constant<int, I>{});
        unroll_for_<I + 1, N>(f);
    }
}
template <int N, typename F> __device__ __forceinline__ void unroll_for(F &&f)
{
    unroll_for_<0, N>(f);
}

/* element offset of 16-byte chunk c of row r in a swizzled tile */
template <int SD> __device__ __forceinline__ int soff(int r, int c)
{
    if (SD == 32)
        return r * SD + ((c ^ ((r >> 1) & 3)) << 3);
    return r * SD + ((c ^ (r & 7)) << 3);
}

/* The swizzle key of a lane whose 8-row group starts at a multiple of 8:
 * chunk c of its row lives at chunk c ^ key(row). */
template <int SD> __device__ __forceinline__ int row_key(int r)
{
    return SD == 32 ? ((r >> 1) & 3) : (r & 7);
}

/* Offset of chunk (2 * kk + hi) of a row whose key is row_key ^ hi: the
 * part of the XOR that depends on kk is a compile-time constant, so an
 * unrolled loop over kk needs only four base registers and immediates. */
template <int KK> __device__ __forceinline__ int chunk_off(int key)
{
    return (((2 * KK) & ~7) + (((2 * KK) & 7) ^ key)) << 3;
}

/* cp.async a [ROWS][HD] tile (rows valid_rows.. and columns d.. zero-filled)
 * from global memory (row stride in elements) into a swizzled smem tile. */
template <int ROWS, int HD, int SD, int NTHREADS>
__device__ __forceinline__ void load_tile(uint16_t *s, const uint16_t *g,
                                          int64_t row_stride, int valid_rows,
                                          int d, int tid)
{
    constexpr int CPR = HD / 8;
    constexpr int TOTAL = ROWS * CPR;
    constexpr int ITERS = (TOTAL + NTHREADS - 1) / NTHREADS;
    if (NTHREADS % CPR == 0 && (NTHREADS / CPR) % 8 == 0) {
        /* each thread keeps one column chunk and steps down the rows by a
         * multiple of 8, so its swizzled column never changes */
        constexpr int RSTEP = NTHREADS / CPR;
        const int r0 = tid / CPR, c = tid % CPR;
        const bool col_ok = c * 8 < d;
        const uint16_t *src = g + (int64_t)r0 * row_stride + c * 8;
        const int64_t src_step = (int64_t)RSTEP * row_stride;
        uint16_t *dst = s + soff<SD>(r0, c);
#pragma unroll
        for (int i = 0; i < ITERS; i++) {
            if (TOTAL % NTHREADS == 0 || r0 + i * RSTEP < ROWS) {
                const bool ok = col_ok && r0 + i * RSTEP < valid_rows;
                cp_async_16(dst + i * RSTEP * SD, ok ? src : g, ok ? 16 : 0);
            }
            src += src_step;
        }
    } else {
#pragma unroll
        for (int i = 0; i < ITERS; i++) {
            const int idx = tid + i * NTHREADS;
            if (TOTAL % NTHREADS == 0 || idx < TOTAL) {
                const int r = idx / CPR, c = idx % CPR;
                const bool ok = r < valid_rows && c * 8 < d;
                const uint16_t *src = ok ? g + (int64_t)r * row_stride + c * 8 : g;
                cp_async_16(s + soff<SD>(r, c), src, ok ? 16 : 0);
            }
        }
    }
}

/* MODS: the score modifiers and dropout (p.mods; lib/fa2_score.h,
 * lib/fa2_philox.h) are compiled into a second instantiation, so the plain
 * kernel's hot loop is the one it always was. */
template <int HD, bool IS_BF16, bool MODS>
__global__ void __launch_bounds__(FA2_FWD_WARPS(HD) * 32, FA2_FWD_MIN_BLOCKS(HD))
    fwd_kernel(const __grid_constant__ fa2_fwd_params p)
{
    constexpr int BM = FA2_FWD_BLOCK_M(HD);
    constexpr int BN = FA2_FWD_BLOCK_N(HD);
    constexpr int NW = FA2_FWD_WARPS(HD);
    constexpr int SD = FA2_FWD_SMEM_COLS(HD);
    constexpr int VS = FA2_FWD_V_STAGES(HD);
    constexpr int NTHREADS = NW * 32;
    constexpr int RW = BM / NW; /* query rows per warp            */
    constexpr int MT = RW / 16; /* m16 tiles per warp             */
    constexpr int NT = BN / 8;  /* n8 tiles of S                  */
    constexpr int DT = HD / 8;  /* n8 tiles of O                  */
    constexpr int KQ = HD / 16; /* k16 steps of Q K^T             */
    constexpr int KP = BN / 16; /* k16 steps of P V               */
    static_assert(RW % 16 == 0 && NT % 2 == 0 && DT % 2 == 0, "tiling");

    extern __shared__ __align__(128) uint16_t smem[];
    uint16_t *const sQ = smem;              /* [BM][SD], then O staging */
    uint16_t *const sK = sQ + BM * SD;      /* [2][BN][SD]              */
    uint16_t *const sV = sK + 2 * BN * SD;  /* [VS][BN][SD]             */

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;

    /* block -> (sequence, head, query block): query blocks vary fastest so
     * that consecutive blocks share one head's K/V in L2, and the longest
     * running (last, under a causal mask) start first. */
    const int64_t bid = blockIdx.x;
    const int m_block = p.m_blocks - 1 - (int)(bid % p.m_blocks);
    const int64_t bh = bid / p.m_blocks;
    const int h = (int)(bh % p.heads_q);
    const int b = (int)(bh / p.heads_q);

    int64_t batch, q_start, k_start, seqlen_q, seqlen_k;
    if (p.cu_seqlens_q) {
        batch = 0;
        q_start = p.cu_seqlens_q[b];
        seqlen_q = p.cu_seqlens_q[b + 1] - q_start;
        k_start = p.cu_seqlens_k[b];
        seqlen_k = p.cu_seqlens_k[b + 1] - k_start;
    } else {
        batch = b;
        q_start = k_start = 0;
        seqlen_q = p.seqlen_q;
        seqlen_k = p.seqlen_k;
    }
    const int64_t row_lo = (int64_t)m_block * BM;
    if (row_lo >= seqlen_q)
        return; /* this sequence is shorter than the longest */
    const int rows = (int)(seqlen_q - row_lo < BM ? seqlen_q - row_lo : BM);
    const int d = p.head_dim;
    const int hk = h / (p.heads_q / p.heads_kv);

    const fa2_mask mask = fa2_mask_make(seqlen_q, seqlen_k, p.causal,
                                        p.window_left, p.window_right);
    const fa2_block_range kv = fa2_fwd_kv_blocks(&mask, m_block, BM, BN);
    const int nsteps = (int)fa2_block_count(kv);

    const uint16_t *const gQ = (const uint16_t *)p.q + batch * p.q_sb +
                               (q_start + row_lo) * p.q_sr + (int64_t)h * p.q_sh;
    const uint16_t *const gK = (const uint16_t *)p.k + batch * p.k_sb +
                               k_start * p.k_sr + (int64_t)hk * p.k_sh;
    const uint16_t *const gV = (const uint16_t *)p.v + batch * p.v_sb +
                               k_start * p.v_sr + (int64_t)hk * p.v_sh;

    float acc[MT][DT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[mt][dt][e] = 0.0f;
    /* st[mt][half]: rows g and g+8 of m-tile mt. m is the row's max (the
     * same in all four threads of a quad); l is this thread's share of the
     * row sum (its columns), summed over the quad once at the end. */
    fa2_row_state st[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
        st[mt][0] = st[mt][1] = fa2_row_state_init();
    /* modifiers: the softmax's units (fa2_score_mod_units: logits u with
     * c = log2 e under softcap, else the raw scores with ALiBi's slope and
     * the sink over the scale); a sink starts every row (its weight in one
     * lane of the quad only: l is summed over the quad at the end) */
    fa2_score_mod sm = {};
    float c_exp = p.scale_log2, lse_scale = p.scale;
    bool transform = false; /* fa2_score_mod_transforms */
    if (MODS) {
        const bool alibi = p.alibi_slopes != nullptr;
        sm = fa2_score_mod_make(p.scale, p.softcap, alibi,
                                alibi ? p.alibi_slopes[(int64_t)b * p.alibi_stride + h]
                                      : 0.0f,
                                seqlen_q, seqlen_k);
        fa2_score_mod_units(&sm, p.scale_log2, p.sinks != nullptr,
                            p.sinks ? p.sinks[h] : 0.0f);
        c_exp = sm.c;
        lse_scale = sm.lse_scale;
        transform = fa2_score_mod_transforms(&sm);
        if (p.sinks) {
            fa2_row_state s0 = fa2_row_state_init_sink(sm.sink_u, sm.c);
            if (t != 0)
                s0.l = 0.0f;
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                st[mt][0] = st[mt][1] = s0;
        }
    }

    /* The visible key columns of this thread's rows. Each row sees one
     * interval of keys (fa2_tile.h), so fa2_visible_cols of the one-row
     * range [r, r + 1) is exactly the set fa2_mask_visible accepts; int32
     * is enough (the host caps sequence lengths below 2^31 - 2^10). */
    int vis_lo[MT][2], vis_hi[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int64_t r = row_lo + warp * RW + mt * 16 + g + hf * 8;
            int64_t lo, hi;
            fa2_visible_cols(&mask, r, r + 1, &lo, &hi);
            vis_lo[mt][hf] = (int)lo;
            vis_hi[mt][hf] = (int)hi;
        }

    /* prologue: Q once (FA2 Algorithm 1 line 4), then the first K and V */
    load_tile<BM, HD, SD, NTHREADS>(sQ, gQ, p.q_sr, rows, d, tid);
    if (nsteps > 0) {
        const int64_t col_lo = fa2_kv_block_at(kv, 0) * BN;
        const int cols = (int)(seqlen_k - col_lo < BN ? seqlen_k - col_lo : BN);
        load_tile<BN, HD, SD, NTHREADS>(sK, gK + col_lo * p.k_sr, p.k_sr, cols,
                                        d, tid);
        cp_async_commit();
        load_tile<BN, HD, SD, NTHREADS>(sV, gV + col_lo * p.v_sr, p.v_sr, cols,
                                        d, tid);
    } else {
        cp_async_commit();
    }
    cp_async_commit();

    /* this lane's ldmatrix row addresses and swizzle keys (PTX ldmatrix:
     * lanes 8i..8i+7 give the rows of matrix i) */
    const int q_row = warp * RW + (lane & 7) + ((lane >> 3) & 1) * 8;
    const int q_key = row_key<SD>(lane & 7) ^ (lane >> 4);
    const int k_row = (lane & 7) + (lane >> 4) * 8;
    const int k_key = row_key<SD>(lane & 7) ^ ((lane >> 3) & 1);
    const int v_row = (lane & 7) + ((lane >> 3) & 1) * 8;
    const int v_key = row_key<SD>(lane & 7) ^ (lane >> 4);
    const uint16_t *const sQl = sQ + q_row * SD;

    /* One key block: S, the mask where the tile needs it, the online
     * softmax and P V. (A variant with two copies of this body, the masked
     * one skipping the column groups a warp's rows cannot see, measured
     * slower: doc/NOTES-gpu.md.) */
    auto kv_step = [&](const int64_t col_lo, const uint16_t *const cK,
                       const uint16_t *const cV) {
        /* S = Q_i K_j^T (Algorithm 1 line 8) */
        float s[MT][NT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    s[mt][nt][e] = 0.0f;
        const uint16_t *const sKl = cK + k_row * SD;
        unroll_for<KQ>([&](auto kk_) {
            constexpr int kk = decltype(kk_)::value;
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                ldmatrix_x4(a[mt], sQl + mt * 16 * SD + chunk_off<kk>(q_key));
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
                uint32_t bk[4];
                ldmatrix_x4(bk, sKl + np * 16 * SD + chunk_off<kk>(k_key));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_16816<IS_BF16>(s[mt][2 * np], a[mt], bk[0], bk[1]);
                    mma_16816<IS_BF16>(s[mt][2 * np + 1], a[mt], bk[2], bk[3]);
                }
            }
        });

        /* modifiers: S -> logits u, before the mask (fa2_score.h) */
        if (transform) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int x = 0; x < 4; x++) {
                        const int64_t r = row_lo + warp * RW + mt * 16 + g + (x >> 1) * 8;
                        const int64_t c = col_lo + nt * 8 + 2 * t + (x & 1);
                        s[mt][nt][x] = fa2_score_logit(&sm, s[mt][nt][x], r, c);
                    }
        }

        /* the element mask, on boundary tiles only: key column c
         * of row r is visible iff vis_lo[r] <= c < vis_hi[r]; compared
         * relative to this lane's first column so that the per-element
         * test is a compare with an immediate. Without a left window every
         * vis_lo is 0 and only the right edge is tested. */
        if (fa2_tile_needs_mask(&mask, row_lo, row_lo + rows, col_lo, BN)) {
            const int c0 = (int)col_lo + 2 * t;
            if (mask.window_left >= 0) {
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int lo = vis_lo[mt][hf] - c0, hi = vis_hi[mt][hf] - c0;
#pragma unroll
                        for (int nt = 0; nt < NT; nt++)
#pragma unroll
                            for (int e = 0; e < 2; e++)
                                if (nt * 8 + e < lo || nt * 8 + e >= hi)
                                    s[mt][nt][2 * hf + e] = FA2_NEG_INF;
                    }
            } else {
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int hi = vis_hi[mt][hf] - c0;
#pragma unroll
                        for (int nt = 0; nt < NT; nt++)
#pragma unroll
                            for (int e = 0; e < 2; e++)
                                if (nt * 8 + e >= hi)
                                    s[mt][nt][2 * hf + e] = FA2_NEG_INF;
                    }
            }
        }

        /* online softmax (Algorithm 1 lines 9-10), in registers */
        float alpha[MT][2];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                float mx = FA2_NEG_INF;
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
                    mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hf], s[mt][nt][2 * hf + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                float max_scaled;
                alpha[mt][hf] = fa2_softmax_rescale(&st[mt][hf], mx, c_exp,
                                                    &max_scaled);
                float sum = 0.0f;
                /* the one-FFMA P where it is exact (|m c| < 2^24: every
                 * ordinary row), else the form that is right for any finite
                 * score (fa2_tile.h, FA2_SOFTMAX_FFMA_LIMIT) */
                if (fa2_softmax_ffma_exact(max_scaled)) {
#pragma unroll
                    for (int nt = 0; nt < NT; nt++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const float pe = fa2_softmax_p_ffma(
                                s[mt][nt][2 * hf + e], c_exp, max_scaled);
                            s[mt][nt][2 * hf + e] = pe;
                            sum += pe;
                        }
                } else {
#pragma unroll
                    for (int nt = 0; nt < NT; nt++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const float pe = fa2_softmax_p(s[mt][nt][2 * hf + e],
                                                           c_exp, max_scaled);
                            s[mt][nt][2 * hf + e] = pe;
                            sum += pe;
                        }
                }
                fa2_softmax_accumulate(&st[mt][hf], alpha[mt][hf], sum);
            }
        /* rescale O only when some row's max moved (alpha == 1 otherwise;
         * a warp-uniform branch, and multiplying by 1 changes nothing) */
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
            if (__any_sync(0xffffffffu,
                           alpha[mt][0] != 1.0f || alpha[mt][1] != 1.0f)) {
#pragma unroll
                for (int dt = 0; dt < DT; dt++) {
                    acc[mt][dt][0] *= alpha[mt][0];
                    acc[mt][dt][1] *= alpha[mt][0];
                    acc[mt][dt][2] *= alpha[mt][1];
                    acc[mt][dt][3] *= alpha[mt][1];
                }
            }
        /* dropout (fa2_philox.h): the dropped P are 0 in P V (l keeps
         * them); each n8 tile of a row is one Philox group. The
         * decisions of a row are gathered as bits by a loop that is not
         * unrolled (one Philox call live at a time: unrolled, the calls'
         * temporaries spilled), then applied to the registers. */
        if (MODS && p.dropout.enabled) {
            static_assert(2 * NT <= 32, "a row half's decisions fit in 32 bits");
            const int64_t bhq = (int64_t)b * p.heads_q + h;
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int rl = warp * RW + mt * 16 + g + hf * 8;
                    const int64_t r = row_lo + rl;
                    uint32_t kept = 0;
#pragma unroll 1
                    for (int nt = 0; nt < NT; nt++) {
                        /* col_lo is a multiple of 8: the n8 tile is one
                         * Philox group, this lane's columns its bits 2t, 2t+1 */
                        const fa2_philox_ctr w =
                            fa2_dropout_words(&p.dropout, bhq, r, col_lo + nt * 8);
                        kept |= ((fa2_dropout_keep8(&p.dropout, w) >> (2 * t)) & 3u)
                                << (2 * nt);
                    }
                    /* the optional kept-mask (tests, teaching): its own pass */
                    if (p.dropout_mask && rl < rows) {
                        uint8_t *const mrow =
                            p.dropout_mask + ((bhq * p.seqlen_q) + r) * p.seqlen_k;
#pragma unroll 1
                        for (int x = 0; x < 2 * NT; x++) {
                            const int c = (int)col_lo + (x >> 1) * 8 + 2 * t + (x & 1);
                            if (((kept >> x) & 1u) && c >= vis_lo[mt][hf] &&
                                c < vis_hi[mt][hf])
                                mrow[c] = 1;
                        }
                    }
#pragma unroll
                    for (int nt = 0; nt < NT; nt++)
#pragma unroll
                        for (int e = 0; e < 2; e++)
                            if (!((kept >> (2 * nt + e)) & 1u))
                                s[mt][nt][2 * hf + e] = 0.0f;
                }
        }
        /* P rounded to the input dtype, already in A-fragment order */
        uint32_t pa[MT][KP][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int kk = 0; kk < KP; kk++) {
                pa[mt][kk][0] = pack2<IS_BF16>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                pa[mt][kk][1] = pack2<IS_BF16>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                pa[mt][kk][2] =
                    pack2<IS_BF16>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                pa[mt][kk][3] =
                    pack2<IS_BF16>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }

        /* groups in flight: V_step, K_next (, V_next); wait for V_step */
        cp_async_wait<VS == 2 ? 2 : 1>();
        __syncthreads();

        /* O += round(P) V_j (Algorithm 1 line 10) */
        const uint16_t *const sVl = cV + v_row * SD;
#pragma unroll
        for (int kk = 0; kk < KP; kk++) {
            unroll_for<DT / 2>([&](auto dp_) {
                constexpr int dp = decltype(dp_)::value;
                uint32_t bv[4];
                ldmatrix_x4_trans(bv, sVl + kk * 16 * SD + chunk_off<dp>(v_key));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_16816<IS_BF16>(acc[mt][2 * dp], pa[mt][kk], bv[0], bv[1]);
                    mma_16816<IS_BF16>(acc[mt][2 * dp + 1], pa[mt][kk], bv[2], bv[3]);
                }
            });
        }
    };

    for (int step = 0; step < nsteps; step++) {
        const int buf = step & 1;
        const int64_t col_lo = fa2_kv_block_at(kv, step) * BN;
        /* groups in flight: K_step, V_step; wait for K_step */
        cp_async_wait<1>();
        __syncthreads(); /* K_step visible; every warp is done with step-1 */
        const bool more = step + 1 < nsteps;
        const int64_t nlo = more ? fa2_kv_block_at(kv, step + 1) * BN : 0;
        const int ncols = (int)(seqlen_k - nlo < BN ? seqlen_k - nlo : BN);
        /* empty groups (no next block) keep the counts uniform */
        if (more)
            load_tile<BN, HD, SD, NTHREADS>(sK + (buf ^ 1) * BN * SD,
                                            gK + nlo * p.k_sr, p.k_sr, ncols,
                                            d, tid);
        cp_async_commit();
        if (VS == 2) {
            if (more)
                load_tile<BN, HD, SD, NTHREADS>(sV + (buf ^ 1) * BN * SD,
                                                gV + nlo * p.v_sr, p.v_sr, ncols,
                                                d, tid);
            cp_async_commit();
        }
        const uint16_t *const cK = sK + buf * BN * SD;
        const uint16_t *const cV = sV + (VS == 2 ? buf : 0) * BN * SD;
        kv_step(col_lo, cK, cV);
        if (VS == 1) {
            /* one V buffer: the next V goes in once every warp is done
             * with this one */
            __syncthreads();
            if (more)
                load_tile<BN, HD, SD, NTHREADS>(sV, gV + nlo * p.v_sr, p.v_sr,
                                                ncols, d, tid);
            cp_async_commit();
        }
    }
    cp_async_wait<0>(); /* nothing may land in sQ after this point */

    /* epilogue (Algorithm 1 lines 12-13): 1/l once, O and LSE written once */
    float inv_l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float l = st[mt][hf].l;
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            st[mt][hf].l = l;
            inv_l[mt][hf] = fa2_softmax_inv_l(st[mt][hf]);
            if (MODS) /* (1 / l) / (1 - p), rounded once */
                inv_l[mt][hf] = fa2_dropout_out_scale(&p.dropout, inv_l[mt][hf]);
        }
    /* each warp overwrites only its own rows of sQ, which only it read */
    if (nsteps == 0)
        __syncthreads(); /* Q rows were loaded by all threads, never waited */
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int r = warp * RW + mt * 16 + g + hf * 8;
                *reinterpret_cast<uint32_t *>(sQ + soff<SD>(r, dt) + 2 * t) =
                    pack2<IS_BF16>(acc[mt][dt][2 * hf] * inv_l[mt][hf],
                                   acc[mt][dt][2 * hf + 1] * inv_l[mt][hf]);
            }
    __syncwarp();
    uint16_t *const gO = (uint16_t *)p.o + batch * p.o_sb +
                         (q_start + row_lo) * p.o_sr + (int64_t)h * p.o_sh;
    {
        constexpr int TOTAL = RW * DT;
#pragma unroll
        for (int i = 0; i < (TOTAL + 31) / 32; i++) {
            const int idx = lane + i * 32;
            if (TOTAL % 32 == 0 || idx < TOTAL) {
                const int r = warp * RW + idx / DT, c = idx % DT;
                if (r < rows && c * 8 < d)
                    *reinterpret_cast<uint4 *>(gO + (int64_t)r * p.o_sr + c * 8) =
                        *reinterpret_cast<const uint4 *>(sQ + soff<SD>(r, c));
            }
        }
    }
    if (p.lse && t == 0) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int r = warp * RW + mt * 16 + g + hf * 8;
                if (r < rows)
                    p.lse[batch * p.lse_sb + (int64_t)h * p.lse_sh +
                          (q_start + row_lo + r) * p.lse_sr] =
                        fa2_softmax_lse(st[mt][hf], lse_scale);
            }
    }
#ifdef FA2_TRAFFIC_COUNTERS
    /* the bytes this block asked global memory for: Q and O rows once, the
     * valid rows of every K/V tile it visited, and one float of LSE per
     * row. Zero-filled (predicated-off) rows and columns are not loads. */
    if (p.traffic && tid == 0) {
        const unsigned long long row_bytes = (unsigned long long)d * 2u;
        unsigned long long kv_rows = 0;
        if (nsteps > 0) {
            const int64_t hi = kv.hi * BN < seqlen_k ? kv.hi * BN : seqlen_k;
            kv_rows = (unsigned long long)(hi - kv.lo * BN);
        }
        atomicAdd(&p.traffic[FA2_TRAFFIC_Q], (unsigned long long)rows * row_bytes);
        atomicAdd(&p.traffic[FA2_TRAFFIC_K], kv_rows * row_bytes);
        atomicAdd(&p.traffic[FA2_TRAFFIC_V], kv_rows * row_bytes);
        atomicAdd(&p.traffic[FA2_TRAFFIC_O], (unsigned long long)rows * row_bytes);
        if (p.lse)
            atomicAdd(&p.traffic[FA2_TRAFFIC_LSE], (unsigned long long)rows * 4u);
    }
#endif
}

/* Launch the kernel for head dim HD (the caller checked everything). */
template <int HD>
fa2_status launch_fwd(const fa2_fwd_params &p, bool bf16, cudaStream_t stream)
{
    constexpr int smem = FA2_FWD_SMEM_BYTES(HD);
    void (*kern)(const fa2_fwd_params) =
        p.mods ? (bf16 ? fwd_kernel<HD, true, true> : fwd_kernel<HD, false, true>)
               : (bf16 ? fwd_kernel<HD, true, false> : fwd_kernel<HD, false, false>);
    cudaError_t err;
    if (smem > 48 * 1024) {
        /* cheap, and per device; set it every time rather than cache it */
        err = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   smem);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            return fa2_fail(FA2_ERR_UNSUPPORTED, "the head-dim-%d kernel needs %d "
                            "bytes of shared memory per block and this device "
                            "refuses that (%s)", HD, smem, cudaGetErrorString(err));
        }
    }
    const int64_t grid = (int64_t)p.m_blocks * p.heads_q * p.num_seqs;
    kern<<<(unsigned)grid, FA2_FWD_WARPS(HD) * 32, smem, stream>>>(p);
    err = cudaGetLastError();
    if (err != cudaSuccess)
        return fa2_fail(FA2_ERR_CUDA, "launching the head-dim-%d forward kernel "
                        "(%lld blocks of %d threads, %d bytes of shared memory) "
                        "failed: %s", HD, (long long)grid, FA2_FWD_WARPS(HD) * 32,
                        smem, cudaGetErrorString(err));
    return FA2_OK;
}

} // namespace fa2gpu

/* gpu/fwd_hdNN.cu: one launcher per head dim, both dtypes */
#define FA2_FWD_DEFINE_LAUNCHER(HD)                                            \
    extern "C" fa2_status fa2_cuda_fwd_hd##HD(const fa2_fwd_params *p,         \
                                              int bf16, void *stream)          \
    {                                                                          \
        return fa2gpu::launch_fwd<HD>(*p, bf16 != 0, (cudaStream_t)stream);    \
    }

#endif /* FA2_GPU_FWD_KERNEL_CUH */
