/* tiled_bwd.c — the FlashAttention-2 backward pass on the CPU, step for
 * step as the CUDA kernels run it (FA2 paper, Algorithm 2; doc/design.md
 * "Backward"):
 *
 *   preprocess:  D_i = rowsum(dO_i o O_i)            (float32)
 *   main, one work item per (sequence, key head, key block j):
 *     dK_j = dV_j = 0                                (float32)
 *     for each query head of the group, for each query block i that sees
 *     key block j (shared tile logic), in ascending order:
 *       S    = Q_i K_j^T, masked on boundary tiles
 *       P    = exp2(S c - LSE_i log2 e)              (P from the saved LSE)
 *       dV_j += round(P)^T dO_i
 *       dP   = dO_i V_j^T
 *       dS   = P o (dP - D_i)
 *       dK_j += round(dS)^T Q_i
 *       dQ_i += round(dS) K_j                        (float32, shared)
 *     dK_j = round(scale dK_j),  dV_j = round(dV_j)
 *   postprocess: dQ = round(scale dQ)
 *
 * dQ_i receives one tile from every key block that sees it, and key blocks
 * run in parallel. Each query block's rows of the float32 accumulator are
 * guarded by a word: in fast mode it is a spin lock (tiles add in any
 * order). In deterministic mode the CUDA kernels' order is followed
 * exactly (lib/fa2_tile.h, fa2_bwd_dq_turn): key block j walks its query
 * blocks from fa2_bwd_q_start, wrapping round; each dQ block has two
 * chains, each with its own float32 accumulator and turn word, summed in
 * descending j, and the postprocess adds chain 0 + chain 1; so the sum is
 * taken in one fixed order whatever the thread count, the same as the
 * GPU's. Work items are handed out in descending key-block order, and a key
 * block only waits for key block j + 1, which has always been claimed
 * before it: the waiting cannot deadlock.
 *
 * CPU layout: the resident key block is kept as K_j, K_j^T and V_j^T, so
 * that all five tile products are plain or A-transposed matrix products
 * (the micro-kernels of cpu/tile_product.h); element loops are vectorised with
 * the same functions as the forward (cpu/fa2_cpu_simd.h). */
#include "config.h"
#include "fa2_internal.h"
#include "fa2_cpu.h"
#include "fa2_cpu_simd.h"

#include "tile_product.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct bwd_scratch {
    float *k, *kt, *vt; /* [Bc][d], [d][Bc], [d][Bc]: the resident K_j, V_j */
    float *dk, *dv;     /* [Bc][d] their gradients, float32                */
    float *q, *dO;      /* [Br][d] the query tile and its output gradient  */
    float *p, *ds;      /* [Br][Bc] P, then dP -> dS (float32)             */
    float *pr, *dsr;    /* [Br][Bc] round(P), round(dS) for the products   */
    float *dq;          /* [Br][d] this key block's share of dQ_i          */
    float *lse, *D;     /* [Br] per-row LSE * log2(e) and D                */
    float *g;           /* [Br][Bc] du/d(scale x) of softcap (modifiers)   */
    uint8_t *keep;      /* [Br][Bc] dropout's decisions, recomputed        */
    float *row;         /* [d] a row on its way into a transposed tile     */
    int64_t *vis_lo, *vis_hi; /* [Br] each row's visible keys (masking)    */
} bwd_scratch;

typedef struct tiled_bwd_job {
    const fa2_bwd_args *a;
    const fa2_problem *p;
    int block_m, block_n;
    int64_t m_blocks, n_blocks; /* of the longest sequences */
    float *D;                   /* dense [B_dim][Hq][Nq_dim]         */
    float *dsink_part;          /* [num_seqs][Hq] shares of dsinks   */
    fa2_tensor dq_acc;          /* float32, shaped like q            */
    fa2_tensor dq_acc2;         /* deterministic: chain 1's, the same */
    atomic_int *guard;          /* two per (seq, head, query block)  */
    fa2_tile_kernel kern;       /* the tile products' micro-kernel   */
    bwd_scratch *scratch;
} tiled_bwd_job;

