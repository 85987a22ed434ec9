/* bwd_mods.cuh — the score modifiers and dropout in the backward's main
 * kernels (the MODS instantiations of bwd_kernel.cuh's mma.sync kernel and
 * bwd_kernel_sm90.cuh's wgmma kernel): the step's fa2_score_mod, dropout's
 * kept/dropped bits of a chunk of S^T, P^T and dS^T of a chunk, and dV's
 * dropout scale. The maths is lib/fa2_score.h's and lib/fa2_philox.h's;
 * the order and roundings are cpu/tiled_bwd.c's, per element of S^T:
 *
 *     u = fa2_score_logit_grad(x) (logits; g = du/d(scale x)), or u = x
 *     masked: u = -inf            (every tile: rows past the block's end
 *                                  too, whose u is no longer 0)
 *     P = exp2(u c - LSE log2 e)  c = log2 e with logits, else scale log2 e
 *     dropout: dP' = z dP (1/(1-p)), z the element's Philox decision; the
 *              dropped P are 0 in dV, which is scaled by 1/(1-p) at the end
 *     dS = P o (dP' - D), times g with softcap.
 *
 * The sinks' gradient comes from the preprocess (bwd_preprocess<SINKS>).
 *
 * Both kernels hold a chunk of S^T and dP^T in the mma C layout: warp k of
 * the block owns key rows kw0 .. kw0 + 15 (kw0 = 16 k, or 64 w + 16 k for
 * the wgmma kernel's warp k of warpgroup w), and a thread (g = lane / 4,
 * t = lane % 4) holds, for each n8 tile nt of the chunk's query columns,
 * element 2 hf + e = (key row kw0 + g + 8 hf, query column nt 8 + 2 t + e).
 * The mma.sync kernel keeps that as float[NC][4], the wgmma accumulator
 * as float[4 NC]; frag() reads either.
 */
#ifndef FA2_GPU_BWD_MODS_CUH
#define FA2_GPU_BWD_MODS_CUH

#include "fa2_philox.h"
#include "fa2_score.h"
#include "bwd_block.cuh"

