/*
 * fa2_tile.h — the tile logic every implementation of FlashAttention-2 in
 * fa2 shares: the CPU mirror (cpu/tiled_fwd.c), the simulator (sim/) and the
 * CUDA kernels (gpu/) all call these functions; none re-derives them.
 *
 * Everything here is `static inline` and compiles both as C11 and as CUDA
 * (FA2_HD adds __host__ __device__ under nvcc), so CPU-only CI exercises the
 * very code the kernels run.
 *
 * Coordinates are per (sequence, head): query rows 0..seqlen_q-1, key
 * columns 0..seqlen_k-1. Query row i is aligned to the *end* of the keys
 * (bottom-right alignment, as flash-attn >= 2.1): its diagonal is the key
 * column i + (seqlen_k - seqlen_q).
 */
#ifndef FA2_TILE_H
#define FA2_TILE_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define FA2_HD __host__ __device__
#else
#define FA2_HD
#endif

#define FA2_NEG_INF (-INFINITY)

/* A product rounded on its own, never fused into a following add (nvcc
 * contracts a * b + c into an FMA by default; ISO C compilers do not). */
#if defined(__CUDA_ARCH__)
#define FA2_MUL_RN(a, b) __fmul_rn((a), (b))
#else
#define FA2_MUL_RN(a, b) ((a) * (b))
#endif

/* ---- the visibility rule ------------------------------------------------ */

/* Which keys a query row may see, for one (sequence, head). */
typedef struct fa2_mask {
    int64_t seqlen_q;
    int64_t seqlen_k;
    int64_t diag_offset;  /* seqlen_k - seqlen_q: row i's diagonal column   */
    int64_t window_left;  /* keys left of the diagonal seen; -1 = all       */
    int64_t window_right; /* keys right of the diagonal seen; -1 = all      */
} fa2_mask;

/* Causal attention is the window (left, 0): a row sees nothing right of its
 * diagonal. A window wider than the keys is the same as no window, and is
 * stored as -1 here, before any arithmetic: row i's left edge
 * i + diag_offset - window_left is <= 0 for every row once window_left >=
 * seqlen_k - 1, and its right edge i + diag_offset + window_right reaches
 * the last key for every row once window_right >= seqlen_q - 1. So every
 * sum below stays within a few times the sequence lengths, whatever the
 * caller passed (INT64_MAX included). */
FA2_HD static inline fa2_mask fa2_mask_make(int64_t seqlen_q, int64_t seqlen_k,
                                            int causal, int64_t window_left,
                                            int64_t window_right)
{
    fa2_mask m;
    m.seqlen_q = seqlen_q;
    m.seqlen_k = seqlen_k;
    m.diag_offset = seqlen_k - seqlen_q;
    m.window_left = (window_left < 0 || window_left >= seqlen_k) ? -1 : window_left;
    m.window_right = causal ? 0
                     : (window_right < 0 || window_right >= seqlen_q) ? -1
                                                                       : window_right;
    return m;
}

/* The mask predicate: may query row `row` see key column `col`? */
FA2_HD static inline int fa2_mask_visible(const fa2_mask *m, int64_t row,
                                          int64_t col)
{
    const int64_t diag = row + m->diag_offset;
    if (col < 0 || col >= m->seqlen_k)
        return 0;
    if (m->window_right >= 0 && col > diag + m->window_right)
        return 0;
    if (m->window_left >= 0 && col < diag - m->window_left)
        return 0;
    return 1;
}

/* ---- forward: which key blocks a query block visits -------------------- */

/* Key blocks [lo, hi), visited from hi-1 down to lo (see fa2_kv_block_at). */
typedef struct fa2_block_range {
    int64_t lo;
    int64_t hi;
} fa2_block_range;

/* ceil(a / b) for a >= 0, b > 0, without forming a + b - 1 (which
 * overflows near INT64_MAX). */
FA2_HD static inline int64_t fa2_ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

