/*
 * test_cuda_kvcache.c — the CUDA forward over a KV cache (fa2_fwd_kvcache
 * on FA2_BACKEND_CUDA) against the tiled CPU mirror run with the CUDA
 * backend's own split count and key tile (fa2_kvcache_num_splits), and the
 * float64 oracle, over a grid of caches: bf16 and fp16, contiguous and
 * paged (16, 64, 256-slot pages, shuffled block tables), GQA 8/1, 32/8 and
 * MHA, Nq 1 and 4, causal and not, a window, appends crossing a page, empty
 * and length-1 caches, forced splits 1 .. 16 and the library's choice. The
 * problems come from tests/kvlib.c (every unheld cache slot is a NaN, so a
 * stray read shows); they are uploaded, run, downloaded:
 *   - every O and LSE written; LSE = +inf and O = 0 exactly on rows that
 *     see no key;
 *   - |O_gpu - O_mirror| within 2 ulp of the dtype at the row's scale, LSE
 *     within 1e-5 relative (same splits, same tiles, same merge order);
 *   - the contract's bound against the oracle (kv_check_bound);
 *   - the caches after the call equal, byte for byte, to the test's own
 *     append;
 *   - host pointers are refused and nothing is written.
 *
 * Exits 77 (automake SKIP) without a usable GPU or before the CUDA row has
 * a KV-cache forward (FA2_ERR_UNSUPPORTED: the skeleton the lead's kernels
 * fill). CUDA does not survive fork(): Check's no-fork mode.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FA2_HAVE_CUDA
#include <cuda_runtime.h>

#include "../kvlib.h"

#include <math.h>

/* The device copy of a kv_problem: every buffer uploaded, the args'
 * pointers swapped for device ones (shapes and strides unchanged). */
typedef struct dev_problem {
    void *q, *k_cache, *v_cache, *k_new, *v_new, *o, *lse;
    int32_t *block_table, *seqlens;
    fa2_kvcache_args args;
} dev_problem;

static void *upload(const void *h, size_t bytes)
{
    void *d = NULL;
    ck_assert_int_eq(cudaMalloc(&d, bytes ? bytes : 1), cudaSuccess);
    if (h && bytes)
        ck_assert_int_eq(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    return d;
}

static size_t o_bytes(const kv_problem *p)
{
    return (size_t)(p->s.batch * p->s.seqlen_q * p->s.heads_q * p->s.head_dim) *
           fa2_dtype_size(p->s.dtype);
}

static size_t lse_bytes(const kv_problem *p)
{
    return (size_t)(p->s.batch * p->s.heads_q * p->s.seqlen_q) * sizeof(float);
}

static size_t new_bytes(const kv_problem *p)
{
    return (size_t)(p->s.batch * p->s.seqlen_new * p->s.heads_kv * p->s.head_dim) *
           fa2_dtype_size(p->s.dtype);
}

/* Upload p (its caches as drawn, o and lse poisoned as on the host). */
static void dev_upload(dev_problem *d, kv_problem *p)
{
    kv_problem_reset(p);
    memset(d, 0, sizeof *d);
    d->q = upload(p->q, o_bytes(p));
    d->o = upload(p->o, o_bytes(p));
    d->lse = upload(p->lse, lse_bytes(p));
    d->k_cache = upload(p->k_cache, p->cache_bytes);
    d->v_cache = upload(p->v_cache, p->cache_bytes);
    if (p->s.seqlen_new) {
        d->k_new = upload(p->k_new, new_bytes(p));
        d->v_new = upload(p->v_new, new_bytes(p));
    }
    d->seqlens = upload(p->seqlens, sizeof(int32_t) * (size_t)p->s.batch);
    if (p->block_table)
        d->block_table = upload(p->block_table, sizeof(int32_t) * (size_t)(
                                    p->s.batch * p->args.block_table_stride));
    d->args = p->args;
    d->args.q.data = d->q;
    d->args.o.data = d->o;
    if (p->args.lse.data)
        d->args.lse.data = d->lse;
    d->args.k_cache.data = d->k_cache;
    d->args.v_cache.data = d->v_cache;
    d->args.k_new.data = d->k_new;
    d->args.v_new.data = d->v_new;
    d->args.cache_seqlens = d->seqlens;
    d->args.block_table = d->block_table;
}

/* Bring o, lse and the caches back into p's host buffers. */
static void dev_download(const dev_problem *d, kv_problem *p)
{
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(p->o, d->o, o_bytes(p), cudaMemcpyDeviceToHost),
                     cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(p->lse, d->lse, lse_bytes(p), cudaMemcpyDeviceToHost),
                     cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(p->k_cache, d->k_cache, p->cache_bytes,
                                cudaMemcpyDeviceToHost), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(p->v_cache, d->v_cache, p->cache_bytes,
                                cudaMemcpyDeviceToHost), cudaSuccess);
}

