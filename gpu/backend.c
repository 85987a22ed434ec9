/* backend.c — the CUDA backend's row of the backend table. The functions
 * come from the .cu files, or from gpu/cuda_stub.c when nvcc was not found (they
 * then say "not built"), so the row is the same in both builds. A second
 * CUDA kernel for the same pass is chosen inside fa2_cuda_fwd /
 * fa2_cuda_bwd; a new backend is a new row like this one. */
#include "config.h"
#include "fa2_cuda.h"

const fa2_backend_ops fa2_cuda_ops = {
    .name = "cuda",
    .device_memory = 1, /* device pointers; cu_seqlens on the device too */
    .available = fa2_cuda_available,
    .fwd = fa2_cuda_fwd,
    .bwd = fa2_cuda_bwd,
    .tile_config = fa2_cuda_tile_config,
    .fwd_tile_config = fa2_cuda_fwd_tile_config,
    .bwd_workspace = fa2_cuda_bwd_workspace_bytes,
    .fwd_kvcache = fa2_cuda_fwd_kvcache,
    .kvcache_splits = fa2_cuda_kvcache_splits,
    .kvcache_key_warps = fa2_cuda_kvcache_key_warps,
};