FA2_HD static inline int64_t fa2_num_blocks(int64_t n, int64_t block)
{
    return fa2_ceil_div(n, block);
}

/* Key columns [*col_lo, *col_hi) seen by at least one of rows [row_lo,
 * row_hi). Each row's window is an interval sliding right by one column per
 * row, so their union is one interval: its left end comes from the first
 * row, its right end from the last. Empty: *col_lo == *col_hi. */
FA2_HD static inline void fa2_visible_cols(const fa2_mask *m, int64_t row_lo,
                                           int64_t row_hi, int64_t *col_lo,
                                           int64_t *col_hi)
{
    int64_t lo = 0, hi = m->seqlen_k;
    if (m->window_left >= 0) {
        const int64_t first = row_lo + m->diag_offset - m->window_left;
        lo = first > 0 ? first : 0;
    }
    if (m->window_right >= 0) {
        const int64_t last = (row_hi - 1) + m->diag_offset + m->window_right + 1;
        hi = last < m->seqlen_k ? last : m->seqlen_k;
    }
    if (row_hi <= row_lo || hi < lo)
        hi = lo;
    *col_lo = lo;
    *col_hi = hi;
}

/* The key blocks query block m_block visits (FA2 Algorithm 1, the inner
 * loop, restricted to blocks with at least one visible key: causal and
 * window blocks that are fully masked are skipped, not computed). */
FA2_HD static inline fa2_block_range fa2_fwd_kv_blocks(const fa2_mask *m,
                                                       int64_t m_block,
                                                       int block_m, int block_n)
{
    fa2_block_range r;
    const int64_t row_lo = m_block * block_m;
    int64_t row_hi = row_lo + block_m;
    int64_t col_lo, col_hi;
    if (row_hi > m->seqlen_q)
        row_hi = m->seqlen_q;
    fa2_visible_cols(m, row_lo, row_hi, &col_lo, &col_hi);
    if (col_hi <= col_lo) {
        r.lo = r.hi = 0;
        return r;
    }
    r.lo = col_lo / block_n;
    r.hi = fa2_ceil_div(col_hi, block_n);
    return r;
}

FA2_HD static inline int64_t fa2_block_count(fa2_block_range r)
{
    return r.hi - r.lo;
}

/* The step-th key block visited. Like the CUDA kernel, the loop runs from
 * the last block to the first: the blocks that need element masking (the
 * diagonal and the ragged end of the keys) come first, and the online
 * softmax sees the keys in this order in every implementation. */
FA2_HD static inline int64_t fa2_kv_block_at(fa2_block_range r, int64_t step)
{
    return r.hi - 1 - step;
}

/* The sm_90 forward's `pairs` schedule for causal launches: a head's
 * 2 fa2_pair_count(M) slots (M = m_blocks), slot 2u holding query block M - 1 - u
 * and slot 2u + 1 block u. Under a causal mask block m visits about m + 1
 * key blocks, so every pair visits the same number and a static round
 * robin of pairs keeps the SMs equally busy. The order changes no
 * rounding (each query block's rows are computed alone). -1: the empty
 * slot of an odd M's middle pair. */
FA2_HD static inline int fa2_pair_count(int m_blocks)
{
    return (m_blocks + 1) / 2;
}
FA2_HD static inline int fa2_pair_slot_block(int r, int m_blocks)
{
    const int m = r & 1 ? r >> 1 : m_blocks - 1 - (r >> 1);
    return (r & 1) && m == m_blocks - 1 - (r >> 1) ? -1 : m;
}

/* Does tile (rows [row_lo, row_hi), cols [col_lo, col_lo + block_n)) need
 * the element mask, or is every (valid row, col) pair in it visible? Only
 * the last key block (ragged end) and blocks crossing a window edge do. */
