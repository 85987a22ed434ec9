/* kvcache_params.h — what the host side (gpu/kvcache_launch.cu) hands the
 * kernels of the forward over a KV cache: pointers, strides in elements,
 * sizes and the mask, all validated by lib/validate_kvcache.c. */
#ifndef FA2_GPU_KVCACHE_PARAMS_H
#define FA2_GPU_KVCACHE_PARAMS_H

#include <stdint.h>

/* The main kernel's tiling: keys per tile; pipeline stages (tiles of K
 * and V in shared memory: one computed while STAGES - 1 stream in); shared
 * memory for NW warps (16 packed rows each): Q, then the K and V stages.
 * Two stages: three and four measured slower on the H200 (fewer blocks an
 * SM: decode at batch 8, 32k keys 290 us with two, 357 with three, 456
 * with four; doc/NOTES-kvcache.md). Again with the memory-bound kernel of
 * 2026-12-03 (-DFA2_KVC_STAGES_N=3, four blocks an SM either way at Hkv 8):
 * ncu 126-127 us against 124.5-125.6 at batch 1, 128k keys, 244-247
 * against 240 at batch 64, 4k keys; DRAM 88-91% busy both ways.
 * Keys per tile: 32. Decode is bound by reading K and V; how many warps
 * stream them at once is set by a one-warp block's shared memory: at head
 * dim 128, with Q aliased (below), 32 KB a block, six an SM. Measured on
 * the H200 (doc/NOTES-kvcache.md): 64 keys, 68 KB and three blocks an SM,
 * issue-latency bound (0.27 instructions issued a cycle, 1.5 TB/s); 32
 * keys 3.6-4.2 TB/s; 16 keys (13 blocks an SM) no faster than 32 from
 * batch 8 up and slower with the split counts the heuristic gives. */
#ifndef FA2_KVC_BLOCK_N_KEYS /* a build-time knob for measurements */
#define FA2_KVC_BLOCK_N_KEYS 32
#endif
#define FA2_KVC_BLOCK_N(HD) FA2_KVC_BLOCK_N_KEYS
#ifndef FA2_KVC_STAGES_N /* a build-time knob for measurements */
#define FA2_KVC_STAGES_N 2
#endif
#define FA2_KVC_STAGES(HD, NW) FA2_KVC_STAGES_N
/* KW key warps (fa2_kvcache_args.key_warps: 1, or 4 for a one-warp
 * block's 16 rows): KW warps on the same packed rows, warp w taking tiles
 * w, w + KW, ... of the split's chunk into its own stages, the KW partials
 * merged in the block at the end. Q lives in the last stage's V buffer
 * when it fits there (one key warp: the warps' stages are their own) */
#define FA2_KVC_Q_ALIASED(NW, BN, KW) (16 * (NW) <= (BN) && (KW) == 1)
#define FA2_KVC_SMEM_BYTES_BN(HD, NW, BN, KW) \
    (((FA2_KVC_Q_ALIASED(NW, BN, KW) ? 0 : 16 * (NW)) + \
      2 * FA2_KVC_STAGES(HD, NW) * (BN) * (KW)) * (HD) * 2)
#define FA2_KVC_SMEM_BYTES(HD, NW) FA2_KVC_SMEM_BYTES_BN(HD, NW, FA2_KVC_BLOCK_N(HD), 1)
/* Decode blocks of block_smem bytes one SM's shared memory holds (each
 * block also takes the 1 KB the hardware reserves), at least one: what the
 * launch's split count and the simulator both count. */
static inline int64_t fa2_kvc_blocks_per_sm(int64_t smem_per_sm, int64_t block_smem)
{
    const int64_t n = smem_per_sm / (block_smem + 1024);
    return n < 1 ? 1 : n;
}
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
    int key_warps;                 /* 1, or 4 (one-warp blocks only)         */
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
