/* dispatch.c — the public entry points: validate once, then hand the
 * problem to the backend. Backends see only checked arguments. */
#include "config.h"
#include "fa2_internal.h"

#include <string.h>

void fa2_fwd_args_init(fa2_fwd_args *args)
{
    if (!args)
        return;
    memset(args, 0, sizeof *args);
    args->window_left = -1;
    args->window_right = -1;
}

fa2_status fa2_backend_available(fa2_backend b)
{
    switch (b) {
    case FA2_BACKEND_CPU_ORACLE:
    case FA2_BACKEND_CPU_STANDARD:
    case FA2_BACKEND_CPU_TILED:
        fa2_clear_error();
        return FA2_OK;
    case FA2_BACKEND_CUDA:
        return fa2_cuda_available();
    }
    return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "backend is %d, expected one of "
                    "FA2_BACKEND_CPU_ORACLE .. FA2_BACKEND_CUDA", (int)b);
}

fa2_status fa2_fwd_check(const fa2_fwd_args *args, fa2_backend backend)
{
    fa2_problem p;
    fa2_status st = fa2_fwd_validate(args, backend, &p);
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

fa2_status fa2_fwd(const fa2_fwd_args *args, fa2_backend backend)
{
    fa2_problem p;
    fa2_status st = fa2_fwd_validate(args, backend, &p);
    if (st != FA2_OK)
        return st;
    switch (backend) {
    case FA2_BACKEND_CPU_ORACLE: st = fa2_cpu_oracle_fwd(args, &p); break;
    case FA2_BACKEND_CPU_STANDARD: st = fa2_cpu_standard_fwd(args, &p); break;
    case FA2_BACKEND_CPU_TILED: st = fa2_cpu_tiled_fwd(args, &p); break;
    case FA2_BACKEND_CUDA: st = fa2_cuda_fwd(args, &p); break;
    }
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

void fa2_bwd_args_init(fa2_bwd_args *args)
{
    if (!args)
        return;
    memset(args, 0, sizeof *args);
    args->window_left = -1;
    args->window_right = -1;
}

fa2_status fa2_bwd_check(const fa2_bwd_args *args, fa2_backend backend)
{
    fa2_problem p;
    fa2_status st = fa2_bwd_validate(args, backend, &p);
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

fa2_status fa2_bwd(const fa2_bwd_args *args, fa2_backend backend)
{
    fa2_problem p;
    fa2_status st = fa2_bwd_validate(args, backend, &p);
    if (st != FA2_OK)
        return st;
    switch (backend) {
    case FA2_BACKEND_CPU_ORACLE: st = fa2_cpu_oracle_bwd(args, &p); break;
    case FA2_BACKEND_CPU_STANDARD: st = fa2_cpu_standard_bwd(args, &p); break;
    case FA2_BACKEND_CPU_TILED: st = fa2_cpu_tiled_bwd(args, &p); break;
    case FA2_BACKEND_CUDA: st = fa2_cuda_bwd(args, &p); break;
    }
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

fa2_status fa2_cuda_bwd_workspace_size(const fa2_bwd_args *args, size_t *bytes)
{
    if (!bytes)
        return fa2_fail(FA2_ERR_NULL_POINTER, "bytes is NULL");
    *bytes = 0;
    if (!args)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    fa2_problem p;
    fa2_status st = fa2_bwd_validate(args, FA2_BACKEND_CUDA, &p);
    if (st == FA2_OK)
        st = fa2_cuda_bwd_workspace_bytes(args, &p, bytes);
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}

double fa2_bwd_flops(const fa2_bwd_args *args)
{
    if (!args)
        return 0.0;
    const fa2_fwd_args f = fa2_bwd_as_fwd_args(args);
    return 2.5 * fa2_fwd_flops(&f);
}

/* The CPU tiled backend's own tiling. 128 query rows x 64 keys: each K/V
 * tile loaded from memory serves 128 rows, the tiles of one worker (about
 * 100 KB at head dim 64) stay in its L2, and both tile products keep to
 * OpenBLAS's small-matrix path (measured on a 2-core AVX-512 Xeon: 64x64
 * tiles ran at 55 GFLOP/s, 128x64 at 93, fp32, one thread). */
static void cpu_tile_config(int head_dim, fa2_tile_config *out)
{
    out->block_m = 128;
    out->block_n = 64;
    out->warps = 0;
    out->head_dim = head_dim;
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
    switch (backend) {
    case FA2_BACKEND_CPU_ORACLE:
    case FA2_BACKEND_CPU_STANDARD:
        /* untiled: one tile is the whole sequence */
        out->block_m = out->block_n = 0;
        out->warps = 0;
        out->head_dim = head_dim;
        break;
    case FA2_BACKEND_CPU_TILED:
        cpu_tile_config(head_dim, out);
        break;
    case FA2_BACKEND_CUDA:
        return fa2_cuda_tile_config(pass, dtype, head_dim, out);
    default:
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "backend is %d, expected one "
                        "of FA2_BACKEND_CPU_ORACLE .. FA2_BACKEND_CUDA",
                        (int)backend);
    }
    fa2_clear_error();
    return FA2_OK;
}

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
    if (!args || fa2_fwd_validate(args, FA2_BACKEND_CPU_ORACLE, &p) != FA2_OK)
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
