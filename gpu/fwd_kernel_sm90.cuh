/* fwd_kernel_sm90.cuh — the FlashAttention-2 forward on Hopper (sm_90a):
 * the same algorithm, key-block order and rounding points as
 * fwd_kernel.cuh (FA2 paper, Algorithm 1), on Hopper's own machinery, in
 * the manner of FlashAttention-3 (Shah et al., 2024):
 *
 *   warp specialisation  warpgroup 0 is the producer: one warp asks the
 *                        copy engine (TMA, gpu/tma.cuh) for Q once and for
 *                        the K and V tiles of every key block, into a ring
 *                        of STAGES shared-memory buffers, and gives its
 *                        registers back (setmaxnreg); warpgroups 1 and 2 are
 *                        consumers, 64 query rows each, with more registers.
 *   mbarriers            per stage: K full / V full (the copy engine
 *                        completes its bytes there), K empty / V empty (each
 *                        consumer warp arrives once it has read the tile).
 *   wgmma                S = Q K^T from shared memory (m64 n{block_n} k16),
 *                        O += P V with P from registers (m64 n{head dim} k16):
 *                        P never goes through shared memory.
 *   overlap              in each consumer, the S product of key block j+1 is
 *                        issued before the P V product of block j, and the
 *                        softmax of block j+1 runs while that P V product is
 *                        in flight (FA3's intra-warpgroup pipelining).
 *   epilogue             O / l rounded into a staging buffer by stmatrix,
 *                        stored by TMA (one 64-row box per warpgroup) at
 *                        head dims 64 and 128 with fixed lengths, else
 *                        copied out by the consumer threads.
 *
 * Why the answer is the mirror's: per row the operations are those of
 * cpu/tiled_fwd.c in the same order. The loop below issues P_j V_j late,
 * but O is still updated as O = alpha_{j+1} (O + P_j V_j): the rescale by
 * alpha_{j+1} waits for P_j V_j to land, exactly as the mirror's
 * acc = alpha acc + P V. Masks, block ranges and the softmax update come
 * from lib/fa2_tile.h, as everywhere.
 *
 * Shared memory holds every tile in wgmma's 128-byte-swizzled layout
 * (wgmma.cuh): [head dim / 64][rows][64], chunk c of row r at c ^ (r % 8),
 * which is also the layout a TMA box of 64 columns lands in with
 * CU_TENSOR_MAP_SWIZZLE_128B. Q and K are read K-major, V MN-major (its
 * 64-column blocks block_n * 128 bytes apart: the descriptor's LBO).
 *
 * Variable lengths: the tensor maps cover the packed rows, so the rows
 * past a sequence's end are the next sequence's. Q rows beyond it are
 * computed and never stored; K columns beyond it are masked; the V rows
 * beyond it are zeroed by the producer warp before the consumers may read
 * the tile (P is 0 there, but 0 * inf would be NaN).
 */
#ifndef FA2_GPU_FWD_KERNEL_SM90_CUH
#define FA2_GPU_FWD_KERNEL_SM90_CUH

#include "config.h"
#include "fa2_internal.h"
#include "fa2_philox.h"
#include "fa2_score.h"
#include "fa2_tile.h"
#include "fwd_config.h"
#include "fwd_params.h"
#include "ptx.cuh"
#include "tma.cuh"
#include "wgmma_wide.cuh"

#include <cuda_runtime.h>

/* a CUtensorMap (128 bytes, 64-byte aligned), opaque to the kernel */
struct alignas(64) fa2_tmap {
    unsigned long long opaque[16];
};