static float *D_at(const tiled_bwd_job *job, const fa2_seq *s, int64_t h,
                   int64_t row)
{
    return job->D + (s->batch * job->p->heads_q + h) * job->a->q.shape[1] +
           s->q_start + row;
}

/* Tell the trace callback (fa2 trace --pass bwd) about one step. */
static void trace_bwd(const fa2_problem *p, const bwd_scratch *w,
                      fa2_trace_kind kind, int64_t b, int64_t h, int64_t m_block,
                      int64_t n_block, int64_t row_lo, int64_t col_lo,
                      int64_t rows, int64_t cols, int block_n, const float *tile,
                      const float *vec)
{
    fa2_trace_event ev = {0};
    ev.kind = kind;
    ev.seq = b;
    ev.head = h;
    ev.m_block = m_block;
    ev.n_block = n_block;
    ev.row_lo = row_lo;
    ev.col_lo = col_lo;
    ev.rows = rows;
    ev.cols = cols;
    ev.tile = tile;
    ev.row_stride = block_n;
    ev.col_stride = 1;
    ev.vec = vec;
    ev.acc = w ? w->dq : NULL;
    ev.dk = w ? w->dk : NULL;
    ev.dv = w ? w->dv : NULL;
    ev.d = p->head_dim;
    p->trace(p->trace_user, &ev);
}

/* Preprocess, one item per (sequence, query head): D = rowsum(dO o O), and
 * clear this head's rows of the dQ accumulator. */
static void preprocess_item(void *ctx, int64_t item, int worker)
{
    const tiled_bwd_job *job = ctx;
    const fa2_bwd_args *a = job->a;
    const int64_t d = job->p->head_dim;
    const int64_t h = item % job->p->heads_q;
    const fa2_seq s = fa2_problem_seq(job->p, item / job->p->heads_q);
    float *o = job->scratch[worker].q, *dO = job->scratch[worker].dO;
    for (int64_t i = 0; i < s.seqlen_q; i++) {
        fa2_cpu_load_row(&a->o, &s, s.q_start + i, h, d, o);
        fa2_cpu_load_row(&a->dout, &s, s.q_start + i, h, d, dO);
        float sum = 0.0f;
        for (int64_t c = 0; c < d; c++)
            sum += dO[c] * o[c];
        *D_at(job, &s, h, i) = sum;
        /* the sink's gradient: dsink = -sum_i P_sink,i D_i (fa2_score.h) */
        if (job->dsink_part)
            job->dsink_part[item] -=
                fa2_sink_p(job->p->sinks[h],
                           fa2_bwd_lse_scaled(*fa2_lse_at(&a->lse, s.batch, h,
                                                          s.q_start + i))) * sum;
        float *acc = (float *)job->dq_acc.data +
                     fa2_offset4(&job->dq_acc, s.batch, s.q_start + i, h, 0);
        memset(acc, 0, sizeof(float) * (size_t)d);
        if (job->a->deterministic) {
            acc = (float *)job->dq_acc2.data +
                  fa2_offset4(&job->dq_acc2, s.batch, s.q_start + i, h, 0);
            memset(acc, 0, sizeof(float) * (size_t)d);
        }
    }
    if (job->p->trace)
        trace_bwd(job->p, NULL, FA2_TRACE_BWD_D, item / job->p->heads_q, h, -1,
                  -1, 0, 0, s.seqlen_q, 0, 0, NULL, D_at(job, &s, h, 0));
}

