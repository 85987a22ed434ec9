/* sched_std.c — standard attention at tile granularity: the FA paper's
 * Algorithm 0 (forward) and its Algorithm 3 (backward), each matrix product
 * a tiled GEMM kernel and each softmax a row kernel, with S, P, dP and dS
 * (the dtype) written to and read back from global memory. Every query-key
 * pair is computed: the mask is applied element-wise inside the softmax
 * (as a framework's math path does), so causal and window masks save no
 * traffic. GEMM tiles are block_m x block_n (default 128 x 128); a GEMM
 * block reads its A and B tiles once and writes its C tile once.
 *
 * Forward, per (sequence, query head):
 *   std_qk        S_ij = Q_i K_j^T          block (i, j): read Q_i, K_j; write S_ij
 *   std_softmax   P = softmax(mask(S))      block i: read S_i*, write P_i*
 *   std_pv        O_i = sum_j P_ij V_j      block i: read P_ij, V_j for all j; write O_i
 * Backward (reads the forward's P):
 *   std_dv        dV_j = sum_{h in group, i} P_ij^T dO_i   block (kv head, j)
 *   std_dp        dP_ij = dO_i V_j^T                        block (i, j)
 *   std_softmax_bwd  dS = P o (dP - rowsum(dP o P))         block i
 *   std_dq        dQ_i = sum_j dS_ij K_j                    block i
 *   std_dk        dK_j = sum_{h in group, i} dS_ij^T Q_i    block (kv head, j)
 * The softmax kernels hold a block's rows on chip (S read once, P written
 * once) and work in registers. */
#include "config.h"
#include "sim.h"

enum {
    STD_QK, STD_SOFTMAX, STD_PV, STD_DV, STD_DP, STD_SOFTMAX_BWD, STD_DQ, STD_DK
};

typedef struct std_kind {
    const char *name;
    int kv_slices; /* one block per (sequence, kv head, key block)        */
    int pairs;     /* one block per (i, j) tile; else per query block i   */
} std_kind;

static const std_kind kinds[] = {
    [STD_QK] = {"std_qk", 0, 1},
    [STD_SOFTMAX] = {"std_softmax", 0, 0},
    [STD_PV] = {"std_pv", 0, 0},
    [STD_DV] = {"std_dv", 1, 0},
    [STD_DP] = {"std_dp", 0, 1},
    [STD_SOFTMAX_BWD] = {"std_softmax_bwd", 0, 0},
    [STD_DQ] = {"std_dq", 0, 0},
    [STD_DK] = {"std_dk", 1, 0},
};

static int problem_masked(const fa2_mask *m)
{
    return m->window_left >= 0 || m->window_right >= 0;
}

static void std_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                     int64_t tile)
{
    const sim_setup *S = c->S;
    const fa2_problem *p = &S->p;
    const std_kind *k = &kinds[L->kind];
    const int64_t heads = k->kv_slices ? p->heads_kv : p->heads_q;
    b->slice = slice;
    b->seq = slice / heads;
    b->head = slice % heads;
    b->s = fa2_problem_seq(p, b->seq);
    b->mask = fa2_problem_mask(p, &b->s);
    const int64_t tr = fa2_num_blocks(b->s.seqlen_q, L->bm);
    const int64_t tc = fa2_num_blocks(b->s.seqlen_k, L->bn);
    b->step = 0;
    b->phase = 0;
    if (k->pairs) { /* tile = i * Tc(longest) + j */
        const int64_t tc_max = fa2_num_blocks(p->max_seqlen_k, L->bn);
        b->blk = tile / tc_max; /* i */
        b->j = tile % tc_max;
        if (b->blk >= tr || b->j >= tc)
            b->phase = SIM_DONE;
        b->nsteps = 1;
    } else if (k->kv_slices) { /* key block j, over the group's (h, i) */
        b->blk = tile;
        b->lo = tile * L->bn;
        b->n = sim_tile_rows(b->s.seqlen_k, tile, L->bn);
        if (b->n == 0)
            b->phase = SIM_DONE;
        b->nsteps = S->group * tr;
    } else { /* query block i, over key blocks j */
        b->blk = tile;
        b->lo = tile * L->bm;
        b->n = sim_tile_rows(b->s.seqlen_q, tile, L->bm);
        if (b->n == 0)
            b->phase = SIM_DONE;
        b->nsteps = tc;
        /* a softmax with no keys has nothing to do; a GEMM still writes */
        if (b->nsteps == 0 && (L->kind == STD_SOFTMAX ||
                               L->kind == STD_SOFTMAX_BWD))
            b->phase = SIM_DONE;
    }
}

