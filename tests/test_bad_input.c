/*
 * test_bad_input.c — every way a forward call can be wrong gets its status
 * code and a sentence that names the offending argument, from every CPU
 * backend and from fa2_fwd_check alike, and touches no memory: outputs keep
 * their poison, inputs their values. Also: status names, the thread-local
 * last error (empty after a success), the CUDA backend where there is no
 * GPU, and fa2_tile_config_for's own checks.
 */
#include "config.h"
#include "testlib.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fa2_backend cpu_backends[] = {FA2_BACKEND_CPU_ORACLE,
                                           FA2_BACKEND_CPU_STANDARD,
                                           FA2_BACKEND_CPU_TILED};

/* A valid fixed-length problem: q [2, 5, 4, 8], k/v [2, 6, 2, 8], fp32. */
static void base_fixed(tl_problem *p, fa2_dtype dt)
{
    tl_rng r;
    tl_rng_init(&r, "base_fixed", 0);
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = dt;
    s.batch = 2;
    s.seqlen_q = 5;
    s.seqlen_k = 6;
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 8;
    tl_problem_init(p, &s, &r);
}

/* A valid packed problem: three sequences (q 4, 0, 5 rows; k 3, 5, 3). */
static void base_varlen(tl_problem *p)
{
    tl_rng r;
    tl_rng_init(&r, "base_varlen", 0);
    tl_spec s;
    tl_spec_init(&s);
    s.num_seqs = 3;
    const int64_t lq[3] = {4, 0, 5}, lk[3] = {3, 5, 3};
    memcpy(s.lens_q, lq, sizeof lq);
    memcpy(s.lens_k, lk, sizeof lk);
    s.heads_q = 4;
    s.heads_kv = 2;
    s.head_dim = 8;
    tl_problem_init(p, &s, &r);
}

/* ---- the catalogue of bad calls -------------------------------------------- */

typedef struct bad_case {
    const char *what;     /* what is wrong                              */
    fa2_status expect;    /* the status it must get                     */
    const char *mentions; /* fa2_last_error() must contain this         */
    int varlen;           /* start from the packed problem              */
} bad_case;

enum {
    ARGS_NULL, Q_DATA_NULL, K_DATA_NULL, V_DATA_NULL, O_DATA_NULL,
    Q_DTYPE_ENUM, O_DTYPE_ENUM, K_DTYPE_MISMATCH, V_DTYPE_MISMATCH, O_DTYPE_MISMATCH,
    LSE_DTYPE, LSE_DTYPE_ENUM,
    Q_BATCH_ZERO, K_SEQLEN_NEGATIVE, V_HEADS_ZERO, O_DIM_ZERO, Q_SEQLEN_ZERO,
    HEAD_DIM_ZERO, HEAD_DIM_12, HEAD_DIM_264, HEAD_DIM_MISMATCH,
    K_BATCH_MISMATCH, V_SEQLEN_MISMATCH, V_HEADS_MISMATCH, O_SEQLEN_MISMATCH,
    O_HEADS_MISMATCH, HEADS_NOT_MULTIPLE,
    Q_LAST_STRIDE, K_STRIDE_ZERO, V_STRIDE_NEGATIVE, O_STRIDE_NEGATIVE,
    O_SELF_OVERLAP, LSE_LAST_STRIDE, LSE_SELF_OVERLAP,
    O_IS_Q, O_OVERLAPS_K, O_OVERLAPS_V, LSE_OVERLAPS_O, LSE_OVERLAPS_V,
    LSE_SHAPE_SEQLEN, LSE_SHAPE_HEADS, LSE_SHAPE_ZERO,
    SCALE_NAN, SCALE_INF, SCALE_NEG_INF, SCALE_NEGATIVE,
    WINDOW_LEFT, WINDOW_RIGHT,
    BLOCK_M_NEGATIVE, BLOCK_M_HUGE, BLOCK_N_HUGE, THREADS_NEGATIVE, THREADS_HUGE,
    BACKEND_ENUM, BACKEND_NEGATIVE,
    CU_Q_NOT_ZERO_FIRST, CU_K_DECREASING, CU_Q_WRONG_END, CU_K_WRONG_END,
    ONLY_CU_Q, ONLY_CU_K, NUM_SEQS_ZERO, NUM_SEQS_NEGATIVE, VARLEN_BATCH_2,
    MAX_SEQLEN_Q_SMALL, MAX_SEQLEN_K_SMALL, MAX_SEQLEN_NEGATIVE,
    N_BAD
};

