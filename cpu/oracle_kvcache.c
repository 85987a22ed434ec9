/* oracle_kvcache.c — the forward over a KV cache in float64, straight from
 * the definition: for query i of sequence b and head h, the keys are the
 * sequence's cache_seqlens[b] cached ones followed by its Nnew new ones,
 * read through the block table (cpu/kvcache_io.c; the new ones from k_new /
 * v_new directly, so the oracle does not trust the append), and
 *
 *   S = scale q K^T,  P = softmax(S) over the visible keys,  O = P V,
 *   LSE = ln sum_j exp(S_j)
 *
 * with the mask bottom-right aligned to seqlen_k = cache_seqlens[b] + Nnew.
 * No tiles, no splits, no merge: every other backend's splits are measured
 * against this one. Non-finite values as in oracle_fwd.c. */
#include "config.h"
#include "fa2_cpu.h"
#include "fa2_kvcache.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct oracle_kv_job {
    const fa2_kvcache_args *a;
    const fa2_kvcache_problem *p;
    double *o64, *lse64;  /* dense outputs, or NULL                */
    int write_outputs;    /* store o / lse rounded to their dtypes */
    atomic_int failed;
} oracle_kv_job;

/* Query i of sequence b, head h: out = O row, returns LSE. */
static double oracle_row(const oracle_kv_job *job, int64_t b, int64_t h, int64_t i,
                         double *q, double *kv, double *scores, double *out)
{
    const fa2_kvcache_args *a = job->a;
    const fa2_kvcache_problem *p = job->p;
    const int64_t d = p->head_dim, hk = h / p->group;
    const int64_t seqlen_k = fa2_kvcache_seqlen_k(p, b);
    const fa2_mask mask = fa2_kvcache_mask(p, seqlen_k);
    int64_t lo, hi;
    double m = -INFINITY;

    fa2_visible_cols(&mask, i, i + 1, &lo, &hi);
    fa2_load_row_f64(&a->q, b, i, h, d, q);
    for (int64_t j = lo; j < hi; j++) {
        fa2_cpu_kvcache_key_f64(a, p, 0, b, j, hk, kv);
        double dot = 0.0;
        for (int64_t c = 0; c < d; c++)
            dot += q[c] * kv[c];
        scores[j] = (double)p->scale * dot;
        if (scores[j] > m)
            m = scores[j];
    }
    for (int64_t c = 0; c < d; c++)
        out[c] = 0.0;
    const double shift = m == -INFINITY ? 0.0 : m;
    double l = 0.0;
    for (int64_t j = lo; j < hi; j++) {
        const double w = exp(scores[j] - shift);
        l += w;
        fa2_cpu_kvcache_key_f64(a, p, 1, b, j, hk, kv);
        for (int64_t c = 0; c < d; c++)
            out[c] += w * kv[c];
    }
    if (l == 0.0) /* no visible key (or only -inf scores) */
        return INFINITY;
    for (int64_t c = 0; c < d; c++)
        out[c] /= l;
    return m + log(l);
}

/* One item: all Nq queries of (sequence b, head h). */
static void oracle_item(void *ctx, int64_t item, int worker)
{
    oracle_kv_job *job = ctx;
    const fa2_kvcache_args *a = job->a;
    const fa2_kvcache_problem *p = job->p;
    const int64_t d = p->head_dim;
    const int64_t h = item % p->heads_q, b = item / p->heads_q;
    double *buf = fa2_alloc_n(3 * d + p->max_seqlen_k, sizeof(double));
    float *orow = fa2_alloc_n(d, sizeof(float));
    if (!buf || !orow) {
        atomic_store(&job->failed, 1);
        free(buf);
        free(orow);
        return;
    }
    double *q = buf, *kv = buf + d, *out = buf + 2 * d, *scores = buf + 3 * d;
    for (int64_t i = 0; i < p->seqlen_q; i++) {
        const double lse = oracle_row(job, b, h, i, q, kv, scores, out);
        if (job->o64) {
            double *dst = job->o64 + ((b * p->seqlen_q + i) * p->heads_q + h) * d;
            for (int64_t c = 0; c < d; c++)
                dst[c] = out[c];
        }
        if (job->lse64)
            job->lse64[(b * p->heads_q + h) * p->seqlen_q + i] = lse;
        if (job->write_outputs) {
            for (int64_t c = 0; c < d; c++)
                orow[c] = (float)out[c];
            fa2_store_row_f32(&a->o, b, i, h, d, orow);
            if (a->lse.data)
                *fa2_lse_at(&a->lse, b, h, i) = (float)lse;
        }
    }
    free(buf);
    free(orow);
}

static fa2_status oracle_run(const fa2_kvcache_args *a, const fa2_kvcache_problem *p,
                             double *o64, double *lse64, int write_outputs)
{
    oracle_kv_job job = {.a = a, .p = p, .o64 = o64, .lse64 = lse64,
                         .write_outputs = write_outputs};
    atomic_init(&job.failed, 0);
    fa2_parallel_for(p->num_threads, p->batch * p->heads_q, oracle_item, &job);
    if (atomic_load(&job.failed))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the oracle could not allocate a "
                        "row buffer of %lld doubles",
                        (long long)(3 * p->head_dim + p->max_seqlen_k));
    return FA2_OK;
}

fa2_status fa2_cpu_oracle_kvcache(const fa2_kvcache_args *a,
                                  const fa2_kvcache_problem *p)
{
    /* the append first: a caller reading the cache afterwards sees it, and
     * the attention below reads the new tokens from k_new / v_new anyway */
    fa2_cpu_kvcache_append(a, p);
    return oracle_run(a, p, NULL, NULL, 1);
}

fa2_status fa2_oracle_kvcache_f64(const fa2_kvcache_args *args, double *o64,
                                  double *lse64)
{
    fa2_kvcache_problem p;
    fa2_status st = fa2_kvcache_validate(args, NULL, &p);
    if (st != FA2_OK)
        return st;
    return oracle_run(args, &p, o64, lse64, 0);
}
