/*
 * kvlib.h — KV-cache problems for the suites of fa2_fwd_kvcache (tests/
 * test_kvcache*.c, tests/gpu/test_cuda_kvcache.c): random queries, caches
 * (contiguous, or paged with a random block table over shuffled pages) and
 * new tokens; every cache slot that no sequence holds is poison (a NaN), so
 * a backend that reads a slot it should not, or an append that misses its
 * slot, shows as NaN. Also: the float64 oracle of the problem (which reads
 * the new tokens from k_new / v_new, not from the cache), the expected cache
 * after the append (written by the test itself, slot by slot), and the
 * errors of a run against the oracle.
 */
#ifndef FA2_KVLIB_H
#define FA2_KVLIB_H

#include "testlib.h"

#define KV_MAX_BATCH 8

typedef struct kv_spec {
    fa2_dtype dtype;
    int64_t batch, seqlen_q, heads_q, heads_kv, head_dim;
    int64_t page_size;   /* 0: contiguous cache                            */
    int64_t capacity;    /* keys per sequence (contiguous: Nmax; paged:
                            max_pages * page_size, rounded up to pages)    */
    int64_t lens[KV_MAX_BATCH]; /* cache_seqlens                           */
    int64_t seqlen_new;  /* 0: no append                                  */
    int causal;
    int64_t window_left, window_right;
    int num_splits, block_n, num_threads;
    int key_warps;       /* 0: the library's choice                        */
    double q_sigma;      /* 0 means 1                                     */
    int no_lse;
} kv_spec;

typedef struct kv_problem {
    kv_spec s;
    int64_t num_pages, max_pages;
    void *q, *k_cache, *v_cache, *k_new, *v_new, *o;
    float *lse;
    void *k_cache0, *v_cache0;  /* the caches as drawn (before any append) */
    void *k_expect, *v_expect;  /* the caches after a correct append        */
    int32_t *block_table;       /* NULL when contiguous                     */
    int32_t seqlens[KV_MAX_BATCH];
    size_t cache_bytes;
    fa2_kvcache_args args;
    double *o64, *lse64;        /* the oracle, dense                        */
    char desc[256];
} kv_problem;

void kv_spec_init(kv_spec *s);
/* A cache for case i of a grid (s's page size, batch and seqlen_new set):
 * a capacity drawn from [cap_lo, cap_hi] (whole pages), and lengths that
 * walk the edges: sequence b gets, by (i + b) mod kinds (>= 5), an empty
 * cache, one key, a cache filled to the top, an append crossing a page (or
 * 64-key) boundary, or a random length. */
void kv_spec_draw_cache(kv_spec *s, int i, int kinds, int64_t cap_lo, int64_t cap_hi,
                        tl_rng *r);
/* Draw the problem (data, page shuffle, block table) and its oracle. */
void kv_problem_init(kv_problem *p, const kv_spec *s, tl_rng *r);
void kv_problem_free(kv_problem *p);
/* Put the caches back as drawn, poison o and lse. */
void kv_problem_reset(kv_problem *p);
/* Reset, then run the backend; returns its status. */
fa2_status kv_problem_run(kv_problem *p, fa2_backend b);

typedef struct kv_err {
    double o_max, lse_max;
    int64_t unwritten;       /* o or lse elements still NaN where the oracle is not */
    int64_t lse_inf_mismatch;/* +inf where the oracle is finite, or back   */
    int64_t empty_nonzero;   /* O != 0 on a row that sees no key           */
} kv_err;

/* The current outputs against the oracle. */
void kv_measure(const kv_problem *p, kv_err *e);
/* Assert the outputs complete (written, +inf exactly where the oracle's,
 * O = 0 on rows that see no key) and the caches equal to the expected
 * ones, byte for byte. */
void kv_check_outputs(const kv_problem *p, const kv_err *e, const char *who);
/* Assert impl within 2 x standard's error + the dtype's floor. */
void kv_check_bound(const kv_problem *p, const kv_err *impl, const kv_err *std,
                    const char *who);

#endif /* FA2_KVLIB_H */
