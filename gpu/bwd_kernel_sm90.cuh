/* bwd_kernel_sm90.cuh — the backward's main kernel on Hopper (sm_90a):
 * the same algorithm, tiling, schedule and rounding points as
 * bwd_kernel.cuh's bwd_kernel (FA2 paper, Algorithm 2), with every product
 * on wgmma (gpu/wgmma.cuh) instead of mma.sync + ldmatrix.
 *
 * Included by bwd_kernel.cuh (which has load_rows' cp.async helpers) after
 * bwd_block.cuh (the framework both main kernels share: the block's key
 * block and steps, row statistics, dQ reductions and turns, dK/dV store,
 * traffic); launch_bwd picks it whenever the device runs the sm_90a code.
 *
 * One thread block = 2 warpgroups (8 warps) per key block j of BN = 128
 * keys; warpgroup w owns key rows 64w..64w+63 (warp k, rows 16k..16k+15, as
 * in bwd_kernel). At head dim 256 (BN = 64, bwd_config.h's dsplit 2) both
 * warpgroups own the same 64 keys and each half of dK's and dV's columns;
 * each computes half of the step's queries' S^T and dP^T (m64n32), and
 * P^T joins dS^T in shared memory, where dV and dK read both halves (QSPLIT
 * below). Per query block i (block_m rows), in n64 query chunks:
 *
 *     S^T  = K_w Q_c^T           wgmma, A = K (smem, K-major), B = Q (smem, K-major)
 *     dP^T = V_w dO_c^T          the same with V, dO
 *     P^T, dS^T = P^T o (dP^T - D)   in registers, mask as in bwd_kernel
 *     dV_w += round(P^T) dO_c    wgmma, A = P^T (registers), B = dO (smem, MN-major)
 *     dK_w += round(dS^T) Q_c    wgmma, A = dS^T (registers), B = Q (smem, MN-major)
 *     round(dS^T) -> shared memory
 * then dQ_i += round(dS) K_j: the block_m x head-dim product is two 64x64
 * pieces, one per warpgroup (A = dS from smem MN-major, B = K from smem
 * MN-major), added into the float32 accumulator as in bwd_kernel; at head
 * dims 64 and 128 through a staging tile, the adds deferred to the top of
 * the next step where they run under its S^T and dP^T (dq_staged.cuh).
 *
 * Shared memory holds every tile in wgmma's 128-byte-swizzled layout
 * (wgmma.cuh): [columns / 64][rows][64], chunk c of row r at c ^ (r % 8).
 * Each product reads the tiles in place: Q, dO and K are read K-major by
 * one product and MN-major by another, with no transposed copy.
 */
#ifndef FA2_GPU_BWD_KERNEL_SM90_CUH
#define FA2_GPU_BWD_KERNEL_SM90_CUH

#include "bwd_block.cuh"
#include "bwd_mods.cuh"
#include "dq_bulk.cuh"
#include "dq_staged.cuh"
#include "wgmma.cuh"
#include "wgmma_wide.cuh"
#include "tma.cuh"

