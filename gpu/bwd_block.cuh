/* bwd_block.cuh — the framework side of the backward's main kernels (the
 * mma.sync one in bwd_kernel.cuh, the wgmma one in bwd_kernel_sm90.cuh):
 * which key block a thread block owns and which query blocks it visits
 * (the shared tile logic of fa2_tile.h), where each step's rows live, the
 * row statistics LSE and D, the dQ reductions and the deterministic mode's
 * turns, the dK/dV store and the traffic count. The kernels keep only
 * their products and their shared-memory layouts.
 */
#ifndef FA2_GPU_BWD_BLOCK_CUH
#define FA2_GPU_BWD_BLOCK_CUH

#include "config.h"
#include "fa2_internal.h"
#include "fa2_tile.h"
#include "bwd_params.h"
#include "ptx.cuh"

namespace fa2bwd {

using fa2gpu::pack2;
using fa2gpu::smem_addr;

/* 4 bytes global -> shared (cp.async.ca; src_bytes 0 writes zeros) */
__device__ __forceinline__ void cp_async_4(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(
                     smem_addr(dst)),
                 "l"(src), "r"(src_bytes)
                 : "memory");
}

/* where sequence b lives */
struct seq_info {
    int64_t batch, q_start, k_start, seqlen_q, seqlen_k;
};

__device__ __forceinline__ seq_info get_seq(const fa2_bwd_params &p, int b)
{
    seq_info s;
    if (p.cu_seqlens_q) {
        s.batch = 0;
        s.q_start = p.cu_seqlens_q[b];
        s.seqlen_q = p.cu_seqlens_q[b + 1] - s.q_start;
        s.k_start = p.cu_seqlens_k[b];
        s.seqlen_k = p.cu_seqlens_k[b + 1] - s.k_start;
    } else {
        s.batch = b;
        s.q_start = s.k_start = 0;
        s.seqlen_q = p.seqlen_q;
        s.seqlen_k = p.seqlen_k;
    }
    return s;
}

#ifdef FA2_TRAFFIC_COUNTERS
#define FA2_BWD_COUNT(p, idx, bytes)                                           \
    do {                                                                       \
        if ((p).traffic)                                                       \
            atomicAdd(&(p).traffic[idx], (unsigned long long)(bytes));         \
    } while (0)
#else
#define FA2_BWD_COUNT(p, idx, bytes) ((void)0)
#endif
#define FA2_RD(t) ((int)(t))
#define FA2_WR(t) ((int)FA2_SIM_TENSOR_COUNT + (int)(t))

/* ---- the thread block's key block and its steps ------------------------ */

/* Block -> (sequence, kv head, key block j), key blocks fastest: the blocks
 * of one head run together (they share Q and dO in L2). In deterministic
 * mode key blocks launch in descending j, so that a block's predecessors
 * in the dQ order (fa2_bwd_dq_turn: always j + 1) are launched first. Its
 * steps are (query head of the GQA group, query block that sees key block
 * j), query blocks fastest: ascending from the first (fa2_bwd_q_blocks),
 * or with p.rotate from fa2_bwd_q_start, wrapping round. */
struct bwd_block {
    int n_block, hk, b;
    seq_info s;
    int64_t col_lo; /* first key row of the block within the sequence */
    int cols;       /* key rows of the block (< BN in the last one)    */
    int d, group, nq, nsteps;
    int q_start; /* the first query block visited */
    /* deterministic mode: key block j + 1's start and query range
     * (fa2_dq_order), for the turns (in registers: in shared memory, read
     * by the waiting thread only, ptxas spilled more, not less) */
    int next_start, next_lo, next_hi;
    fa2_mask mask;
    fa2_block_range qb;
};

/* the block's key block and steps; k.cols == 0 when this sequence is
 * shorter than the longest and has no key block j (the block exits) */
