/* validate_kvcache.c — every argument of a forward over a KV cache
 * (fa2_fwd_kvcache) is checked here, once, for every backend: the tensors
 * and their shapes, the cache layout (contiguous or paged), the block
 * table, the cache lengths against the capacity, overlaps, the scalars. A
 * bad argument gets a status code and a sentence naming it, its value and
 * what was expected; nothing is written, the caches included. */
#include "config.h"
#include "fa2_backend.h"
#include "fa2_internal.h"
#include "fa2_kvcache.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#define MAX_TILE 1024
#define MAX_THREADS 1024

static fa2_status shape_mismatch(const char *name, const fa2_tensor *t,
                                 const int64_t want[4], const char *what)
{
    return fa2_fail(FA2_ERR_SHAPE, "%s.shape is [%lld, %lld, %lld, %lld], expected "
                    "%s = [%lld, %lld, %lld, %lld]", name, (long long)t->shape[0],
                    (long long)t->shape[1], (long long)t->shape[2],
                    (long long)t->shape[3], what, (long long)want[0],
                    (long long)want[1], (long long)want[2], (long long)want[3]);
}

static int same_shape(const fa2_tensor *t, const int64_t want[4])
{
    for (int i = 0; i < 4; i++)
        if (t->shape[i] != want[i])
            return 0;
    return 1;
}

/* The cache's layout: contiguous [B, Nmax, Hkv, d] or paged [num_pages,
 * page_size, Hkv, d] with a block table. */
static fa2_status check_layout(const fa2_kvcache_args *a, fa2_kvcache_problem *p)
{
    const fa2_tensor *kc = &a->k_cache;
    if (!a->block_table) {
        if (kc->shape[0] != p->batch)
            return fa2_fail(FA2_ERR_SHAPE, "k_cache.shape[0] is %lld but q's batch "
                            "is %lld; a contiguous cache (block_table NULL) holds "
                            "one row of slots per sequence",
                            (long long)kc->shape[0], (long long)p->batch);
        p->paged = 0;
        p->page_size = kc->shape[1];
        p->num_pages = kc->shape[0];
        p->max_pages = 1;
        p->block_table_stride = 0;
        p->capacity = kc->shape[1];
    } else {
        if (kc->shape[1] % 16 != 0)
            return fa2_fail(FA2_ERR_BLOCK_TABLE, "the page size (k_cache.shape[1]) "
                            "is %lld, expected a multiple of 16",
                            (long long)kc->shape[1]);
        if (a->max_pages < 1 || a->max_pages > INT32_MAX)
            return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "max_pages is %lld, expected "
                            "1 .. 2^31 - 1 (the block table's columns)",
                            (long long)a->max_pages);
        const int64_t stride = a->block_table_stride ? a->block_table_stride
                                                      : a->max_pages;
        if (stride < a->max_pages || stride > INT32_MAX)
            return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "block_table_stride is %lld, "
                            "expected 0 (= max_pages) or max_pages (%lld) .. "
                            "2^31 - 1", (long long)a->block_table_stride,
                            (long long)a->max_pages);
        if (kc->shape[0] > INT32_MAX)
            return fa2_fail(FA2_ERR_SHAPE, "k_cache holds %lld pages; block table "
                            "entries are int32, so at most 2^31 - 1",
                            (long long)kc->shape[0]);
        p->paged = 1;
        p->page_size = kc->shape[1];
        p->num_pages = kc->shape[0];
        p->max_pages = a->max_pages;
        p->block_table_stride = stride;
        p->capacity = a->max_pages * kc->shape[1];
    }
    if (p->capacity > INT32_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "the cache holds %lld keys per sequence; "
                        "lengths are int32, so at most 2^31 - 1",
                        (long long)p->capacity);
    return FA2_OK;
}

/* A used block-table entry: its page, and where it is (b * max_pages + i,
 * negative when the append writes that page). */
