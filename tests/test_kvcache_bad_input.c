/*
 * test_kvcache_bad_input.c — bad arguments to fa2_fwd_kvcache get the
 * status that names the problem and a sentence, on every backend, and
 * nothing is written: not o, not lse, not the caches (the append happens
 * only after every check passed). Each new status of the KV-cache API
 * (FA2_ERR_BLOCK_TABLE, FA2_ERR_CACHE_SEQLENS) and each old one the API
 * can return is reached.
 */
#include "config.h"
#include "kvlib.h"

#include <stdlib.h>
#include <string.h>

typedef void (*mutate_fn)(kv_problem *p, fa2_kvcache_args *a);

typedef struct bad_case {
    const char *what;
    int paged;           /* the problem's cache: paged (32-slot pages) or not */
    mutate_fn mutate;
    fa2_status want;
    const char *mention; /* a word the sentence must contain */
} bad_case;

static void null_seqlens(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->cache_seqlens = NULL; }
static void null_v_new(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->v_new.data = NULL; }
static void null_q(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->q.data = NULL; }
static void dtype_cache(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p;
    a->v_cache.dtype = FA2_DTYPE_BF16;
}
static void dtype_new(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p;
    a->k_new.dtype = FA2_DTYPE_BF16;
}
static void dtype_lse(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p;
    a->lse.dtype = FA2_DTYPE_FP16;
}
static void gqa_ratio(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p;
    a->k_cache.shape[2] = a->v_cache.shape[2] = 3;
}
static void v_shape(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->v_cache.shape[1] -= 16; }
static void new_shape(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p;
    a->v_new.shape[1] = 1;
}
static void o_shape(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->o.shape[1] = 1; }
static void lse_shape(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->lse.shape[2] = 1; }
static void batch_cache(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->k_cache.shape[0] = 1; a->v_cache.shape[0] = 1; }
static void head_dim(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->q.shape[3] = 36; }
static void cache_stride(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->k_cache.stride[3] = 2; }
static void o_strides(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->o.stride[2] = 1; }
static void cache_self_overlap(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p; /* slots one element apart: the append would write over them */
    a->k_cache.stride[1] = 1;
}
static void o_on_cache(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->o.data = a->k_cache.data; }
static void new_on_cache(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->k_new.data = a->v_cache.data; }
static void lse_on_o(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->lse.data = a->o.data; }
static void q_on_cache(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->q.data = a->k_cache.data; }
static void bad_scale(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->softmax_scale = -1.0f; }
static void bad_window(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->window_left = -2; }
static void many_splits(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->num_splits = FA2_KVCACHE_MAX_SPLITS + 1; }
static void neg_splits(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->num_splits = -1; }
static void odd_block_n(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->block_n = 24; }
static void three_key_warps(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->key_warps = 3; }
static void neg_key_warps(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->key_warps = -1; }
static void bad_threads(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->num_threads = -1; }
static void no_pages(kv_problem *p, fa2_kvcache_args *a) { (void)p; a->max_pages = 0; }
static void short_stride(kv_problem *p, fa2_kvcache_args *a)
{
    a->block_table_stride = p->max_pages - 1;
}
static void page_out_of_range(kv_problem *p, fa2_kvcache_args *a)
{
    (void)a;
    p->block_table[0] = (int32_t)p->num_pages;
}
static void page_negative(kv_problem *p, fa2_kvcache_args *a)
{
    (void)a; /* the last page the append writes */
    const int64_t keys = p->s.lens[0] + p->s.seqlen_new;
    p->block_table[(keys - 1) / p->s.page_size] = -1;
}
static void page_size_24(kv_problem *p, fa2_kvcache_args *a)
{
    (void)p; /* a view of the first 24 slots of each 32-slot page */
    a->k_cache.shape[1] = a->v_cache.shape[1] = 24;
}
static void shared_written_page(kv_problem *p, fa2_kvcache_args *a)
{
    (void)a; /* sequence 1's first page is the one sequence 0's append writes */
    const int64_t stride = a->block_table_stride ? a->block_table_stride : p->max_pages;
    const int64_t written = p->s.lens[0] / p->s.page_size + 1; /* 31 + 2 keys */
    p->block_table[stride] = p->block_table[written];
}
static void seqlen_negative(kv_problem *p, fa2_kvcache_args *a) { (void)a; p->seqlens[1] = -1; }
static void seqlen_past_capacity(kv_problem *p, fa2_kvcache_args *a)
{
    (void)a; /* with the new tokens, one slot too many */
    p->seqlens[1] = (int32_t)(p->s.capacity - p->s.seqlen_new + 1);
}

