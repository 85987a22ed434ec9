/* problem.c — random attention problems for the fa2 tool (see problem.h).
 * Inputs are drawn from a standard normal distribution (Box-Muller over a
 * seeded splitmix64 stream) and rounded to the dtype, so the scores
 * q.k / sqrt(d) have unit variance: attention is neither uniform nor
 * one-hot, and no input is all zeros. The same seed gives the same problem
 * on every host. */
#include "config.h"
#include "problem.h"
#include "fa2_internal.h" /* fa2_fwd_as_bwd_args */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------------ */

typedef struct rng {
    uint64_t state;
    int have_spare;
    double spare;
} rng;

static uint64_t rng_u64(rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so log() below is finite. */
static double rng_unit(rng *r)
{
    return ((double)(rng_u64(r) >> 11) + 1.0) * 0x1.0p-53;
}

/* Uniform integer in [0, n]. */
static int64_t rng_upto(rng *r, int64_t n)
{
    return (int64_t)(rng_u64(r) % (uint64_t)(n + 1));
}

static double rng_normal(rng *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    const double radius = sqrt(-2.0 * log(rng_unit(r)));
    const double angle = 6.283185307179586 * rng_unit(r);
    r->spare = radius * sin(angle);
    r->have_spare = 1;
    return radius * cos(angle);
}

/* A different stream per tensor, so q does not depend on k's size. */
static rng rng_make(uint64_t seed, uint64_t stream)
{
    rng r = {seed ^ (stream * 0xd1b54a32d192ed03ull), 0, 0.0};
    (void)rng_u64(&r);
    return r;
}

static void fill_normal(void *buf, fa2_dtype t, size_t n, rng *r)
{
    for (size_t i = 0; i < n; i++) {
        const float x = (float)rng_normal(r);
        switch (t) {
        case FA2_DTYPE_FP32: ((float *)buf)[i] = x; break;
        case FA2_DTYPE_FP16: ((uint16_t *)buf)[i] = fa2_float_to_fp16(x); break;
        case FA2_DTYPE_BF16: ((uint16_t *)buf)[i] = fa2_float_to_bf16(x); break;
        }
    }
}

/* The same, but an element that rounds to zero is drawn again: a
 * gradient dO with zeros would leave parts of the backward untested. */
static void fill_normal_nonzero(void *buf, fa2_dtype t, size_t n, rng *r)
{
    for (size_t i = 0; i < n; i++) {
        float x;
        do
            x = fa2_round_to_dtype((float)rng_normal(r), t);
        while (x == 0.0f);
        switch (t) {
        case FA2_DTYPE_FP32: ((float *)buf)[i] = x; break;
        case FA2_DTYPE_FP16: ((uint16_t *)buf)[i] = fa2_float_to_fp16(x); break;
        case FA2_DTYPE_BF16: ((uint16_t *)buf)[i] = fa2_float_to_bf16(x); break;
        }
    }
}

/* ---- sizes ------------------------------------------------------------------- */

/* a * b, or -1 if it exceeds limit. */
static int64_t mul_limit(int64_t a, int64_t b, int64_t limit)
{
    if (a < 0 || b < 0 || (b != 0 && a > limit / b))
        return -1;
    return a * b;
}

static int64_t tensor_bytes(int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                            size_t elem)
{
    const int64_t limit = (int64_t)1 << 50; /* 1 PiB: not a real request */
    int64_t n = mul_limit(d0, d1, limit);
    n = n < 0 ? n : mul_limit(n, d2, limit);
    n = n < 0 ? n : mul_limit(n, d3, limit);
    n = n < 0 ? n : mul_limit(n, (int64_t)elem, limit);
    return n;
}

int problem_spec_check(const problem_spec *s, char *why, size_t why_len)
{
    const int64_t total_q = mul_limit(s->batch, s->seqlen_q, INT32_MAX);
    const int64_t total_k = mul_limit(s->batch, s->seqlen_k, INT32_MAX);
    if (s->varlen && (total_q < 0 || total_k < 0)) {
        snprintf(why, why_len, "with --varlen, batch * seqlen must fit in the "
                 "int32 cu_seqlens (at most %d tokens)", INT32_MAX);
        return -1;
    }
    const size_t es = fa2_dtype_size(s->dtype);
    if (tensor_bytes(s->batch, s->seqlen_q, s->heads_q, s->head_dim, es) < 0 ||
        tensor_bytes(s->batch, s->seqlen_k, s->heads_kv, s->head_dim, es) < 0 ||
        tensor_bytes(s->batch, s->heads_q, s->seqlen_q, 1, sizeof(float)) < 0) {
        snprintf(why, why_len, "the tensors of this problem would exceed 1 PiB");
        return -1;
    }
    return 0;
}

/* ---- variable lengths ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* n lengths summing to total (total >= n): with n >= 4 one sequence is
 * empty and one has a single token (the edge cases kernels get wrong), at
 * seeded positions; the others split the rest at random cut points. */
static int random_lengths(rng *r, int64_t n, int64_t total, int64_t *len)
{
    int64_t empty = -1, single = -1, rest = total, free_seqs = n;
    if (n >= 4) {
        empty = rng_upto(r, n - 1);
        single = rng_upto(r, n - 2);
        if (single >= empty)
            single++;
        rest = total - 1;
        free_seqs = n - 2;
    }
    int64_t *cuts = malloc(sizeof(int64_t) * (size_t)(free_seqs + 1));
    if (!cuts)
        return -1;
    for (int64_t i = 0; i + 1 < free_seqs; i++)
        cuts[i] = rng_upto(r, rest);
    qsort(cuts, (size_t)(free_seqs - 1), sizeof *cuts, cmp_i64);
    cuts[free_seqs - 1] = rest;
    int64_t prev = 0, c = 0;
    for (int64_t b = 0; b < n; b++) {
        if (b == empty) {
            len[b] = 0;
        } else if (b == single) {
            len[b] = 1;
        } else {
            len[b] = cuts[c] - prev;
            prev = cuts[c++];
        }
    }
    free(cuts);
    return 0;
}

/* cu_seqlens_q from random lengths; the keys of sequence b are the same
 * share of the keys as its queries are of the queries, so equal seqlen_q
 * and seqlen_k give equal lengths (self-attention), and an empty query
 * sequence has no keys either. */
static int make_cu_seqlens(problem *p, rng *r)
{
    const int64_t n = p->spec.batch;
    int64_t *len = malloc(sizeof(int64_t) * (size_t)n);
    p->cu_seqlens_q = malloc(sizeof(int32_t) * (size_t)(n + 1));
    p->cu_seqlens_k = malloc(sizeof(int32_t) * (size_t)(n + 1));
    if (!len || !p->cu_seqlens_q || !p->cu_seqlens_k ||
        random_lengths(r, n, p->rows_q, len) != 0) {
        free(len);
        return -1;
    }
    p->cu_seqlens_q[0] = 0;
    for (int64_t b = 0; b < n; b++)
        p->cu_seqlens_q[b + 1] = (int32_t)(p->cu_seqlens_q[b] + len[b]);
    for (int64_t b = 0; b <= n; b++)
        p->cu_seqlens_k[b] = (int32_t)((int64_t)p->cu_seqlens_q[b] *
                                       p->spec.seqlen_k / p->spec.seqlen_q);
    p->max_seqlen_q = p->max_seqlen_k = 0;
    for (int64_t b = 0; b < n; b++) {
        const int64_t lq = p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b];
        const int64_t lk = p->cu_seqlens_k[b + 1] - p->cu_seqlens_k[b];
        p->max_seqlen_q = lq > p->max_seqlen_q ? lq : p->max_seqlen_q;
        p->max_seqlen_k = lk > p->max_seqlen_k ? lk : p->max_seqlen_k;
    }
    free(len);
    return 0;
}

