/* fwd_params.h — what the host side hands the forward kernel: pointers,
 * strides (in elements), sizes and the mask, all already validated. */
#ifndef FA2_GPU_FWD_PARAMS_H
#define FA2_GPU_FWD_PARAMS_H

#include <stdint.h>

#include "fa2_philox.h"

/* Traffic counters (configure --enable-traffic-counters): bytes each thread
 * block requests from / writes to global memory, summed over the launch. */
enum {
    FA2_TRAFFIC_Q = 0,
    FA2_TRAFFIC_K,
    FA2_TRAFFIC_V,
    FA2_TRAFFIC_O,
    FA2_TRAFFIC_LSE,
    /* the forward over a KV cache (gpu/kvcache_*) */
    FA2_TRAFFIC_K_NEW,       /* loaded by the append                      */
    FA2_TRAFFIC_V_NEW,
    FA2_TRAFFIC_K_CACHE_W,   /* stored into the caches by the append      */
    FA2_TRAFFIC_V_CACHE_W,
    FA2_TRAFFIC_O_PART_W,    /* split-KV partials stored by the main kernel */
    FA2_TRAFFIC_LSE_PART_W,
    FA2_TRAFFIC_O_PART_R,    /* ... loaded by the combine                 */
    FA2_TRAFFIC_LSE_PART_R,
    FA2_TRAFFIC_COUNT
};

typedef struct fa2_fwd_params {
    const void *q, *k, *v;
    void *o;
    float *lse;                     /* NULL: not written                   */
    int64_t q_sb, q_sr, q_sh;       /* strides: batch, row, head           */
    int64_t k_sb, k_sr, k_sh;
    int64_t v_sb, v_sr, v_sh;
    int64_t o_sb, o_sr, o_sh;
    int64_t lse_sb, lse_sh, lse_sr; /* lse is [batch, head, row]           */
    const int32_t *cu_seqlens_q;    /* device; NULL: fixed lengths         */
    const int32_t *cu_seqlens_k;
    int64_t seqlen_q, seqlen_k;     /* fixed lengths, or the max lengths   */
    int num_seqs, heads_q, heads_kv, head_dim;
    int m_blocks;                   /* query blocks of the longest seq     */
    float scale, scale_log2;
    int causal;
    int64_t window_left, window_right;
    unsigned long long *traffic;    /* FA2_TRAFFIC_COUNT counters, or NULL */
    /* score modifiers and dropout (lib/fa2_score.h, lib/fa2_philox.h),
     * device pointers; mods = 0: the plain kernel, none of this is read */
    int mods;                       /* any of the below: the MODS kernel   */
    float softcap;                  /* 0: off                              */
    const float *alibi_slopes;      /* NULL: off; [b * alibi_stride + h]   */
    int64_t alibi_stride;
    const float *sinks;             /* NULL: off; [heads_q]                */
    fa2_dropout dropout;            /* .enabled = 0: off                   */
    uint8_t *dropout_mask;          /* NULL, or [num_seqs][Hq][Nq][Nk]     */
    /* sm_90 kernel, persistent launches: NULL, tiles blockIdx.x + k
     * gridDim.x; else a zeroed counter the blocks take tiles from */
    int *tile_counter;
    /* sm_90 kernel, persistent causal launches: tiles in pairs of query
     * blocks (m, m_blocks - 1 - m) of one head, whose key blocks add up to
     * the same count, so that a static round robin of pairs is balanced */
    int tile_pairs;
    /* sm_90 kernel: O written by TMA store through a fourth tensor map
     * (fixed lengths, where O's strides suit the copy engine) */
    int o_tma;
} fa2_fwd_params;

#endif /* FA2_GPU_FWD_PARAMS_H */
