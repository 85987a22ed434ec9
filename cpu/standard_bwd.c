/* standard_bwd.c — the backward of standard attention, as a framework
 * computes it from saved tensors: for one (sequence, head) it materialises
 * P (recomputed exactly as standard_fwd.c computes it) and dP = dO V^T in
 * memory, and rounds where a low-precision framework rounds (dP, dS and the
 * gradients are stored in the input dtype). OpenBLAS does the products.
 *
 *   dV = P^T dO,  dP = dO V^T,  dS = P o (dP - rowsum(P o dP)),
 *   dQ = scale dS K,  dK = scale dS^T Q
 *
 * One work item is one (sequence, key head); its query heads run in turn
 * and add into float32 dK, dV (GQA sums over the group), rounded once. */
#include "config.h"
#include "fa2_cpu.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct standard_bwd_job {
    const fa2_bwd_args *a;
    const fa2_problem *p;
    atomic_int failed;
} standard_bwd_job;

static void load_rows(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                      int64_t n, int64_t h, int64_t d, float *dst)
{
    for (int64_t r = 0; r < n; r++)
        fa2_load_row_f32(t, s->batch, start + r, h, d, dst + r * d);
}

static void standard_bwd_item(void *ctx, int64_t item, int worker)
{
    standard_bwd_job *job = ctx;
    const fa2_bwd_args *a = job->a;
    const fa2_problem *p = job->p;
    const int64_t d = p->head_dim;
    const int64_t group = p->heads_q / p->heads_kv;
    const int64_t hk = item % p->heads_kv;
    const int64_t b = item / p->heads_kv;
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);
    const int64_t nq = s.seqlen_q, nk = s.seqlen_k;
    const size_t qd = (size_t)((nq ? nq : 1) * d), kd = (size_t)((nk ? nk : 1) * d);
    const size_t qk = (size_t)((nq ? nq : 1) * (nk ? nk : 1));

    float *q = malloc(sizeof(float) * qd), *dO = malloc(sizeof(float) * qd);
    float *dq = malloc(sizeof(float) * qd);
    float *k = malloc(sizeof(float) * kd), *v = malloc(sizeof(float) * kd);
    float *dk = calloc(kd, sizeof(float)), *dv = calloc(kd, sizeof(float));
    float *P = malloc(sizeof(float) * qk), *dP = malloc(sizeof(float) * qk);
    if (!q || !dO || !dq || !k || !v || !dk || !dv || !P || !dP) {
        atomic_store(&job->failed, 1);
        goto out;
    }
    load_rows(&a->k, &s, s.k_start, nk, hk, d, k);
    load_rows(&a->v, &s, s.k_start, nk, hk, d, v);
    for (int64_t h = hk * group; h < (hk + 1) * group && nq > 0; h++) {
        load_rows(&a->q, &s, s.q_start, nq, h, d, q);
        load_rows(&a->dout, &s, s.q_start, nq, h, d, dO);
        if (nk == 0) { /* no keys: every gradient of this head is zero */
            for (size_t x = 0; x < (size_t)(nq * d); x++)
                dq[x] = 0.0f;
        } else {
            /* P, recomputed as the forward computed it */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk,
                        (int)d, 1.0f, q, (int)d, k, (int)d, 0.0f, P, (int)nk);
            fa2_round_buffer(P, nq * nk, p->dtype);
            for (int64_t i = 0; i < nq; i++)
                fa2_standard_softmax_row(p, &mask, i, P + i * nk, nk);
            /* dV += P^T dO */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)d,
                        (int)nq, 1.0f, P, (int)nk, dO, (int)d, 1.0f, dv, (int)d);
            /* dP = dO V^T, in the input dtype */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk,
                        (int)d, 1.0f, dO, (int)d, v, (int)d, 0.0f, dP, (int)nk);
            fa2_round_buffer(dP, nq * nk, p->dtype);
            /* dS = P o (dP - rowsum(P o dP)), the softmax backward */
            for (int64_t i = 0; i < nq; i++) {
                float *pr = P + i * nk, *dr = dP + i * nk, dot = 0.0f;
                for (int64_t j = 0; j < nk; j++)
                    dot += pr[j] * dr[j];
                for (int64_t j = 0; j < nk; j++)
                    dr[j] = fa2_round_to_dtype(pr[j] * (dr[j] - dot), p->dtype);
            }
            /* dQ = scale dS K;  dK += scale dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)d,
                        (int)nk, p->scale, dP, (int)nk, k, (int)d, 0.0f, dq, (int)d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)d,
                        (int)nq, p->scale, dP, (int)nk, q, (int)d, 1.0f, dk, (int)d);
        }
        for (int64_t i = 0; i < nq; i++)
            fa2_store_row_f32(&a->dq, s.batch, s.q_start + i, h, d, dq + i * d);
    }
    for (int64_t j = 0; j < nk; j++) {
        fa2_store_row_f32(&a->dk, s.batch, s.k_start + j, hk, d, dk + j * d);
        fa2_store_row_f32(&a->dv, s.batch, s.k_start + j, hk, d, dv + j * d);
    }
out:
    free(q);
    free(dO);
    free(dq);
    free(k);
    free(v);
    free(dk);
    free(dv);
    free(P);
    free(dP);
}

fa2_status fa2_cpu_standard_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    standard_bwd_job job;
    job.a = a;
    job.p = p;
    atomic_init(&job.failed, 0);
    fa2_parallel_for(p->num_threads, p->num_seqs * p->heads_kv, standard_bwd_item,
                     &job);
    if (atomic_load(&job.failed))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "standard attention's backward "
                        "could not allocate its %lld x %lld matrices",
                        (long long)p->max_seqlen_q, (long long)p->max_seqlen_k);
    return FA2_OK;
}
