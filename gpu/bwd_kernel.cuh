/* bwd_kernel.cuh — the FlashAttention-2 backward kernels (FA2 paper,
 * Algorithm 2; doc/design.md, "The numerics contract"), step for step as cpu/tiled_bwd.c:
 *
 *   preprocess, one thread block per (sequence, query head, query block):
 *       D = rowsum(dO o O) (float32), the dQ accumulator rows cleared, the
 *       deterministic mode's turn words reset and its second accumulator
 *       cleared;
 *   main, one thread block per (sequence, key/value head, key block j):
 *       K_j, V_j resident in shared memory; for each query head of the GQA
 *       group, for each query block i that sees key block j
 *       (fa2_bwd_q_blocks), ascending:
 *           Q_i, dO_i, LSE_i, D_i by cp.async, double-buffered (the next
 *               step's copy overlaps this one)
 *           S^T  = K_j Q_i^T                 mma.m16n8k16, f32 acc
 *           mask (tiles fa2_tile_needs_mask names; fa2_visible_rows per key)
 *           P^T  = exp2(S^T c - LSE log2 e)  (fa2_bwd_p, fa2_bwd_lse_scaled)
 *           dV_j += round(P)^T dO_i          P^T straight from the registers
 *           dP^T = V_j dO_i^T
 *           dS^T = P^T o (dP^T - D)
 *           dK_j += round(dS)^T Q_i          dS^T straight from the registers
 *           dQ_i += round(dS) K_j            dS^T through shared memory,
 *                                            float32 atomics into the
 *                                            accumulator; deterministic:
 *                                            key blocks take turns in
 *                                            ascending order
 *       dK_j = round(scale dK_j), dV_j = round(dV_j), written once (summed
 *       over the GQA group on chip)
 *   postprocess, per (sequence, query head, query block):
 *       dQ = round(scale acc).
 *
 * Warps split the key rows (16 each): every tile the warp computes is
 * transposed with respect to the paper's (keys are rows), so that P^T and
 * dS^T, computed as mma accumulators, are already the A operands of the
 * dV and dK products. Shared memory rows are XOR-swizzled by 16-byte chunk
 * (chunk c of row r at c ^ (r % 8)), so the eight row addresses of every
 * ldmatrix phase fall in different bank groups.
 */
#ifndef FA2_GPU_BWD_KERNEL_CUH
#define FA2_GPU_BWD_KERNEL_CUH

#include "config.h"
#include "fa2_internal.h"
#include "fa2_philox.h"
#include "fa2_score.h"
#include "fa2_tile.h"
#include "bwd_config.h"
#include "bwd_params.h"
#include "ptx.cuh"
#include "bwd_block.cuh"
#include "bwd_mods.cuh"

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

