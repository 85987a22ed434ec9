/* run.c — the launch driver: thread blocks placed on SMs in launch order,
 * in waves; counters and the roofline time.
 *
 * Without L2 the order cannot change a count, so each block simply runs to
 * completion. With L2, a launch of G blocks fills min(G, SMs x blocks per
 * SM) slots in launch order (blocks per SM from the block's shared-memory
 * footprint, warps, the device's block limit and, if given, registers);
 * the resident blocks advance in lockstep, one tile step each per round,
 * and when a block finishes the next block in launch order takes its slot,
 * as the hardware's block scheduler does. Launches run one after another
 * (one stream); the L2 keeps its contents across them. What a block reads
 * and writes is counted by the event recorder (record.c). */
#include "config.h"
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- launches ---------------------------------------------------------------- */

int sim_launches(const sim_setup *S, sim_launch *out)
{
    int n = 0;
    if (S->algo == FA2_SIM_DECODE)
        return sim_decode_launches(S, out);
    for (int pass = FA2_SIM_PASS_FWD; pass <= FA2_SIM_PASS_BWD; pass <<= 1) {
        if (!(S->pass & pass))
            continue;
        switch (S->algo) {
        case FA2_SIM_STANDARD: n += sim_std_launches(S, (fa2_sim_pass)pass, out + n); break;
        case FA2_SIM_FA1: n += sim_fa1_launches(S, (fa2_sim_pass)pass, out + n); break;
        case FA2_SIM_FA2: n += sim_fa2_launches(S, (fa2_sim_pass)pass, out + n); break;
        case FA2_SIM_DECODE: break; /* above */
        }
    }
    return n;
}

/* Resident blocks per SM. */
static int occupancy(const fa2_sim_device *dev, const sim_setup *S,
                     const sim_launch *L)
{
    int64_t b = dev->max_blocks_per_sm;
    b = sim_min(b, dev->max_warps_per_sm / L->warps);
    if (L->smem > 0)
        b = sim_min(b, dev->smem_per_sm / (L->smem + dev->smem_reserved_per_block));
    if (S->regs_per_thread > 0)
        b = sim_min(b, dev->regs_per_sm / ((int64_t)S->regs_per_thread * 32 * L->warps));
    return (int)sim_max(b, 1);
}

static void decode(const sim_setup *S, const sim_launch *L, int64_t id,
                   int64_t *slice, int64_t *tile)
{
    if (S->order == FA2_SIM_ORDER_HEAD_MAJOR) {
        *slice = id / L->tiles;
        *tile = id % L->tiles;
    } else {
        *tile = id / L->slices;
        *slice = id % L->slices;
    }
}

/* The next block in launch order that has work, into *b; 0 if none left. */
static int next_block(sim_ctx *c, const sim_launch *L, int64_t grid,
                      int64_t *next, sim_block *b)
{
    while (*next < grid) {
        int64_t slice, tile;
        const int64_t id = (*next)++;
        decode(c->S, L, id, &slice, &tile);
        memset(b, 0, sizeof *b);
        b->id = id;
        L->init(c, L, b, slice, tile);
        if (b->phase != SIM_DONE)
            return 1;
    }
    return 0;
}

/* Seconds for mm matmul FLOPs, other non-matmul FLOPs of which sfu are
 * special-function operations, at full-GPU rate. FA2's softmax sits
 * between its two products in one dependency chain, so the pipes' times
 * add; a warp-specialised kernel (overlap) runs one warpgroup's softmax
 * under another's products, and takes as long as its busiest pipe
 * (tensor cores, or the CUDA cores' fp32 plus exp2 work: FA3's roofline). */
static double pipes_s(const fa2_sim_device *dev, int64_t mm, int64_t other, int64_t sfu,
                      int overlap)
{
    const double t_mm = (double)mm / (dev->matmul_tflops * 1e12);
    const double t_cuda = (double)(other - sfu) / (dev->fp32_tflops * 1e12) +
                          (double)sfu / (dev->sfu_tops * 1e12);
    if (overlap)
        return t_mm > t_cuda ? t_mm : t_cuda;
    return t_mm + t_cuda;
}

