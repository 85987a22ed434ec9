/* device.c — CUDA buffers for the fa2 tool (see device.h). The library
 * takes device pointers for its CUDA backend and leaves their allocation
 * to the caller, as this application does here. */
#include "config.h"
#include "device.h"

#include <stdio.h>

static char last_error[256];

const char *device_error(void) { return last_error; }

#ifdef FA2_HAVE_CUDA

#include <cuda_runtime.h>

static int check(cudaError_t err, const char *what, size_t bytes)
{
    if (err == cudaSuccess)
        return 0;
    snprintf(last_error, sizeof last_error, "%s (%zu bytes) failed: %s", what,
             bytes, cudaGetErrorString(err));
    (void)cudaGetLastError(); /* clear a non-sticky error */
    return -1;
}

int device_alloc(void **ptr, size_t bytes)
{
    *ptr = NULL;
    /* a zero-byte request still gets a distinct valid pointer */
    return check(cudaMalloc(ptr, bytes ? bytes : 16), "cudaMalloc", bytes);
}

void device_free(void *ptr)
{
    if (ptr)
        cudaFree(ptr);
}

int device_upload(void *dst, const void *src, size_t bytes)
{
    return check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice),
                 "cudaMemcpy to the device", bytes);
}

int device_download(void *dst, const void *src, size_t bytes)
{
    return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost),
                 "cudaMemcpy from the device", bytes);
}

int device_fill_bytes(void *dst, int byte, size_t bytes)
{
    return check(cudaMemset(dst, byte, bytes), "cudaMemset", bytes);
}

int device_synchronize(void)
{
    return check(cudaDeviceSynchronize(), "cudaDeviceSynchronize", 0);
}

#else /* no CUDA */

static int not_built(void)
{
    snprintf(last_error, sizeof last_error,
             "this fa2 tool was built without CUDA");
    return -1;
}

int device_alloc(void **ptr, size_t bytes)
{
    (void)bytes;
    *ptr = NULL;
    return not_built();
}

void device_free(void *ptr) { (void)ptr; }

int device_upload(void *dst, const void *src, size_t bytes)
{
    (void)dst, (void)src, (void)bytes;
    return not_built();
}

int device_download(void *dst, const void *src, size_t bytes)
{
    (void)dst, (void)src, (void)bytes;
    return not_built();
}

int device_fill_bytes(void *dst, int byte, size_t bytes)
{
    (void)dst, (void)byte, (void)bytes;
    return not_built();
}

int device_synchronize(void) { return not_built(); }

#endif