namespace fa2bwd {

using fa2gpu::fence_proxy_async;
using fa2gpu::reg_fence;
using fa2gpu::wgmma_commit;
using fa2gpu::wgmma_desc;
using fa2gpu::wgmma_fence;
using fa2gpu::wgmma_rs;
using fa2gpu::wgmma_ss;
using fa2gpu::wgmma_ss_n32;
using fa2gpu::wgmma_wait;

/* element offset of 16-byte chunk c of row r in a 128-byte-swizzled tile
 * of R rows: column block c / 8, then the row, then the swizzled chunk */
template <int R> __device__ __forceinline__ int cbswz(int r, int c)
{
    return ((c >> 3) * R + r) * 64 + (((c ^ r) & 7) << 3);
}

/* cp.async a [ROWS][HD] tile into that layout; rows valid_rows.. and
 * columns d.. are zero-filled (predicated off, nothing read) */
template <int ROWS, int HD, int NTHREADS>
__device__ __forceinline__ void load_rows_sw128(uint16_t *s, const uint16_t *g,
                                                int64_t row_stride, int valid_rows,
                                                int d, int tid)
{
    constexpr int CPR = HD / 8;            /* 16-byte chunks a row */
    constexpr int RSTEP = NTHREADS / CPR;  /* rows a round covers  */
    static_assert(NTHREADS % CPR == 0 && ROWS % RSTEP == 0, "whole rounds of rows");
    if constexpr (HD > 128) {
        const int r0 = tid / CPR, c = tid % CPR;
        /* one source pointer stepped by RSTEP rows: at head dim 256 the
         * compiler otherwise keeps the 16 chunk addresses of a step live
         * across the step loop (332 bytes of spills) */
        const uint16_t *src = g + (int64_t)r0 * row_stride + c * 8;
        const int64_t step = (int64_t)RSTEP * row_stride;
#pragma unroll
        for (int i = 0; i < ROWS / RSTEP; i++) {
            const int r = r0 + i * RSTEP;
            const bool ok = r < valid_rows && c * 8 < d;
            cp_async_16(s + cbswz<ROWS>(r, c), ok ? src : g, ok ? 16 : 0);
            src += step;
        }
    } else {
        /* (the same copies; at head dims 64 and 128 this form measured a
         * few per cent faster: ptxas keeps more of the kernel on the
         * uniform datapath) */
#pragma unroll
        for (int i = 0; i < ROWS / RSTEP; i++) {
            const int idx = tid + i * NTHREADS;
            const int r = idx / CPR, c = idx % CPR;
            const bool ok = r < valid_rows && c * 8 < d;
            const uint16_t *src = ok ? g + (int64_t)r * row_stride + c * 8 : g;
            cp_async_16(s + cbswz<ROWS>(r, c), src, ok ? 16 : 0);
        }
    }
}

/* shared memory of the sm_90 kernel (bytes): K, V; Q, dO, LSE and D in
 * NBUF buffers (3, or 2 at head dim 256 where three do not fit); dS^T in
 * NBUF - 1; at head dim 128 the staging tiles of the bulk dQ reduction
 * (two 64 x 64 float32 pieces, one per warpgroup; at head dim 64 each
 * warpgroup stages in its own half of the dS^T tile it has just consumed,
 * and head dim 256 has no room: it keeps the vector reductions); 1024
 * bytes to align the start */
#define FA2_BWD_SM90_NBUF(HD) ((HD) <= 128 ? 3 : 2)
#ifndef FA2_BWD_SM90_BULK_MAX_HD /* -DFA2_BWD_SM90_BULK_MAX_HD=0: no bulk path built */
#define FA2_BWD_SM90_BULK_MAX_HD 128
#endif
#define FA2_BWD_SM90_BULK(HD) ((HD) <= 128 && (HD) <= FA2_BWD_SM90_BULK_MAX_HD)
/* the per-thread reductions through the same staging tiles, deferred to
 * the top of the next step, under its first products (dq_staged.cuh);
 * -DFA2_BWD_SM90_STAGED_MAX_HD=0: from registers, between the products */
#ifndef FA2_BWD_SM90_STAGED_MAX_HD
#define FA2_BWD_SM90_STAGED_MAX_HD 128
#endif
#define FA2_BWD_SM90_STAGED(HD) ((HD) <= 128 && (HD) <= FA2_BWD_SM90_STAGED_MAX_HD)
#define FA2_BWD_SM90_STAGE_BYTES(HD)                                           \
    ((FA2_BWD_SM90_BULK(HD) || FA2_BWD_SM90_STAGED(HD)) && (HD) == 128 ? 2 * 64 * 64 * 4 : 0)
/* head dim 256 (dsplit 2): round(P^T) in shared memory, [BN][BM] like dS^T
 * (each warpgroup computes half of the step's queries; see the kernel) */
#define FA2_BWD_SM90_P_BYTES(HD)                                               \
    (FA2_BWD_DSPLIT(HD) == 2 ? FA2_BWD_BLOCK_N(HD) * FA2_BWD_BLOCK_M(HD) * 2 : 0)
#define FA2_BWD_SM90_SMEM_BYTES(HD)                                            \
    ((2 * FA2_BWD_BLOCK_N(HD) + 2 * FA2_BWD_SM90_NBUF(HD) * FA2_BWD_BLOCK_M(HD)) * \
         (HD) * 2 +                                                            \
     (FA2_BWD_SM90_NBUF(HD) - 1) * FA2_BWD_BLOCK_N(HD) * FA2_BWD_BLOCK_M(HD) * 2 + \
     FA2_BWD_SM90_P_BYTES(HD) +                                                \
     8 * FA2_BWD_SM90_NBUF(HD) * FA2_BWD_BLOCK_M(HD) + FA2_BWD_SM90_STAGE_BYTES(HD) + \
     1024)

/* MODS: the score modifiers and dropout (p.mods), as bwd_kernel's MODS
 * instantiation (bwd_mods.cuh; the S^T and dP^T accumulators of a warp
 * have the mma.sync layout): same elements, same order and roundings.
 * The plain instantiation's code is the one it always was. */
template <int HD, bool IS_BF16, bool MODS>
__global__ void __launch_bounds__(256, 1)
    bwd_kernel_sm90(const __grid_constant__ fa2_bwd_params p)
{
#if FA2_HAVE_WGMMA
    constexpr int BM = FA2_BWD_BLOCK_M(HD);
    constexpr int BN = FA2_BWD_BLOCK_N(HD);
    constexpr int NTHREADS = 256;
    constexpr int QC = BM / 64; /* n64 query chunks of S^T, dP^T        */
    constexpr int DC = HD / 64; /* n64 column blocks of dK, dV          */
    constexpr int KD = HD / 16; /* k16 steps over the head dim          */
    constexpr int KN = BN / 16; /* k16 steps over the keys (dQ)         */
    /* DSPLIT 2 (head dim 256): both warpgroups own the same 64 keys, each
     * half of dK's and dV's columns (both compute S^T and dP^T), as
     * bwd_config.h's dsplit says for the mma.sync kernel */
    constexpr int DSPLIT = FA2_BWD_DSPLIT(HD);
    constexpr int DCW = DC / DSPLIT;       /* column blocks a warpgroup owns */
    constexpr int QPW = QC * DC / 2;       /* dQ pieces a warpgroup computes */
    constexpr int NBUF = FA2_BWD_SM90_NBUF(HD);
    constexpr int NDS = NBUF - 1;          /* dS^T buffers                   */
    /* QSPLIT (DSPLIT 2): the two warpgroups share the 64 keys, so instead
     * of both computing the whole S^T and dP^T (the same products twice),
     * warpgroup w computes query columns 32w..32w+31 of them (m64n32), its
     * half of P^T and dS^T goes to shared memory, and after the step's
     * barrier dV and dK read both halves from there (A from shared memory
     * instead of registers). CQW: a warpgroup's query columns of a chunk. */
    constexpr bool QSPLIT = DSPLIT == 2;
    constexpr int CQW = QSPLIT ? 32 : 64;
    constexpr int NT = CQW / 8;    /* n8 tiles of a warpgroup's S^T chunk */
    constexpr int NACC = CQW / 2;  /* its accumulator floats a thread     */
    constexpr int KQW = CQW / 16;  /* its k16 steps over the queries      */
    static_assert(!QSPLIT || (QC == 1 && BN == 64), "head dim 256: one 64-query chunk");
#ifndef FA2_BWD_SM90_PIPE_MAX_HD
#define FA2_BWD_SM90_PIPE_MAX_HD 64
#endif
    /* step st+1's S^T during step st's dQ reductions: at head dim 128 the
     * 32 extra live registers make ptxas serialize the wgmmas (C7512) */
    constexpr bool PIPE = HD <= FA2_BWD_SM90_PIPE_MAX_HD;
    static_assert(BN == 128 / DSPLIT && FA2_BWD_WARPS(HD) == 8 && HD % 64 == 0 &&
                      BM % 64 == 0 && QC * DC % 2 == 0 && !(PIPE && NBUF < 3),
                  "two warpgroups of 64 key rows; dQ_i in 64x64 pieces");

    /* the tiles start at a 1024-byte boundary of the shared window (the
     * 128-byte swizzle repeats every 1024 bytes), found as an offset from
     * smem_raw: pointer arithmetic on the __shared__ array keeps the
     * compiler's knowledge that every tile pointer is shared memory, so
     * the threads' own accesses (dS^T, LSE and D, the dQ staging) are
     * LDS/STS rather than generic loads and stores */
    extern __shared__ uint8_t smem_raw[];
    uint16_t *const smem = reinterpret_cast<uint16_t *>(
        smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u));
    uint16_t *const sK = smem;               /* [BN][HD]         */
    uint16_t *const sV = sK + BN * HD;       /* [BN][HD]         */
    uint16_t *const sQ = sV + BN * HD;          /* [NBUF][BM][HD]      */
    uint16_t *const sdO = sQ + NBUF * BM * HD;  /* [NBUF][BM][HD]      */
    uint16_t *const sdS = sdO + NBUF * BM * HD; /* [NDS][BN][BM]: dS^T */
    uint16_t *const sP = sdS + NDS * BN * BM;   /* QSPLIT: [BN][BM] P^T */
    float *const sLse = reinterpret_cast<float *>(sP + (QSPLIT ? BN * BM : 0)); /* [NBUF][BM] */
    float *const sD = sLse + NBUF * BM;                                  /* [NBUF][BM] */
    float *const sStage = sD + NBUF * BM; /* head dim 128: [2][64][64] float32 */
    /* dQ by the copy engine's bulk reduction (dq_bulk.cuh) where there is
     * room to stage it; else (or FA2_CUDA_BWD90_DQ=atomic) vector reductions */
    constexpr bool BULK_OK = FA2_BWD_SM90_BULK(HD);
    static_assert(!BULK_OK || HD == 64 || HD == 128, "staging room at 64 and 128 only");
    /* STAGED (and not the bulk path): step st's dQ piece is staged in its
     * tile and added at the top of step st+1, once that step's S^T and
     * dP^T products are issued, so that the reductions run under them
     * (dq_staged.cuh); pend is the accumulator rows of the staged piece */
    constexpr bool STAGED = FA2_BWD_SM90_STAGED(HD);
    static_assert(!STAGED || ((HD == 64 || HD == 128) && QPW == 1),
                  "staging room at 64 and 128 only; one dQ piece a warpgroup");
    float *pend = NULL;
    int pend_rows = 0;
    static_assert(!BULK_OK || HD != 64 || (QC == 2 && DC == 1 && BN * 64 * 2 == 64 * 64 * 4),
                  "head dim 64: warpgroup w's dQ piece reads only dS^T chunk w, "
                  "16 KB, the size of its float32 staging tile");
    const bool bulk = BULK_OK && p.dq_bulk;
    bool bulk_issued = false; /* this lane has bulk groups outstanding */
    /* Deterministic mode: the turn of step st's dQ block is passed on at
     * step st+1's dQ phase, just before this block waits for its own next
     * turn, not right after its adds: by then they have completed (a
     * fence or wait_group there costs nothing), and the next key block in
     * the chain reaches that dQ block a step or more later anyway
     * (fa2_bwd_dq_turn). Waits stay on key block j + 1 only. */
    dq_turn held = {NULL, 0, 0};

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int wg = warp >> 2, wl = warp & 3; /* warpgroup, warp within it */
    /* the staging tile of this warpgroup's dQ piece of step st: at head
     * dim 64 its own dS^T chunk of that step, whose only reader (the dQ
     * product) is done by then; at 128 its own tile */
    auto dq_stage_tile = [&](int st) -> float * {
        if constexpr (HD == 64)
            return reinterpret_cast<float *>(sdS + (st % NDS) * BN * BM + (wg % QC) * BN * 64);
        else
            return sStage + wg * 64 * 64;
    };
    const int krow0 = DSPLIT == 1 ? wg * 64 : 0; /* the warpgroup's first key row */
    const int kw0 = krow0 + wl * 16;              /* the warp's first key row */
    const int krow = kw0 + g;                     /* this thread's, and krow + 8 */
    const int dc0 = DSPLIT == 1 ? 0 : wg * DCW;   /* its first dK/dV column block */

