/* backends.c — the CPU backends' rows of the backend table: the float64
 * oracle, standard attention (OpenBLAS) and the tiled FA2 mirror, with the
 * tilings they report. They run anywhere, on host memory. */
#include "config.h"
#include "fa2_cpu.h"

static fa2_status always_available(void)
{
    return FA2_OK;
}

/* The untiled backends: one tile is the whole sequence. */
static fa2_status untiled(fa2_pass pass, fa2_dtype dtype, int head_dim,
                          fa2_tile_config *out)
{
    (void)pass;
    (void)dtype;
    out->block_m = out->block_n = 0;
    out->warps = 0;
    out->head_dim = head_dim;
    return FA2_OK;
}

/* the rows: host memory, available everywhere */
const fa2_backend_ops fa2_cpu_oracle_ops = {
    .name = "oracle", .available = always_available,
    .fwd = fa2_cpu_oracle_fwd, .bwd = fa2_cpu_oracle_bwd, .tile_config = untiled,
    .fwd_kvcache = fa2_cpu_oracle_kvcache,
};
const fa2_backend_ops fa2_cpu_standard_ops = {
    .name = "standard", .available = always_available,
    .fwd = fa2_cpu_standard_fwd, .bwd = fa2_cpu_standard_bwd,
    .tile_config = untiled, .fwd_kvcache = fa2_cpu_standard_kvcache,
};
const fa2_backend_ops fa2_cpu_tiled_ops = {
    .name = "tiled", .available = always_available,
    .fwd = fa2_cpu_tiled_fwd, .bwd = fa2_cpu_tiled_bwd,
    .tile_config = fa2_cpu_tiled_tile_config,
    .fwd_kvcache = fa2_cpu_tiled_kvcache,
    .kvcache_splits = fa2_cpu_tiled_kvcache_splits,
};