template <int BM, int BN>
__device__ __forceinline__ bwd_block bwd_block_of(const fa2_bwd_params &p)
{
    bwd_block k;
    const int64_t x = (int64_t)blockIdx.x + p.block_offset;
    k.n_block = (int)(x % p.n_blocks);
    if (p.deterministic)
        k.n_block = p.n_blocks - 1 - k.n_block;
    const int64_t bh = x / p.n_blocks;
    k.hk = (int)(bh % p.heads_kv);
    k.b = (int)(bh / p.heads_kv);
    k.s = get_seq(p, k.b);
    k.col_lo = (int64_t)k.n_block * BN;
    k.cols = k.col_lo >= k.s.seqlen_k
                 ? 0
                 : (int)(k.s.seqlen_k - k.col_lo < BN ? k.s.seqlen_k - k.col_lo : BN);
    k.d = p.head_dim;
    k.group = p.heads_q / p.heads_kv;
    k.mask = fa2_mask_make(k.s.seqlen_q, k.s.seqlen_k, p.causal, p.window_left,
                           p.window_right);
    k.qb = fa2_bwd_q_blocks(&k.mask, k.n_block, BM, BN);
    k.nq = (int)fa2_block_count(k.qb);
    k.nsteps = k.group * k.nq;
    k.q_start = (int)(p.rotate ? fa2_bwd_q_start(&k.mask, k.n_block, BM, BN) : k.qb.lo);
    k.next_start = k.next_lo = k.next_hi = 0;
    if (p.deterministic) {
        const fa2_dq_order o = fa2_bwd_dq_order(&k.mask, k.n_block, BM, BN);
        k.next_start = (int)o.next_start;
        k.next_lo = (int)o.next_lo;
        k.next_hi = (int)o.next_hi;
    }
    return k;
}

/* the query rows key row krow of the block sees: one interval, exactly
 * fa2_mask_visible's set (empty past the end of the keys) */
__device__ __forceinline__ void bwd_visible_rows(const bwd_block &k, int krow, int &lo,
                                                 int &hi)
{
    const int64_t c = k.col_lo + krow;
    int64_t l, h;
    fa2_visible_rows(&k.mask, c, c + 1, &l, &h);
    lo = (int)l;
    hi = (int)h;
}

struct bwd_step {
    int h, m_block, rows; /* query head, query block, its rows (< BM in the last) */
    int64_t row_lo;       /* first query row within the sequence               */
};

template <int BM>
__device__ __forceinline__ bwd_step bwd_step_of(const bwd_block &k, int st)
{
    bwd_step q;
    q.h = k.hk * k.group + st / k.nq;
    const int i = k.q_start + st % k.nq; /* fa2_bwd_q_block_at, in int */
    q.m_block = i < (int)k.qb.hi ? i : i - k.nq;
    q.row_lo = (int64_t)q.m_block * BM;
    q.rows = (int)(k.s.seqlen_q - q.row_lo < BM ? k.s.seqlen_q - q.row_lo : BM);
    return q;
}

/* first element of the step's rows of q and dout, of the block's k and v */
__device__ __forceinline__ const uint16_t *bwd_q_rows(const fa2_bwd_params &p,
                                                      const bwd_block &k, const bwd_step &q)
{
    return (const uint16_t *)p.q + k.s.batch * p.q_sb +
           (k.s.q_start + q.row_lo) * p.q_sr + (int64_t)q.h * p.q_sh;
}

__device__ __forceinline__ const uint16_t *bwd_do_rows(const fa2_bwd_params &p,
                                                       const bwd_block &k, const bwd_step &q)
{
    return (const uint16_t *)p.dout + k.s.batch * p.do_sb +
           (k.s.q_start + q.row_lo) * p.do_sr + (int64_t)q.h * p.do_sh;
}

__device__ __forceinline__ const uint16_t *bwd_k_rows(const fa2_bwd_params &p,
                                                      const bwd_block &k)
{
    return (const uint16_t *)p.k + k.s.batch * p.k_sb + (k.s.k_start + k.col_lo) * p.k_sr +
           (int64_t)k.hk * p.k_sh;
}

__device__ __forceinline__ const uint16_t *bwd_v_rows(const fa2_bwd_params &p,
                                                      const bwd_block &k)
{
    return (const uint16_t *)p.v + k.s.batch * p.v_sb + (k.s.k_start + k.col_lo) * p.v_sr +
           (int64_t)k.hk * p.v_sh;
}

/* LSE and D of the step's rows into sl[0..BM), sd[0..BM) by cp.async
 * (zeros past the last row) */
template <int BM, int NTHREADS>
__device__ __forceinline__ void bwd_load_row_stats(const fa2_bwd_params &p,
                                                   const bwd_block &k, const bwd_step &q,
                                                   float *sl, float *sd, int tid)
{
    const int64_t grow = k.s.q_start + q.row_lo;
    const float *gl = p.lse + k.s.batch * p.lse_sb + (int64_t)q.h * p.lse_sh +
                      grow * p.lse_sr;
    const float *gd = p.dsum + (k.s.batch * p.heads_q + q.h) * p.rows + grow;
    for (int i = tid; i < BM; i += NTHREADS) {
        const bool ok = i < q.rows;
        cp_async_4(sl + i, ok ? gl + i * p.lse_sr : gl, ok ? 4 : 0);
        cp_async_4(sd + i, ok ? gd + i : gd, ok ? 4 : 0);
    }
}

