/* sched_fa1.c — FlashAttention(-1)'s schedules at tile granularity (FA
 * paper, Algorithms 1 and 4 with the block-sparse skipping of its section
 * 3.3, here the shared tile logic): one thread block per (sequence, head),
 * parallel over batch and heads only, the key/value blocks in the OUTER
 * loop, and the running output and statistics kept in global memory.
 *
 * Tiles: Bc = ceil(M / 4d) key rows, Br = min(Bc, d) query rows, M the SRAM
 * size in elements (args.c), unless given.
 *
 * Forward, per (sequence, query head):
 *     write O = 0, l = 0, m = -inf                 (Algorithm 1, line 2)
 *     for each key block j:
 *         load K_j, V_j                            (line 6)
 *         for each query block i that sees j (fa2_bwd_q_blocks), ascending:
 *             load Q_i, O_i, l_i, m_i              (line 8)
 *             S, m~, P~, l~, m_new, l_new, O_i     (lines 9-11, on chip)
 *             write O_i, l_i, m_i                  (lines 12-13)
 *
 * Backward, per (sequence, key/value head) (Algorithm 4), then a launch
 * converting the fp32 dQ to the dtype:
 *     write dQ = 0 (fp32) for the group's query heads      (line 5)
 *     for each key block j:
 *         load K_j, V_j                                    (line 7)
 *         for each query head of the group, each query block i that sees j:
 *             load Q_i, O_i, dO_i, dQ_i, l_i, m_i          (line 10)
 *             S, P, dV_j +=, dP, D_i, dS, dK_j +=          (lines 11-20)
 *             write dQ_i += scale dS K_j (fp32)            (line 21)
 *         write dK_j, dV_j                                 (line 24)
 * dQ is read and written as fp32 (the FA1 implementation's accumulator; the
 * block owns its head, so no atomics). l and m are fp32; O is the dtype. */
#include "config.h"
#include "sim.h"

static void fa1_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                     int64_t tile, int64_t heads)
{
    const fa2_problem *p = &c->S->p;
    b->slice = slice;
    b->seq = slice / heads;
    b->head = slice % heads;
    b->s = fa2_problem_seq(p, b->seq);
    b->mask = fa2_problem_mask(p, &b->s);
    b->j = 0;
    b->phase = 0;
}

static void fwd_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                     int64_t tile)
{
    fa1_init(c, L, b, slice, tile, c->S->p.heads_q);
}

static void bwd_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                     int64_t tile)
{
    fa1_init(c, L, b, slice, tile, c->S->p.heads_kv);
}

/* Write rows 0 .. n-1 of a query-side tensor from registers, tile by tile. */
static void write_all(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t n,
                      int bm, int64_t row_bytes)
{
    for (int64_t lo = 0; lo < n; lo += bm)
        sim_write(c, t, slice, lo, sim_min(bm, n - lo), 0, row_bytes, SIM_REGS);
}

/* Load K_j, V_j and find the query blocks that see j; the next phase. */
static int start_key_block(sim_ctx *c, const sim_launch *L, sim_block *b,
                           int64_t kslice, int64_t group)
{
    const sim_setup *S = c->S;
    const int64_t cols = sim_tile_rows(b->s.seqlen_k, b->j, L->bn);
    sim_read(c, FA2_SIM_T_K, kslice, b->j * L->bn, cols, 0, S->E, SIM_SMEM);
    sim_read(c, FA2_SIM_T_V, kslice, b->j * L->bn, cols, 0, S->E, SIM_SMEM);
    b->lo = b->j * L->bn;
    b->n = cols;
    b->range = fa2_bwd_q_blocks(&b->mask, b->j, L->bm, L->bn);
    b->nsteps = group * fa2_block_count(b->range);
    b->step = 0;
    return b->nsteps > 0 ? 2 : 3;
}

static int next_key_block(const sim_launch *L, sim_block *b)
{
    b->j++;
    b->phase = b->j < fa2_num_blocks(b->s.seqlen_k, L->bn) ? 1 : SIM_DONE;
    return b->phase != SIM_DONE;
}

static int fwd_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim, E = S->E;
    switch (b->phase) {
    case 0: /* O = 0, l = 0, m = -inf in HBM */
        write_all(c, FA2_SIM_T_O, b->slice, b->s.seqlen_q, L->bm, E);
        write_all(c, FA2_SIM_T_L, b->slice, b->s.seqlen_q, L->bm, 4);
        write_all(c, FA2_SIM_T_M, b->slice, b->s.seqlen_q, L->bm, 4);
        b->j = -1;
        return next_key_block(L, b);
    case 1:
        b->phase = start_key_block(c, L, b, b->seq * S->p.heads_kv + b->head / S->group, 1);
        return b->phase == 2 ? 1 : next_key_block(L, b);
    default: { /* query block i against key block j */
        const int64_t i = b->range.lo + b->step;
        const int64_t row_lo = i * L->bm;
        const int64_t rows = sim_tile_rows(b->s.seqlen_q, i, L->bm);
        sim_read(c, FA2_SIM_T_Q, b->slice, row_lo, rows, 0, E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_O, b->slice, row_lo, rows, 0, E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_L, b->slice, row_lo, rows, 0, 4, SIM_REGS);
        sim_read(c, FA2_SIM_T_M, b->slice, row_lo, rows, 0, 4, SIM_REGS);
        const int masked = fa2_tile_needs_mask(&b->mask, row_lo, row_lo + rows,
                                               b->lo, L->bn);
        sim_smem_fwd_step(c->c, S->partition, L->warps, rows, b->n, d, S->es);
        c->c->smem_read += rows * E; /* the old O_i, for its update */
        sim_flops(c->c, SIM_FL_FA1_FWD_STEP, rows, b->n, d, masked);
        sim_write(c, FA2_SIM_T_O, b->slice, row_lo, rows, 0, E, SIM_SMEM);
        sim_write(c, FA2_SIM_T_L, b->slice, row_lo, rows, 0, 4, SIM_REGS);
        sim_write(c, FA2_SIM_T_M, b->slice, row_lo, rows, 0, 4, SIM_REGS);
        if (++b->step < b->nsteps)
            return 1;
        return next_key_block(L, b);
    }
    }
}

