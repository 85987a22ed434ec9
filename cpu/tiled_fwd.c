/* tiled_fwd.c — the FlashAttention-2 forward pass on the CPU, step for step
 * as the CUDA kernel runs it (FA2 paper, Algorithm 1; doc/design.md, "The numerics contract").
 *
 * One work item is one (sequence, head, query block i): the FA2 outer loop,
 * whose iterations are independent. For that block:
 *
 *   m = -inf, l = 0, acc = 0                      (float32, Br rows)
 *   for each key block j the shared tile logic visits, last to first:
 *       S   = Q_i K_j^T                            (float32 accumulation)
 *       mask S to -inf where the tile logic says  (boundary tiles only)
 *       m'  = max(m, rowmax S);  alpha = exp2((m - m') c)
 *       P   = exp2(S c - m' c),  c = scale log2(e)
 *       l   = alpha l + rowsum(P)                  (the float32 P)
 *       acc = alpha acc + round(P) V_j             (P in the input dtype)
 *   O_i = round(acc / l),  LSE_i = m scale + ln l
 *
 * The index logic (which blocks, which need a mask, the mask itself) and the
 * per-row softmax update come from lib/fa2_tile.h, the same code the kernel
 * calls. How a tile product is computed here (fa2's micro-kernels,
 * cpu/tile_product.h) is free; where values are rounded is not.
 *
 * CPU layout: the score tile is kept transposed, S^T = K_j Q_i^T ([Bc][Br]),
 * so that K and V tiles load as plain rows, every row operation of the
 * softmax (max, exp2, sum) runs down a column and vectorises across the
 * query rows, and both products are plain or A-transposed matrix products.
 * The arithmetic per row is the same as in the kernel. */
#include "config.h"
#include "fa2_internal.h"

#include "fa2_cpu.h"
#include "fa2_cpu_simd.h"

#include "tile_product.h"

#include <math.h>
#include <stdlib.h>

/* One worker's tiles, allocated once per call. */
typedef struct tile_scratch {
    float *qt;  /* [d][Br]  the query tile, transposed, widened            */
    float *k;   /* [Bc][d]  current key tile                               */
    float *v;   /* [Bc][d]  current value tile                             */
    float *st;  /* [Bc][Br] scores S^T, then probabilities P^T, in place   */
    float *acc; /* [Br][d]  un-normalised output                           */
    float *row; /* [d]      one query row on its way into qt               */
    float *tile_max, *alpha, *max_scaled, *rowsum; /* [Br] per query row  */
    int64_t *vis_lo, *vis_hi; /* [Br] each row's visible keys (masking)   */
    fa2_row_state *state; /* [Br] running max m and sum l                  */
} tile_scratch;

typedef struct tiled_job {
    const fa2_fwd_args *a;
    const fa2_problem *p;
    int block_m, block_n;
    int64_t m_blocks; /* query blocks of the longest sequence */
    fa2_tile_kernel kern; /* the tile products' micro-kernel */
    tile_scratch *scratch;
} tiled_job;

/* Online softmax over one S^T tile (Algorithm 1, lines 8-10; the shared
 * cpu/softmax_tile.c). */
static void softmax_tile(const fa2_problem *p, tile_scratch *w, int64_t rows,
                         int64_t cols, int block_m, float c)
{
    const fa2_cpu_softmax_io io = {
        .st = w->st, .ld = block_m, .acc = w->acc, .d = p->head_dim,
        .state = w->state, .tile_max = w->tile_max, .alpha = w->alpha,
        .max_scaled = w->max_scaled, .rowsum = w->rowsum,
        .scale_log2 = c, .dtype = p->dtype};
    fa2_cpu_softmax_tile(&io, rows, cols);
}

/* Score modifiers (fa2_score.h): turn the raw S^T tile into logits in the
 * softmax's units in place, before masking (masking after, so masked keys
 * stay -inf). Only called when there is something to do (softcap, ALiBi,
 * or a head in natural units): plain attention never enters this loop. */
