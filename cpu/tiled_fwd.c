/* tiled_fwd.c — the FlashAttention-2 forward pass on the CPU, step for step
 * as the CUDA kernel runs it (FA2 paper, Algorithm 1; DESIGN.md "Forward").
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
 * calls. How a tile product is computed here (OpenBLAS sgemm) is free; where
 * values are rounded is not. */
#include "config.h"
#include "fa2_internal.h"

#include <cblas.h>
#include <stdlib.h>

/* One worker's tiles, allocated once per call. */
typedef struct tile_scratch {
    float *q;   /* [Br][d]  the query tile, widened from the input dtype */
    float *k;   /* [Bc][d]  current key tile                             */
    float *v;   /* [Bc][d]  current value tile                           */
    float *s;   /* [Br][Bc] scores S, then probabilities P, in place     */
    float *acc; /* [Br][d]  un-normalised output                         */
    fa2_row_state *row; /* [Br] running max m and sum l                  */
} tile_scratch;

typedef struct tiled_job {
    const fa2_fwd_args *a;
    const fa2_problem *p;
    int block_m, block_n;
    int64_t m_blocks; /* query blocks of the longest sequence */
    tile_scratch *scratch;
} tiled_job;

/* Load rows [row0, row0 + n) of head h of t into a dense [n][d] tile. */
static void load_tile(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                      int64_t row0, int64_t n, int64_t h, int64_t d, float *dst)
{
    for (int64_t r = 0; r < n; r++)
        fa2_load_row_f32(t, s->batch, start + row0 + r, h, d, dst + r * d);
}

/* Online softmax over one S tile (Algorithm 1, lines 8-10): turn S into P
 * row by row, rescale the accumulator, and round P for the P V product. */
static void softmax_tile(const fa2_problem *p, tile_scratch *w, int64_t rows,
                         int64_t cols, int block_n)
{
    const int64_t d = p->head_dim;
    for (int64_t i = 0; i < rows; i++) {
        float *srow = w->s + i * block_n;
        float tile_max = FA2_NEG_INF;
        for (int64_t j = 0; j < cols; j++)
            tile_max = srow[j] > tile_max ? srow[j] : tile_max;
        float max_scaled;
        const float alpha = fa2_softmax_rescale(&w->row[i], tile_max,
                                                p->scale_log2, &max_scaled);
        float rowsum = 0.0f;
        for (int64_t j = 0; j < cols; j++) {
            const float pij = fa2_softmax_p(srow[j], p->scale_log2, max_scaled);
            rowsum += pij;
            srow[j] = fa2_round_to_dtype(pij, p->dtype);
        }
        fa2_softmax_accumulate(&w->row[i], alpha, rowsum);
        float *acc = w->acc + i * d;
        for (int64_t c = 0; c < d; c++)
            acc[c] *= alpha;
    }
}