static int std_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const fa2_problem *p = &S->p;
    const int64_t d = p->head_dim, E = S->E, es = S->es;
    const int kind = L->kind;
    const int64_t hk = b->head / S->group; /* for query-head slices */

    if (kinds[kind].pairs) { /* S = Q K^T or dP = dO V^T, one tile */
        const int64_t i = b->blk, j = b->j;
        const int64_t rows = sim_tile_rows(b->s.seqlen_q, i, L->bm);
        const int64_t cols = sim_tile_rows(b->s.seqlen_k, j, L->bn);
        const int64_t kslice = b->seq * p->heads_kv + hk;
        const int qk = kind == STD_QK;
        sim_read(c, qk ? FA2_SIM_T_Q : FA2_SIM_T_DO, b->slice, i * L->bm, rows, 0,
                 E, SIM_SMEM);
        sim_read(c, qk ? FA2_SIM_T_K : FA2_SIM_T_V, kslice, j * L->bn, cols, 0, E,
                 SIM_SMEM);
        sim_smem_gemm(c->c, L->warps, rows, cols, d, es);
        sim_flops(c->c, SIM_FL_GEMM, rows, cols, d, 0);
        sim_write(c, qk ? FA2_SIM_T_S : FA2_SIM_T_DP, b->slice, i * L->bm, rows, j,
                  cols * es, SIM_SMEM);
        b->phase = SIM_DONE;
        return 0;
    }

    if (kinds[kind].kv_slices) { /* dV_j or dK_j: sum over (h, i) */
        if (b->step < b->nsteps) {
            const int64_t tr = fa2_num_blocks(b->s.seqlen_q, L->bm);
            const int64_t h = b->head * S->group + b->step / tr;
            const int64_t i = b->step % tr;
            const int64_t qslice = b->seq * p->heads_q + h;
            const int64_t rows = sim_tile_rows(b->s.seqlen_q, i, L->bm);
            const int dv = kind == STD_DV;
            sim_read(c, dv ? FA2_SIM_T_P : FA2_SIM_T_DS, qslice, i * L->bm, rows,
                     b->blk, b->n * es, SIM_SMEM);
            sim_read(c, dv ? FA2_SIM_T_DO : FA2_SIM_T_Q, qslice, i * L->bm, rows, 0,
                     E, SIM_SMEM);
            sim_smem_gemm(c->c, L->warps, b->n, d, rows, es);
            sim_flops(c->c, SIM_FL_GEMM, b->n, rows, d, 0);
            b->step++;
            return 1;
        }
        if (kind == STD_DK)
            sim_flops(c->c, SIM_FL_SCALE, b->n, 0, d, 0);
        sim_write(c, kind == STD_DV ? FA2_SIM_T_DV : FA2_SIM_T_DK, b->slice, b->lo,
                  b->n, 0, E, SIM_SMEM);
        b->phase = SIM_DONE;
        return 0;
    }

    /* row kernels, query block i, key block j = step */
    const int64_t j = b->step;
    const int64_t cols = sim_tile_rows(b->s.seqlen_k, j, L->bn);
    const int64_t kslice = b->seq * p->heads_kv + hk;
    switch (kind) {
    case STD_SOFTMAX:
        sim_read(c, FA2_SIM_T_S, b->slice, b->lo, b->n, j, cols * es, SIM_REGS);
        sim_flops(c->c, SIM_FL_STD_SOFTMAX, b->n, cols, d, problem_masked(&b->mask));
        sim_write(c, FA2_SIM_T_P, b->slice, b->lo, b->n, j, cols * es, SIM_REGS);
        if (++b->step < b->nsteps)
            return 1;
        sim_flops(c->c, SIM_FL_STD_SOFTMAX_END, b->n, 0, d, 0);
        b->phase = SIM_DONE;
        return 0;
    case STD_SOFTMAX_BWD:
        sim_read(c, FA2_SIM_T_P, b->slice, b->lo, b->n, j, cols * es, SIM_REGS);
        sim_read(c, FA2_SIM_T_DP, b->slice, b->lo, b->n, j, cols * es, SIM_REGS);
        sim_flops(c->c, SIM_FL_STD_SOFTMAX_BWD, b->n, cols, d, 0);
        sim_write(c, FA2_SIM_T_DS, b->slice, b->lo, b->n, j, cols * es, SIM_REGS);
        if (++b->step < b->nsteps)
            return 1;
        b->phase = SIM_DONE;
        return 0;
    default: /* STD_PV, STD_DQ: C_i = sum_j A_ij B_j */
        if (b->step < b->nsteps) {
            const int pv = kind == STD_PV;
            sim_read(c, pv ? FA2_SIM_T_P : FA2_SIM_T_DS, b->slice, b->lo, b->n, j,
                     cols * es, SIM_SMEM);
            sim_read(c, pv ? FA2_SIM_T_V : FA2_SIM_T_K, kslice, j * L->bn, cols, 0, E,
                     SIM_SMEM);
            sim_smem_gemm(c->c, L->warps, b->n, d, cols, es);
            sim_flops(c->c, SIM_FL_GEMM, b->n, cols, d, 0);
            b->step++;
            return 1;
        }
        if (kind == STD_DQ)
            sim_flops(c->c, SIM_FL_SCALE, b->n, 0, d, 0);
        sim_write(c, kind == STD_PV ? FA2_SIM_T_O : FA2_SIM_T_DQ, b->slice, b->lo,
                  b->n, 0, E, SIM_SMEM);
        b->phase = SIM_DONE;
        return 0;
    }
}

