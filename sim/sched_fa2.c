/* sched_fa2.c — FlashAttention-2's schedules at tile granularity (FA2
 * paper, Algorithms 1 and 2), the loop nests of gpu/fwd_kernel.cuh and
 * cpu/tiled_{fwd,bwd}.c, with the same tile logic (lib/fa2_tile.h).
 *
 * Forward, one thread block per (sequence, query head, query block i);
 * query blocks vary fastest and the last (longest-running under a causal
 * mask) is launched first, as the kernel does:
 *
 *     load Q_i                                     (Algorithm 1, line 4)
 *     for each key block j fa2_fwd_kv_blocks visits, last to first:
 *         load K_j, V_j                            (line 6)
 *         S = Q_i K_j^T, online softmax, O += P V  (lines 8-10, on chip)
 *     store O_i, LSE_i                             (lines 12-15)
 *
 * Global bytes per block: Q_i and O_i once, fp32 LSE once, and the valid
 * rows of every visited K/V tile. Nothing else touches global memory.
 *
 * Backward, three launches:
 *   preprocess, per (sequence, query head, query block): read O_i, dO_i,
 *       write D_i = rowsum(dO_i o O_i) (fp32) and clear the fp32 dQ
 *       accumulator rows (registers <-> global, no shared memory);
 *   main, per (sequence, key/value head, key block j), key blocks fastest:
 *       load K_j, V_j
 *       for each query head of the GQA group, for each query block i that
 *       fa2_bwd_q_blocks says sees key block j, ascending:
 *           load Q_i, dO_i (via smem), LSE_i, D_i (fp32, to registers)
 *           S, P, dP, dS, dV_j +=, dK_j +=         (on chip)
 *           atomically add dS K_j into dQaccum_i   (a read + a write of the
 *                                                   fp32 tile, at L2)
 *       store dK_j, dV_j (scaled), once
 *   postprocess, per (sequence, query head, query block): read dQaccum_i,
 *       write dQ_i = scale * dQaccum_i.
 * With GQA one block serves a whole group of query heads, so dK and dV
 * are summed on chip and written once per key/value head (as the CPU
 * mirror does). */
#include "config.h"
#include "sim.h"
#include "../gpu/fwd_config.h"

/* ---- forward ----------------------------------------------------------------- */

static void fwd_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                     int64_t tile)
{
    const fa2_problem *p = &c->S->p;
    /* the last query block first */
    if (sim_query_tile(c->S, L, b, slice, L->tiles - 1 - tile) == 0) {
        b->phase = SIM_DONE;
        return;
    }
    b->mask = fa2_problem_mask(p, &b->s);
    sim_block_visit(b, fa2_fwd_kv_blocks(&b->mask, b->blk, L->bm, L->bn), 1);
}

