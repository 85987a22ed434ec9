/* standard_fwd.c — standard attention, the baseline FlashAttention is
 * measured against (the FA paper's Algorithm 0): for one (sequence, head) at
 * a time it materialises the whole score matrix S = scale Q K^T and P =
 * softmax(S) in memory, with OpenBLAS sgemm for both products.
 *
 * It computes in float32 from the converted inputs and rounds where a
 * low-precision framework (PyTorch's math path in fp16/bf16) rounds: the
 * scaled scores S (the scale is applied before S is stored, as PyTorch
 * scales before its matmul's output is rounded, so fp16 S overflows only
 * where the scaled score does), the softmax output P and the output O are
 * stored in the input dtype; the softmax itself runs in float32. Its error
 * against the oracle is the yardstick of the numerics contract: FA2 must
 * stay within 2x of it. */
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

/* P = softmax(S) of one row of scaled scores over its visible keys,
 * rounded to the dtype; returns the row's LSE (+inf when it sees no key).
 * Masked keys get P = 0 exactly. Non-finite scores are carried as in the
 * oracle (doc/algorithm.md, "Non-finite inputs"): a NaN or +inf score makes
 * the row's visible P and its LSE NaN. The backward (standard_bwd.c)
 * recomputes P with the same function. */
float fa2_standard_softmax_row(const fa2_problem *p, const fa2_mask *mask, int64_t i,
                               float *row, int64_t nk, float sink)
{
    int64_t lo, hi; /* the keys row i sees: one interval (fa2_tile.h) */
    fa2_visible_cols(mask, i, i + 1, &lo, &hi);
    float m = -INFINITY;
    for (int64_t j = lo; j < hi; j++)
        if (row[j] > m)
            m = row[j];
    if (sink > m) /* a sink (-inf: none) joins the max and the sum */
        m = sink;
    const float shift = m == -INFINITY ? 0.0f : m; /* exp(-inf - 0) = 0 */
    float l = sink == -INFINITY ? 0.0f : expf(sink - shift);
    for (int64_t j = 0; j < nk; j++) {
        row[j] = (j >= lo && j < hi) ? expf(row[j] - shift) : 0.0f;
        l += row[j];
    }
    if (l == 0.0f) /* no visible key (or only -inf scores) */
        return INFINITY;
    const float inv = 1.0f / l;
    for (int64_t j = lo; j < hi; j++)
        row[j] = fa2_round_to_dtype(row[j] * inv, p->dtype);
    return m + logf(l);
}

/* S = scale Q K^T of one (sequence, head), [nq][nk], stored in the input
 * dtype like a framework's matmul output; with a score modifier, S = the
 * logits u (fa2_score.h) of the float32 products, then rounded. */
void fa2_standard_scores(const fa2_problem *p, const fa2_seq *s, int64_t b,
                         int64_t h, const float *q, const float *k, float *sp)
{
    const int64_t nq = s->seqlen_q, nk = s->seqlen_k, d = p->head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk,
                (int)d, p->mods ? 1.0f : p->scale, q, (int)d, k, (int)d, 0.0f, sp,
                (int)nk);
    if (p->mods) {
        const fa2_score_mod sm = fa2_problem_score_mod(p, s, b, h);
        for (int64_t i = 0; i < nq; i++)
            for (int64_t j = 0; j < nk; j++)
                sp[i * nk + j] = fa2_score_logit(&sm, sp[i * nk + j], i, j);
    }
    fa2_round_buffer(sp, nq * nk, p->dtype);
}

/* Dropout on one row of P (fa2_philox.h): dropped elements 0, kept ones
 * round(P / (1 - p)), as a framework's dropout(P) stores them; with
 * mark, the visible kept ones are set in the optional dropout_mask. */
void fa2_standard_dropout_row(const fa2_problem *p, const fa2_mask *mask,
                              int64_t b, int64_t h, int64_t i, float *row,
                              int64_t nk, int mark)
{
    for (int64_t j = 0; j < nk; j++) {
        const int keep = fa2_dropout_keep(&p->dropout, b * p->heads_q + h, i, j);
        row[j] = keep ? fa2_round_to_dtype(row[j] * p->dropout.scale, p->dtype)
                      : row[j] * 0.0f; /* a multiply, as a framework's mask: NaN stays */
        if (mark && keep && p->dropout_mask && fa2_mask_visible(mask, i, j))
            *fa2_problem_mask_at(p, b, h, i, j) = 1;
    }
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
    float *q = fa2_alloc_n(nq * d, sizeof(float));
    float *k = fa2_alloc_n(nk * d, sizeof(float));
    float *v = fa2_alloc_n(nk * d, sizeof(float));
    float *sp = fa2_alloc_n(nq * nk, sizeof(float)); /* up to 2^62 elements */
    float *o = fa2_alloc_n(nq * d, sizeof(float));
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
    if (nk > 0)
        fa2_standard_scores(p, &s, b, h, q, k, sp);
    for (int64_t i = 0; i < nq; i++) {
        const float lse = fa2_standard_softmax_row(p, &mask, i, sp + i * nk, nk,
                                                   fa2_problem_sink(p, h));
        if (a->lse.data)
            *fa2_lse_at(&a->lse, s.batch, h, s.q_start + i) = lse;
        if (p->dropout.enabled)
            fa2_standard_dropout_row(p, &mask, b, h, i, sp + i * nk, nk, 1);
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
    fa2_problem_mask_clear(p);
    fa2_parallel_for(p->num_threads, p->num_seqs * p->heads_q, standard_item, &job);
    if (atomic_load(&job.failed))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "standard attention could not "
                        "allocate its %lld x %lld score matrix",
                        (long long)p->max_seqlen_q, (long long)p->max_seqlen_k);
    return FA2_OK;
}
