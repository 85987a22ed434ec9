/* cuda_stub.c — the CUDA entry points of a library built without nvcc. */
#include "config.h"
#include "fa2_cuda.h"

fa2_status fa2_cuda_available(void)
{
    return fa2_fail(FA2_ERR_NOT_BUILT, "this fa2 was built without CUDA "
                    "(configure found no nvcc; see --with-cuda)");
}

fa2_status fa2_cuda_fwd(const fa2_fwd_args *a, const fa2_problem *p)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_bwd_workspace_bytes(const fa2_bwd_args *a, const fa2_problem *p,
                                        size_t *bytes)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_tile_config(fa2_pass pass, fa2_dtype dtype, int head_dim,
                                fa2_tile_config *out)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_fwd_tile_config(const fa2_problem *p, fa2_tile_config *out)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_traffic_reset(void)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_traffic_read(fa2_traffic *out)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_bwd_traffic_reset(void)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_bwd_traffic_read(fa2_bwd_traffic *out)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_fwd_kvcache(const fa2_kvcache_args *a, const fa2_kvcache_problem *p)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_kvcache_splits(const fa2_kvcache_problem *p, int *num_splits)
{
    return fa2_cuda_available();
}

fa2_status fa2_cuda_kvcache_key_warps(const fa2_kvcache_problem *p, int *key_warps)
{
    return fa2_cuda_available();
}
