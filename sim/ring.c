/* ring.c — ring attention (context parallelism, python/fa2/distributed.py)
 * on the simulator: what one ring step sends over the link, how long the
 * step's attention takes on one GPU, and whether the link hides behind it.
 *
 * R GPUs each hold N/R tokens of every sequence (zig-zag: chunks r and
 * 2R-1-r of 2R). A ring step is one chunk pair per GPU, computed while the
 * next K/V share is in flight (doc/algorithm.md section 9):
 *
 *   forward  step 0: the own share, causal over the local N/R tokens (or
 *                    plain N/R x N/R without a mask);
 *            steps 1..R-1: causal: half a chunk pair (N/R queries against
 *                    N/2R keys, or N/2R queries against N/R keys, the same
 *                    work), not causal: N/R x N/R; while it computes, the GPU
 *                    sends its current K/V share (K and V, N/R rows each) to
 *                    the next GPU: R-1 transfers;
 *   backward the same chunk pairs' backward; a step's link carries the next
 *            K/V and the previous step's dK/dV accumulator (float32), which
 *            makes one more hop after the last step to return to its
 *            owner: R-1 K/V transfers and R dK/dV transfers.
 *
 * Each transfer overlaps the step's compute, so a step takes
 * max(compute, link); one ring pass is the sum over steps (the last
 * step's compute has no transfer behind it; the backward's last dK/dV hop
 * is exposed). The compute times are the simulator's (fa2_sim_run on the
 * chunk pair's problem, the device profile's roofline); the link is
 * bytes / bandwidth per direction (each GPU sends to one neighbour and
 * receives from the other at the same time). The one-GPU time is
 * fa2_sim_run on the whole problem: the ring pays when its pass is shorter.
 */
#include "config.h"
#include "sim.h"

#include <stdio.h>
#include <string.h>

/* Link profiles, bandwidth per direction per GPU:
 *  - NVLink 4 (H100 / H200 SXM): 900 GB/s total bidirectional per GPU
 *    (NVIDIA H100 and H200 Tensor Core GPU datasheets: "NVLink: 900GB/s"),
 *    so 450 GB/s each way;
 *  - PCIe Gen5 x16: 32 GT/s x 16 lanes, 128b/130b: ~63 GB/s each way
 *    (PCI-SIG PCIe 5.0 base specification; the H100 PCIe datasheet lists
 *    "PCIe Gen5: 128GB/s" bidirectional), taken as 64 GB/s. */
static const sim_link sim_links[] = {
    {"nvlink4", 450e9},
    {"pcie5", 64e9},
};

fa2_status sim_link_builtin(const char *name, sim_link *out)
{
    for (size_t i = 0; i < sizeof sim_links / sizeof sim_links[0]; i++)
        if (!strcmp(name, sim_links[i].name)) {
            *out = sim_links[i];
            return FA2_OK;
        }
    return fa2_fail(FA2_ERR_INVALID_ARGUMENT,
                    "unknown link '%s' (nvlink4 or pcie5)", name);
}

/* Time of one pass of a problem of nq x nk per sequence, in ms. */
static fa2_status pass_ms(const fa2_sim_args *whole, const fa2_sim_device *dev,
                          fa2_sim_pass pass, int64_t nq, int64_t nk, int causal,
                          double *ms)
{
    fa2_sim_args a = *whole;
    fa2_sim_result r;
    *ms = 0.0;
    if (nq <= 0 || nk <= 0)
        return FA2_OK;
    a.pass = pass;
    a.seqlen_q = nq;
    a.seqlen_k = nk;
    a.causal = causal;
    const fa2_status st = fa2_sim_run(&a, dev, &r);
    if (st == FA2_OK)
        *ms = r.time_ms;
    return st;
}

static double max2(double a, double b)
{
    return a > b ? a : b;
}

/* One direction (forward or backward) of the ring: its step times. */
static fa2_status ring_pass(const fa2_sim_args *a, const fa2_sim_device *dev,
                            int world, fa2_sim_pass pass, sim_ring_pass *p)
{
    const int64_t n = a->seqlen_q, share = n / world;
    const int causal = a->causal;
    fa2_status st;
    memset(p, 0, sizeof *p);
    if ((st = pass_ms(a, dev, pass, share, share, causal, &p->diag_ms)) != FA2_OK)
        return st;
    if ((st = pass_ms(a, dev, pass, share, causal ? share / 2 : share, 0,
                      &p->step_ms)) != FA2_OK)
        return st;
    if ((st = pass_ms(a, dev, pass, n, n, causal, &p->one_gpu_ms)) != FA2_OK)
        return st;
    return FA2_OK;
}

