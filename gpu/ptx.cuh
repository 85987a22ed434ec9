/* ptx.cuh — the few PTX instructions the forward kernel is built from, as
 * inline assembly (PTX ISA 8.x, sm_80+):
 *   cp.async.cg (16-byte global -> shared copies, zero-fill predication),
 *   ldmatrix (.x4, and .trans for V), mma.sync.m16n8k16 (f16/bf16 in,
 *   f32 accumulate), and packing of two floats into f16x2/bf16x2.
 *
 * Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), with
 * g = lane / 4 and t = lane % 4:
 *   A 16x16 (row):  a[0] = (g, 2t..2t+1)    a[1] = (g+8, 2t..2t+1)
 *                   a[2] = (g, 2t+8..2t+9)  a[3] = (g+8, 2t+8..2t+9)
 *   B 16x8  (col):  b[0] = (k 2t..2t+1, n g)  b[1] = (k 2t+8..2t+9, n g)
 *   C 16x8  (f32):  c[0..1] = (g, 2t..2t+1)   c[2..3] = (g+8, 2t..2t+1)
 * Two C tiles side by side (n 0..7, 8..15) are exactly one A fragment of a
 * 16x16 operand, which is how P goes from the S accumulator into P V without
 * a trip through shared memory.
 */
#ifndef FA2_GPU_PTX_CUH
#define FA2_GPU_PTX_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fa2gpu {

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* prmt.b32 in its default mode with sign replication: result byte n is
 * byte (sel >> 4n) & 7 of {b, a} (a: bytes 0-3), or with bit 3 of that
 * nibble set, that byte's top bit copied into all eight bits */
__device__ __forceinline__ uint32_t prmt_sign(uint32_t a, uint32_t b, uint32_t sel)
{
    uint32_t d;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
    return d;
}

/* 16 bytes global -> shared; src_bytes 0 writes 16 zero bytes and reads
 * nothing (the predicated-off rows and columns). */
__device__ __forceinline__ void cp_async_16(void *dst, const void *src,
                                            int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                     smem_addr(dst)),
                 "l"(src), "r"(src_bytes)
                 : "memory");
}

/* the same with the shared-memory side as a 32-bit shared address (an
 * unrolled loop's constant offsets then fold into the instruction) */
__device__ __forceinline__ void cp_async_16_s32(uint32_t dst, const void *src,
                                                int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes)
                 : "memory");
}

/* The copy engine's bulk groups (sm_90; no-ops on older targets): commit
 * this thread's bulk copies issued so far as one group; wait until every
 * group has read its shared memory (which may then be written again) */
__device__ __forceinline__ void bulk_commit()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void bulk_wait_read()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
#endif
}

/* wait until every bulk group of this thread is complete (its global
 * writes done) */
__device__ __forceinline__ void bulk_wait_complete()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}

/* Programmatic dependent launch (sm_90; no-ops on older targets, where
 * the host launches the dependent kernel the ordinary way). A grid calls
 * pdl_launch_dependents when the kernel after it on the stream may be
 * scheduled (its blocks then wait in pdl_wait); pdl_wait returns once
 * every grid this one depends on has completed and its writes are
 * visible, so what precedes it must not read what they write. */
__device__ __forceinline__ void pdl_launch_dependents()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

/* Four 8x8 b16 matrices from registers into shared memory (sm_90): lane
 * l's r[j] holds row l / 4, columns 2 (l % 4) .. +1 of matrix j (the mma C
 * layout, packed), and lanes 8j .. 8j + 7 give the shared addresses of
 * matrix j's rows 0 .. 7. */
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, uint32_t r0, uint32_t r1,
                                            uint32_t r2, uint32_t r3)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(
                     addr),
                 "r"(r0), "r"(r1), "r"(r2), "r"(r3)
                 : "memory");
#else
    (void)addr, (void)r0, (void)r1, (void)r2, (void)r3;
#endif
}

__device__ __forceinline__ void cp_async_commit()
{
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

template <int N> __device__ __forceinline__ void cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p)
{
    asm volatile(
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
        : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
        : "r"(smem_addr(p)));
}

/* d += a * b, m16n8k16, f32 accumulate; IS_BF16 picks the input type. */
template <bool IS_BF16>
__device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4],
                                          uint32_t b0, uint32_t b1)
{
    if (IS_BF16)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                       "r"(b1));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                       "r"(b1));
}

/* Two floats rounded to nearest-even into one f16x2 / bf16x2 register,
 * lo in the low half (the lower column index). */
template <bool IS_BF16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi)
{
    uint32_t r;
    if (IS_BF16) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        r = *reinterpret_cast<uint32_t *>(&v);
    } else {
        __half2 v = __floats2half2_rn(lo, hi);
        r = *reinterpret_cast<uint32_t *>(&v);
    }
    return r;
}

} // namespace fa2gpu

#endif /* FA2_GPU_PTX_CUH */