namespace fa2bwd {

using fa2gpu::cp_async_16;
using fa2gpu::cp_async_commit;
using fa2gpu::cp_async_wait;
using fa2gpu::ldmatrix_x4;
using fa2gpu::ldmatrix_x4_trans;
using fa2gpu::mma_16816;
using fa2gpu::pack2;
using fa2gpu::smem_addr;

/* element offset of 16-byte chunk c of row r in a swizzled tile of SD
 * elements a row (SD a multiple of 64) */
template <int SD> __device__ __forceinline__ int swz(int r, int c)
{
    return r * SD + ((c ^ (r & 7)) << 3);
}

/* cp.async a [ROWS][SD] tile: rows valid_rows.. and columns d.. are
 * zero-filled (predicated off, nothing read) */
template <int ROWS, int SD, int NTHREADS>
__device__ __forceinline__ void load_rows(uint16_t *s, const uint16_t *g,
                                          int64_t row_stride, int valid_rows,
                                          int d, int tid)
{
    constexpr int CPR = SD / 8;
    constexpr int TOTAL = ROWS * CPR;
#pragma unroll
    for (int i = 0; i < (TOTAL + NTHREADS - 1) / NTHREADS; i++) {
        const int idx = tid + i * NTHREADS;
        if (TOTAL % NTHREADS == 0 || idx < TOTAL) {
            const int r = idx / CPR, c = idx % CPR;
            const bool ok = r < valid_rows && c * 8 < d;
            const uint16_t *src = ok ? g + (int64_t)r * row_stride + c * 8 : g;
            cp_async_16(s + swz<SD>(r, c), src, ok ? 16 : 0);
        }
    }
}

/* ---- preprocess: D = rowsum(dO o O), clear the accumulator ---------------- */

template <bool IS_BF16> __device__ __forceinline__ float to_f(uint16_t x)
{
    if (IS_BF16)
        return __uint_as_float((uint32_t)x << 16);
    return __half2float(__ushort_as_half(x));
}

/* The row kernels are memory-bound: every thread moves 16-byte chunks,
 * a row's d/8 chunks spread over G lanes (G the power of two >= d/8), so a
 * warp covers 32/G rows at once and every lane has work; the loads go
 * through the read-only path so that the compiler may keep several in
 * flight. */
__device__ __forceinline__ int row_lanes(int chunks)
{
    int g = 1;
    while (g < chunks)
        g <<= 1;
    return g;
}

/* SINKS: also this query block's share of dsinks (fa2_score.h: dsink =
 * -sum over rows of P_sink D), summed in a fixed order: each row's term by
 * the lane that holds its D, then over the lanes of a warp (a fixed
 * butterfly), then over the warps in order by thread 0; bwd_dsinks adds
 * the shares. Deterministic, but not the CPU mirror's sequential order. */
template <int BM, bool IS_BF16, bool SINKS>
__global__ void __launch_bounds__(FA2_BWD_ROWS_WARPS * 32)
    bwd_preprocess(const __grid_constant__ fa2_bwd_params p)
{
    const int m_block = (int)(blockIdx.x % p.m_blocks);
    const int64_t bh = blockIdx.x / p.m_blocks;
    const int h = (int)(bh % p.heads_q), b = (int)(bh / p.heads_q);
    const seq_info s = get_seq(p, b);
    const int64_t row_lo = (int64_t)m_block * BM;
    if (row_lo >= s.seqlen_q) {
        if (SINKS && threadIdx.x == 0) /* no rows: a zero share */
            p.dsink_part[bh * p.m_blocks + m_block] = 0.0f;
        return;
    }
    const int rows = (int)(s.seqlen_q - row_lo < BM ? s.seqlen_q - row_lo : BM);
    const int d = p.head_dim, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int chunks = d / 8, G = row_lanes(chunks), rpw = 32 / G;
    const int sub = lane / G, c = lane % G;
    if (threadIdx.x < 2 && p.deterministic)
        p.turn[(((int64_t)b * p.heads_q + h) * p.m_blocks + m_block) * 2 + threadIdx.x] = 0;
    const int64_t acc_row0 = (s.batch * p.heads_q + h) * p.rows + s.q_start + row_lo;
    float dsink = 0.0f; /* SINKS: this lane's rows' -P_sink D */
#pragma unroll 4
    for (int r0 = warp * rpw; r0 < rows; r0 += FA2_BWD_ROWS_WARPS * rpw) {
        const int r = r0 + sub; /* r0 is the same in every lane: the shuffles are whole-warp */
        const bool ok = r < rows && c < chunks;
        float sum = 0.0f;
        if (ok) {
            const int64_t grow = s.q_start + row_lo + r;
            const uint4 ov = __ldg(reinterpret_cast<const uint4 *>(
                (const uint16_t *)p.o + s.batch * p.o_sb + grow * p.o_sr +
                (int64_t)h * p.o_sh + c * 8));
            const uint4 dv = __ldg(reinterpret_cast<const uint4 *>(
                (const uint16_t *)p.dout + s.batch * p.do_sb + grow * p.do_sr +
                (int64_t)h * p.do_sh + c * 8));
            const uint16_t *oe = reinterpret_cast<const uint16_t *>(&ov);
            const uint16_t *de = reinterpret_cast<const uint16_t *>(&dv);
#pragma unroll
            for (int e = 0; e < 8; e++)
                sum = fmaf(to_f<IS_BF16>(de[e]), to_f<IS_BF16>(oe[e]), sum);
        }
        for (int off = G >> 1; off > 0; off >>= 1)
            sum += __shfl_xor_sync(0xffffffffu, sum, off);
        if (ok) {
            if (c == 0)
                p.dsum[acc_row0 + r] = sum;
            if (SINKS && c == 0) {
                const float lse = p.lse[s.batch * p.lse_sb + (int64_t)h * p.lse_sh +
                                        (s.q_start + row_lo + r) * p.lse_sr];
                dsink -= FA2_MUL_RN(fa2_sink_p(p.sinks[h], fa2_bwd_lse_scaled(lse)), sum);
            }
            float4 *acc = reinterpret_cast<float4 *>(p.dq_acc + (acc_row0 + r) * d + c * 8);
            acc[0] = acc[1] = make_float4(0.f, 0.f, 0.f, 0.f);
            if (p.deterministic) {
                float4 *acc2 = reinterpret_cast<float4 *>(
                    p.dq_acc + p.acc2_off + (acc_row0 + r) * d + c * 8);
                acc2[0] = acc2[1] = make_float4(0.f, 0.f, 0.f, 0.f);
            }
        }
    }
    if (SINKS) {
        __shared__ float warp_share[FA2_BWD_ROWS_WARPS];
        for (int off = 16; off > 0; off >>= 1)
            dsink += __shfl_xor_sync(0xffffffffu, dsink, off);
        if (lane == 0)
            warp_share[warp] = dsink;
        __syncthreads();
        if (threadIdx.x == 0) {
            float share = 0.0f;
            for (int w = 0; w < FA2_BWD_ROWS_WARPS; w++)
                share += warp_share[w];
            p.dsink_part[bh * p.m_blocks + m_block] = share;
        }
    }
    if (threadIdx.x == 0) {
        FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_O), (int64_t)rows * d * 2);
        FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_DO), (int64_t)rows * d * 2);
        FA2_BWD_COUNT(p, FA2_WR(FA2_SIM_T_D), (int64_t)rows * 4);
        FA2_BWD_COUNT(p, FA2_WR(FA2_SIM_T_DQ_ACCUM),
                      (int64_t)rows * d * 4 * (p.deterministic ? 2 : 1));
        if (SINKS) /* its rows' LSE (the simulator has no sinks) */
            FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_LSE), (int64_t)rows * 4);
    }
}