    const bwd_block blk = bwd_block_of<BM, BN>(p); /* key block j, its steps */
    if (blk.cols == 0)
        return;
    const int d = blk.d, nsteps = blk.nsteps;
    /* the adds of the piece staged at step st_staged, if one is pending
     * (QPW == 1: the warpgroup's piece is query rows (wg % QC) 64..,
     * columns (wg / QC) 64..) */
    auto add_pending = [&](int st_staged) {
        if (!STAGED || !pend)
            return;
        dq_add_staged(pend, dq_stage_tile(st_staged), wl * 16, (wg % QC) * 64, pend_rows, d,
                      (wg / QC) * 64, lane);
        pend = NULL;
    };

    /* the query rows each of this thread's two key rows sees */
    int vis_lo[2], vis_hi[2];
#pragma unroll
    for (int hf = 0; hf < 2; hf++)
        bwd_visible_rows(blk, krow + hf * 8, vis_lo[hf], vis_hi[hf]);
#ifdef FA2_TRAFFIC_COUNTERS
    unsigned long long tr_q = 0, tr_row4 = 0;
#endif

    /* Q_i, dO_i, LSE_i and D_i of step st into buffer buf */
    auto issue = [&](int st, int buf) {
        const bwd_step q = bwd_step_of<BM>(blk, st);
        load_rows_sw128<BM, HD, NTHREADS>(sQ + buf * BM * HD, bwd_q_rows(p, blk, q),
                                          p.q_sr, q.rows, d, tid);
        load_rows_sw128<BM, HD, NTHREADS>(sdO + buf * BM * HD, bwd_do_rows(p, blk, q),
                                          p.do_sr, q.rows, d, tid);
        bwd_load_row_stats<BM, NTHREADS>(p, blk, q, sLse + buf * BM, sD + buf * BM, tid);
#ifdef FA2_TRAFFIC_COUNTERS
        tr_q += (unsigned long long)q.rows * d * 2;
        tr_row4 += (unsigned long long)q.rows * 4;
#endif
    };