static int fwd_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim;
    switch (b->phase) {
    case 0: /* prologue: Q_i, once */
        sim_read(c, FA2_SIM_T_Q, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        b->phase = b->nsteps > 0 ? 1 : 2;
        return 1;
    case 1: { /* one visited key block */
        const int64_t nb = fa2_kv_block_at(b->range, b->step);
        const int64_t col_lo = nb * L->bn;
        const int64_t cols = sim_tile_rows(b->s.seqlen_k, nb, L->bn);
        const int64_t kslice = b->seq * S->p.heads_kv + b->head / S->group;
        sim_read(c, FA2_SIM_T_K, kslice, col_lo, cols, 0, S->E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_V, kslice, col_lo, cols, 0, S->E, SIM_SMEM);
        const int masked = fa2_tile_needs_mask(&b->mask, b->lo, b->lo + b->n,
                                               col_lo, L->bn);
        sim_smem_fwd_step(c->c, S->partition, L->warps, b->n, cols, d, S->es);
        sim_flops(c->c, SIM_FL_FA2_FWD_STEP, b->n, cols, d, masked);
        sim_flops_mods(c->c, &S->mods, 0, b->n, cols, masked);
        if (++b->step == b->nsteps)
            b->phase = 2;
        return 1;
    }
    default: /* epilogue: O_i = acc / l and LSE_i, once */
        sim_flops(c->c, SIM_FL_FA2_FWD_END, b->n, 0, d, 0);
        sim_write(c, FA2_SIM_T_O, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        sim_write(c, FA2_SIM_T_LSE, b->slice, b->lo, b->n, 0, 4, SIM_REGS);
        b->phase = SIM_DONE;
        return 0;
    }
}

/* ---- backward: preprocess -------------------------------------------- */

static int pre_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim;
    sim_read(c, FA2_SIM_T_O, b->slice, b->lo, b->n, 0, S->E, SIM_REGS);
    sim_read(c, FA2_SIM_T_DO, b->slice, b->lo, b->n, 0, S->E, SIM_REGS);
    sim_flops(c->c, SIM_FL_BWD_PRE, b->n, 0, d, 0);
    sim_write(c, FA2_SIM_T_D, b->slice, b->lo, b->n, 0, 4, SIM_REGS);
    sim_write(c, FA2_SIM_T_DQ_ACCUM, b->slice, b->lo, b->n, 0, 4 * d, SIM_REGS);
    if (S->det) /* the second accumulator: slices after the first's */
        sim_write(c, FA2_SIM_T_DQ_ACCUM, b->slice + S->p.num_seqs * S->p.heads_q, b->lo,
                  b->n, 0, 4 * d, SIM_REGS);
    b->phase = SIM_DONE;
    return 0;
}

/* ---- backward: the main kernel -------------------------------------------------- */

static void bwd_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                     int64_t tile)
{
    const sim_setup *S = c->S;
    const fa2_problem *p = &S->p;
    /* deterministic mode: key blocks launch in descending order (the CUDA
     * kernels' bwd_block_of) */
    if (S->det)
        tile = L->tiles - 1 - tile;
    b->slice = slice;
    b->seq = slice / p->heads_kv;
    b->head = slice % p->heads_kv;
    b->blk = tile;
    b->s = fa2_problem_seq(p, b->seq);
    b->lo = tile * L->bn;
    b->n = sim_tile_rows(b->s.seqlen_k, tile, L->bn);
    if (b->n == 0) {
        b->phase = SIM_DONE;
        return;
    }
    b->mask = fa2_problem_mask(p, &b->s);
    sim_block_visit(b, fa2_bwd_q_blocks(&b->mask, tile, L->bm, L->bn), S->group);
    b->j = S->det ? fa2_bwd_q_start(&b->mask, tile, L->bm, L->bn) : b->range.lo;
}

