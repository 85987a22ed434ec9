/*
 * test_cuda_kvcache.c — the CUDA forward over a KV cache (gpu/kvcache_*)
 * against the CPU mirror run with the kernels' split count and tile, and
 * against the float64 oracle under the numerics contract:
 *
 *   - O within a few ulp of the output dtype of the mirror's, at the scale
 *     of the output row; LSE within 1e-5 relative (+inf exactly where the
 *     mirror has it);
 *   - max|O - oracle| <= 2 x standard attention's + the dtype's floor;
 *   - every output written, and the caches after the append equal byte for
 *     byte to the test's own append (tests/kvlib.c poisons every slot no
 *     sequence holds with NaN, so a read of a wrong slot shows);
 *   - host pointers refused with FA2_ERR_DEVICE_POINTER, four key warps
 *     at head dim 256 with FA2_ERR_UNSUPPORTED, a small workspace with
 *     FA2_ERR_SHAPE: nothing written.
 *
 * Over a grid of caches (contiguous and paged, pages 16..256, empty and
 * length-1 caches, appends across a page, GQA 8/1, 8/2, 32/8 and MHA,
 * causal and windows, 1..16 splits and the library's choice, head dims
 * 32..256) and long caches with the library's split count.
 * FA2_GPU_TEST_QUICK=1 runs a small subset (for compute-sanitizer).
 *
 * In a library configured with --enable-traffic-counters, also: the bytes
 * the append, main and combine kernels count, tensor by tensor, equal the
 * simulator's closed form (FA2_SIM_DECODE) for the kernels' tile and split
 * count on decode shapes (contiguous and paged, 1 and more splits, GQA,
 * append on and off, causal, windows); other builds print a SKIP line.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef FA2_HAVE_CUDA
#include "fa2_kvcache.h" /* fa2_kvcache_block_m: the kernels' rows a block */
#include "kvcache_params.h"
#include "gpu/gpu_mem.h"
#include "kvlib.h"

#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MIRROR_ULPS 4.0
#define MIRROR_LSE_REL 1e-5


static void from_device(void *host, const void *dev, size_t bytes)
{
    if (bytes)
        cuda_ok(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), "download");
}

/* the device copy of a problem: the caches as drawn, outputs poisoned */
typedef struct dev_problem {
    void *q, *o, *kc, *vc, *kn, *vn, *lse, *bt, *lens;
    size_t q_bytes, new_bytes, lse_bytes, bt_bytes;
    fa2_kvcache_args a;
} dev_problem;

static void dev_problem_init(dev_problem *d, const kv_problem *p)
{
    const kv_spec *s = &p->s;
    const size_t es = fa2_dtype_size(s->dtype);
    memset(d, 0, sizeof *d);
    d->q_bytes = (size_t)(s->batch * s->seqlen_q * s->heads_q * s->head_dim) * es;
    d->new_bytes = (size_t)(s->batch * s->seqlen_new * s->heads_kv * s->head_dim) * es;
    d->lse_bytes = (size_t)(s->batch * s->heads_q * s->seqlen_q) * sizeof(float);
    d->a = p->args;
    d->q = gpu_copy_of(p->q, d->q_bytes);
    d->o = gpu_copy_of(NULL, d->q_bytes);
    d->kc = gpu_copy_of(p->k_cache0, p->cache_bytes);
    d->vc = gpu_copy_of(p->v_cache0, p->cache_bytes);
    d->lens = gpu_copy_of(p->seqlens, (size_t)s->batch * sizeof(int32_t));
    d->a.q.data = d->q;
    d->a.o.data = d->o;
    d->a.k_cache.data = d->kc;
    d->a.v_cache.data = d->vc;
    d->a.cache_seqlens = d->lens;
    if (!s->no_lse) {
        d->lse = gpu_copy_of(NULL, d->lse_bytes);
        d->a.lse.data = d->lse;
    }
    if (s->seqlen_new) {
        d->kn = gpu_copy_of(p->k_new, d->new_bytes);
        d->vn = gpu_copy_of(p->v_new, d->new_bytes);
        d->a.k_new.data = d->kn;
        d->a.v_new.data = d->vn;
    }
    if (p->block_table) {
        const int64_t stride = p->args.block_table_stride ? p->args.block_table_stride
                                                          : p->max_pages;
        d->bt_bytes = (size_t)(stride * s->batch) * sizeof(int32_t);
        d->bt = gpu_copy_of(p->block_table, d->bt_bytes);
        d->a.block_table = d->bt;
    }
}