/* ---- dQ: the float32 accumulator, the reductions, the turns ------------ */

#ifndef FA2_BWD_VEC_RED /* 0 scalar, 1 v2, 2 v4 reductions (sm_90) */
#define FA2_BWD_VEC_RED 2
#endif

/* gacc[0..3] += (a, b, c, e), 16-byte aligned: red.global.add.v4.f32 on
 * sm_90, scalar atomics before it */
__device__ __forceinline__ void red_add4(float *gacc, float a, float b, float c,
                                         float e)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"l"(gacc),
                 "f"(a), "f"(b), "f"(c), "f"(e)
                 : "memory");
#else
    atomicAdd(gacc, a);
    atomicAdd(gacc + 1, b);
    atomicAdd(gacc + 2, c);
    atomicAdd(gacc + 3, e);
#endif
}

/* gacc[0..1] += (a, b), 8-byte aligned: red.global.add.v2.f32 on sm_90 */
__device__ __forceinline__ void red_add2(float *gacc, float a, float b)
{
#if FA2_BWD_VEC_RED && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(gacc), "f"(a),
                 "f"(b)
                 : "memory");
#else
    atomicAdd(gacc, a);
    atomicAdd(gacc + 1, b);
#endif
}

/* the accumulator's rows of the step */
__device__ __forceinline__ float *bwd_dq_acc(const fa2_bwd_params &p, const bwd_block &k,
                                             const bwd_step &q)
{
    return p.dq_acc +
           ((k.s.batch * p.heads_q + q.h) * p.rows + k.s.q_start + q.row_lo) * k.d;
}

/* Add one n8 tile of a dQ piece, held in the mma C layout (a0, a1: row r,
 * columns c8 + 2t, +1; a2, a3: row r + 8, the same columns), into the
 * accumulator rows gacc (rows of d floats; rows .. and columns d.. are
 * skipped). On sm_90 lanes t and t^1 swap halves so that each holds 4
 * adjacent columns of one row: one v4 reduction a lane. */
__device__ __forceinline__ void dq_add_n8(float *gacc, int d, int rows, int r, int c8,
                                          int t, float a0, float a1, float a2, float a3)
{
#if FA2_BWD_VEC_RED >= 2 && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const bool even = (t & 1) == 0; /* even t: row r, odd t: row r + 8 */
    const float s0 = even ? a2 : a0;
    const float s1 = even ? a3 : a1;
    const float r0 = __shfl_xor_sync(0xffffffffu, s0, 1);
    const float r1 = __shfl_xor_sync(0xffffffffu, s1, 1);
    const int rr = r + (even ? 0 : 8);
    const int c = c8 + 2 * (t & 2);
    if (rr < rows && c < d) {
        if (even)
            red_add4(gacc + (int64_t)rr * d + c, a0, a1, r0, r1);
        else
            red_add4(gacc + (int64_t)rr * d + c, r0, r1, a2, a3);
    }
#else
    const int c = c8 + 2 * t;
    if (c < d) {
        if (r < rows)
            red_add2(gacc + (int64_t)r * d + c, a0, a1);
        if (r + 8 < rows)
            red_add2(gacc + (int64_t)(r + 8) * d + c, a2, a3);
    }
#endif
}

/* Deterministic mode: the key blocks that see query block i add their dQ
 * share in the fixed order of fa2_bwd_dq_turn (two chains, each in
 * descending j, each into its own accumulator). dq_turn_wait returns once
 * this block's predecessor in its chain has added (the whole thread block
 * waits); dq_turn_pass lets the next one go. Without the mode both do
 * nothing. shift: floats from the step's rows of the first accumulator to
 * those of the one this block adds to. */
struct dq_turn {
    int *turn;
    int mine;
    int64_t shift;
};

/* The turn word of the step's dQ block and chain (deterministic mode). */
__device__ __forceinline__ int *dq_turn_word(const fa2_bwd_params &p, const bwd_block &k,
                                             const bwd_step &q)
{
    const int chain = k.q_start > q.m_block; /* fa2_bwd_dq_turn_at's chain */
    return p.turn + (((int64_t)k.b * p.heads_q + q.h) * p.m_blocks + q.m_block) * 2 + chain;
}

/* Thread 0 reads the step's turn word early (at the top of the step), so
 * that the load's latency passes behind the step's products; by the dQ
 * phase the predecessor has usually passed the turn already and the wait
 * costs nothing. -1: not read (any other thread, or not deterministic). */