    /* prologue: K_j, V_j and step 0's tiles (one group), step 1's (the
     * next); then S^T, dP^T of step 0's first query chunk are issued */
    load_rows_sw128<BN, HD, NTHREADS>(sK, bwd_k_rows(p, blk), p.k_sr, blk.cols, d, tid);
    load_rows_sw128<BN, HD, NTHREADS>(sV, bwd_v_rows(p, blk), p.v_sr, blk.cols, d, tid);
    if (nsteps > 0)
        issue(0, 0);
    cp_async_commit();
    if (NBUF == 3 && nsteps > 1)
        issue(1, 1);
    cp_async_commit();

    float dk[DCW][32], dv[DCW][32];
    /* DKV_N128 (two column blocks a warpgroup, P^T and dS^T from
     * registers: head dim 128): dV and dK by m64n128 products, half as many
     * wgmmas as m64n64 ones (the n128 accumulator's n8 tiles 0-7 are column
     * block 0's, dv[0]). H200 A/B (bench/NOTES-bwd.md): +2-8% at head dim
     * 128; at 256 (QSPLIT, A from shared memory) 1-3% slower: off there */
#ifndef FA2_BWD_SM90_DKV_N128
#define FA2_BWD_SM90_DKV_N128 1
#endif
    constexpr bool DKV_N128 = FA2_BWD_SM90_DKV_N128 && DCW == 2 && !QSPLIT;
    float(&dv_all)[DCW * 32] = *reinterpret_cast<float(*)[DCW * 32]>(&dv[0][0]);
    float(&dk_all)[DCW * 32] = *reinterpret_cast<float(*)[DCW * 32]>(&dk[0][0]);
#pragma unroll
    for (int i = 0; i < DCW; i++)
#pragma unroll
        for (int e = 0; e < 32; e++)
            dk[i][e] = dv[i][e] = 0.0f;

