/* dq_bulk.cuh — the backward's dQ shares added to the float32 accumulator
 * by the copy engine instead of per-thread reductions (sm_90, PTX ISA 8.0):
 *
 *   1. each thread writes its part of a 64 x 64 dQ piece (the wgmma C
 *      fragment) to a staging tile in shared memory, rows of 64 floats;
 *   2. fence.proxy.async.shared::cta: those ordinary stores become visible
 *      to the async proxy, which the copy engine reads through;
 *   3. one lane per row issues cp.reduce.async.bulk ... .add.f32: the copy
 *      engine reads the row (16-byte aligned, a multiple of 16 bytes) and
 *      adds it element by element into global memory, in one request
 *      instead of 16 vector reductions;
 *   4. the lane commits its requests as a bulk group. Before the staging
 *      tile is written again, cp.async.bulk.wait_group.read (the copy
 *      engine has read it); before another block may rely on the sums
 *      (deterministic mode's turn), cp.async.bulk.wait_group (the adds are
 *      done) and fence.proxy.async.global.
 *
 * Each element still receives exactly one float32 add from this block, as
 * with red.global.add, so the deterministic order (fa2_bwd_dq_turn) holds.
 * The rows a warp stages are its own 16 (wgmma's C layout), so a warp only
 * synchronises with itself. Everything compiles to nothing below sm_90.
 */
#ifndef FA2_GPU_DQ_BULK_CUH
#define FA2_GPU_DQ_BULK_CUH

#include <stdint.h>

#include "dq_staged.cuh"
#include "ptx.cuh"

namespace fa2bwd {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FA2_HAVE_BULK 1
#else
#define FA2_HAVE_BULK 0
#endif

/* gdst[0 .. bytes/4) += ssrc[0 .. bytes/4), by the copy engine */
__device__ __forceinline__ void bulk_reduce_add_f32(float *gdst, const float *ssrc,
                                                    uint32_t bytes)
{
#if FA2_HAVE_BULK
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 "
                 "[%0], [%1], %2;\n" ::"l"(gdst),
                 "r"(fa2gpu::smem_addr(ssrc)), "r"(bytes)
                 : "memory");
#endif
}

using fa2gpu::bulk_commit;    /* ptx.cuh */
using fa2gpu::bulk_wait_read; /* ptx.cuh */

/* this thread's bulk groups are complete, their writes ordered before
 * this thread's later generic-proxy accesses (a fence and a flag release
 * then publish them to other blocks) */
__device__ __forceinline__ void bulk_wait_all()
{
    fa2gpu::bulk_wait_complete(); /* ptx.cuh */
#if FA2_HAVE_BULK
    asm volatile("fence.proxy.async.global;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void fence_proxy_async_smem()
{
#if FA2_HAVE_BULK
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/* Step 1 and 2 for one thread: acc is its wgmma m64n64 C fragment, staged
 * in the [64][64] float tile's plain layout (dq_staged.cuh). */
__device__ __forceinline__ void dq_stage_piece(float *stage, const float (&acc)[32], int r,
                                               int t)
{
    dq_stage_fragment<false>(stage, acc, r, t);
    fence_proxy_async_smem();
}

/* Steps 3 and 4 for the warp that staged rows row0 .. row0 + 15 of the
 * piece: lane l < 16 adds row row0 + l into the accumulator rows gacc
 * (rows of d floats, starting at column c0), if that row is below `rows`
 * and the piece has columns below d. Returns whether this lane issued. */
__device__ __forceinline__ bool dq_bulk_rows(float *gacc, const float *stage, int row0,
                                             int rows, int d, int c0, int lane)
{
    __syncwarp();
    const int r = row0 + lane;
    const int cols = d - c0 < 64 ? d - c0 : 64;
    const bool go = lane < 16 && r < rows && cols > 0;
    if (go) {
        bulk_reduce_add_f32(gacc + (int64_t)r * d + c0, stage + r * 64,
                            (uint32_t)cols * 4u);
        bulk_commit();
    }
    return go;
}

} // namespace fa2bwd

#endif /* FA2_GPU_DQ_BULK_CUH */