static void dev_problem_free(dev_problem *d)
{
    void *bufs[] = {d->q, d->o, d->kc, d->vc, d->kn, d->vn, d->lse, d->bt, d->lens};
    for (int i = 0; i < COUNT(bufs); i++)
        if (bufs[i])
            cudaFree(bufs[i]);
}

/* the GPU's outputs and caches into p's host buffers (kv_measure reads them) */
static void dev_problem_download(const dev_problem *d, kv_problem *p)
{
    from_device(p->o, d->o, d->q_bytes);
    if (d->lse)
        from_device(p->lse, d->lse, d->lse_bytes);
    from_device(p->k_cache, d->kc, p->cache_bytes);
    from_device(p->v_cache, d->vc, p->cache_bytes);
}

static double get(fa2_dtype dt, const void *base, int64_t i)
{
    const uint16_t h = ((const uint16_t *)base)[i];
    return dt == FA2_DTYPE_FP16 ? fa2_fp16_to_float(h) : fa2_bf16_to_float(h);
}

static double ulp_of(fa2_dtype dt, double x)
{
    int e;
    frexp(fabs(x), &e); /* |x| in [2^(e-1), 2^e) */
    const int mant = dt == FA2_DTYPE_FP16 ? 10 : 7;
    const int emin = dt == FA2_DTYPE_FP16 ? -14 : -126;
    const int ex = (x == 0 || e - 1 < emin) ? emin : e - 1;
    return ldexp(1.0, ex - mant);
}

/* GPU (in p's buffers) vs the mirror's outputs */
static void compare_to_mirror(const kv_problem *p, const void *o_m, const float *lse_m,
                              double *o_ulps, double *lse_rel, int64_t *inf_mismatch)
{
    const kv_spec *s = &p->s;
    const int64_t d = s->head_dim, rows = s->batch * s->seqlen_q * s->heads_q;
    *o_ulps = *lse_rel = 0;
    *inf_mismatch = 0;
    for (int64_t r = 0; r < rows; r++) {
        double scale = 0;
        for (int64_t c = 0; c < d; c++) {
            const double m = fabs(get(s->dtype, o_m, r * d + c));
            scale = m > scale ? m : scale;
        }
        for (int64_t c = 0; c < d; c++) {
            const double g = get(s->dtype, p->o, r * d + c);
            const double m = get(s->dtype, o_m, r * d + c);
            const double u = (isnan(g) != isnan(m)) ? INFINITY
                             : isnan(g)             ? 0
                                                    : fabs(g - m) / ulp_of(s->dtype, scale);
            *o_ulps = u > *o_ulps ? u : *o_ulps;
        }
    }
    if (s->no_lse)
        return;
    for (int64_t i = 0; i < s->batch * s->heads_q * s->seqlen_q; i++) {
        const double g = p->lse[i], m = lse_m[i];
        if (isinf(g) || isinf(m)) {
            *inf_mismatch += g != m;
            continue;
        }
        const double rel = fabs(g - m) / (fabs(m) > 1 ? fabs(m) : 1);
        *lse_rel = rel > *lse_rel ? rel : *lse_rel;
    }
}

static int verbose(void)
{
    const char *v = getenv("FA2_TEST_VERBOSE");
    return v && *v && *v != '0';
}

