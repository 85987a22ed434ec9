/* tiled_kvcache.c — the forward over a KV cache on the CPU, step for step
 * as the decode kernels run it (lib/fa2_kvcache.h; doc/algorithm.md
 * section 8):
 *
 *   append k_new / v_new into the cache                  (first, in place)
 *   for each (sequence b, key head hk, row block, split s):
 *       rows: the Nq queries x the Hq/Hkv query heads of hk, packed
 *             (row r = query r / group, head hk * group + r % group)
 *       keys: chunk s of the key blocks those rows see (fa2_split_blocks),
 *             walked last to first, each key read through the block table
 *       the forward's tile loop (tiled_fwd.c): S = Q K^T, mask, online
 *       softmax, acc += round(P) V; with key_warps K > 1, tile t of the
 *       chunk goes to running state t % K (the kernel's warp t % K), and
 *       the K partials (acc / l, LSE) are merged by LSE in that order
 *       (fa2_merge_partials) at the end
 *       one split: O = round(acc / l), LSE;  else the float32 partial
 *       O = acc / l and its LSE go to a workspace
 *   with splits: for each (b, query head, query) merge the partials by LSE
 *   in split order (fa2_merge_partials), O rounded once.
 *
 * How the work is spread over the CPU's threads is free (the order of the
 * arithmetic of each (b, hk, split) is not): one work item takes a row
 * block and a chunk for several key heads at once: a key tile is widened
 * token by token, every head of a token in turn (they sit side by side,
 * [.., Hkv, d], so memory is read in its own order), into one float32 tile
 * per head; then come every head's S and softmax (K's tiles), then every
 * head's P V (V's). */
#include "config.h"
#include "fa2_internal.h"

#include "fa2_cpu.h"
#include "fa2_kvcache.h"
#include "tile_product.h"

#include <math.h>
#include <stdlib.h>

/* Accumulators of one item's heads kept within about this many floats. */
enum { ITEM_ACC_FLOATS = 64 * 1024 };

typedef struct kv_scratch {
    float *qt;    /* [nh][d][bm] the query tiles, transposed, widened     */
    float *kv;    /* [nh][bn][d] the key (then value) tiles of every head   */
    float *st;    /* [nh][bn][bm] S^T, then P^T, of every head             */
    float *acc;   /* [kw][nh][bm][d] un-normalised outputs                 */
    float *row;   /* [d]                                                   */
    float *kw_o;  /* [kw][d] key warps' partial O of a row, to merge       */
    float *kw_lse;                                 /* [kw]                 */
    fa2_row_state *state;                          /* [kw][nh][bm]         */
    float *tile_max, *alpha, *max_scaled, *rowsum; /* [bm]                 */
    int64_t *vis_lo, *vis_hi;                      /* [bm] visible keys    */
} kv_scratch;

typedef struct kv_job {
    const fa2_kvcache_args *a;
    const fa2_kvcache_problem *p;
    int bm, bn;          /* packed rows and keys per tile                 */
    int kw;              /* key warps: running states per row (1 or 4)    */
    int64_t rows;        /* packed rows per (sequence, key head): Nq group */
    int64_t r_blocks;    /* row blocks of them                            */
    int64_t nh;          /* key heads per item                            */
    int64_t h_chunks;    /* ceil(Hkv / nh)                                */
    int splits;
    float *part_o;       /* splits > 1: [split][B][Hq][Nq][d]             */
    float *part_lse;     /*             [split][B][Hq][Nq]                */
    fa2_tile_kernel kern;
    kv_scratch *scratch;
} kv_job;

/* The CPU's grouping of the work (shared with the split choice below). */
static void item_shape(const fa2_kvcache_problem *p, int *bm, int64_t *rows,
                       int64_t *r_blocks, int64_t *nh, int64_t *h_chunks)
{
    *rows = p->seqlen_q * p->group;
    *bm = *rows < p->block_m ? (int)*rows : p->block_m;
    *r_blocks = fa2_num_blocks(*rows, *bm);
    *nh = ITEM_ACC_FLOATS / ((int64_t)p->key_warps * *bm * p->head_dim);
    if (*nh < 1)
        *nh = 1;
    if (*nh > p->heads_kv)
        *nh = p->heads_kv;
    *h_chunks = fa2_num_blocks(p->heads_kv, *nh);
}

/* The tiled backend's own num_splits: the shared heuristic over its work
 * items (several key heads per item) and its worker threads. */
