/* kvcache_io.c — what the CPU backends' KV-cache forwards share: the
 * append of the new tokens' keys and values into the cache (a bit copy,
 * same dtype), and reading key j of a sequence through the page walk
 * (lib/fa2_kvcache.h), from the cache or, for the oracle, straight from
 * k_new / v_new. */
#include "config.h"
#include "fa2_cpu.h"
#include "fa2_kvcache.h"

#include <string.h>

static void *element(const fa2_tensor *t, int64_t i0, int64_t i1, int64_t h)
{
    return (char *)t->data +
           fa2_offset4(t, i0, i1, h, 0) * (int64_t)fa2_dtype_size(t->dtype);
}

void fa2_cpu_kvcache_append(const fa2_kvcache_args *a, const fa2_kvcache_problem *p)
{
    const size_t bytes = (size_t)p->head_dim * fa2_dtype_size(p->dtype);
    for (int64_t b = 0; b < p->batch; b++) {
        const int32_t *row = fa2_kvcache_table_row(p, b);
        for (int64_t t = 0; t < p->seqlen_new; t++) {
            const fa2_kv_slot s = fa2_kv_slot_of(row, p->page_size, b,
                                                 p->cache_seqlens[b] + t);
            for (int64_t h = 0; h < p->heads_kv; h++) {
                memcpy(element(&a->k_cache, s.i0, s.i1, h),
                       element(&a->k_new, b, t, h), bytes);
                memcpy(element(&a->v_cache, s.i0, s.i1, h),
                       element(&a->v_new, b, t, h), bytes);
            }
        }
    }
}

const void *fa2_cpu_kvcache_row(const fa2_tensor *cache, const fa2_kvcache_problem *p,
                                int64_t b, int64_t key, int64_t h)
{
    const fa2_kv_slot s = fa2_kv_slot_of(fa2_kvcache_table_row(p, b), p->page_size,
                                         b, key);
    return element(cache, s.i0, s.i1, h);
}

void fa2_cpu_kvcache_key_f64(const fa2_kvcache_args *a, const fa2_kvcache_problem *p,
                             int value, int64_t b, int64_t key, int64_t h,
                             double *out)
{
    const int64_t cached = p->cache_seqlens[b];
    if (key >= cached) { /* a new token: from k_new / v_new */
        fa2_load_row_f64(value ? &a->v_new : &a->k_new, b, key - cached, h,
                         p->head_dim, out);
        return;
    }
    const fa2_kv_slot s = fa2_kv_slot_of(fa2_kvcache_table_row(p, b), p->page_size,
                                         b, key);
    fa2_load_row_f64(value ? &a->v_cache : &a->k_cache, s.i0, s.i1, h, p->head_dim,
                     out);
}