static const bad_case bad[N_BAD] = {
    [ARGS_NULL] = {"args is NULL", FA2_ERR_NULL_POINTER, "args", 0},
    [Q_DATA_NULL] = {"q.data is NULL", FA2_ERR_NULL_POINTER, "q.data", 0},
    [K_DATA_NULL] = {"k.data is NULL", FA2_ERR_NULL_POINTER, "k.data", 0},
    [V_DATA_NULL] = {"v.data is NULL", FA2_ERR_NULL_POINTER, "v.data", 0},
    [O_DATA_NULL] = {"o.data is NULL", FA2_ERR_NULL_POINTER, "o.data", 0},
    [Q_DTYPE_ENUM] = {"q.dtype is not a dtype", FA2_ERR_DTYPE, "q.dtype", 0},
    [O_DTYPE_ENUM] = {"o.dtype is not a dtype", FA2_ERR_DTYPE, "o.dtype", 0},
    [K_DTYPE_MISMATCH] = {"k is fp16, q fp32", FA2_ERR_DTYPE, "k fp16", 0},
    [V_DTYPE_MISMATCH] = {"v is bf16, q fp32", FA2_ERR_DTYPE, "v bf16", 0},
    [O_DTYPE_MISMATCH] = {"o is fp16, q fp32", FA2_ERR_DTYPE, "o fp16", 0},
    [LSE_DTYPE] = {"lse is fp16", FA2_ERR_DTYPE, "lse.dtype", 0},
    [LSE_DTYPE_ENUM] = {"lse.dtype is not a dtype", FA2_ERR_DTYPE, "lse.dtype", 0},
    [Q_BATCH_ZERO] = {"q batch 0", FA2_ERR_SHAPE, "q.shape[0]", 0},
    [K_SEQLEN_NEGATIVE] = {"k seqlen -1", FA2_ERR_SHAPE, "k.shape[1]", 0},
    [V_HEADS_ZERO] = {"v heads 0", FA2_ERR_SHAPE, "v.shape[2]", 0},
    [O_DIM_ZERO] = {"o head dim 0", FA2_ERR_SHAPE, "o.shape[3]", 0},
    [Q_SEQLEN_ZERO] = {"q seqlen 0 without cu_seqlens", FA2_ERR_SHAPE, "q.shape[1]", 0},
    [HEAD_DIM_ZERO] = {"head dim 0 everywhere", FA2_ERR_SHAPE, "q.shape[3]", 0},
    [HEAD_DIM_12] = {"head dim 12", FA2_ERR_HEAD_DIM, "head_dim", 0},
    [HEAD_DIM_264] = {"head dim 264", FA2_ERR_HEAD_DIM, "head_dim", 0},
    [HEAD_DIM_MISMATCH] = {"k head dim 16, q 8", FA2_ERR_SHAPE, "k.shape[3]", 0},
    [K_BATCH_MISMATCH] = {"k batch 1, q 2", FA2_ERR_SHAPE, "k.shape[0]", 0},
    [V_SEQLEN_MISMATCH] = {"v seqlen 5, k 6", FA2_ERR_SHAPE, "v.shape[1]", 0},
    [V_HEADS_MISMATCH] = {"v heads 1, k 2", FA2_ERR_SHAPE, "v.shape[2]", 0},
    [O_SEQLEN_MISMATCH] = {"o seqlen 4, q 5", FA2_ERR_SHAPE, "o.shape[1]", 0},
    [O_HEADS_MISMATCH] = {"o heads 2, q 4", FA2_ERR_SHAPE, "o.shape[2]", 0},
    [HEADS_NOT_MULTIPLE] = {"heads_q 3, heads_kv 2", FA2_ERR_SHAPE, "heads_q", 0},
    [Q_LAST_STRIDE] = {"q last stride 2", FA2_ERR_STRIDE, "q.stride[3]", 0},
    [K_STRIDE_ZERO] = {"k seqlen stride 0", FA2_ERR_STRIDE, "k.stride[1]", 0},
    [V_STRIDE_NEGATIVE] = {"v batch stride negative", FA2_ERR_STRIDE, "v.stride[0]", 0},
    [O_STRIDE_NEGATIVE] = {"o head stride negative", FA2_ERR_STRIDE, "o.stride[2]", 0},
    [O_SELF_OVERLAP] = {"o rows and heads share memory", FA2_ERR_STRIDE, "o's strides", 0},
    [LSE_LAST_STRIDE] = {"lse last stride 2", FA2_ERR_STRIDE, "lse.stride[2]", 0},
    [LSE_SELF_OVERLAP] = {"lse heads and rows share memory", FA2_ERR_STRIDE, "lse's strides", 0},
    [O_IS_Q] = {"o is q's memory", FA2_ERR_OVERLAP, "o shares memory with q", 0},
    [O_OVERLAPS_K] = {"k inside o", FA2_ERR_OVERLAP, "o shares memory with k", 0},
    [O_OVERLAPS_V] = {"v starts inside o", FA2_ERR_OVERLAP, "o shares memory with v", 0},
    [LSE_OVERLAPS_O] = {"lse inside o", FA2_ERR_OVERLAP, "lse and o", 0},
    [LSE_OVERLAPS_V] = {"lse inside v", FA2_ERR_OVERLAP, "lse shares memory with v", 0},
    [LSE_SHAPE_SEQLEN] = {"lse seqlen 6, q 5", FA2_ERR_SHAPE, "lse.shape", 0},
    [LSE_SHAPE_HEADS] = {"lse heads 2 (heads_kv), q 4", FA2_ERR_SHAPE, "lse.shape", 0},
    [LSE_SHAPE_ZERO] = {"lse batch 0", FA2_ERR_SHAPE, "lse.shape[0]", 0},
    [SCALE_NAN] = {"softmax_scale NaN", FA2_ERR_INVALID_ARGUMENT, "softmax_scale", 0},
    [SCALE_INF] = {"softmax_scale +inf", FA2_ERR_INVALID_ARGUMENT, "softmax_scale", 0},
    [SCALE_NEG_INF] = {"softmax_scale -inf", FA2_ERR_INVALID_ARGUMENT, "softmax_scale", 0},
    [SCALE_NEGATIVE] = {"softmax_scale -0.5", FA2_ERR_INVALID_ARGUMENT, "softmax_scale", 0},
    [WINDOW_LEFT] = {"window_left -2", FA2_ERR_INVALID_ARGUMENT, "window_left", 0},
    [WINDOW_RIGHT] = {"window_right -5", FA2_ERR_INVALID_ARGUMENT, "window_right", 0},
    [BLOCK_M_NEGATIVE] = {"block_m -1", FA2_ERR_INVALID_ARGUMENT, "block_m", 0},
    [BLOCK_M_HUGE] = {"block_m 1025", FA2_ERR_INVALID_ARGUMENT, "block_m", 0},
    [BLOCK_N_HUGE] = {"block_n 100000", FA2_ERR_INVALID_ARGUMENT, "block_n", 0},
    [THREADS_NEGATIVE] = {"num_threads -1", FA2_ERR_INVALID_ARGUMENT, "num_threads", 0},
    [THREADS_HUGE] = {"num_threads 1025", FA2_ERR_INVALID_ARGUMENT, "num_threads", 0},
    [BACKEND_ENUM] = {"backend 9", FA2_ERR_INVALID_ARGUMENT, "backend", 0},
    [BACKEND_NEGATIVE] = {"backend -1", FA2_ERR_INVALID_ARGUMENT, "backend", 0},
    [CU_Q_NOT_ZERO_FIRST] = {"cu_seqlens_q starts at 1", FA2_ERR_SEQLENS, "cu_seqlens_q[0]", 1},
    [CU_K_DECREASING] = {"cu_seqlens_k decreases", FA2_ERR_SEQLENS, "cu_seqlens_k", 1},
    [CU_Q_WRONG_END] = {"cu_seqlens_q ends at 8 of 9", FA2_ERR_SEQLENS, "cu_seqlens_q[3]", 1},
    [CU_K_WRONG_END] = {"cu_seqlens_k ends at 12 of 11", FA2_ERR_SEQLENS, "cu_seqlens_k[3]", 1},
    [ONLY_CU_Q] = {"cu_seqlens_k NULL, cu_seqlens_q set", FA2_ERR_NULL_POINTER, "cu_seqlens_k", 1},
    [ONLY_CU_K] = {"cu_seqlens_q NULL, cu_seqlens_k set", FA2_ERR_NULL_POINTER, "cu_seqlens_q", 1},
    [NUM_SEQS_ZERO] = {"num_seqs 0", FA2_ERR_INVALID_ARGUMENT, "num_seqs", 1},
    [NUM_SEQS_NEGATIVE] = {"num_seqs -3", FA2_ERR_INVALID_ARGUMENT, "num_seqs", 1},
    [VARLEN_BATCH_2] = {"cu_seqlens with batch 2", FA2_ERR_SHAPE, "q.shape[0]", 0},
    [MAX_SEQLEN_Q_SMALL] = {"max_seqlen_q 3 < 5", FA2_ERR_SEQLENS, "max_seqlen_q", 1},
    [MAX_SEQLEN_K_SMALL] = {"max_seqlen_k 4 < 5", FA2_ERR_SEQLENS, "max_seqlen_k", 1},
    [MAX_SEQLEN_NEGATIVE] = {"max_seqlen_k -1", FA2_ERR_INVALID_ARGUMENT, "max_seqlen_k", 1},
};