FA2_HD static inline int fa2_tile_needs_mask(const fa2_mask *m, int64_t row_lo,
                                             int64_t row_hi, int64_t col_lo,
                                             int block_n)
{
    const int64_t col_last = col_lo + block_n - 1;
    if (col_last >= m->seqlen_k)
        return 1;
    /* the first row has the smallest right edge ... */
    if (m->window_right >= 0 &&
        col_last > row_lo + m->diag_offset + m->window_right)
        return 1;
    /* ... and the last row the largest left edge */
    if (m->window_left >= 0 &&
        col_lo < (row_hi - 1) + m->diag_offset - m->window_left)
        return 1;
    return 0;
}

/* ---- backward: which query blocks see a key block ----------------------- */

/* Query rows [*row_lo, *row_hi) that see at least one of key columns
 * [col_lo, col_hi): the mirror image of fa2_visible_cols. */
FA2_HD static inline void fa2_visible_rows(const fa2_mask *m, int64_t col_lo,
                                           int64_t col_hi, int64_t *row_lo,
                                           int64_t *row_hi)
{
    int64_t lo = 0, hi = m->seqlen_q;
    if (col_hi > m->seqlen_k)
        col_hi = m->seqlen_k;
    /* row i sees col j iff j - window_right <= i + off <= j + window_left */
    if (m->window_right >= 0) {
        const int64_t first = col_lo - m->window_right - m->diag_offset;
        lo = first > 0 ? first : 0;
    }
    if (m->window_left >= 0) {
        const int64_t last = (col_hi - 1) + m->window_left - m->diag_offset + 1;
        hi = last < m->seqlen_q ? last : m->seqlen_q;
    }
    if (col_hi <= col_lo || hi < lo)
        hi = lo;
    *row_lo = lo;
    *row_hi = hi;
}

/* The query blocks key block n_block's backward visits (ascending). */
FA2_HD static inline fa2_block_range fa2_bwd_q_blocks(const fa2_mask *m,
                                                      int64_t n_block,
                                                      int block_m, int block_n)
{
    fa2_block_range r;
    const int64_t col_lo = n_block * block_n;
    int64_t row_lo, row_hi;
    fa2_visible_rows(m, col_lo, col_lo + block_n, &row_lo, &row_hi);
    if (row_hi <= row_lo) {
        r.lo = r.hi = 0;
        return r;
    }
    r.lo = row_lo / block_m;
    r.hi = fa2_ceil_div(row_hi, block_m);
    return r;
}

/* ---- backward: the order in which dQ_i receives its shares --------------- */

/* In deterministic mode every dQ block's float32 sum is taken in one fixed
 * order, yet key blocks must not wait for each other. So each key block j
 * walks its query blocks [lo_j, hi_j) from a start s_j onwards, wrapping
 * round to lo_j, and the start points are spread out: s_j = j nq / nk
 * clamped into [lo_j, hi_j) (nq, nk: the sequence's query and key block
 * counts). Under a causal mask lo_j already differs for every j and the
 * clamp makes s_j = lo_j (no wrap at all); without a mask the starts are
 * evenly spaced. s_j never decreases with j (lo_j, hi_j and j nq / nk do
 * not), which is what the order below rests on. */
FA2_HD static inline int64_t fa2_bwd_q_start(const fa2_mask *m, int64_t n_block,
                                             int block_m, int block_n)
{
    const fa2_block_range r = fa2_bwd_q_blocks(m, n_block, block_m, block_n);
    if (r.hi <= r.lo)
        return r.lo;
    const int64_t nq = fa2_num_blocks(m->seqlen_q, block_m);
    const int64_t nk = fa2_num_blocks(m->seqlen_k, block_n);
    int64_t s = nk > 0 ? n_block * nq / nk : 0;
    if (s < r.lo)
        s = r.lo;
    if (s > r.hi - 1)
        s = r.hi - 1;
    return s;
}

/* The step-th query block key block j visits when it starts at `start`
 * (fa2_bwd_q_start; start = r.lo is the plain ascending walk). */