namespace fa2bwd {

/* element i (= 2 hf + e) of n8 tile nt of a chunk's accumulator */
template <int NC> __device__ __forceinline__ float &frag(float (&a)[NC][4], int nt, int i)
{
    return a[nt][i];
}
template <int N4> __device__ __forceinline__ float &frag(float (&a)[N4], int nt, int i)
{
    return a[4 * nt + i];
}

/* The step's score modifiers (ALiBi's slope is per query head). */
__device__ __forceinline__ fa2_score_mod bwd_step_mods(const fa2_bwd_params &p,
                                                       const bwd_block &blk,
                                                       const bwd_step &q)
{
    const bool alibi = p.alibi_slopes != nullptr;
    return fa2_score_mod_make(
        p.scale, p.softcap, alibi,
        alibi ? p.alibi_slopes[(int64_t)blk.b * p.alibi_stride + q.h] : 0.0f,
        blk.s.seqlen_q, blk.s.seqlen_k);
}

/* Dropout's decisions for this lane's elements of one chunk of S^T (NC n8
 * tiles from query column ch CQ of the step; cpu/tiled_bwd.c
 * logit_tile_bwd's, from fa2_philox.h). Element (n8 tile nt, column 2t + e,
 * key row kw0 + g + 8 hf) is (query row qr, key kc); the keys kw0 + 8 hf ..
 * + 7 are one Philox group (one call's eight decisions, bit g is key
 * kw0 + 8 hf + g), so the eight lanes g = 0..7 with the same t need the
 * same calls: (e, hf) for every nt, 4 NC in all. Lane g makes the calls
 * (e, hf) = (g & 1, (g >> 1) & 1) of the n8 tiles of parity g >> 2 (NC / 2
 * calls) and keeps each call's bits as a byte; eight shuffles hand every
 * lane the bytes of the lanes that made its calls, shifted down by g.
 * Returns kb[e + 2 hf]: bit 8 (nt >> 1) + (nt & 1) is element (nt, e,
 * hf)'s. Whole warp (shuffles). */
template <int NC, int CQ>
__device__ __forceinline__ void dropout_bits(const fa2_bwd_params &p, const bwd_block &blk,
                                             const bwd_step &q, int ch, int kw0, int g,
                                             int t, uint32_t kb[4])
{
    static_assert(NC <= 8, "a chunk's decisions (a byte per two n8 tiles) fit in 32 bits");
    const int e = g & 1, hf = (g >> 1) & 1, par = g >> 2;
    const int64_t bhq = (int64_t)blk.b * p.heads_q + q.h;
    const int64_t kc = blk.col_lo + kw0 + 8 * hf;
    const int64_t r0 = q.row_lo + ch * CQ + 2 * t + e;
    uint32_t mine = 0;
    /* one Philox call live at a time (fwd_kernel.cuh: unrolled, the
     * calls' temporaries spilled) */
#pragma unroll 1
    for (int k = 0; 2 * k + par < NC; k++) {
        const int nt = 2 * k + par;
        mine |= fa2_dropout_keep8(&p.dropout,
                                  fa2_dropout_words(&p.dropout, bhq, r0 + nt * 8, kc))
                << (8 * k);
    }
#pragma unroll
    for (int s2 = 0; s2 < 4; s2++) { /* s2 = e + 2 hf; lane (g, t) is 4 g + t */
        const uint32_t even = __shfl_sync(0xffffffffu, mine, 4 * s2 + t) >> g;
        const uint32_t odd = __shfl_sync(0xffffffffu, mine, 4 * (s2 + 4) + t) >> g;
        kb[s2] = (even & 0x01010101u) | (odd & 0x01010101u) << 1;
    }
}

/* Is element (nt, e, hf) kept, from dropout_bits' kb? */
__device__ __forceinline__ bool chunk_kept(const uint32_t kb[4], int nt, int e, int hf)
{
    return (kb[e + 2 * hf] >> (8 * (nt >> 1) + (nt & 1))) & 1u;
}

/* dropout's bits of the chunk (dropout_bits), or every bit set without it */
template <int NC, int CQ>
__device__ __forceinline__ void chunk_keep_bits(const fa2_bwd_params &p, const bwd_block &blk,
                                                const bwd_step &q, int ch, int kw0, int g,
                                                int t, uint32_t kb[4])
{
    kb[0] = kb[1] = kb[2] = kb[3] = ~0u;
    if (p.dropout.enabled)
        dropout_bits<NC, CQ>(p, blk, q, ch, kw0, g, t, kb);
}

/* ALiBi's distances in float arithmetic (the wgmma kernel): element (nt,
 * e, hf)'s |i + Nk - Nq - j| is |a0 - 8 hf + 8 nt + e|, a0 the
 * distance's signed value at (nt, e, hf) = (0, 0, 0); sums of integers
 * below 2^24 are exact in float, so this is fa2_alibi_distance's value
 * while the sequences are shorter than FA2_BWD_ALIBI_F32_MAX_LEN
 * (pick_bwd_kernel sends longer ones to the mma.sync kernel, which takes
 * the 64-bit form). */
#define FA2_BWD_ALIBI_F32_MAX_LEN (1 << 23)

/* P^T and dS^T of one chunk with the modifiers: sc holds S^T on entry and
 * the kept P^T (dropped ones 0, for dV) on exit; dp holds dP^T on entry
 * and dS^T on exit. cL, cD: the step's LSE and D, indexed by query column
 * within the step; LSE_SCALED: cL holds fa2_bwd_lse_scaled(LSE) already
 * (the wgmma kernel scales each row once when its copy lands). kb:
 * chunk_keep_bits'.
 *
 * Softcap and ALiBi are compile-time flags (CAPPED, ALIBI), written into a
 * copy of the step's fa2_score_mod as constants so that
 * fa2_score_logit_grad_dist's own tests of them fold away: each
 * combination's element loop is straight-line code (with runtime tests
 * every element was a chain of branches, and the elements could not
 * overlap). The other two are data: without logits (dropout alone) the
 * scale is 1 and c = scale log2 e, so u = x * 1 = x; without dropout
 * every element is kept and scaled by 1. Both give the bits of the
 * skipped steps. ALIBI_F32: the distances as above. */
template <int NC, int CQ, bool CAPPED, bool ALIBI, bool ALIBI_F32, bool LSE_SCALED,
          typename Acc>
__device__ __forceinline__ void mods_p_ds_as(const fa2_bwd_params &p, const fa2_score_mod &sm,
                                             const bwd_block &blk, const bwd_step &q, int ch,
                                             int kw0, int g, int t, const uint32_t kb[4],
                                             const int vis_lo[2], const int vis_hi[2],
                                             const float *cL, const float *cD, Acc &sc,
                                             Acc &dp)
{
    fa2_score_mod s = sm;
    if (CAPPED)
        __builtin_assume(s.softcap > 0.0f);
    else
        s.softcap = 0.0f;
    s.alibi = ALIBI;
    s.logits = 1; /* natural units, a constant (fa2_score_mod_units is the forward's) */
    const bool logits = p.logits != 0;
    if (!logits)
        s.scale = 1.0f;
    const float c_exp = logits ? FA2_LOG2E_F : p.scale_log2;
    const float kept_scale = p.dropout.enabled ? p.dropout.scale : 1.0f;
    const int64_t kcol0 = blk.col_lo + kw0 + g; /* key of hf = 0 */
    /* the key of row half 1 is 8 further than row half 0's, so its
     * element (nt, e) lies at row half 0's distance of (nt - 1, e): one
     * FADD per element pair (dist_prev carries it to the next nt) */
    float a0 = 0.0f, dist_prev[2] = {0.0f, 0.0f};
    if (ALIBI && ALIBI_F32) {
        a0 = (float)(q.row_lo + ch * CQ + 2 * t + s.diag_offset - kcol0);
#pragma unroll
        for (int e = 0; e < 2; e++)
            dist_prev[e] = fa2_alibi_distance_f32(a0, (float)(e - 8));
    }
#pragma unroll
    for (int nt = 0; nt < NC; nt++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int c = ch * CQ + nt * 8 + 2 * t + e;
            const int r = (int)q.row_lo + c;
            const float lse2 = LSE_SCALED ? cL[c] : fa2_bwd_lse_scaled(cL[c]);
            const float Dc = cD[c];
            float dist_f32[2] = {0.0f, 0.0f};
            if (ALIBI && ALIBI_F32) {
                dist_f32[0] = fa2_alibi_distance_f32(a0, (float)(8 * nt + e));
                dist_f32[1] = dist_prev[e];
                dist_prev[e] = dist_f32[0];
            }
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                float dist = 0.0f, grad;
                if (ALIBI)
                    dist = ALIBI_F32 ? dist_f32[hf] : fa2_alibi_distance(&s, r, kcol0 + 8 * hf);
                float u = fa2_score_logit_grad_dist(&s, frag(sc, nt, 2 * hf + e), dist, &grad);
                if (r < vis_lo[hf] || r >= vis_hi[hf])
                    u = FA2_NEG_INF;
                const float pe = fa2_bwd_p(u, c_exp, lse2);
                const bool kept = chunk_kept(kb, nt, e, hf);
                const float dpe = kept ? FA2_MUL_RN(frag(dp, nt, 2 * hf + e), kept_scale)
                                       : 0.0f;
                float ds = FA2_MUL_RN(pe, dpe - Dc);
                if (CAPPED)
                    ds = FA2_MUL_RN(ds, grad);
                frag(dp, nt, 2 * hf + e) = ds;
                frag(sc, nt, 2 * hf + e) = kept ? pe : 0.0f;
            }
        }
}

