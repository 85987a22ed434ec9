/*
 * fa2_backend.h — the shape of one row of the backend table. The core
 * defines it and names no backend; each backend fills its rows in its own
 * folder (cpu/backends.c, gpu/backend.c); the entry points (lib/api/) hold the
 * table and call through it. A new backend is one file with one row, plus
 * the row's line in lib/api/backends.c. A new entry point (a KV-cache forward,
 * say) is one more member here: rows that leave it NULL answer
 * FA2_ERR_UNSUPPORTED.
 */
#ifndef FA2_BACKEND_H
#define FA2_BACKEND_H

#include "fa2_internal.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fa2_backend_ops {
    const char *name;  /* what fa2_backend_name says: "tiled", "cuda", ...  */
    int device_memory; /* tensors and cu_seqlens live in device memory, so
                          validation cannot read the lengths on the host   */
    /* FA2_OK if it can run here, else why not (NOT_BUILT, NO_DEVICE) */
    fa2_status (*available)(void);
    /* the passes, on arguments fa2_fwd_validate / fa2_bwd_validate passed */
    fa2_status (*fwd)(const fa2_fwd_args *a, const fa2_problem *p);
    fa2_status (*bwd)(const fa2_bwd_args *a, const fa2_problem *p);
    /* its tiling for a pass, dtype and head dim the entry point checked */
    fa2_status (*tile_config)(fa2_pass pass, fa2_dtype dtype, int head_dim,
                              fa2_tile_config *out);
    /* its forward tiling for this validated problem, where that depends on
     * more than the head dim; NULL: tile_config's */
    fa2_status (*fwd_tile_config)(const fa2_problem *p, fa2_tile_config *out);
    /* bytes of the backward's workspace; NULL: it needs none */
    fa2_status (*bwd_workspace)(const fa2_bwd_args *a, const fa2_problem *p,
                                size_t *bytes);
    /* the forward over a KV cache, on arguments fa2_kvcache_validate passed,
     * p->num_splits already resolved (>= 1); NULL: FA2_ERR_UNSUPPORTED */
    fa2_status (*fwd_kvcache)(const fa2_kvcache_args *a,
                              const fa2_kvcache_problem *p);
    /* *num_splits = the backend's choice when the caller gave 0 (GPU: the
     * shared heuristic over its SM count); NULL: the shared heuristic
     * (fa2_kvcache_splits_heuristic) over p->num_threads workers */
    fa2_status (*kvcache_splits)(const fa2_kvcache_problem *p, int *num_splits);
    /* the key warps when the caller gave 0 (asked before kvcache_splits,
     * which may depend on them); NULL: 1 */
    fa2_status (*kvcache_key_warps)(const fa2_kvcache_problem *p, int *key_warps);
} fa2_backend_ops;

#ifdef __cplusplus
}
#endif

#endif /* FA2_BACKEND_H */