FA2_HD static inline int64_t fa2_bwd_q_block_at(fa2_block_range r, int64_t start,
                                                int64_t step)
{
    const int64_t i = start + step;
    return i < r.hi ? i : i - (r.hi - r.lo);
}

/* Who adds to dQ_i before key block j. The key blocks that see query block
 * i are [kv.lo, kv.hi) (fa2_fwd_kv_blocks). Those with s_j <= i reach i
 * before wrapping (chain 0), the others after (chain 1); in a walk where
 * every key block takes one step at a time, chain 0's members arrive in
 * descending j (a larger s_j is closer to i), and so do chain 1's. That is
 * the fixed order: each chain sums into its own float32 accumulator, its
 * members in descending j, and the postprocess adds chain 0 + chain 1. As
 * s_j never decreases, chain 0 is a prefix [kv.lo, a) of the key blocks and
 * chain 1 the rest [a, kv.hi), so key block j's predecessor in its chain is
 * j + 1 or nobody: a turn word that holds "last key block that added, plus
 * one" (0: none yet) says when j may add. Waits are only ever on j + 1, so
 * launching key blocks in descending j makes every wait one on a block
 * launched earlier: no deadlock, however few blocks are resident. */
typedef struct fa2_dq_turn {
    int chain;      /* 0: reached before wrapping, 1: after                */
    int64_t expect; /* the turn word's value when j may add: j + 2 or 0    */
    int64_t mine;   /* the value j leaves there: j + 1                     */
} fa2_dq_turn;

/* What key block j needs to know for its turns, computed once per block
 * (the kernels keep it in three registers and do no division per step):
 * its own start, and the start and query range of key block j + 1 (empty
 * past the last key block). */
typedef struct fa2_dq_order {
    int64_t start;                        /* s_j                          */
    int64_t next_start, next_lo, next_hi; /* s_{j+1}, [lo_{j+1}, hi_{j+1}) */
} fa2_dq_order;

FA2_HD static inline fa2_dq_order fa2_bwd_dq_order(const fa2_mask *m, int64_t n_block,
                                                   int block_m, int block_n)
{
    fa2_dq_order o;
    o.start = fa2_bwd_q_start(m, n_block, block_m, block_n);
    const fa2_block_range nr = fa2_bwd_q_blocks(m, n_block + 1, block_m, block_n);
    o.next_start = fa2_bwd_q_start(m, n_block + 1, block_m, block_n);
    o.next_lo = nr.lo;
    o.next_hi = nr.hi;
    return o;
}

/* Key block j's turn at query block i (which j sees): j + 1 precedes it iff
 * j + 1 also sees i (i in j + 1's query range, the transpose of
 * fa2_fwd_kv_blocks) and is in the same chain. */
FA2_HD static inline fa2_dq_turn fa2_bwd_dq_turn_at(const fa2_dq_order *o,
                                                    int64_t m_block, int64_t n_block)
{
    fa2_dq_turn t;
    t.chain = o->start > m_block;
    t.mine = n_block + 1;
    const int next_in_chain = m_block >= o->next_lo && m_block < o->next_hi &&
                              (t.chain || o->next_start <= m_block);
    t.expect = next_in_chain ? n_block + 2 : 0;
    return t;
}

FA2_HD static inline fa2_dq_turn fa2_bwd_dq_turn(const fa2_mask *m, int64_t m_block,
                                                 int64_t n_block, int block_m,
                                                 int block_n)
{
    const fa2_dq_order o = fa2_bwd_dq_order(m, n_block, block_m, block_n);
    return fa2_bwd_dq_turn_at(&o, m_block, n_block);
}

/* ---- the online softmax of one row (FA2 Algorithm 1, lines 8-10, 12) ---- */