/* Compute time of the FLOPs counted so far, in seconds at full-GPU rate. */
static double compute_s(const fa2_sim_device *dev, const fa2_sim_counters *c,
                        int overlap)
{
    return pipes_s(dev, c->flops_matmul, c->flops_other, c->sfu_ops, overlap);
}

/* One step of block b, its FLOPs added to the block's. */
static int counted_step(sim_ctx *c, const sim_launch *L, sim_block *b)
{
    fa2_sim_counters *k = c->c;
    const int64_t mm = k->flops_matmul, other = k->flops_other, sfu = k->sfu_ops;
    const int more = L->step(c, L, b);
    b->mm += k->flops_matmul - mm;
    b->other += k->flops_other - other;
    b->sfu += k->sfu_ops - sfu;
    return more;
}

static double block_s(const fa2_sim_device *dev, const sim_block *b, int overlap)
{
    return pipes_s(dev, b->mm, b->other, b->sfu, overlap);
}

/* The seconds block b holds its slot for fixed costs: the device's per-block
 * cost and the dependent round trips its schedule counted. Latencies do
 * not take an SM's throughput: the blocks resident on an SM wait for their
 * loads at the same time. */
static double block_latency_s(const fa2_sim_device *dev, const sim_launch *L,
                              const sim_block *b)
{
    const double dram = dev->dram_latency_ns * 1e-9;
    const double step = dev->tile_step_ns * 1e-9 * L->step_scale;
    double s = dev->block_us * 1e-6 + (double)b->dram_trips * dram +
               (double)b->l2_trips * dev->l2_latency_ns * 1e-9 +
               (double)b->smem_trips * dev->smem_latency_ns * 1e-9;
    /* steps 0 .. T-2 wait for the next tile or compute, whichever is
     * longer; the last one computes */
    if (b->tile_steps > 0)
        s += (double)(b->tile_steps - 1) * (step > dram ? step : dram) + step;
    return s;
}

/* The part of a streaming block's chain (one with tile steps) during
 * which its tiles do not flow: block_us (dispatch, prologue, epilogue) and
 * its counted round trips (the first tile's, the key warps' merges): its
 * chain less the tile steps. -1 for a block with no tile steps (the
 * schedules that count no chain, a combine, an empty chunk). */
static double block_fill_s(const fa2_sim_device *dev, const sim_block *b)
{
    if (b->tile_steps <= 0)
        return -1;
    return dev->block_us * 1e-6 + (double)b->dram_trips * dev->dram_latency_ns * 1e-9 +
           (double)b->l2_trips * dev->l2_latency_ns * 1e-9 +
           (double)b->smem_trips * dev->smem_latency_ns * 1e-9;
}

/* The least fill of the launch's streaming blocks so far (-1: none yet). */
static void fill_min(double *fill, const fa2_sim_device *dev, const sim_block *b)
{
    const double f = block_fill_s(dev, b);
    if (f >= 0 && (*fill < 0 || f < *fill))
        *fill = f;
}

/* Greedy list scheduling of the blocks, in launch order, on the SMs (each
 * block at 1/SMs of the device's rates): the busiest SM's finish time. It
 * charges FA1's few blocks (one per head) and causal load imbalance, which
 * a device-wide FLOP rate would hide. The same list scheduling over the
 * launch's block slots (SMs x blocks per SM) times the blocks' fixed costs
 * (block_latency_s): a block starts when a slot frees. */
typedef struct sm_sched {
    double *heap; /* min-heap of the units' finish times, seconds */
    int n;        /* units: SMs, or block slots                  */
    double span;
} sm_sched;

