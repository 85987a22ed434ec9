/* kvcache.c — the entry points of the forward over a KV cache
 * (fa2_fwd_kvcache and its helpers): find the backend's row, validate once
 * (lib/validate_kvcache.c), settle the split count, call through the row.
 * A row without fwd_kvcache answers FA2_ERR_UNSUPPORTED. */
#include "config.h"
#include "api.h"
#include "fa2_kvcache.h"

/* Validate for backend b and resolve key_warps, then num_splits, into p. */
static fa2_status prepare(const fa2_kvcache_args *args, fa2_backend b,
                          const fa2_backend_ops **ops, fa2_kvcache_problem *p)
{
    if (!args)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    if (!(*ops = fa2_backend_row(b)))
        return fa2_backend_unknown(b);
    fa2_status st = fa2_kvcache_validate(args, *ops, p);
    if (st == FA2_OK && p->key_warps == 0) {
        p->key_warps = 1;
        if ((*ops)->kvcache_key_warps)
            st = (*ops)->kvcache_key_warps(p, &p->key_warps);
    }
    if (st != FA2_OK || p->num_splits > 0)
        return st;
    if ((*ops)->kvcache_splits)
        return (*ops)->kvcache_splits(p, &p->num_splits);
    p->num_splits = fa2_kvcache_splits_heuristic(
        p->batch, p->heads_kv, p->seqlen_q * p->group, p->capacity, p->block_m,
        p->block_n, p->num_threads);
    return FA2_OK;
}

static fa2_status done(fa2_status st)
{
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

fa2_status fa2_fwd_kvcache_check(const fa2_kvcache_args *args, fa2_backend backend)
{
    const fa2_backend_ops *ops;
    fa2_kvcache_problem p;
    return done(prepare(args, backend, &ops, &p));
}

fa2_status fa2_fwd_kvcache(const fa2_kvcache_args *args, fa2_backend backend)
{
    const fa2_backend_ops *ops;
    fa2_kvcache_problem p;
    fa2_status st = prepare(args, backend, &ops, &p);
    if (st != FA2_OK)
        return st;
    if (!ops->fwd_kvcache)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the %s backend has no forward over a "
                        "KV cache", ops->name);
    return done(ops->fwd_kvcache(args, &p));
}

/* *out = what prepare() resolved for these args (the split count or the
 * key warps), 0 on failure. */
static fa2_status resolved(const fa2_kvcache_args *args, fa2_backend backend, int *out,
                           const char *name, int key_warps)
{
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL", name);
    *out = 0;
    const fa2_backend_ops *ops;
    fa2_kvcache_problem p;
    fa2_status st = prepare(args, backend, &ops, &p);
    if (st == FA2_OK)
        *out = key_warps ? p.key_warps : p.num_splits;
    return done(st);
}

fa2_status fa2_kvcache_num_splits(const fa2_kvcache_args *args, fa2_backend backend,
                                  int *num_splits)
{
    return resolved(args, backend, num_splits, "num_splits", 0);
}

fa2_status fa2_kvcache_key_warps(const fa2_kvcache_args *args, fa2_backend backend,
                                 int *key_warps)
{
    return resolved(args, backend, key_warps, "key_warps", 1);
}

fa2_status fa2_kvcache_workspace_size(const fa2_kvcache_args *args,
                                      fa2_backend backend, size_t *bytes)
{
    if (!bytes)
        return fa2_fail(FA2_ERR_NULL_POINTER, "bytes is NULL");
    *bytes = 0;
    const fa2_backend_ops *ops;
    fa2_kvcache_problem p;
    fa2_status st = prepare(args, backend, &ops, &p);
    if (st != FA2_OK || p.num_splits == 1)
        return done(st);
    /* float32 partial O [splits][B][Hq][Nq][d] and LSE [splits][B][Hq][Nq] */
    const uint64_t rows = (uint64_t)p.num_splits * (uint64_t)p.batch *
                          (uint64_t)p.heads_q * (uint64_t)p.seqlen_q;
    const uint64_t total = rows * ((uint64_t)p.head_dim + 1) * sizeof(float);
    if (total / sizeof(float) / ((uint64_t)p.head_dim + 1) != rows || total > SIZE_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "the split-KV workspace of %d splits does "
                        "not fit in size_t", p.num_splits);
    *bytes = (size_t)total;
    return done(FA2_OK);
}
