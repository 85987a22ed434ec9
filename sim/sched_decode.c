/* sched_decode.c — the forward over a KV cache (fa2_fwd_kvcache; the mirror
 * is cpu/tiled_kvcache.c), at tile granularity, with the tile logic of
 * lib/fa2_tile.h and lib/fa2_kvcache.h. Up to three launches:
 *
 *   append (when seqlen_new > 0), one block per (sequence, key head):
 *       read the Nnew new rows of k_new and v_new, write them into the
 *       cache at slots seqlen_k - Nnew .. seqlen_k - 1;
 *   decode, one block per (sequence, key head, row block, split), splits
 *       fastest:
 *       load the packed Q tile: the Nq queries of the group's Hq / Hkv
 *           heads, rows r = query r / group, head r % group (each row E
 *           bytes: the whole group is served by one K/V tile);
 *       for each key block of chunk `split` (fa2_split_blocks of the blocks
 *       the rows see, fa2_kvcache_kv_blocks), last to first:
 *           load K_j, V_j (valid rows only; paged: page by page, a page's
 *           rows contiguous, pages anywhere)
 *           S = Q K^T, online softmax, O += P V         (on chip)
 *       one split: store O (E a row) and LSE (4 bytes a row);
 *       else store the float32 partial O (4 d a row) and LSE (4) of this
 *       split, every block, also one whose chunk is empty (O = 0, +inf);
 *   combine (splits > 1), one block per row (sequence, query head,
 *       query): read the row's splits' partial LSE, then the partial O of
 *       the splits whose LSE is finite (fa2_merge_partials never reads an
 *       empty part's O), in split order; store O and LSE.
 *
 * So K and V are read once per (sequence, key head, row block, split) for
 * the keys the rows see: once per group for decode (Nq group <= 64 rows),
 * never once per query head. The counts are those of doc/io-complexity.md
 * section 12; closed_form.c derives them without simulating. Each block
 * also counts the dependent round trips on its critical path (sim_block:
 * dram_trips, l2_trips), which run.c prices with the device's latencies. */
#include "config.h"
#include "sim.h"
#include "fa2_kvcache.h"
#include "../gpu/kvcache_params.h" /* FA2_KVC_KERNEL_HEAD_DIM: the kernels' tile */

enum { DEC_APPEND = 0, DEC_DECODE = 1, DEC_COMBINE = 2 };

/* The cache rows [key_lo, key_lo + n) of (sequence, key head) through the
 * recorder, page by page: the L2 sees (page, slot) lines, the pages of a
 * sequence numbered as if the block table were the identity (the bytes do
 * not depend on where the pages are). */
static void cache_rows(sim_ctx *c, fa2_sim_tensor t, int64_t seq, int64_t hk,
                       int64_t key_lo, int64_t n, int write)
{
    const sim_setup *S = c->S;
    const int64_t ps = S->dec.page_size, hkv = S->p.heads_kv;
    void (*io)(sim_ctx *, fa2_sim_tensor, int64_t, int64_t, int64_t, int64_t,
               int64_t, int) = write ? sim_write : sim_read;
    if (!ps) {
        io(c, t, seq * hkv + hk, key_lo, n, 0, S->E, SIM_SMEM);
        return;
    }
    const int64_t pages = fa2_ceil_div(S->dec.capacity, ps);
    for (int64_t k = key_lo; k < key_lo + n;) {
        const int64_t page = seq * pages + k / ps;
        const int64_t run = sim_min(key_lo + n, (k / ps + 1) * ps) - k;
        io(c, t, page * hkv + hk, k % ps, run, 0, S->E, SIM_SMEM);
        k += run;
    }
}

/* ---- append -------------------------------------------------------------- */

static void append_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                        int64_t tile)
{
    b->slice = slice;
    b->seq = slice / c->S->p.heads_kv;
    b->head = slice % c->S->p.heads_kv;
    b->phase = 0;
}

static int append_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t n = S->dec.seqlen_new, nk = S->p.max_seqlen_k;
    sim_read(c, FA2_SIM_T_K_NEW, b->slice, 0, n, 0, S->E, SIM_REGS);
    sim_read(c, FA2_SIM_T_V_NEW, b->slice, 0, n, 0, S->E, SIM_REGS);
    cache_rows(c, FA2_SIM_T_K, b->seq, b->head, nk - n, n, 1);
    cache_rows(c, FA2_SIM_T_V, b->seq, b->head, nk - n, n, 1);
    b->dram_trips = 1; /* the new rows, then their stores */
    b->phase = SIM_DONE;
    return 0;
}

