/* dq_staged.cuh — the backward's dQ piece added to the float32 accumulator
 * by the threads, through a staging tile in shared memory (sm_90 kernel).
 *
 * The wgmma C fragment of a 64 x 64 dQ piece gives a thread two columns of
 * two rows per n8 tile. Added straight from registers (bwd_block.cuh's
 * dq_add_n8), lanes t and t^1 first swap halves by shuffles to form four
 * adjacent columns, and the piece's 32 registers stay live until the last
 * reduction has read them: step st+1's S^T and dP^T products (64 more
 * registers) cannot be issued before the reductions without spilling, so
 * the tensor cores idle through them (ncu, bench/NOTES-bwd.md: a quarter
 * of the warps' samples sat in that phase at head dim 128). Staged:
 *
 *   1. each thread writes its fragment to the tile (rows of 64 floats,
 *      the 8-float chunks of row r XOR-swizzled by r mod 8, so that the
 *      eight rows a store instruction touches fall on distinct banks);
 *   2. the piece's registers are free; the adds wait for the top of the
 *      next step, whose S^T and dP^T are issued first (issuing them
 *      within this step instead, in flight across the loop's back edge,
 *      made ptxas serialise the wgmmas at head dim 128);
 *   3. the warp reads its own 16 rows back, 16 lanes a row, one float4 a
 *      lane, and adds each with one red.global.add.v4.f32, while those
 *      products run.
 *
 * Each element of the accumulator still receives exactly one float32 add
 * from this block, so the deterministic order (fa2_bwd_dq_turn) and its
 * results are those of the other paths. A warp reads only the rows it
 * wrote: it synchronises with itself only.
 */
#ifndef FA2_GPU_DQ_STAGED_CUH
#define FA2_GPU_DQ_STAGED_CUH

#include "bwd_block.cuh"

namespace fa2bwd {

/* element (r, c) of the [64][64] staging tile: rows of 64 floats, the
 * 8-float chunks of row r XOR-swizzled by r mod 8 (SWIZZLE), or plain
 * (the copy engine reads whole rows: dq_bulk.cuh) */
template <bool SWIZZLE> __device__ __forceinline__ int dq_stage_at(int r, int c)
{
    return r * 64 + (SWIZZLE ? c ^ ((r & 7) << 3) : c);
}

/* Step 1: acc is the thread's m64n64 C fragment (n8 tile dt: acc[4dt],
 * acc[4dt+1] at row r, columns 8dt + 2t, +1; acc[4dt+2], acc[4dt+3] at
 * row r + 8). */
template <bool SWIZZLE>
__device__ __forceinline__ void dq_stage_fragment(float *stage, const float (&acc)[32], int r,
                                                  int t)
{
#pragma unroll
    for (int dt = 0; dt < 8; dt++) {
        *reinterpret_cast<float2 *>(stage + dq_stage_at<SWIZZLE>(r, dt * 8 + 2 * t)) =
            make_float2(acc[4 * dt], acc[4 * dt + 1]);
        *reinterpret_cast<float2 *>(stage + dq_stage_at<SWIZZLE>(r + 8, dt * 8 + 2 * t)) =
            make_float2(acc[4 * dt + 2], acc[4 * dt + 3]);
    }
}

/* Step 3 for the warp that staged tile rows row0 .. row0 + 15: tile row
 * sr goes to accumulator row grow0 + sr of gacc (rows of d floats,
 * columns from c0), for rows below `rows` and columns below d. */
__device__ __forceinline__ void dq_add_staged(float *gacc, const float *stage, int row0,
                                              int grow0, int rows, int d, int c0, int lane)
{
    __syncwarp();
    const int c = 4 * (lane & 15); /* d is a multiple of 8: whole float4s */
    if (c0 + c >= d)
        return;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int sr = row0 + 2 * i + (lane >> 4), gr = grow0 + sr;
        if (gr < rows) {
            const float4 v = *reinterpret_cast<const float4 *>(stage + dq_stage_at<true>(sr, c));
            red_add4(gacc + (int64_t)gr * d + c0 + c, v.x, v.y, v.z, v.w);
        }
    }
}

} // namespace fa2bwd

#endif /* FA2_GPU_DQ_STAGED_CUH */