typedef struct page_use {
    int32_t page;
    int64_t where;
} page_use;

static int by_page(const void *x, const void *y)
{
    const page_use *a = x, *b = y;
    return (a->page > b->page) - (a->page < b->page);
}

/* With an append, a page it writes may not appear at any other used entry
 * of the table (another sequence's, or another position of its own): the
 * writes would race with reads of the same slots. Sorted by page, a page
 * written and used twice shows as neighbours. */
static fa2_status check_written_pages(const fa2_kvcache_args *a,
                                      const fa2_kvcache_problem *p)
{
    int64_t n = 0;
    for (int64_t b = 0; b < p->batch; b++)
        n += fa2_ceil_div(fa2_kvcache_seqlen_k(p, b), p->page_size);
    page_use *u = fa2_alloc_n(n, sizeof *u);
    if (!u)
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "could not allocate %lld entries "
                        "to check the pages the append writes", (long long)n);
    int64_t k = 0;
    for (int64_t b = 0; b < p->batch; b++) {
        const int32_t *row = a->block_table + b * p->block_table_stride;
        const int64_t first_written = a->cache_seqlens[b] / p->page_size;
        const int64_t pages = fa2_ceil_div(fa2_kvcache_seqlen_k(p, b), p->page_size);
        for (int64_t i = 0; i < pages; i++, k++) {
            u[k].page = row[i];
            u[k].where = i >= first_written ? -(b * p->max_pages + i) - 1
                                            : b * p->max_pages + i;
        }
    }
    qsort(u, (size_t)n, sizeof *u, by_page);
    fa2_status st = FA2_OK;
    for (int64_t i = 1; i < n && st == FA2_OK; i++)
        if (u[i].page == u[i - 1].page && (u[i].where < 0 || u[i - 1].where < 0)) {
            const int64_t w = u[i].where < 0 ? -u[i].where - 1 : -u[i - 1].where - 1;
            st = fa2_fail(FA2_ERR_BLOCK_TABLE, "page %d, which the append writes "
                          "(block_table[%lld][%lld]), is also held elsewhere in the "
                          "block table; the pages an append writes must belong to "
                          "one place of one sequence", (int)u[i].page,
                          (long long)(w / p->max_pages), (long long)(w % p->max_pages));
        }
    free(u);
    return st;
}

/* The lengths and the block table, read on the host. */
static fa2_status check_lengths(const fa2_kvcache_args *a, fa2_kvcache_problem *p)
{
    p->max_seqlen_k = 0;
    for (int64_t b = 0; b < p->batch; b++) {
        const int64_t len = a->cache_seqlens[b];
        if (len < 0 || len + p->seqlen_new > p->capacity)
            return fa2_fail(FA2_ERR_CACHE_SEQLENS, "cache_seqlens[%lld] is %lld; with "
                            "the %lld new tokens it must lie in [0, %lld], the "
                            "cache's capacity", (long long)b, (long long)len,
                            (long long)p->seqlen_new, (long long)p->capacity);
        const int64_t seqlen_k = len + p->seqlen_new;
        if (seqlen_k > p->max_seqlen_k)
            p->max_seqlen_k = seqlen_k;
        if (!p->paged)
            continue;
        const int32_t *row = a->block_table + b * p->block_table_stride;
        const int64_t pages = fa2_ceil_div(seqlen_k, p->page_size);
        for (int64_t i = 0; i < pages; i++)
            if (row[i] < 0 || row[i] >= p->num_pages)
                return fa2_fail(FA2_ERR_BLOCK_TABLE, "block_table[%lld][%lld] is %d, "
                                "expected a page in [0, %lld) (sequence %lld holds "
                                "%lld keys in pages of %lld)", (long long)b,
                                (long long)i, (int)row[i], (long long)p->num_pages,
                                (long long)b, (long long)seqlen_k,
                                (long long)p->page_size);
    }
    return p->paged && p->seqlen_new ? check_written_pages(a, p) : FA2_OK;
}