/* The whole check of one spec. */
static void check_spec(const kv_spec *spec, tl_rng *r)
{
    kv_problem p;
    kv_problem_init(&p, spec, r);
    int splits = 0, key_warps = 0;
    fa2_status st = fa2_kvcache_num_splits(&p.args, FA2_BACKEND_CUDA, &splits);
    ck_assert_msg(st == FA2_OK, "num_splits: %s", fa2_last_error());
    st = fa2_kvcache_key_warps(&p.args, FA2_BACKEND_CUDA, &key_warps);
    ck_assert_msg(st == FA2_OK, "key_warps: %s", fa2_last_error());

    /* the GPU first (its split count was resolved above) */
    dev_problem dv;
    dev_problem_init(&dv, &p);
    dv.a.num_splits = splits;
    st = fa2_fwd_kvcache(&dv.a, FA2_BACKEND_CUDA);
    ck_assert_msg(st == FA2_OK, "cuda: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p.desc);
    cuda_ok(cudaDeviceSynchronize(), "the KV-cache kernels");
    dev_problem_download(&dv, &p);
    kv_err gpu;
    kv_measure(&p, &gpu);
    kv_check_outputs(&p, &gpu, "cuda");
    const size_t ob = dv.q_bytes, lb = dv.lse_bytes;
    void *o_gpu = malloc(ob ? ob : 1);
    float *lse_gpu = malloc(lb ? lb : 1);
    memcpy(o_gpu, p.o, ob);
    memcpy(lse_gpu, p.lse, lb);

    /* the mirror with the kernels' chunks: their split count, key warps
     * and tile */
    p.args.num_splits = splits;
    p.args.key_warps = key_warps;
    p.args.block_n = FA2_KVC_BLOCK_N(FA2_KVC_KERNEL_HEAD_DIM(spec->head_dim));
    st = kv_problem_run(&p, FA2_BACKEND_CPU_TILED);
    ck_assert_msg(st == FA2_OK, "tiled: %s on %s", fa2_last_error(), p.desc);
    void *o_m = malloc(ob ? ob : 1);
    float *lse_m = malloc(lb ? lb : 1);
    memcpy(o_m, p.o, ob);
    memcpy(lse_m, p.lse, lb);
    st = kv_problem_run(&p, FA2_BACKEND_CPU_STANDARD);
    ck_assert_msg(st == FA2_OK, "standard: %s on %s", fa2_last_error(), p.desc);
    kv_err std;
    kv_measure(&p, &std);

    /* the GPU's outputs back in p for the comparisons */
    memcpy(p.o, o_gpu, ob);
    memcpy(p.lse, lse_gpu, lb);
    double o_ulps, lse_rel;
    int64_t inf_mismatch;
    compare_to_mirror(&p, o_m, lse_m, &o_ulps, &lse_rel, &inf_mismatch);
    if (verbose())
        fprintf(stderr, "case %-100s splits %2d kw %d  o %.2e (std %.2e) mirror %.2f ulp  "
                "lse %.2e (std %.2e) mirror %.1e\n", p.desc, splits, key_warps, gpu.o_max,
                std.o_max, o_ulps, gpu.lse_max, std.lse_max, lse_rel);
    ck_assert_msg(o_ulps <= MIRROR_ULPS, "O differs from the mirror (%d splits) by "
                  "%.2f ulp of the row's scale (limit %.0f): %s", splits, o_ulps,
                  MIRROR_ULPS, p.desc);
    ck_assert_msg(lse_rel <= MIRROR_LSE_REL && inf_mismatch == 0, "LSE differs from "
                  "the mirror by %.2e relative (limit %.0e), %lld +inf mismatches: %s",
                  lse_rel, MIRROR_LSE_REL, (long long)inf_mismatch, p.desc);
    kv_check_bound(&p, &gpu, &std, "cuda");
    free(o_gpu);
    free(lse_gpu);
    free(o_m);
    free(lse_m);
    dev_problem_free(&dv);
    kv_problem_free(&p);
}

static const fa2_dtype dtypes[] = {FA2_DTYPE_FP16, FA2_DTYPE_BF16};
static const int64_t page_sizes[] = {0, 16, 64, 256, 48, 128};
static const int64_t heads[][2] = {{32, 8}, {8, 1}, {8, 2}, {4, 4}};
static const int64_t seqlens_q[] = {1, 4, 16, 3, 2};
static const int64_t head_dims[] = {128, 64, 256, 32, 96};
static const int64_t windows[][2] = {{-1, -1}, {-1, -1}, {40, 0}, {5, 3}, {-1, 2}};
static const int splits[] = {0, 1, 2, 3, 16, 7};

enum { GRID_CASES = 120 };

START_TEST(kernels_equal_the_mirror_with_their_splits_on_a_grid_of_caches)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    const int i = _i;
    s.dtype = dtypes[i % COUNT(dtypes)];
    s.page_size = page_sizes[(i / 2) % COUNT(page_sizes)];
    s.heads_q = heads[(i / 3) % COUNT(heads)][0];
    s.heads_kv = heads[(i / 3) % COUNT(heads)][1];
    s.seqlen_q = seqlens_q[i % COUNT(seqlens_q)];
    s.head_dim = head_dims[(i / 7) % COUNT(head_dims)];
    s.causal = (i / 4) % 2;
    s.window_left = windows[i % COUNT(windows)][0];
    s.window_right = windows[i % COUNT(windows)][1];
    s.num_splits = splits[(i / 5) % COUNT(splits)];
    s.batch = 1 + i % 3;
    s.seqlen_new = i % 4 == 0 ? 0 : s.seqlen_q;
    s.no_lse = i % 9 == 8;
    /* four key warps on every other case with decode's few packed rows */
    if (s.seqlen_q * (s.heads_q / s.heads_kv) <= FA2_KVCACHE_KEY_WARPS_ROWS && i % 2 &&
        FA2_KVC_KERNEL_HEAD_DIM(s.head_dim) <= FA2_KVCACHE_KEY_WARPS_HEAD_DIM_MAX)
        s.key_warps = FA2_KVCACHE_KEY_WARPS_MAX;
    kv_spec_draw_cache(&s, i, 5, 40, 700, &r);
    check_spec(&s, &r);
}
END_TEST