/* The chunk's P^T and dS^T (mods_p_ds_as): one branch on softcap and
 * ALiBi, then that combination's straight-line loop. */
template <int NC, int CQ, bool ALIBI_F32, bool LSE_SCALED, typename Acc>
__device__ __forceinline__ void mods_p_ds(const fa2_bwd_params &p, const fa2_score_mod &sm,
                                          const bwd_block &blk, const bwd_step &q, int ch,
                                          int kw0, int g, int t, const uint32_t kb[4],
                                          const int vis_lo[2], const int vis_hi[2],
                                          const float *cL, const float *cD, Acc &sc,
                                          Acc &dp)
{
#define FA2_MODS_AS(C, A)                                                      \
    mods_p_ds_as<NC, CQ, C, A, ALIBI_F32, LSE_SCALED>(p, sm, blk, q, ch, kw0, g, t, kb,  \
                                                      vis_lo, vis_hi, cL, cD, sc, dp)
    if (sm.softcap > 0.0f) {
        if (sm.alibi)
            FA2_MODS_AS(true, true);
        else
            FA2_MODS_AS(true, false);
    } else {
        if (sm.alibi)
            FA2_MODS_AS(false, true);
        else
            FA2_MODS_AS(false, false);
    }
#undef FA2_MODS_AS
}

/* chunk_keep_bits and mods_p_ds of one chunk, one after the other (the
 * mma.sync kernel; the wgmma kernel draws the bits while the chunk's
 * products run) */
template <int NC, int CQ, typename Acc>
__device__ __forceinline__ void mods_chunk(const fa2_bwd_params &p, const fa2_score_mod &sm,
                                           const bwd_block &blk, const bwd_step &q, int ch,
                                           int kw0, int g, int t,
                                           const int vis_lo[2], const int vis_hi[2],
                                           const float *cL, const float *cD, Acc &sc,
                                           Acc &dp)
{
    uint32_t kb[4];
    chunk_keep_bits<NC, CQ>(p, blk, q, ch, kw0, g, t, kb);
    mods_p_ds<NC, CQ, false, false>(p, sm, blk, q, ch, kw0, g, t, kb, vis_lo, vis_hi, cL, cD,
                                    sc, dp);
}

/* dV_j = round(acc), with dropout round(acc / (1 - p)) (MODS): at[0..1]
 * from the accumulator pair a, b */
template <bool IS_BF16, bool MODS>
__device__ __forceinline__ void bwd_store_dv(const fa2_bwd_params &p, uint16_t *at, float a,
                                             float b)
{
    if (MODS && p.dropout.enabled)
        bwd_store_pair<IS_BF16>(at, a * p.dropout.scale, b * p.dropout.scale);
    else
        bwd_store_pair<IS_BF16>(at, a, b);
}

} // namespace fa2bwd

#endif /* FA2_GPU_BWD_MODS_CUH */