/* k_new / v_new: both or neither, [B, Nnew, Hkv, d]. */
static fa2_status check_new(const fa2_kvcache_args *a, fa2_kvcache_problem *p)
{
    fa2_status st;
    p->seqlen_new = 0;
    if (!a->k_new.data && !a->v_new.data)
        return FA2_OK;
    if (!a->k_new.data || !a->v_new.data)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s.data is NULL while %s.data is "
                        "set; the append needs both", a->k_new.data ? "v_new"
                        : "k_new", a->k_new.data ? "k_new" : "v_new");
    if ((st = fa2_tensor_check(&a->k_new, "k_new", 4, -1)) ||
        (st = fa2_tensor_check(&a->v_new, "v_new", 4, -1)))
        return st;
    if (a->k_new.dtype != p->dtype || a->v_new.dtype != p->dtype)
        return fa2_fail(FA2_ERR_DTYPE, "k_new is %s and v_new %s but q is %s; the "
                        "new tokens must have the cache's dtype",
                        fa2_dtype_name(a->k_new.dtype),
                        fa2_dtype_name(a->v_new.dtype), fa2_dtype_name(p->dtype));
    const int64_t want[4] = {p->batch, a->k_new.shape[1], p->heads_kv, p->head_dim};
    if (!same_shape(&a->k_new, want))
        return shape_mismatch("k_new", &a->k_new, want, "[batch, Nnew, heads_kv, "
                              "head_dim]");
    if (!same_shape(&a->v_new, want))
        return shape_mismatch("v_new", &a->v_new, want, "k_new's shape");
    if (a->k_new.shape[1] > INT32_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "k_new.shape[1] is %lld, expected at most "
                        "2^31 - 1", (long long)a->k_new.shape[1]);
    p->seqlen_new = a->k_new.shape[1];
    return FA2_OK;
}

/* Outputs share no element with each other or with any input; the caches,
 * when the append writes them, share none with each other or the other
 * inputs, and each has distinct elements. */
static fa2_status check_overlaps(const fa2_kvcache_args *a, const fa2_kvcache_problem *p)
{
    if (!fa2_tensor_elements_disjoint(&a->o, 4))
        return fa2_fail(FA2_ERR_STRIDE, "o's strides make distinct elements share "
                        "memory; an output needs non-overlapping strides");
    const fa2_tensor *in[5] = {&a->q, &a->k_cache, &a->v_cache, &a->k_new, &a->v_new};
    static const char *const names[5] = {"q", "k_cache", "v_cache", "k_new", "v_new"};
    const int n_in = p->seqlen_new ? 5 : 3;
    for (int i = 0; i < n_in; i++) {
        if (fa2_tensor_spans_overlap(&a->o, 4, in[i], 4))
            return fa2_fail(FA2_ERR_OVERLAP, "o shares memory with %s; outputs must "
                            "not overlap the inputs", names[i]);
        if (a->lse.data && fa2_tensor_spans_overlap(&a->lse, 3, in[i], 4))
            return fa2_fail(FA2_ERR_OVERLAP, "lse shares memory with %s; outputs "
                            "must not overlap the inputs", names[i]);
    }
    if (!p->seqlen_new)
        return FA2_OK;
    /* the append writes the caches */
    for (int c = 1; c <= 2; c++) {
        if (!fa2_tensor_elements_disjoint(in[c], 4))
            return fa2_fail(FA2_ERR_STRIDE, "%s's strides make distinct elements "
                            "share memory; the append writes it, so it needs "
                            "non-overlapping strides", names[c]);
        for (int i = 0; i < 5; i++)
            if (i != c && fa2_tensor_spans_overlap(in[c], 4, in[i], 4))
                return fa2_fail(FA2_ERR_OVERLAP, "%s shares memory with %s; the "
                                "append writes the caches, which must not overlap "
                                "the other tensors", names[c], names[i]);
    }
    return FA2_OK;
}