FA2_CPU_CLONES
static void logit_tile(const fa2_score_mod *sm, float *st, int64_t row_lo,
                       int64_t rows, int64_t col_lo, int64_t cols, int block_m)
{
    if (sm->softcap > 0.0f) { /* tanh: the shared function, element by element */
        for (int64_t j = 0; j < cols; j++) {
            float *sj = st + j * block_m;
            for (int64_t i = 0; i < rows; i++)
                sj[i] = fa2_score_logit(sm, sj[i], row_lo + i, col_lo + j);
        }
        return;
    }
    /* without softcap fa2_score_logit is x scale in natural units, x in
     * score units (fa2_score_mod_units), then fma(-slope, |i' - j|, u): the
     * same roundings, written so that they vectorise down a column (the
     * distance in float is exact below 2^24, as fa2_alibi_distance's) */
    const float scale = sm->logits ? sm->scale : 1.0f, slope = sm->slope_u;
    for (int64_t j = 0; j < cols; j++) {
        float *sj = st + j * block_m;
        const float d0 = (float)(row_lo + sm->diag_offset - (col_lo + j));
        if (sm->alibi && rows < 16777216 && fabsf(d0) < 8388608.0f) {
#pragma omp simd
            for (int64_t i = 0; i < rows; i++)
                sj[i] = fmaf(-slope, fabsf(d0 + (float)i), sj[i] * scale);
        } else if (sm->alibi) {
            for (int64_t i = 0; i < rows; i++)
                sj[i] = fa2_score_logit(sm, sj[i], row_lo + i, col_lo + j);
        } else {
#pragma omp simd
            for (int64_t i = 0; i < rows; i++)
                sj[i] = sj[i] * scale;
        }
    }
}

/* Dropout on the rounded P^T tile (fa2_philox.h): zero the dropped
 * elements; one Philox call serves eight consecutive columns of a row.
 * Visible kept elements are marked in the optional dropout_mask. */
static void dropout_tile(const fa2_problem *p, const fa2_mask *mask, int64_t b,
                         int64_t h, float *st, int64_t row_lo, int64_t rows,
                         int64_t col_lo, int64_t cols, int block_m)
{
    const fa2_dropout *dr = &p->dropout;
    const int64_t bh = b * p->heads_q + h;
    for (int64_t i = 0; i < rows; i++) {
        const int64_t row = row_lo + i;
        uint32_t kept8 = 0;
        for (int64_t j = 0; j < cols; j++) {
            const int64_t col = col_lo + j;
            if (j == 0 || (col & 7) == 0)
                kept8 = fa2_dropout_keep8(dr, fa2_dropout_words(dr, bh, row, col));
            const int keep = (int)(kept8 >> (col & 7)) & 1;
            if (!keep)
                st[j * block_m + i] = 0.0f;
            else if (p->dropout_mask && fa2_mask_visible(mask, row, col))
                *fa2_problem_mask_at(p, b, h, row, col) = 1;
        }
    }
}

/* Tell the trace callback (fa2 trace) about one step of query block i. */
static void trace_fwd(const fa2_problem *p, const tile_scratch *w,
                      fa2_trace_kind kind, int64_t b, int64_t h, int64_t m_block,
                      int64_t n_block, int64_t row_lo, int64_t col_lo,
                      int64_t rows, int64_t cols, int block_m)
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
    ev.tile = w->st; /* S^T / P^T: element (i, j) at st[j * Br + i] */
    ev.row_stride = 1;
    ev.col_stride = block_m;
    ev.state = w->state;
    ev.alpha = w->alpha;
    ev.vec = w->rowsum;
    ev.acc = w->acc;
    ev.d = p->head_dim;
    p->trace(p->trace_user, &ev);
}