namespace fa2gpu {

/* S (64 x BN) = or += A B through the shape for BN */
template <bool IS_BF16, int BN>
__device__ __forceinline__ void wg_s(float (&s)[BN / 2], uint64_t da, uint64_t db, int acc)
{
    if constexpr (BN == 176)
        wgmma_ss_n176<IS_BF16, 0, 0>(s, da, db, acc);
    else if constexpr (BN == 128)
        wgmma_ss_n128<IS_BF16, 0, 0>(s, da, db, acc);
    else if constexpr (BN == 80)
        wgmma_ss_n80<IS_BF16, 0, 0>(s, da, db, acc);
    else
        wgmma_ss_n64<IS_BF16, 0, 0>(s, da, db, acc);
}

/* O (64 x HD) += P V through the shape for HD (V MN-major) */
template <bool IS_BF16, int HD>
__device__ __forceinline__ void wg_pv(float (&o)[HD / 2], const uint32_t (&a)[4], uint64_t db)
{
    if constexpr (HD == 256)
        wgmma_rs_n256<IS_BF16, 1>(o, a, db);
    else if constexpr (HD == 128)
        wgmma_rs_n128<IS_BF16, 1>(o, a, db);
    else
        wgmma_rs_n64<IS_BF16, 1>(o, a, db);
}

/* MODS: the score modifiers and dropout (p.mods; lib/fa2_score.h,
 * lib/fa2_philox.h) in their own instantiations, so that the plain
 * kernel's code is the one it always was: MODS = 0 plain, 1 softcap /
 * ALiBi / sinks, 2 those and dropout (whose Philox calls need registers
 * the others do not: in one instantiation they spilled around the main
 * loop of all). Per element, in cpu/tiled_fwd.c's order and roundings:
 * the logit u (softcap, ALiBi) before the mask, the softmax on u with
 * c = log2 e, a sink as the row's first "key", dropped P set to 0 after l
 * has counted them, 1/(l (1 - p)) at the end. */
template <int HD, int NC, bool IS_BF16, int MODS>
__global__ void __launch_bounds__(128 * (NC + 1), 1)
    fwd_kernel_sm90(const __grid_constant__ fa2_fwd_params p,
                    const __grid_constant__ fa2_tmap tmq,
                    const __grid_constant__ fa2_tmap tmk,
                    const __grid_constant__ fa2_tmap tmv,
                    const __grid_constant__ fa2_tmap tmo)
{
#if FA2_HAVE_WGMMA
    constexpr int BM = 64 * NC; /* NC consumer warpgroups of 64 rows     */
    constexpr int BN = FA2_FWD90_BLOCK_N(HD);
    constexpr int ST = FA2_FWD90_STAGES(HD);
    constexpr int CB = HD / 64; /* 64-column blocks of a tile          */
    constexpr int NS = BN / 2;  /* S accumulator floats per thread      */
    constexpr int NO = HD / 2;  /* O accumulator floats per thread      */
    constexpr int KQ = HD / 16; /* k16 steps of Q K^T                   */
    constexpr int KP = BN / 16; /* k16 steps of P V                     */
    /* dropout: 32-bit words of a lane's kept bits per row half and S tile */
    constexpr int DROP_WORDS = ((BN / 8 + 1) / 2 + 3) / 4;
    constexpr uint32_t Q_BYTES = BM * HD * 2, KV_BYTES = BN * HD * 2;
    static_assert((NC == 2 || NC == 3) && HD % 64 == 0 && BN % 16 == 0, "tiling");
    /* registers: the producer gives back what the consumers take. The
     * block holds what the launch gave each thread (65536 over 128 (NC + 1)
     * threads, rounded down to 8: 168 at NC 2, 128 at NC 3) and no more:
     * setmaxnreg.inc waits until the producer has released enough, so a
     * split asking for more than the block holds never returns (a build
     * with a 48-register producer at NC 2 hung on the H200) */
    constexpr int PRODUCER_REGS = NC == 2 ? 40 : 24;
    constexpr int CONSUMER_REGS = NC == 2 ? 232 : 160;
    constexpr int LAUNCH_REGS = (65536 / (128 * (NC + 1))) & ~7;
    static_assert(PRODUCER_REGS + NC * CONSUMER_REGS <= (NC + 1) * LAUNCH_REGS,
                  "the register split must fit in what the block holds");
    constexpr bool pingpong = FA2_FWD90_PINGPONG_ON != 0;

    /* O staged through its own buffer where shared memory allows (then the
     * next tile's Q may arrive during this tile's epilogue), else through
     * the warpgroup's own rows of Q */
    constexpr bool SEPARATE_O = FA2_FWD90_SEPARATE_O(HD, NC);

    extern __shared__ uint8_t smem_raw[];
    uint8_t *const base = (uint8_t *)(((uintptr_t)smem_raw + 1023) & ~(uintptr_t)1023);
    uint16_t *const sQ = (uint16_t *)base;     /* [CB][BM][64]           */
    uint16_t *const sK = sQ + BM * HD;         /* [ST][CB][BN][64]       */
    uint16_t *const sV = sK + ST * BN * HD;    /* [ST][CB][BN][64]       */
    uint16_t *const sO = SEPARATE_O ? sV + ST * BN * HD : sQ; /* [CB][BM][64] */
    uint64_t *const q_full = (uint64_t *)(sV + ST * BN * HD + (SEPARATE_O ? BM * HD : 0));
    uint64_t *const q_empty = q_full + 1;
    uint64_t *const k_full = q_empty + 1;
    uint64_t *const v_full = k_full + ST;
    uint64_t *const k_empty = v_full + ST;
    uint64_t *const v_empty = k_empty + ST;
    uint64_t *const v_ready = v_empty + ST; /* varlen: V tail zeroed     */
    uint64_t *const tile_full = v_ready + ST; /* [2] the scheduler's ring  */
    uint64_t *const tile_empty = tile_full + 2;
    int64_t *const tile_slot = (int64_t *)(tile_empty + 2); /* [2]       */

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const bool varlen = p.cu_seqlens_q != nullptr;
    /* tile numbers per head: the query blocks, or with p.tile_pairs the
     * slots of ceil(m_blocks / 2) pairs (an odd count leaves one empty) */
    const int per_head = p.tile_pairs ? 2 * fa2_pair_count(p.m_blocks) : p.m_blocks;
    const int64_t ntiles = (int64_t)per_head * p.heads_q * p.num_seqs;

    /* One tile = one (sequence, head, query block), numbered as
     * fwd_kernel.cuh numbers its thread blocks (query blocks fastest, the
     * last, longest under a causal mask, first). A block runs tiles
     * blockIdx.x, + gridDim.x, ... (gridDim.x = the tiles, or the SMs for
     * a persistent launch). With p.tile_pairs, slots 2u and 2u + 1 of a
     * head are query blocks M - 1 - u and u (fa2_pair_slot_block): under a
     * causal mask their key blocks add up to the same count for every u,
     * and a block runs both slots of pairs blockIdx.x, + gridDim.x, ... */
    struct tile_t {
        int m_block, h, hk, seq;
        int64_t batch, q_start, k_start, seqlen_q, seqlen_k, row_lo;
        int rows, nsteps;
        fa2_mask mask;
        fa2_block_range kv;
    };
    auto tile_at = [&](int64_t tile, tile_t &T) -> bool {
        const int r = (int)(tile % per_head);
        if (p.tile_pairs) {
            T.m_block = fa2_pair_slot_block(r, p.m_blocks);
            if (T.m_block < 0)
                return false; /* the empty slot of an odd count's middle pair */
        } else {
            T.m_block = p.m_blocks - 1 - r;
        }
        const int64_t bh = tile / per_head;
        T.h = (int)(bh % p.heads_q);
        const int b = (int)(bh / p.heads_q);
        T.seq = b;
        if (varlen) {
            T.batch = 0;
            T.q_start = p.cu_seqlens_q[b];
            T.seqlen_q = p.cu_seqlens_q[b + 1] - T.q_start;
            T.k_start = p.cu_seqlens_k[b];
            T.seqlen_k = p.cu_seqlens_k[b + 1] - T.k_start;
        } else {
            T.batch = b;
            T.q_start = T.k_start = 0;
            T.seqlen_q = p.seqlen_q;
            T.seqlen_k = p.seqlen_k;
        }
        T.row_lo = (int64_t)T.m_block * BM;
        if (T.row_lo >= T.seqlen_q)
            return false; /* this sequence is shorter than the longest */
        T.rows = (int)(T.seqlen_q - T.row_lo < BM ? T.seqlen_q - T.row_lo : BM);
        T.hk = T.h / (p.heads_q / p.heads_kv);
        T.mask = fa2_mask_make(T.seqlen_q, T.seqlen_k, p.causal, p.window_left,
                               p.window_right);
        T.kv = fa2_fwd_kv_blocks(&T.mask, T.m_block, BM, BN);
        T.nsteps = (int)fa2_block_count(T.kv);
        return true;
    };

    if (tid == 0) {
        mbar_init(q_full, 1);
        mbar_init(q_empty, 4 * NC);
        for (int s = 0; s < ST; s++) {
            mbar_init(&k_full[s], 1);
            mbar_init(&v_full[s], 1);
            mbar_init(&k_empty[s], 4 * NC);
            mbar_init(&v_empty[s], 4 * NC);
            mbar_init(&v_ready[s], 1);
        }
        for (int s = 0; s < 2; s++) {
            mbar_init(&tile_full[s], 1);
            mbar_init(&tile_empty[s], 4 * NC);
        }
        mbar_init_fence();
    }
    __syncthreads();

    /* The tile scheduler. Persistent launches without a counter take
     * tiles blockIdx.x, + gridDim.x, ... (all alike: no mask, fixed
     * lengths). With p.tile_counter the producer takes each next tile from
     * the counter (atomicAdd: blocks that finish early take more, so
     * unequal causal tiles balance), in the numbering above, so that
     * concurrent blocks work on a few heads' K/V as one block per tile
     * does, and hands the number to the consumers through a ring of two
     * slots in shared memory (full: one arrival, the producer's; empty:
     * one per consumer warp). A number past the last tile ends the loop. */
    const bool dynamic = p.tile_counter != nullptr;
    /* the k-th tile of this block without a counter */
    auto static_tile = [&](int k) -> int64_t {
        if (p.tile_pairs)
            return 2 * (blockIdx.x + (int64_t)(k >> 1) * gridDim.x) + (k & 1);
        return blockIdx.x + (int64_t)k * gridDim.x;
    };

    if (warp < 4) {
        /* ---- producer warpgroup ------------------------------------------ */
        setmaxnreg_dec<PRODUCER_REGS>();
        if (warp != 0)
            return;
        if (lane == 0) {
            tma_prefetch_map(&tmq);
            tma_prefetch_map(&tmk);
            tma_prefetch_map(&tmv);
        }
        int gstep = 0, qiter = 0; /* K/V steps and Q tiles so far: phases */
        unsigned tail_phase = 0;  /* per stage: v_ready's phase parity     */
        /* the k-th tile of this block, handed to the consumers if dynamic;
         * the counter is asked one tile ahead, so that its round trip
         * overlaps a tile's work instead of delaying the next one */
        int ticket = dynamic && lane == 0 ? atomicAdd(p.tile_counter, 1) : 0;
        auto next_tile = [&](int k) -> int64_t {
            if (!dynamic)
                return static_tile(k);
            int64_t tile = 0;
            if (lane == 0) {
                tile = ticket;
                if (tile < ntiles)
                    ticket = atomicAdd(p.tile_counter, 1);
                const int slot = k & 1;
                if (k >= 2)
                    mbar_wait(&tile_empty[slot], ((k >> 1) - 1) & 1);
                tile_slot[slot] = tile;
                mbar_arrive(&tile_full[slot]); /* release: the slot's write */
            }
            return __shfl_sync(0xffffffffu, tile, 0);
        };
        for (int k = 0;; k++) {
            const int64_t tile = next_tile(k);
            if (tile >= ntiles)
                break;
            tile_t T;
            if (!tile_at(tile, T))
                continue;
            if (lane == 0) {
                if (qiter > 0) /* the consumers are done with the last Q */
                    mbar_wait(q_empty, (qiter - 1) & 1);
                mbar_arrive_expect_tx(q_full, Q_BYTES);
#pragma unroll
                for (int cb = 0; cb < CB; cb++)
                    tma_load_4d(sQ + cb * BM * 64, &tmq, cb * 64, (int)(T.q_start + T.row_lo),
                                T.h, (int)T.batch, q_full);
            }
            qiter++;
            for (int step = 0; step < T.nsteps; step++, gstep++) {
                const int s = gstep % ST, n = gstep / ST;
                const int64_t col_lo = fa2_kv_block_at(T.kv, step) * BN;
                const int krow = (int)(T.k_start + col_lo);
                /* one K or V tile into stage s, once the consumers have
                 * released what the stage held ST steps ago */
                auto load_kv = [&](uint16_t *buf, const fa2_tmap *map, uint64_t *full,
                                   uint64_t *empty) {
                    if (n > 0)
                        mbar_wait(&empty[s], (n - 1) & 1);
                    mbar_arrive_expect_tx(&full[s], KV_BYTES);
#pragma unroll
                    for (int cb = 0; cb < CB; cb++)
                        tma_load_4d(buf + (s * CB + cb) * BN * 64, map, cb * 64, krow, T.hk,
                                    (int)T.batch, &full[s]);
                };
                if (lane == 0) {
                    load_kv(sK, &tmk, k_full, k_empty);
                    load_kv(sV, &tmv, v_full, v_empty);
                }
                if (varlen && col_lo + BN > T.seqlen_k) {
                    /* the rows past this sequence's last key belong to the
                     * next sequence: zero them before the consumers read V */
                    __syncwarp();
                    mbar_wait(&v_full[s], n & 1);
                    const int valid = (int)(T.seqlen_k - col_lo);
                    const uint4 zero = make_uint4(0, 0, 0, 0);
                    for (int i = lane; i < CB * (BN - valid) * 8; i += 32) {
                        const int cb = i / ((BN - valid) * 8);
                        const int r = valid + (i / 8) % (BN - valid);
                        *reinterpret_cast<uint4 *>(sV + ((s * CB + cb) * BN + r) * 64 +
                                                   (i % 8) * 8) = zero;
                    }
                    fence_proxy_async();
                    __syncwarp();
                    if (lane == 0)
                        mbar_arrive(&v_ready[s]);
                    tail_phase ^= 1u << s;
                }
            }
#ifdef FA2_TRAFFIC_COUNTERS
            /* the bytes this tile asked global memory for, as fwd_kernel.cuh:
             * the copy engine's zero fill outside the tensor is not a load */
            if (p.traffic && lane == 0) {
                const unsigned long long row_bytes = (unsigned long long)p.head_dim * 2u;
                unsigned long long kv_rows = 0;
                if (T.nsteps > 0) {
                    const int64_t hi = T.kv.hi * BN < T.seqlen_k ? T.kv.hi * BN : T.seqlen_k;
                    kv_rows = (unsigned long long)(hi - T.kv.lo * BN);
                }
                atomicAdd(&p.traffic[FA2_TRAFFIC_Q], (unsigned long long)T.rows * row_bytes);
                atomicAdd(&p.traffic[FA2_TRAFFIC_K], kv_rows * row_bytes);
                atomicAdd(&p.traffic[FA2_TRAFFIC_V], kv_rows * row_bytes);
                atomicAdd(&p.traffic[FA2_TRAFFIC_O], (unsigned long long)T.rows * row_bytes);
                if (p.lse)
                    atomicAdd(&p.traffic[FA2_TRAFFIC_LSE], (unsigned long long)T.rows * 4u);
            }
#endif
        }
        (void)tail_phase;
        return;
    }

    /* ---- consumer warpgroups -------------------------------------------- */
    setmaxnreg_inc<CONSUMER_REGS>();
    const int ctid = tid - 128;
    const int cw = ctid >> 7;          /* consumer warpgroup 0 .. NC-1     */
    const int w = (ctid >> 5) & 3;     /* warp within it: rows 16w..16w+15 */
    const int g = lane >> 2, t = lane & 3;
    const int wrow = cw * 64 + w * 16; /* the warp's first row in the tile */

    const uint32_t q_addr = smem_addr(sQ) + cw * 64 * 128;
    const uint32_t k_addr = smem_addr(sK), v_addr = smem_addr(sV);

    /* Ping-pong (FA3): the consumer warpgroups take turns to issue their
     * products, so that one's softmax runs under the other's GEMMs. Turn
     * c waits on named barrier 4 + c and passes the turn to the next
     * warpgroup after issuing. Each wait is matched by one arrival: in a
     * tile, warpgroup 0 takes its first turn without waiting and the last
     * warpgroup passes no turn after its last product, so nothing is left
     * over at the tile's end and warpgroup 0 can start the next tile's
     * first product while the others are still in their epilogues (before,
     * an extra turn passed at each tile's start tied warpgroup 0's next
     * tile to the last warpgroup's epilogue). Those two are the
     * warpgroup's own barrier 1 + cw with 128 threads instead, a sync or
     * an arrival of the warpgroup alone: the barrier instructions stay
     * unconditional (ptxas serialises the wgmmas after a predicated one,
     * warning C7520). */
    const int my_turn = 4 + cw, next_turn = 4 + (cw + 1) % NC;
    auto turn_begin = [&]() {
        if (pingpong)
            named_sync(my_turn, 128 * 2);
    };
    auto turn_end = [&]() {
        if (pingpong)
            named_arrive(next_turn, 128 * 2);
    };
    auto turn_begin_first = [&]() {
        if (pingpong)
            named_sync(cw == 0 ? 1 + cw : my_turn, cw == 0 ? 128 : 128 * 2);
    };
    auto turn_end_last = [&]() {
        if (pingpong)
            named_arrive(cw == NC - 1 ? 1 + cw : next_turn, cw == NC - 1 ? 128 : 128 * 2);
    };

    int gstep = 0, qiter = 0;
    unsigned tail_phase = 0;
    /* O leaves by TMA store (p.o_tma: fixed lengths, O's own buffer), the
     * warpgroup's first thread issuing it */
    const bool o_tma = SEPARATE_O && p.o_tma;
    const bool o_store_lane = o_tma && (ctid & 127) == 0;
    /* the k-th tile of this block: computed, or the producer's */
    auto next_tile = [&](int k) -> int64_t {
        if (!dynamic)
            return static_tile(k);
        const int slot = k & 1;
        mbar_wait(&tile_full[slot], (k >> 1) & 1);
        /* lane 0 reads and broadcasts: a value the compiler sees is the
         * same in every lane (read by each lane, the loop's exit would be
         * divergent for ptxas, which then serialises every wgmma, C7520) */
        int64_t tile = 0;
        if (lane == 0) {
            tile = *(volatile int64_t *)&tile_slot[slot];
            mbar_arrive(&tile_empty[slot]);
        }
        return __shfl_sync(0xffffffffu, tile, 0);
    };
    for (int k = 0;; k++) {
        const int64_t tile = next_tile(k);
        if (tile >= ntiles)
            break;
        tile_t T;
        if (!tile_at(tile, T))
            continue;
        const fa2_mask &mask = T.mask;
        const int64_t row_lo = T.row_lo;
        const int rows = T.rows, nsteps = T.nsteps;

        /* the visible key interval of this thread's two rows (g, g + 8) */
        int vis_lo[2], vis_hi[2];
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int64_t r = row_lo + wrow + g + 8 * hf;
            int64_t lo, hi;
            fa2_visible_cols(&mask, r, r + 1, &lo, &hi);
            vis_lo[hf] = (int)lo;
            vis_hi[hf] = (int)hi;
        }

        float o[NO];
#pragma unroll
        for (int i = 0; i < NO; i++)
            o[i] = 0.0f;
        fa2_row_state st[2] = {fa2_row_state_init(), fa2_row_state_init()};
        /* modifiers: the softmax's units (fa2_score_mod_units: logits u
         * with c = log2 e under softcap, else the raw scores with ALiBi's
         * slope and the sink over the scale); a sink starts every row, its
         * weight in one lane of the quad only (l is summed over the quad
         * at the end) */
        fa2_score_mod sm = {};
        float c_exp = p.scale_log2, lse_scale = p.scale;
        bool transform = false; /* fa2_score_mod_transforms */
        int64_t bhq = 0;
        if (MODS != 0) {
            const bool alibi = p.alibi_slopes != nullptr;
            sm = fa2_score_mod_make(
                p.scale, p.softcap, alibi,
                alibi ? p.alibi_slopes[(int64_t)T.seq * p.alibi_stride + T.h] : 0.0f,
                T.seqlen_q, T.seqlen_k);
            fa2_score_mod_units(&sm, p.scale_log2, p.sinks != nullptr,
                                p.sinks ? p.sinks[T.h] : 0.0f);
            c_exp = sm.c;
            lse_scale = sm.lse_scale;
            transform = fa2_score_mod_transforms(&sm);
            if (p.sinks) {
                fa2_row_state s0 = fa2_row_state_init_sink(sm.sink_u, sm.c);
                if (t != 0)
                    s0.l = 0.0f;
                st[0] = st[1] = s0;
            }
            bhq = (int64_t)T.seq * p.heads_q + T.h;
        }
        float s[NS];
        uint32_t pa[KP][4];

        /* S = Q_i K_j^T: KQ k16 steps along the head dim (wgmma.cuh: a k16
         * step is 32 bytes along the row, the next column block R*128 on) */
        auto issue_s = [&](int stage) {
#pragma unroll
            for (int kk = 0; kk < KQ; kk++) {
                const uint32_t koff = (kk & 3) * 32;
                const uint64_t da = wgmma_desc(q_addr + (kk >> 2) * BM * 128 + koff);
                const uint64_t db =
                    wgmma_desc(k_addr + stage * KV_BYTES + (kk >> 2) * BN * 128 + koff);
                wg_s<IS_BF16, BN>(s, da, db, kk > 0);
            }
        };
        /* O += round(P) V_j: KP k16 steps along the keys (16 rows = 2048 bytes) */
        auto issue_pv = [&](int stage) {
#pragma unroll
            for (int kk = 0; kk < KP; kk++)
                wg_pv<IS_BF16, HD>(o, pa[kk],
                                   wgmma_desc_lbo(v_addr + stage * KV_BYTES + kk * 2048,
                                                  BN * 128));
        };
        /* S -> logits u (fa2_score.h), before the mask. Element (i, e) of
         * row half hf is column col_lo + 8 i + 2 t + e; ALiBi's distance
         * |r + Nk - Nq - c| is formed in float from the first row half's
         * base where that is exact (fa2_alibi_f32_exact), else as
         * fa2_alibi_distance forms it. Row half 1 is 8 rows further, so its
         * element (i, e) lies at the distance of row half 0's (i - 1, e):
         * the BN / 4 + 2 distances of a tile serve both halves (one FADD
         * per element pair instead of one per element; the values are the
         * same integers either way). */
        auto to_logits = [&](int64_t col_lo) {
            if (sm.softcap > 0.0f) {
#pragma unroll
                for (int k = 0; k < NS; k++)
                    s[k] = fa2_score_softcap(&sm, s[k]);
            } else if (sm.logits) { /* natural units: u = x scale */
#pragma unroll
                for (int k = 0; k < NS; k++)
                    s[k] = fa2_score_scaled(&sm, s[k]);
            } /* score units: x as it is */
            if (!sm.alibi)
                return;
            const int64_t base = row_lo + wrow + g + sm.diag_offset - (col_lo + 2 * t);
            if (fa2_alibi_f32_exact(base, BN + 8)) {
                const float bf = (float)base;
#pragma unroll
                for (int i = -1; i < BN / 8; i++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        /* |base - (8 i + e)|: row half 0's (i, e), row half 1's (i + 1, e) */
                        const float dist = fa2_alibi_distance_f32(bf, -(float)(8 * i + e));
                        if (i >= 0)
                            s[4 * i + e] = fa2_score_alibi(&sm, s[4 * i + e], dist);
                        if (i + 1 < BN / 8)
                            s[4 * (i + 1) + 2 + e] =
                                fa2_score_alibi(&sm, s[4 * (i + 1) + 2 + e], dist);
                    }
            } else {
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int64_t r = row_lo + wrow + g + 8 * hf;
#pragma unroll
                    for (int i = 0; i < BN / 8; i++)
#pragma unroll
                        for (int e = 0; e < 2; e++)
                            s[4 * i + 2 * hf + e] = fa2_score_alibi(
                                &sm, s[4 * i + 2 * hf + e],
                                fa2_alibi_distance(&sm, r, col_lo + 8 * i + 2 * t + e));
                }
            }
        };
        /* Dropout (fa2_philox.h): the dropped P become 0 for P V (l has
         * counted them). Row r's columns 8 i .. 8 i + 7 (block i of the
         * tile) are one Philox call's eight decisions. A quad's four lanes
         * share two rows, so the quad needs two calls per block, of which
         * each lane holds two columns (2t, 2t + 1): lane t makes the calls
         * of row half t >> 1 for the blocks of parity t & 1 (a quarter of
         * the quad's calls), keeping each call's 8 bits as a byte, and two
         * shuffles per row half and word hand every lane the bytes of the
         * two lanes that made its row's calls. The bits are applied to the
         * packed P (drop_packed), two elements an instruction pair. */
        uint32_t drop_kb[2][DROP_WORDS];
        auto dropout = [&](int64_t col_lo) {
            constexpr int NB = BN / 8;        /* column blocks of 8       */
            constexpr int NP = (NB + 1) / 2;  /* blocks of one parity     */
            constexpr int NWD = DROP_WORDS;   /* 32-bit words of bytes    */
            static_assert(NWD == (NP + 3) / 4, "DROP_WORDS");
            const int64_t r_mine = row_lo + wrow + g + 8 * (t >> 1);
            uint32_t mine[NWD];
#pragma unroll
            for (int wd = 0; wd < NWD; wd++) {
                uint32_t m = 0;
                /* the calls unrolled: called from pack_p, once S is
                 * packed and its float registers are free, so that ptxas
                 * keeps several calls' chains of dependent multiply
                 * rounds in flight without spilling */
#pragma unroll
                for (int k = 0; k < 4 && 4 * wd + k < NP; k++) {
                    const int i = (t & 1) + 2 * (4 * wd + k);
                    if (i < NB)
                        m |= fa2_dropout_keep8(&p.dropout,
                                               fa2_dropout_words(&p.dropout, bhq, r_mine,
                                                                 col_lo + 8 * i))
                             << (8 * k);
                }
                mine[wd] = m;
            }
            /* kb: block i's bits for my columns 2t + e at 8 ((i >> 1) & 3)
             * + 2 (i & 1) + e of word i >> 3 */
            auto kept_bit = [](const uint32_t *kb, int i, int e) {
                return (kb[i >> 3] >> (8 * ((i >> 1) & 3) + 2 * (i & 1) + e)) & 1u;
            };
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int src = (lane & ~3) + 2 * hf;
                uint32_t *const kb = drop_kb[hf];
#pragma unroll
                for (int wd = 0; wd < NWD; wd++) {
                    const uint32_t even = __shfl_sync(0xffffffffu, mine[wd], src) >> (2 * t);
                    const uint32_t odd = __shfl_sync(0xffffffffu, mine[wd], src + 1) >> (2 * t);
                    kb[wd] = (even & 0x03030303u) | (odd & 0x03030303u) << 2;
                }
                if (p.dropout_mask) { /* tests, teaching: its own pass */
                    const int rl = wrow + g + 8 * hf;
                    const int64_t r = row_lo + rl;
                    if (rl < rows) {
                        uint8_t *const mrow = p.dropout_mask +
                                              ((bhq * p.seqlen_q) + r) * p.seqlen_k;
#pragma unroll 1
                        for (int x = 0; x < 2 * NB; x++) {
                            const int i = x >> 1, e = x & 1;
                            const int c = (int)col_lo + 8 * i + 2 * t + e;
                            if (kept_bit(kb, i, e) && c >= vis_lo[hf] && c < vis_hi[hf])
                                mrow[c] = 1;
                        }
                    }
                }
            }
        };
        /* Zero the dropped elements of the packed P: pa[kk][2 b + hf] holds
         * block i = 2 kk + b's two elements of row half hf, whose bits are
         * 8 (kk & 3) + 2 b + e of drop_kb[hf][kk >> 2]. Shifted so that bit
         * is the top of byte kk & 3, prmt's sign mode copies it into a
         * whole byte: a 16-bit mask per element, one AND per pair. */
        auto drop_packed = [&]() {
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
#pragma unroll
                for (int wd = 0; wd < DROP_WORDS; wd++) {
                    const uint32_t w = drop_kb[hf][wd];
                    const uint32_t y[4] = {w << 7, w << 6, w << 5, w << 4};
#pragma unroll
                    for (int k = 0; k < 4 && 4 * wd + k < KP; k++) {
                        const int kk = 4 * wd + k;
                        const uint32_t lo = 8 | k, hi = 8 | (4 + k);
                        const uint32_t sel = lo | lo << 4 | hi << 8 | hi << 12;
                        pa[kk][hf] &= prmt_sign(y[0], y[1], sel);
                        pa[kk][2 + hf] &= prmt_sign(y[2], y[3], sel);
                    }
                }
        };
        /* the element mask and the online softmax of one S tile, in place
         * (S -> P in float32); alpha per row */
        auto softmax = [&](int64_t col_lo, float (&alpha)[2]) {
            if (transform)
                to_logits(col_lo);
            if (fa2_tile_needs_mask(&mask, row_lo, row_lo + rows, col_lo, BN)) {
                const int c0 = (int)col_lo + 2 * t;
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int lo = vis_lo[hf] - c0, hi = vis_hi[hf] - c0;
#pragma unroll
                    for (int i = 0; i < BN / 8; i++)
#pragma unroll
                        for (int e = 0; e < 2; e++)
                            if (i * 8 + e < lo || i * 8 + e >= hi)
                                s[4 * i + 2 * hf + e] = FA2_NEG_INF;
                }
            }
            /* This thread's part of each row half's maximum, both halves
             * before either's exponentials. Up to head dim 128 as a tree
             * (pair maxima, then halving: short, independent chains of
             * FMNMX instead of one chain of BN / 4); at head dim 256 as
             * the plain chain, whose fewer live temporaries spill less
             * there (80 against 88 bytes). fmaxf is exact and drops a NaN
             * for the other operand in any order, so both give the same
             * value (a thread whose elements are all NaN gives NaN in the
             * tree, -inf in the chain: the rescale's fmaxf with the
             * running max treats the two alike). */
            constexpr int NPAIR = BN / 8;
            float mx[2];
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                float m[NPAIR];
#pragma unroll
                for (int i = 0; i < NPAIR; i++)
                    m[i] = fmaxf(s[4 * i + 2 * hf], s[4 * i + 2 * hf + 1]);
                if constexpr (HD <= 128) {
#pragma unroll
                    for (int w = 1; w < NPAIR; w *= 2)
#pragma unroll
                        for (int i = 0; i + w < NPAIR; i += 2 * w)
                            m[i] = fmaxf(m[i], m[i + w]);
                    mx[hf] = m[0];
                } else {
                    mx[hf] = FA2_NEG_INF;
#pragma unroll
                    for (int i = 0; i < NPAIR; i++)
                        mx[hf] = fmaxf(mx[hf], m[i]);
                }
            }
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
                mx[hf] = fmaxf(mx[hf], __shfl_xor_sync(0xffffffffu, mx[hf], 1));
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
                mx[hf] = fmaxf(mx[hf], __shfl_xor_sync(0xffffffffu, mx[hf], 2));
            float max_scaled[2];
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
                alpha[hf] = fa2_softmax_rescale(&st[hf], mx[hf], c_exp, &max_scaled[hf]);
            float sum[2] = {0.0f, 0.0f};
            /* P of row halves hf0 .. hf1 - 1, interleaved, each half's sum
             * in column order: the one-FFMA form where it is exact (|m c| <
             * 2^24: every ordinary row), else the form that is right for
             * any finite score (fa2_tile.h, FA2_SOFTMAX_FFMA_LIMIT; where
             * the one-FFMA form is exact both give the same bits) */
            auto exps = [&](int hf0, int hf1, bool ffma) {
#pragma unroll
                for (int i = 0; i < BN / 8; i++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
#pragma unroll
                        for (int hf = hf0; hf < hf1; hf++) {
                            const float x = s[4 * i + 2 * hf + e];
                            const float pe = ffma ? fa2_softmax_p_ffma(x, c_exp, max_scaled[hf])
                                                  : fa2_softmax_p(x, c_exp, max_scaled[hf]);
                            s[4 * i + 2 * hf + e] = pe;
                            sum[hf] += pe;
                        }
            };
            /* Both halves at once, one exactness test for both, where the
             * registers allow it: two consumers (232 registers a thread)
             * up to head dim 128. With three consumers (160 registers) or
             * head dim 256's 128-register accumulator, one half after the
             * other, which measured 1-3% faster there (bench/NOTES-fwd90.md,
             * "The softmax's dependency chains") */
            const bool exact0 = fa2_softmax_ffma_exact(max_scaled[0]);
            const bool exact1 = fa2_softmax_ffma_exact(max_scaled[1]);
            if constexpr (NC == 2 && HD <= 128) {
                if (exact0 && exact1)
                    exps(0, 2, true);
                else
                    exps(0, 2, false);
            } else {
                if (exact0)
                    exps(0, 1, true);
                else
                    exps(0, 1, false);
                if (exact1)
                    exps(1, 2, true);
                else
                    exps(1, 2, false);
            }
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
                fa2_softmax_accumulate(&st[hf], alpha[hf], sum[hf]);
        };
        /* P rounded to the input dtype, in wgmma's register A-fragment order */
        auto pack_p = [&](int64_t col_lo) {
#pragma unroll
            for (int kk = 0; kk < KP; kk++) {
                pa[kk][0] = pack2<IS_BF16>(s[8 * kk + 0], s[8 * kk + 1]);
                pa[kk][1] = pack2<IS_BF16>(s[8 * kk + 2], s[8 * kk + 3]);
                pa[kk][2] = pack2<IS_BF16>(s[8 * kk + 4], s[8 * kk + 5]);
                pa[kk][3] = pack2<IS_BF16>(s[8 * kk + 6], s[8 * kk + 7]);
            }
            if (MODS == 2 && p.dropout.enabled) {
                dropout(col_lo);
                drop_packed();
            }
        };
        auto rescale_o = [&](const float (&alpha)[2]) {
            if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
                for (int i = 0; i < NO / 4; i++) {
                    o[4 * i + 0] *= alpha[0];
                    o[4 * i + 1] *= alpha[0];
                    o[4 * i + 2] *= alpha[1];
                    o[4 * i + 3] *= alpha[1];
                }
            }
        };
        /* V of step j may be read once the copy landed (and, for a varlen
         * tail, once the producer zeroed the rows past the sequence) */
        auto wait_v = [&](int step) {
            const int gs = gstep + step;
            const int stg = gs % ST, ph = (gs / ST) & 1;
            const int64_t col_lo = fa2_kv_block_at(T.kv, step) * BN;
            if (varlen && col_lo + BN > T.seqlen_k) {
                mbar_wait(&v_ready[stg], (tail_phase >> stg) & 1);
                tail_phase ^= 1u << stg;
            } else {
                mbar_wait(&v_full[stg], ph);
            }
        };

        mbar_wait(q_full, qiter & 1);
        if (nsteps > 0) {
            float alpha[2];
            {
                const int stg = gstep % ST;
                mbar_wait(&k_full[stg], (gstep / ST) & 1);
                turn_begin_first(); /* warpgroup 0 goes first */
                wgmma_fence();
                issue_s(stg);
                wgmma_commit();
                turn_end();
                wgmma_wait<0>();
                reg_fence_n<NS>(s);
                if (lane == 0)
                    mbar_arrive(&k_empty[stg]);
            }
            softmax(fa2_kv_block_at(T.kv, 0) * BN, alpha);
            pack_p(fa2_kv_block_at(T.kv, 0) * BN);
            for (int step = 1; step < nsteps; step++) {
                const int gs = gstep + step;
                const int stg = gs % ST, prev = (gs - 1) % ST;
                mbar_wait(&k_full[stg], (gs / ST) & 1);
                turn_begin();
                wgmma_fence();
                issue_s(stg);
                wgmma_commit();
                wait_v(step - 1);
                issue_pv(prev);
                wgmma_commit();
                turn_end();
                wgmma_wait<1>(); /* S of this step has landed */
                reg_fence_n<NS>(s);
                if (lane == 0)
                    mbar_arrive(&k_empty[stg]);
                softmax(fa2_kv_block_at(T.kv, step) * BN, alpha);
                wgmma_wait<0>(); /* P V of the previous step has landed */
                reg_fence_n<NO>(o);
                reg_fence_u<KP * 4>(*reinterpret_cast<uint32_t(*)[KP * 4]>(&pa[0][0]));
                if (lane == 0)
                    mbar_arrive(&v_empty[prev]);
                rescale_o(alpha);
                pack_p(fa2_kv_block_at(T.kv, step) * BN);
            }
            /* every S product of this tile has read Q */
            if (SEPARATE_O && lane == 0)
                mbar_arrive(q_empty);
            const int last = (gstep + nsteps - 1) % ST;
            wait_v(nsteps - 1);
            turn_begin();
            wgmma_fence();
            issue_pv(last);
            wgmma_commit();
            turn_end_last();
            wgmma_wait<0>();
            reg_fence_n<NO>(o);
            if (lane == 0)
                mbar_arrive(&v_empty[last]);
        } else if (SEPARATE_O && lane == 0) {
            mbar_arrive(q_empty); /* Q has landed and nobody reads it */
        }
        gstep += nsteps;
        qiter++;

        /* ---- epilogue: 1/l once, O staged in shared memory, LSE -------- */
        float inv_l[2];
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            float l = st[hf].l;
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            st[hf].l = l;
            inv_l[hf] = fa2_softmax_inv_l(st[hf]);
            if (MODS == 2) /* (1 / l) / (1 - p), rounded once */
                inv_l[hf] = fa2_dropout_out_scale(&p.dropout, inv_l[hf]);
        }
        /* every warp of this warpgroup is past its last S product (sO = sQ)
         * and past its share of the last tile's O copy (sO); with the copy
         * engine storing O, its last store has read sO */
        if (o_store_lane)
            bulk_wait_read();
        named_sync(1 + cw, 128);
        /* O / l, rounded, into sO's swizzled layout by stmatrix: per 16
         * columns k of the warp's 16 rows, the four 8x8 matrices (rows
         * 0-7 | 8-15) x (n8 tiles 2k | 2k + 1) of the accumulator; lane l
         * addresses row l % 8 (+ 8) of matrix l / 8 */
        {
            const int mrow = wrow + (lane & 7) + ((lane >> 3) & 1) * 8;
            const uint32_t rbase = smem_addr(sO) + mrow * 128;
#pragma unroll
            for (int k = 0; k < HD / 16; k++) {
                const int c = 2 * (k & 3) + (lane >> 4); /* chunk within the 64 columns */
                const float *const a = o + 8 * k;
                stmatrix_x4(rbase + (k >> 2) * BM * 128 + ((c ^ (lane & 7)) << 4),
                            pack2<IS_BF16>(a[0] * inv_l[0], a[1] * inv_l[0]),
                            pack2<IS_BF16>(a[2] * inv_l[1], a[3] * inv_l[1]),
                            pack2<IS_BF16>(a[4] * inv_l[0], a[5] * inv_l[0]),
                            pack2<IS_BF16>(a[6] * inv_l[1], a[7] * inv_l[1]));
            }
        }
        if (o_tma) {
            /* the warpgroup's 64 rows leave by the copy engine, one box per
             * 64 columns; rows past the sequence and columns past the head
             * dim lie outside the map and are not written */
            fence_proxy_async();
            named_sync(1 + cw, 128);
            if (o_store_lane) {
#pragma unroll
                for (int cb = 0; cb < CB; cb++)
                    tma_store_4d(&tmo, sO + (cb * BM + cw * 64) * 64, cb * 64,
                                 (int)(row_lo + cw * 64), T.h, (int)T.batch);
                bulk_commit();
            }
        } else {
            named_sync(1 + cw, 128);
            uint16_t *const gO = (uint16_t *)p.o + T.batch * p.o_sb +
                                 (T.q_start + row_lo) * p.o_sr + (int64_t)T.h * p.o_sh;
            const int d = p.head_dim;
            constexpr int CPR = HD / 8; /* 16-byte chunks a row */
#pragma unroll
            for (int k = 0; k < 64 * CPR / 128; k++) {
                const int idx = (ctid & 127) + k * 128;
                const int r = cw * 64 + idx / CPR, c = idx % CPR;
                if (r < rows && c * 8 < d)
                    *reinterpret_cast<uint4 *>(gO + (int64_t)r * p.o_sr + c * 8) =
                        *reinterpret_cast<const uint4 *>(sO + ((c >> 3) * BM + r) * 64 +
                                                         (((c & 7) ^ (r & 7)) << 3));
            }
        }
        if (!SEPARATE_O) {
            /* this warp's reads of the staged O (= Q) are done; the copy
             * engine may overwrite it with the next Q */
            fence_proxy_async();
            __syncwarp();
            if (lane == 0)
                mbar_arrive(q_empty);
        }
        if (p.lse && t == 0) {
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int r = wrow + g + 8 * hf;
                if (r < rows)
                    p.lse[T.batch * p.lse_sb + (int64_t)T.h * p.lse_sh +
                          (T.q_start + row_lo + r) * p.lse_sr] =
                        fa2_softmax_lse(st[hf], lse_scale);
            }
        }
    }
    if (o_store_lane)
        bulk_wait_complete(); /* the last O store is done before the block's memory goes */
