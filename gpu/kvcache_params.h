/* kvcache_params.h — what the host side (gpu/kvcache_launch.cu) hands the
 * kernels of the forward over a KV cache: pointers, strides in elements,
 * sizes and the mask, all validated by lib/validate_kvcache.c. */
#ifndef FA2_GPU_KVCACHE_PARAMS_H
#define FA2_GPU_KVCACHE_PARAMS_H

#include <stdint.h>

/* The main kernel's tiling: keys per tile, and shared memory for NW warps
 * (16 packed rows each): Q, then K and V double buffered. 32 keys: at head
 * dim 128 a one-warp block takes 36 KB, so six share an SM. (64 keys, 68 KB
 * and three a SM, measured issue-latency bound on the H200: one warp per
 * scheduler, 0.27 instructions issued a cycle, 1.5 TB/s; doc/NOTES-kvcache.md.) */
#define FA2_KVC_BLOCK_N(HD) 32
#define FA2_KVC_SMEM_BYTES(HD, NW) ((16 * (NW) + 4 * FA2_KVC_BLOCK_N(HD)) * (HD) * 2)
/* The kernel head dims: 64, 128, 256 (the others padded with zeros). */
#define FA2_KVC_KERNEL_HEAD_DIM(d) ((d) <= 64 ? 64 : (d) <= 128 ? 128 : 256)

typedef struct fa2_kvcache_params {
    const void *q;
    void *o;
    float *lse;                    /* NULL: not written                      */
    void *k_cache, *v_cache;       /* written by the append only             */
    const void *k_new, *v_new;     /* NULL: no append                        */
    int64_t q_sb, q_sr, q_sh;      /* strides: batch, token, head            */
    int64_t o_sb, o_sr, o_sh;
    int64_t lse_sb, lse_sh, lse_sr; /* lse is [batch, head, token]           */
    /* cache dims 0 and 1: (batch, key) contiguous, (page, slot) paged */
    int64_t k_s0, k_s1, k_sh;
    int64_t v_s0, v_s1, v_sh;
    int64_t kn_sb, kn_sr, kn_sh;
    int64_t vn_sb, vn_sr, vn_sh;
    const int32_t *block_table;    /* device; NULL: contiguous               */
    int64_t block_table_stride;
    int64_t page_size;             /* paged only                             */
    int64_t num_pages;             /* paged: entries outside [0, num_pages)
                                      read as zeros, never dereferenced       */
    int64_t capacity;              /* keys a sequence can hold: lengths are
                                      clamped to [0, capacity]               */
    const int32_t *cache_seqlens;  /* device, [batch]                        */
    int batch, heads_q, heads_kv, group, head_dim;
    int seqlen_q;                  /* Nq                                     */
    int seqlen_new;                /* Nnew, 0: no append                     */
    int row_blocks;                /* ceil(Nq * group / block_m)             */
    int num_splits;
    float scale, scale_log2;
    int causal;
    int64_t window_left, window_right;
    /* num_splits > 1: float32 partial O [splits][B][Hq][Nq][d] and LSE
     * [splits][B][Hq][Nq] (the layout fa2_kvcache_workspace_size counts) */
    float *o_part;
    float *lse_part;
    unsigned long long *traffic;   /* FA2_TRAFFIC_COUNT counters, or NULL   */
} fa2_kvcache_params;

#endif /* FA2_GPU_KVCACHE_PARAMS_H */
