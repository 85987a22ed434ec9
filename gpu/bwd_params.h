/* bwd_params.h — what the host side hands the backward kernels: pointers,
 * strides (in elements), sizes, the mask and the workspace, all already
 * validated (gpu/bwd_launch.cu). */
#ifndef FA2_GPU_BWD_PARAMS_H
#define FA2_GPU_BWD_PARAMS_H

#include <stdint.h>

#include "fa2_philox.h"

typedef struct fa2_bwd_params {
    const void *q, *k, *v, *o, *dout;
    const float *lse;
    void *dq, *dk, *dv;
    int64_t q_sb, q_sr, q_sh; /* strides: batch, row, head */
    int64_t k_sb, k_sr, k_sh;
    int64_t v_sb, v_sr, v_sh;
    int64_t o_sb, o_sr, o_sh;
    int64_t do_sb, do_sr, do_sh;
    int64_t dq_sb, dq_sr, dq_sh;
    int64_t dk_sb, dk_sr, dk_sh;
    int64_t dv_sb, dv_sr, dv_sh;
    int64_t lse_sb, lse_sh, lse_sr; /* lse is [batch, head, row] */
    /* workspace: the float32 dQ accumulator [q.shape[0]][heads_q][rows][d],
     * D [q.shape[0]][heads_q][rows] (rows = q.shape[1]), and one turn
     * counter per (sequence, query head, query block) for the deterministic
     * mode */
    float *dq_acc;
    float *dsum;
    int *turn;       /* deterministic: two turn words per query block   */
    int64_t acc2_off; /* deterministic: floats from dq_acc to the second
                       * accumulator (chain 1 of fa2_bwd_dq_turn); else 0 */
    int64_t rows;
    const int32_t *cu_seqlens_q; /* device; NULL: fixed lengths */
    const int32_t *cu_seqlens_k;
    int64_t seqlen_q, seqlen_k;  /* fixed lengths, or the max lengths */
    int num_seqs, heads_q, heads_kv, head_dim;
    int m_blocks, n_blocks;      /* of the longest sequences */
    float scale, scale_log2;
    int causal;
    int64_t window_left, window_right;
    int deterministic;
    /* the order of a key block's query blocks: 1 = from fa2_bwd_q_start
     * (always with deterministic), 0 = ascending from the first */
    int rotate;
    /* the main kernel's grid may be split into launches of fewer blocks
     * (FA2_CUDA_BWD_GRID, for tests): blockIdx.x + block_offset is the
     * block's index in the whole grid */
    int block_offset;
    /* sm_90a kernel: dQ pieces through shared memory and the copy engine's
     * bulk reduction (1) or per-thread vector reductions (0) */
    int dq_bulk;
    /* 2 x FA2_SIM_TENSOR_COUNT counters (read, then written), or NULL */
    unsigned long long *traffic;
    /* score modifiers and dropout (lib/fa2_score.h, lib/fa2_philox.h),
     * device pointers; mods = 0: the plain kernels, none of this is read */
    int mods;                       /* any of the below: the MODS kernel   */
    int logits;                     /* softcap, ALiBi or sinks: logits u   */
    float softcap;                  /* 0: off                              */
    const float *alibi_slopes;      /* NULL: off; [b * alibi_stride + h]   */
    int64_t alibi_stride;
    const float *sinks;             /* NULL: off; [heads_q]                */
    float *dsinks;                  /* with sinks: the output, [heads_q]   */
    /* with sinks (workspace): one share of dsinks per (sequence, query
     * head, query block), [num_seqs][heads_q][m_blocks], written by the
     * preprocess and summed in that fixed order by bwd_dsinks */
    float *dsink_part;
    fa2_dropout dropout;            /* .enabled = 0: off                   */
} fa2_bwd_params;

#endif /* FA2_GPU_BWD_PARAMS_H */