static fa2_status check_scalars(const fa2_kvcache_args *a)
{
    if (!isfinite(a->softmax_scale) || a->softmax_scale < 0.0f ||
        (double)a->softmax_scale * 1.4426950408889634 > (double)FLT_MAX)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "softmax_scale is %g, expected a "
                        "finite positive number at most FLT_MAX / log2(e) = "
                        "2.36e38 (or 0 for 1/sqrt(head_dim))",
                        (double)a->softmax_scale);
    if (a->window_left < -1 || a->window_right < -1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "window_left/window_right are "
                        "%lld/%lld, expected >= 0, or -1 for unbounded",
                        (long long)a->window_left, (long long)a->window_right);
    if (a->num_splits < 0 || a->num_splits > FA2_KVCACHE_MAX_SPLITS)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "num_splits is %d, expected 0 "
                        "(library's choice) or 1 .. %d", a->num_splits,
                        FA2_KVCACHE_MAX_SPLITS);
    if (a->block_n < 0 || a->block_n > MAX_TILE || a->block_n % 16 != 0)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "block_n is %d, expected 0 "
                        "(library's choice) or a multiple of 16 up to %d",
                        a->block_n, MAX_TILE);
    if (a->num_threads < 0 || a->num_threads > MAX_THREADS)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "num_threads is %d, expected 0 "
                        "(default) or 1 .. %d", a->num_threads, MAX_THREADS);
    if (a->key_warps != 0 && a->key_warps != 1 && a->key_warps != FA2_KVCACHE_KEY_WARPS_MAX)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "key_warps is %d, expected 0 "
                        "(library's choice), 1 or %d", a->key_warps,
                        FA2_KVCACHE_KEY_WARPS_MAX);
    return FA2_OK;
}

