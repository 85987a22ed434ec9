/* test_sim.h — what the simulator's suites (tests/test_sim_*.c) share: a
 * fixed grid of problems that covers odd sizes, causal masks with Nq <, =,
 * > Nk, sliding windows, MQA/GQA, variable lengths (with empty sequences),
 * single rows and keys, every dtype; and small helpers. The grid is fixed,
 * so every run checks the same cases (there is no random data to draw). */
#ifndef FA2_TEST_SIM_H
#define FA2_TEST_SIM_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fa2.h"

typedef struct sim_case {
    const char *name;
    int64_t batch, hq, hkv, nq, nk, d;
    int causal;
    int64_t wl, wr;
    fa2_dtype dtype;
    const int32_t *cu_q, *cu_k;
    int64_t num_seqs;
} sim_case;

static const int32_t tsim_cu_q1[] = {0, 100, 100, 133, 390, 391};
static const int32_t tsim_cu_k1[] = {0, 50, 57, 57, 357, 358};
static const int32_t tsim_cu_q2[] = {0, 1, 200, 264};
static const int32_t tsim_cu_k2[] = {0, 64, 65, 330};

static const sim_case tsim_cases[] = {
    {"odd sizes", 2, 3, 3, 77, 131, 40, 0, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"causal square", 1, 4, 4, 200, 200, 64, 1, -1, -1, FA2_DTYPE_BF16, NULL, NULL, 0},
    {"causal Nq > Nk", 1, 2, 2, 150, 100, 64, 1, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"causal Nq < Nk", 2, 2, 2, 100, 150, 32, 1, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"window (13, 7)", 1, 2, 2, 300, 300, 64, 0, 13, 7, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"window (0, -1)", 1, 1, 1, 129, 257, 128, 0, 0, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"window (-1, 2)", 1, 1, 1, 257, 129, 96, 0, -1, 2, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"causal window 5", 1, 2, 1, 50, 400, 64, 1, 5, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"GQA causal", 1, 6, 2, 129, 65, 64, 1, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"MQA", 2, 8, 1, 70, 90, 256, 0, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"varlen causal GQA", 1, 4, 2, 0, 0, 64, 1, -1, -1, FA2_DTYPE_FP16, tsim_cu_q1,
     tsim_cu_k1, 5},
    {"varlen window", 1, 2, 2, 0, 0, 128, 0, 20, 10, FA2_DTYPE_BF16, tsim_cu_q2,
     tsim_cu_k2, 3},
    {"one query row", 3, 2, 2, 1, 97, 64, 0, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"one key", 1, 2, 2, 97, 1, 64, 1, -1, -1, FA2_DTYPE_FP16, NULL, NULL, 0},
    {"fp32", 1, 2, 2, 90, 90, 48, 1, -1, -1, FA2_DTYPE_FP32, NULL, NULL, 0},
};
#define TSIM_NCASES ((int)(sizeof tsim_cases / sizeof tsim_cases[0]))

static inline void tsim_args(fa2_sim_args *a, const sim_case *c, fa2_sim_algo algo,
                             fa2_sim_pass pass)
{
    fa2_sim_args_init(a);
    a->algo = algo;
    a->pass = pass;
    a->dtype = c->dtype;
    a->batch = c->batch;
    a->heads_q = c->hq;
    a->heads_kv = c->hkv;
    a->seqlen_q = c->nq;
    a->seqlen_k = c->nk;
    a->head_dim = c->d;
    a->causal = c->causal;
    a->window_left = c->wl;
    a->window_right = c->wr;
    a->cu_seqlens_q = c->cu_q;
    a->cu_seqlens_k = c->cu_k;
    a->num_seqs = c->num_seqs;
    a->l2 = 0;
}

static inline fa2_sim_device tsim_h100(void)
{
    fa2_sim_device dev;
    ck_assert_int_eq(fa2_sim_device_builtin("h100", &dev), FA2_OK);
    return dev;
}

static inline void tsim_run(const fa2_sim_args *a, const fa2_sim_device *dev,
                            fa2_sim_result *r)
{
    const fa2_status st = fa2_sim_run(a, dev, r);
    ck_assert_msg(st == FA2_OK, "fa2_sim_run: %s: %s", fa2_status_str(st),
                  fa2_last_error());
}

/* Least-squares slope of log(y) against log(x). */
static inline double tsim_slope(const double *x, const double *y, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        const double lx = log(x[i]), ly = log(y[i]);
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

static inline int64_t tsim_global(const fa2_sim_result *r)
{
    return r->total.global_read + r->total.global_written;
}

static inline int tsim_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