static void dev_free(dev_problem *d)
{
    void *bufs[] = {d->q, d->k_cache, d->v_cache, d->k_new, d->v_new, d->o, d->lse,
                    d->block_table, d->seqlens};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        cudaFree(bufs[i]);
}

static double elem(const kv_problem *p, const void *base, int64_t i)
{
    const uint16_t h = ((const uint16_t *)base)[i];
    return p->s.dtype == FA2_DTYPE_BF16 ? fa2_bf16_to_float(h) : fa2_fp16_to_float(h);
}

/* Run p on the GPU and on the mirror with the GPU's splits; compare. */
static void check_against_mirror(kv_problem *p)
{
    dev_problem d;
    dev_upload(&d, p);
    int splits = 0;
    ck_assert_int_eq(fa2_kvcache_num_splits(&d.args, FA2_BACKEND_CUDA, &splits), FA2_OK);
    const fa2_status st = fa2_fwd_kvcache(&d.args, FA2_BACKEND_CUDA);
    ck_assert_msg(st == FA2_OK, "cuda: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p->desc);
    dev_download(&d, p);
    dev_free(&d);
    kv_err gpu, std;
    kv_measure(p, &gpu);
    kv_check_outputs(p, &gpu, "cuda");
    const size_t ob = o_bytes(p), lb = lse_bytes(p);
    void *o_gpu = malloc(ob);
    float *lse_gpu = malloc(lb);
    ck_assert(o_gpu && lse_gpu);
    memcpy(o_gpu, p->o, ob);
    memcpy(lse_gpu, p->lse, lb);

    /* the mirror with the kernel's splits (block_n resolves the same) */
    const int given = p->args.num_splits;
    p->args.num_splits = splits;
    ck_assert_int_eq(kv_problem_run(p, FA2_BACKEND_CPU_TILED), FA2_OK);
    p->args.num_splits = given;
    const double ulp = tl_unit_roundoff(p->s.dtype) * 2; /* one ulp at 1 */
    const int64_t d_ = p->s.head_dim, rows = (int64_t)(ob / fa2_dtype_size(p->s.dtype)) / d_;
    for (int64_t r = 0; r < rows; r++) {
        double scale = 0.0;
        for (int64_t c = 0; c < d_; c++)
            scale = fmax(scale, fabs(elem(p, p->o, r * d_ + c)));
        for (int64_t c = 0; c < d_; c++) {
            const double a = elem(p, o_gpu, r * d_ + c), b = elem(p, p->o, r * d_ + c);
            TL_CHECK(fabs(a - b) <= 2 * ulp * fmax(scale, 1e-3) || (isnan(a) && isnan(b)),
                     "O row %lld col %lld: cuda %.8g, mirror %.8g (splits %d) on %s",
                     (long long)r, (long long)c, a, b, splits, p->desc);
        }
    }
    for (int64_t i = 0; i < (int64_t)(lb / sizeof(float)); i++) {
        const double a = lse_gpu[i], b = p->lse[i];
        TL_CHECK(a == b || fabs(a - b) <= 1e-5 * fmax(1.0, fabs(b)),
                 "LSE %lld: cuda %.9g, mirror %.9g (splits %d) on %s", (long long)i,
                 a, b, splits, p->desc);
    }
    /* the contract's bound against the oracle */
    ck_assert_int_eq(kv_problem_run(p, FA2_BACKEND_CPU_STANDARD), FA2_OK);
    kv_measure(p, &std);
    kv_check_bound(p, &gpu, &std, "cuda");
    free(o_gpu);
    free(lse_gpu);
}

static const int64_t pages[] = {0, 16, 64, 256};
static const int64_t heads[][2] = {{8, 1}, {32, 8}, {4, 4}};
static const int splits[] = {0, 1, 2, 5, 16};

START_TEST(cuda_matches_the_mirror_with_its_splits_on_a_grid_of_caches)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = _i % 2 ? FA2_DTYPE_FP16 : FA2_DTYPE_BF16;
    s.page_size = pages[(_i / 2) % 4];
    s.heads_q = heads[_i % 3][0];
    s.heads_kv = heads[_i % 3][1];
    s.head_dim = _i % 5 == 4 ? 64 : 128;
    s.seqlen_q = _i % 4 == 3 ? 4 : 1;
    s.causal = (_i / 3) % 2;
    if (_i % 7 == 6)
        s.window_left = 100;
    s.num_splits = splits[(_i / 4) % 5];
    s.batch = 1 + _i % 4;
    s.seqlen_new = _i % 3 == 0 ? 0 : s.seqlen_q;
    s.capacity = 256 + 1000 * (_i % 5);
    if (s.page_size)
        s.capacity = fa2_ceil_div(s.capacity, s.page_size) * s.page_size;
    for (int64_t b = 0; b < s.batch; b++) {
        const int64_t room = s.capacity - s.seqlen_new;
        s.lens[b] = b == 0 ? (_i % 6 == 5 ? 0 : room)
                  : b == 1 ? 1
                  : b == 2 ? (s.page_size ? s.page_size - 1 : 63)
                           : tl_range(&r, 0, room);
    }
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    check_against_mirror(&p);
    kv_problem_free(&p);
}
END_TEST

