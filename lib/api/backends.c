/* backends.c — the backend table: one row per fa2_backend, filled by the
 * backends themselves (cpu/backends.c, gpu/backend.c). Only the entry
 * points look here; a new backend is its enum value in fa2.h, its own file
 * with its row, and one line below. */
#include "config.h"
#include "api.h"
#include "fa2_cpu.h"
#include "fa2_cuda.h"

static const fa2_backend_ops *const table[FA2_BACKEND_COUNT] = {
    [FA2_BACKEND_CPU_ORACLE] = &fa2_cpu_oracle_ops,
    [FA2_BACKEND_CPU_STANDARD] = &fa2_cpu_standard_ops,
    [FA2_BACKEND_CPU_TILED] = &fa2_cpu_tiled_ops,
    [FA2_BACKEND_CUDA] = &fa2_cuda_ops,
};

const fa2_backend_ops *fa2_backend_row(fa2_backend b)
{
    if ((int)b < 0 || (int)b >= FA2_BACKEND_COUNT || !table[b])
        return NULL;
    return table[b];
}

fa2_status fa2_backend_unknown(fa2_backend b)
{
    return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "backend is %d, expected one of "
                    "FA2_BACKEND_CPU_ORACLE .. FA2_BACKEND_CUDA", (int)b);
}
