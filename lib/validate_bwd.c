/* validate_bwd.c — the backward's arguments. q, k, v, o, lse and the mask
 * parameters are exactly the forward's, so they go through the forward's
 * checks (fa2_fwd_validate); this file adds lse being required, dout, and
 * the three gradient outputs. */
#include "config.h"
#include "fa2_backend.h"


/* A tensor `name` with the shape and dtype of `like` (named like_name),
 * contiguous last dim, positive strides; for outputs also non-overlapping. */
static fa2_status check_like(const fa2_tensor *t, const char *name,
                             const fa2_tensor *like, const char *like_name,
                             int is_output)
{
    if (!t->data)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s.data is NULL", name);
    if (t->dtype != like->dtype)
        return fa2_fail(FA2_ERR_DTYPE, "%s.dtype is %s but %s is %s; they must "
                        "match", name, fa2_dtype_name(t->dtype), like_name,
                        fa2_dtype_name(like->dtype));
    for (int i = 0; i < 4; i++)
        if (t->shape[i] != like->shape[i])
            return fa2_fail(FA2_ERR_SHAPE, "%s.shape[%d] is %lld but %s.shape[%d] "
                            "is %lld; they must match", name, i,
                            (long long)t->shape[i], like_name, i,
                            (long long)like->shape[i]);
    for (int i = 0; i < 4; i++)
        if (t->shape[i] == 0)
            return FA2_OK; /* empty (every sequence empty): touches no memory */
    if (t->stride[3] != 1 && t->shape[3] > 1)
        return fa2_fail(FA2_ERR_STRIDE, "%s.stride[3] is %lld: the last dimension "
                        "must be contiguous (stride 1)", name,
                        (long long)t->stride[3]);
    for (int i = 0; i < 4; i++)
        if (t->shape[i] > 1 && t->stride[i] < 1)
            return fa2_fail(FA2_ERR_STRIDE, "%s.stride[%d] is %lld, expected a "
                            "positive stride", name, i, (long long)t->stride[i]);
    fa2_status st = fa2_tensor_check_span(t, name, 4);
    if (st != FA2_OK)
        return st;
    if (is_output && !fa2_tensor_elements_disjoint(t, 4))
        return fa2_fail(FA2_ERR_STRIDE, "%s's strides make distinct elements "
                        "share memory; an output needs non-overlapping strides",
                        name);
    return FA2_OK;
}

fa2_status fa2_bwd_validate(const fa2_bwd_args *a, const fa2_backend_ops *ops,
                            fa2_problem *p)
{
    fa2_status st;
    if (!a)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    if (!a->lse.data)
        return fa2_fail(FA2_ERR_NULL_POINTER, "lse.data is NULL: the backward "
                        "needs the forward's log-sum-exp");
    const fa2_fwd_args f = fa2_bwd_as_fwd_args(a);
    if ((st = fa2_fwd_validate(&f, ops, p)))
        return st;
    if ((st = check_like(&a->dout, "dout", &a->o, "o", 0)) ||
        (st = check_like(&a->dq, "dq", &a->q, "q", 1)) ||
        (st = check_like(&a->dk, "dk", &a->k, "k", 1)) ||
        (st = check_like(&a->dv, "dv", &a->v, "v", 1)))
        return st;

    /* no output may share memory with another output or any input */
    const fa2_tensor *outs[3] = {&a->dq, &a->dk, &a->dv};
    static const char *const out_names[3] = {"dq", "dk", "dv"};
    const fa2_tensor *ins[6] = {&a->q, &a->k, &a->v, &a->o, &a->dout, &a->lse};
    static const char *const in_names[6] = {"q", "k", "v", "o", "dout", "lse"};
    for (int i = 0; i < 3; i++) {
        for (int j = i + 1; j < 3; j++)
            if (fa2_tensor_spans_overlap(outs[i], 4, outs[j], 4))
                return fa2_fail(FA2_ERR_OVERLAP, "%s and %s share memory; outputs "
                                "must not overlap", out_names[i], out_names[j]);
        for (int j = 0; j < 6; j++)
            if (fa2_tensor_spans_overlap(outs[i], 4, ins[j], j == 5 ? 3 : 4))
                return fa2_fail(FA2_ERR_OVERLAP, "%s shares memory with %s; "
                                "outputs must not overlap the inputs",
                                out_names[i], in_names[j]);
    }
    if (a->sinks && !a->dsinks)
        return fa2_fail(FA2_ERR_NULL_POINTER, "dsinks is NULL while sinks is "
                        "set; the backward writes the sinks' gradient there");
    if (a->dsinks && !a->sinks)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "dsinks is set but sinks is "
                        "NULL: there is no sink gradient to write");
    if (a->deterministic != 0 && a->deterministic != 1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "deterministic is %d, expected "
                        "0 or 1", a->deterministic);
    return FA2_OK;
}