/* ---- postprocess: dQ = round(scale acc) ------------------------------------ */

/* deterministic mode: acc = chain 0 + chain 1, added in that order
 * (fa2_bwd_dq_turn; the CPU mirror adds them the same way) */
__device__ __forceinline__ float4 add4(float4 a, float4 b)
{
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

template <int BM, bool IS_BF16>
__global__ void __launch_bounds__(FA2_BWD_ROWS_WARPS * 32)
    bwd_postprocess(const __grid_constant__ fa2_bwd_params p)
{
    const int m_block = (int)(blockIdx.x % p.m_blocks);
    const int64_t bh = blockIdx.x / p.m_blocks;
    const int h = (int)(bh % p.heads_q), b = (int)(bh / p.heads_q);
    const seq_info s = get_seq(p, b);
    const int64_t row_lo = (int64_t)m_block * BM;
    if (row_lo >= s.seqlen_q)
        return;
    const int rows = (int)(s.seqlen_q - row_lo < BM ? s.seqlen_q - row_lo : BM);
    const int d = p.head_dim, chunks = d / 8;
    const int64_t acc_row0 = (s.batch * p.heads_q + h) * p.rows + s.q_start + row_lo;
#pragma unroll 4
    for (int i = threadIdx.x; i < rows * chunks; i += FA2_BWD_ROWS_WARPS * 32) {
        const int r = i / chunks, c = i % chunks;
        const float4 *acc =
            reinterpret_cast<const float4 *>(p.dq_acc + (acc_row0 + r) * d + c * 8);
        float4 a0 = __ldg(acc), a1 = __ldg(acc + 1);
        if (p.deterministic) {
            const float4 *acc2 = acc + p.acc2_off / 4;
            a0 = add4(a0, __ldg(acc2));
            a1 = add4(a1, __ldg(acc2 + 1));
        }
        uint4 out;
        out.x = pack2<IS_BF16>(a0.x * p.scale, a0.y * p.scale);
        out.y = pack2<IS_BF16>(a0.z * p.scale, a0.w * p.scale);
        out.z = pack2<IS_BF16>(a1.x * p.scale, a1.y * p.scale);
        out.w = pack2<IS_BF16>(a1.z * p.scale, a1.w * p.scale);
        *reinterpret_cast<uint4 *>((uint16_t *)p.dq + s.batch * p.dq_sb +
                                   (s.q_start + row_lo + r) * p.dq_sr +
                                   (int64_t)h * p.dq_sh + c * 8) = out;
    }
    if (threadIdx.x == 0) {
        FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_DQ_ACCUM),
                      (int64_t)rows * d * 4 * (p.deterministic ? 2 : 1));
        FA2_BWD_COUNT(p, FA2_WR(FA2_SIM_T_DQ), (int64_t)rows * d * 2);
    }
}

/* ---- dsinks: the preprocess's shares, summed ----------------------------- */

/* dsinks[h] = sum over sequences b of (sum over query blocks of b's
 * shares), in ascending order: the CPU mirror's structure (a share per
 * sequence, then their sum), with the rows of a query block already
 * summed by the preprocess's fixed tree. One thread per head: the shares
 * are few (sequences x query blocks). static: each gpu/bwd_hdNN.cu has
 * its own copy. */
static __global__ void bwd_dsinks(const __grid_constant__ fa2_bwd_params p)
{
    const int h = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (h >= p.heads_q)
        return;
    float sum = 0.0f;
    for (int b = 0; b < p.num_seqs; b++) {
        const float *part = p.dsink_part + ((int64_t)b * p.heads_q + h) * p.m_blocks;
        float seq = 0.0f;
        for (int m = 0; m < p.m_blocks; m++)
            seq += part[m];
        sum += seq;
    }
    p.dsinks[h] = sum;
}

/* ---- the main kernel --------------------------------------------------------- */