/* dQ_i += tile, under the query block's guard (see the file comment). */
static void add_dq_tile(const tiled_bwd_job *job, const fa2_seq *s,
                        const fa2_mask *mask, int64_t b, int64_t h, int64_t m_block,
                        int64_t n_block, int64_t rows, const float *tile)
{
    const fa2_problem *p = job->p;
    const int64_t d = p->head_dim;
    atomic_int *g = &job->guard[((b * p->heads_q + h) * job->m_blocks + m_block) * 2];
    const fa2_tensor *acc_t = &job->dq_acc;
    fa2_dq_turn turn = {0, 0, 0};
    if (job->a->deterministic) {
        turn = fa2_bwd_dq_turn(mask, m_block, n_block, job->block_m, job->block_n);
        g += turn.chain;
        if (turn.chain)
            acc_t = &job->dq_acc2;
        while (atomic_load_explicit(g, memory_order_acquire) != (int)turn.expect)
            sched_yield();
    } else {
        int free_ = 0;
        while (!atomic_compare_exchange_weak_explicit(
            g, &free_, 1, memory_order_acquire, memory_order_relaxed)) {
            free_ = 0;
            sched_yield();
        }
    }
    const int64_t row0 = s->q_start + m_block * job->block_m;
    for (int64_t i = 0; i < rows; i++) {
        float *acc = (float *)acc_t->data + fa2_offset4(acc_t, s->batch, row0 + i, h, 0);
        for (int64_t c = 0; c < d; c++)
            acc[c] += tile[i * d + c];
    }
    atomic_store_explicit(g, job->a->deterministic ? (int)turn.mine : 0,
                          memory_order_release);
}

/* P = exp2(S c - LSE log2 e) of one row (fa2_bwd_p's arithmetic with the
 * vectorisable exp2), masked entries already -inf; also round(P). */
FA2_CPU_CLONES
static void p_from_lse(float *p, float *pr, int64_t cols, float c, float lse2,
                       fa2_dtype dt)
{
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) {
        p[j] = fa2_simd_exp2(fmaf(p[j], c, -lse2));
        pr[j] = p[j];
    }
    fa2_simd_round_row(pr, cols, dt);
}

/* dS = P o (dP - D_i) of one row, in place over dP; also round(dS). */
FA2_CPU_CLONES
static void ds_row(const float *p, float *ds, float *dsr, int64_t cols, float D,
                   fa2_dtype dt)
{
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) {
        ds[j] = p[j] * (ds[j] - D);
        dsr[j] = ds[j];
    }
    fa2_simd_round_row(dsr, cols, dt);
}

/* The modifiers' share of one tile (only called when one is on): S -> u
 * and du/dx before masking; dropout's decisions for the tile. */
static void logit_tile_bwd(const fa2_problem *p, const fa2_score_mod *sm,
                           bwd_scratch *w, int64_t bh, int64_t row_lo,
                           int64_t rows, int64_t col_lo, int64_t cols, int bn)
{
    for (int64_t i = 0; i < rows; i++) {
        float *si = w->p + i * bn, *gi = w->g + i * bn;
        for (int64_t j = 0; j < cols && p->bwd_logits; j++)
            si[j] = fa2_score_logit_grad(sm, si[j], row_lo + i, col_lo + j, &gi[j]);
        uint8_t *ki = w->keep + i * bn;
        uint32_t kept8 = 0;
        for (int64_t j = 0; j < cols && p->dropout.enabled; j++) {
            const int64_t col = col_lo + j;
            if (j == 0 || (col & 7) == 0)
                kept8 = fa2_dropout_keep8(&p->dropout,
                                          fa2_dropout_words(&p->dropout, bh, row_lo + i, col));
            ki[j] = (uint8_t)((kept8 >> (col & 7)) & 1u);
        }
    }
}

/* dS of one row with modifiers: dP' = z dP / (1 - p) (dropout), dS = P o
 * (dP' - D_i), times du/d(scale x) (softcap); also round(dS). keep or g
 * NULL: that modifier is off. */
static void ds_row_mods(const float *p, float *ds, float *dsr, const float *g,
                        const uint8_t *keep, float rp, int64_t cols, float D,
                        fa2_dtype dt)
{
    for (int64_t j = 0; j < cols; j++) {
        const float dp = !keep ? ds[j] : keep[j] ? FA2_MUL_RN(ds[j], rp) : 0.0f;
        float v = FA2_MUL_RN(p[j], dp - D);
        if (g)
            v = FA2_MUL_RN(v, g[j]);
        ds[j] = v;
        dsr[j] = v;
    }
    fa2_round_buffer(dsr, cols, dt);
}