/* ---- the problem ------------------------------------------------------------------ */

int problem_create(problem *p, const problem_spec *s)
{
    memset(p, 0, sizeof *p);
    p->spec = *s;
    if (s->varlen) {
        p->dim0 = 1;
        p->rows_q = s->batch * s->seqlen_q;
        p->rows_k = s->batch * s->seqlen_k;
    } else {
        p->dim0 = s->batch;
        p->rows_q = s->seqlen_q;
        p->rows_k = s->seqlen_k;
        p->max_seqlen_q = s->seqlen_q;
        p->max_seqlen_k = s->seqlen_k;
    }
    const size_t es = fa2_dtype_size(s->dtype);
    p->q_bytes = (size_t)tensor_bytes(p->dim0, p->rows_q, s->heads_q, s->head_dim, es);
    p->kv_bytes = (size_t)tensor_bytes(p->dim0, p->rows_k, s->heads_kv, s->head_dim, es);
    p->lse_bytes = (size_t)tensor_bytes(p->dim0, s->heads_q, p->rows_q, 1,
                                        sizeof(float));
    p->q = malloc(p->q_bytes);
    p->k = malloc(p->kv_bytes);
    p->v = malloc(p->kv_bytes);
    p->o = malloc(p->q_bytes);
    p->lse = malloc(p->lse_bytes);
    if (!p->q || !p->k || !p->v || !p->o || !p->lse) {
        problem_destroy(p);
        return -1;
    }
    rng lengths = rng_make(s->seed, 0);
    if (s->varlen && make_cu_seqlens(p, &lengths) != 0) {
        problem_destroy(p);
        return -1;
    }
    rng rq = rng_make(s->seed, 1), rk = rng_make(s->seed, 2),
        rv = rng_make(s->seed, 3);
    fill_normal(p->q, s->dtype, p->q_bytes / es, &rq);
    fill_normal(p->k, s->dtype, p->kv_bytes / es, &rk);
    fill_normal(p->v, s->dtype, p->kv_bytes / es, &rv);
    if (s->alibi || s->sinks) {
        p->slopes = malloc(sizeof(float) * (size_t)s->heads_q);
        p->sinks = malloc(sizeof(float) * (size_t)s->heads_q);
        p->dsinks = malloc(sizeof(float) * (size_t)s->heads_q);
        if (!p->slopes || !p->sinks || !p->dsinks) {
            problem_destroy(p);
            return -1;
        }
        rng rs = rng_make(s->seed, 5); /* the sinks' own stream */
        for (int64_t h = 0; h < s->heads_q; h++) {
            /* ALiBi's geometric sequence: 2^(-8/n), 2^(-16/n), ... */
            p->slopes[h] = (float)pow(2.0, -8.0 * (double)(h + 1) / (double)s->heads_q);
            p->sinks[h] = (float)rng_normal(&rs);
        }
    }
    problem_poison_outputs(p);
    return 0;
}