#endif
}

/* Launch the sm_90 kernel for head dim HD with NC consumer warpgroups
 * (the caller built the maps and set p.m_blocks for block_m = 64 NC). */
template <int HD, int NC>
fa2_status launch_fwd_sm90(const fa2_fwd_params &p, const fa2_tmap *maps, bool bf16,
                           int64_t grid, cudaStream_t stream)
{
    constexpr int smem = FA2_FWD90_SMEM_BYTES(HD, NC);
    static_assert(smem <= 227 * 1024, "one block's shared memory on sm_90");
    typedef void (*kernel_fn)(const fa2_fwd_params, const fa2_tmap, const fa2_tmap,
                              const fa2_tmap, const fa2_tmap);
    static const kernel_fn kernels[3][2] = {
        {fwd_kernel_sm90<HD, NC, false, 0>, fwd_kernel_sm90<HD, NC, true, 0>},
        {fwd_kernel_sm90<HD, NC, false, 1>, fwd_kernel_sm90<HD, NC, true, 1>},
        {fwd_kernel_sm90<HD, NC, false, 2>, fwd_kernel_sm90<HD, NC, true, 2>}};
    const int mods = !p.mods ? 0 : p.dropout.enabled || p.dropout_mask ? 2 : 1;
    const kernel_fn kern = kernels[mods][bf16 ? 1 : 0];
    cudaError_t err =
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the sm_90 head-dim-%d forward kernel needs "
                        "%d bytes of shared memory per block and this device refuses "
                        "that (%s)", HD, smem, cudaGetErrorString(err));
    }
    kern<<<(unsigned)grid, 128 * (NC + 1), smem, stream>>>(p, maps[0], maps[1], maps[2],
                                                           maps[3]);
    err = cudaGetLastError();
    if (err != cudaSuccess)
        return fa2_fail(FA2_ERR_CUDA, "launching the sm_90 head-dim-%d forward kernel "
                        "(%lld blocks, %d bytes of shared memory) failed: %s", HD,
                        (long long)grid, smem, cudaGetErrorString(err));
    return FA2_OK;
}

