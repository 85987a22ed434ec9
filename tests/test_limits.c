/*
 * test_limits.c — arguments at the edges of their ranges get an answer
 * that is right or a status, never a hang, an overflow or a silent no-op:
 *
 *   - max_seqlen_q/k beyond the packed length are refused (FA2_ERR_SEQLENS);
 *     a generous but possible one costs nothing and changes no bit;
 *   - fa2_ceil_div does not overflow near INT64_MAX;
 *   - a window of INT64_MAX (or any value past the sequence) is the same as
 *     no window, in every backend, whichever of seqlen_q, seqlen_k is longer;
 *   - a stride of INT64_MIN on an extent-1 dim is harmless; the backward's
 *     dout/dq/dk/dv get the same span checks as q; a span that wraps the
 *     address space is refused (FA2_ERR_SHAPE);
 *   - overlap is decided on elements: flash-attn's packed dqkv [B, N, 3, H,
 *     d] and packed qkv are accepted and give the same bits as separate
 *     tensors, while views that do share an element are still refused;
 *   - softmax_scale whose scale * log2(e) overflows float is refused;
 *   - sequences longer than 2^31 - 1 rows are refused (FA2_ERR_SHAPE), and
 *     a workspace whose byte count overflows size_t is never allocated.
 */
#include "config.h"
#include "testlib.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fa2_backend backends[] = {FA2_BACKEND_CPU_ORACLE,
                                       FA2_BACKEND_CPU_STANDARD,
                                       FA2_BACKEND_CPU_TILED};
#define N_BACKENDS 3

/* A packed problem of three sequences: q 4, 9, 5 rows; k 3, 16, 7. */
static void packed(tl_problem *p, tl_rng *r)
{
    tl_spec s;
    tl_spec_init(&s);
    s.num_seqs = 3;
    const int64_t lq[3] = {4, 9, 5}, lk[3] = {3, 16, 7};
    memcpy(s.lens_q, lq, sizeof lq);
    memcpy(s.lens_k, lk, sizeof lk);
    s.heads_q = 2;
    s.heads_kv = 1;
    s.head_dim = 8;
    s.block_m = s.block_n = 4;
    tl_problem_init(p, &s, r);
}

/* ---- max_seqlen ------------------------------------------------------------- */

START_TEST(a_max_seqlen_beyond_the_packed_length_is_refused)
{
    const int64_t huge[] = {(int64_t)1 << 32, (int64_t)1 << 62, INT64_MAX,
                            INT64_MAX - 1};
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    packed(&p, &r);
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
        for (int which = 0; which < 2; which++)
            for (int b = 0; b < N_BACKENDS + 1; b++) { /* + CUDA: checked first */
                const fa2_backend be = b < N_BACKENDS ? backends[b] : FA2_BACKEND_CUDA;
                p.args.max_seqlen_q = which == 0 ? huge[h] : 0;
                p.args.max_seqlen_k = which == 1 ? huge[h] : 0;
                if (be == FA2_BACKEND_CUDA) { /* CUDA needs both given */
                    p.args.max_seqlen_q = which == 0 ? huge[h] : 9;
                    p.args.max_seqlen_k = which == 1 ? huge[h] : 16;
                }
                const fa2_status st = be == FA2_BACKEND_CUDA
                                          ? fa2_fwd_check(&p.args, be)
                                          : tl_problem_run(&p, be);
                ck_assert_msg(st == FA2_ERR_SEQLENS, "%s: max_seqlen_%c = %lld "
                              "returned %s (%s), expected FA2_ERR_SEQLENS",
                              fa2_backend_name(be), which ? 'k' : 'q',
                              (long long)huge[h], fa2_status_str(st),
                              fa2_last_error());
                ck_assert(tl_error_mentions(which ? "max_seqlen_k" : "max_seqlen_q"));
            }
    tl_problem_free(&p);
}
END_TEST