static void tiled_item(void *ctx, int64_t item, int worker)
{
    const tiled_job *job = ctx;
    const fa2_fwd_args *a = job->a;
    const fa2_problem *p = job->p;
    tile_scratch *w = &job->scratch[worker];
    const int bm = job->block_m, bn = job->block_n;
    const int64_t d = p->head_dim;
    /* One (sequence, head) at a time, its query blocks from the last to
     * the first: the head's K and V stay hot in cache across its blocks
     * (as the kernel's grid order keeps them in L2), and with causal masks
     * the long-running last blocks start first. */
    const int64_t bh = item / job->m_blocks;
    const int64_t m_block = job->m_blocks - 1 - item % job->m_blocks;
    const int64_t h = bh % p->heads_q;
    const int64_t b = bh / p->heads_q;
    const int64_t hk = h / (p->heads_q / p->heads_kv);
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);

    const int64_t row_lo = m_block * bm;
    if (row_lo >= s.seqlen_q)
        return; /* this sequence is shorter than the longest */
    const int64_t rows = s.seqlen_q - row_lo < bm ? s.seqlen_q - row_lo : bm;

    fa2_cpu_load_tile_t(&a->q, &s, s.q_start, row_lo, rows, h, d, w->qt, bm, w->row);
    /* with a modifier the softmax runs on logits u (c = log2 e); a sink
     * starts each row's state as a key seen first (fa2_score.h) */
    const fa2_score_mod sm = fa2_problem_score_mod_units(p, &s, b, h);
    const float c_exp = sm.c;
    const int transform = fa2_score_mod_transforms(&sm);
    for (int64_t i = 0; i < rows; i++)
        w->state[i] = p->sinks ? fa2_row_state_init_sink(sm.sink_u, sm.c)
                               : fa2_row_state_init();
    for (int64_t x = 0; x < rows * d; x++)
        w->acc[x] = 0.0f;

    const fa2_block_range kv = fa2_fwd_kv_blocks(&mask, m_block, bm, bn);
    for (int64_t step = 0; step < fa2_block_count(kv); step++) {
        const int64_t n_block = fa2_kv_block_at(kv, step);
        const int64_t col_lo = n_block * bn;
        const int64_t cols = s.seqlen_k - col_lo < bn ? s.seqlen_k - col_lo : bn;

        /* K is the broadcast operand of S^T = K Q^T, read row by row many
         * times: a dense copy (rows a head stride apart, often 4 KiB, share
         * one L1 set). V is packed by the product itself: read in place
         * when float32. */
        fa2_cpu_load_tile(&a->k, &s, s.k_start, col_lo, cols, hk, d, w->k);
        int64_t ldv;
        const float *v = fa2_cpu_tile_view(&a->v, &s, s.k_start, col_lo, cols, hk, d,
                                           w->v, &ldv);
        if (step + 1 < fa2_block_count(kv)) { /* the next K/V tile */
            const int64_t next_lo = fa2_kv_block_at(kv, step + 1) * bn;
            const int64_t next = s.seqlen_k - next_lo < bn ? s.seqlen_k - next_lo : bn;
            fa2_cpu_prefetch_tile(&a->k, &s, s.k_start, next_lo, next, hk, d);
            fa2_cpu_prefetch_tile(&a->v, &s, s.k_start, next_lo, next, hk, d);
        }
        /* S^T = K_j Q_i^T, i.e. S = Q_i K_j^T */
        fa2_product_nn(&job->kern, cols, rows, d, w->k, d, w->qt, bm, w->st, bm, 0);
        if (transform)
            logit_tile(&sm, w->st, row_lo, rows, col_lo, cols, bm);
        if (fa2_tile_needs_mask(&mask, row_lo, row_lo + rows, col_lo, bn))
            fa2_cpu_mask_tile(&mask, row_lo, rows, col_lo, cols, w->st, 1, bm,
                              w->vis_lo, w->vis_hi);
        if (p->trace)
            trace_fwd(p, w, FA2_TRACE_FWD_S, b, h, m_block, n_block, row_lo,
                      col_lo, rows, cols, bm);
        softmax_tile(p, w, rows, cols, bm, c_exp);
        if (p->dropout.enabled)
            dropout_tile(p, &mask, b, h, w->st, row_lo, rows, col_lo, cols, bm);
        if (p->trace)
            trace_fwd(p, w, FA2_TRACE_FWD_P, b, h, m_block, n_block, row_lo,
                      col_lo, rows, cols, bm);
        /* acc += round(P) V_j  (acc was already scaled by alpha) */
        fa2_product_tn(&job->kern, rows, d, cols, w->st, bm, v, ldv, w->acc, d, 1);
        if (p->trace)
            trace_fwd(p, w, FA2_TRACE_FWD_ACC, b, h, m_block, n_block, row_lo,
                      col_lo, rows, cols, bm);
    }

    /* Algorithm 1, lines 12-13: normalise once, write O and LSE once */
    for (int64_t i = 0; i < rows; i++) {
        const float inv_l =
            fa2_dropout_out_scale(&p->dropout, fa2_softmax_inv_l(w->state[i]));
        float *acc = w->acc + i * d;
        for (int64_t c = 0; c < d; c++)
            acc[c] *= inv_l;
        fa2_store_row_f32(&a->o, s.batch, s.q_start + row_lo + i, h, d, acc);
        w->rowsum[i] = fa2_softmax_lse(w->state[i], sm.lse_scale);
        if (a->lse.data)
            *fa2_lse_at(&a->lse, s.batch, h, s.q_start + row_lo + i) = w->rowsum[i];
    }
    if (p->trace)
        trace_fwd(p, w, FA2_TRACE_FWD_OUT, b, h, m_block, -1, row_lo, 0, rows, 0, bm);
}