/* Decode as the benchmark times it: 32/8 heads, d 128, causal, 1 and 4
 * queries appended (case i's bit 1), fp16 and bf16 (bit 0). */
static void decode_spec(kv_spec *s, int i)
{
    kv_spec_init(s);
    s->dtype = i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    s->heads_q = 32;
    s->heads_kv = 8;
    s->head_dim = 128;
    s->seqlen_q = (i / 2) % 2 ? 4 : 1;
    s->seqlen_new = s->seqlen_q;
    s->causal = 1;
}

/* Long caches with the library's split count, contiguous and paged. */
START_TEST(long_caches_with_the_librarys_splits_equal_the_mirror)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    decode_spec(&s, _i);
    s.batch = 2;
    s.page_size = (_i / 4) % 2 ? 64 : 0;
    s.capacity = 8192;
    s.lens[0] = 8000;
    s.lens[1] = 2500 + _i;
    check_spec(&s, &r);
}
END_TEST

/* A cache long enough that the library's rule takes four key warps (one
 * sequence, 8 key heads, 40k keys, one new token): the kernels with their
 * splits and key warps equal the mirror, contiguous and in pages of 64
 * (bit 2). With pages of 16 or 4 queries the rule keeps one warp (bit 1:
 * pages of 16, bit 2 and 1: 4 queries, four key warps asked for by name). */
START_TEST(four_key_warps_of_the_librarys_choice_equal_the_mirror)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    decode_spec(&s, _i & 1); /* one new token */
    s.batch = 1;
    s.page_size = _i / 4 ? 64 : 0;
    s.capacity = 40960;
    s.lens[0] = 40000 + _i;
    int want = FA2_KVCACHE_KEY_WARPS_MAX;
    if ((_i / 2) % 2 && !(_i / 4)) {
        s.page_size = 16;
        want = 1;
    } else if ((_i / 2) % 2) {
        s.seqlen_q = s.seqlen_new = 4;
        s.key_warps = FA2_KVCACHE_KEY_WARPS_MAX;
    }
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    int kw = 0;
    ck_assert_int_eq(fa2_kvcache_key_warps(&p.args, FA2_BACKEND_CUDA, &kw), FA2_OK);
    ck_assert_int_eq(kw, want);
    kv_problem_free(&p);
    check_spec(&s, &r);
}
END_TEST

START_TEST(host_pointers_are_refused_and_nothing_is_written)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = FA2_DTYPE_FP16;
    s.batch = 1;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 64;
    s.seqlen_q = 1;
    s.seqlen_new = 1;
    s.capacity = 64;
    s.lens[0] = 10;
    kv_problem p;
    kv_problem_init(&p, &s, &r);
    kv_problem_reset(&p);
    const fa2_status st = fa2_fwd_kvcache(&p.args, FA2_BACKEND_CUDA);
    ck_assert_msg(st == FA2_ERR_DEVICE_POINTER, "host pointers gave %s (%s)",
                  fa2_status_str(st), fa2_last_error());
    ck_assert_msg(memcmp(p.k_cache, p.k_cache0, p.cache_bytes) == 0,
                  "the refused call wrote the cache");
    kv_problem_free(&p);
}
END_TEST

/* A call the CUDA backend refuses after its host checks, with new tokens
 * to append: the status, and the device caches as they were (the append
 * runs only once nothing can be refused). */
static void refused_on_the_device_writes_nothing(kv_spec *s, tl_rng *r, int what,
                                                 fa2_status want, const char *why)
{
    kv_problem p;
    kv_problem_init(&p, s, r);
    dev_problem dv;
    dev_problem_init(&dv, &p);
    void *small = NULL;
    if (what == 1) { /* a workspace too small for the splits */
        small = gpu_copy_of(NULL, 256);
        dv.a.workspace = small;
        dv.a.workspace_bytes = 256;
    }
    const fa2_status st = fa2_fwd_kvcache(&dv.a, FA2_BACKEND_CUDA);
    ck_assert_msg(st == want, "%s gave %s (%s)", why, fa2_status_str(st),
                  fa2_last_error());
    ck_assert_msg(fa2_last_error()[0] != '\0', "%s: no sentence", why);
    cuda_ok(cudaDeviceSynchronize(), "after the refused call");
    dev_problem_download(&dv, &p);
    ck_assert_msg(memcmp(p.k_cache, p.k_cache0, p.cache_bytes) == 0 &&
                      memcmp(p.v_cache, p.v_cache0, p.cache_bytes) == 0,
                  "%s: the refused call wrote the cache", why);
    if (small)
        cudaFree(small);
    dev_problem_free(&dv);
    kv_problem_free(&p);
}