/* One query block i against the resident key block j (Algorithm 2,
 * lines 11-21). */
static void bwd_tile(const tiled_bwd_job *job, bwd_scratch *w, const fa2_seq *s,
                     const fa2_mask *mask, int64_t b, int64_t h, int64_t m_block,
                     int64_t col_lo, int64_t cols)
{
    const fa2_bwd_args *a = job->a;
    const fa2_problem *p = job->p;
    const int bm = job->block_m, bn = job->block_n;
    const int64_t d = p->head_dim;
    const int64_t row_lo = m_block * bm;
    const int64_t rows = s->seqlen_q - row_lo < bm ? s->seqlen_q - row_lo : bm;

    fa2_cpu_load_tile(&a->q, s, s->q_start, row_lo, rows, h, d, w->q);
    fa2_cpu_load_tile(&a->dout, s, s->q_start, row_lo, rows, h, d, w->dO);
    for (int64_t i = 0; i < rows; i++) {
        w->lse[i] = fa2_bwd_lse_scaled(
            *fa2_lse_at(&a->lse, s->batch, h, s->q_start + row_lo + i));
        w->D[i] = *D_at(job, s, h, row_lo + i);
    }
    /* S = Q_i K_j^T, masked on boundary tiles; P = exp2(S c - LSE log2 e) */
    fa2_product_nn(&job->kern, rows, cols, d, w->q, d, w->kt, bn, w->p, bn, 0);
    const int mods = p->bwd_logits || p->dropout.enabled;
    if (mods) {
        const fa2_score_mod sm = fa2_problem_score_mod(p, s, b, h);
        logit_tile_bwd(p, &sm, w, b * p->heads_q + h, row_lo, rows, col_lo, cols,
                       bn);
    }
    if (fa2_tile_needs_mask(mask, row_lo, row_lo + rows, col_lo, bn))
        fa2_cpu_mask_tile(mask, row_lo, rows, col_lo, cols, w->p, bn, 1, w->vis_lo,
                          w->vis_hi);
    const float c_exp = p->bwd_logits ? FA2_LOG2E_F : p->scale_log2;
    for (int64_t i = 0; i < rows; i++)
        p_from_lse(w->p + i * bn, w->pr + i * bn, cols, c_exp, w->lse[i],
                   p->dtype);
    if (p->dropout.enabled) /* dV sees the kept round(P) only */
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                if (!w->keep[i * bn + j])
                    w->pr[i * bn + j] = 0.0f;
    if (p->trace)
        trace_bwd(p, w, FA2_TRACE_BWD_P, b, h, m_block, col_lo / bn, row_lo, col_lo,
                  rows, cols, bn, w->p, NULL);
    /* dV_j += round(P)^T dO_i */
    fa2_product_tn(&job->kern, cols, d, rows, w->pr, bn, w->dO, d, w->dv, d, 1);
    /* dP = dO_i V_j^T, then dS = P o (dP - D_i) */
    fa2_product_nn(&job->kern, rows, cols, d, w->dO, d, w->vt, bn, w->ds, bn, 0);
    for (int64_t i = 0; i < rows; i++) {
        if (!mods)
            ds_row(w->p + i * bn, w->ds + i * bn, w->dsr + i * bn, cols, w->D[i],
                   p->dtype);
        else
            ds_row_mods(w->p + i * bn, w->ds + i * bn, w->dsr + i * bn,
                        p->softcap > 0.0f ? w->g + i * bn : NULL,
                        p->dropout.enabled ? w->keep + i * bn : NULL,
                        p->dropout.scale, cols, w->D[i], p->dtype);
    }
    if (p->trace)
        trace_bwd(p, w, FA2_TRACE_BWD_DS, b, h, m_block, col_lo / bn, row_lo,
                  col_lo, rows, cols, bn, w->ds, w->D);
    /* dK_j += round(dS)^T Q_i;  dQ_i += round(dS) K_j */
    fa2_product_tn(&job->kern, cols, d, rows, w->dsr, bn, w->q, d, w->dk, d, 1);
    fa2_product_nn(&job->kern, rows, d, cols, w->dsr, bn, w->k, d, w->dq, d, 0);
    if (p->trace)
        trace_bwd(p, w, FA2_TRACE_BWD_ACC, b, h, m_block, col_lo / bn, row_lo,
                  col_lo, rows, cols, bn, NULL, NULL);
    add_dq_tile(job, s, mask, b, h, m_block, col_lo / bn, rows, w->dq);
}

