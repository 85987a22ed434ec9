/* kvlib.c — KV-cache problems for the suites (see kvlib.h). */
#include "config.h"
#include "kvlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kv_spec_init(kv_spec *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = FA2_DTYPE_FP32;
    s->batch = 1;
    s->seqlen_q = 1;
    s->heads_q = s->heads_kv = 1;
    s->head_dim = 32;
    s->capacity = 64;
    s->window_left = s->window_right = -1;
}

void kv_spec_draw_cache(kv_spec *s, int i, int kinds, int64_t cap_lo, int64_t cap_hi,
                        tl_rng *r)
{
    s->capacity = tl_range(r, cap_lo, cap_hi);
    if (s->page_size)
        s->capacity = fa2_ceil_div(s->capacity, s->page_size) * s->page_size;
    const int64_t room = s->capacity - s->seqlen_new;
    for (int64_t b = 0; b < s->batch; b++) {
        switch ((i + b) % kinds) {
        case 0: s->lens[b] = 0; break;                  /* empty cache       */
        case 1: s->lens[b] = 1; break;                  /* one key           */
        case 2: s->lens[b] = room; break;               /* filled to the top */
        case 3: /* the append crosses a page (or tile) boundary */
            s->lens[b] = (s->page_size ? s->page_size : 64) - 1;
            if (s->lens[b] > room)
                s->lens[b] = room;
            break;
        default: s->lens[b] = tl_range(r, 0, room); break;
        }
    }
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    ck_assert_msg(p != NULL, "out of memory (%zu x %zu)", n, size);
    return p;
}

static void set_elem(void *base, fa2_dtype dt, int64_t i, double v)
{
    const float f = (float)v;
    switch (dt) {
    case FA2_DTYPE_FP16: ((uint16_t *)base)[i] = fa2_float_to_fp16(f); break;
    case FA2_DTYPE_BF16: ((uint16_t *)base)[i] = fa2_float_to_bf16(f); break;
    default: ((float *)base)[i] = f; break;
    }
}

static double get_elem(const void *base, fa2_dtype dt, int64_t i)
{
    switch (dt) {
    case FA2_DTYPE_FP16: return fa2_fp16_to_float(((const uint16_t *)base)[i]);
    case FA2_DTYPE_BF16: return fa2_bf16_to_float(((const uint16_t *)base)[i]);
    default: return ((const float *)base)[i];
    }
}

static void poison(void *base, fa2_dtype dt, int64_t n)
{
    const uint32_t bits = tl_poison_bits(dt);
    for (int64_t i = 0; i < n; i++) {
        if (dt == FA2_DTYPE_FP32)
            memcpy((char *)base + 4 * i, &bits, 4);
        else
            ((uint16_t *)base)[i] = (uint16_t)bits;
    }
}

static void fill(void *base, fa2_dtype dt, int64_t n, tl_rng *r, double sigma)
{
    for (int64_t i = 0; i < n; i++) {
        double v = 0.0;
        while (v == 0.0) /* rounded to the dtype, never zero */
            v = (double)fa2_round_to_dtype((float)(sigma * tl_normal(r)), dt);
        set_elem(base, dt, i, v);
    }
}

/* Element offset of slot (i0, i1), head h, in a dense cache. */
static int64_t slot_offset(const kv_problem *p, int64_t i0, int64_t i1, int64_t h)
{
    const kv_spec *s = &p->s;
    const int64_t dim1 = s->page_size ? s->page_size : s->capacity;
    return ((i0 * dim1 + i1) * s->heads_kv + h) * s->head_dim;
}

static int64_t key_offset(const kv_problem *p, int64_t b, int64_t key, int64_t h)
{
    if (!p->block_table)
        return slot_offset(p, b, key, h);
    const int64_t ps = p->s.page_size;
    const int64_t stride = p->args.block_table_stride ? p->args.block_table_stride
                                                      : p->max_pages;
    return slot_offset(p, p->block_table[b * stride + key / ps], key % ps, h);
}