fa2_status fa2_cpu_tiled_kvcache_splits(const fa2_kvcache_problem *p, int *num_splits)
{
    int bm;
    int64_t rows, r_blocks, nh, h_chunks;
    item_shape(p, &bm, &rows, &r_blocks, &nh, &h_chunks);
    *num_splits = fa2_kvcache_splits_heuristic(p->batch * h_chunks, 1, rows,
                                               p->capacity, bm, p->block_n,
                                               p->num_threads);
    return FA2_OK;
}

/* Keys [col_lo, col_lo + cols) of heads [hk0, hk0 + nh) of cache, widened
 * into dst [nh][bn][d]: token by token, every head of a token in turn, so
 * memory is read in its own order (a token's heads sit side by side). */
static void load_tiles(const fa2_tensor *cache, const fa2_kvcache_problem *p,
                       int64_t b, int64_t col_lo, int64_t cols, int64_t hk0,
                       int64_t nh, int bn, float *dst)
{
    const int64_t d = p->head_dim;
    for (int64_t jj = 0; jj < cols; jj++) {
        const fa2_kv_slot s = fa2_kv_slot_of(fa2_kvcache_table_row(p, b),
                                             p->page_size, b, col_lo + jj);
        const fa2_seq seq = {.batch = s.i0};
        for (int64_t hh = 0; hh < nh; hh++)
            fa2_cpu_load_row(cache, &seq, s.i1, hk0 + hh, d,
                             dst + (hh * bn + jj) * d);
    }
}