int sim_std_launches(const sim_setup *S, fa2_sim_pass pass, sim_launch *out)
{
    static const int fwd[] = {STD_QK, STD_SOFTMAX, STD_PV};
    static const int bwd[] = {STD_DV, STD_DP, STD_SOFTMAX_BWD, STD_DQ, STD_DK};
    const int *list = pass == FA2_SIM_PASS_FWD ? fwd : bwd;
    const int n = pass == FA2_SIM_PASS_FWD ? 3 : 5;
    const fa2_problem *p = &S->p;
    const sim_tiles t = S->fwd;
    const int64_t d = p->head_dim, es = S->es, bm = t.bm, bn = t.bn;
    const int64_t tr = fa2_num_blocks(p->max_seqlen_q, t.bm);
    const int64_t tc = fa2_num_blocks(p->max_seqlen_k, t.bn);
    for (int x = 0; x < n; x++) {
        const std_kind *k = &kinds[list[x]];
        sim_launch L = {0};
        L.name = k->name;
        L.kind = list[x];
        L.slices = p->num_seqs * (k->kv_slices ? p->heads_kv : p->heads_q);
        L.tiles = k->pairs ? tr * tc : k->kv_slices ? tc : tr;
        L.warps = t.warps;
        L.bm = L.qrows = t.bm;
        L.bn = L.krows = t.bn;
        switch (list[x]) {
        case STD_QK:
        case STD_DP: L.smem = (bm + bn) * d * es; break;  /* A and B tiles */
        case STD_PV:
        case STD_DQ: L.smem = (bm * bn + bn * d) * es; break;
        case STD_DV:
        case STD_DK: L.smem = (bn * bm + bm * d) * es; break;
        default: L.smem = 0; break;                       /* registers */
        }
        L.init = std_init;
        L.step = std_step;
        out[x] = L;
    }
    return n;
}