static void main_item(void *ctx, int64_t item, int worker)
{
    const tiled_bwd_job *job = ctx;
    const fa2_bwd_args *a = job->a;
    const fa2_problem *p = job->p;
    bwd_scratch *w = &job->scratch[worker];
    const int bm = job->block_m, bn = job->block_n;
    const int64_t d = p->head_dim;
    const int64_t group = p->heads_q / p->heads_kv;
    /* key-block-major order: the first key blocks (seen by the most query
     * blocks when causal) start first; in deterministic mode the last ones
     * do, because key block j waits for key block j + 1 (see the file
     * comment) */
    const int64_t bh = item % (p->num_seqs * p->heads_kv);
    int64_t n_block = item / (p->num_seqs * p->heads_kv);
    if (a->deterministic)
        n_block = job->n_blocks - 1 - n_block;
    const int64_t hk = bh % p->heads_kv;
    const int64_t b = bh / p->heads_kv;
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);
    const int64_t col_lo = n_block * bn;
    if (col_lo >= s.seqlen_k)
        return;
    const int64_t cols = s.seqlen_k - col_lo < bn ? s.seqlen_k - col_lo : bn;

    fa2_cpu_load_tile(&a->k, &s, s.k_start, col_lo, cols, hk, d, w->k);
    fa2_cpu_load_tile_t(&a->k, &s, s.k_start, col_lo, cols, hk, d, w->kt, bn, w->row);
    fa2_cpu_load_tile_t(&a->v, &s, s.k_start, col_lo, cols, hk, d, w->vt, bn, w->row);
    memset(w->dk, 0, sizeof(float) * (size_t)(cols * d));
    memset(w->dv, 0, sizeof(float) * (size_t)(cols * d));
    /* the query blocks in the kernels' order: ascending, or in
     * deterministic mode from fa2_bwd_q_start, wrapping round (dK_j and dV_j
     * are summed in this order too) */
    const fa2_block_range qb = fa2_bwd_q_blocks(&mask, n_block, bm, bn);
    const int64_t start =
        a->deterministic ? fa2_bwd_q_start(&mask, n_block, bm, bn) : qb.lo;
    for (int64_t h = hk * group; h < (hk + 1) * group; h++)
        for (int64_t st = 0; st < fa2_block_count(qb); st++)
            bwd_tile(job, w, &s, &mask, b, h, fa2_bwd_q_block_at(qb, start, st),
                     col_lo, cols);
    for (int64_t j = 0; j < cols; j++) {
        float *dk = w->dk + j * d;
        for (int64_t c = 0; c < d; c++)
            dk[c] *= p->scale;
        if (p->dropout.enabled) /* dV = round(acc / (1 - p)) */
            for (int64_t c = 0; c < d; c++)
                w->dv[j * d + c] *= p->dropout.scale;
        fa2_store_row_f32(&a->dk, s.batch, s.k_start + col_lo + j, hk, d, dk);
        fa2_store_row_f32(&a->dv, s.batch, s.k_start + col_lo + j, hk, d, w->dv + j * d);
    }
    if (p->trace)
        trace_bwd(p, w, FA2_TRACE_BWD_OUT, b, hk, -1, n_block, 0, col_lo, 0, cols,
                  bn, NULL, NULL);
}