static void kv_item(void *ctx, int64_t item, int worker)
{
    const kv_job *job = ctx;
    const fa2_kvcache_args *a = job->a;
    const fa2_kvcache_problem *p = job->p;
    kv_scratch *w = &job->scratch[worker];
    const int bm = job->bm, bn = job->bn;
    const int64_t d = p->head_dim, group = p->group;
    const int split = (int)(item % job->splits);
    const int64_t rb = item / job->splits % job->r_blocks;
    const int64_t hc = item / job->splits / job->r_blocks % job->h_chunks;
    const int64_t b = item / job->splits / job->r_blocks / job->h_chunks;
    const int64_t hk0 = hc * job->nh;
    const int64_t nh = p->heads_kv - hk0 < job->nh ? p->heads_kv - hk0 : job->nh;
    const int64_t r_lo = rb * bm;
    const int64_t rows = job->rows - r_lo < bm ? job->rows - r_lo : bm;
    const int64_t seqlen_k = fa2_kvcache_seqlen_k(p, b);
    const fa2_mask mask = fa2_kvcache_mask(p, seqlen_k);
    const int64_t q_lo = r_lo / group, q_hi = (r_lo + rows - 1) / group + 1;

    /* Q tiles of the item's heads, and each packed row's visible keys */
    for (int64_t hh = 0; hh < nh; hh++) {
        float *qt = w->qt + hh * d * bm;
        for (int64_t rr = 0; rr < rows; rr++) {
            const int64_t r = r_lo + rr;
            const int64_t i = fa2_kvcache_row_query(r, group);
            const int64_t h = fa2_kvcache_row_head(r, group, hk0 + hh);
            fa2_load_row_f32(&a->q, b, i, h, d, w->row);
            for (int64_t c = 0; c < d; c++)
                qt[c * bm + rr] = w->row[c];
        }
    }
    for (int64_t x = 0; x < job->kw * nh * bm; x++)
        w->state[x] = fa2_row_state_init();
    for (int64_t x = 0; x < job->kw * nh * bm * d; x++)
        w->acc[x] = 0.0f;
    for (int64_t rr = 0; rr < rows; rr++) {
        const int64_t i = fa2_kvcache_row_query(r_lo + rr, group);
        fa2_visible_cols(&mask, i, i + 1, &w->vis_lo[rr], &w->vis_hi[rr]);
    }

    const fa2_block_range all =
        fa2_kvcache_kv_blocks(&mask, r_lo, r_lo + rows, group, bn);
    const fa2_block_range chunk = fa2_split_blocks(all, job->splits, split);
    const int64_t steps = fa2_block_count(chunk);
    for (int64_t step = 0; step < steps; step++) {
        const int64_t col_lo = fa2_kv_block_at(chunk, step) * bn;
        /* this tile's running states: key warp step % kw's */
        fa2_row_state *const state = w->state + step % job->kw * nh * bm;
        float *const acc = w->acc + step % job->kw * nh * bm * d;
        const int64_t cols = seqlen_k - col_lo < bn ? seqlen_k - col_lo : bn;
        const int masked = fa2_tile_needs_mask(&mask, q_lo, q_hi, col_lo, bn);
        /* every head's S = Q K^T and online softmax (K's tile) ... */
        load_tiles(&a->k_cache, p, b, col_lo, cols, hk0, nh, bn, w->kv);
        for (int64_t hh = 0; hh < nh; hh++) {
            float *st = w->st + hh * bn * bm;
            fa2_product_nn(&job->kern, cols, rows, d, w->kv + hh * bn * d, d,
                           w->qt + hh * d * bm, bm, st, bm, 0);
            if (masked)
                for (int64_t jj = 0; jj < cols; jj++)
                    for (int64_t rr = 0; rr < rows; rr++)
                        if (col_lo + jj < w->vis_lo[rr] || col_lo + jj >= w->vis_hi[rr])
                            st[jj * bm + rr] = FA2_NEG_INF;
            const fa2_cpu_softmax_io io = {
                .st = st, .ld = bm, .acc = acc + hh * bm * d, .d = d,
                .state = state + hh * bm, .tile_max = w->tile_max,
                .alpha = w->alpha, .max_scaled = w->max_scaled,
                .rowsum = w->rowsum, .scale_log2 = p->scale_log2,
                .dtype = p->dtype};
            fa2_cpu_softmax_tile(&io, rows, cols);
        }
        /* ... then every head's acc += round(P) V (V's tile) */
        load_tiles(&a->v_cache, p, b, col_lo, cols, hk0, nh, bn, w->kv);
        for (int64_t hh = 0; hh < nh; hh++)
            fa2_product_tn(&job->kern, rows, d, cols, w->st + hh * bn * bm, bm,
                           w->kv + hh * bn * d, d, acc + hh * bm * d, d, 1);
    }

    /* the end of the rows: O and LSE, or this split's partials */
    const int64_t split_rows = p->batch * p->heads_q * p->seqlen_q;
    for (int64_t hh = 0; hh < nh; hh++)
        for (int64_t rr = 0; rr < rows; rr++) {
            const int64_t r = r_lo + rr;
            const int64_t i = fa2_kvcache_row_query(r, group);
            const int64_t h = fa2_kvcache_row_head(r, group, hk0 + hh);
            /* the row's O / l (w->row) and LSE: its one running state's,
             * or the key warps' merged in order */
            float lse = 0.0f;
            for (int k = 0; k < job->kw; k++) {
                const fa2_row_state stt = w->state[(k * nh + hh) * bm + rr];
                const float inv_l = fa2_softmax_inv_l(stt);
                const float *acc = w->acc + ((k * nh + hh) * bm + rr) * d;
                float *o_k = job->kw > 1 ? w->kw_o + k * d : w->row;
                for (int64_t c = 0; c < d; c++)
                    o_k[c] = acc[c] * inv_l;
                lse = w->kw_lse[k] = fa2_softmax_lse(stt, p->scale);
            }
            if (job->kw > 1)
                lse = fa2_merge_partials(job->kw, w->kw_lse, 1, w->kw_o, d, d, w->row);
            if (job->splits == 1) {
                fa2_store_row_f32(&a->o, b, i, h, d, w->row);
                if (a->lse.data)
                    *fa2_lse_at(&a->lse, b, h, i) = lse;
                continue;
            }
            const int64_t idx = split * split_rows + (b * p->heads_q + h) * p->seqlen_q + i;
            float *po = job->part_o + idx * d;
            for (int64_t c = 0; c < d; c++)
                po[c] = w->row[c];
            job->part_lse[idx] = lse;
        }
}

/* The combine step of one (sequence, query head): merge each query's
 * partials in split order, round O once. */
static void combine_item(void *ctx, int64_t item, int worker)
{
    const kv_job *job = ctx;
    const fa2_kvcache_args *a = job->a;
    const fa2_kvcache_problem *p = job->p;
    float *out = job->scratch[worker].row;
    const int64_t d = p->head_dim, h = item % p->heads_q, b = item / p->heads_q;
    const int64_t split_rows = p->batch * p->heads_q * p->seqlen_q;
    for (int64_t i = 0; i < p->seqlen_q; i++) {
        const int64_t idx = (b * p->heads_q + h) * p->seqlen_q + i;
        const float lse = fa2_merge_partials(job->splits, job->part_lse + idx,
                                             split_rows, job->part_o + idx * d,
                                             split_rows * d, d, out);
        fa2_store_row_f32(&a->o, b, i, h, d, out);
        if (a->lse.data)
            *fa2_lse_at(&a->lse, b, h, i) = lse;
    }
}

