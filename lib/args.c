/* args.c — the argument structs' defaults, and the backward's arguments
 * seen as the forward's (the checks and counts both passes share). */
#include "config.h"
#include "fa2_internal.h"

void fa2_fwd_args_init(fa2_fwd_args *args)
{
    if (args) /* all zero: no mask, default scale, library's tiles */
        *args = (fa2_fwd_args){.window_left = -1, .window_right = -1};
}

void fa2_bwd_args_init(fa2_bwd_args *args)
{
    if (args)
        *args = (fa2_bwd_args){.window_left = -1, .window_right = -1};
}

fa2_fwd_args fa2_bwd_as_fwd_args(const fa2_bwd_args *b)
{
    fa2_fwd_args f;
    fa2_fwd_args_init(&f);
    f.q = b->q;
    f.k = b->k;
    f.v = b->v;
    f.o = b->o;
    f.lse = b->lse;
    f.softmax_scale = b->softmax_scale;
    f.causal = b->causal;
    f.window_left = b->window_left;
    f.window_right = b->window_right;
    f.cu_seqlens_q = b->cu_seqlens_q;
    f.cu_seqlens_k = b->cu_seqlens_k;
    f.num_seqs = b->num_seqs;
    f.max_seqlen_q = b->max_seqlen_q;
    f.max_seqlen_k = b->max_seqlen_k;
    f.block_m = b->block_m;
    f.block_n = b->block_n;
    f.num_threads = b->num_threads;
    f.stream = b->stream;
    return f;
}

fa2_bwd_args fa2_fwd_as_bwd_args(const fa2_fwd_args *f)
{
    fa2_bwd_args b;
    fa2_bwd_args_init(&b);
    b.q = f->q;
    b.k = f->k;
    b.v = f->v;
    b.o = f->o;
    b.lse = f->lse;
    b.softmax_scale = f->softmax_scale;
    b.causal = f->causal;
    b.window_left = f->window_left;
    b.window_right = f->window_right;
    b.cu_seqlens_q = f->cu_seqlens_q;
    b.cu_seqlens_k = f->cu_seqlens_k;
    b.num_seqs = f->num_seqs;
    b.max_seqlen_q = f->max_seqlen_q;
    b.max_seqlen_k = f->max_seqlen_k;
    b.block_m = f->block_m;
    b.block_n = f->block_n;
    b.num_threads = f->num_threads;
    b.stream = f->stream;
    return b;
}