/* whether this device runs the sm_90a code of the kernel for HD */
template <int HD> bool fwd_sm90_runs_here()
{
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, fwd_kernel_sm90<HD, 2, true, 0>) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return fa.binaryVersion == 90;
}

} // namespace fa2gpu

/* gpu/fwd_sm90_hdNN.cu: one launcher (and one probe) per head dim; nc is
 * the number of consumer warpgroups (fwd_config.h's FA2_FWD90_CONSUMERS) */
#define FA2_FWD90_DEFINE_LAUNCHER(HD)                                          \
    extern "C" fa2_status fa2_cuda_fwd90_hd##HD(const fa2_fwd_params *p,       \
                                                const void *maps, int nc,      \
                                                int bf16, int64_t grid,        \
                                                void *stream)                  \
    {                                                                          \
        const fa2_tmap *m = (const fa2_tmap *)maps;                            \
        if (FA2_FWD90_HAS_NC3(HD) && nc == 3)                                  \
            return fa2gpu::launch_fwd_sm90<HD, FA2_FWD90_HAS_NC3(HD) ? 3 : 2>( \
                *p, m, bf16 != 0, grid, (cudaStream_t)stream);                 \
        return fa2gpu::launch_fwd_sm90<HD, 2>(*p, m, bf16 != 0, grid,          \
                                              (cudaStream_t)stream);           \
    }                                                                          \
    extern "C" int fa2_cuda_fwd90_runs_hd##HD(void)                            \
    {                                                                          \
        return fa2gpu::fwd_sm90_runs_here<HD>() ? 1 : 0;                       \
    }

#endif /* FA2_GPU_FWD_KERNEL_SM90_CUH */
