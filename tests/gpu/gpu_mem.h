/* gpu_mem.h — device memory for the GPU suites (test_cuda_fwd.c,
 * test_cuda_bwd.c, test_cuda_kvcache.c): a CUDA call that must succeed,
 * and a device copy of a host array. Built only with CUDA. */
#ifndef FA2_GPU_MEM_H
#define FA2_GPU_MEM_H

#ifdef FA2_HAVE_CUDA
#include <cuda_runtime.h>
#include <stddef.h>

/* fails the running test with what and CUDA's sentence unless e is success */
void cuda_ok(cudaError_t e, const char *what);

/* a device allocation of bytes holding host's bytes, or, with host NULL,
 * poisoned (0xFF bytes: NaN in fp16, bf16 and fp32); NULL for 0 bytes.
 * The caller frees it with cudaFree. */
void *gpu_copy_of(const void *host, size_t bytes);

#endif /* FA2_HAVE_CUDA */
#endif /* FA2_GPU_MEM_H */