static int bwd_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim, E = S->E;
    switch (b->phase) {
    case 0: /* dQ = 0 for every query head of the group */
        for (int64_t g = 0; g < S->group; g++)
            write_all(c, FA2_SIM_T_DQ_ACCUM, b->seq * S->p.heads_q + b->head * S->group + g,
                      b->s.seqlen_q, L->bm, 4 * d);
        b->j = -1;
        return next_key_block(L, b);
    case 1:
        b->phase = start_key_block(c, L, b, b->slice, S->group);
        return 1;
    case 2: { /* query head g, query block i against key block j */
        const int64_t nq = fa2_block_count(b->range);
        const int64_t h = b->head * S->group + b->step / nq;
        const int64_t i = b->range.lo + b->step % nq;
        const int64_t qslice = b->seq * S->p.heads_q + h;
        const int64_t row_lo = i * L->bm;
        const int64_t rows = sim_tile_rows(b->s.seqlen_q, i, L->bm);
        sim_read(c, FA2_SIM_T_Q, qslice, row_lo, rows, 0, E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_O, qslice, row_lo, rows, 0, E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_DO, qslice, row_lo, rows, 0, E, SIM_SMEM);
        sim_read(c, FA2_SIM_T_DQ_ACCUM, qslice, row_lo, rows, 0, 4 * d, SIM_SMEM);
        sim_read(c, FA2_SIM_T_L, qslice, row_lo, rows, 0, 4, SIM_REGS);
        sim_read(c, FA2_SIM_T_M, qslice, row_lo, rows, 0, 4, SIM_REGS);
        const int masked = fa2_tile_needs_mask(&b->mask, row_lo, row_lo + rows,
                                               b->lo, L->bn);
        sim_smem_bwd_step(c->c, L->warps, rows, b->n, d, S->es);
        c->c->smem_read += 2 * rows * E + rows * 4 * d; /* O_i, dO_i for D_i; dQ_i */
        sim_flops(c->c, SIM_FL_FA1_BWD_STEP, rows, b->n, d, masked);
        sim_write(c, FA2_SIM_T_DQ_ACCUM, qslice, row_lo, rows, 0, 4 * d, SIM_SMEM);
        if (++b->step == b->nsteps)
            b->phase = 3;
        return 1;
    }
    default: /* dK_j (scaled) and dV_j */
        sim_flops(c->c, SIM_FL_SCALE, b->n, 0, d, 0);
        sim_write(c, FA2_SIM_T_DK, b->slice, b->lo, b->n, 0, E, SIM_SMEM);
        sim_write(c, FA2_SIM_T_DV, b->slice, b->lo, b->n, 0, E, SIM_SMEM);
        return next_key_block(L, b);
    }
}

int sim_fa1_launches(const sim_setup *S, fa2_sim_pass pass, sim_launch *out)
{
    const fa2_problem *p = &S->p;
    const sim_tiles t = S->fwd;
    const int64_t d = p->head_dim, es = S->es;
    sim_launch L = {0};
    L.tiles = 1;
    L.warps = t.warps;
    L.bm = L.qrows = t.bm;
    L.bn = L.krows = t.bn;
    if (pass == FA2_SIM_PASS_FWD) {
        L.name = "fa1_fwd";
        L.slices = p->num_seqs * p->heads_q;
        /* Q_i, O_i, K_j, V_j; split-K's reduction buffer */
        L.smem = (2 * (int64_t)t.bm + 2 * (int64_t)t.bn) * d * es;
        if (S->partition == FA2_SIM_SPLIT_K)
            L.smem += (int64_t)t.warps * t.bm * (d + 2) * 4;
        L.init = fwd_init;
        L.step = fwd_step;
        out[0] = L;
        return 1;
    }
    L.name = "fa1_bwd";
    L.slices = p->num_seqs * p->heads_kv;
    /* K_j, V_j, Q_i, O_i, dO_i, the fp32 dQ_i, P and dS */
    L.smem = (2 * (int64_t)t.bn + 3 * (int64_t)t.bm) * d * es +
             (int64_t)t.bm * d * 4 + 2 * (int64_t)t.bm * t.bn * es;
    L.init = bwd_init;
    L.step = bwd_step;
    out[0] = L;
    out[1] = sim_dq_convert_launch(S, "fa1_bwd_convert", t.bm);
    return 2;
}