    const uint32_t aK = smem_addr(sK), aV = smem_addr(sV);

    /* S^T = K_w Q_c^T (or dP^T = V_w dO_c^T) of step st, query chunk qc,
     * issued as one wgmma group: both operands K-major, a k16 step is 32
     * bytes along the row, a column block R*128 bytes on. Descriptors are
     * a base plus a constant (the start address is the low field), so
     * that no per-step descriptor stays live in registers. */
    const uint32_t aK0 = aK + krow0 * 128, aV0 = aV + krow0 * 128;
    float sc[NACC], dp[NACC]; /* the first k16 step overwrites them */
    /* the warpgroup's first query column of a chunk (QSPLIT: its half) */
    const int qw0 = QSPLIT ? wg * CQW : 0;
    auto issue_s = [&](float(&acc)[NACC], uint32_t a_base, const uint16_t *tile, int qc) {
        /* a_base through an empty asm: otherwise the compiler hoists the KD
         * loop-invariant descriptors of K and V out of the step loop and
         * keeps them live (64 registers at head dim 256, spilled) */
        asm volatile("" : "+r"(a_base));
        const uint64_t da0 = wgmma_desc(a_base);
        const uint64_t db0 = wgmma_desc(smem_addr(tile) + (qc * 64 + qw0) * 128);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            const uint32_t ko = (kk & 3) * 32, cb = kk >> 2;
            const uint64_t da = da0 + ((cb * BN * 128 + ko) >> 4);
            const uint64_t db = db0 + ((cb * BM * 128 + ko) >> 4);
            if constexpr (QSPLIT)
                wgmma_ss_n32<IS_BF16, 0, 0>(acc, da, db, kk > 0);
            else
                wgmma_ss<IS_BF16, 0, 0>(acc, da, db, kk > 0);
        }
        wgmma_commit();
    };

    /* LSE_ONCE: step st's LSE, scaled once a row (fa2_bwd_lse_scaled) in
     * place, by the thread whose cp.async brought it (bwd_load_row_stats:
     * thread i, row i), after its wait and before the barrier that
     * publishes the step's tiles: the elementwise phase then reads lse2
     * instead of forming it for each of its columns in every lane (six
     * instructions a column: two multiplies, two compares, a select).
     * H200 A/B (bench/NOTES-bwd.md): head dim 64 +2-4%, 128 level, 256
     * 0.5-2% slower (a lane there has half the columns, and the scaling
     * sits before the barrier of its two-buffer pipeline): off there. */
    constexpr bool LSE_ONCE = HD <= 128;
    auto scale_lse = [&](int st) {
        static_assert(BM <= NTHREADS, "a row's copy by thread i");
        if (LSE_ONCE && st < nsteps && tid < BM) {
            float *const l = sLse + (st % NBUF) * BM + tid;
            *l = fa2_bwd_lse_scaled(*l);
        }
    };

    cp_async_wait<1>(); /* K_j, V_j and step 0's tiles */
    scale_lse(0);
    fence_proxy_async(); /* the copies are read by wgmma (async proxy) */
    __syncthreads();
    if (PIPE && nsteps > 0) {
        issue_s(sc, aK0, sQ, 0);
        issue_s(dp, aV0, sdO, 0);
    }

    /* The steps are software-pipelined: step st's dQ product and its
     * reductions overlap step st+1's S^T, dP^T products (PIPE), and the
     * copies of step st+2 run behind both (Q, dO, LSE, D in three buffers,
     * dS^T in two). With two buffers (head dim 256) the copies of step st+1
     * start at the top of step st, after a barrier. */
    for (int st = 0; st < nsteps; st++) {
        const int buf = st % NBUF;
        if (NBUF == 2) {
            __syncthreads(); /* every warpgroup done with step st-1 */
            if (st + 1 < nsteps)
                issue(st + 1, (st + 1) % 2);
            cp_async_commit();
        }
        const bwd_step q = bwd_step_of<BM>(blk, st);
        const int turn_seen = dq_turn_peek(p, blk, q, tid); /* deterministic */
        const int64_t row_lo = q.row_lo;
        const int rows = q.rows;
        const uint32_t aQ = smem_addr(sQ + buf * BM * HD);
        const uint32_t adO = smem_addr(sdO + buf * BM * HD);
        uint16_t *const cdS = sdS + (st % NDS) * BN * BM;
        const float *const cL = sLse + buf * BM;
        const float *const cD = sD + buf * BM;
        const bool need_mask =
            fa2_tile_needs_mask(&blk.mask, row_lo, row_lo + rows, blk.col_lo, BN);
        /* MODS: this step's score modifiers (ALiBi's slope is per query head) */
        fa2_score_mod sm = {};
        if constexpr (MODS)
            sm = bwd_step_mods(p, blk, q);

#pragma unroll
        for (int qc = 0; qc < QC; qc++) {
            if (!PIPE && qc == 0) {
                issue_s(sc, aK0, sQ + buf * BM * HD, 0);
                issue_s(dp, aV0, sdO + buf * BM * HD, 0);
            }
            if (qc == 0)
                add_pending(st - 1); /* step st-1's dQ, under them */
            /* the warpgroup's part of chunk qc: query columns ch CQW.. */
            const int ch = qc * (64 / CQW) + (QSPLIT ? wg : 0);
            /* MODS: dropout's decisions for chunk qc while its S^T and
             * dP^T products run */
            uint32_t kb[4];
            if constexpr (MODS)
                chunk_keep_bits<NT, CQW>(p, blk, q, ch, kw0, g, t, kb);
            wgmma_wait<0>(); /* S^T, dP^T of chunk qc (and chunk qc-1's dV, dK) */
            reg_fence(sc);
            reg_fence(dp);

            if constexpr (MODS) {
                mods_p_ds<NT, CQW, true, LSE_ONCE>(p, sm, blk, q, ch, kw0, g, t, kb, vis_lo,
                                                   vis_hi, cL, cD, sc, dp);
            } else {
            /* element mask: query row r of key row (warp*16 + g + 8 hf) is
             * visible iff vis_lo[hf] <= r < vis_hi[hf] */
            if (need_mask) {
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int hf = 0; hf < 2; hf++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const int r = (int)row_lo + ch * CQW + nt * 8 + 2 * t + e;
                            if (r < vis_lo[hf] || r >= vis_hi[hf])
                                sc[4 * nt + 2 * hf + e] = FA2_NEG_INF;
                        }
            }
            /* P^T from the saved LSE; dS^T = P^T o (dP^T - D) */
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int c = ch * CQW + nt * 8 + 2 * t + e;
                    const float lse2 = LSE_ONCE ? cL[c] : fa2_bwd_lse_scaled(cL[c]);
                    const float Dc = cD[c];
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int i = 4 * nt + 2 * hf + e;
                        const float pe = fa2_bwd_p(sc[i], p.scale_log2, lse2);
                        sc[i] = pe;
                        dp[i] = pe * (dp[i] - Dc);
                    }
                }
            } /* plain */

            /* round(P^T), round(dS^T) as A fragments: n8 tiles 2kq, 2kq+1
             * are the k16 step kq over the chunk's queries */
            uint32_t pa[KQW][4], sa[KQW][4];
