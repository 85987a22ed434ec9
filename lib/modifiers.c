/* modifiers.c — the arguments of the score modifiers (softcap, ALiBi,
 * sinks) and of dropout: checked once for both passes, and copied into the
 * validated problem the backends read. Their maths is in lib/fa2_score.h
 * and lib/fa2_philox.h. */
#include "config.h"
#include "fa2_backend.h"
#include "fa2_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

fa2_status fa2_mods_validate(const fa2_fwd_args *a, const fa2_backend_ops *ops,
                             fa2_problem *p)
{
    if (!isfinite(a->softcap) || a->softcap < 0.0f)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "softcap is %g, expected 0 "
                        "(off) or a finite positive cap", (double)a->softcap);
    if (a->softcap > 0.0f &&
        !((double)p->scale / (double)a->softcap <= (double)FLT_MAX))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "softmax_scale / softcap is "
                        "%g, which overflows float32", (double)p->scale /
                        (double)a->softcap);
    if (a->alibi_slopes &&
        (a->alibi_batch_stride < 0 ||
         (a->alibi_batch_stride > 0 && a->alibi_batch_stride < p->heads_q)))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "alibi_batch_stride is %lld, "
                        "expected 0 (slopes [Hq] shared by every sequence) or at "
                        "least heads_q = %lld (slopes [B, Hq])",
                        (long long)a->alibi_batch_stride, (long long)p->heads_q);
    if (!(a->dropout_p >= 0.0f && a->dropout_p < 1.0f))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "dropout_p is %g, expected a "
                        "probability in [0, 1)", (double)a->dropout_p);
    const int dropout = a->dropout_p > 0.0f;
    if (dropout && (p->max_seqlen_q > (int64_t)UINT32_MAX ||
                    p->max_seqlen_k > ((int64_t)UINT32_MAX << 2) ||
                    p->num_seqs * p->heads_q > (int64_t)UINT32_MAX))
        return fa2_fail(FA2_ERR_UNSUPPORTED, "dropout counts rows, column groups "
                        "and (sequence, head) pairs in 32 bits each: %lld rows, "
                        "%lld keys and %lld sequences x heads exceed that",
                        (long long)p->max_seqlen_q, (long long)p->max_seqlen_k,
                        (long long)(p->num_seqs * p->heads_q));
    if (a->dropout_mask) {
        const double n = (double)p->num_seqs * (double)p->heads_q *
                         (double)p->max_seqlen_q * (double)p->max_seqlen_k;
        if (n > (double)(INT64_C(1) << 40))
            return fa2_fail(FA2_ERR_SHAPE, "dropout_mask would hold %.3g bytes; "
                            "it is meant for small problems (at most 2^40)", n);
    }

    p->softcap = a->softcap;
    p->alibi_slopes = a->alibi_slopes;
    p->alibi_stride = a->alibi_batch_stride;
    p->sinks = a->sinks;
    p->mods = a->softcap > 0.0f || a->alibi_slopes || a->sinks;
    p->bwd_logits = a->softcap > 0.0f || a->alibi_slopes;
    p->dropout = fa2_dropout_make(dropout ? (double)a->dropout_p : 0.0,
                                  a->dropout_seed, a->dropout_offset);
    p->dropout_mask = a->dropout_mask;
    return FA2_OK;
}

void fa2_problem_mask_clear(const fa2_problem *p)
{
    if (p->dropout_mask)
        memset(p->dropout_mask, 0,
               (size_t)(p->num_seqs * p->heads_q * p->max_seqlen_q *
                        p->max_seqlen_k));
}
