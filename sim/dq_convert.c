/* dq_convert.c — the launches that work row by row on the query side, one
 * block per (sequence, query head, bm rows): the frame FA2's backward
 * preprocess uses (sched_fa2.c), and the dQ conversion FA2's postprocess
 * and FA1's backward share, dQ = scale * dQaccum in the operand dtype. */
#include "config.h"
#include "sim.h"

static void rows_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                      int64_t tile)
{
    b->phase = sim_query_tile(c->S, L, b, slice, tile) > 0 ? 0 : SIM_DONE;
}

/* dQ = scale * dQaccum, rounded to the dtype (FA2 and FA1 alike). */
static int post_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim;
    sim_read(c, FA2_SIM_T_DQ_ACCUM, b->slice, b->lo, b->n, 0, 4 * d, SIM_REGS);
    if (S->det) /* FA2 deterministic: chain 0 + chain 1 */
        sim_read(c, FA2_SIM_T_DQ_ACCUM, b->slice + S->p.num_seqs * S->p.heads_q, b->lo,
                 b->n, 0, 4 * d, SIM_REGS);
    sim_flops(c->c, SIM_FL_SCALE, b->n, 0, d, 0);
    sim_write(c, FA2_SIM_T_DQ, b->slice, b->lo, b->n, 0, S->E, SIM_REGS);
    b->phase = SIM_DONE;
    return 0;
}

sim_launch sim_rows_launch(const sim_setup *S, const char *name, int bm,
                              sim_step_fn step)
{
    sim_launch L = {0};
    L.name = name;
    L.slices = S->p.num_seqs * S->p.heads_q;
    L.tiles = fa2_num_blocks(S->p.max_seqlen_q, bm);
    L.warps = 4;
    L.bm = L.qrows = bm;
    L.bn = L.krows = 0;
    L.smem = 0;
    L.init = rows_init;
    L.step = step;
    return L;
}

/* FA2's postprocess, and FA1's conversion of its fp32 dQ. */
sim_launch sim_dq_convert_launch(const sim_setup *S, const char *name, int bm)
{
    return sim_rows_launch(S, name, bm, post_step);
}