static int bwd_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim;
    switch (b->phase) {
    case 0: /* K_j and V_j stay resident */
        sim_read(c, FA2_SIM_T_K, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_V, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        b->phase = b->nsteps > 0 ? 1 : 2;
        return 1;
    case 1: { /* query head g of the group, query block i */
        const int64_t nq = fa2_block_count(b->range);
        const int64_t h = b->head * S->group + b->step / nq;
        const int64_t i = fa2_bwd_q_block_at(b->range, b->j, b->step % nq);
        const int64_t qslice = b->seq * S->p.heads_q + h;
        const int64_t row_lo = i * L->bm;
        const int64_t rows = sim_tile_rows(b->s.seqlen_q, i, L->bm);
        sim_read(c, FA2_SIM_T_Q, qslice, row_lo, rows, 0, S->E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_DO, qslice, row_lo, rows, 0, S->E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_LSE, qslice, row_lo, rows, 0, 4, SIM_REGS);
        sim_read(c, FA2_SIM_T_D, qslice, row_lo, rows, 0, 4, SIM_REGS);
        const int masked = fa2_tile_needs_mask(&b->mask, row_lo, row_lo + rows,
                                               b->lo, L->bn);
        sim_smem_bwd_step(c->c, L->warps, rows, b->n, d, S->es);
        sim_flops(c->c, SIM_FL_FA2_BWD_STEP, rows, b->n, d, masked);
        sim_flops_mods(c->c, &S->mods, 1, rows, b->n, masked);
        /* deterministic: chain 1's shares go to the second accumulator */
        const int chain = S->det && b->j > i;
        sim_atomic_add(c, FA2_SIM_T_DQ_ACCUM,
                       qslice + (chain ? S->p.num_seqs * S->p.heads_q : 0), row_lo, rows,
                       4 * d);
        if (++b->step == b->nsteps)
            b->phase = 2;
        return 1;
    }
    default: /* dK_j (scaled) and dV_j, once */
        sim_flops(c->c, SIM_FL_SCALE, b->n, 0, d, 0);
        sim_write(c, FA2_SIM_T_DK, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        sim_write(c, FA2_SIM_T_DV, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        b->phase = SIM_DONE;
        return 0;
    }
}

/* ---- the launches ------------------------------------------------------------------ */

int sim_fa2_launches(const sim_setup *S, fa2_sim_pass pass, sim_launch *out)
{
    const fa2_problem *p = &S->p;
    const int64_t d = p->head_dim, es = S->es;
    if (pass == FA2_SIM_PASS_FWD) {
        sim_launch L = {0};
        const sim_tiles t = S->fwd;
        L.name = "fa2_fwd";
        L.slices = p->num_seqs * p->heads_q;
        L.tiles = fa2_num_blocks(p->max_seqlen_q, t.bm);
        L.warps = t.warps;
        L.bm = L.qrows = t.bm;
        L.bn = L.krows = t.bn;
        /* Q, and K and V double-buffered, rows padded as the kernel pads
         * them (gpu/fwd_config.h); split-K adds its reduction buffer. The
         * warp-specialised kernel: Q resident, K and V in a ring of
         * FA2_FWD90_STAGES, O staged through its own buffer where that
         * fits, rows of the head dim's kernel (64, 128 or 256 columns);
         * its producer warpgroup loads Q once and each K/V tile once,
         * exactly the bytes the split-Q schedule below requests, and its
         * consumers' tensor-core and CUDA-core work overlap (L.overlap). */
        if (S->fwd_ws) {
            const int64_t hd = fa2_fwd90_kernel_head_dim((int)d);
            const int64_t o = FA2_FWD90_SEPARATE_O(hd, t.bm / 64) ? t.bm : 0;
            L.smem = ((int64_t)t.bm + o + 2 * FA2_FWD90_STAGES(hd) * (int64_t)t.bn) * hd * es;
            L.overlap = 1;
        } else {
            const int64_t cols = FA2_FWD_SMEM_COLS(fa2_fwd_kernel_head_dim((int)d));
            L.smem = ((int64_t)t.bm + 4 * (int64_t)t.bn) * cols * es;
            if (S->partition == FA2_SIM_SPLIT_K)
                L.smem += (int64_t)t.warps * t.bm * (d + 2) * 4;
        }
        L.init = fwd_init;
        L.step = fwd_step;
        out[0] = L;
        return 1;
    }
    const sim_tiles t = S->bwd;
    out[0] = sim_rows_launch(S, "fa2_bwd_preprocess", t.bm, pre_step);
    sim_launch L = {0};
    L.name = "fa2_bwd";
    L.slices = p->num_seqs * p->heads_kv;
    L.tiles = fa2_num_blocks(p->max_seqlen_k, t.bn);
    L.warps = t.warps;
    L.bm = L.qrows = t.bm;
    L.bn = L.krows = t.bn;
    /* K, V, Q, dO, and P, dS */
    L.smem = (2 * (int64_t)t.bn + 2 * (int64_t)t.bm) * d * es +
             2 * (int64_t)t.bm * t.bn * es;
    L.init = bwd_init;
    L.step = bwd_step;
    out[1] = L;
    out[2] = sim_dq_convert_launch(S, "fa2_bwd_postprocess", t.bm);
    return 3;
}