static void small_append_spec(kv_spec *s, int64_t head_dim)
{
    kv_spec_init(s);
    s->dtype = FA2_DTYPE_BF16;
    s->batch = 2;
    s->heads_q = 8;
    s->heads_kv = 2;
    s->head_dim = head_dim;
    s->seqlen_q = 1;
    s->seqlen_new = 1;
    s->capacity = 256;
    s->lens[0] = 100;
    s->lens[1] = 7;
}

/* Four key warps' stages at head dim 256 do not fit a block's shared
 * memory on any GPU: FA2_ERR_UNSUPPORTED with a sentence, the cache
 * untouched (the tiled mirror runs them; fa2_kvcache_key_warps never
 * picks them there). */
START_TEST(four_key_warps_at_head_dim_256_are_refused_and_nothing_is_written)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    small_append_spec(&s, 256);
    s.key_warps = FA2_KVCACHE_KEY_WARPS_MAX;
    refused_on_the_device_writes_nothing(&s, &r, 0, FA2_ERR_UNSUPPORTED,
                                         "key_warps 4 at head dim 256");
}
END_TEST

/* A caller's workspace smaller than the splits' partials: FA2_ERR_SHAPE,
 * and the new tokens not appended. */
START_TEST(a_workspace_too_small_is_refused_and_nothing_is_written)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec s;
    small_append_spec(&s, 128);
    s.num_splits = 4;
    refused_on_the_device_writes_nothing(&s, &r, 1, FA2_ERR_SHAPE, "a 256-byte workspace");
}
END_TEST

/* Decode runs in CUDA graphs (vLLM-style serving captures each step): a
 * call captured on a stream and replayed writes the bytes a direct call
 * writes. Append, main and combine kernels all run (split count > 1); the
 * split-KV workspace comes from the stream-ordered pool inside the graph.
 * (cudaStreamGetFlags/GetDevice in the stream check used to invalidate the
 * capture.) */
START_TEST(a_call_captured_in_a_cuda_graph_replays_to_the_same_bytes)
{
    tl_rng r;
    TL_RNG(&r);
    kv_spec sp;
    kv_spec_init(&sp);
    sp.dtype = FA2_DTYPE_BF16;
    sp.batch = 2;
    sp.heads_q = 32;
    sp.heads_kv = 8;
    sp.head_dim = 128;
    sp.seqlen_q = 1;
    sp.seqlen_new = 1;
    sp.causal = 1;
    sp.page_size = 64;
    sp.capacity = 8192;
    sp.lens[0] = 8000;
    sp.lens[1] = 3000;
    kv_problem p;
    kv_problem_init(&p, &sp, &r);
    dev_problem dv;
    dev_problem_init(&dv, &p);
    cudaStream_t stream;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    dv.a.stream = stream;
    int nsplits = 0;
    ck_assert(fa2_kvcache_num_splits(&dv.a, FA2_BACKEND_CUDA, &nsplits) == FA2_OK);
    ck_assert_msg(nsplits > 1, "the case should split (got %d)", nsplits);

    fa2_status st = fa2_fwd_kvcache(&dv.a, FA2_BACKEND_CUDA);
    ck_assert_msg(st == FA2_OK, "direct call: %s", fa2_last_error());
    cuda_ok(cudaStreamSynchronize(stream), "direct call");
    void *o_direct = malloc(dv.q_bytes);
    float *lse_direct = malloc(dv.lse_bytes);
    from_device(o_direct, dv.o, dv.q_bytes);
    from_device(lse_direct, dv.lse, dv.lse_bytes);

    cuda_ok(cudaMemset(dv.o, 0xff, dv.q_bytes), "poison o");
    cuda_ok(cudaMemset(dv.lse, 0xff, dv.lse_bytes), "poison lse");
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    st = fa2_fwd_kvcache(&dv.a, FA2_BACKEND_CUDA);
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    ck_assert_msg(st == FA2_OK, "captured call: %s", fa2_last_error());
    ck_assert_msg(end == cudaSuccess, "the capture was invalidated: %s",
                  cudaGetErrorString(end));
    cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    for (int rep = 0; rep < 2; rep++)
        cuda_ok(cudaGraphLaunch(exec, stream), "replay");
    cuda_ok(cudaStreamSynchronize(stream), "replay");
    void *o_graph = malloc(dv.q_bytes);
    float *lse_graph = malloc(dv.lse_bytes);
    from_device(o_graph, dv.o, dv.q_bytes);
    from_device(lse_graph, dv.lse, dv.lse_bytes);
    ck_assert_msg(memcmp(o_graph, o_direct, dv.q_bytes) == 0,
                  "O from the graph differs from the direct call");
    ck_assert_msg(memcmp(lse_graph, lse_direct, dv.lse_bytes) == 0,
                  "LSE from the graph differs from the direct call");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    free(o_direct);
    free(lse_direct);
    free(o_graph);
    free(lse_graph);
    dev_problem_free(&dv);
    kv_problem_free(&p);
}
END_TEST

