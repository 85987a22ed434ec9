/* fa2_cuda.h — the CUDA backend's host entry points: its row of the
 * backend table (gpu/backend.c) and the functions the row points at,
 * defined by the gpu/ .cu files, or by gpu/cuda_stub.c ("not built") without nvcc. */
#ifndef FA2_CUDA_H
#define FA2_CUDA_H

#include "fa2_backend.h"
#include "fa2_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const fa2_backend_ops fa2_cuda_ops;

fa2_status fa2_cuda_available(void);
fa2_status fa2_cuda_fwd(const fa2_fwd_args *a, const fa2_problem *p);
fa2_status fa2_cuda_bwd(const fa2_bwd_args *a, const fa2_problem *p);
fa2_status fa2_cuda_bwd_workspace_bytes(const fa2_bwd_args *a, const fa2_problem *p,
                                        size_t *bytes);
/* The kernel's tiling (arguments already checked). */
fa2_status fa2_cuda_tile_config(fa2_pass pass, fa2_dtype dtype, int head_dim,
                                fa2_tile_config *out);
/* The forward's tiling for a validated problem (what fa2_cuda_fwd runs). */
fa2_status fa2_cuda_fwd_tile_config(const fa2_problem *p, fa2_tile_config *out);
/* The backward kernel's tiling (gpu/bwd_config.h), for fa2_cuda_tile_config. */
fa2_status fa2_cuda_bwd_tile_config(fa2_dtype dtype, int head_dim,
                                    fa2_tile_config *out);

/* The forward over a KV cache (gpu/kvcache_launch.cu) and its split count. */
fa2_status fa2_cuda_fwd_kvcache(const fa2_kvcache_args *a,
                                const fa2_kvcache_problem *p);
fa2_status fa2_cuda_kvcache_splits(const fa2_kvcache_problem *p, int *num_splits);
fa2_status fa2_cuda_kvcache_key_warps(const fa2_kvcache_problem *p, int *key_warps);
#ifdef FA2_TRAFFIC_COUNTERS
/* The device address of the forward's traffic counters (gpu/fwd_launch.cu). */
fa2_status fa2_cuda_traffic_pointer(unsigned long long **out);
#endif

#ifdef __cplusplus
}
#endif

#endif /* FA2_CUDA_H */