START_TEST(a_generous_max_seqlen_changes_no_bit)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    packed(&p, &r);
    for (int b = 0; b < N_BACKENDS; b++) {
        p.args.max_seqlen_q = p.args.max_seqlen_k = 0;
        tl_problem_run_ok(&p, backends[b]);
        uint32_t *o0 = tl_view_bits(&p.o), *l0 = tl_view_bits(&p.lse);
        p.args.max_seqlen_q = p.total_q; /* the most a sequence can have */
        p.args.max_seqlen_k = p.total_k;
        tl_problem_run_ok(&p, backends[b]);
        uint32_t *o1 = tl_view_bits(&p.o), *l1 = tl_view_bits(&p.lse);
        ck_assert(memcmp(o0, o1, sizeof(uint32_t) * (size_t)tl_numel(&p.o)) == 0);
        ck_assert(memcmp(l0, l1, sizeof(uint32_t) * (size_t)tl_numel(&p.lse)) == 0);
        free(o0), free(o1), free(l0), free(l1);
    }
    tl_problem_free(&p);
}
END_TEST

START_TEST(ceil_div_does_not_overflow_near_int64_max)
{
    ck_assert_int_eq(fa2_ceil_div(INT64_MAX, 128), INT64_MAX / 128 + 1);
    ck_assert_int_eq(fa2_ceil_div(INT64_MAX - 127, 128), INT64_MAX / 128); /* 128 (2^56 - 1) */
    ck_assert_int_eq(fa2_ceil_div(INT64_MAX - 126, 128), INT64_MAX / 128 + 1);
    ck_assert_int_eq(fa2_ceil_div(INT64_MAX, 1), INT64_MAX);
    ck_assert_int_eq(fa2_ceil_div(0, 64), 0);
    ck_assert_int_eq(fa2_ceil_div(128, 64), 2);
    ck_assert_int_eq(fa2_ceil_div(129, 64), 3);
}
END_TEST

/* ---- windows ---------------------------------------------------------------- */

/* loop index: 0, 1 -> seqlen_q > seqlen_k or <; 2, 3 -> the same, causal */
START_TEST(a_window_past_the_sequence_is_the_same_as_no_window)
{
    const int64_t wide[] = {INT64_MAX, INT64_MAX - 3, (int64_t)1 << 62, 1000};
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.seqlen_q = _i % 2 ? 13 : 37;
    s.seqlen_k = _i % 2 ? 37 : 13;
    s.causal = _i / 2;
    s.head_dim = 8;
    s.block_m = s.block_n = 8;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    for (int b = 0; b < N_BACKENDS; b++) {
        p.args.window_left = p.args.window_right = -1;
        tl_problem_run_ok(&p, backends[b]);
        uint32_t *o0 = tl_view_bits(&p.o), *l0 = tl_view_bits(&p.lse);
        for (size_t w = 0; w < sizeof wide / sizeof wide[0]; w++)
            for (int side = 0; side < 3; side++) {
                p.args.window_left = side != 1 ? wide[w] : -1;
                p.args.window_right = side != 0 ? wide[w] : -1;
                tl_problem_run_ok(&p, backends[b]);
                uint32_t *o1 = tl_view_bits(&p.o), *l1 = tl_view_bits(&p.lse);
                ck_assert_msg(memcmp(o0, o1, sizeof(uint32_t) * (size_t)tl_numel(&p.o)) == 0 &&
                                  memcmp(l0, l1, sizeof(uint32_t) * (size_t)tl_numel(&p.lse)) == 0,
                              "%s: window (%lld, %lld) differs from no window on %s",
                              fa2_backend_name(backends[b]),
                              (long long)p.args.window_left,
                              (long long)p.args.window_right, p.desc);
                free(o1), free(l1);
            }
        free(o0), free(l0);
    }
    tl_problem_free(&p);
}
END_TEST