/* ---- decode -------------------------------------------------------------- */

static void decode_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                        int64_t tile)
{
    const sim_setup *S = c->S;
    const fa2_problem *p = &S->p;
    const int splits = S->dec.splits;
    b->slice = slice;
    b->seq = slice / p->heads_kv;
    b->head = slice % p->heads_kv;
    b->blk = tile; /* row block * splits + split */
    b->lo = tile / splits * L->bm;
    b->n = sim_min(L->bm, S->dec.rows - b->lo);
    b->s = fa2_problem_seq(p, b->seq);
    b->mask = fa2_problem_mask(p, &b->s);
    const fa2_block_range all =
        fa2_kvcache_kv_blocks(&b->mask, b->lo, b->lo + b->n, S->group, L->bn);
    sim_block_visit(b, fa2_split_blocks(all, splits, (int)(tile % splits)), 1);
}

static int decode_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim;
    switch (b->phase) {
    case 0: /* the packed Q tile, once */
        sim_read(c, FA2_SIM_T_Q, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
        b->dram_trips++; /* Q, with the first K/V tile when there is one */
        /* key warps walk a chunk's tiles side by side, then merge their
         * partials in shared memory (a step each) */
        b->tile_steps = fa2_ceil_div(b->nsteps, S->dec.key_warps);
        if (S->dec.key_warps > 1)
            b->smem_trips += S->dec.key_warps;
        b->phase = b->nsteps > 0 ? 1 : 2;
        return 1;
    case 1: { /* one key block of the chunk */
        const int64_t nb = fa2_kv_block_at(b->range, b->step);
        const int64_t col_lo = nb * L->bn;
        const int64_t cols = sim_tile_rows(b->s.seqlen_k, nb, L->bn);
        cache_rows(c, FA2_SIM_T_K, b->seq, b->head, col_lo, cols, 0);
        cache_rows(c, FA2_SIM_T_V, b->seq, b->head, col_lo, cols, 0);
        const int64_t q_lo = b->lo / S->group;
        const int64_t q_hi = (b->lo + b->n - 1) / S->group + 1;
        const int masked = fa2_tile_needs_mask(&b->mask, q_lo, q_hi, col_lo, L->bn);
        sim_smem_fwd_step(c->c, S->partition, L->warps, b->n, cols, d, S->es);
        sim_flops(c->c, SIM_FL_FA2_FWD_STEP, b->n, cols, d, masked);
        if (++b->step == b->nsteps)
            b->phase = 2;
        return 1;
    }
    default: /* O and LSE, or this split's float32 partials */
        sim_flops(c->c, SIM_FL_FA2_FWD_END, b->n, 0, d, 0);
        if (S->dec.splits == 1) {
            sim_write(c, FA2_SIM_T_O, b->slice, b->lo, b->n, 0, S->E, SIM_SMEM);
            sim_write(c, FA2_SIM_T_LSE, b->slice, b->lo, b->n, 0, 4, SIM_REGS);
        } else {
            const int64_t pslice = b->slice * S->dec.splits + b->blk % S->dec.splits;
            sim_write(c, FA2_SIM_T_O_PARTIAL, pslice, b->lo, b->n, 0, 4 * d, SIM_REGS);
            sim_write(c, FA2_SIM_T_LSE_PARTIAL, pslice, b->lo, b->n, 0, 4, SIM_REGS);
        }
        b->phase = SIM_DONE;
        return 0;
    }
}

/* ---- combine -------------------------------------------------------------- */

/* The combine kernel's rows: (sequence, query head, query) in that order,
 * COMBINE_ROWS to a block (gpu/kvcache_kernel.cuh: one, of 128 threads). */
enum { COMBINE_ROWS = 1 };

static void combine_init(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                         int64_t tile)
{
    b->slice = slice;
    b->lo = slice * COMBINE_ROWS;
    const fa2_problem *p = &c->S->p;
    b->n = sim_min(COMBINE_ROWS, p->num_seqs * p->heads_q * p->max_seqlen_q - b->lo);
    b->phase = 0;
}

/* A row's block: read its splits' partial LSEs and partial O, all in
 * flight at once (one L2 round trip: the partials were just written; the
 * O of a split that saw no key is read too, and not used); store O and
 * LSE. Its dependent steps are on chip, one shared-memory step a split:
 * the LSE terms summed in split order and each thread's columns summed
 * over the splits (an empty part adds -0.0 instead of a branch, so the
 * next splits' loads issue before this one's adds and the two sums
 * overlap). On the H200 (ncu, 2026-12-03) the combine took 3.8-4.3 us
 * at 8 splits and 4.9-5.0 at 66: ~17 ns a split, one step of
 * smem_latency_ns (19.3). */