/* ---- traffic counters against the simulator ------------------------------ */

/* Decode shapes for the counters: contiguous and paged, one split and
 * several (and the library's choice), GQA and MHA, append on and off,
 * causal and windows, one and several row blocks, a head dim the kernel
 * pads. Every sequence has at least one key (the simulator takes seqlen_k
 * >= 1): an empty cache appears only with an append. */
static const struct {
    fa2_dtype dtype;
    int64_t hq, hkv, nq, d, page, nnew;
    int causal;
    int64_t wl, wr;
    int splits;
    int64_t capacity, lens[3];
} traffic_cases[] = {
    {FA2_DTYPE_BF16, 32, 8, 1, 128, 0, 0, 1, -1, -1, 1, 2048, {300, 2048, 1}},
    {FA2_DTYPE_BF16, 32, 8, 4, 128, 0, 4, 1, -1, -1, 0, 8192, {5000, 777, 0}},
    {FA2_DTYPE_FP16, 8, 2, 2, 64, 64, 2, 0, 40, 0, 3, 1024, {1000, 62, 63}},
    {FA2_DTYPE_BF16, 8, 1, 16, 96, 16, 16, 1, -1, -1, 16, 1024, {700, 1, 1008}},
    {FA2_DTYPE_FP16, 4, 4, 3, 256, 256, 0, 0, -1, 2, 7, 2048, {2000, 513, 256}},
    {FA2_DTYPE_BF16, 32, 8, 1, 128, 0, 1, 1, 100, 0, 2, 4096, {4000, 1, 2500}},
    {FA2_DTYPE_FP16, 32, 32, 1, 128, 64, 1, 1, -1, -1, 0, 4096, {4095, 3000, 100}},
};
#define N_TRAFFIC COUNT(traffic_cases)

static kv_spec traffic_spec(int i)
{
    kv_spec s;
    kv_spec_init(&s);
    s.dtype = traffic_cases[i].dtype;
    s.batch = 3;
    s.heads_q = traffic_cases[i].hq;
    s.heads_kv = traffic_cases[i].hkv;
    s.seqlen_q = traffic_cases[i].nq;
    s.head_dim = traffic_cases[i].d;
    s.page_size = traffic_cases[i].page;
    s.seqlen_new = traffic_cases[i].nnew;
    s.causal = traffic_cases[i].causal;
    s.window_left = traffic_cases[i].wl;
    s.window_right = traffic_cases[i].wr;
    s.num_splits = traffic_cases[i].splits;
    s.capacity = traffic_cases[i].capacity;
    for (int b = 0; b < 3; b++)
        s.lens[b] = traffic_cases[i].lens[b];
    return s;
}

#ifdef FA2_TRAFFIC_COUNTERS
/* The simulator's closed form (FA2_SIM_DECODE, no L2) for the kernels'
 * launch on this problem, sequence by sequence (it takes fixed lengths;
 * the launches' bytes add over sequences): their split count, their tile
 * (gpu/kvcache_params.h: 16 packed rows a warp, one warp up to 16 rows
 * unless FA2_CUDA_KVCACHE_WARPS=4, FA2_KVC_BLOCK_N keys). */