START_TEST(mask_make_stores_a_window_past_the_sequence_as_unbounded)
{
    fa2_mask m = fa2_mask_make(20, 10, 0, INT64_MAX, INT64_MAX);
    ck_assert_int_eq(m.window_left, -1);
    ck_assert_int_eq(m.window_right, -1);
    m = fa2_mask_make(20, 10, 1, INT64_MAX, INT64_MAX);
    ck_assert_int_eq(m.window_left, -1);
    ck_assert_int_eq(m.window_right, 0);
    m = fa2_mask_make(20, 10, 0, 9, 19); /* still bites: kept */
    ck_assert_int_eq(m.window_left, 9);
    ck_assert_int_eq(m.window_right, 19);
    int64_t lo, hi; /* the last row of a 20 x 10 problem sees every key */
    m = fa2_mask_make(20, 10, 0, INT64_MAX, 0);
    fa2_visible_cols(&m, 19, 20, &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 10);
}
END_TEST

/* ---- strides and spans ------------------------------------------------------- */

START_TEST(a_stride_of_int64_min_on_an_extent_one_dim_is_harmless)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.seqlen_q = 5;
    s.seqlen_k = 6;
    s.head_dim = 8;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    tl_problem_run_ok(&p, FA2_BACKEND_CPU_TILED);
    uint32_t *o0 = tl_view_bits(&p.o);
    /* batch 1, one head: dims 0 and 2 have extent 1, any stride is fine */
    p.args.q.stride[0] = INT64_MIN;
    p.args.k.stride[2] = INT64_MIN;
    p.args.o.stride[0] = INT64_MIN;
    tl_problem_run_ok(&p, FA2_BACKEND_CPU_TILED);
    uint32_t *o1 = tl_view_bits(&p.o);
    ck_assert(memcmp(o0, o1, sizeof(uint32_t) * (size_t)tl_numel(&p.o)) == 0);
    free(o0), free(o1);
    tl_problem_free(&p);
}
END_TEST

/* A backward problem of batch 4 over random data, contiguous. */
typedef struct bwd_case {
    tl_problem f;
    tl_tensor dout, dq, dk, dv;
    fa2_bwd_args a;
} bwd_case;

static void bwd_case_init(bwd_case *c, tl_rng *r, int64_t batch)
{
    tl_spec s;
    tl_spec_init(&s);
    s.batch = batch;
    s.seqlen_q = 5;
    s.seqlen_k = 6;
    s.heads_q = 2;
    s.heads_kv = 2;
    s.head_dim = 8;
    s.block_m = s.block_n = 4;
    tl_problem_init(&c->f, &s, r);
    tl_problem_run_ok(&c->f, FA2_BACKEND_CPU_ORACLE);
    tl_tensor_alloc(&c->dout, s.dtype, 4, c->f.q.t.shape, TL_CONTIGUOUS);
    tl_tensor_alloc(&c->dq, s.dtype, 4, c->f.q.t.shape, TL_CONTIGUOUS);
    tl_tensor_alloc(&c->dk, s.dtype, 4, c->f.k.t.shape, TL_CONTIGUOUS);
    tl_tensor_alloc(&c->dv, s.dtype, 4, c->f.k.t.shape, TL_CONTIGUOUS);
    tl_tensor_fill_normal(&c->dout, r, 1.0);
    fa2_bwd_args_init(&c->a);
    const fa2_fwd_args *f = &c->f.args;
    c->a.q = f->q, c->a.k = f->k, c->a.v = f->v, c->a.o = f->o, c->a.lse = f->lse;
    c->a.dout = c->dout.t, c->a.dq = c->dq.t, c->a.dk = c->dk.t, c->a.dv = c->dv.t;
    c->a.block_m = c->a.block_n = 4;
}

static void bwd_case_free(bwd_case *c)
{
    tl_problem_free(&c->f);
    tl_tensor_free(&c->dout);
    tl_tensor_free(&c->dq);
    tl_tensor_free(&c->dk);
    tl_tensor_free(&c->dv);
}