/* Make the valid args of p wrong in way `which`; *backend may change too. */
static void make_bad(int which, tl_problem *p, fa2_fwd_args *a, fa2_backend *backend,
                     int32_t *cu_q, int32_t *cu_k)
{
    const size_t fsz = sizeof(float);
    switch (which) {
    case ARGS_NULL: break; /* the caller passes NULL */
    case Q_DATA_NULL: a->q.data = NULL; break;
    case K_DATA_NULL: a->k.data = NULL; break;
    case V_DATA_NULL: a->v.data = NULL; break;
    case O_DATA_NULL: a->o.data = NULL; break;
    case Q_DTYPE_ENUM: a->q.dtype = (fa2_dtype)7; break;
    case O_DTYPE_ENUM: a->o.dtype = (fa2_dtype)-1; break;
    case K_DTYPE_MISMATCH: a->k.dtype = FA2_DTYPE_FP16; break;
    case V_DTYPE_MISMATCH: a->v.dtype = FA2_DTYPE_BF16; break;
    case O_DTYPE_MISMATCH: a->o.dtype = FA2_DTYPE_FP16; break;
    case LSE_DTYPE: a->lse.dtype = FA2_DTYPE_FP16; break;
    case LSE_DTYPE_ENUM: a->lse.dtype = (fa2_dtype)3; break;
    case Q_BATCH_ZERO: a->q.shape[0] = 0; break;
    case K_SEQLEN_NEGATIVE: a->k.shape[1] = -1; break;
    case V_HEADS_ZERO: a->v.shape[2] = 0; break;
    case O_DIM_ZERO: a->o.shape[3] = 0; break;
    case Q_SEQLEN_ZERO: a->q.shape[1] = a->o.shape[1] = a->lse.shape[2] = 0; break;
    case HEAD_DIM_ZERO: a->q.shape[3] = a->k.shape[3] = a->v.shape[3] = a->o.shape[3] = 0; break;
    case HEAD_DIM_12: a->q.shape[3] = a->k.shape[3] = a->v.shape[3] = a->o.shape[3] = 12; break;
    case HEAD_DIM_264: a->q.shape[3] = a->k.shape[3] = a->v.shape[3] = a->o.shape[3] = 264; break;
    case HEAD_DIM_MISMATCH: a->k.shape[3] = 16; break;
    case K_BATCH_MISMATCH: a->k.shape[0] = 1; break;
    case V_SEQLEN_MISMATCH: a->v.shape[1] = 5; break;
    case V_HEADS_MISMATCH: a->v.shape[2] = 1; break;
    case O_SEQLEN_MISMATCH: a->o.shape[1] = 4; break;
    case O_HEADS_MISMATCH: a->o.shape[2] = 2; break;
    case HEADS_NOT_MULTIPLE: a->q.shape[2] = a->o.shape[2] = a->lse.shape[1] = 3; break;
    case Q_LAST_STRIDE: a->q.stride[3] = 2; break;
    case K_STRIDE_ZERO: a->k.stride[1] = 0; break;
    case V_STRIDE_NEGATIVE: a->v.stride[0] = -a->v.stride[0]; break;
    case O_STRIDE_NEGATIVE: a->o.stride[2] = -a->o.stride[2]; break;
    case O_SELF_OVERLAP: a->o.stride[1] = a->o.stride[2]; break;
    case LSE_LAST_STRIDE: a->lse.stride[2] = 2; break;
    case LSE_SELF_OVERLAP: a->lse.stride[1] = 1; break;
    case O_IS_Q: a->o.data = a->q.data; break;
    case O_OVERLAPS_K: /* k lies inside o's memory */
        a->k.data = (char *)p->o.base + 16 * fsz;
        break;
    case O_OVERLAPS_V: /* v starts on o's last element */
        a->v.data = (char *)p->o.base + (size_t)(p->o.n_alloc - 6) * fsz;
        break;
    case LSE_OVERLAPS_O: a->lse.data = (char *)p->o.base + 8 * fsz; break;
    case LSE_OVERLAPS_V: a->lse.data = p->v.base; break;
    case LSE_SHAPE_SEQLEN: a->lse.shape[2] = 6; break;
    case LSE_SHAPE_HEADS: a->lse.shape[1] = 2; break;
    case LSE_SHAPE_ZERO: a->lse.shape[0] = 0; break;
    case SCALE_NAN: a->softmax_scale = NAN; break;
    case SCALE_INF: a->softmax_scale = INFINITY; break;
    case SCALE_NEG_INF: a->softmax_scale = -INFINITY; break;
    case SCALE_NEGATIVE: a->softmax_scale = -0.5f; break;
    case WINDOW_LEFT: a->window_left = -2; break;
    case WINDOW_RIGHT: a->window_right = -5; break;
    case BLOCK_M_NEGATIVE: a->block_m = -1; break;
    case BLOCK_M_HUGE: a->block_m = 1025; break;
    case BLOCK_N_HUGE: a->block_n = 100000; break;
    case THREADS_NEGATIVE: a->num_threads = -1; break;
    case THREADS_HUGE: a->num_threads = 1025; break;
    case BACKEND_ENUM: *backend = (fa2_backend)9; break;
    case BACKEND_NEGATIVE: *backend = (fa2_backend)-1; break;
    case CU_Q_NOT_ZERO_FIRST: cu_q[0] = 1; break;
    case CU_K_DECREASING: cu_k[1] = 7; cu_k[2] = 6; break;
    case CU_Q_WRONG_END: cu_q[3] = 8; break;
    case CU_K_WRONG_END: cu_k[3] = 12; break;
    case ONLY_CU_Q: a->cu_seqlens_k = NULL; break;
    case ONLY_CU_K: a->cu_seqlens_q = NULL; break;
    case NUM_SEQS_ZERO: a->num_seqs = 0; break;
    case NUM_SEQS_NEGATIVE: a->num_seqs = -3; break;
    case VARLEN_BATCH_2: /* the fixed problem (batch 2) given cu_seqlens */
        cu_q[0] = cu_k[0] = 0;
        cu_q[1] = 5;
        cu_k[1] = 6;
        a->cu_seqlens_q = cu_q;
        a->cu_seqlens_k = cu_k;
        a->num_seqs = 1;
        break;
    case MAX_SEQLEN_Q_SMALL: a->max_seqlen_q = 3; break;
    case MAX_SEQLEN_K_SMALL: a->max_seqlen_k = 4; break;
    case MAX_SEQLEN_NEGATIVE: a->max_seqlen_k = -1; break;
    }
}