/* Running statistics of one query row: the max m of the raw scores seen so
 * far and l = sum_j exp(scale * (s_j - m)).
 *
 * Non-finite scores (doc/algorithm.md, "Non-finite inputs"): the max is
 * taken with fmaxf / a > compare, which skip a NaN, so m stays the max of
 * the other scores; the NaN score's P = exp2(NaN) is NaN, which makes l,
 * the accumulator, O and LSE NaN. A +inf score makes m = +inf and its P =
 * exp2(inf - inf) = NaN: the same. A -inf score has P = 0, like a masked
 * key. Nothing here tests for NaN: IEEE arithmetic carries it, and the
 * end of the row (fa2_softmax_inv_l, fa2_softmax_lse) must not filter it. */
typedef struct fa2_row_state {
    float m;
    float l;
} fa2_row_state;

FA2_HD static inline fa2_row_state fa2_row_state_init(void)
{
    fa2_row_state st;
    st.m = FA2_NEG_INF;
    st.l = 0.0f;
    return st;
}

/* The max we subtract, in log2 units: max_scaled = round(m c), with c =
 * scale log2(e). A row that has seen only masked scores (max -inf)
 * subtracts 0, so exp2(-inf - 0) = 0 instead of NaN. */
FA2_HD static inline float fa2_softmax_max_scaled(float m, float scale_log2)
{
    return m == FA2_NEG_INF ? 0.0f : FA2_MUL_RN(m, scale_log2);
}

/* Below this |max_scaled| the kernels' one-FFMA form of P is used.
 *
 * P = exp2(fma(s, c, -max_scaled)) forms s c exactly and subtracts the
 * rounded max_scaled, so every P of the row is exact up to one common
 * factor 2^delta, delta = m c - round(m c), |delta| <= ulp(m c) / 2. That
 * factor cancels in O = acc / l and moves LSE by under one ulp, as long as
 * it is small: below 2^24, ulp(m c) <= 1 and the row's largest P lies in
 * [2^-0.5, 2^0.5]. Beyond it delta grows with m c (ulp 128 at 1e9) and P
 * under- or overflows (fp16 P of 2^-64 rounds to 0, 2^64 to inf). There the
 * product is rounded first: P = exp2(round(s c) - max_scaled). Rounding is
 * monotone, so round(s c) <= round(m c) = max_scaled for every score and the
 * largest P is exactly 1; the rounding of s c costs no more than the
 * scores' own float32 precision. */
#define FA2_SOFTMAX_FFMA_LIMIT 16777216.0f /* 2^24 */

/* Is the one-FFMA form exact (see above) for a row with this max_scaled?
 * A kernel may test this once per row and tile and then call
 * fa2_softmax_p_ffma for the row's elements; NaN and +-inf answer 0. */
FA2_HD static inline int fa2_softmax_ffma_exact(float max_scaled)
{
    return fabsf(max_scaled) < FA2_SOFTMAX_FFMA_LIMIT;
}

/* P = exp2(fma(s, c, -max_scaled)): only for rows that passed
 * fa2_softmax_ffma_exact (one FFMA, what the kernel's hot loop runs). */
FA2_HD static inline float fa2_softmax_p_ffma(float s, float scale_log2,
                                              float max_scaled)
{
    return exp2f(fmaf(s, scale_log2, -max_scaled));
}

/* The exponent of P = exp2(s c - m c), in whichever form is exact for this
 * row (FA2_SOFTMAX_FFMA_LIMIT). Vector code calls this and its own exp2. */
FA2_HD static inline float fa2_softmax_arg(float s, float scale_log2,
                                           float max_scaled)
{
    return fa2_softmax_ffma_exact(max_scaled)
               ? fmaf(s, scale_log2, -max_scaled)
               : FA2_MUL_RN(s, scale_log2) - max_scaled;
}

/* One probability P = exp2(s c - m c), right for every finite score. */
FA2_HD static inline float fa2_softmax_p(float s, float scale_log2,
                                         float max_scaled)
{
    return exp2f(fa2_softmax_arg(s, scale_log2, max_scaled));
}