#pragma unroll
            for (int kq = 0; kq < KQW; kq++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    pa[kq][j] = pack2<IS_BF16>(sc[8 * kq + 2 * j], sc[8 * kq + 2 * j + 1]);
                    sa[kq][j] = pack2<IS_BF16>(dp[8 * kq + 2 * j], dp[8 * kq + 2 * j + 1]);
                }

            /* dV += P^T dO_c, dK += dS^T Q_c: B read MN-major (the head
             * dim is N, contiguous; a k16 step is 16 query rows), this
             * warpgroup's column blocks dc0.. of dO and Q (QSPLIT: after
             * the barrier below, A from shared memory) */
            if constexpr (!QSPLIT && DKV_N128) {
                /* both column blocks in one m64n128 product (B spans them:
                 * the descriptor's LBO is a column block's BM * 128 bytes) */
                wgmma_fence();
#pragma unroll
                for (int kq = 0; kq < 4; kq++) {
                    const uint32_t off = (qc * 64 + kq * 16) * 128;
                    fa2gpu::wgmma_rs_n128<IS_BF16, 1>(dv_all, pa[kq],
                                                      fa2gpu::wgmma_desc_lbo(adO + off, BM * 128));
                    fa2gpu::wgmma_rs_n128<IS_BF16, 1>(dk_all, sa[kq],
                                                      fa2gpu::wgmma_desc_lbo(aQ + off, BM * 128));
                }
                wgmma_commit();
            } else if constexpr (!QSPLIT) {
                const uint64_t dO0 = wgmma_desc(adO + dc0 * BM * 128);
                const uint64_t dQ0 = wgmma_desc(aQ + dc0 * BM * 128);
                wgmma_fence();
#pragma unroll
                for (int dc = 0; dc < DCW; dc++)
#pragma unroll
                    for (int kq = 0; kq < 4; kq++) {
                        const uint32_t off = ((dc * BM + qc * 64 + kq * 16) * 128) >> 4;
                        wgmma_rs<IS_BF16, 1>(dv[dc], pa[kq], dO0 + off);
                        wgmma_rs<IS_BF16, 1>(dk[dc], sa[kq], dQ0 + off);
                    }
                wgmma_commit();
            }
            if (qc + 1 < QC) {
                issue_s(sc, aK0, sQ + buf * BM * HD, qc + 1);
                issue_s(dp, aV0, sdO + buf * BM * HD, qc + 1);
            }

            /* round(dS^T) to shared memory for dQ (QSPLIT: and round(P^T)
             * for dV, both halves for dK and dV): a[j] holds row g + 8 (j &
             * 1), query columns ch CQW + 16 kq + 8 (j >> 1) + 2t, 2t+1 */