static void free_scratch(kv_scratch *sc, int n)
{
    for (int t = 0; sc && t < n; t++) {
        void *bufs[] = {sc[t].qt, sc[t].kv, sc[t].st, sc[t].acc, sc[t].row,
                        sc[t].kw_o, sc[t].kw_lse, sc[t].state, sc[t].tile_max,
                        sc[t].alpha, sc[t].max_scaled, sc[t].rowsum, sc[t].vis_lo,
                        sc[t].vis_hi};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            free(bufs[i]);
    }
    free(sc);
}

static kv_scratch *alloc_scratch(int n, int64_t nh, int64_t bm, int64_t bn, int64_t d,
                                 int64_t kw)
{
    kv_scratch *sc = calloc((size_t)n, sizeof *sc);
    int ok = sc != NULL;
    for (int t = 0; ok && t < n; t++) {
        kv_scratch *w = &sc[t];
        w->qt = fa2_alloc_n(nh * d * bm, sizeof(float));
        w->kv = fa2_alloc_n(nh * bn * d, sizeof(float));
        w->st = fa2_alloc_n(nh * bn * bm, sizeof(float));
        w->acc = fa2_alloc_n(kw * nh * bm * d, sizeof(float));
        w->row = fa2_alloc_n(d, sizeof(float));
        w->kw_o = fa2_alloc_n(kw * d, sizeof(float));
        w->kw_lse = fa2_alloc_n(kw, sizeof(float));
        w->state = fa2_alloc_n(kw * nh * bm, sizeof(fa2_row_state));
        w->tile_max = fa2_alloc_n(bm, sizeof(float));
        w->alpha = fa2_alloc_n(bm, sizeof(float));
        w->max_scaled = fa2_alloc_n(bm, sizeof(float));
        w->rowsum = fa2_alloc_n(bm, sizeof(float));
        w->vis_lo = fa2_alloc_n(bm, sizeof(int64_t));
        w->vis_hi = fa2_alloc_n(bm, sizeof(int64_t));
        ok = w->qt && w->kv && w->st && w->acc && w->row && w->kw_o && w->kw_lse &&
             w->state && w->tile_max && w->alpha && w->max_scaled && w->rowsum &&
             w->vis_lo && w->vis_hi;
    }
    if (!ok) {
        free_scratch(sc, n);
        return NULL;
    }
    return sc;
}

fa2_status fa2_cpu_tiled_kvcache(const fa2_kvcache_args *a, const fa2_kvcache_problem *p)
{
    kv_job job = {.a = a, .p = p, .bn = p->block_n, .kw = p->key_warps,
                  .splits = p->num_splits};
    fa2_status st = fa2_cpu_tile_kernel(&job.kern);
    if (st != FA2_OK)
        return st;
    item_shape(p, &job.bm, &job.rows, &job.r_blocks, &job.nh, &job.h_chunks);
    const int64_t items = p->batch * job.h_chunks * job.r_blocks * job.splits;
    const int threads = p->num_threads < items ? p->num_threads : (int)items;
    const int64_t part_rows = job.splits > 1 ? job.splits * p->batch * p->heads_q *
                                                   p->seqlen_q : 0;
    job.scratch = alloc_scratch(threads, job.nh, job.bm, job.bn, p->head_dim, job.kw);
    if (part_rows) {
        job.part_o = fa2_alloc_n(part_rows * p->head_dim, sizeof(float));
        job.part_lse = fa2_alloc_n(part_rows, sizeof(float));
    }
    if (!job.scratch || (part_rows && (!job.part_o || !job.part_lse))) {
        free_scratch(job.scratch, threads);
        free(job.part_o);
        free(job.part_lse);
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the tiled backend could not "
                        "allocate its KV-cache workspace (%d threads, %d splits)",
                        threads, job.splits);
    }
    /* the append comes first: the tiles below read the new keys from the
     * cache, as the kernels do */
    fa2_cpu_kvcache_append(a, p);
    fa2_parallel_for(threads, items, kv_item, &job);
    if (job.splits > 1)
        fa2_parallel_for(threads, p->batch * p->heads_q, combine_item, &job);
    free_scratch(job.scratch, threads);
    free(job.part_o);
    free(job.part_lse);
    return FA2_OK;
}