static void simulated_traffic(const kv_spec *s, int nsplits, fa2_sim_counters *sum)
{
    const int64_t rows = s->seqlen_q * (s->heads_q / s->heads_kv);
    const char *e = getenv("FA2_CUDA_KVCACHE_WARPS");
    const int bm = e && e[0] == '4' ? 64 : (int)fa2_kvcache_block_m(rows);
    fa2_sim_device dev;
    ck_assert_int_eq(fa2_sim_device_builtin("h200", &dev), FA2_OK);
    memset(sum, 0, sizeof *sum);
    for (int64_t b = 0; b < s->batch; b++) {
        fa2_sim_args sa;
        fa2_sim_args_init(&sa);
        sa.algo = FA2_SIM_DECODE;
        sa.dtype = s->dtype;
        sa.batch = 1;
        sa.heads_q = s->heads_q;
        sa.heads_kv = s->heads_kv;
        sa.seqlen_q = s->seqlen_q;
        sa.seqlen_k = s->lens[b] + s->seqlen_new;
        sa.head_dim = s->head_dim;
        sa.causal = s->causal;
        sa.window_left = s->window_left;
        sa.window_right = s->window_right;
        sa.page_size = s->page_size;
        sa.seqlen_new = s->seqlen_new;
        sa.cache_capacity = s->capacity;
        sa.num_splits = nsplits;
        sa.block_m = bm;
        sa.block_n = FA2_KVC_BLOCK_N(FA2_KVC_KERNEL_HEAD_DIM(s->head_dim));
        sa.warps = bm / 16;
        sa.l2 = 0;
        fa2_sim_counters cf;
        ck_assert_msg(fa2_sim_closed_form(&sa, &dev, &cf) == FA2_OK,
                      "fa2_sim_closed_form: %s", fa2_last_error());
        sum->global_read += cf.global_read;
        sum->global_written += cf.global_written;
        for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
            sum->tensor_read[t] += cf.tensor_read[t];
            sum->tensor_written[t] += cf.tensor_written[t];
        }
    }
}

/* One counter against the simulator's count of the same tensor. */
static int same(const char *what, uint64_t got, int64_t sim, const char *desc)
{
    if (got == (uint64_t)sim)
        return 1;
    fprintf(stderr, "traffic %s: the kernels counted %llu bytes, the simulator "
            "%lld, on %s\n", what, (unsigned long long)got, (long long)sim, desc);
    return 0;
}

/* Every byte the append, main and combine kernels count equals the
 * simulator's closed form for their launch, tensor by tensor: q, k, v
 * loaded; o, lse stored; k_new, v_new loaded and k, v stored by the
 * append; the float32 partials stored and loaded; and the simulator counts
 * nothing the kernels do not (the sums agree). */
START_TEST(traffic_counters_equal_the_simulator_tensor_by_tensor)
{
    tl_rng r;
    TL_RNG(&r);
    const kv_spec spec = traffic_spec(_i);
    kv_problem p;
    kv_problem_init(&p, &spec, &r);
    int nsplits = 0;
    ck_assert_msg(fa2_kvcache_num_splits(&p.args, FA2_BACKEND_CUDA, &nsplits) == FA2_OK,
                  "num_splits: %s", fa2_last_error());
    dev_problem dv;
    dev_problem_init(&dv, &p);
    dv.a.num_splits = nsplits;
    cuda_ok(cudaDeviceSynchronize(), "the uploads");
    ck_assert_int_eq(fa2_cuda_traffic_reset(), FA2_OK);
    const fa2_status st = fa2_fwd_kvcache(&dv.a, FA2_BACKEND_CUDA);
    ck_assert_msg(st == FA2_OK, "cuda: %s on %s", fa2_last_error(), p.desc);
    cuda_ok(cudaDeviceSynchronize(), "the KV-cache kernels");
    fa2_traffic got;
    ck_assert_int_eq(fa2_cuda_traffic_read(&got), FA2_OK);
    fa2_sim_counters sim;
    simulated_traffic(&spec, nsplits, &sim);
    const int64_t *R = sim.tensor_read, *W = sim.tensor_written;
    int ok = same("q loaded", got.q_bytes, R[FA2_SIM_T_Q], p.desc);
    ok &= same("k loaded", got.k_bytes, R[FA2_SIM_T_K], p.desc);
    ok &= same("v loaded", got.v_bytes, R[FA2_SIM_T_V], p.desc);
    ok &= same("o stored", got.o_bytes, W[FA2_SIM_T_O], p.desc);
    ok &= same("lse stored", got.lse_bytes, W[FA2_SIM_T_LSE], p.desc);
    ok &= same("k_new loaded", got.k_new_bytes, R[FA2_SIM_T_K_NEW], p.desc);
    ok &= same("v_new loaded", got.v_new_bytes, R[FA2_SIM_T_V_NEW], p.desc);
    ok &= same("k stored (append)", got.k_cache_written_bytes, W[FA2_SIM_T_K], p.desc);
    ok &= same("v stored (append)", got.v_cache_written_bytes, W[FA2_SIM_T_V], p.desc);
    ok &= same("o_partial stored", got.o_partial_written_bytes, W[FA2_SIM_T_O_PARTIAL],
               p.desc);
    ok &= same("lse_partial stored", got.lse_partial_written_bytes,
               W[FA2_SIM_T_LSE_PARTIAL], p.desc);
    ok &= same("o_partial loaded", got.o_partial_read_bytes, R[FA2_SIM_T_O_PARTIAL],
               p.desc);
    ok &= same("lse_partial loaded", got.lse_partial_read_bytes,
               R[FA2_SIM_T_LSE_PARTIAL], p.desc);
    ok &= same("all loads", got.read_bytes, sim.global_read, p.desc);
    ok &= same("all stores", got.written_bytes, sim.global_written, p.desc);
    ck_assert_msg(ok, "the KV-cache kernels' traffic differs from the simulator's "
                  "(%d splits; the lines above): %s", nsplits, p.desc);
    /* not vacuous: the shape moved its cache, and the partials when split */
    ck_assert(got.k_bytes > 0 && (nsplits == 1) == (got.o_partial_read_bytes == 0));
    ck_assert((spec.seqlen_new > 0) == (got.k_new_bytes > 0));
    fprintf(stderr, "traffic %-100s splits %2d: read %llu written %llu = simulator\n",
            p.desc, nsplits, (unsigned long long)got.read_bytes,
            (unsigned long long)got.written_bytes);
    dev_problem_free(&dv);
    kv_problem_free(&p);
}
END_TEST
#else
/* A build without the counters cannot check them: say so, and check that
 * the library says so too. */