static void describe(kv_problem *p)
{
    const kv_spec *s = &p->s;
    int n = snprintf(p->desc, sizeof p->desc, "%s d=%lld B=%lld Nq=%lld H=%lld/%lld "
                     "%s%lld cap=%lld new=%lld lens=", fa2_dtype_name(s->dtype),
                     (long long)s->head_dim, (long long)s->batch,
                     (long long)s->seqlen_q, (long long)s->heads_q,
                     (long long)s->heads_kv, s->page_size ? "page=" : "contiguous",
                     (long long)s->page_size, (long long)s->capacity,
                     (long long)s->seqlen_new);
    for (int64_t b = 0; b < s->batch && n < (int)sizeof p->desc; b++)
        n += snprintf(p->desc + n, sizeof p->desc - (size_t)n, "%lld%s",
                      (long long)s->lens[b], b + 1 < s->batch ? "," : "");
    if (n < (int)sizeof p->desc)
        snprintf(p->desc + n, sizeof p->desc - (size_t)n, "%s win=(%lld,%lld) "
                 "splits=%d bn=%d kw=%d (FA2_TEST_SEED=%llu)", s->causal ? " causal" : "",
                 (long long)s->window_left, (long long)s->window_right,
                 s->num_splits, s->block_n, s->key_warps, (unsigned long long)tl_seed());
}

