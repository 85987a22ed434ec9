/* fwd_config.h — the CUDA forward kernel's tiling, one row per instantiated
 * head dim. The kernels (gpu/fwd_kernel.cuh) and the tile query
 * (fa2_cuda_tile_config, gpu/fwd_launch.cu) both read this table, so the
 * tiling the library reports is the tiling the kernel runs.
 *
 * Chosen for Hopper's 228 KB of shared memory per SM (and still within the
 * 163 KB a block may have on sm_80):
 *   smem = (block_m + (2 + v_stages) * block_n) * smem_cols * 2 bytes
 * (a Q tile, K tiles double-buffered, V tiles double- or single-buffered).
 * smem_cols is the head dim rounded up to a multiple of 64 (32 stays 32) so
 * that every shared-memory row is a whole number of 128-byte lines and the
 * XOR swizzle stays inside the row. Each warp owns block_m / warps query
 * rows (16 or 32: one or two m16 tiles of mma.m16n8k16), FA2's split-Q
 * partitioning.
 *
 *   head dim  block_m  block_n  warps  rows/warp  V bufs  smem    blocks/SM
 *        32      128      128      4       32        2     40 KB   2 (regs)
 *        64      128      128      4       32        2     80 KB   2 (regs)
 *        96      128       64      4       32        2     96 KB   2
 *       128      128       64      4       32        2     96 KB   2
 *       160      128       64      8       16        2    144 KB   1
 *       192      128       64      8       16        2    144 KB   1
 *       224      128       64      8       16        1    160 KB   1
 *       256      128       64      8       16        1    160 KB   1
 *
 * Any other multiple of 8 up to 256 runs on the next head dim up, with the
 * extra columns predicated off (zero-filled on load, not stored).
 */
#ifndef FA2_GPU_FWD_CONFIG_H
#define FA2_GPU_FWD_CONFIG_H

#define FA2_FWD_NUM_HEAD_DIMS 8

/* head dim the kernel for d runs at: 32, 64, ..., 256 */
static inline int fa2_fwd_kernel_head_dim(int d)
{
    return d <= 32 ? 32 : ((d + 31) / 32) * 32;
}

/* (each may be overridden with -D for tuning builds; bench/NOTES-gpu.md) */
#ifndef FA2_FWD_BLOCK_M
#define FA2_FWD_BLOCK_M(HD) 128
#endif
#ifndef FA2_FWD_BLOCK_N
#define FA2_FWD_BLOCK_N(HD) ((HD) <= 64 ? 128 : 64)
#endif
/* V buffers: 2 (double-buffered like K), or 1 where shared memory is
 * short (head dim 224/256: the next V tile is then loaded after P V, and
 * its copy overlaps the next S and softmax only) */
#ifndef FA2_FWD_V_STAGES
#define FA2_FWD_V_STAGES(HD) ((HD) <= 192 ? 2 : 1)
#endif
#ifndef FA2_FWD_WARPS
#define FA2_FWD_WARPS(HD) ((HD) <= 128 ? 4 : 8)
#endif
/* thread blocks per SM the register allocation must allow */
#ifndef FA2_FWD_MIN_BLOCKS
#define FA2_FWD_MIN_BLOCKS(HD) 1
#endif
#define FA2_FWD_SMEM_COLS(HD) ((HD) == 32 ? 32 : (((HD) + 63) / 64) * 64)
#define FA2_FWD_SMEM_BYTES(HD)                                                 \
    ((FA2_FWD_BLOCK_M(HD) + (2 + FA2_FWD_V_STAGES(HD)) * FA2_FWD_BLOCK_N(HD)) *  \
     FA2_FWD_SMEM_COLS(HD) * 2)


/* ---- the sm_90a kernel (gpu/fwd_kernel_sm90.cuh) -------------------------
 * Warp-specialised: one producer warpgroup issuing TMA copies and NC
 * consumer warpgroups of 64 query rows each (block_m = 64 NC). Head dims
 * run on the kernels for 64, 128 or 256 (the next one up; the extra
 * columns are the copy engine's zero fill and are not stored).
 *
 *   head dim  consumers  block_m  block_n  stages  smem (Q + stages x (K + V))
 *        64      3 (2)   192/128     128      2      24/16 + 2 x 32 KB
 *       128         2       128      128      2         32 + 2 x 64 KB
 *       256         2       128       64      2         64 + 2 x 64 KB
 *
 * At head dim 64 both 2 and 3 consumers are built; FA2_FWD90_CONSUMERS
 * picks the default (3: 462-498 against 421-444 TFLOP/s at seqlen 4k-16k
 * on the H200, bench/NOTES-fwd90.md), the environment's
 * FA2_CUDA_FWD90_CONSUMERS=2|3 overrides it (for measurements; the tile
 * query follows the same choice).
 *
 * block_n per head dim may be set at build time for tuning, e.g.
 * -DFA2_FWD90_BN_HD128=176 -DFA2_FWD90_BN_HD256=80 in CPPFLAGS and
 * NVCCFLAGS (the shapes gpu/wgmma_wide.cuh has: 64, 80, 128, 176).
 * Measured on the H200 (bench/NOTES-fwd90.md): 176 at d128 ran 1-7%
 * slower (ptxas spills 72-940 bytes), 80 at d256 0-2% faster at 4k-16k
 * and 3% slower at 1k causal; neither is the default.
 */
