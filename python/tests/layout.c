/* layout.c — prints the size of every struct of lib/fa2.h that the Python
 * package mirrors with ctypes (python/fa2/_lib.py), and the offset and size
 * of each field, one line each:
 *
 *     fa2_fwd_args sizeof 392
 *     fa2_fwd_args q 0 80
 *
 * python/tests/test_layout.py compares them with the ctypes structs, so the
 * bindings cannot drift from the header unnoticed: a field added, removed,
 * moved or resized in C changes a size or an offset here. Built and run by
 * `make check`. */
#include <stddef.h>
#include <stdio.h>

#include "fa2.h"

#define SIZE(T) printf("%s sizeof %zu\n", #T, sizeof(T))
#define FIELD(T, f) \
    printf("%s %s %zu %zu\n", #T, #f, offsetof(T, f), sizeof(((T *)0)->f))

int main(void)
{
    SIZE(fa2_tensor);
    FIELD(fa2_tensor, data);
    FIELD(fa2_tensor, dtype);
    FIELD(fa2_tensor, shape);
    FIELD(fa2_tensor, stride);

    SIZE(fa2_fwd_args);
    FIELD(fa2_fwd_args, q);
    FIELD(fa2_fwd_args, k);
    FIELD(fa2_fwd_args, v);
    FIELD(fa2_fwd_args, o);
    FIELD(fa2_fwd_args, lse);
    FIELD(fa2_fwd_args, softmax_scale);
    FIELD(fa2_fwd_args, causal);
    FIELD(fa2_fwd_args, window_left);
    FIELD(fa2_fwd_args, window_right);
    FIELD(fa2_fwd_args, cu_seqlens_q);
    FIELD(fa2_fwd_args, cu_seqlens_k);
    FIELD(fa2_fwd_args, num_seqs);
    FIELD(fa2_fwd_args, max_seqlen_q);
    FIELD(fa2_fwd_args, max_seqlen_k);
    FIELD(fa2_fwd_args, block_m);
    FIELD(fa2_fwd_args, block_n);
    FIELD(fa2_fwd_args, num_threads);
    FIELD(fa2_fwd_args, stream);
    FIELD(fa2_fwd_args, softcap);
    FIELD(fa2_fwd_args, alibi_slopes);
    FIELD(fa2_fwd_args, alibi_batch_stride);
    FIELD(fa2_fwd_args, sinks);
    FIELD(fa2_fwd_args, dropout_p);
    FIELD(fa2_fwd_args, dropout_seed);
    FIELD(fa2_fwd_args, dropout_offset);
    FIELD(fa2_fwd_args, dropout_mask);

    SIZE(fa2_kvcache_args);
    FIELD(fa2_kvcache_args, q);
    FIELD(fa2_kvcache_args, k_cache);
    FIELD(fa2_kvcache_args, v_cache);
    FIELD(fa2_kvcache_args, block_table);
    FIELD(fa2_kvcache_args, max_pages);
    FIELD(fa2_kvcache_args, block_table_stride);
    FIELD(fa2_kvcache_args, cache_seqlens);
    FIELD(fa2_kvcache_args, k_new);
    FIELD(fa2_kvcache_args, v_new);
    FIELD(fa2_kvcache_args, o);
    FIELD(fa2_kvcache_args, lse);
    FIELD(fa2_kvcache_args, softmax_scale);
    FIELD(fa2_kvcache_args, causal);
    FIELD(fa2_kvcache_args, window_left);
    FIELD(fa2_kvcache_args, window_right);
    FIELD(fa2_kvcache_args, num_splits);
    FIELD(fa2_kvcache_args, block_n);
    FIELD(fa2_kvcache_args, key_warps);
    FIELD(fa2_kvcache_args, num_threads);
    FIELD(fa2_kvcache_args, stream);
    FIELD(fa2_kvcache_args, workspace);
    FIELD(fa2_kvcache_args, workspace_bytes);

    SIZE(fa2_bwd_args);
    FIELD(fa2_bwd_args, q);
    FIELD(fa2_bwd_args, k);
    FIELD(fa2_bwd_args, v);
    FIELD(fa2_bwd_args, o);
    FIELD(fa2_bwd_args, lse);
    FIELD(fa2_bwd_args, dout);
    FIELD(fa2_bwd_args, dq);
    FIELD(fa2_bwd_args, dk);
    FIELD(fa2_bwd_args, dv);
    FIELD(fa2_bwd_args, softmax_scale);
    FIELD(fa2_bwd_args, causal);
    FIELD(fa2_bwd_args, window_left);
    FIELD(fa2_bwd_args, window_right);
    FIELD(fa2_bwd_args, cu_seqlens_q);
    FIELD(fa2_bwd_args, cu_seqlens_k);
    FIELD(fa2_bwd_args, num_seqs);
    FIELD(fa2_bwd_args, max_seqlen_q);
    FIELD(fa2_bwd_args, max_seqlen_k);
    FIELD(fa2_bwd_args, block_m);
    FIELD(fa2_bwd_args, block_n);
    FIELD(fa2_bwd_args, deterministic);
    FIELD(fa2_bwd_args, num_threads);
    FIELD(fa2_bwd_args, stream);
    FIELD(fa2_bwd_args, workspace);
    FIELD(fa2_bwd_args, workspace_bytes);
    FIELD(fa2_bwd_args, softcap);
    FIELD(fa2_bwd_args, alibi_slopes);
    FIELD(fa2_bwd_args, alibi_batch_stride);
    FIELD(fa2_bwd_args, sinks);
    FIELD(fa2_bwd_args, dropout_p);
    FIELD(fa2_bwd_args, dropout_seed);
    FIELD(fa2_bwd_args, dropout_offset);
    FIELD(fa2_bwd_args, dsinks);

    SIZE(fa2_tile_config);
    FIELD(fa2_tile_config, block_m);
    FIELD(fa2_tile_config, block_n);
    FIELD(fa2_tile_config, warps);
    FIELD(fa2_tile_config, head_dim);

    SIZE(fa2_traffic);
    FIELD(fa2_traffic, q_bytes);
    FIELD(fa2_traffic, k_bytes);
    FIELD(fa2_traffic, v_bytes);
    FIELD(fa2_traffic, o_bytes);
    FIELD(fa2_traffic, lse_bytes);
    FIELD(fa2_traffic, read_bytes);
    FIELD(fa2_traffic, written_bytes);
    FIELD(fa2_traffic, k_new_bytes);
    FIELD(fa2_traffic, v_new_bytes);
    FIELD(fa2_traffic, k_cache_written_bytes);
    FIELD(fa2_traffic, v_cache_written_bytes);
    FIELD(fa2_traffic, o_partial_written_bytes);
    FIELD(fa2_traffic, lse_partial_written_bytes);
    FIELD(fa2_traffic, o_partial_read_bytes);
    FIELD(fa2_traffic, lse_partial_read_bytes);

    /* enums travel as int in the ctypes structs */
    printf("fa2_dtype sizeof %zu\n", sizeof(fa2_dtype));
    return 0;
}