void problem_destroy(problem *p)
{
    void *bufs[] = {p->q, p->k, p->v, p->o, p->lse, p->cu_seqlens_q, p->cu_seqlens_k,
                    p->dout, p->dq, p->dk, p->dv, p->slopes, p->sinks, p->dsinks};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    memset(p, 0, sizeof *p);
}

fa2_fwd_args problem_fwd_args(const problem *p, int num_threads)
{
    const problem_spec *s = &p->spec;
    fa2_fwd_args a;
    fa2_fwd_args_init(&a);
    a.q = fa2_tensor_4d(p->q, s->dtype, p->dim0, p->rows_q, s->heads_q, s->head_dim);
    a.k = fa2_tensor_4d(p->k, s->dtype, p->dim0, p->rows_k, s->heads_kv, s->head_dim);
    a.v = fa2_tensor_4d(p->v, s->dtype, p->dim0, p->rows_k, s->heads_kv, s->head_dim);
    a.o = fa2_tensor_4d(p->o, s->dtype, p->dim0, p->rows_q, s->heads_q, s->head_dim);
    a.lse = fa2_tensor_lse(p->lse, p->dim0, s->heads_q, p->rows_q);
    a.causal = s->causal;
    a.window_left = s->window_left;
    a.window_right = s->window_right;
    if (s->varlen) {
        a.cu_seqlens_q = p->cu_seqlens_q;
        a.cu_seqlens_k = p->cu_seqlens_k;
        a.num_seqs = s->batch;
        a.max_seqlen_q = p->max_seqlen_q;
        a.max_seqlen_k = p->max_seqlen_k;
    }
    a.num_threads = num_threads;
    a.softcap = s->softcap;
    a.alibi_slopes = s->alibi ? p->slopes : NULL;
    a.sinks = s->sinks ? p->sinks : NULL;
    a.dropout_p = s->dropout_p;
    a.dropout_seed = s->seed;
    return a;
}

void problem_poison_outputs(problem *p)
{
    /* all-ones bytes are a NaN in fp32, fp16 and bf16 alike */
    memset(p->o, 0xff, p->q_bytes);
    memset(p->lse, 0xff, p->lse_bytes);
}

int problem_alloc_grads(problem *p)
{
    if (!p->dout) {
        p->dout = malloc(p->q_bytes);
        p->dq = malloc(p->q_bytes);
        p->dk = malloc(p->kv_bytes);
        p->dv = malloc(p->kv_bytes);
        if (!p->dout || !p->dq || !p->dk || !p->dv)
            return -1;
        /* stream 4: q, k, v stay what they are without the backward */
        rng r = rng_make(p->spec.seed, 4);
        fill_normal_nonzero(p->dout, p->spec.dtype,
                            p->q_bytes / fa2_dtype_size(p->spec.dtype), &r);
    }
    problem_poison_grads(p);
    return 0;
}

fa2_bwd_args problem_bwd_args(const problem *p, int num_threads)
{
    const fa2_fwd_args f = problem_fwd_args(p, num_threads);
    fa2_bwd_args b = fa2_fwd_as_bwd_args(&f);
    b.dout = f.o;
    b.dout.data = p->dout;
    b.dq = f.q;
    b.dq.data = p->dq;
    b.dk = f.k;
    b.dk.data = p->dk;
    b.dv = f.v;
    b.dv.data = p->dv;
    b.dsinks = p->spec.sinks ? p->dsinks : NULL;
    return b;
}

void problem_poison_grads(problem *p)
{
    memset(p->dq, 0xff, p->q_bytes);
    memset(p->dk, 0xff, p->kv_bytes);
    memset(p->dv, 0xff, p->kv_bytes);
}

double problem_fwd_flops(const problem *p)
{
    const fa2_fwd_args a = problem_fwd_args(p, 0);
    return fa2_fwd_flops(&a);
}
