/* flops.c — the FLOP counts of a pass, by the FlashAttention-2 paper's
 * count (fa2.h says which pairs count). */
#include "config.h"
#include "fa2_internal.h"

/* Visible (query, key) pairs of one sequence: each row's visible keys form
 * one interval (fa2_visible_cols of that single row). */
static double visible_pairs(const fa2_mask *m)
{
    double pairs = 0.0;
    for (int64_t i = 0; i < m->seqlen_q; i++) {
        int64_t lo, hi;
        fa2_visible_cols(m, i, i + 1, &lo, &hi);
        pairs += (double)(hi - lo);
    }
    return pairs;
}

double fa2_fwd_flops(const fa2_fwd_args *args)
{
    fa2_problem p;
    if (!args || fa2_fwd_validate(args, NULL, &p) != FA2_OK)
        return 0.0;
    const int windowed = p.window_left >= 0 || p.window_right >= 0;
    double pairs = 0.0;
    for (int64_t b = 0; b < p.num_seqs; b++) {
        const fa2_seq s = fa2_problem_seq(&p, b);
        const double full = (double)s.seqlen_q * (double)s.seqlen_k;
        if (!p.causal && !windowed)
            pairs += full; /* the paper's count */
        else if (p.causal && !windowed && s.seqlen_q == s.seqlen_k)
            pairs += 0.5 * full; /* the paper's count: half when causal */
        else {
            const fa2_mask m = fa2_problem_mask(&p, &s);
            pairs += visible_pairs(&m); /* other masks: counted exactly */
        }
    }
    return 4.0 * pairs * (double)p.head_dim * (double)p.heads_q;
}

double fa2_bwd_flops(const fa2_bwd_args *args)
{
    if (!args)
        return 0.0;
    const fa2_fwd_args f = fa2_bwd_as_fwd_args(args);
    return 2.5 * fa2_fwd_flops(&f);
}