#pragma unroll
            for (int kq = 0; kq < KQW; kq++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const int r = krow + 8 * (j & 1);
                    const int c = ch * (CQW / 8) + 2 * kq + (j >> 1);
                    *reinterpret_cast<uint32_t *>(cdS + cbswz<BN>(r, c) + 2 * t) = sa[kq][j];
                    if constexpr (QSPLIT)
                        *reinterpret_cast<uint32_t *>(sP + cbswz<BN>(r, c) + 2 * t) =
                            pa[kq][j];
                }
        }
        fence_proxy_async(); /* dS^T stores -> wgmma reads */
        cp_async_wait<0>();  /* step st+1's tiles */
        scale_lse(st + 1);
        fence_proxy_async();
        /* the copy engine has read step st-1's staged dQ (the barrier
         * below frees its tile: a dS^T buffer at head dim 64) */
        if (BULK_OK && bulk_issued)
            bulk_wait_read();
        /* dS^T complete; step st+1's tiles visible; every warpgroup done
         * with step st-1 (its buffers are free) */
        __syncthreads();
        if (NBUF == 3 && st + 2 < nsteps)
            issue(st + 2, (st + 2) % 3);
        cp_async_commit();

        /* QSPLIT: dV += P^T dO, dK += dS^T Q over the step's 64 queries,
         * both halves, A from shared memory (K-major: a k16 step is 32
         * bytes along a key's row) */
        if constexpr (QSPLIT) {
            const uint64_t dP0 = wgmma_desc(smem_addr(sP));
            const uint64_t dS0 = wgmma_desc(smem_addr(cdS));
            const uint64_t dO0 = wgmma_desc(adO + dc0 * BM * 128);
            const uint64_t dQ0 = wgmma_desc(aQ + dc0 * BM * 128);
            wgmma_fence();
#pragma unroll
            for (int dc = 0; dc < DCW; dc++)
#pragma unroll
                for (int kq = 0; kq < BM / 16; kq++) {
                    const uint32_t off = ((dc * BM + kq * 16) * 128) >> 4;
                    wgmma_ss<IS_BF16, 0, 1>(dv[dc], dP0 + ((kq * 32) >> 4), dO0 + off, 1);
                    wgmma_ss<IS_BF16, 0, 1>(dk[dc], dS0 + ((kq * 32) >> 4), dQ0 + off, 1);
                }
            wgmma_commit();
        }

        /* dQ_i's pieces (mq: 64 query rows, nd: 64 columns) = dS K_j, QPW
         * a warpgroup, one after the other: A = dS^T tile read MN-major
         * (queries contiguous), B = K read MN-major (head dim contiguous); a
         * k16 step is 16 key rows. Step st+1's S^T runs during the last
         * piece's reductions, its dP^T after them (PIPE; dP^T's 32
         * registers are free only once dQ's are). */
        dq_turn turn;
        float *gacc = bwd_dq_acc(p, blk, q);
        const uint16_t *const nQ = sQ + ((st + 1) % NBUF) * BM * HD;
        /* AHEAD (two pieces a warpgroup, head dim 256): both pieces' products
         * are issued before the first one's reductions, so that the second
         * runs under them */
        constexpr bool AHEAD = QPW == 2 && !PIPE && !STAGED;
        static_assert(QPW <= 2, "at most two dQ pieces a warpgroup");
        float accs[QPW][32]; /* the first k16 step overwrites them */
        auto issue_piece = [&](int pc) {
            const int piece = wg * QPW + pc, mq = piece % QC, nd = piece / QC;
            const uint64_t dS0 = wgmma_desc(smem_addr(cdS) + mq * BN * 128);
            const uint64_t dKq = wgmma_desc(aK + nd * BN * 128);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < KN; kk++)
                wgmma_ss<IS_BF16, 1, 1>(accs[pc], dS0 + ((kk * 16 * 128) >> 4),
                                        dKq + ((kk * 16 * 128) >> 4), kk > 0);
            wgmma_commit();
        };
        if constexpr (AHEAD) {
#pragma unroll
            for (int pc = 0; pc < QPW; pc++)
                issue_piece(pc);
        }