fa2_status sim_ring_run(const fa2_sim_args *a, const fa2_sim_device *dev,
                        const sim_link *link, int world, sim_ring_result *out)
{
    memset(out, 0, sizeof *out);
    if (world < 2 || world > 4096)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT,
                        "a ring needs 2 to 4096 GPUs, not %d", world);
    if (a->cu_seqlens_q || a->window_left >= 0 || a->window_right >= 0 ||
        a->seqlen_k != a->seqlen_q || a->algo != FA2_SIM_FA2)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT,
                        "the ring model takes FA2 self-attention of fixed length "
                        "(seqlen-k = seqlen, no window, no --seqlens)");
    if (a->seqlen_q % (2 * world))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT,
                        "seqlen %lld is not a multiple of 2 x %d GPUs (zig-zag "
                        "chunks)", (long long)a->seqlen_q, world);
    if (!(link->bytes_per_s > 0))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "link bandwidth must be positive");
    const int64_t es = (int64_t)fa2_dtype_size(a->dtype);
    const int64_t share_elems = a->batch * (a->seqlen_q / world) * a->heads_kv * a->head_dim;
    out->world = world;
    out->link = *link;
    out->kv_bytes = 2 * share_elems * es;  /* K and V of one share       */
    out->dkv_bytes = 2 * share_elems * 4;  /* dK and dV, float32 sums    */
    fa2_status st;
    sim_ring_pass *f = &out->fwd, *b = &out->bwd;
    if ((st = ring_pass(a, dev, world, FA2_SIM_PASS_FWD, f)) != FA2_OK)
        return st;
    if ((st = ring_pass(a, dev, world, FA2_SIM_PASS_BWD, b)) != FA2_OK)
        return st;
    f->link_bytes = out->kv_bytes;
    f->sent_bytes = (int64_t)(world - 1) * out->kv_bytes;
    b->link_bytes = out->kv_bytes + out->dkv_bytes;
    b->sent_bytes = (int64_t)(world - 1) * out->kv_bytes + (int64_t)world * out->dkv_bytes;
    for (int i = 0; i < 2; i++) {
        sim_ring_pass *p = i ? b : f;
        p->link_ms = 1e3 * (double)p->link_bytes / link->bytes_per_s;
        /* steps 0 .. R-2 overlap a transfer; step R-1 does not */
        p->ring_ms = max2(p->diag_ms, p->link_ms) +
                     (world - 2) * max2(p->step_ms, p->link_ms) + p->step_ms;
        if (i) /* the last dK/dV hop home */
            p->ring_ms += 1e3 * (double)out->dkv_bytes / link->bytes_per_s;
        p->speedup = p->ring_ms > 0 ? p->one_gpu_ms / p->ring_ms : 0.0;
        p->link_bound = p->link_ms > p->step_ms;
    }
    return FA2_OK;
}

void sim_ring_print(FILE *f, const fa2_sim_args *a, const fa2_sim_device *dev,
                    const sim_ring_result *r)
{
    fprintf(f, "ring attention: %d GPUs (%s) over %s, %.0f GB/s per direction\n",
            r->world, dev->name, r->link.name, r->link.bytes_per_s / 1e9);
    fprintf(f, "problem: batch %lld, heads %lld/%lld, seqlen %lld (%lld per GPU), "
               "d %lld, %s%s\n",
            (long long)a->batch, (long long)a->heads_q, (long long)a->heads_kv,
            (long long)a->seqlen_q, (long long)(a->seqlen_q / r->world),
            (long long)a->head_dim, fa2_dtype_name(a->dtype),
            a->causal ? ", causal (zig-zag)" : "");
    fprintf(f, "%-4s %12s %12s %10s %10s %10s %10s %10s %8s %s\n", "pass",
            "step bytes", "sent/GPU", "step0 ms", "step ms", "link ms",
            "ring ms", "1-GPU ms", "speedup", "bound by");
    for (int i = 0; i < 2; i++) {
        const sim_ring_pass *p = i ? &r->bwd : &r->fwd;
        fprintf(f, "%-4s %12lld %12lld %10.4f %10.4f %10.4f %10.4f %10.4f %7.2fx %s\n",
                i ? "bwd" : "fwd", (long long)p->link_bytes, (long long)p->sent_bytes,
                p->diag_ms, p->step_ms, p->link_ms, p->ring_ms, p->one_gpu_ms,
                p->speedup, p->link_bound ? "link" : "compute");
    }
    fprintf(f, "step time = max(compute, link); the ring pays against one GPU "
               "when speedup > 1 (ideal: %d)\n", r->world);
}
