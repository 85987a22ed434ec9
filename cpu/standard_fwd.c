/* standard_fwd.c — standard attention, the baseline FlashAttention is
 * measured against (the FA paper's Algorithm 0): for one (sequence, head) at
 * a time it materialises the whole score matrix S = Q K^T and P = softmax(S)
 * in memory, with OpenBLAS sgemm for both products.
 *
 * It computes in float32 from the converted inputs and rounds where a
 * low-precision framework (PyTorch's math path in fp16/bf16) rounds: the
 * matmul output S, the softmax output P and the output O are stored in the
 * input dtype. Its error against the oracle is the yardstick of the
 * numerics contract: FA2 must stay within 2x of it. */
#include "config.h"
#include "fa2_cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct standard_job {
    const fa2_fwd_args *a;
    const fa2_problem *p;
    atomic_int failed;
} standard_job;

/* P = softmax(scale * S) of one row over its visible keys, rounded to the
 * dtype; returns the row's LSE (+inf when it sees no key). The backward
 * (standard_bwd.c) recomputes P with the same function. */
float fa2_standard_softmax_row(const fa2_problem *p, const fa2_mask *mask, int64_t i,
                         float *row, int64_t nk)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < nk; j++) {
        row[j] = fa2_mask_visible(mask, i, j) ? row[j] * p->scale : -INFINITY;
        if (row[j] > m)
            m = row[j];
    }
    if (m == -INFINITY) {
        for (int64_t j = 0; j < nk; j++)
            row[j] = 0.0f;
        return INFINITY;
    }
    float l = 0.0f;
    for (int64_t j = 0; j < nk; j++) {
        row[j] = expf(row[j] - m);
        l += row[j];
    }
    const float inv = 1.0f / l;
    for (int64_t j = 0; j < nk; j++)
        row[j] = fa2_round_to_dtype(row[j] * inv, p->dtype);
    return m + logf(l);
}

static void standard_item(void *ctx, int64_t item, int worker)
{
    standard_job *job = ctx;
    const fa2_fwd_args *a = job->a;
    const fa2_problem *p = job->p;
    const int64_t h = item % p->heads_q;
    const int64_t b = item / p->heads_q;
    const int64_t hk = h / (p->heads_q / p->heads_kv);
    const int64_t d = p->head_dim;
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);
    const int64_t nq = s.seqlen_q, nk = s.seqlen_k;

    if (nq == 0)
        return;
    float *q = malloc(sizeof(float) * (size_t)(nq * d));
    float *k = malloc(sizeof(float) * (size_t)((nk ? nk : 1) * d));
    float *v = malloc(sizeof(float) * (size_t)((nk ? nk : 1) * d));
    float *sp = malloc(sizeof(float) * (size_t)(nq * (nk ? nk : 1)));
    float *o = malloc(sizeof(float) * (size_t)(nq * d));
    if (!q || !k || !v || !sp || !o) {
        atomic_store(&job->failed, 1);
        goto out;
    }
    for (int64_t i = 0; i < nq; i++)
        fa2_load_row_f32(&a->q, s.batch, s.q_start + i, h, d, q + i * d);
    for (int64_t j = 0; j < nk; j++) {
        fa2_load_row_f32(&a->k, s.batch, s.k_start + j, hk, d, k + j * d);
        fa2_load_row_f32(&a->v, s.batch, s.k_start + j, hk, d, v + j * d);
    }
    if (nk > 0) {
        /* S = Q K^T, stored in the input dtype like a framework's matmul */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk,
                    (int)d, 1.0f, q, (int)d, k, (int)d, 0.0f, sp, (int)nk);
        fa2_round_buffer(sp, nq * nk, p->dtype);
    }
    for (int64_t i = 0; i < nq; i++) {
        const float lse = fa2_standard_softmax_row(p, &mask, i, sp + i * nk, nk);
        if (a->lse.data)
            *fa2_lse_at(&a->lse, s.batch, h, s.q_start + i) = lse;
    }
    /* O = P V (rows that saw no key have P = 0, hence O = 0) */
    if (nk > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)d,
                    (int)nk, 1.0f, sp, (int)nk, v, (int)d, 0.0f, o, (int)d);
    else
        for (int64_t x = 0; x < nq * d; x++)
            o[x] = 0.0f;
    for (int64_t i = 0; i < nq; i++)
        fa2_store_row_f32(&a->o, s.batch, s.q_start + i, h, d, o + i * d);
out:
    free(q);
    free(k);
    free(v);
    free(sp);
    free(o);
}

fa2_status fa2_cpu_standard_fwd(const fa2_fwd_args *a, const fa2_problem *p)
{
    standard_job job;
    job.a = a;
    job.p = p;
    atomic_init(&job.failed, 0);
    fa2_parallel_for(p->num_threads, p->num_seqs * p->heads_q, standard_item, &job);
    if (atomic_load(&job.failed))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "standard attention could not "
                        "allocate its %lld x %lld score matrix",
                        (long long)p->max_seqlen_q, (long long)p->max_seqlen_k);
    return FA2_OK;
}