START_TEST(the_backward_tensors_get_the_span_check_q_gets)
{
    tl_rng r;
    TL_RNG(&r);
    bwd_case c;
    bwd_case_init(&c, &r, 4);
    ck_assert_int_eq(fa2_bwd_check(&c.a, FA2_BACKEND_CPU_TILED), FA2_OK);
    static const char *const names[4] = {"dout", "dq", "dk", "dv"};
    fa2_tensor *ts[4] = {&c.a.dout, &c.a.dq, &c.a.dk, &c.a.dv};
    for (int t = 0; t < 4; t++) {
        const fa2_tensor keep = *ts[t];
        ts[t]->stride[0] = (int64_t)1 << 62; /* batch 4: 3 * 2^62 elements */
        for (int b = 0; b < N_BACKENDS; b++) {
            const fa2_status st = fa2_bwd(&c.a, backends[b]);
            ck_assert_msg(st == FA2_ERR_SHAPE, "%s.stride[0] = 2^62: %s returned "
                          "%s (%s), expected FA2_ERR_SHAPE", names[t],
                          fa2_backend_name(backends[b]), fa2_status_str(st),
                          fa2_last_error());
            ck_assert(tl_error_mentions(names[t]));
        }
        *ts[t] = keep;
    }
    bwd_case_free(&c);
}
END_TEST

START_TEST(a_span_that_wraps_the_address_space_is_refused)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    tl_spec s;
    tl_spec_init(&s);
    s.seqlen_q = 5;
    s.seqlen_k = 6;
    s.head_dim = 8;
    tl_problem_init(&p, &s, &r);
    /* checked only (fa2_fwd_check reads no tensor memory) */
    p.args.q.data = (void *)(uintptr_t)(UINTPTR_MAX - 64);
    fa2_status st = fa2_fwd_check(&p.args, FA2_BACKEND_CPU_TILED);
    ck_assert_msg(st == FA2_ERR_SHAPE, "returned %s (%s)", fa2_status_str(st),
                  fa2_last_error());
    ck_assert(tl_error_mentions("q.data"));
    tl_problem_free(&p);
}
END_TEST

START_TEST(a_softmax_scale_whose_log2_scaling_overflows_is_refused)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    tl_spec s;
    tl_spec_init(&s);
    tl_problem_init(&p, &s, &r);
    p.args.softmax_scale = 3e38f;
    ck_assert_int_eq(fa2_fwd_check(&p.args, FA2_BACKEND_CPU_TILED),
                     FA2_ERR_INVALID_ARGUMENT);
    ck_assert(tl_error_mentions("softmax_scale"));
    p.args.softmax_scale = 2e38f; /* 2e38 log2(e) = 2.9e38: a float */
    ck_assert_int_eq(fa2_fwd_check(&p.args, FA2_BACKEND_CPU_TILED), FA2_OK);
    tl_problem_free(&p);
}
END_TEST

START_TEST(a_sequence_longer_than_int32_is_refused_and_huge_buffers_are_not_wrapped)
{
    tl_rng r;
    TL_RNG(&r);
    tl_problem p;
    tl_spec s;
    tl_spec_init(&s);
    tl_problem_init(&p, &s, &r);
    fa2_fwd_args a = p.args; /* checked only: no memory is touched */
    a.q = fa2_tensor_4d(p.args.q.data, FA2_DTYPE_FP32, 1, (int64_t)1 << 31, 1, 8);
    a.o = fa2_tensor_4d(p.args.o.data, FA2_DTYPE_FP32, 1, (int64_t)1 << 31, 1, 8);
    a.lse.data = NULL;
    ck_assert_int_eq(fa2_fwd_check(&a, FA2_BACKEND_CPU_STANDARD), FA2_ERR_SHAPE);
    ck_assert(tl_error_mentions("seqlen"));
    /* a score matrix of 2^31 x 2^31 floats is 2^64 bytes: no allocation */
    ck_assert_ptr_null(fa2_alloc_n((int64_t)1 << 62, sizeof(float)));
    ck_assert_ptr_null(fa2_calloc_n(INT64_MAX, sizeof(double)));
    void *one = fa2_alloc_n(0, sizeof(double));
    ck_assert_ptr_nonnull(one);
    free(one);
    tl_problem_free(&p);
}
END_TEST