/* The base call is valid (else every rejection below would prove nothing). */
START_TEST(the_base_problems_are_accepted_by_every_cpu_backend)
{
    for (int v = 0; v < 2; v++)
        for (int b = 0; b < 3; b++) {
            tl_problem p;
            if (v)
                base_varlen(&p);
            else
                base_fixed(&p, FA2_DTYPE_FP32);
            ck_assert_int_eq(fa2_fwd_check(&p.args, cpu_backends[b]), FA2_OK);
            const fa2_status st = tl_problem_run(&p, cpu_backends[b]);
            ck_assert_msg(st == FA2_OK, "%s: %s (%s)", fa2_backend_name(cpu_backends[b]),
                          fa2_status_str(st), fa2_last_error());
            tl_err e;
            tl_measure(&p, &e);
            tl_check_written(&p, &e, fa2_backend_name(cpu_backends[b]));
            tl_problem_free(&p);
        }
}
END_TEST

START_TEST(bad_argument_gets_its_status_names_the_argument_and_touches_nothing)
{
    const bad_case *c = &bad[_i];
    ck_assert_msg(c->what != NULL, "catalogue entry %d is empty", _i);
    for (int b = 0; b < 3; b++) {
        tl_problem p;
        if (c->varlen)
            base_varlen(&p);
        else
            base_fixed(&p, FA2_DTYPE_FP32);
        int32_t cu_q[4], cu_k[4];
        memcpy(cu_q, p.cu_q, sizeof cu_q);
        memcpy(cu_k, p.cu_k, sizeof cu_k);
        fa2_fwd_args a = p.args;
        if (c->varlen) {
            a.cu_seqlens_q = cu_q;
            a.cu_seqlens_k = cu_k;
        }
        fa2_backend backend = cpu_backends[b];
        make_bad(_i, &p, &a, &backend, cu_q, cu_k);
        const fa2_fwd_args *ap = _i == ARGS_NULL ? NULL : &a;

        void *snap[5];
        tl_tensor *all[5] = {&p.q, &p.k, &p.v, &p.o, &p.lse};
        for (int t = 0; t < 5; t++)
            snap[t] = tl_alloc_snapshot(all[t]);

        fa2_status st = fa2_fwd_check(ap, backend);
        ck_assert_msg(st == c->expect, "%s: fa2_fwd_check(%s) returned %s, expected "
                      "%s (%s)", c->what, fa2_backend_name(backend), fa2_status_str(st),
                      fa2_status_str(c->expect), fa2_last_error());
        ck_assert_msg(tl_error_mentions(c->mentions), "%s: fa2_fwd_check's message "
                      "\"%s\" does not mention \"%s\"", c->what, fa2_last_error(),
                      c->mentions);
        st = fa2_fwd(ap, backend);
        ck_assert_msg(st == c->expect, "%s: fa2_fwd(%s) returned %s, expected %s (%s)",
                      c->what, fa2_backend_name(backend), fa2_status_str(st),
                      fa2_status_str(c->expect), fa2_last_error());
        ck_assert_msg(tl_error_mentions(c->mentions), "%s: fa2_fwd's message \"%s\" "
                      "does not mention \"%s\"", c->what, fa2_last_error(), c->mentions);
        static const char *const names[5] = {"q", "k", "v", "o", "lse"};
        for (int t = 0; t < 5; t++) {
            ck_assert_msg(tl_alloc_unchanged(all[t], snap[t]), "%s: fa2_fwd(%s) "
                          "failed but changed %s's memory", c->what,
                          fa2_backend_name(backend), names[t]);
            free(snap[t]);
        }
        tl_problem_free(&p);
    }
}
END_TEST