static void tiled_item(void *ctx, int64_t item, int worker)
{
    const tiled_job *job = ctx;
    const fa2_fwd_args *a = job->a;
    const fa2_problem *p = job->p;
    tile_scratch *w = &job->scratch[worker];
    const int bm = job->block_m, bn = job->block_n;
    const int64_t d = p->head_dim;
    /* Long-running blocks first (causal: the last query blocks see the most
     * keys), every (sequence, head) at that depth before the next depth. */
    const int64_t bh = item % (p->num_seqs * p->heads_q);
    const int64_t m_block = job->m_blocks - 1 - item / (p->num_seqs * p->heads_q);
    const int64_t h = bh % p->heads_q;
    const int64_t b = bh / p->heads_q;
    const int64_t hk = h / (p->heads_q / p->heads_kv);
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);

    const int64_t row_lo = m_block * bm;
    if (row_lo >= s.seqlen_q)
        return; /* this sequence is shorter than the longest */
    const int64_t rows = s.seqlen_q - row_lo < bm ? s.seqlen_q - row_lo : bm;

    load_tile(&a->q, &s, s.q_start, row_lo, rows, h, d, w->q);
    for (int64_t i = 0; i < rows; i++)
        w->row[i] = fa2_row_state_init();
    for (int64_t x = 0; x < rows * d; x++)
        w->acc[x] = 0.0f;

    const fa2_block_range kv = fa2_fwd_kv_blocks(&mask, m_block, bm, bn);
    for (int64_t step = 0; step < fa2_block_count(kv); step++) {
        const int64_t n_block = fa2_kv_block_at(kv, step);
        const int64_t col_lo = n_block * bn;
        const int64_t cols = s.seqlen_k - col_lo < bn ? s.seqlen_k - col_lo : bn;

        load_tile(&a->k, &s, s.k_start, col_lo, cols, hk, d, w->k);
        load_tile(&a->v, &s, s.k_start, col_lo, cols, hk, d, w->v);
        /* S = Q_i K_j^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols,
                    (int)d, 1.0f, w->q, (int)d, w->k, (int)d, 0.0f, w->s, bn);
        if (fa2_tile_needs_mask(&mask, row_lo, row_lo + rows, col_lo, bn))
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++)
                    if (!fa2_mask_visible(&mask, row_lo + i, col_lo + j))
                        w->s[i * bn + j] = FA2_NEG_INF;
        softmax_tile(p, w, rows, cols, bn);
        /* acc += round(P) V_j  (acc was already scaled by alpha) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)d,
                    (int)cols, 1.0f, w->s, bn, w->v, (int)d, 1.0f, w->acc, (int)d);
    }

    /* Algorithm 1, lines 12-13: normalise once, write O and LSE once */
    for (int64_t i = 0; i < rows; i++) {
        const float inv_l = fa2_softmax_inv_l(w->row[i]);
        float *acc = w->acc + i * d;
        for (int64_t c = 0; c < d; c++)
            acc[c] *= inv_l;
        fa2_store_row_f32(&a->o, s.batch, s.q_start + row_lo + i, h, d, acc);
        if (a->lse.data)
            *fa2_lse_at(&a->lse, s.batch, h, s.q_start + row_lo + i) =
                fa2_softmax_lse(w->row[i], p->scale);
    }
}

static void free_scratch(tile_scratch *sc, int n)
{
    for (int t = 0; t < n; t++) {
        free(sc[t].q);
        free(sc[t].k);
        free(sc[t].v);
        free(sc[t].s);
        free(sc[t].acc);
        free(sc[t].row);
    }
    free(sc);
}

fa2_status fa2_cpu_tiled_fwd(const fa2_fwd_args *a, const fa2_problem *p)
{
    fa2_tile_config cfg;
    fa2_status st = fa2_tile_config_for(FA2_BACKEND_CPU_TILED, FA2_PASS_FWD,
                                        p->dtype, (int)p->head_dim, &cfg);
    if (st != FA2_OK)
        return st;
    tiled_job job;
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

    job.scratch = calloc((size_t)threads, sizeof *job.scratch);
    int ok = job.scratch != NULL;
    for (int t = 0; ok && t < threads; t++) {
        tile_scratch *w = &job.scratch[t];
        w->q = malloc(sizeof(float) * bm * d);
        w->k = malloc(sizeof(float) * bn * d);
        w->v = malloc(sizeof(float) * bn * d);
        w->s = malloc(sizeof(float) * bm * bn);
        w->acc = malloc(sizeof(float) * bm * d);
        w->row = malloc(sizeof(fa2_row_state) * bm);
        ok = w->q && w->k && w->v && w->s && w->acc && w->row;
    }
    if (!ok) {
        if (job.scratch)
            free_scratch(job.scratch, threads);
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the tiled backend could not "
                        "allocate its %d-thread tile workspace", threads);
    }
    fa2_parallel_for(threads, items, tiled_item, &job);
    free_scratch(job.scratch, threads);
    return FA2_OK;
}