/* ---- packed layouts ---------------------------------------------------------- */

/* View t of shape [B, N, H, d] into a packed [B, N, 3, H, d] buffer, slot
 * `which` (0 = q / dq, 1 = k / dk, 2 = v / dv). */
static fa2_tensor packed_view(void *base, fa2_dtype dt, int64_t B, int64_t n,
                              int64_t h, int64_t d, int which)
{
    fa2_tensor t = fa2_tensor_4d((char *)base + (size_t)(which * h * d) * fa2_dtype_size(dt),
                                 dt, B, n, h, d);
    t.stride[0] = n * 3 * h * d;
    t.stride[1] = 3 * h * d;
    return t;
}

static void copy_in(fa2_tensor *dst, const tl_tensor *src)
{
    int64_t idx[4];
    for (int64_t f = 0; f < tl_numel(src); f++) {
        tl_unflatten(src, f, idx);
        const float v = (float)tl_get(src, idx);
        ck_assert(dst->dtype == FA2_DTYPE_FP32);
        ((float *)dst->data)[fa2_offset4(dst, idx[0], idx[1], idx[2], idx[3])] = v;
    }
}

static void expect_same(const fa2_tensor *x, const tl_tensor *ref, const char *what)
{
    int64_t idx[4];
    for (int64_t f = 0; f < tl_numel(ref); f++) {
        tl_unflatten(ref, f, idx);
        const float a = ((const float *)x->data)[fa2_offset4(x, idx[0], idx[1], idx[2], idx[3])];
        const float b = (float)tl_get(ref, idx);
        TL_CHECK(memcmp(&a, &b, sizeof a) == 0, "%s[%lld]: packed %g, separate %g",
                 what, (long long)f, a, b);
    }
}