#define FA2_FWD90_NUM_HEAD_DIMS 3
static inline int fa2_fwd90_kernel_head_dim(int d)
{
    return d <= 64 ? 64 : d <= 128 ? 128 : 256;
}
#ifndef FA2_FWD90_CONSUMERS
#define FA2_FWD90_CONSUMERS(HD) ((HD) == 64 ? 3 : 2)
#endif
#define FA2_FWD90_HAS_NC3(HD) ((HD) == 64)
/* The consumer warpgroups for a problem: FA2_FWD90_CONSUMERS(hd), except
 * at head dim 64 for causal problems of at most
 * FA2_FWD90_NC2_CAUSAL_MAX_SEQLEN query rows, which take two (128-row
 * tiles: whole pairs for the causal schedule, and no 64-row tail tile in
 * which two of three warpgroups compute on rows past the sequence). H200,
 * bf16, 16k tokens, 32 heads (bench/NOTES-fwd90.md, 2026-12-03), fa2 /
 * cuDNN with two and three consumers:
 *   causal   N  512: 0.750 / 0.621   1024: 0.810 / 0.692
 *            N 1536: 0.828 / 0.838   2048: 0.849 / 0.845   4096: 0.853 / 0.885
 *   no mask  N  512: 0.809 / 0.857   1024: 0.820 / 0.874   (three ahead at
 *            every length measured, up to 8192)
 * The outputs are bit-identical either way (a row's result does not depend
 * on block_m), so this choice moves no number the mirror checks; the
 * simulator and the traffic counters follow it (fa2_fwd_tile_config). */
#define FA2_FWD90_NC2_CAUSAL_MAX_SEQLEN 1024
static inline int fa2_fwd90_consumers_for(int kernel_hd, int causal, long long max_seqlen_q)
{
    const int nc = FA2_FWD90_CONSUMERS(kernel_hd);
    if (FA2_FWD90_HAS_NC3(kernel_hd) && nc == 3 && causal &&
        max_seqlen_q <= FA2_FWD90_NC2_CAUSAL_MAX_SEQLEN)
        return 2;
    return nc;
}
#ifndef FA2_FWD90_BN_HD64
#define FA2_FWD90_BN_HD64 128
#endif
#ifndef FA2_FWD90_BN_HD128
#define FA2_FWD90_BN_HD128 128
#endif
#ifndef FA2_FWD90_BN_HD256
#define FA2_FWD90_BN_HD256 64
#endif
#define FA2_FWD90_BLOCK_N(HD)                                                  \
    ((HD) <= 64 ? FA2_FWD90_BN_HD64 : (HD) <= 128 ? FA2_FWD90_BN_HD128 : FA2_FWD90_BN_HD256)
#ifndef FA2_FWD90_STAGES
#define FA2_FWD90_STAGES(HD) 2
#endif
/* O staged through a buffer of its own where that fits (the next tile's Q
 * then arrives during this tile's epilogue), else through Q's */
#define FA2_FWD90_SEPARATE_O(HD, NC)                                           \
    ((64 * (NC) + 2 * FA2_FWD90_STAGES(HD) * FA2_FWD90_BLOCK_N(HD) + 64 * (NC)) * (HD) * 2 + \
         2048 <= 227 * 1024)
/* barriers: Q full/empty, per stage K full/empty, V full/empty/ready, and
 * the tile scheduler's ring of two tile numbers with their full/empty */
#define FA2_FWD90_SMEM_BYTES(HD, NC)                                           \
    (1024 +                                                                    \
     (64 * (NC) * (FA2_FWD90_SEPARATE_O(HD, NC) ? 2 : 1) +                     \
      2 * FA2_FWD90_STAGES(HD) * FA2_FWD90_BLOCK_N(HD)) * (HD) * 2 +           \
     8 * (2 + 5 * FA2_FWD90_STAGES(HD)) + 48)
/* the consumers take turns to issue their products (FA3's ping-pong);
 * -DFA2_FWD90_PINGPONG_ON=0 builds the kernel without (for measurements) */
#ifndef FA2_FWD90_PINGPONG_ON
#define FA2_FWD90_PINGPONG_ON 1
#endif

#endif /* FA2_GPU_FWD_CONFIG_H */