/* ---- status names and the last error ---------------------------------------- */

START_TEST(every_status_has_a_distinct_name)
{
    for (int s = 0; s < FA2_STATUS_COUNT; s++) {
        const char *n = fa2_status_str((fa2_status)s);
        ck_assert_msg(n != NULL && strncmp(n, "FA2_", 4) == 0, "status %d: %s", s,
                      n ? n : "(null)");
        ck_assert_msg(strcmp(n, "FA2_ERR_UNKNOWN") != 0, "status %d has no name", s);
        for (int t = 0; t < s; t++)
            ck_assert_msg(strcmp(n, fa2_status_str((fa2_status)t)) != 0,
                          "statuses %d and %d are both %s", t, s, n);
    }
    ck_assert_str_eq(fa2_status_str(FA2_OK), "FA2_OK");
    ck_assert_str_eq(fa2_status_str(FA2_ERR_SHAPE), "FA2_ERR_SHAPE");
    ck_assert_str_eq(fa2_status_str(FA2_ERR_INTERNAL), "FA2_ERR_INTERNAL");
    ck_assert_str_eq(fa2_status_str((fa2_status)FA2_STATUS_COUNT), "FA2_ERR_UNKNOWN");
    ck_assert_str_eq(fa2_status_str((fa2_status)-1), "FA2_ERR_UNKNOWN");
    ck_assert_str_eq(fa2_status_str((fa2_status)1000), "FA2_ERR_UNKNOWN");
}
END_TEST

