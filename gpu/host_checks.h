/* host_checks.h — the CUDA backend's own argument checks (host_checks.cu). */
#ifndef FA2_GPU_HOST_CHECKS_H
#define FA2_GPU_HOST_CHECKS_H

#include "fa2_internal.h"

/* ptr must be device (or managed) memory of device dev. */
fa2_status fa2_gpu_check_device_pointer(const void *ptr, const char *name, int dev);
/* 16-byte vector loads and stores: data 16-byte aligned, and every stride
 * that is used (extent > 1) a multiple of 16 bytes. */
fa2_status fa2_gpu_check_alignment(const fa2_tensor *t, const char *name);
/* stream is NULL or a usable stream of device dev. */
fa2_status fa2_gpu_check_stream(void *stream, int dev);

#endif