/* Host pointers are not device memory: refused, nothing written. */
START_TEST(host_pointers_are_refused_and_nothing_is_written)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = FA2_DTYPE_BF16;
    s.heads_q = 8;
    s.heads_kv = 2;
    s.page_size = 16;
    s.capacity = 128;
    s.lens[0] = 50;
    s.seqlen_new = 1;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    kv_problem_reset(&p);
    ck_assert_int_ne(fa2_fwd_kvcache(&p.args, FA2_BACKEND_CUDA), FA2_OK);
    ck_assert(memcmp(p.k_cache, p.k_cache0, p.cache_bytes) == 0);
    kv_problem_free(&p);
}
END_TEST

int main(void)
{
    if (fa2_backend_available(FA2_BACKEND_CUDA) != FA2_OK) {
        printf("SKIP: %s\n", fa2_last_error());
        return 77;
    }
    /* a one-token problem: does the CUDA row have a KV-cache forward yet? */
    {
        tl_rng r;
        tl_rng_fixed(&r, 1);
        kv_spec s;
        kv_spec_init(&s);
        s.dtype = FA2_DTYPE_BF16;
        s.lens[0] = 16;
        kv_problem p;
        kv_problem_init(&p, &s, &r);
        dev_problem d;
        dev_upload(&d, &p);
        const fa2_status st = fa2_fwd_kvcache(&d.args, FA2_BACKEND_CUDA);
        cudaDeviceSynchronize();
        dev_free(&d);
        kv_problem_free(&p);
        if (st == FA2_ERR_UNSUPPORTED) {
            printf("SKIP: the CUDA backend has no KV-cache forward yet (%s)\n",
                   fa2_last_error());
            return 77;
        }
    }
    Suite *s = suite_create("cuda_kvcache");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, cuda_matches_the_mirror_with_its_splits_on_a_grid_of_caches,
                        0, getenv("FA2_GPU_TEST_QUICK") ? 8 : 60);
    tcase_add_test(tc, host_pointers_are_refused_and_nothing_is_written);
    suite_add_tcase(s, tc);
    printf("FA2_TEST_SEED=%llu\n", (unsigned long long)tl_seed());
    fflush(stdout);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* CUDA does not survive fork() */
    srunner_run_all(sr, CK_ENV);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#else /* no CUDA */

int main(void)
{
    printf("SKIP: this fa2 was built without CUDA\n");
    return 77;
}

#endif
