/* wgmma.cuh — Hopper's warpgroup matrix multiply (PTX ISA 8.x, sm_90a
 * only: "wgmma.mma_async"), the one shape the sm_90 backward kernel uses,
 * m64n64k16 with f16/bf16 inputs and float32 accumulators, and the
 * shared-memory descriptors it reads its operands through.
 *
 * A warpgroup is 4 consecutive warps (128 threads, the first warp index a
 * multiple of 4). One instruction computes D(64x64) += A(64x16) B(16x64):
 *   A from shared memory (a descriptor) or from registers, B from shared
 *   memory; the accumulator is 32 floats a thread, laid out like eight
 *   mma.m16n8k16 C tiles: warp w of the group owns rows 16w..16w+15,
 *   d[4i + 0..1] = (row 16w + g,     columns 8i + 2t, 8i + 2t + 1)
 *   d[4i + 2..3] = (row 16w + g + 8, the same columns)
 *   (g = lane / 4, t = lane % 4). A in registers is the mma.m16n8k16 A
 *   fragment of the warp's 16 rows, so two adjacent accumulator n8 tiles
 *   of one product are the A operand of the next, as in ptx.cuh.
 *
 * Shared-memory layout (all operands here): "128-byte swizzle". A tile of
 * R rows and C 16-bit columns is stored as C/64 column blocks of [R][64]
 * elements; within a block, row r's 16-byte chunk c sits at chunk
 * c ^ (r % 8). Every block starts 1024-byte aligned (8 rows of 128 bytes:
 * the swizzle's period). The same bytes serve both readings of a tile:
 *   K-major (the tile's rows are the product's M or N, its columns the K):
 *     8-row groups 1024 bytes apart (SBO); a k16 step moves the start
 *     address 32 bytes along the row; the next column block is R*128 bytes on.
 *   MN-major (rows are the K, columns the M or N; imm-trans = 1):
 *     the 64 columns of one block are the instruction's whole M or N,
 *     8-row groups (8 K values) 1024 bytes apart (SBO), a k16 step moves 16
 *     rows = 2048 bytes.
 * So the descriptor is the same everywhere but for its start address:
 * swizzle mode 1 (128 B) in bits 62-63, SBO = 1024 in bits 32-45 (>> 4),
 * LBO (bits 16-29) unused by these shapes and set to 1, base offset 0.
 *
 * Ordering (PTX ISA, "wgmma.fence", "async proxy"): registers written by
 * ordinary instructions need wgmma_fence() before a wgmma reads them;
 * wgmma_commit() closes a group of issued instructions, wgmma_wait<N>()
 * waits until at most N groups are still running; shared memory written by
 * ordinary stores needs fence_proxy_async() in the writing threads (then a
 * barrier) before a wgmma reads it.
 */
#ifndef FA2_GPU_WGMMA_CUH
#define FA2_GPU_WGMMA_CUH

#include <stdint.h>

namespace fa2gpu {

/* descriptor of a 128-byte-swizzled operand starting at shared address a */
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t a)
{
    return (uint64_t)((a & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) |
           ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FA2_HAVE_WGMMA 1
#else
#define FA2_HAVE_WGMMA 0
#endif

__device__ __forceinline__ void wgmma_fence()
{
#if FA2_HAVE_WGMMA
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wgmma_commit()
{
#if FA2_HAVE_WGMMA
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

template <int N> __device__ __forceinline__ void wgmma_wait()
{
#if FA2_HAVE_WGMMA
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void fence_proxy_async()
{
#if FA2_HAVE_WGMMA
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/* Keep the compiler from moving accesses of an accumulator across the
 * asynchronous window (issue .. wait) of the wgmma that owns it. */
template <int N> __device__ __forceinline__ void reg_fence(float (&d)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++)
        asm volatile("" : "+f"(d[i])::"memory");
}

#define FA2_WG_D32                                                             \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "  \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "   \
    "%30, %31}"
#define FA2_WG_D32_OPS(d)                                                      \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),    \
        "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]),           \
        "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),       \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),       \
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),       \
        "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]),       \
        "+f"(d[31])

/* d (= or +=) A B, A and B from shared memory. accumulate 0 overwrites d.
 * TA / TB: 1 reads A / B MN-major (transposed), 0 K-major. */
template <bool IS_BF16, int TA, int TB>
__device__ __forceinline__ void wgmma_ss(float (&d)[32], uint64_t da, uint64_t db,
                                         int accumulate)
{
#if FA2_HAVE_WGMMA
    if (IS_BF16)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FA2_WG_D32
                     ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                     : FA2_WG_D32_OPS(d)
                     : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " FA2_WG_D32
                     ", %32, %33, p, 1, 1, %35, %36;\n}\n"
                     : FA2_WG_D32_OPS(d)
                     : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
#endif
}

/* d += A B, A the warp's mma.m16n8k16 A fragment (registers), B from
 * shared memory (TB as above). */
template <bool IS_BF16, int TB>
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const uint32_t (&a)[4],
                                         uint64_t db)
{
#if FA2_HAVE_WGMMA
    if (IS_BF16)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FA2_WG_D32
                     ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
                     : FA2_WG_D32_OPS(d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1), "n"(TB));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " FA2_WG_D32
                     ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
                     : FA2_WG_D32_OPS(d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1), "n"(TB));
#endif
}

} // namespace fa2gpu

#endif /* FA2_GPU_WGMMA_CUH */
