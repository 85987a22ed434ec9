/* standard_kvcache.c — standard attention (S and P materialised, OpenBLAS)
 * over a KV cache: after the append, each sequence's keys and values are
 * gathered through the block table into dense [1, seqlen_k, Hkv, d] copies
 * (bit copies, same dtype) and handed, with that sequence's q, o and lse,
 * to the standard forward (standard_fwd.c) as one variable-length
 * sequence, which may be empty. So the KV-cache forward rounds exactly
 * where fa2_fwd's standard attention does: the yardstick of the numerics
 * contract for the tiled mirror and the kernels. */
#include "config.h"
#include "fa2_cpu.h"
#include "fa2_kvcache.h"

#include <stdlib.h>
#include <string.h>

/* Rows 0 .. seqlen_k-1 of sequence b's cache into dense [seqlen_k][Hkv][d]. */
static void gather(const fa2_tensor *cache, const fa2_kvcache_problem *p, int64_t b,
                   int64_t seqlen_k, void *dst)
{
    const size_t row = (size_t)p->head_dim * fa2_dtype_size(p->dtype);
    char *out = dst;
    for (int64_t j = 0; j < seqlen_k; j++)
        for (int64_t h = 0; h < p->heads_kv; h++, out += row)
            memcpy(out, fa2_cpu_kvcache_row(cache, p, b, j, h), row);
}

/* t's batch b as a [1, ...] view. */
static fa2_tensor batch_view(const fa2_tensor *t, int64_t b)
{
    fa2_tensor v = *t;
    v.data = (char *)t->data + b * t->stride[0] * (int64_t)fa2_dtype_size(t->dtype);
    v.shape[0] = 1;
    return v;
}

fa2_status fa2_cpu_standard_kvcache(const fa2_kvcache_args *a,
                                    const fa2_kvcache_problem *p)
{
    const int64_t row_elems = p->heads_kv * p->head_dim;
    const size_t es = fa2_dtype_size(p->dtype);
    void *k = fa2_alloc_n(p->max_seqlen_k * row_elems, es);
    void *v = fa2_alloc_n(p->max_seqlen_k * row_elems, es);
    fa2_status st = FA2_OK;
    if (!k || !v)
        st = fa2_fail(FA2_ERR_OUT_OF_MEMORY, "standard attention could not gather "
                      "a cache of %lld keys", (long long)p->max_seqlen_k);
    /* the append once the gather buffers exist: a refusal for memory
     * leaves the cache as it was (as the oracle and the tiled backend) */
    if (st == FA2_OK)
        fa2_cpu_kvcache_append(a, p);
    for (int64_t b = 0; st == FA2_OK && b < p->batch; b++) {
        const int64_t seqlen_k = fa2_kvcache_seqlen_k(p, b);
        gather(&a->k_cache, p, b, seqlen_k, k);
        gather(&a->v_cache, p, b, seqlen_k, v);
        const int32_t cu_q[2] = {0, (int32_t)p->seqlen_q};
        const int32_t cu_k[2] = {0, (int32_t)seqlen_k};
        fa2_fwd_args f;
        fa2_fwd_args_init(&f);
        f.q = batch_view(&a->q, b);
        f.o = batch_view(&a->o, b);
        f.k = fa2_tensor_4d(k, p->dtype, 1, seqlen_k, p->heads_kv, p->head_dim);
        f.v = fa2_tensor_4d(v, p->dtype, 1, seqlen_k, p->heads_kv, p->head_dim);
        if (a->lse.data) {
            f.lse = a->lse;
            f.lse.data = fa2_lse_at(&a->lse, b, 0, 0);
            f.lse.shape[0] = 1;
        }
        f.softmax_scale = p->scale;
        f.causal = p->causal;
        f.window_left = p->window_left;
        f.window_right = p->window_right;
        f.cu_seqlens_q = cu_q;
        f.cu_seqlens_k = cu_k;
        f.num_seqs = 1;
        f.num_threads = p->num_threads;
        fa2_problem fp;
        st = fa2_fwd_validate(&f, NULL, &fp);
        if (st == FA2_OK)
            st = fa2_cpu_standard_fwd(&f, &fp);
    }
    free(k);
    free(v);
    return st;
}