#pragma unroll
        for (int pc = 0; pc < QPW; pc++) {
            const int piece = wg * QPW + pc, mq = piece % QC, nd = piece / QC;
            float(&acc)[32] = accs[pc];
            if constexpr (AHEAD) {
                if (pc == 0)
                    wgmma_wait<1>(); /* dV, dK and piece 0 (piece 1 may run) */
                else
                    wgmma_wait<0>();
            } else {
                issue_piece(pc);
                if (pc == 0)
                    wgmma_wait<1>(); /* dV, dK of the last chunk: its fragments are free */
                if (PIPE && pc == QPW - 1 && st + 1 < nsteps) {
                    issue_s(sc, aK0, nQ, 0);
                    wgmma_wait<1>(); /* dQ */
                } else {
                    wgmma_wait<0>();
                }
            }
            reg_fence(acc);
            if (pc == 0) {
                if (BULK_OK && bulk_issued && p.deterministic)
                    bulk_wait_all(); /* step st-1's adds are done */
                dq_turn_pass(p, held, tid);
                turn = dq_turn_wait<BM, BN>(p, blk, q, tid, turn_seen);
                gacc += turn.shift;
            }
            if (STAGED && !bulk) {
                dq_stage_fragment<true>(dq_stage_tile(st), acc, wl * 16 + g, t);
                pend = gacc;
                pend_rows = rows;
            } else if (bulk) {
                float *stage = dq_stage_tile(st);
                dq_stage_piece(stage, acc, wl * 16 + g, t);
                bulk_issued |= dq_bulk_rows(gacc + (int64_t)mq * 64 * d, stage, wl * 16,
                                            rows - mq * 64, d, nd * 64, lane);
            } else {
#pragma unroll
                for (int dt = 0; dt < 8; dt++)
                    dq_add_n8(gacc, d, rows, mq * 64 + wl * 16 + g, nd * 64 + dt * 8, t,
                              acc[4 * dt], acc[4 * dt + 1], acc[4 * dt + 2],
                              acc[4 * dt + 3]);
            }
        }
        held = turn; /* passed on at the next step's dQ phase */
        if (PIPE && st + 1 < nsteps)
            issue_s(dp, aV0, sdO + ((st + 1) % NBUF) * BM * HD, 0);
    }
#pragma unroll
    for (int dc = 0; dc < DCW; dc++) {
        reg_fence(dk[dc]);
        reg_fence(dv[dc]);
    }
    add_pending(nsteps - 1); /* the last step's dQ */
    cp_async_wait<0>();
    if (BULK_OK && bulk_issued)
        bulk_wait_all(); /* the staging tiles are read before the block exits */
    dq_turn_pass(p, held, tid); /* the last step's turn */

    /* dK_j = round(scale dK_j), dV_j = round(dV_j), once */
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const bwd_dkdv_row out = bwd_dkdv_row_of(p, blk, krow + hf * 8);
        if (!out.dk)
            continue;
#pragma unroll
        for (int dc = 0; dc < DCW; dc++)
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                const int c = (dc0 + dc) * 64 + nt * 8 + 2 * t, i = 4 * nt + 2 * hf;
                if (c < d) {
                    bwd_store_pair<IS_BF16>(out.dk + c, dk[dc][i] * p.scale,
                                            dk[dc][i + 1] * p.scale);
                    bwd_store_dv<IS_BF16, MODS>(p, out.dv + c, dv[dc][i], dv[dc][i + 1]);
                }
            }
    }
#ifdef FA2_TRAFFIC_COUNTERS
    if (tid == 0)
        bwd_count_main(p, blk, tr_q, tr_row4);
#endif
#endif /* FA2_HAVE_WGMMA */
}

} // namespace fa2bwd

#endif /* FA2_GPU_BWD_KERNEL_SM90_CUH */