void kv_problem_init(kv_problem *p, const kv_spec *spec, tl_rng *r)
{
    memset(p, 0, sizeof *p);
    p->s = *spec;
    kv_spec *s = &p->s;
    const fa2_dtype dt = s->dtype;
    const size_t es = fa2_dtype_size(dt);
    const int64_t B = s->batch, d = s->head_dim, hkv = s->heads_kv;
    ck_assert(B >= 1 && B <= KV_MAX_BATCH);

    int64_t cache_rows; /* slots in the cache tensor */
    if (s->page_size) {
        p->max_pages = fa2_ceil_div(s->capacity, s->page_size);
        s->capacity = p->max_pages * s->page_size;
        p->num_pages = B * p->max_pages + 3; /* spare pages nobody holds */
        cache_rows = p->num_pages * s->page_size;
    } else {
        cache_rows = B * s->capacity;
    }
    const int64_t cache_elems = cache_rows * hkv * d;
    p->cache_bytes = (size_t)cache_elems * es;
    const int64_t nq_elems = B * s->seqlen_q * s->heads_q * d;
    p->q = xcalloc((size_t)nq_elems, es);
    p->o = xcalloc((size_t)nq_elems, es);
    p->lse = xcalloc((size_t)(B * s->heads_q * s->seqlen_q), sizeof(float));
    p->k_cache = xcalloc(p->cache_bytes, 1);
    p->v_cache = xcalloc(p->cache_bytes, 1);
    p->k_cache0 = xcalloc(p->cache_bytes, 1);
    p->v_cache0 = xcalloc(p->cache_bytes, 1);
    p->k_expect = xcalloc(p->cache_bytes, 1);
    p->v_expect = xcalloc(p->cache_bytes, 1);
    fill(p->q, dt, nq_elems, r, s->q_sigma > 0 ? s->q_sigma : 1.0);

    /* the block table: each sequence's pages drawn from a shuffled pool;
     * entries past a sequence's pages are -1 (never read) */
    if (s->page_size) {
        const int64_t stride = p->max_pages + (B % 2); /* padded rows on odd B */
        int32_t *pool = xcalloc((size_t)p->num_pages, sizeof(int32_t));
        for (int64_t i = 0; i < p->num_pages; i++)
            pool[i] = (int32_t)i;
        for (int64_t i = p->num_pages - 1; i > 0; i--) {
            const int64_t j = tl_range(r, 0, i);
            const int32_t t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
        }
        p->block_table = xcalloc((size_t)(B * stride), sizeof(int32_t));
        int64_t next = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < stride; i++) {
                const int64_t keys = s->lens[b] + s->seqlen_new;
                p->block_table[b * stride + i] =
                    i < fa2_ceil_div(keys, s->page_size) ? pool[next++] : -1;
            }
        free(pool);
        p->args.block_table_stride = stride;
    }

    /* the caches: poison everywhere, random keys in the slots each sequence
     * holds; the expected caches add the new tokens at their slots */
    poison(p->k_cache0, dt, cache_elems);
    poison(p->v_cache0, dt, cache_elems);
    fa2_kvcache_args *a = &p->args;
    a->block_table = p->block_table;
    a->max_pages = p->max_pages;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < s->lens[b]; j++)
            for (int64_t h = 0; h < hkv; h++) {
                const int64_t off = key_offset(p, b, j, h);
                fill((char *)p->k_cache0 + off * (int64_t)es, dt, d, r, 1.0);
                fill((char *)p->v_cache0 + off * (int64_t)es, dt, d, r, 1.0);
            }
    memcpy(p->k_expect, p->k_cache0, p->cache_bytes);
    memcpy(p->v_expect, p->v_cache0, p->cache_bytes);
    if (s->seqlen_new) {
        const int64_t n_new = B * s->seqlen_new * hkv * d;
        p->k_new = xcalloc((size_t)n_new, es);
        p->v_new = xcalloc((size_t)n_new, es);
        fill(p->k_new, dt, n_new, r, 1.0);
        fill(p->v_new, dt, n_new, r, 1.0);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < s->seqlen_new; t++)
                for (int64_t h = 0; h < hkv; h++) {
                    const int64_t dst = key_offset(p, b, s->lens[b] + t, h);
                    const int64_t src = ((b * s->seqlen_new + t) * hkv + h) * d;
                    memcpy((char *)p->k_expect + dst * (int64_t)es,
                           (char *)p->k_new + src * (int64_t)es, (size_t)d * es);
                    memcpy((char *)p->v_expect + dst * (int64_t)es,
                           (char *)p->v_new + src * (int64_t)es, (size_t)d * es);
                }
    }
    for (int64_t b = 0; b < B; b++)
        p->seqlens[b] = (int32_t)s->lens[b];

    a->q = fa2_tensor_4d(p->q, dt, B, s->seqlen_q, s->heads_q, d);
    a->o = fa2_tensor_4d(p->o, dt, B, s->seqlen_q, s->heads_q, d);
    if (!s->no_lse)
        a->lse = fa2_tensor_lse(p->lse, B, s->heads_q, s->seqlen_q);
    if (s->page_size) {
        a->k_cache = fa2_tensor_4d(p->k_cache, dt, p->num_pages, s->page_size, hkv, d);
        a->v_cache = fa2_tensor_4d(p->v_cache, dt, p->num_pages, s->page_size, hkv, d);
    } else {
        a->k_cache = fa2_tensor_4d(p->k_cache, dt, B, s->capacity, hkv, d);
        a->v_cache = fa2_tensor_4d(p->v_cache, dt, B, s->capacity, hkv, d);
    }
    if (s->seqlen_new) {
        a->k_new = fa2_tensor_4d(p->k_new, dt, B, s->seqlen_new, hkv, d);
        a->v_new = fa2_tensor_4d(p->v_new, dt, B, s->seqlen_new, hkv, d);
    }
    a->cache_seqlens = p->seqlens;
    a->causal = s->causal;
    a->window_left = s->window_left;
    a->window_right = s->window_right;
    a->num_splits = s->num_splits;
    a->block_n = s->block_n;
    a->key_warps = s->key_warps;
    a->num_threads = s->num_threads;
    describe(p);

    kv_problem_reset(p);
    p->o64 = xcalloc((size_t)nq_elems, sizeof(double));
    p->lse64 = xcalloc((size_t)(B * s->heads_q * s->seqlen_q), sizeof(double));
    const fa2_status st = fa2_oracle_kvcache_f64(a, p->o64, p->lse64);
    ck_assert_msg(st == FA2_OK, "oracle: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p->desc);
    ck_assert_msg(memcmp(p->k_cache, p->k_cache0, p->cache_bytes) == 0,
                  "the float64 oracle wrote the cache");
}

void kv_problem_free(kv_problem *p)
{
    void *bufs[] = {p->q, p->o, p->lse, p->k_cache, p->v_cache, p->k_cache0,
                    p->v_cache0, p->k_expect, p->v_expect, p->k_new, p->v_new,
                    p->block_table, p->o64, p->lse64};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    memset(p, 0, sizeof *p);
}