START_TEST(last_error_is_empty_after_a_success)
{
    tl_problem p;
    base_fixed(&p, FA2_DTYPE_FP32);
    fa2_fwd_args a = p.args;
    fa2_tile_config cfg;
    for (int step = 0; step < 4; step++) {
        a.softmax_scale = NAN; /* fail first ... */
        ck_assert_int_ne(fa2_fwd(&a, FA2_BACKEND_CPU_TILED), FA2_OK);
        ck_assert_msg(fa2_last_error()[0] != '\0', "a failure left no message");
        a.softmax_scale = 0.0f; /* ... then succeed */
        fa2_status st = FA2_OK;
        switch (step) {
        case 0: st = fa2_fwd(&a, FA2_BACKEND_CPU_TILED); break;
        case 1: st = fa2_fwd_check(&a, FA2_BACKEND_CPU_STANDARD); break;
        case 2: st = fa2_tile_config_for(FA2_BACKEND_CPU_TILED, FA2_PASS_FWD,
                                         FA2_DTYPE_FP16, 64, &cfg); break;
        default: st = fa2_backend_available(FA2_BACKEND_CPU_ORACLE); break;
        }
        ck_assert_int_eq(st, FA2_OK);
        ck_assert_msg(fa2_last_error()[0] == '\0', "after success %d the last error is "
                      "still \"%s\"", step, fa2_last_error());
    }
    tl_problem_free(&p);
}
END_TEST

static void *fail_in_thread(void *arg)
{
    fa2_fwd_args *a = arg;
    a->window_left = -9;
    (void)fa2_fwd_check(a, FA2_BACKEND_CPU_ORACLE);
    return (void *)(tl_error_mentions("window_left") ? (intptr_t)1 : (intptr_t)0);
}

START_TEST(last_error_is_per_thread)
{
    tl_problem p;
    base_fixed(&p, FA2_DTYPE_FP32);
    fa2_fwd_args a = p.args, b = p.args;
    b.num_threads = -4;
    ck_assert_int_eq(fa2_fwd_check(&b, FA2_BACKEND_CPU_ORACLE), FA2_ERR_INVALID_ARGUMENT);
    ck_assert(tl_error_mentions("num_threads"));
    pthread_t t;
    void *ret;
    ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, &a), 0);
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_msg(ret == (void *)(intptr_t)1, "the other thread did not see its own "
                  "message");
    ck_assert_msg(tl_error_mentions("num_threads") && !tl_error_mentions("window_left"),
                  "this thread's message changed to \"%s\"", fa2_last_error());
    tl_problem_free(&p);
}
END_TEST

/* ---- the CUDA backend where it cannot run ------------------------------------- */

START_TEST(cuda_backend_without_a_gpu_says_not_built_or_no_device)
{
    const fa2_status av = fa2_backend_available(FA2_BACKEND_CUDA);
    if (av == FA2_OK)
        return; /* a GPU is here: tests/gpu/ covers the backend */
    ck_assert_msg(av == FA2_ERR_NOT_BUILT || av == FA2_ERR_NO_DEVICE,
                  "fa2_backend_available(cuda) = %s (%s)", fa2_status_str(av),
                  fa2_last_error());
    ck_assert_msg(fa2_last_error()[0] != '\0', "no message for %s", fa2_status_str(av));
    /* a valid fp16 problem: the backend, not the arguments, is the problem */
    tl_problem p;
    base_fixed(&p, FA2_DTYPE_FP16);
    p.args.max_seqlen_q = 5;
    p.args.max_seqlen_k = 6;
    void *snap = tl_alloc_snapshot(&p.o);
    const fa2_status st = fa2_fwd(&p.args, FA2_BACKEND_CUDA);
    ck_assert_msg(st == FA2_ERR_NOT_BUILT || st == FA2_ERR_NO_DEVICE,
                  "fa2_fwd(cuda) without a GPU = %s (%s)", fa2_status_str(st),
                  fa2_last_error());
    ck_assert(fa2_last_error()[0] != '\0');
    ck_assert_msg(tl_alloc_unchanged(&p.o, snap), "fa2_fwd(cuda) failed but wrote o");
    free(snap);
    fa2_tile_config cfg;
    const fa2_status tc = fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_FWD,
                                              FA2_DTYPE_FP16, 64, &cfg);
    ck_assert_msg(tc == FA2_OK || tc == FA2_ERR_NOT_BUILT || tc == FA2_ERR_NO_DEVICE,
                  "fa2_tile_config_for(cuda) = %s (%s)", fa2_status_str(tc),
                  fa2_last_error());
    /* the problem's tiling: the same answer, or the same refusal */
    fa2_tile_config pc;
    const fa2_status tp = fa2_fwd_tile_config(&p.args, FA2_BACKEND_CUDA, &pc);
    ck_assert_msg(tp == FA2_OK || tp == FA2_ERR_NOT_BUILT || tp == FA2_ERR_NO_DEVICE,
                  "fa2_fwd_tile_config(cuda) = %s (%s)", fa2_status_str(tp),
                  fa2_last_error());
    ck_assert(tp != FA2_OK || fa2_last_error()[0] == '\0');
    tl_problem_free(&p);
}
END_TEST

