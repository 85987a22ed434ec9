/* warps.c — shared-memory traffic of the compute inside one thread block:
 * how its warps split a tile step, FA2's split-Q against FA1's split-K
 * (FA2 paper, section 3.3 and its Figure 3).
 *
 * The model: each warp reads from shared memory exactly the operand
 * fragments of the products it computes; what stays in registers (P in the
 * forward, the accumulators) costs nothing. Global loads that land in
 * shared memory and stores staged through it are counted by run.c.
 *
 * Forward step, an r x c tile (Q_i: r x d, K_j and V_j: c x d), W warps:
 *
 *               S = Q K^T                 exchange               O += P V
 *   split-Q     Q once (own rows),        none: a warp owns      V by every warp
 *               K by every warp           whole rows
 *   split-K     Q by every warp,          row max and row sum,   V once (own
 *               K once (own keys)         W x r floats each;     keys); partial O
 *                                         partial O, W x r x d   summed through
 *                                         floats, written+read   smem
 *
 * so split-K moves W r d es + 2 c d es + 8 W r (d + 2) bytes and split-Q
 * r d es + 2 W c d es; split-K minus split-Q is
 *     (W - 1) d es (r - 2c) + 8 W r (d + 2),
 * positive unless the key tile is several times taller than the query tile
 * (c > r/2 + 4 W r (d + 2) / ((W - 1) d es), about 3.2 r for fp16 and 4
 * warps): for every tiling the kernels use (r >= c), split-Q moves fewer.
 *
 * Backward step (the same for every algorithm; the FA2 paper keeps the
 * split-K question to the forward): each product's output tile is split by
 * rows over the warps, so its left operand is read once and its right
 * operand once per warp; P and dS are written to shared memory because
 * dV = P^T dO, dK = dS^T Q and dQ = dS K need them transposed / whole. */
#include "config.h"
#include "sim.h"

void sim_smem_fwd_step(fa2_sim_counters *c, fa2_sim_partition part, int warps,
                       int64_t r, int64_t cols, int64_t d, int64_t es)
{
    const int64_t W = warps, q = r * d * es, kv = cols * d * es;
    if (part == FA2_SIM_SPLIT_K && W > 1) { /* one warp has nothing to exchange */
        c->smem_read += W * q + kv;          /* S_w = Q K_w^T               */
        c->smem_written += 2 * W * r * 4;    /* partial row max, row sum    */
        c->smem_read += 2 * W * r * 4;
        c->smem_read += kv;                  /* O_w = P_w V_w               */
        c->smem_written += W * r * d * 4;    /* sum of the W partial O      */
        c->smem_read += W * r * d * 4;
    } else {
        c->smem_read += q + W * kv;          /* S_w = Q_w K^T               */
        c->smem_read += W * kv;              /* O_w += P_w V                */
    }
}

void sim_smem_bwd_step(fa2_sim_counters *c, int warps, int64_t r, int64_t cols,
                       int64_t d, int64_t es)
{
    const int64_t W = warps, q = r * d * es, kv = cols * d * es;
    const int64_t pc = r * cols * es;
    c->smem_read += q + W * kv;  /* S  = Q_i K_j^T                           */
    c->smem_read += q + W * kv;  /* dP = dO_i V_j^T                          */
    c->smem_written += 2 * pc;   /* P and dS to shared memory                */
    c->smem_read += pc + W * q;  /* dV_j += P^T dO_i                         */
    c->smem_read += pc + W * q;  /* dK_j += dS^T Q_i                         */
    c->smem_read += pc + W * kv; /* dQ_i  = dS K_j                           */
}

void sim_smem_gemm(fa2_sim_counters *c, int warps, int64_t m, int64_t n,
                   int64_t k, int64_t es)
{
    c->smem_read += m * k * es + (int64_t)warps * k * n * es;
}