/* Start a tile: fold the tile's row max into the running max and return the
 * factor alpha = exp2(m_old c - m_new c) by which l and the accumulator
 * must be scaled (0 when the row had seen nothing; 1 when the max did not
 * move). *max_scaled receives m_new c, the value fa2_softmax_p subtracts.
 * Both products are rounded before the subtraction (and never fused): the
 * terms already in l and acc were computed against the rounded m_old c, so
 * this alpha moves them to the rounded m_new c exactly as the new terms are
 * (in either form of P: both are relative to the rounded max_scaled). */
FA2_HD static inline float fa2_softmax_rescale(fa2_row_state *st, float tile_max,
                                               float scale_log2,
                                               float *max_scaled)
{
    const float m_new = fmaxf(st->m, tile_max);
    const float ms_new = fa2_softmax_max_scaled(m_new, scale_log2);
    const float alpha =
        st->m == FA2_NEG_INF
            ? 0.0f
            : exp2f(fa2_softmax_max_scaled(st->m, scale_log2) - ms_new);
    st->m = m_new;
    *max_scaled = ms_new;
    return alpha;
}

/* Finish a tile: l = alpha * l + rowsum(P), rowsum from the float32 P. */
FA2_HD static inline void fa2_softmax_accumulate(fa2_row_state *st, float alpha,
                                                 float rowsum_p)
{
    st->l = alpha * st->l + rowsum_p;
}

/* The end of the row (Algorithm 1, lines 12-13): O = acc * (1 / l) and
 * LSE = m * scale + ln l. A row that saw no key (l == 0) gives O = 0 (its
 * accumulator is 0, scaled by 1) and LSE = +inf. A row whose l is NaN (it
 * saw a NaN or +inf score) gives NaN in both: 1 / NaN and ln NaN. */
FA2_HD static inline float fa2_softmax_inv_l(fa2_row_state st)
{
    return st.l == 0.0f ? 1.0f : 1.0f / st.l;
}

FA2_HD static inline float fa2_softmax_lse(fa2_row_state st, float scale)
{
    return st.l == 0.0f ? INFINITY : st.m * scale + logf(st.l);
}

/* ---- the backward's recomputed softmax (FA2 Algorithm 2, line 11) ------ */

/* The backward rebuilds P_ij = exp(scale s_ij - LSE_i) from the saved
 * float32 LSE alone, so P is exact only up to LSE's rounding: a relative
 * error of about |LSE log2 e| 2^-24 ln 2. Past |LSE log2 e| = 2^16 that
 * passes 0.27% (bf16's half ulp), and at 2^24 P is off by factors of 2, so
 * such a row's LSE is replaced by NaN here: its gradients come out NaN,
 * not silently wrong (doc/algorithm.md, "Non-finite inputs"). */
#define FA2_BWD_LSE_LIMIT 65536.0f /* 2^16, in log2 units */

/* LSE in log2 units, the value P = fa2_bwd_p(s, c, it) subtracts. A row
 * that saw no key has LSE = +inf: kept, so its P is exp2(-inf) = 0 and its
 * gradients are 0, not NaN. A NaN LSE (the row saw a NaN) stays NaN. */
FA2_HD static inline float fa2_bwd_lse_scaled(float lse)
{
    const float lse2 = lse * 1.44269504088896340736f;
    return (fabsf(lse2) < FA2_BWD_LSE_LIMIT || lse == INFINITY) ? lse2 : NAN;
}

/* P = exp2(s c - lse2) with lse2 from fa2_bwd_lse_scaled: below its limit
 * the one-FFMA form is exact (|delta| <= 2^-9), so no other form is needed.
 * Masked scores (-inf) give 0; a NaN lse2 gives NaN. */
FA2_HD static inline float fa2_bwd_p(float s, float scale_log2, float lse2)
{
    return exp2f(fmaf(s, scale_log2, -lse2));
}

#endif /* FA2_TILE_H */
