/* standard_bwd.c — the backward of standard attention, as a framework
 * computes it from saved tensors: for one (sequence, head) it materialises
 * P (recomputed exactly as standard_fwd.c computes it: S = scale Q K^T
 * rounded to the dtype, then the softmax; a framework saves that very P)
 * and dP = dO V^T in
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
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct standard_bwd_job {
    const fa2_bwd_args *a;
    const fa2_problem *p;
    float *dsink_part; /* [num_seqs][Hq]: shares of dsinks, or NULL */
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
    const int64_t qd = nq * d, kd = nk * d;
    const int64_t qk = nq * nk; /* up to 2^62: fa2_alloc_n checks the bytes */

    float *q = fa2_alloc_n(qd, sizeof(float)), *dO = fa2_alloc_n(qd, sizeof(float));
    float *dq = fa2_alloc_n(qd, sizeof(float));
    float *k = fa2_alloc_n(kd, sizeof(float)), *v = fa2_alloc_n(kd, sizeof(float));
    float *dk = fa2_calloc_n(kd, sizeof(float)), *dv = fa2_calloc_n(kd, sizeof(float));
    float *P = fa2_alloc_n(qk, sizeof(float)), *dP = fa2_alloc_n(qk, sizeof(float));
    /* with modifiers: du/dx (softcap), the dropped P (dropout), each row's
     * LSE (sinks) */
    float *G = p->softcap > 0.0f ? fa2_alloc_n(qk, sizeof(float)) : NULL;
    float *Pd = p->dropout.enabled ? fa2_alloc_n(qk, sizeof(float)) : NULL;
    float *lse = fa2_alloc_n(nq, sizeof(float));
    if (!q || !dO || !dq || !k || !v || !dk || !dv || !P || !dP || !lse ||
        (p->softcap > 0.0f && !G) || (p->dropout.enabled && !Pd)) {
        atomic_store(&job->failed, 1);
        goto out;
    }
    load_rows(&a->k, &s, s.k_start, nk, hk, d, k);
    load_rows(&a->v, &s, s.k_start, nk, hk, d, v);
    for (int64_t h = hk * group; h < (hk + 1) * group && nq > 0; h++) {
        load_rows(&a->q, &s, s.q_start, nq, h, d, q);
        load_rows(&a->dout, &s, s.q_start, nq, h, d, dO);
        if (nk == 0) { /* no keys: every gradient of this head is zero */
            for (int64_t x = 0; x < qd; x++)
                dq[x] = 0.0f;
        } else {
            /* P, recomputed as the forward computed it */
            fa2_standard_scores(p, &s, b, h, q, k, P);
            if (G) { /* softcap's du/d(scale x), from the raw products */
                const fa2_score_mod sm = fa2_problem_score_mod(p, &s, b, h);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq,
                            (int)nk, (int)d, 1.0f, q, (int)d, k, (int)d, 0.0f, G,
                            (int)nk);
                for (int64_t x = 0; x < qk; x++)
                    G[x] = fa2_score_grad(&sm, G[x]);
            }
            for (int64_t i = 0; i < nq; i++)
                lse[i] = fa2_standard_softmax_row(p, &mask, i, P + i * nk, nk,
                                                  fa2_problem_sink(p, h));
            if (Pd) /* dropout(P), as the forward used it */
                for (int64_t i = 0; i < nq; i++) {
                    for (int64_t j = 0; j < nk; j++)
                        Pd[i * nk + j] = P[i * nk + j];
                    fa2_standard_dropout_row(p, &mask, b, h, i, Pd + i * nk, nk, 0);
                }
            /* dV += P^T dO */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)d,
                        (int)nq, 1.0f, Pd ? Pd : P, (int)nk, dO, (int)d, 1.0f, dv,
                        (int)d);
            /* dP = dO V^T, in the input dtype */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk,
                        (int)d, 1.0f, dO, (int)d, v, (int)d, 0.0f, dP, (int)nk);
            fa2_round_buffer(dP, nq * nk, p->dtype);
            /* dS = P o (dP - rowsum(P o dP)), the softmax backward; with
             * dropout dP is first the gradient through dropout (dP z /
             * (1 - p)), with softcap dS is then times du/d(scale x) */
            for (int64_t i = 0; i < nq; i++) {
                float *pr = P + i * nk, *dr = dP + i * nk, dot = 0.0f;
                if (Pd)
                    fa2_standard_dropout_row(p, &mask, b, h, i, dr, nk, 0);
                for (int64_t j = 0; j < nk; j++)
                    dot += pr[j] * dr[j];
                if (job->dsink_part && lse[i] != INFINITY)
                    job->dsink_part[b * p->heads_q + h] -=
                        expf(p->sinks[h] - lse[i]) * dot;
                for (int64_t j = 0; j < nk; j++)
                    dr[j] = fa2_round_to_dtype(
                        G ? pr[j] * (dr[j] - dot) * G[i * nk + j]
                          : pr[j] * (dr[j] - dot), p->dtype);
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
    free(G);
    free(Pd);
    free(lse);
}

fa2_status fa2_cpu_standard_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    standard_bwd_job job;
    job.a = a;
    job.p = p;
    atomic_init(&job.failed, 0);
    job.dsink_part = NULL;
    if (p->sinks && !(job.dsink_part = fa2_calloc_n(p->num_seqs * p->heads_q,
                                                    sizeof(float))))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "standard attention's backward "
                        "could not allocate its sink gradient buffer");
    fa2_parallel_for(p->num_threads, p->num_seqs * p->heads_kv, standard_bwd_item,
                     &job);
    for (int64_t h = 0; p->sinks && h < p->heads_q; h++) {
        float sum = 0.0f; /* the sequences' shares, in sequence order */
        for (int64_t b = 0; b < p->num_seqs; b++)
            sum += job.dsink_part[b * p->heads_q + h];
        a->dsinks[h] = sum;
    }
    free(job.dsink_part);
    if (atomic_load(&job.failed))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "standard attention's backward "
                        "could not allocate its %lld x %lld matrices",
                        (long long)p->max_seqlen_q, (long long)p->max_seqlen_k);
    return FA2_OK;
}
