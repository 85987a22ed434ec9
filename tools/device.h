/* device.h — the few CUDA runtime calls the fa2 tool makes itself: GPU
 * buffers for a problem's tensors, copies, and waiting for the device.
 * Built without CUDA, every call fails with "built without CUDA". Each
 * call returns 0 on success, or -1 with a sentence in device_error(). */
#ifndef FA2_TOOLS_DEVICE_H
#define FA2_TOOLS_DEVICE_H

#include <stddef.h>

int device_alloc(void **ptr, size_t bytes);
void device_free(void *ptr); /* NULL is fine */
int device_upload(void *dst, const void *src, size_t bytes);
int device_download(void *dst, const void *src, size_t bytes);
int device_fill_bytes(void *dst, int byte, size_t bytes);
int device_synchronize(void);
const char *device_error(void);

#endif