__device__ __forceinline__ int dq_turn_peek(const fa2_bwd_params &p, const bwd_block &k,
                                            const bwd_step &q, int tid)
{
    int seen = -1;
    if (p.deterministic && tid == 0)
        seen = *(volatile int *)dq_turn_word(p, k, q);
    return seen;
}

template <int BM, int BN>
__device__ __forceinline__ dq_turn dq_turn_wait(const fa2_bwd_params &p,
                                                const bwd_block &k, const bwd_step &q,
                                                int tid, int seen = -1)
{
    dq_turn w = {NULL, 0, 0};
    /* one if block, not an early return: with `if (!p.deterministic) return`
     * here ptxas moved all of the kernel's block-uniform integer work off
     * the uniform datapath (sm_90a: UIMAD 207 -> 0 in the wgmma kernel's
     * SASS, 5% slower at head dim 128) */
    if (p.deterministic) {
        fa2_dq_order o;
        o.start = k.q_start;
        o.next_start = k.next_start, o.next_lo = k.next_lo, o.next_hi = k.next_hi;
        const fa2_dq_turn t = fa2_bwd_dq_turn_at(&o, q.m_block, k.n_block);
        w.mine = (int)t.mine;
        w.shift = t.chain ? p.acc2_off : 0;
        w.turn = dq_turn_word(p, k, q);
        const int expect = (int)t.expect;
        if (tid == 0 && seen != expect)
            while (*(volatile int *)w.turn != expect)
                __nanosleep(64);
        __syncthreads();
        __threadfence();
    }
    return w;
}

__device__ __forceinline__ void dq_turn_pass(const fa2_bwd_params &p, const dq_turn &w,
                                             int tid)
{
    if (!p.deterministic || !w.turn) /* (no turn held: a block with no step) */
        return;
    __threadfence();
    __syncthreads();
    if (tid == 0)
        atomicExch(w.turn, w.mine);
}

/* ---- the end of the block: dK, dV and the traffic ---------------------- */

/* Row r of the block's dK and dV (NULL past the block's rows): the kernels
 * store dK_j = round(scale dK_j), dV_j = round(dV_j) there with
 * bwd_store_pair, each column pair c < d once. */
struct bwd_dkdv_row {
    uint16_t *dk, *dv;
};

__device__ __forceinline__ bwd_dkdv_row bwd_dkdv_row_of(const fa2_bwd_params &p,
                                                        const bwd_block &k, int r)
{
    bwd_dkdv_row o = {NULL, NULL};
    if (r < k.cols) {
        const int64_t row = k.s.k_start + k.col_lo + r;
        o.dk = (uint16_t *)p.dk + k.s.batch * p.dk_sb + row * p.dk_sr +
               (int64_t)k.hk * p.dk_sh;
        o.dv = (uint16_t *)p.dv + k.s.batch * p.dv_sb + row * p.dv_sr +
               (int64_t)k.hk * p.dv_sh;
    }
    return o;
}

/* at[0..1] = round(a), round(b) */
template <bool IS_BF16>
__device__ __forceinline__ void bwd_store_pair(uint16_t *at, float a, float b)
{
    *reinterpret_cast<uint32_t *>(at) = pack2<IS_BF16>(a, b);
}

/* What the block moved, as the simulator counts it: K_j, V_j once; per
 * step Q_i, dO_i (q_bytes each), LSE_i, D_i (row_bytes each), the dQ tile
 * read and written by the float32 reductions (2 q_bytes each way); dK_j,
 * dV_j once. */
__device__ __forceinline__ void bwd_count_main(const fa2_bwd_params &p, const bwd_block &k,
                                               unsigned long long q_bytes,
                                               unsigned long long row_bytes)
{
    const unsigned long long kv_bytes = (unsigned long long)k.cols * k.d * 2;
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_K), kv_bytes);
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_V), kv_bytes);
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_Q), q_bytes);
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_DO), q_bytes);
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_LSE), row_bytes);
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_D), row_bytes);
    FA2_BWD_COUNT(p, FA2_RD(FA2_SIM_T_DQ_ACCUM), q_bytes * 2);
    FA2_BWD_COUNT(p, FA2_WR(FA2_SIM_T_DQ_ACCUM), q_bytes * 2);
    FA2_BWD_COUNT(p, FA2_WR(FA2_SIM_T_DK), kv_bytes);
    FA2_BWD_COUNT(p, FA2_WR(FA2_SIM_T_DV), kv_bytes);
    (void)p;
    (void)kv_bytes;
    (void)q_bytes;
    (void)row_bytes;
}

} // namespace fa2bwd

#endif /* FA2_GPU_BWD_BLOCK_CUH */