/* Postprocess, one item per (sequence, query head): dQ = round(scale acc). */
static void postprocess_item(void *ctx, int64_t item, int worker)
{
    const tiled_bwd_job *job = ctx;
    const int64_t d = job->p->head_dim;
    const int64_t h = item % job->p->heads_q;
    const fa2_seq s = fa2_problem_seq(job->p, item / job->p->heads_q);
    float *row = job->scratch[worker].dq;
    for (int64_t i = 0; i < s.seqlen_q; i++) {
        const float *acc = (const float *)job->dq_acc.data +
                           fa2_offset4(&job->dq_acc, s.batch, s.q_start + i, h, 0);
        if (job->a->deterministic) { /* chain 0 + chain 1, as the GPU adds */
            const float *acc2 = (const float *)job->dq_acc2.data +
                                fa2_offset4(&job->dq_acc2, s.batch, s.q_start + i, h, 0);
            for (int64_t c = 0; c < d; c++)
                row[c] = (acc[c] + acc2[c]) * job->p->scale;
        } else {
            for (int64_t c = 0; c < d; c++)
                row[c] = acc[c] * job->p->scale;
        }
        fa2_store_row_f32(&job->a->dq, s.batch, s.q_start + i, h, d, row);
    }
}

static void free_scratch(bwd_scratch *sc, int n)
{
    for (int t = 0; sc && t < n; t++) {
        float *bufs[] = {sc[t].k, sc[t].kt, sc[t].vt, sc[t].dk, sc[t].dv, sc[t].q,
                         sc[t].dO, sc[t].p, sc[t].ds, sc[t].pr, sc[t].dsr,
                         sc[t].dq, sc[t].lse, sc[t].D, sc[t].row};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            free(bufs[i]);
        free(sc[t].g);
        free(sc[t].keep);
        free(sc[t].vis_lo);
        free(sc[t].vis_hi);
    }
    free(sc);
}

static bwd_scratch *alloc_scratch(int n, size_t bm, size_t bn, size_t d)
{
    bwd_scratch *sc = calloc((size_t)n, sizeof *sc);
    int ok = sc != NULL;
    for (int t = 0; ok && t < n; t++) {
        bwd_scratch *w = &sc[t];
        const size_t kd = bn * d, qd = bm * d, tile = bm * bn;
        float **kbufs[] = {&w->k, &w->kt, &w->vt, &w->dk, &w->dv};
        float **qbufs[] = {&w->q, &w->dO, &w->dq};
        float **tbufs[] = {&w->p, &w->ds, &w->pr, &w->dsr};
        for (size_t i = 0; i < sizeof kbufs / sizeof kbufs[0]; i++)
            ok &= (*kbufs[i] = malloc(sizeof(float) * kd)) != NULL;
        for (size_t i = 0; i < sizeof qbufs / sizeof qbufs[0]; i++)
            ok &= (*qbufs[i] = malloc(sizeof(float) * qd)) != NULL;
        for (size_t i = 0; i < sizeof tbufs / sizeof tbufs[0]; i++)
            ok &= (*tbufs[i] = malloc(sizeof(float) * tile)) != NULL;
        ok &= (w->lse = malloc(sizeof(float) * bm)) != NULL;
        ok &= (w->D = malloc(sizeof(float) * bm)) != NULL;
        ok &= (w->row = malloc(sizeof(float) * d)) != NULL;
        ok &= (w->g = malloc(sizeof(float) * tile)) != NULL;
        ok &= (w->keep = malloc(tile)) != NULL;
        ok &= (w->vis_lo = malloc(sizeof(int64_t) * bm)) != NULL;
        ok &= (w->vis_hi = malloc(sizeof(int64_t) * bm)) != NULL;
    }
    if (!ok) {
        free_scratch(sc, n);
        return NULL;
    }
    return sc;
}

