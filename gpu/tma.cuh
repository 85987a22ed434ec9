/* tma.cuh — Hopper's copy engine and the synchronisation around it, as the
 * sm_90 forward (gpu/fwd_kernel_sm90.cuh) uses them (PTX ISA 8.x):
 *
 *   mbarrier   a 64-bit barrier object in shared memory with an expected
 *              arrival count and a transaction count in bytes; a phase
 *              completes when both reach zero, and waiters test the phase's
 *              parity (0, 1, 0, ...). A TMA copy names one mbarrier and
 *              "completes" its bytes on it, so a consumer that waits on the
 *              barrier sees the tile.
 *   TMA        cp.async.bulk.tensor: one thread asks the copy engine for a
 *              box of a tensor described by a tensor map (built on the host,
 *              gpu/fwd_sm90_launch.cu, passed as a __grid_constant__
 *              parameter). Elements outside the tensor are filled with zero
 *              and still count as bytes of the box.
 *   setmaxnreg a warpgroup gives registers back (the producer, which only
 *              issues copies) or takes more (the consumers, which hold the
 *              accumulators); sm_90a only.
 *   bar.sync / bar.arrive on named barriers 1..15: a subset of the block's
 *              warps synchronises (one warpgroup's epilogue).
 *
 * Everything here compiles to nothing below sm_90 (the kernel that uses it
 * is only launched where the sm_90a code runs).
 */
#ifndef FA2_GPU_TMA_CUH
#define FA2_GPU_TMA_CUH

#include <stdint.h>

#include "ptx.cuh"
#include "wgmma.cuh"

namespace fa2gpu {

__device__ __forceinline__ void mbar_init(uint64_t *bar, int count)
{
#if FA2_HAVE_WGMMA
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)),
                 "r"(count)
                 : "memory");
#endif
}

/* make the initialised barriers visible to the copy engine */
__device__ __forceinline__ void mbar_init_fence()
{
#if FA2_HAVE_WGMMA
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

/* one arrival that also announces `bytes` the copy engine will complete */
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t *bar, uint32_t bytes)
{
#if FA2_HAVE_WGMMA
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(
                     smem_addr(bar)),
                 "r"(bytes)
                 : "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(uint64_t *bar)
{
#if FA2_HAVE_WGMMA
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar))
                 : "memory");
#endif
}

/* wait until the phase of parity `parity` has completed.
 *
 * A protocol bug (an arrival count, a parity, a register split that
 * setmaxnreg cannot grant) hangs here, and a hung kernel costs a device
 * call its whole time limit. Built with
 * NVCCFLAGS=-DFA2_MBAR_TIMEOUT_CYCLES=N (e.g. 20000000000, ~10 s), a wait
 * longer than N clock cycles prints the block, thread, barrier offset and
 * parity and traps instead: the launch then fails with an error. For
 * finding hangs, not for timing: the printf is a call, across which ptxas
 * serialises the wgmma pipeline (C7510). Off in normal builds (no cost). */
__device__ __forceinline__ void mbar_wait(uint64_t *bar, uint32_t parity)
{
#if FA2_HAVE_WGMMA
    const uint32_t a = smem_addr(bar);
    uint32_t done = 0;
#ifdef FA2_MBAR_TIMEOUT_CYCLES
    const long long t0 = clock64();
#endif
    do {
        asm volatile("{\n.reg .pred p;\n"
                     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(a), "r"(parity)
                     : "memory");
#ifdef FA2_MBAR_TIMEOUT_CYCLES
        if (!done && clock64() - t0 > (long long)(FA2_MBAR_TIMEOUT_CYCLES)) {
            printf("fa2: mbarrier wait timed out: block %d, thread %d, barrier at "
                   "shared offset %u, parity %u\n",
                   (int)blockIdx.x, (int)threadIdx.x, a, parity);
            __trap();
        }
#endif
    } while (!done);
#endif
}

/* TMA: the box of a 4-D tensor map at coordinates (c0 innermost .. c3)
 * into shared memory at dst, completing on bar */
__device__ __forceinline__ void tma_load_4d(void *dst, const void *tmap, int c0, int c1,
                                            int c2, int c3, uint64_t *bar)
{
#if FA2_HAVE_WGMMA
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::"
                 "complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(
                     smem_addr(dst)),
                 "l"(tmap), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_addr(bar))
                 : "memory");
#endif
}

/* TMA store: shared memory at src (laid out as a box of the map) to the
 * box at coordinates (c0 innermost .. c3); elements outside the tensor are
 * not written. Completes as a bulk group (bulk_commit, bulk_wait_read). */
__device__ __forceinline__ void tma_store_4d(const void *tmap, const void *src, int c0,
                                             int c1, int c2, int c3)
{
#if FA2_HAVE_WGMMA
    asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.bulk_group "
                 "[%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(tmap),
                 "r"(smem_addr(src)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
#endif
}

__device__ __forceinline__ void tma_prefetch_map(const void *tmap)
{
#if FA2_HAVE_WGMMA
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(tmap) : "memory");
#endif
}

template <int N> __device__ __forceinline__ void setmaxnreg_dec()
{
#if FA2_HAVE_WGMMA
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

template <int N> __device__ __forceinline__ void setmaxnreg_inc()
{
#if FA2_HAVE_WGMMA
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

/* named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads */
__device__ __forceinline__ void named_sync(int id, int threads)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void named_arrive(int id, int threads)
{
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/* wgmma.cuh's descriptor with a leading-dimension byte offset: for an
 * MN-major operand wider than one 64-column block (O += P V with head dim
 * > 64), lbo_bytes is the distance between the 64-column blocks. */
__device__ __forceinline__ uint64_t wgmma_desc_lbo(uint32_t a, uint32_t lbo_bytes)
{
    return (uint64_t)((a & 0x3FFFF) >> 4) | ((uint64_t)((lbo_bytes >> 4) & 0x3FFF) << 16) |
           ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}

/* keep the compiler from moving accesses of registers that an in-flight
 * wgmma reads or writes across its issue .. wait window (any array size) */
template <int N> __device__ __forceinline__ void reg_fence_n(float (&d)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++)
        asm volatile("" : "+f"(d[i])::"memory");
}
template <int N> __device__ __forceinline__ void reg_fence_u(uint32_t (&d)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++)
        asm volatile("" : "+r"(d[i])::"memory");
}

} // namespace fa2gpu

#endif /* FA2_GPU_TMA_CUH */
