/* status.c — status names, the thread-local last-error sentence, version. */
#include "config.h"
#include "fa2_internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

static const char *const status_names[FA2_STATUS_COUNT] = {
    [FA2_OK] = "FA2_OK",
    [FA2_ERR_NULL_POINTER] = "FA2_ERR_NULL_POINTER",
    [FA2_ERR_INVALID_ARGUMENT] = "FA2_ERR_INVALID_ARGUMENT",
    [FA2_ERR_DTYPE] = "FA2_ERR_DTYPE",
    [FA2_ERR_SHAPE] = "FA2_ERR_SHAPE",
    [FA2_ERR_STRIDE] = "FA2_ERR_STRIDE",
    [FA2_ERR_HEAD_DIM] = "FA2_ERR_HEAD_DIM",
    [FA2_ERR_OVERLAP] = "FA2_ERR_OVERLAP",
    [FA2_ERR_SEQLENS] = "FA2_ERR_SEQLENS",
    [FA2_ERR_ALIGNMENT] = "FA2_ERR_ALIGNMENT",
    [FA2_ERR_OUT_OF_MEMORY] = "FA2_ERR_OUT_OF_MEMORY",
    [FA2_ERR_NOT_BUILT] = "FA2_ERR_NOT_BUILT",
    [FA2_ERR_NO_DEVICE] = "FA2_ERR_NO_DEVICE",
    [FA2_ERR_DEVICE_POINTER] = "FA2_ERR_DEVICE_POINTER",
    [FA2_ERR_CUDA] = "FA2_ERR_CUDA",
    [FA2_ERR_UNSUPPORTED] = "FA2_ERR_UNSUPPORTED",
    [FA2_ERR_INTERNAL] = "FA2_ERR_INTERNAL",
    [FA2_ERR_BLOCK_TABLE] = "FA2_ERR_BLOCK_TABLE",
    [FA2_ERR_CACHE_SEQLENS] = "FA2_ERR_CACHE_SEQLENS",
};

const char *fa2_status_str(fa2_status s)
{
    if ((int)s < 0 || (int)s >= FA2_STATUS_COUNT || !status_names[s])
        return "FA2_ERR_UNKNOWN";
    return status_names[s];
}

const char *fa2_last_error(void) { return last_error; }

void fa2_clear_error(void) { last_error[0] = '\0'; }

fa2_status fa2_fail(fa2_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

const char *fa2_version_string(void) { return PACKAGE_VERSION; }

void fa2_version(int *major, int *minor, int *patch)
{
    if (major)
        *major = FA2_VERSION_MAJOR;
    if (minor)
        *minor = FA2_VERSION_MINOR;
    if (patch)
        *patch = FA2_VERSION_PATCH;
}

const char *fa2_dtype_name(fa2_dtype t)
{
    switch (t) {
    case FA2_DTYPE_FP32: return "fp32";
    case FA2_DTYPE_FP16: return "fp16";
    case FA2_DTYPE_BF16: return "bf16";
    }
    return "?";
}

size_t fa2_dtype_size(fa2_dtype t)
{
    switch (t) {
    case FA2_DTYPE_FP32: return 4;
    case FA2_DTYPE_FP16:
    case FA2_DTYPE_BF16: return 2;
    }
    return 0;
}