fa2_status fa2_cpu_tiled_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    fa2_tile_config cfg;
    fa2_status st = fa2_cpu_tiled_tile_config(FA2_PASS_BWD,
                                        p->dtype, (int)p->head_dim, &cfg);
    if (st != FA2_OK)
        return st;
    tiled_bwd_job job;
    memset(&job, 0, sizeof job);
    if ((st = fa2_cpu_tile_kernel(&job.kern)) != FA2_OK)
        return st;
    job.a = a;
    job.p = p;
    job.block_m = p->block_m > 0 ? p->block_m : cfg.block_m;
    job.block_n = p->block_n > 0 ? p->block_n : cfg.block_n;
    job.m_blocks = fa2_num_blocks(p->max_seqlen_q, job.block_m);
    job.n_blocks = fa2_num_blocks(p->max_seqlen_k, job.block_n);
    const int threads = p->num_threads;
    const size_t d = (size_t)p->head_dim;
    const size_t rows = (size_t)(a->q.shape[0] * a->q.shape[1]);
    const size_t heads = (size_t)p->heads_q;

    /* The dQ accumulator: dq itself when it is float32, else a buffer. */
    float *acc_buf = NULL;
    if (a->dq.dtype == FA2_DTYPE_FP32) {
        job.dq_acc = a->dq;
    } else {
        acc_buf = malloc(sizeof(float) * (rows ? rows : 1) * heads * d);
        job.dq_acc = fa2_tensor_4d(acc_buf, FA2_DTYPE_FP32, a->q.shape[0],
                                   a->q.shape[1], p->heads_q, p->head_dim);
    }
    float *acc2_buf = NULL;
    if (a->deterministic) {
        acc2_buf = malloc(sizeof(float) * (rows ? rows : 1) * heads * d);
        job.dq_acc2 = fa2_tensor_4d(acc2_buf, FA2_DTYPE_FP32, a->q.shape[0],
                                    a->q.shape[1], p->heads_q, p->head_dim);
    }
    job.D = malloc(sizeof(float) * (rows ? rows : 1) * heads);
    if (p->sinks && !(job.dsink_part = fa2_calloc_n(p->num_seqs * p->heads_q,
                                                    sizeof(float)))) {
        st = fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the tiled backward could not "
                      "allocate its sink gradient buffer");
        goto out;
    }
    const size_t n_guards =
        2 * (size_t)(p->num_seqs * p->heads_q * (job.m_blocks ? job.m_blocks : 1));
    job.guard = malloc(sizeof(atomic_int) * n_guards);
    job.scratch = alloc_scratch(threads, (size_t)job.block_m, (size_t)job.block_n, d);
    if ((a->dq.dtype != FA2_DTYPE_FP32 && !acc_buf) || (a->deterministic && !acc2_buf) ||
        !job.D || !job.guard || !job.scratch) {
        st = fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the tiled backward could not "
                      "allocate its dQ accumulator and workspace");
        goto out;
    }
    for (size_t g = 0; g < n_guards; g++)
        atomic_init(&job.guard[g], 0);

    const int64_t seq_heads = p->num_seqs * p->heads_q;
    fa2_parallel_for(threads, seq_heads, preprocess_item, &job);
    fa2_parallel_for(threads, job.n_blocks * p->num_seqs * p->heads_kv, main_item,
                     &job);
    fa2_parallel_for(threads, seq_heads, postprocess_item, &job);
    /* dsinks[h]: the sequences' shares, summed in sequence order */
    for (int64_t h = 0; p->sinks && h < p->heads_q; h++) {
        float sum = 0.0f;
        for (int64_t b = 0; b < p->num_seqs; b++)
            sum += job.dsink_part[b * p->heads_q + h];
        a->dsinks[h] = sum;
    }
out:
    free(job.dsink_part);
    free(acc_buf);
    free(acc2_buf);
    free(job.D);
    free(job.guard);
    free_scratch(job.scratch, threads);
    return st;
}

fa2_status fa2_tiled_bwd_traced(const fa2_bwd_args *args, fa2_trace_fn fn,
                                void *user)
{
    fa2_problem p;
    fa2_status st = fa2_bwd_validate(args, NULL, &p);
    if (st != FA2_OK)
        return st;
    if ((st = fa2_problem_trace(&p, fn, user)) != FA2_OK)
        return st;
    return fa2_cpu_tiled_bwd(args, &p);
}