/* The earliest-free unit takes `seconds` more. */
static void heap_push_back(sm_sched *q, double seconds)
{
    const double t = q->heap[0] + seconds;
    q->span = t > q->span ? t : q->span;
    int i = 0; /* replace the root and sift down */
    for (;;) {
        const int l = 2 * i + 1, r = l + 1;
        int m = i;
        double v = t;
        if (l < q->n && q->heap[l] < v) {
            m = l;
            v = q->heap[l];
        }
        if (r < q->n && q->heap[r] < v)
            m = r;
        if (m == i)
            break;
        q->heap[i] = q->heap[m];
        i = m;
    }
    q->heap[i] = t;
}

/* A block's compute: work at full-GPU rate, so SMs x work on its SM. */
static void sched_add(sm_sched *q, int sms, double work)
{
    if (work > 0)
        heap_push_back(q, work * sms);
}

/* A block's fixed costs on the earliest-free slot. */
static void slot_add(sm_sched *q, double seconds)
{
    if (seconds > 0)
        heap_push_back(q, seconds);
}

/* With L2, blocks finish out of launch order: their compute times and
 * fixed costs are kept (as float) and scheduled at the end, for grids up
 * to this many blocks; a larger grid falls back to device-wide rates. */
#define MAX_TIMED_GRID ((int64_t)1 << 24)

/* The block_us of the first wave of a programmatic dependent on an sm_90
 * device: those blocks are dispatched and run their prologue under the
 * previous launch's tail (its blocks trigger the dependent after their last
 * tile; the dependent waits in griddepcontrol.wait for its data), so their
 * slots start that much early. Later waves are dispatched as slots free and
 * pay it. */
static double hidden_s(const fa2_sim_device *dev, const sim_launch *L)
{
    return L->programmatic && dev->arch >= 90 ? dev->block_us * 1e-6 : 0.0;
}

/* Run launch L: counters into c, the compute span and the latency span
 * (seconds; -1: unknown, the caller uses device-wide rates) and the
 * least fill of its streaming blocks (block_fill_s; 0 when none) out. */
