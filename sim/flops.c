/* flops.c — the FLOPs of one tile step, matmul and not.
 *
 * Matmul FLOPs are those executed, tile by tile: 2 r c d per product of an
 * r x c tile (partial tiles: valid rows and columns only; the masked part
 * of a diagonal tile is computed, so a causal pass does a little more than
 * half of the full pass). The non-matmul count is ours, per element of the
 * S tile, per row, per output element; an FMA counts 2, max, add, multiply,
 * exp2, log2 and reciprocal 1 each; the exp2/log2/reciprocal (special
 * function unit) ops are also counted apart, in sfu_ops:
 *
 *   FA2 forward, per S element: max, FMA (scale, subtract max), exp2,
 *     rowsum add = 5; +1 where the tile needs the mask. Per row: max merge,
 *     alpha = exp2((m - m') c) (3), l = alpha l + rowsum (FMA, 2) = 6. Per
 *     accumulator element: acc *= alpha, 1. End: per row 1/l, log, FMA = 4;
 *     per O element 1 (acc / l, once).
 *   FA1 forward, per S element: scale, max, subtract, exp, rowsum = 5 (+1).
 *     Per row: m_new, two exps with their subtractions, l_new (3), 1 / l_new
 *     = 9. Per O element, every step: diag(l) e^(m - m_new) O (2),
 *     e^(m~ - m_new) P V (1), add (1), divide by l_new (1) = 5. This per-step
 *     rescale of O is what FA2 removes (FA2 paper, section 3.1.1).
 *   FA2 backward, per S element: P = exp2(FMA(s, c, -LSE)) (3), dS =
 *     P (dP - D) (2) = 5 (+1). Preprocess: D = rowsum(dO o O), 2 an
 *     element. dK and dQ scaled once: 1 an element.
 *   FA1 backward: P = diag(l)^-1 exp(scale s - m) (4), dS (2) = 6 (+1) an
 *     element, plus D_i = rowsum(dO_i o O_i) again at every step (2 per O
 *     element).
 *   Standard: softmax per element: scale, max, subtract, exp, sum,
 *     normalise = 6 (+1 for the mask everywhere when the problem has one),
 *     1 / sum per row; softmax backward per element: dP P, rowsum, subtract,
 *     multiply, scale = 5.
 *
 * The score modifiers and dropout (sim_flops_mods; doc/algorithm.md
 * section 7, as the sm_90 kernels run them), per S element; an integer
 * instruction counts 1 like an add (it takes an issue slot as one does):
 *   softcap: x k, exp2, 1 + e, 1 / d, two FMAs = 8 (2 of them exp2 and
 *     reciprocal); the backward also forms t = 1 - 2r (FMA), 1 - t t (2)
 *     and multiplies dS by it = 12 (2).
 *   ALiBi: the distance (add) and the FFMA that subtracts slope d = 3; the
 *     backward works on logits (x scale, 1 more) = 4.
 *   dropout: a Philox 4x32-10 call per 8 elements (10 rounds of two
 *     32x32->64 multiplies and two 3-input XORs: 40, and ~20 to turn its
 *     four words into eight decisions) = 7.5, plus applying it: 1 in the
 *     forward (a mask and an AND per packed pair), 3 in the backward (dP
 *     scaled by 1/(1-p), P and dP' selected) = 8.5 and 10.5.
 *   the backward with softcap, ALiBi or dropout masks every element, not
 *     only a boundary tile's (+1 on the others).
 *   a sink: its row start (2 a row and query block) is not counted.
 */
#include "config.h"
#include "sim.h"

void sim_flops(fa2_sim_counters *c, sim_flop_kind kind, int64_t r, int64_t cols,
               int64_t d, int masked)
{
    const int64_t e = r * cols, mk = masked ? e : 0;
    switch (kind) {
    case SIM_FL_FA2_FWD_STEP:
        c->flops_matmul += 4 * e * d;
        c->flops_other += 5 * e + mk + 6 * r + r * d;
        c->sfu_ops += e + r;
        break;
    case SIM_FL_FA2_FWD_END:
        c->flops_other += 4 * r + r * d;
        c->sfu_ops += 2 * r;
        break;
    case SIM_FL_FA1_FWD_STEP:
        c->flops_matmul += 4 * e * d;
        c->flops_other += 5 * e + mk + 9 * r + 5 * r * d;
        c->sfu_ops += e + 3 * r;
        break;
    case SIM_FL_FA2_BWD_STEP:
        c->flops_matmul += 10 * e * d;
        c->flops_other += 5 * e + mk;
        c->sfu_ops += e;
        break;
    case SIM_FL_FA1_BWD_STEP:
        c->flops_matmul += 10 * e * d;
        c->flops_other += 6 * e + mk + 2 * r * d;
        c->sfu_ops += e;
        break;
    case SIM_FL_BWD_PRE:
        c->flops_other += 2 * r * d;
        break;
    case SIM_FL_SCALE:
        c->flops_other += r * d;
        break;
    case SIM_FL_GEMM:
        c->flops_matmul += 2 * e * d;
        break;
    case SIM_FL_STD_SOFTMAX:
        c->flops_other += 6 * e + mk;
        c->sfu_ops += e;
        break;
    case SIM_FL_STD_SOFTMAX_BWD:
        c->flops_other += 5 * e;
        break;
    case SIM_FL_STD_SOFTMAX_END:
        c->flops_other += r;
        c->sfu_ops += r;
        break;
    }
}

void sim_flops_mods(fa2_sim_counters *c, const sim_mods *m, int bwd, int64_t r,
                    int64_t cols, int masked)
{
    const int64_t e = r * cols;
    int64_t other2 = 0, sfu = 0; /* per element, in halves (dropout's 7.5) */
    if (m->softcap) {
        other2 += 2 * (bwd ? 12 : 8);
        sfu += 2;
    }
    if (m->alibi)
        other2 += 2 * (bwd ? 4 : 3);
    if (m->dropout)
        other2 += bwd ? 21 : 17;
    if (bwd && !masked && (m->softcap || m->alibi || m->dropout))
        other2 += 2;
    c->flops_other += other2 * e / 2;
    c->sfu_ops += sfu * e;
}