static void free_scratch(tile_scratch *sc, int n)
{
    for (int t = 0; sc && t < n; t++) {
        void *bufs[] = {sc[t].qt, sc[t].k, sc[t].v, sc[t].st, sc[t].acc, sc[t].row,
                        sc[t].tile_max, sc[t].alpha, sc[t].max_scaled,
                        sc[t].rowsum, sc[t].state, sc[t].vis_lo, sc[t].vis_hi};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            free(bufs[i]);
    }
    free(sc);
}

static tile_scratch *alloc_scratch(int n, size_t bm, size_t bn, size_t d)
{
    tile_scratch *sc = calloc((size_t)n, sizeof *sc);
    int ok = sc != NULL;
    for (int t = 0; ok && t < n; t++) {
        tile_scratch *w = &sc[t];
        w->qt = malloc(sizeof(float) * bm * d);
        w->k = malloc(sizeof(float) * bn * d);
        w->v = malloc(sizeof(float) * bn * d);
        w->st = malloc(sizeof(float) * bn * bm);
        w->acc = malloc(sizeof(float) * bm * d);
        w->row = malloc(sizeof(float) * d);
        w->tile_max = malloc(sizeof(float) * bm);
        w->alpha = malloc(sizeof(float) * bm);
        w->max_scaled = malloc(sizeof(float) * bm);
        w->rowsum = malloc(sizeof(float) * bm);
        w->state = malloc(sizeof(fa2_row_state) * bm);
        w->vis_lo = malloc(sizeof(int64_t) * bm);
        w->vis_hi = malloc(sizeof(int64_t) * bm);
        ok = w->qt && w->k && w->v && w->st && w->acc && w->row && w->tile_max &&
             w->alpha && w->max_scaled && w->rowsum && w->state && w->vis_lo &&
             w->vis_hi;
    }
    if (!ok) {
        free_scratch(sc, n);
        return NULL;
    }
    return sc;
}

fa2_status fa2_cpu_tiled_fwd(const fa2_fwd_args *a, const fa2_problem *p)
{
    fa2_tile_config cfg;
    fa2_status st = fa2_cpu_tiled_tile_config(FA2_PASS_FWD,
                                        p->dtype, (int)p->head_dim, &cfg);
    if (st != FA2_OK)
        return st;
    tiled_job job;
    if ((st = fa2_cpu_tile_kernel(&job.kern)) != FA2_OK)
        return st;
    job.a = a;
    job.p = p;
    job.block_m = p->block_m > 0 ? p->block_m : cfg.block_m;
    job.block_n = p->block_n > 0 ? p->block_n : cfg.block_n;
    job.m_blocks = fa2_num_blocks(p->max_seqlen_q, job.block_m);
    const int64_t items = job.m_blocks * p->num_seqs * p->heads_q;
    if (items == 0)
        return FA2_OK;
    const int threads = p->num_threads < items ? p->num_threads : (int)items;
    const size_t bm = (size_t)job.block_m, bn = (size_t)job.block_n;
    const size_t d = (size_t)p->head_dim;

    fa2_problem_mask_clear(p);
    job.scratch = alloc_scratch(threads, bm, bn, d);
    if (!job.scratch)
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the tiled backend could not "
                        "allocate its %d-thread tile workspace", threads);
    fa2_parallel_for(threads, items, tiled_item, &job);
    free_scratch(job.scratch, threads);
    return FA2_OK;
}

fa2_status fa2_tiled_fwd_traced(const fa2_fwd_args *args, fa2_trace_fn fn,
                                void *user)
{
    fa2_problem p;
    fa2_status st = fa2_fwd_validate(args, NULL, &p);
    if (st != FA2_OK)
        return st;
    if ((st = fa2_problem_trace(&p, fn, user)) != FA2_OK)
        return st;
    return fa2_cpu_tiled_fwd(args, &p);
}
