/* record.c — the event recorder: every global read, write and atomic add a
 * schedule's block makes is counted here (bytes by tensor, shared-memory
 * staging) and, with the L2 model on, fed to it line by line. The
 * schedules (sched_*.c) call it; it calls nothing above it. */
#include "config.h"
#include "sim.h"

static int key_side(fa2_sim_tensor t)
{
    return t == FA2_SIM_T_K || t == FA2_SIM_T_V || t == FA2_SIM_T_DK ||
           t == FA2_SIM_T_DV;
}

/* Pass rows [row_lo, row_lo + rows) through the L2 model in lines of
 * seg_q / seg_k rows (the gcd of the tile heights used on that side, so
 * lines never straddle tiles of any launch of the run). */
static void l2_rows(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t row_lo,
                    int64_t rows, int64_t col, int64_t row_bytes, int write)
{
    const int64_t g = key_side(t) ? c->seg_k : c->seg_q;
    const int64_t end = row_lo + rows;
    const uint64_t k1 = ((uint64_t)t << 56) | (uint64_t)slice;
    for (int64_t r = row_lo; r < end;) {
        const int64_t seg = r / g;
        const int64_t seg_end = sim_min((seg + 1) * g, end);
        const uint64_t k2 = ((uint64_t)seg << 32) | (uint64_t)col;
        const int64_t miss = sim_l2_access(c->l2, k1, k2, (seg_end - r) * row_bytes,
                                           write, c->launch);
        if (miss < 0) {
            c->oom = 1;
        } else if (!write) {
            c->c->dram_read += miss;
            if (miss)
                c->misses++;
            else
                c->hits++;
        }
        r = seg_end;
    }
}

/* One global access of `rows` rows: the byte counters, the shared-memory
 * staging (via SIM_SMEM: a load lands in shared memory; a store goes
 * registers -> shared -> global, coalesced), the L2 feed. */
static void record_access(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t row_lo,
                          int64_t rows, int64_t col, int64_t row_bytes, int via,
                          int write)
{
    if (rows <= 0)
        return;
    const int64_t bytes = rows * row_bytes;
    *(write ? &c->c->global_written : &c->c->global_read) += bytes;
    *(write ? &c->c->tensor_written[t] : &c->c->tensor_read[t]) += bytes;
    if (via == SIM_SMEM) {
        c->c->smem_written += bytes; /* cp.async global -> shared, or staging */
        if (write)
            c->c->smem_read += bytes;
    }
    if (c->l2)
        l2_rows(c, t, slice, row_lo, rows, col, row_bytes, write);
}

void sim_read(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t row_lo,
              int64_t rows, int64_t col, int64_t row_bytes, int via)
{
    record_access(c, t, slice, row_lo, rows, col, row_bytes, via, 0);
}

void sim_write(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t row_lo,
               int64_t rows, int64_t col, int64_t row_bytes, int via)
{
    record_access(c, t, slice, row_lo, rows, col, row_bytes, via, 1);
}

void sim_atomic_add(sim_ctx *c, fa2_sim_tensor t, int64_t slice,
                    int64_t row_lo, int64_t rows, int64_t row_bytes)
{
    if (rows <= 0)
        return;
    const int64_t bytes = rows * row_bytes;
    c->c->global_read += bytes;
    c->c->global_written += bytes;
    c->c->tensor_read[t] += bytes;
    c->c->tensor_written[t] += bytes;
    if (c->l2) {
        l2_rows(c, t, slice, row_lo, rows, 0, row_bytes, 0);
        l2_rows(c, t, slice, row_lo, rows, 0, row_bytes, 1);
    }
}