START_TEST(backend_available_rejects_an_unknown_backend_and_accepts_the_cpu_ones)
{
    for (int b = 0; b < 3; b++)
        ck_assert_int_eq(fa2_backend_available(cpu_backends[b]), FA2_OK);
    ck_assert_int_eq(fa2_backend_available((fa2_backend)9), FA2_ERR_INVALID_ARGUMENT);
    ck_assert(tl_error_mentions("backend"));
    ck_assert_int_eq(fa2_backend_available((fa2_backend)-1), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(fa2_backend_name(FA2_BACKEND_CPU_ORACLE), "oracle");
    ck_assert_str_eq(fa2_backend_name(FA2_BACKEND_CPU_STANDARD), "standard");
    ck_assert_str_eq(fa2_backend_name(FA2_BACKEND_CPU_TILED), "tiled");
    ck_assert_str_eq(fa2_backend_name(FA2_BACKEND_CUDA), "cuda");
    ck_assert_str_eq(fa2_backend_name((fa2_backend)9), "?");
}
END_TEST

/* ---- fa2_tile_config_for --------------------------------------------------- */

START_TEST(tile_config_for_rejects_bad_arguments_by_name)
{
    fa2_tile_config cfg;
    struct {
        fa2_backend b;
        int pass;
        int dtype;
        int d;
        int null_out;
        fa2_status expect;
        const char *mentions;
    } bad_cfg[] = {
        {FA2_BACKEND_CPU_TILED, FA2_PASS_FWD, FA2_DTYPE_FP16, 64, 1, FA2_ERR_NULL_POINTER, "out"},
        {FA2_BACKEND_CPU_TILED, 5, FA2_DTYPE_FP16, 64, 0, FA2_ERR_INVALID_ARGUMENT, "pass"},
        {FA2_BACKEND_CPU_TILED, -1, FA2_DTYPE_FP16, 64, 0, FA2_ERR_INVALID_ARGUMENT, "pass"},
        {FA2_BACKEND_CPU_TILED, FA2_PASS_FWD, 9, 64, 0, FA2_ERR_DTYPE, "dtype"},
        {FA2_BACKEND_CPU_TILED, FA2_PASS_FWD, FA2_DTYPE_FP32, 0, 0, FA2_ERR_HEAD_DIM, "head_dim"},
        {FA2_BACKEND_CPU_TILED, FA2_PASS_BWD, FA2_DTYPE_FP32, 12, 0, FA2_ERR_HEAD_DIM, "head_dim"},
        {FA2_BACKEND_CPU_TILED, FA2_PASS_FWD, FA2_DTYPE_BF16, 264, 0, FA2_ERR_HEAD_DIM, "head_dim"},
        {FA2_BACKEND_CPU_TILED, FA2_PASS_FWD, FA2_DTYPE_BF16, -8, 0, FA2_ERR_HEAD_DIM, "head_dim"},
        {(fa2_backend)9, FA2_PASS_FWD, FA2_DTYPE_FP16, 64, 0, FA2_ERR_INVALID_ARGUMENT, "backend"},
    };
    for (size_t i = 0; i < sizeof bad_cfg / sizeof bad_cfg[0]; i++) {
        const fa2_status st = fa2_tile_config_for(bad_cfg[i].b, (fa2_pass)bad_cfg[i].pass,
                                                  (fa2_dtype)bad_cfg[i].dtype, bad_cfg[i].d,
                                                  bad_cfg[i].null_out ? NULL : &cfg);
        ck_assert_msg(st == bad_cfg[i].expect, "case %zu: %s, expected %s (%s)", i,
                      fa2_status_str(st), fa2_status_str(bad_cfg[i].expect),
                      fa2_last_error());
        ck_assert_msg(tl_error_mentions(bad_cfg[i].mentions), "case %zu: \"%s\" does "
                      "not mention %s", i, fa2_last_error(), bad_cfg[i].mentions);
    }
}
END_TEST

/* fa2_fwd_tile_config checks the arguments as fa2_fwd_check does (a bad
 * call gets the same status), rejects a NULL out, and on a backend whose
 * tiling depends on the head dim alone reports fa2_tile_config_for's. */
START_TEST(fwd_tile_config_checks_its_arguments_and_matches_the_head_dim_query)
{
    tl_problem p;
    base_fixed(&p, FA2_DTYPE_FP32);
    fa2_tile_config cfg, ref;
    ck_assert_int_eq(fa2_fwd_tile_config(&p.args, FA2_BACKEND_CPU_TILED, NULL),
                     FA2_ERR_NULL_POINTER);
    ck_assert(tl_error_mentions("out"));
    ck_assert_int_eq(fa2_fwd_tile_config(NULL, FA2_BACKEND_CPU_TILED, &cfg),
                     FA2_ERR_NULL_POINTER);
    ck_assert(tl_error_mentions("args"));
    ck_assert_int_eq(fa2_fwd_tile_config(&p.args, (fa2_backend)9, &cfg),
                     FA2_ERR_INVALID_ARGUMENT);
    for (size_t b = 0; b < 3; b++) {
        ck_assert_int_eq(fa2_fwd_tile_config(&p.args, cpu_backends[b], &cfg), FA2_OK);
        ck_assert_int_eq(fa2_tile_config_for(cpu_backends[b], FA2_PASS_FWD, FA2_DTYPE_FP32,
                                             8, &ref), FA2_OK);
        ck_assert_int_eq(cfg.block_m, ref.block_m);
        ck_assert_int_eq(cfg.block_n, ref.block_n);
        ck_assert_int_eq(cfg.warps, ref.warps);
        ck_assert_int_eq(cfg.head_dim, ref.head_dim);
    }
    /* a bad call: the status fa2_fwd_check gives it */
    p.args.q.data = NULL;
    const fa2_status want = fa2_fwd_check(&p.args, FA2_BACKEND_CPU_TILED);
    ck_assert_int_ne(want, FA2_OK);
    ck_assert_int_eq(fa2_fwd_tile_config(&p.args, FA2_BACKEND_CPU_TILED, &cfg), want);
    tl_problem_free(&p);
}
END_TEST

START_TEST(tile_config_for_the_cpu_backends_is_usable)
{
    fa2_tile_config cfg;
    for (int d = 8; d <= 256; d += 8) {
        memset(&cfg, 0xff, sizeof cfg);
        ck_assert_int_eq(fa2_tile_config_for(FA2_BACKEND_CPU_TILED, FA2_PASS_FWD,
                                             FA2_DTYPE_FP16, d, &cfg), FA2_OK);
        ck_assert_msg(cfg.block_m >= 1 && cfg.block_m <= 1024 && cfg.block_n >= 1 &&
                      cfg.block_n <= 1024, "tiled d=%d: %dx%d", d, cfg.block_m,
                      cfg.block_n);
        ck_assert_int_eq(cfg.head_dim, d);
        for (int b = 0; b < 2; b++) { /* untiled */
            ck_assert_int_eq(fa2_tile_config_for(cpu_backends[b], FA2_PASS_BWD,
                                                 FA2_DTYPE_FP32, d, &cfg), FA2_OK);
            ck_assert_int_eq(cfg.block_m, 0);
            ck_assert_int_eq(cfg.block_n, 0);
        }
    }
}
END_TEST

START_TEST(version_matches_the_header)
{
    int ma = -1, mi = -1, pa = -1;
    fa2_version(&ma, &mi, &pa);
    ck_assert_int_eq(ma, FA2_VERSION_MAJOR);
    ck_assert_int_eq(mi, FA2_VERSION_MINOR);
    ck_assert_int_eq(pa, FA2_VERSION_PATCH);
    fa2_version(NULL, NULL, NULL); /* allowed */
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", ma, mi, pa);
    ck_assert_str_eq(fa2_version_string(), buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bad_input");
    TCase *tf = tcase_create("fwd");
    tcase_set_timeout(tf, 60);
    tcase_add_test(tf, the_base_problems_are_accepted_by_every_cpu_backend);
    tcase_add_loop_test(tf, bad_argument_gets_its_status_names_the_argument_and_touches_nothing,
                        0, N_BAD);
    suite_add_tcase(s, tf);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, every_status_has_a_distinct_name);
    tcase_add_test(te, last_error_is_empty_after_a_success);
    tcase_add_test(te, last_error_is_per_thread);
    tcase_add_test(te, cuda_backend_without_a_gpu_says_not_built_or_no_device);
    tcase_add_test(te, backend_available_rejects_an_unknown_backend_and_accepts_the_cpu_ones);
    tcase_add_test(te, tile_config_for_rejects_bad_arguments_by_name);
    tcase_add_test(te, tile_config_for_the_cpu_backends_is_usable);
    tcase_add_test(te, fwd_tile_config_checks_its_arguments_and_matches_the_head_dim_query);
    tcase_add_test(te, version_matches_the_header);
    suite_add_tcase(s, te);
    return tl_run_suite(s);
}