static const bad_case cases[] = {
    {"cache_seqlens NULL", 1, null_seqlens, FA2_ERR_NULL_POINTER, "cache_seqlens"},
    {"k_new without v_new", 0, null_v_new, FA2_ERR_NULL_POINTER, "v_new"},
    {"q.data NULL", 0, null_q, FA2_ERR_NULL_POINTER, "q.data"},
    {"v_cache dtype", 1, dtype_cache, FA2_ERR_DTYPE, "v_cache"},
    {"k_new dtype", 0, dtype_new, FA2_ERR_DTYPE, "k_new"},
    {"lse dtype", 0, dtype_lse, FA2_ERR_DTYPE, "lse"},
    {"heads_q not a multiple of heads_kv", 1, gqa_ratio, FA2_ERR_SHAPE, "multiple"},
    {"v_cache shape", 0, v_shape, FA2_ERR_SHAPE, "v_cache"},
    {"v_new shape", 1, new_shape, FA2_ERR_SHAPE, "v_new"},
    {"o shape", 0, o_shape, FA2_ERR_SHAPE, "o.shape"},
    {"lse shape", 1, lse_shape, FA2_ERR_SHAPE, "lse.shape"},
    {"contiguous cache batch", 0, batch_cache, FA2_ERR_SHAPE, "k_cache.shape[0]"},
    {"head dim 36", 0, head_dim, FA2_ERR_HEAD_DIM, "head_dim"},
    {"cache last dim strided", 1, cache_stride, FA2_ERR_STRIDE, "k_cache.stride[3]"},
    {"o strides overlap", 0, o_strides, FA2_ERR_STRIDE, "o's strides"},
    {"appended cache strides overlap", 0, cache_self_overlap, FA2_ERR_STRIDE, "append"},
    {"o on the cache", 1, o_on_cache, FA2_ERR_OVERLAP, "k_cache"},
    {"k_new on the cache", 0, new_on_cache, FA2_ERR_OVERLAP, "v_cache"},
    {"lse on o", 1, lse_on_o, FA2_ERR_OVERLAP, "lse"},
    {"q on the appended cache", 0, q_on_cache, FA2_ERR_OVERLAP, "k_cache"},
    {"negative scale", 0, bad_scale, FA2_ERR_INVALID_ARGUMENT, "softmax_scale"},
    {"window -2", 1, bad_window, FA2_ERR_INVALID_ARGUMENT, "window"},
    {"129 splits", 0, many_splits, FA2_ERR_INVALID_ARGUMENT, "num_splits"},
    {"-1 splits", 1, neg_splits, FA2_ERR_INVALID_ARGUMENT, "num_splits"},
    {"block_n 24", 0, odd_block_n, FA2_ERR_INVALID_ARGUMENT, "block_n"},
    {"key_warps 3", 1, three_key_warps, FA2_ERR_INVALID_ARGUMENT, "key_warps"},
    {"key_warps -1", 0, neg_key_warps, FA2_ERR_INVALID_ARGUMENT, "key_warps"},
    {"-1 threads", 0, bad_threads, FA2_ERR_INVALID_ARGUMENT, "num_threads"},
    {"max_pages 0", 1, no_pages, FA2_ERR_INVALID_ARGUMENT, "max_pages"},
    {"block table stride below max_pages", 1, short_stride, FA2_ERR_INVALID_ARGUMENT,
     "block_table_stride"},
    {"page past the cache", 1, page_out_of_range, FA2_ERR_BLOCK_TABLE, "block_table[0][0]"},
    {"negative page the append writes", 1, page_negative, FA2_ERR_BLOCK_TABLE, "block_table[0]"},
    {"page size 24", 1, page_size_24, FA2_ERR_BLOCK_TABLE, "multiple of 16"},
    {"a page the append writes held by another sequence", 1, shared_written_page,
     FA2_ERR_BLOCK_TABLE, "append writes"},
    {"negative cache length", 1, seqlen_negative, FA2_ERR_CACHE_SEQLENS, "cache_seqlens[1]"},
    {"cache length past the paged capacity", 1, seqlen_past_capacity,
     FA2_ERR_CACHE_SEQLENS, "capacity"},
    {"cache length past the contiguous capacity", 0, seqlen_past_capacity,
     FA2_ERR_CACHE_SEQLENS, "capacity"},
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static void make_problem(kv_problem *p, int paged, tl_rng *r)
{
    kv_spec s;
    kv_spec_init(&s);
    s.batch = 2;
    s.seqlen_q = 2;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.page_size = paged ? 32 : 0;
    s.capacity = 96;
    s.lens[0] = 31; /* the append crosses into the second page */
    s.lens[1] = 50;
    s.seqlen_new = 2;
    s.causal = 1;
    kv_problem_init(p, &s, r);
}

START_TEST(bad_input_gets_its_status_and_a_sentence_and_nothing_is_written)
{
    tl_rng r;
    TL_RNG(&r);
    const bad_case *c = &cases[_i];
    const fa2_backend backends[] = {FA2_BACKEND_CPU_ORACLE, FA2_BACKEND_CPU_STANDARD,
                                    FA2_BACKEND_CPU_TILED};
    for (int bi = 0; bi < 3; bi++) {
        kv_problem p;
        make_problem(&p, c->paged, &r);
        fa2_kvcache_args a = p.args;
        c->mutate(&p, &a);
        kv_problem_reset(&p);
        const size_t o_bytes = (size_t)(p.s.batch * p.s.seqlen_q * p.s.heads_q *
                                        p.s.head_dim) * fa2_dtype_size(p.s.dtype);
        const size_t lse_bytes = (size_t)(p.s.batch * p.s.heads_q * p.s.seqlen_q) * 4;
        void *o0 = malloc(o_bytes), *l0 = malloc(lse_bytes);
        ck_assert(o0 && l0);
        memcpy(o0, p.o, o_bytes);
        memcpy(l0, p.lse, lse_bytes);
        fa2_status st = fa2_fwd_kvcache_check(&a, backends[bi]);
        ck_assert_msg(st == c->want, "%s, %s, check: %s (%s), expected %s", c->what,
                      fa2_backend_name(backends[bi]), fa2_status_str(st),
                      fa2_last_error(), fa2_status_str(c->want));
        st = fa2_fwd_kvcache(&a, backends[bi]);
        ck_assert_msg(st == c->want, "%s, %s: %s (%s), expected %s", c->what,
                      fa2_backend_name(backends[bi]), fa2_status_str(st),
                      fa2_last_error(), fa2_status_str(c->want));
        ck_assert_msg(tl_error_mentions(c->mention), "%s: the sentence \"%s\" does not "
                      "mention \"%s\"", c->what, fa2_last_error(), c->mention);
        ck_assert_msg(memcmp(o0, p.o, o_bytes) == 0 && memcmp(l0, p.lse, lse_bytes) == 0,
                      "%s, %s: o or lse written on a failed call", c->what,
                      fa2_backend_name(backends[bi]));
        ck_assert_msg(memcmp(p.k_cache, p.k_cache0, p.cache_bytes) == 0 &&
                      memcmp(p.v_cache, p.v_cache0, p.cache_bytes) == 0,
                      "%s, %s: the caches written on a failed call", c->what,
                      fa2_backend_name(backends[bi]));
        free(o0);
        free(l0);
        kv_problem_free(&p);
    }
}
END_TEST

/* The arguments are otherwise good: every backend runs them (so each case
 * above fails for its own reason). */
START_TEST(the_unmutated_problems_run_on_every_cpu_backend)
{
    tl_rng r;
    TL_RNG(&r);
    kv_problem p;
    make_problem(&p, _i, &r);
    for (int b = FA2_BACKEND_CPU_ORACLE; b <= FA2_BACKEND_CPU_TILED; b++) {
        const fa2_status st = kv_problem_run(&p, (fa2_backend)b);
        ck_assert_msg(st == FA2_OK, "%s: %s", fa2_backend_name((fa2_backend)b),
                      fa2_last_error());
    }
    kv_problem_free(&p);
}
END_TEST

/* NULL args and out-pointers, an unknown backend, and a backend without a
 * KV-cache forward (CUDA here: host pointers, or no GPU, or not built). */
START_TEST(null_args_unknown_backends_and_rows_without_the_forward_are_refused)
{
    tl_rng r;
    TL_RNG(&r);
    kv_problem p;
    make_problem(&p, 1, &r);
    int n;
    size_t bytes;
    ck_assert_int_eq(fa2_fwd_kvcache(NULL, FA2_BACKEND_CPU_TILED), FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_fwd_kvcache_check(NULL, FA2_BACKEND_CPU_TILED),
                     FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_kvcache_num_splits(&p.args, FA2_BACKEND_CPU_TILED, NULL),
                     FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_kvcache_workspace_size(&p.args, FA2_BACKEND_CPU_TILED, NULL),
                     FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_fwd_kvcache(&p.args, (fa2_backend)99), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_kvcache_num_splits(&p.args, (fa2_backend)-1, &n),
                     FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_kvcache_workspace_size(&p.args, (fa2_backend)7, &bytes),
                     FA2_ERR_INVALID_ARGUMENT);
    kv_problem_reset(&p);
    const fa2_status st = fa2_fwd_kvcache(&p.args, FA2_BACKEND_CUDA);
    ck_assert_msg(st != FA2_OK, "the CUDA backend accepted host pointers");
    ck_assert(memcmp(p.k_cache, p.k_cache0, p.cache_bytes) == 0);
    kv_problem_free(&p);
}
END_TEST

/* Warps share a block's keys only for decode's few rows: key_warps 4 over
 * 8 queries x 8 heads of a group (64 packed rows) is refused by every
 * backend, nothing written; 1 and the library's choice run. */
START_TEST(four_key_warps_need_at_most_16_packed_rows)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.batch = 1;
    s.seqlen_q = 8;
    s.heads_q = 8;
    s.heads_kv = 1;
    s.capacity = 64;
    s.lens[0] = 40;
    kv_problem p;
    kv_problem_init(&p, &s, &r); /* (runs the oracle: key_warps set after) */
    p.args.key_warps = FA2_KVCACHE_KEY_WARPS_MAX;
    const fa2_backend backends[] = {FA2_BACKEND_CPU_ORACLE, FA2_BACKEND_CPU_STANDARD,
                                    FA2_BACKEND_CPU_TILED};
    for (int k = 0; k < 3; k++) {
        kv_problem_reset(&p);
        const fa2_status st = fa2_fwd_kvcache(&p.args, backends[k]);
        ck_assert_int_eq(st, FA2_ERR_INVALID_ARGUMENT);
        ck_assert_msg(strstr(fa2_last_error(), "key_warps") != NULL, "%s",
                      fa2_last_error());
        int kw = -1;
        ck_assert_int_eq(fa2_kvcache_key_warps(&p.args, backends[k], &kw),
                         FA2_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(kw, 0);
    }
    for (int want = 0; want <= 1; want++) {
        p.args.key_warps = want;
        int kw = -1;
        ck_assert_int_eq(fa2_kvcache_key_warps(&p.args, FA2_BACKEND_CPU_TILED, &kw), FA2_OK);
        ck_assert_int_eq(kw, 1);
        ck_assert_int_eq(kv_problem_run(&p, FA2_BACKEND_CPU_TILED), FA2_OK);
    }
    ck_assert_int_eq(fa2_kvcache_key_warps(&p.args, FA2_BACKEND_CPU_TILED, NULL),
                     FA2_ERR_NULL_POINTER);
    kv_problem_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvcache_bad_input");
    TCase *tc = tcase_create("bad input");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, bad_input_gets_its_status_and_a_sentence_and_nothing_is_written,
                        0, N_CASES);
    tcase_add_loop_test(tc, the_unmutated_problems_run_on_every_cpu_backend, 0, 2);
    tcase_add_test(tc, null_args_unknown_backends_and_rows_without_the_forward_are_refused);
    tcase_add_test(tc, four_key_warps_need_at_most_16_packed_rows);
    suite_add_tcase(s, tc);
    return tl_run_suite(s);
}