/* Register pressure (the tiling itself is bwd_config.h's): each step's
 * BM query columns are processed in QSPLIT chunks, one after the other
 * (S^T, P^T, dP^T, dS^T and the dV/dK products of one chunk before the
 * next), so only BM/QSPLIT columns of S^T and dP^T are live at a time; and
 * with HOIST_KV the warp's K_j/V_j A fragments (16 key rows x head dim)
 * stay in registers for the whole block instead of being reloaded by
 * ldmatrix every step. Neither changes any result bit: every accumulator
 * adds the same products in the same order. Overridable at build time
 * (-DFA2_BWD_QSPLIT_64=1 ...) for tuning. */
#ifndef FA2_BWD_QSPLIT_64
#define FA2_BWD_QSPLIT_64 2
#endif
#ifndef FA2_BWD_QSPLIT_128
#define FA2_BWD_QSPLIT_128 2
#endif
#ifndef FA2_BWD_QSPLIT_256
#define FA2_BWD_QSPLIT_256 2
#endif
#ifndef FA2_BWD_HOIST_KV_64
#define FA2_BWD_HOIST_KV_64 1
#endif
#ifndef FA2_BWD_HOIST_KV_128
#define FA2_BWD_HOIST_KV_128 0
#endif
#define FA2_BWD_QSPLIT(HD)                                                     \
    ((HD) <= 64 ? FA2_BWD_QSPLIT_64                                            \
                : (HD) <= 128 ? FA2_BWD_QSPLIT_128 : FA2_BWD_QSPLIT_256)
#define FA2_BWD_HOIST_KV(HD)                                                   \
    ((HD) <= 64 ? FA2_BWD_HOIST_KV_64 : (HD) <= 128 ? FA2_BWD_HOIST_KV_128 : 0)

/* MODS: the score modifiers and dropout (p.mods; lib/fa2_score.h,
 * lib/fa2_philox.h) in a second instantiation, as the forward does, so
 * that the plain kernel's code is the one it always was; per element of
 * S^T in cpu/tiled_bwd.c's order and roundings (bwd_mods.cuh, which the
 * wgmma kernel shares). */
