/* gpu_mem.c — the GPU suites' device memory helpers (see gpu_mem.h). */
#include "config.h"
#include "gpu_mem.h"

#include <check.h>

#ifdef FA2_HAVE_CUDA
void cuda_ok(cudaError_t e, const char *what)
{
    ck_assert_msg(e == cudaSuccess, "%s failed: %s", what, cudaGetErrorString(e));
}

void *gpu_copy_of(const void *host, size_t bytes)
{
    void *d = NULL;
    if (!bytes)
        return NULL;
    cuda_ok(cudaMalloc(&d, bytes), "cudaMalloc");
    if (host)
        cuda_ok(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (upload)");
    else
        cuda_ok(cudaMemset(d, 0xFF, bytes), "cudaMemset (poison)");
    return d;
}
#endif /* FA2_HAVE_CUDA */