void kv_problem_reset(kv_problem *p)
{
    const kv_spec *s = &p->s;
    memcpy(p->k_cache, p->k_cache0, p->cache_bytes);
    memcpy(p->v_cache, p->v_cache0, p->cache_bytes);
    poison(p->o, s->dtype, s->batch * s->seqlen_q * s->heads_q * s->head_dim);
    poison(p->lse, FA2_DTYPE_FP32, s->batch * s->heads_q * s->seqlen_q);
}

fa2_status kv_problem_run(kv_problem *p, fa2_backend b)
{
    kv_problem_reset(p);
    return fa2_fwd_kvcache(&p->args, b);
}

void kv_measure(const kv_problem *p, kv_err *e)
{
    const kv_spec *s = &p->s;
    const int64_t d = s->head_dim;
    memset(e, 0, sizeof *e);
    for (int64_t b = 0; b < s->batch; b++)
        for (int64_t h = 0; h < s->heads_q; h++)
            for (int64_t i = 0; i < s->seqlen_q; i++) {
                const int64_t li = (b * s->heads_q + h) * s->seqlen_q + i;
                const int64_t oi = ((b * s->seqlen_q + i) * s->heads_q + h) * d;
                const double want_lse = p->lse64[li];
                const int empty = want_lse == INFINITY;
                for (int64_t c = 0; c < d; c++) {
                    const double got = get_elem(p->o, s->dtype, oi + c);
                    const double want = p->o64[oi + c];
                    if (isnan(got) && !isnan(want))
                        e->unwritten++;
                    else if (empty && got != 0.0)
                        e->empty_nonzero++;
                    else if (isfinite(want) && fabs(got - want) > e->o_max)
                        e->o_max = fabs(got - want);
                }
                if (s->no_lse)
                    continue;
                const double got = p->lse[li];
                if (isnan(got) && !isnan(want_lse))
                    e->unwritten++;
                else if ((got == INFINITY) != empty)
                    e->lse_inf_mismatch++;
                else if (isfinite(want_lse) && fabs(got - want_lse) > e->lse_max)
                    e->lse_max = fabs(got - want_lse);
            }
}

void kv_check_outputs(const kv_problem *p, const kv_err *e, const char *who)
{
    ck_assert_msg(e->unwritten == 0, "%s left %lld outputs unwritten (NaN) on %s",
                  who, (long long)e->unwritten, p->desc);
    ck_assert_msg(e->lse_inf_mismatch == 0, "%s: LSE = +inf on %lld rows where the "
                  "oracle's is not, or the other way, on %s", who,
                  (long long)e->lse_inf_mismatch, p->desc);
    ck_assert_msg(e->empty_nonzero == 0, "%s: O != 0 on %lld elements of rows that "
                  "see no key, on %s", who, (long long)e->empty_nonzero, p->desc);
    ck_assert_msg(memcmp(p->k_cache, p->k_expect, p->cache_bytes) == 0 &&
                  memcmp(p->v_cache, p->v_expect, p->cache_bytes) == 0,
                  "%s: the caches after the call differ from the expected append "
                  "on %s", who, p->desc);
}

void kv_check_bound(const kv_problem *p, const kv_err *impl, const kv_err *std,
                    const char *who)
{
    const double fo = tl_floor_o(p->s.dtype), fl = tl_floor_lse(p->s.dtype);
    if (getenv("FA2_TEST_VERBOSE"))
        fprintf(stderr, "bound %-8s o %.3e/%.3e lse %.3e/%.3e %s\n", who,
                impl->o_max, std->o_max, impl->lse_max, std->lse_max, p->desc);
    ck_assert_msg(impl->o_max <= 2.0 * std->o_max + fo, "%s: max|o - oracle| = "
                  "%.6g exceeds 2 * %.6g (standard's) + %.3g on %s", who,
                  impl->o_max, std->o_max, fo, p->desc);
    ck_assert_msg(impl->lse_max <= 2.0 * std->lse_max + fl, "%s: max|lse - oracle| "
                  "= %.6g exceeds 2 * %.6g (standard's) + %.3g on %s", who,
                  impl->lse_max, std->lse_max, fl, p->desc);
}
