/* entry.c — the public entry points that pick a backend: find its row in
 * the backend table (api/backends.c), validate once, call through the row.
 * Backends see only checked arguments; nothing here knows what a backend
 * is made of. */
#include "config.h"
#include "api.h"

const char *fa2_backend_name(fa2_backend b)
{
    const fa2_backend_ops *ops = fa2_backend_row(b);
    return ops ? ops->name : "?";
}

fa2_status fa2_backend_available(fa2_backend b)
{
    const fa2_backend_ops *ops = fa2_backend_row(b);
    if (!ops)
        return fa2_backend_unknown(b);
    const fa2_status st = ops->available();
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

/* The row for a call on args; args is checked first, as before the table. */
static fa2_status row_for(const void *args, fa2_backend b,
                          const fa2_backend_ops **ops)
{
    if (!args)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    if (!(*ops = fa2_backend_row(b)))
        return fa2_backend_unknown(b);
    return FA2_OK;
}

static fa2_status done(fa2_status st)
{
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

/* A row without the operation asked for. */
static fa2_status unsupported(const fa2_backend_ops *ops, const char *what)
{
    return fa2_fail(FA2_ERR_UNSUPPORTED, "the %s backend has no %s", ops->name,
                    what);
}

/* Validate the arguments of a pass for backend b and, with run, call the
 * row's pass on them. */
static fa2_status call(fa2_pass pass, const void *args, fa2_backend b, int run)
{
    const fa2_backend_ops *ops;
    fa2_problem p;
    fa2_status st = row_for(args, b, &ops);
    if (st == FA2_OK)
        st = pass == FA2_PASS_FWD ? fa2_fwd_validate(args, ops, &p)
                                  : fa2_bwd_validate(args, ops, &p);
    if (st != FA2_OK || !run)
        return done(st);
    if (pass == FA2_PASS_FWD ? !ops->fwd : !ops->bwd)
        return unsupported(ops, pass == FA2_PASS_FWD ? "forward" : "backward");
    return done(pass == FA2_PASS_FWD ? ops->fwd(args, &p) : ops->bwd(args, &p));
}

fa2_status fa2_fwd_check(const fa2_fwd_args *args, fa2_backend backend)
{
    return call(FA2_PASS_FWD, args, backend, 0);
}

fa2_status fa2_fwd(const fa2_fwd_args *args, fa2_backend backend)
{
    return call(FA2_PASS_FWD, args, backend, 1);
}

fa2_status fa2_bwd_check(const fa2_bwd_args *args, fa2_backend backend)
{
    return call(FA2_PASS_BWD, args, backend, 0);
}

fa2_status fa2_bwd(const fa2_bwd_args *args, fa2_backend backend)
{
    return call(FA2_PASS_BWD, args, backend, 1);
}

fa2_status fa2_cuda_bwd_workspace_size(const fa2_bwd_args *args, size_t *bytes)
{
    if (!bytes)
        return fa2_fail(FA2_ERR_NULL_POINTER, "bytes is NULL");
    *bytes = 0;
    const fa2_backend_ops *ops;
    fa2_problem p;
    fa2_status st = row_for(args, FA2_BACKEND_CUDA, &ops);
    if (st == FA2_OK)
        st = fa2_bwd_validate(args, ops, &p);
    if (st == FA2_OK && ops->bwd_workspace)
        st = ops->bwd_workspace(args, &p, bytes);
    return done(st);
}

fa2_status fa2_tile_config_for(fa2_backend backend, fa2_pass pass,
                               fa2_dtype dtype, int head_dim,
                               fa2_tile_config *out)
{
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
    if (pass != FA2_PASS_FWD && pass != FA2_PASS_BWD)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "pass is %d, expected "
                        "FA2_PASS_FWD or FA2_PASS_BWD", (int)pass);
    if (dtype != FA2_DTYPE_FP32 && dtype != FA2_DTYPE_FP16 &&
        dtype != FA2_DTYPE_BF16)
        return fa2_fail(FA2_ERR_DTYPE, "dtype is %d, expected FA2_DTYPE_FP32, "
                        "FA2_DTYPE_FP16 or FA2_DTYPE_BF16", (int)dtype);
    if (head_dim < 8 || head_dim > 256 || head_dim % 8 != 0)
        return fa2_fail(FA2_ERR_HEAD_DIM, "head_dim is %d, expected a multiple of "
                        "8 from 8 to 256", head_dim);
    const fa2_backend_ops *ops = fa2_backend_row(backend);
    if (!ops)
        return fa2_backend_unknown(backend);
    if (!ops->tile_config)
        return unsupported(ops, "tiling");
    return done(ops->tile_config(pass, dtype, head_dim, out));
}

fa2_status fa2_fwd_tile_config(const fa2_fwd_args *args, fa2_backend backend,
                               fa2_tile_config *out)
{
    const fa2_backend_ops *ops;
    fa2_problem p;
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
    fa2_status st = row_for(args, backend, &ops);
    if (st == FA2_OK)
        st = fa2_fwd_validate(args, ops, &p);
    if (st != FA2_OK)
        return done(st);
    if (ops->fwd_tile_config)
        return done(ops->fwd_tile_config(&p, out));
    if (!ops->tile_config)
        return unsupported(ops, "tiling");
    return done(ops->tile_config(FA2_PASS_FWD, p.dtype, (int)p.head_dim, out));
}