fa2_status fa2_kvcache_validate(const fa2_kvcache_args *a,
                                const fa2_backend_ops *ops, fa2_kvcache_problem *p)
{
    fa2_status st;
    if (!a)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    if ((st = fa2_tensor_check(&a->q, "q", 4, -1)) ||
        (st = fa2_tensor_check(&a->k_cache, "k_cache", 4, -1)) ||
        (st = fa2_tensor_check(&a->v_cache, "v_cache", 4, -1)) ||
        (st = fa2_tensor_check(&a->o, "o", 4, -1)))
        return st;
    p->dtype = a->q.dtype;
    if (a->k_cache.dtype != p->dtype || a->v_cache.dtype != p->dtype ||
        a->o.dtype != p->dtype)
        return fa2_fail(FA2_ERR_DTYPE, "dtypes differ: q is %s, k_cache %s, v_cache "
                        "%s, o %s; all four must match", fa2_dtype_name(p->dtype),
                        fa2_dtype_name(a->k_cache.dtype),
                        fa2_dtype_name(a->v_cache.dtype), fa2_dtype_name(a->o.dtype));
    p->batch = a->q.shape[0];
    p->seqlen_q = a->q.shape[1];
    p->heads_q = a->q.shape[2];
    p->head_dim = a->q.shape[3];
    p->heads_kv = a->k_cache.shape[2];
    if (p->head_dim % 8 != 0 || p->head_dim > 256)
        return fa2_fail(FA2_ERR_HEAD_DIM, "head_dim (q.shape[3]) is %lld, expected "
                        "a multiple of 8 from 8 to 256", (long long)p->head_dim);
    if (p->seqlen_q > INT32_MAX || p->batch > INT32_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "q.shape[0..1] are %lld/%lld, expected at "
                        "most 2^31 - 1", (long long)p->batch, (long long)p->seqlen_q);
    if (a->k_cache.shape[3] != p->head_dim)
        return fa2_fail(FA2_ERR_SHAPE, "k_cache.shape[3] (head_dim) is %lld but "
                        "q.shape[3] is %lld; they must match",
                        (long long)a->k_cache.shape[3], (long long)p->head_dim);
    if (!same_shape(&a->v_cache, a->k_cache.shape))
        return shape_mismatch("v_cache", &a->v_cache, a->k_cache.shape,
                              "k_cache's shape");
    if (p->heads_q % p->heads_kv != 0)
        return fa2_fail(FA2_ERR_SHAPE, "heads_q (q.shape[2] = %lld) must be a "
                        "multiple of heads_kv (k_cache.shape[2] = %lld)",
                        (long long)p->heads_q, (long long)p->heads_kv);
    p->group = p->heads_q / p->heads_kv;
    if (!same_shape(&a->o, a->q.shape))
        return shape_mismatch("o", &a->o, a->q.shape, "q's shape");
    if (a->lse.data) {
        if (a->lse.dtype != FA2_DTYPE_FP32)
            return fa2_fail(FA2_ERR_DTYPE, "lse.dtype is %s, expected fp32",
                            fa2_dtype_name(a->lse.dtype));
        if ((st = fa2_tensor_check(&a->lse, "lse", 3, -1)))
            return st;
        if (a->lse.shape[0] != p->batch || a->lse.shape[1] != p->heads_q ||
            a->lse.shape[2] != p->seqlen_q)
            return fa2_fail(FA2_ERR_SHAPE, "lse.shape is [%lld, %lld, %lld], expected "
                            "[batch, heads_q, Nq] = [%lld, %lld, %lld]",
                            (long long)a->lse.shape[0], (long long)a->lse.shape[1],
                            (long long)a->lse.shape[2], (long long)p->batch,
                            (long long)p->heads_q, (long long)p->seqlen_q);
        if (!fa2_tensor_elements_disjoint(&a->lse, 3))
            return fa2_fail(FA2_ERR_STRIDE, "lse's strides make distinct elements "
                            "share memory; an output needs non-overlapping strides");
        if (fa2_tensor_spans_overlap(&a->lse, 3, &a->o, 4))
            return fa2_fail(FA2_ERR_OVERLAP, "lse and o share memory; outputs must "
                            "not overlap");
    }
    if ((st = check_new(a, p)) || (st = check_layout(a, p)) ||
        (st = check_overlaps(a, p)) || (st = check_scalars(a)))
        return st;
    if (!a->cache_seqlens)
        return fa2_fail(FA2_ERR_NULL_POINTER, "cache_seqlens is NULL; it is required "
                        "(the tokens already in each sequence's cache)");

    p->block_table = a->block_table;
    p->cache_seqlens = a->cache_seqlens;
    p->scale = a->softmax_scale > 0.0f ? a->softmax_scale
                                       : (float)(1.0 / sqrt((double)p->head_dim));
    p->scale_log2 = (float)((double)p->scale * 1.4426950408889634);
    p->causal = a->causal != 0;
    p->window_left = a->window_left;
    p->window_right = a->window_right;
    p->num_splits = a->num_splits;
    p->block_m = fa2_kvcache_block_m(p->seqlen_q * p->group);
    p->block_n = a->block_n > 0 ? a->block_n : fa2_kvcache_block_n(p->head_dim);
    p->key_warps = a->key_warps; /* 0: the backend's choice (lib/api/kvcache.c) */
    if (p->key_warps > 1 && p->seqlen_q * p->group > FA2_KVCACHE_KEY_WARPS_ROWS)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "key_warps is %d with %lld packed "
                        "query rows (Nq x Hq / Hkv); warps share a block's keys for "
                        "at most %d", p->key_warps, (long long)(p->seqlen_q * p->group),
                        FA2_KVCACHE_KEY_WARPS_ROWS);
    p->num_threads = a->num_threads > 0 ? a->num_threads : fa2_default_num_threads();
    if (ops && ops->device_memory) {
        p->max_seqlen_k = p->capacity; /* the lengths live on the device */
        return FA2_OK;
    }
    return check_lengths(a, p);
}
