/* device_query.cu — is there a GPU the CUDA backend can use? */
#include "config.h"
#include "fa2_cuda.h"

#include <cuda_runtime.h>

extern "C" fa2_status fa2_cuda_available(void)
{
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
        (err == cudaSuccess && n == 0)) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_NO_DEVICE, "no CUDA device is usable here (%s)",
                        err == cudaSuccess ? "device count is 0"
                                           : cudaGetErrorString(err));
    }
    if (err != cudaSuccess)
        return fa2_fail(FA2_ERR_CUDA, "cudaGetDeviceCount failed: %s",
                        cudaGetErrorString(err));
    int dev = 0, major = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    if (major < 8)
        return fa2_fail(FA2_ERR_NO_DEVICE, "device %d has compute capability "
                        "%d.x; fa2's kernels need sm_80 or newer", dev, major);
    fa2_clear_error();
    return FA2_OK;
}