template <int HD, bool IS_BF16, bool MODS>
__global__ void __launch_bounds__(FA2_BWD_WARPS(HD) * 32, 1)
    bwd_kernel(const __grid_constant__ fa2_bwd_params p)
{
    constexpr int BM = FA2_BWD_BLOCK_M(HD);
    constexpr int BN = FA2_BWD_BLOCK_N(HD);
    constexpr int DS = FA2_BWD_DSPLIT(HD);
    constexpr int NW = FA2_BWD_WARPS(HD);
    constexpr int NTHREADS = NW * 32;
    constexpr int SD = HD;      /* shared row length (elements)          */
    constexpr int KG = BN / 16; /* key groups of 16 rows                 */
    constexpr int DW = HD / DS; /* dK/dV columns of one warp             */
    constexpr int NQ = BM / 8;  /* n8 tiles of S^T (query columns)       */
    constexpr int KD = HD / 16; /* k16 steps over the head dim           */
    constexpr int KM = BM / 16; /* k16 steps over the query rows         */
    constexpr int DT = DW / 8;  /* n8 tiles of a warp's dK/dV            */
    constexpr int MQ = BM / 16; /* m16 tiles of dQ_i                     */
    constexpr int QS = NW / MQ; /* column slices of dQ_i                 */
    constexpr int QW = HD / QS; /* dQ columns of one warp                */
    constexpr int QT = QW / 8;  /* n8 tiles of a warp's dQ               */
    constexpr int KN = BN / 16; /* k16 steps of dS K                     */
    constexpr int QSPLIT = FA2_BWD_QSPLIT(HD);
    constexpr int CQ = BM / QSPLIT; /* query columns of one chunk         */
    constexpr int NC = NQ / QSPLIT; /* n8 tiles of one chunk              */
    constexpr int KC = CQ / 16;     /* k16 steps over a chunk's queries   */
    constexpr bool HOIST = FA2_BWD_HOIST_KV(HD) != 0;
    static_assert(NW % MQ == 0 && DT % 2 == 0 && QT % 2 == 0 && NQ % 2 == 0 &&
                      BM % 64 == 0 && SD % 64 == 0 && KM == QSPLIT * KC,
                  "tiling");

    extern __shared__ __align__(128) uint16_t smem[];
    uint16_t *const sK = smem;                 /* [BN][SD]      */
    uint16_t *const sV = sK + BN * SD;         /* [BN][SD]      */
    uint16_t *const sQ = sV + BN * SD;         /* [2][BM][SD]   */
    uint16_t *const sdO = sQ + 2 * BM * SD;    /* [2][BM][SD]   */
    uint16_t *const sdS = sdO + 2 * BM * SD;   /* [BN][BM]      */
    float *const sLse = reinterpret_cast<float *>(sdS + BN * BM); /* [2][BM] */
    float *const sD = sLse + 2 * BM;                               /* [2][BM] */

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int kg = warp % KG, dh = warp / KG; /* key group, column half */

    const bwd_block blk = bwd_block_of<BM, BN>(p); /* key block j, its steps */
    if (blk.cols == 0)
        return; /* this sequence is shorter than the longest */
    const int d = blk.d, nsteps = blk.nsteps;

    /* the query rows each of this thread's two key rows sees */
    int vis_lo[2], vis_hi[2];
#pragma unroll
    for (int hf = 0; hf < 2; hf++)
        bwd_visible_rows(blk, kg * 16 + g + hf * 8, vis_lo[hf], vis_hi[hf]);
#ifdef FA2_TRAFFIC_COUNTERS
    unsigned long long tr_q = 0, tr_row4 = 0; /* Q (= dO) bytes, LSE (= D) bytes */
#endif

    /* Q_i, dO_i, LSE_i and D_i of step st into buffer buf */
    auto issue = [&](int st, int buf) {
        const bwd_step q = bwd_step_of<BM>(blk, st);
        load_rows<BM, SD, NTHREADS>(sQ + buf * BM * SD, bwd_q_rows(p, blk, q), p.q_sr,
                                    q.rows, d, tid);
        load_rows<BM, SD, NTHREADS>(sdO + buf * BM * SD, bwd_do_rows(p, blk, q),
                                    p.do_sr, q.rows, d, tid);
        bwd_load_row_stats<BM, NTHREADS>(p, blk, q, sLse + buf * BM, sD + buf * BM, tid);
#ifdef FA2_TRAFFIC_COUNTERS
        tr_q += (unsigned long long)q.rows * d * 2;
        tr_row4 += (unsigned long long)q.rows * 4;
#endif
    };

    /* prologue: K_j and V_j (resident), and the first query block */
    load_rows<BN, SD, NTHREADS>(sK, bwd_k_rows(p, blk), p.k_sr, blk.cols, d, tid);
    load_rows<BN, SD, NTHREADS>(sV, bwd_v_rows(p, blk), p.v_sr, blk.cols, d, tid);
    if (nsteps > 0)
        issue(0, 0);
    cp_async_commit();

    float dk[DT][4], dv[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            dk[i][e] = dv[i][e] = 0.0f;

    /* ldmatrix lane addresses (PTX ISA: lanes 8i..8i+7 give matrix i's rows)
     *   A, row-major [m][k]:   row (lane & 7) + 8 ((lane >> 3) & 1), chunk + (lane >> 4)
     *   B, row-major [n][k]:   row (lane & 7) + 8 (lane >> 4),       chunk + ((lane >> 3) & 1)
     *   B.trans, [k][n]:       row (lane & 7) + 8 ((lane >> 3) & 1), chunk + (lane >> 4)
     *   A.trans, [k][m]:       row (lane & 7) + 8 (lane >> 4),       chunk + ((lane >> 3) & 1) */
    const int a_row = (lane & 7) + ((lane >> 3) & 1) * 8, a_hi = lane >> 4;
    const int b_row = (lane & 7) + (lane >> 4) * 8, b_hi = (lane >> 3) & 1;
    const int krow0 = kg * 16; /* this warp's first key row in the tile */

    /* HOIST_KV: this warp's A fragments of K_j and V_j, loaded once */
    uint32_t kfr[HOIST ? KD : 1][4], vfr[HOIST ? KD : 1][4];
    if (HOIST) {
        cp_async_wait<0>();
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < (HOIST ? KD : 1); kk++) {
            ldmatrix_x4(kfr[kk], sK + swz<SD>(krow0 + a_row, 2 * kk + a_hi));
            ldmatrix_x4(vfr[kk], sV + swz<SD>(krow0 + a_row, 2 * kk + a_hi));
        }
    }

    for (int st = 0; st < nsteps; st++) {
        const int buf = st & 1;
        const bwd_step q = bwd_step_of<BM>(blk, st);
        const int64_t row_lo = q.row_lo;
        const int rows = q.rows;
        cp_async_wait<0>();
        __syncthreads(); /* step st's tiles visible; step st-1 done everywhere */
        if (st + 1 < nsteps)
            issue(st + 1, buf ^ 1);
        cp_async_commit();

        const uint16_t *const cQ = sQ + buf * BM * SD;
        const uint16_t *const cdO = sdO + buf * BM * SD;
        const float *const cL = sLse + buf * BM;
        const float *const cD = sD + buf * BM;

        const bool need_mask =
            fa2_tile_needs_mask(&blk.mask, row_lo, row_lo + rows, blk.col_lo, BN);
        /* MODS: this step's score modifiers (ALiBi's slope is per query head) */
        fa2_score_mod sm = {};
        if constexpr (MODS)
            sm = bwd_step_mods(p, blk, q);
#pragma unroll
        for (int ch = 0; ch < QSPLIT; ch++) {
        /* S^T = K_j Q_i^T and dP^T = V_j dO_i^T, this warp's 16 key rows,
         * query columns ch*CQ .. ch*CQ + CQ - 1 */
        float sc[NC][4], dp[NC][4];
#pragma unroll
        for (int i = 0; i < NC; i++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                sc[i][e] = dp[i][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t akl[4], avl[4];
            const uint32_t *ak = akl, *av = avl;
            if (HOIST) {
                ak = kfr[HOIST ? kk : 0];
                av = vfr[HOIST ? kk : 0];
            } else {
                ldmatrix_x4(akl, sK + swz<SD>(krow0 + a_row, 2 * kk + a_hi));
                ldmatrix_x4(avl, sV + swz<SD>(krow0 + a_row, 2 * kk + a_hi));
            }
#pragma unroll
            for (int np = 0; np < NC / 2; np++) {
                uint32_t bq[4], bo[4];
                const int qr = ch * CQ + np * 16 + b_row;
                ldmatrix_x4(bq, cQ + swz<SD>(qr, 2 * kk + b_hi));
                ldmatrix_x4(bo, cdO + swz<SD>(qr, 2 * kk + b_hi));
                mma_16816<IS_BF16>(sc[2 * np], ak, bq[0], bq[1]);
                mma_16816<IS_BF16>(sc[2 * np + 1], ak, bq[2], bq[3]);
                mma_16816<IS_BF16>(dp[2 * np], av, bo[0], bo[1]);
                mma_16816<IS_BF16>(dp[2 * np + 1], av, bo[2], bo[3]);
            }
        }

        if constexpr (MODS) {
            mods_chunk<NC, CQ>(p, sm, blk, q, ch, krow0, g, t, vis_lo, vis_hi, cL, cD,
                               sc, dp);
        } else {
        /* the element mask, on tiles that need it: query row r of key row
         * (kg*16 + g + 8 hf) is visible iff vis_lo[hf] <= r < vis_hi[hf] */
        if (need_mask) {
#pragma unroll
            for (int nt = 0; nt < NC; nt++)
#pragma unroll
                for (int hf = 0; hf < 2; hf++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int r = (int)row_lo + ch * CQ + nt * 8 + 2 * t + e;
                        if (r < vis_lo[hf] || r >= vis_hi[hf])
                            sc[nt][2 * hf + e] = FA2_NEG_INF;
                    }
        }
        /* P^T from the saved LSE; dS^T = P^T o (dP^T - D) (in dp) */
#pragma unroll
        for (int nt = 0; nt < NC; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int c = ch * CQ + nt * 8 + 2 * t + e;
                const float lse2 = fa2_bwd_lse_scaled(cL[c]);
                const float Dc = cD[c];
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const float pe = fa2_bwd_p(sc[nt][2 * hf + e], p.scale_log2, lse2);
                    sc[nt][2 * hf + e] = pe;
                    dp[nt][2 * hf + e] = pe * (dp[nt][2 * hf + e] - Dc);
                }
            }
        } /* plain */

        /* dV_j += round(P)^T dO_i and dK_j += round(dS)^T Q_i: the A
         * fragments are the accumulators of two adjacent n8 tiles */
#pragma unroll
        for (int kc = 0; kc < KC; kc++) {
            const int kk = ch * KC + kc; /* k16 step over the query rows */
            uint32_t pa[4], sa[4];
            pa[0] = pack2<IS_BF16>(sc[2 * kc][0], sc[2 * kc][1]);
            pa[1] = pack2<IS_BF16>(sc[2 * kc][2], sc[2 * kc][3]);
            pa[2] = pack2<IS_BF16>(sc[2 * kc + 1][0], sc[2 * kc + 1][1]);
            pa[3] = pack2<IS_BF16>(sc[2 * kc + 1][2], sc[2 * kc + 1][3]);
            sa[0] = pack2<IS_BF16>(dp[2 * kc][0], dp[2 * kc][1]);
            sa[1] = pack2<IS_BF16>(dp[2 * kc][2], dp[2 * kc][3]);
            sa[2] = pack2<IS_BF16>(dp[2 * kc + 1][0], dp[2 * kc + 1][1]);
            sa[3] = pack2<IS_BF16>(dp[2 * kc + 1][2], dp[2 * kc + 1][3]);
            if (dh == 0) { /* round(dS)^T to shared memory, for dQ */
                const int r0 = krow0 + g, r1 = r0 + 8;
                *reinterpret_cast<uint32_t *>(sdS + swz<BM>(r0, 2 * kk) + 2 * t) = sa[0];
                *reinterpret_cast<uint32_t *>(sdS + swz<BM>(r1, 2 * kk) + 2 * t) = sa[1];
                *reinterpret_cast<uint32_t *>(sdS + swz<BM>(r0, 2 * kk + 1) + 2 * t) = sa[2];
                *reinterpret_cast<uint32_t *>(sdS + swz<BM>(r1, 2 * kk + 1) + 2 * t) = sa[3];
            }
#pragma unroll
            for (int dp2 = 0; dp2 < DT / 2; dp2++) {
                const int chunk = dh * (DW / 8) + 2 * dp2 + a_hi;
                uint32_t bo[4], bq[4];
                ldmatrix_x4_trans(bo, cdO + swz<SD>(kk * 16 + a_row, chunk));
                ldmatrix_x4_trans(bq, cQ + swz<SD>(kk * 16 + a_row, chunk));
                mma_16816<IS_BF16>(dv[2 * dp2], pa, bo[0], bo[1]);
                mma_16816<IS_BF16>(dv[2 * dp2 + 1], pa, bo[2], bo[3]);
                mma_16816<IS_BF16>(dk[2 * dp2], sa, bq[0], bq[1]);
                mma_16816<IS_BF16>(dk[2 * dp2 + 1], sa, bq[2], bq[3]);
            }
        }
        } /* chunk */
        __syncthreads(); /* dS^T complete */

        /* dQ_i's share: round(dS) K_j, warp (mq, qs) owns rows 16 mq.. and
         * columns QW qs.. */
        {
            const int mq = warp % MQ, qs = warp / MQ;
            float acc[QT][4];
#pragma unroll
            for (int i = 0; i < QT; i++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    acc[i][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KN; kk++) {
                uint32_t a[4];
                ldmatrix_x4_trans(a, sdS + swz<BM>(kk * 16 + b_row, 2 * mq + b_hi));
#pragma unroll
                for (int dp2 = 0; dp2 < QT / 2; dp2++) {
                    uint32_t bk[4];
                    ldmatrix_x4_trans(bk, sK + swz<SD>(kk * 16 + a_row,
                                                       qs * (QW / 8) + 2 * dp2 + a_hi));
                    mma_16816<IS_BF16>(acc[2 * dp2], a, bk[0], bk[1]);
                    mma_16816<IS_BF16>(acc[2 * dp2 + 1], a, bk[2], bk[3]);
                }
            }
            const dq_turn turn = dq_turn_wait<BM, BN>(p, blk, q, tid);
            float *gacc = bwd_dq_acc(p, blk, q) + turn.shift;
#pragma unroll
            for (int dt = 0; dt < QT; dt++)
                dq_add_n8(gacc, d, rows, mq * 16 + g, qs * QW + dt * 8, t, acc[dt][0],
                          acc[dt][1], acc[dt][2], acc[dt][3]);
            dq_turn_pass(p, turn, tid);
        }
    }
    cp_async_wait<0>();

    /* dK_j = round(scale dK_j), dV_j = round(dV_j), once */
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const bwd_dkdv_row out = bwd_dkdv_row_of(p, blk, krow0 + g + hf * 8);
        if (!out.dk)
            continue;
#pragma unroll
        for (int dt = 0; dt < DT; dt++) {
            const int c = dh * DW + dt * 8 + 2 * t;
            if (c < d) {
                bwd_store_pair<IS_BF16>(out.dk + c, dk[dt][2 * hf] * p.scale,
                                        dk[dt][2 * hf + 1] * p.scale);
                bwd_store_dv<IS_BF16, MODS>(p, out.dv + c, dv[dt][2 * hf],
                                            dv[dt][2 * hf + 1]);
            }
        }
    }
#ifdef FA2_TRAFFIC_COUNTERS
    if (tid == 0)
        bwd_count_main(p, blk, tr_q, tr_row4);
#endif
}

} // namespace fa2bwd