static int combine_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    const sim_setup *S = c->S;
    const int64_t d = S->p.head_dim, g = S->group, nq = S->p.max_seqlen_q;
    const int64_t hq = S->p.heads_q;
    for (int64_t row = b->lo; row < b->lo + b->n; row++) {
        const int64_t i = row % nq, head = row / nq % hq, seq = row / (nq * hq);
        const int64_t kslice = seq * S->p.heads_kv + head / g;
        const int64_t r = i * g + head % g; /* its packed row */
        for (int s = 0; s < S->dec.splits; s++) {
            const int64_t pslice = kslice * S->dec.splits + s;
            sim_read(c, FA2_SIM_T_LSE_PARTIAL, pslice, r, 1, 0, 4, SIM_REGS);
            sim_read(c, FA2_SIM_T_O_PARTIAL, pslice, r, 1, 0, 4 * d, SIM_REGS);
        }
        b->l2_trips = 1;
        b->smem_trips = sim_max(b->smem_trips, (int64_t)S->dec.splits);
        c->c->flops_other += S->dec.splits * (2 * d + 4); /* weights, sums */
        c->c->sfu_ops += S->dec.splits * 2;
        /* O and LSE of a (sequence, query head) as one access, by the
         * block holding its last query: the L2 model's lines are whole
         * tiles, written as a unit (the bytes are the rows' either way) */
        if (i == nq - 1) {
            sim_write(c, FA2_SIM_T_O, seq * hq + head, 0, nq, 0, S->E, SIM_REGS);
            sim_write(c, FA2_SIM_T_LSE, seq * hq + head, 0, nq, 0, 4, SIM_REGS);
        }
    }
    b->phase = SIM_DONE;
    return 0;
}

int sim_decode_launches(const sim_setup *S, sim_launch *out)
{
    const fa2_problem *p = &S->p;
    const sim_tiles t = S->fwd;
    int n = 0;
    if (S->dec.seqlen_new > 0) {
        sim_launch L = {0};
        L.name = "kvcache_append";
        L.kind = DEC_APPEND;
        L.slices = p->num_seqs * p->heads_kv;
        L.tiles = 1;
        L.warps = 4;
        L.bm = L.qrows = t.bm; /* L2 lines as the decode launch's */
        L.bn = L.krows = t.bn;
        if (S->dec.page_size)
            L.krows = (int)(S->dec.page_size < t.bn ? S->dec.page_size : t.bn);
        L.init = append_init;
        L.step = append_step;
        out[n++] = L;
    }
    sim_launch L = {0};
    L.name = "fa2_decode";
    L.kind = DEC_DECODE;
    L.slices = p->num_seqs * p->heads_kv;
    L.tiles = S->dec.r_blocks * S->dec.splits;
    L.warps = t.warps * S->dec.key_warps;
    L.bm = L.qrows = t.bm;
    L.bn = L.krows = t.bn;
    if (S->dec.page_size)
        L.krows = (int)(S->dec.page_size < t.bn ? S->dec.page_size : t.bn);
    L.smem = S->dec.smem; /* Q, and K and V double-buffered (each key warp's) */
    L.step_scale = (double)FA2_KVC_KERNEL_HEAD_DIM(p->head_dim) / 128.0 * t.bn / 32.0;
    L.init = decode_init;
    L.step = decode_step;
    out[n++] = L;
    if (S->dec.splits > 1) {
        sim_launch C = {0};
        C.name = "fa2_decode_combine";
        C.kind = DEC_COMBINE;
        C.slices = fa2_ceil_div(p->num_seqs * p->heads_q * p->max_seqlen_q, COMBINE_ROWS);
        C.tiles = 1;
        C.warps = 4;
        C.bm = C.qrows = t.bm;
        C.bn = C.krows = t.bn;
        /* the LSEs and weights (16-byte aligned), the parts' O: floats */
        C.smem = (((2 * (int64_t)S->dec.splits + 3) & ~(int64_t)3) +
                  (int64_t)S->dec.splits * p->head_dim) * 4;
        C.programmatic = 1; /* gpu/kvcache_kernel.cuh launch_dependent */
        C.init = combine_init;
        C.step = combine_step;
        out[n++] = C;
    }
    return n;
}
