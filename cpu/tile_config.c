/* tile_config.c — the tiling the tiled CPU backend runs when the caller
 * names none (block_m = block_n = 0), and reports through
 * fa2_tile_config_for. */
#include "config.h"
#include "fa2_cpu.h"

/* The CPU tiled backend's own tiling. 128 query rows x 64 keys: each K/V
 * tile loaded from memory serves 128 rows, the tiles of one worker (about
 * 100 KB at head dim 64) stay in its L2 (chosen when the products ran on
 * OpenBLAS, measured on a 2-core AVX-512 Xeon: 64x64 tiles at 55 GFLOP/s,
 * 128x64 at 93, fp32, one thread; the products are now fa2's own
 * micro-kernels, cpu/tile_product.h, and were not re-tuned for the tile
 * shape). */
fa2_status fa2_cpu_tiled_tile_config(fa2_pass pass, fa2_dtype dtype,
                                     int head_dim, fa2_tile_config *out)
{
    (void)pass;
    (void)dtype;
    out->block_m = 128;
    out->block_n = 64;
    out->warps = 0;
    out->head_dim = head_dim;
    return FA2_OK;
}
