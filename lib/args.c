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

void fa2_kvcache_args_init(fa2_kvcache_args *args)
{
    if (args) /* no cache layout, no append, library's splits and tiles */
        *args = (fa2_kvcache_args){.window_left = -1, .window_right = -1};
}

/* The members both argument structs have, listed once: X(member). */
#define SHARED_MEMBERS(X)                                                      \
    X(q) X(k) X(v) X(o) X(lse) X(softmax_scale) X(causal) X(window_left)       \
    X(window_right) X(cu_seqlens_q) X(cu_seqlens_k) X(num_seqs)                \
    X(max_seqlen_q) X(max_seqlen_k) X(block_m) X(block_n) X(num_threads)       \
    X(stream) X(softcap) X(alibi_slopes) X(alibi_batch_stride) X(sinks)       \
    X(dropout_p) X(dropout_seed) X(dropout_offset)
#define COPY(member) to.member = from->member;

fa2_fwd_args fa2_bwd_as_fwd_args(const fa2_bwd_args *from)
{
    fa2_fwd_args to;
    fa2_fwd_args_init(&to);
    SHARED_MEMBERS(COPY)
    return to;
}

fa2_bwd_args fa2_fwd_as_bwd_args(const fa2_fwd_args *from)
{
    fa2_bwd_args to;
    fa2_bwd_args_init(&to);
    SHARED_MEMBERS(COPY)
    return to;
}