static fa2_status run_launch(sim_ctx *c, const sim_launch *L,
                             const fa2_sim_device *dev, int64_t slots_max,
                             double *span, double *lat_span, double *lat_sum,
                             double *fill)
{
    const int64_t grid = L->slices * L->tiles;
    const int64_t slots = sim_max(1, sim_min(grid, slots_max));
    int64_t next = 0;
    sm_sched q = {calloc((size_t)dev->sms, sizeof(double)), dev->sms, 0};
    sm_sched lq = {calloc((size_t)slots, sizeof(double)), (int)slots, 0};
    *span = *lat_span = -1;
    *lat_sum = 0;
    *fill = -1;
    if (!q.heap || !lq.heap) {
        free(q.heap);
        free(lq.heap);
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the simulator could not "
                        "allocate its SM schedule");
    }
    for (int64_t s = 0; s < slots; s++)
        lq.heap[s] = -hidden_s(dev, L);
    if (!c->l2) { /* blocks run to completion in launch order */
        sim_block b;
        while (next_block(c, L, grid, &next, &b)) {
            while (counted_step(c, L, &b))
                ;
            sched_add(&q, dev->sms, block_s(dev, &b, L->overlap));
            const double lat = block_latency_s(dev, L, &b);
            slot_add(&lq, lat);
            *lat_sum += lat;
            fill_min(fill, dev, &b);
        }
        *span = q.span;
        *lat_span = lq.span;
        *fill = *fill > 0 ? *fill : 0;
        free(q.heap);
        free(lq.heap);
        return FA2_OK;
    }
    float *work = grid <= MAX_TIMED_GRID ? calloc((size_t)sim_max(grid, 1), sizeof *work)
                                         : NULL;
    float *lat = work ? calloc((size_t)sim_max(grid, 1), sizeof *lat) : NULL;
    sim_block *blk = malloc(sizeof *blk * (size_t)slots);
    unsigned char *live = malloc((size_t)slots);
    if (!blk || !live || (work && !lat)) {
        free(blk);
        free(live);
        free(work);
        free(lat);
        free(q.heap);
        free(lq.heap);
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the simulator could not "
                        "allocate %lld resident blocks", (long long)slots);
    }
    int64_t active = 0;
    for (int64_t s = 0; s < slots; s++) {
        live[s] = (unsigned char)next_block(c, L, grid, &next, &blk[s]);
        active += live[s];
    }
    while (active > 0 && !c->oom) {
        for (int64_t s = 0; s < slots; s++) {
            if (!live[s] || counted_step(c, L, &blk[s]))
                continue;
            const double l = block_latency_s(dev, L, &blk[s]);
            *lat_sum += l;
            fill_min(fill, dev, &blk[s]);
            if (work) {
                work[blk[s].id] = (float)block_s(dev, &blk[s], L->overlap);
                lat[blk[s].id] = (float)l;
            }
            if (!next_block(c, L, grid, &next, &blk[s])) {
                live[s] = 0;
                active--;
            }
        }
    }
    if (work) {
        for (int64_t id = 0; id < grid; id++) {
            sched_add(&q, dev->sms, work[id]);
            slot_add(&lq, lat[id]);
        }
        *span = q.span;
        *lat_span = lq.span;
    }
    *fill = *fill > 0 ? *fill : 0;
    free(blk);
    free(live);
    free(work);
    free(lat);
    free(q.heap);
    free(lq.heap);
    return FA2_OK;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void add_counters(fa2_sim_counters *to, const fa2_sim_counters *c)
{
    to->global_read += c->global_read;
    to->global_written += c->global_written;
    to->dram_read += c->dram_read;
    to->dram_written += c->dram_written;
    to->smem_read += c->smem_read;
    to->smem_written += c->smem_written;
    to->flops_matmul += c->flops_matmul;
    to->flops_other += c->flops_other;
    to->sfu_ops += c->sfu_ops;
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        to->tensor_read[t] += c->tensor_read[t];
        to->tensor_written[t] += c->tensor_written[t];
    }
}

/* Roofline: memory, compute and the blocks' fixed costs overlap (each is a
 * bound on the launch's time; within an SM the pipes add, or overlap for a
 * warp-specialised launch: pipes_s), except the fill: a launch whose blocks
 * stream tiles moves its bytes and does its FLOPs only during their tile
 * steps, so the bytes' and the FLOPs' bounds start after the first blocks'
 * dispatch, prologue and first round trip and end before the last ones'
 * epilogue (fill_s, the least such part of a streaming block's chain; the
 * other blocks' fill runs under the streaming). The launch's own overhead
 * adds, except for a programmatic dependent on an sm_90 device, whose
 * launch happens under the previous launch's tail (as does its first
 * wave's block_us: run_launch). */
static void roofline(const fa2_sim_device *dev, fa2_sim_launch *L, int l2,
                     double span_s, int overlap, double lat_span_s, double lat_sum_s,
                     int64_t slots, int programmatic, double fill_s)
{
    const fa2_sim_counters *c = &L->c;
    const double bytes = l2 ? (double)(c->dram_read + c->dram_written)
                            : (double)(c->global_read + c->global_written);
    const int pdl = programmatic && dev->arch >= 90;
    L->memory_ms = 1e3 * bytes / (dev->hbm_gbps * 1e9);
    L->compute_ms = 1e3 * (span_s >= 0 ? span_s : compute_s(dev, c, overlap));
    if (lat_span_s >= 0) {
        L->latency_ms = 1e3 * lat_span_s;
    } else { /* the mean slot's chain, less what the first wave hides */
        const double s = lat_sum_s / (double)sim_max(1, slots) -
                         (pdl ? dev->block_us * 1e-6 : 0.0);
        L->latency_ms = 1e3 * (s > 0 ? s : 0.0);
    }
    L->fill_ms = 1e3 * fill_s;
    L->launch_ms = pdl ? 0.0 : 1e-3 * dev->launch_us;
    double t = L->memory_ms > L->compute_ms ? L->memory_ms : L->compute_ms;
    t += L->fill_ms;
    t = t > L->latency_ms ? t : L->latency_ms;
    L->time_ms = L->launch_ms + t;
}

