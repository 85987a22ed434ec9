/* host_checks.cu — the argument checks only the CUDA backend needs (after
 * the shared validation in lib/): device pointers, 16-byte alignment and
 * streams. Used by the forward's and the backward's launch code. */
#include "config.h"
#include "host_checks.h"

#include <cstdint>

static const char *memory_type_name(cudaMemoryType t)
{
    switch (t) {
    case cudaMemoryTypeUnregistered: return "ordinary host";
    case cudaMemoryTypeHost: return "page-locked host";
    case cudaMemoryTypeDevice: return "device";
    case cudaMemoryTypeManaged: return "managed";
    }
    return "unknown";
}

/* ptr must be device (or managed) memory of device dev. */
fa2_status fa2_gpu_check_device_pointer(const void *ptr, const char *name, int dev)
{
    cudaPointerAttributes at;
    memset(&at, 0, sizeof at);
    const cudaError_t err = cudaPointerGetAttributes(&at, ptr);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_DEVICE_POINTER, "%s (%p) is not memory the CUDA "
                        "runtime knows (%s); the CUDA backend needs device "
                        "pointers", name, ptr, cudaGetErrorString(err));
    }
    if (at.type != cudaMemoryTypeDevice && at.type != cudaMemoryTypeManaged)
        return fa2_fail(FA2_ERR_DEVICE_POINTER, "%s (%p) is %s memory; the CUDA "
                        "backend needs device memory (cudaMalloc)", name, ptr,
                        memory_type_name(at.type));
    if (at.type == cudaMemoryTypeDevice && at.device != dev)
        return fa2_fail(FA2_ERR_DEVICE_POINTER, "%s (%p) is memory of device %d "
                        "but the current device is %d", name, ptr, at.device, dev);
    return FA2_OK;
}

/* 16-byte vector loads and stores: data 16-byte aligned, and every stride
 * that is used (extent > 1) a multiple of 16 bytes. */
fa2_status fa2_gpu_check_alignment(const fa2_tensor *t, const char *name)
{
    if ((uintptr_t)t->data % 16 != 0)
        return fa2_fail(FA2_ERR_ALIGNMENT, "%s.data (%p) is not 16-byte aligned; "
                        "the CUDA kernels move 16-byte vectors", name, t->data);
    const int64_t elems = 16 / (int64_t)fa2_dtype_size(t->dtype);
    for (int i = 0; i < 3; i++)
        if (t->shape[i] > 1 && t->stride[i] % elems != 0)
            return fa2_fail(FA2_ERR_ALIGNMENT, "%s.stride[%d] is %lld elements, "
                            "not a multiple of %lld (16 bytes); the CUDA kernels "
                            "move 16-byte vectors", name, i,
                            (long long)t->stride[i], (long long)elems);
    return FA2_OK;
}

fa2_status fa2_gpu_check_stream(void *stream, int dev)
{
    if (!stream)
        return FA2_OK;
    /* A stream being captured into a CUDA graph is valid, and querying its
     * flags or device would invalidate the capture (measured on the H200,
     * CUDA 13: cudaStreamGetFlags and cudaStreamGetDevice both do, in relaxed
     * mode too): check the capture state first, which is allowed. */
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    cudaError_t err = cudaStreamIsCapturing((cudaStream_t)stream, &cap);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "stream (%p) is not a usable "
                        "CUDA stream: %s", stream, cudaGetErrorString(err));
    }
    if (cap != cudaStreamCaptureStatusNone)
        return FA2_OK;
    unsigned flags = 0;
    err = cudaStreamGetFlags((cudaStream_t)stream, &flags);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "stream (%p) is not a usable "
                        "CUDA stream: %s", stream, cudaGetErrorString(err));
    }
    int sdev = dev;
    err = cudaStreamGetDevice((cudaStream_t)stream, &sdev);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "cannot tell which device "
                        "stream (%p) belongs to: %s", stream,
                        cudaGetErrorString(err));
    }
    if (sdev != dev)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "stream (%p) belongs to device "
                        "%d but the current device is %d", stream, sdev, dev);
    return FA2_OK;
}