START_TEST(traffic_counters_are_not_built_and_the_check_is_skipped)
{
    fa2_traffic t;
    ck_assert_int_eq(fa2_cuda_traffic_read(&t), FA2_ERR_NOT_BUILT);
    ck_assert_int_eq(fa2_cuda_traffic_reset(), FA2_ERR_NOT_BUILT);
    printf("SKIP: traffic counters equal the simulator (%d decode shapes): this "
           "fa2 was configured without --enable-traffic-counters\n", N_TRAFFIC);
    fflush(stdout);
    (void)traffic_spec;
}
END_TEST
#endif

static int quick(void)
{
    const char *v = getenv("FA2_GPU_TEST_QUICK");
    return v && *v && *v != '0';
}

static Suite *cuda_kvcache_suite(void)
{
    Suite *s = suite_create("cuda_kvcache");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, kernels_equal_the_mirror_with_their_splits_on_a_grid_of_caches,
                        0, quick() ? 16 : GRID_CASES);
    tcase_add_loop_test(tc, long_caches_with_the_librarys_splits_equal_the_mirror, 0,
                        quick() ? 2 : 8);
    tcase_add_loop_test(tc, four_key_warps_of_the_librarys_choice_equal_the_mirror, 0,
                        quick() ? 2 : 8);
    tcase_add_test(tc, host_pointers_are_refused_and_nothing_is_written);
    tcase_add_test(tc, four_key_warps_at_head_dim_256_are_refused_and_nothing_is_written);
    tcase_add_test(tc, a_workspace_too_small_is_refused_and_nothing_is_written);
    tcase_add_test(tc, a_call_captured_in_a_cuda_graph_replays_to_the_same_bytes);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("traffic");
    tcase_set_timeout(tr, 600);
#ifdef FA2_TRAFFIC_COUNTERS
    tcase_add_loop_test(tr, traffic_counters_equal_the_simulator_tensor_by_tensor, 0,
                        quick() ? 2 : N_TRAFFIC);
#else
    tcase_add_test(tr, traffic_counters_are_not_built_and_the_check_is_skipped);
#endif
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    if (fa2_backend_available(FA2_BACKEND_CUDA) != FA2_OK) {
        printf("SKIP: %s\n", fa2_last_error());
        return 77;
    }
    const unsigned long long seed = (unsigned long long)tl_seed();
    printf("test_cuda_kvcache: FA2_TEST_SEED=%llu reproduces\n", seed);
    fflush(stdout);
    SRunner *sr = srunner_create(cuda_kvcache_suite());
    srunner_set_fork_status(sr, CK_NOFORK); /* CUDA does not survive fork() */
    srunner_run_all(sr, CK_ENV);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        printf("test_cuda_kvcache: %d failed; rerun with FA2_TEST_SEED=%llu\n",
               failed, seed);
    return failed ? 1 : 0;
}

#else /* no CUDA */

int main(void)
{
    printf("SKIP: this fa2 was built without CUDA\n");
    return 77;
}

#endif