fa2_status fa2_sim_run(const fa2_sim_args *args, const fa2_sim_device *dev,
                       fa2_sim_result *out)
{
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
    sim_setup S;
    fa2_status st = sim_setup_make(args, dev, &S);
    if (st != FA2_OK)
        return st;
    memset(out, 0, sizeof *out);

    sim_launch L[FA2_SIM_MAX_LAUNCHES];
    double span[FA2_SIM_MAX_LAUNCHES], lat_span[FA2_SIM_MAX_LAUNCHES];
    double lat_sum[FA2_SIM_MAX_LAUNCHES], fill[FA2_SIM_MAX_LAUNCHES];
    int64_t slots[FA2_SIM_MAX_LAUNCHES];
    const int n = sim_launches(&S, L);
    sim_ctx c;
    memset(&c, 0, sizeof c);
    c.S = &S;
    for (int k = 0; k < n; k++) {
        c.seg_q = gcd64(c.seg_q, L[k].qrows);
        c.seg_k = gcd64(c.seg_k, L[k].krows);
    }
    if (args->l2) {
        c.l2 = sim_l2_new(dev->l2_bytes);
        if (!c.l2)
            return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the simulator could not "
                            "allocate its L2 model");
    }
    for (int k = 0; k < n && st == FA2_OK; k++) {
        fa2_sim_launch *r = &out->launch[k];
        snprintf(r->name, sizeof r->name, "%s", L[k].name);
        r->grid = L[k].slices * L[k].tiles;
        r->warps = L[k].warps;
        r->block_m = L[k].bm;
        r->block_n = L[k].bn;
        r->smem_per_block = L[k].smem;
        r->blocks_per_sm = occupancy(dev, &S, &L[k]);
        r->fits = L[k].smem <= dev->smem_per_block;
        c.c = &r->c;
        c.launch = k;
        slots[k] = (int64_t)dev->sms * r->blocks_per_sm;
        st = run_launch(&c, &L[k], dev, slots[k], &span[k], &lat_span[k], &lat_sum[k],
                        &fill[k]);
        if (st == FA2_OK && c.oom)
            st = fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the L2 model ran out of memory");
    }
    if (c.l2) {
        if (st == FA2_OK) {
            sim_l2_flush(c.l2);
            for (int k = 0; k < n; k++)
                out->launch[k].c.dram_written += sim_l2_writeback(c.l2, k);
        }
        sim_l2_free(c.l2);
    }
    if (st != FA2_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->num_launches = n;
    out->l2_hits = c.hits;
    out->l2_misses = c.misses;
    for (int k = 0; k < n; k++) {
        roofline(dev, &out->launch[k], args->l2, span[k], L[k].overlap, lat_span[k],
                 lat_sum[k], slots[k], L[k].programmatic, fill[k]);
        add_counters(&out->total, &out->launch[k].c);
        out->time_ms += out->launch[k].time_ms;
    }
    fa2_sim_counters cf;
    if ((st = fa2_sim_closed_form(args, dev, &cf)) != FA2_OK ||
        (st = fa2_sim_compulsory(args, &out->compulsory_read,
                                 &out->compulsory_written)) != FA2_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->closed_form_read = cf.global_read;
    out->closed_form_written = cf.global_written;
    out->flops_paper = sim_paper_flops(&S);
    out->tflops = out->time_ms > 0 ? out->flops_paper / (out->time_ms * 1e-3) / 1e12 : 0;
    fa2_clear_error();
    return FA2_OK;
}
