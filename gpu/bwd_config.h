/* bwd_config.h — the CUDA backward kernel's tiling, one row per
 * instantiated head dim. The kernel (gpu/bwd_kernel.cuh) and the tile query
 * (fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD, ...), gpu/bwd_launch.cu)
 * both read this table, so the tiling the library reports is the tiling the
 * kernel runs, and the CPU mirror (cpu/tiled_bwd.c) can run it too.
 *
 * One thread block owns key block j (block_n key rows of K and V, resident in
 * shared memory) and loops over the query blocks (block_m rows) that see it.
 * Each warp owns 16 key rows of the dK_j and dV_j accumulators (registers);
 * with dsplit 2 two warps share the same 16 key rows and each keeps half of
 * the head dim's columns (both recompute the 16 x block_m tiles S^T and
 * dP^T), which keeps head dim 256 within 255 registers a thread. (The
 * sm_90 wgmma kernel, gpu/bwd_kernel_sm90.cuh, keeps dsplit's split of dK
 * and dV but not the recomputation: there each warpgroup computes half of
 * the query columns of S^T and dP^T and the two halves of P^T and dS^T
 * meet in shared memory.)
 *
 *   head dim  block_m  block_n  dsplit  warps  smem (bytes)
 *        64      128      128       1      8    (2*128 + 4*128)*64*2 + 128*128*2 + 16*128  =  133,120
 *       128       64      128       1      8    (2*128 + 4*64)*128*2 + 128*64*2 + 16*64    =  148,480
 *       256       64       64       2      8    (2*64 + 4*64)*256*2 + 64*64*2 + 16*64      =  205,824
 *
 * (K, V; Q and dO double-buffered; dS^T; LSE and D double-buffered.)
 * These are flash-attn 2's sm80 tile sizes, which the simulator also uses
 * (sim/args.c), so builds with and without CUDA simulate the same tiles.
 * Any other multiple of 8 up to 256 runs on the next head dim up, with the
 * extra columns predicated off (zero-filled on load, not stored).
 */
#ifndef FA2_GPU_BWD_CONFIG_H
#define FA2_GPU_BWD_CONFIG_H

#define FA2_BWD_NUM_HEAD_DIMS 3

/* head dim the backward kernel for d runs at: 64, 128 or 256 */
static inline int fa2_bwd_kernel_head_dim(int d)
{
    return d <= 64 ? 64 : d <= 128 ? 128 : 256;
}

static inline int fa2_bwd_kernel_slot(int hd)
{
    return hd == 64 ? 0 : hd == 128 ? 1 : 2;
}

#define FA2_BWD_BLOCK_M(HD) ((HD) <= 64 ? 128 : 64)
#define FA2_BWD_BLOCK_N(HD) ((HD) <= 128 ? 128 : 64)
#define FA2_BWD_DSPLIT(HD) ((HD) <= 128 ? 1 : 2)
#define FA2_BWD_WARPS(HD) (FA2_BWD_BLOCK_N(HD) / 16 * FA2_BWD_DSPLIT(HD))
#define FA2_BWD_SMEM_BYTES(HD)                                                 \
    ((2 * FA2_BWD_BLOCK_N(HD) + 4 * FA2_BWD_BLOCK_M(HD)) * (HD) * 2 +          \
     FA2_BWD_BLOCK_N(HD) * FA2_BWD_BLOCK_M(HD) * 2 + 16 * FA2_BWD_BLOCK_M(HD))

/* the pre- and postprocess kernels: one thread block of 8 warps per query
 * block of block_m rows */
#define FA2_BWD_ROWS_WARPS 8

#endif /* FA2_GPU_BWD_CONFIG_H */