START_TEST(packed_qkv_and_dqkv_are_accepted_and_give_the_same_bits)
{
    tl_rng r;
    TL_RNG(&r);
    bwd_case c; /* B 2, N 6 (packing needs Nq = Nk), H 2, d 8, fp32 */
    tl_spec s;
    tl_spec_init(&s);
    s.batch = 2;
    s.seqlen_q = s.seqlen_k = 6;
    s.heads_q = s.heads_kv = 2;
    s.head_dim = 8;
    s.block_m = s.block_n = 4;
    s.num_threads = 1;
    tl_problem_init(&c.f, &s, &r);
    tl_problem_run_ok(&c.f, FA2_BACKEND_CPU_ORACLE);
    tl_tensor_alloc(&c.dout, s.dtype, 4, c.f.q.t.shape, TL_CONTIGUOUS);
    tl_tensor_alloc(&c.dq, s.dtype, 4, c.f.q.t.shape, TL_CONTIGUOUS);
    tl_tensor_alloc(&c.dk, s.dtype, 4, c.f.k.t.shape, TL_CONTIGUOUS);
    tl_tensor_alloc(&c.dv, s.dtype, 4, c.f.k.t.shape, TL_CONTIGUOUS);
    tl_tensor_fill_normal(&c.dout, &r, 1.0);
    fa2_bwd_args_init(&c.a);
    const fa2_fwd_args *f = &c.f.args;
    c.a.q = f->q, c.a.k = f->k, c.a.v = f->v, c.a.o = f->o, c.a.lse = f->lse;
    c.a.dout = c.dout.t, c.a.dq = c.dq.t, c.a.dk = c.dk.t, c.a.dv = c.dv.t;
    c.a.block_m = c.a.block_n = 4;
    c.a.num_threads = 1;
    c.a.deterministic = 1;

    const int64_t n = 2 * 6 * 3 * 2 * 8;
    float *qkv = calloc((size_t)n, sizeof(float)), *dqkv = calloc((size_t)n, sizeof(float));
    ck_assert(qkv && dqkv);
    for (int b = 0; b < N_BACKENDS; b++) {
        ck_assert_int_eq(fa2_bwd(&c.a, backends[b]), FA2_OK); /* separate */
        fa2_bwd_args pk = c.a;
        pk.q = packed_view(qkv, FA2_DTYPE_FP32, 2, 6, 2, 8, 0);
        pk.k = packed_view(qkv, FA2_DTYPE_FP32, 2, 6, 2, 8, 1);
        pk.v = packed_view(qkv, FA2_DTYPE_FP32, 2, 6, 2, 8, 2);
        copy_in(&pk.q, &c.f.q);
        copy_in(&pk.k, &c.f.k);
        copy_in(&pk.v, &c.f.v);
        pk.dq = packed_view(dqkv, FA2_DTYPE_FP32, 2, 6, 2, 8, 0);
        pk.dk = packed_view(dqkv, FA2_DTYPE_FP32, 2, 6, 2, 8, 1);
        pk.dv = packed_view(dqkv, FA2_DTYPE_FP32, 2, 6, 2, 8, 2);
        const fa2_status st = fa2_bwd(&pk, backends[b]);
        ck_assert_msg(st == FA2_OK, "%s: packed dqkv returned %s (%s)",
                      fa2_backend_name(backends[b]), fa2_status_str(st),
                      fa2_last_error());
        expect_same(&pk.dq, &c.dq, "dq");
        expect_same(&pk.dk, &c.dk, "dk");
        expect_same(&pk.dv, &c.dv, "dv");

        /* the forward reads packed qkv too */
        fa2_fwd_args ff = c.f.args;
        ff.q = pk.q, ff.k = pk.k, ff.v = pk.v;
        ck_assert_int_eq(fa2_fwd(&ff, backends[b]), FA2_OK);

        /* views that do share elements are still refused */
        fa2_bwd_args bad = pk;
        bad.dk = pk.dq;
        ck_assert_int_eq(fa2_bwd_check(&bad, backends[b]), FA2_ERR_OVERLAP);
        bad = pk;
        bad.dk.data = (float *)pk.dq.data + 4; /* half a head into dq's slot */
        ck_assert_int_eq(fa2_bwd_check(&bad, backends[b]), FA2_ERR_OVERLAP);
        bad = pk;
        bad.dv.data = (float *)pk.dv.data - 1; /* one element into dk's slot */
        ck_assert_int_eq(fa2_bwd_check(&bad, backends[b]), FA2_ERR_OVERLAP);
        bad = pk;
        bad.dq = pk.q; /* an output on an input */
        ck_assert_int_eq(fa2_bwd_check(&bad, backends[b]), FA2_ERR_OVERLAP);
    }
    free(qkv);
    free(dqkv);
    bwd_case_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("limits");
    TCase *t = tcase_create("limits");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, a_max_seqlen_beyond_the_packed_length_is_refused);
    tcase_add_test(t, a_generous_max_seqlen_changes_no_bit);
    tcase_add_test(t, ceil_div_does_not_overflow_near_int64_max);
    tcase_add_loop_test(t, a_window_past_the_sequence_is_the_same_as_no_window, 0, 4);
    tcase_add_test(t, mask_make_stores_a_window_past_the_sequence_as_unbounded);
    tcase_add_test(t, a_stride_of_int64_min_on_an_extent_one_dim_is_harmless);
    tcase_add_test(t, the_backward_tensors_get_the_span_check_q_gets);
    tcase_add_test(t, a_span_that_wraps_the_address_space_is_refused);
    tcase_add_test(t, a_softmax_scale_whose_log2_scaling_overflows_is_refused);
    tcase_add_test(t, a_sequence_longer_than_int32_is_refused_and_huge_buffers_are_not_wrapped);
    tcase_add_test(t, packed_qkv_and_dqkv_are_accepted_and_give_the_same_bits);
    suite_add_tcase(s, t);
    return tl_run_suite(s);
}