#include "bwd_kernel_sm90.cuh"

namespace fa2bwd {

/* The main kernel for head dim HD on this device: the wgmma one
 * (bwd_kernel_sm90.cuh) when the device runs this library's sm_90a code,
 * else the mma.sync one; with modifiers (p.mods) their MODS
 * instantiations (same tiling, so the workspace and the pre- and
 * postprocess are the same). FA2_CUDA_BWD_KERNEL=mma in the environment
 * forces the mma.sync kernel (for tests and comparisons: both must give
 * the CPU mirror's results); so do ALiBi with sequences longer than
 * FA2_BWD_ALIBI_F32_MAX_LEN (bwd_mods.cuh: the wgmma kernel's distances). */
template <int HD>
void (*pick_bwd_kernel(bool bf16, const fa2_bwd_params &p, int *smem))(const fa2_bwd_params)
{
    const bool mods = p.mods != 0;
    *smem = FA2_BWD_SMEM_BYTES(HD);
    void (*kern)(const fa2_bwd_params) =
        mods ? (bf16 ? bwd_kernel<HD, true, true> : bwd_kernel<HD, false, true>)
             : (bf16 ? bwd_kernel<HD, true, false> : bwd_kernel<HD, false, false>);
    {
        void (*k90)(const fa2_bwd_params) =
            mods ? (bf16 ? bwd_kernel_sm90<HD, true, true> : bwd_kernel_sm90<HD, false, true>)
                 : (bf16 ? bwd_kernel_sm90<HD, true, false>
                         : bwd_kernel_sm90<HD, false, false>);
        const char *force = getenv("FA2_CUDA_BWD_KERNEL");
        const bool long_alibi = mods && p.alibi_slopes &&
                                (p.seqlen_q > FA2_BWD_ALIBI_F32_MAX_LEN ||
                                 p.seqlen_k > FA2_BWD_ALIBI_F32_MAX_LEN);
        cudaFuncAttributes fa;
        if (!(force && strcmp(force, "mma") == 0) && !long_alibi &&
            cudaFuncGetAttributes(&fa, k90) == cudaSuccess && fa.binaryVersion == 90) {
            *smem = FA2_BWD_SM90_SMEM_BYTES(HD);
            return k90;
        }
        (void)cudaGetLastError();
    }
    return kern;
}

/* Launch preprocess, main and postprocess for head dim HD (the caller
 * checked everything and set up the workspace). */
template <int HD>
fa2_status launch_bwd(const fa2_bwd_params &p, bool bf16, cudaStream_t stream)
{
    constexpr int BM = FA2_BWD_BLOCK_M(HD);
    int smem = 0;
    void (*pre)(const fa2_bwd_params) =
        p.sinks ? (bf16 ? bwd_preprocess<BM, true, true> : bwd_preprocess<BM, false, true>)
                : (bf16 ? bwd_preprocess<BM, true, false> : bwd_preprocess<BM, false, false>);
    void (*post)(const fa2_bwd_params) =
        bf16 ? bwd_postprocess<BM, true> : bwd_postprocess<BM, false>;
    void (*kern)(const fa2_bwd_params) = pick_bwd_kernel<HD>(bf16, p, &smem);
    cudaError_t err = cudaFuncSetAttribute(
        kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the head-dim-%d backward kernel "
                        "needs %d bytes of shared memory per block and this "
                        "device refuses that (%s)", HD, smem,
                        cudaGetErrorString(err));
    }
    const int64_t rows_grid = (int64_t)p.m_blocks * p.heads_q * p.num_seqs;
    const int64_t main_grid = (int64_t)p.n_blocks * p.heads_kv * p.num_seqs;
    if (rows_grid > 0)
        pre<<<(unsigned)rows_grid, FA2_BWD_ROWS_WARPS * 32, 0, stream>>>(p);
    /* FA2_CUDA_BWD_GRID=n (tests): the main kernel's grid as launches of at
     * most n blocks, one after the other, so that fewer blocks are resident
     * than the problem has (the deterministic order must neither deadlock
     * nor change a bit) */
    const char *grid_env = getenv("FA2_CUDA_BWD_GRID");
    const int64_t chunk = grid_env && atoll(grid_env) > 0 ? atoll(grid_env) : main_grid;
    for (int64_t first = 0; first < main_grid; first += chunk) {
        fa2_bwd_params pc = p;
        pc.block_offset = (int)first;
        const int64_t n = main_grid - first < chunk ? main_grid - first : chunk;
        kern<<<(unsigned)n, FA2_BWD_WARPS(HD) * 32, smem, stream>>>(pc);
    }
    if (rows_grid > 0)
        post<<<(unsigned)rows_grid, FA2_BWD_ROWS_WARPS * 32, 0, stream>>>(p);
    if (p.sinks && p.heads_q > 0) /* dsinks from the preprocess's shares */
        bwd_dsinks<<<(unsigned)((p.heads_q + 127) / 128), 128, 0, stream>>>(p);
    err = cudaGetLastError();
    if (err != cudaSuccess)
        return fa2_fail(FA2_ERR_CUDA, "launching the head-dim-%d backward kernels "
                        "(%lld and %lld blocks, %d bytes of shared memory) "
                        "failed: %s", HD, (long long)rows_grid,
                        (long long)main_grid, smem, cudaGetErrorString(err));
    return FA2_OK;
}

} // namespace fa2bwd

/* gpu/bwd_hdNN.cu: one launcher per head dim, both dtypes */
#define FA2_BWD_DEFINE_LAUNCHER(HD)                                            \
    extern "C" fa2_status fa2_cuda_bwd_hd##HD(const fa2_bwd_params *p,         \
                                              int bf16, void *stream)          \
    {                                                                          \
        return fa2bwd::launch_bwd<HD>(*p, bf16 != 0, (cudaStream_t)stream);    \
    }

#endif /* FA2_GPU_BWD_KERNEL_CUH */
