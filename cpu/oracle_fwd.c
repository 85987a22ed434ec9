/* oracle_fwd.c — attention in float64, straight from the definition:
 *
 *   S = scale * Q K^T,  P = softmax(S) over the visible keys,  O = P V,
 *   LSE = ln sum_j exp(S_j)
 *
 * one query row at a time, with no tiling and no tricks beyond subtracting
 * the row max before exp (which is exact in real arithmetic). Every other
 * backend is measured against this one. */
#include "config.h"
#include "fa2_cpu.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { ORACLE_ROWS_PER_ITEM = 32 };

typedef struct oracle_job {
    const fa2_fwd_args *a;
    const fa2_problem *p;
    int64_t row_chunks; /* chunks of ORACLE_ROWS_PER_ITEM per (seq, head) */
    double *o64;        /* dense like o, or NULL                        */
    double *lse64;      /* dense like lse, or NULL                      */
    int write_outputs;  /* also store o / lse rounded to their dtypes   */
    atomic_int failed;  /* set by a worker whose allocation failed      */
} oracle_job;

/* One query row: out[0..d) = O row, returns LSE (+inf if it sees no key).
 *
 * Non-finite values (doc/algorithm.md, "Non-finite inputs") are carried by
 * IEEE arithmetic, never filtered: the max skips a NaN score (a > compare),
 * but that score's weight exp(NaN - m) is NaN, so l, every element of O and
 * LSE are NaN; a +inf score makes m = +inf and its weight exp(inf - inf)
 * NaN; a -inf score has weight 0. Every visible key's v is multiplied by its
 * weight, 0 included, so a NaN in v reaches O wherever the key is visible. A
 * row whose visible scores are all -inf has l = 0 and counts as seeing no
 * key (LSE = +inf), as in the tiled backends. */
static double oracle_row(const fa2_fwd_args *a, const fa2_problem *p,
                         const fa2_seq *s, const fa2_mask *mask, int64_t b,
                         int64_t h, int64_t i, double *q, double *kv,
                         double *scores, double *out)
{
    const int64_t d = p->head_dim;
    const int64_t hk = h / (p->heads_q / p->heads_kv);
    const fa2_score_mod sm = fa2_problem_score_mod(p, s, b, h);
    const double sink = p->sinks ? (double)p->sinks[h] : -INFINITY;
    const double rp = 1.0 / (1.0 - (double)a->dropout_p); /* kept: x 1/(1-p) */
    int64_t lo, hi; /* the keys row i sees: one interval (fa2_tile.h) */
    double m = -INFINITY;

    fa2_visible_cols(mask, i, i + 1, &lo, &hi);
    fa2_load_row_f64(&a->q, s->batch, s->q_start + i, h, d, q);
    for (int64_t j = lo; j < hi; j++) {
        fa2_load_row_f64(&a->k, s->batch, s->k_start + j, hk, d, kv);
        double dot = 0.0;
        for (int64_t c = 0; c < d; c++)
            dot += q[c] * kv[c];
        /* the logit: scale x, soft-capped, minus ALiBi's bias (fa2_score.h) */
        scores[j] = p->mods ? fa2_score_logit_f64(&sm, dot, i, j)
                            : (double)p->scale * dot;
        if (scores[j] > m)
            m = scores[j];
    }
    if (sink > m) /* a sink joins the max and the sum, not O */
        m = sink;
    for (int64_t c = 0; c < d; c++)
        out[c] = 0.0;
    const double shift = m == -INFINITY ? 0.0 : m; /* exp(-inf - 0) = 0 */
    double l = p->sinks ? exp(sink - shift) : 0.0;
    for (int64_t j = lo; j < hi; j++) {
        const double w = exp(scores[j] - shift);
        l += w;
        /* dropout after the softmax: l keeps every key, O the kept ones */
        const int keep = !p->dropout.enabled ||
                         fa2_dropout_keep(&p->dropout, b * p->heads_q + h, i, j);
        uint8_t *bit = fa2_problem_mask_at(p, b, h, i, j);
        if (bit)
            *bit = (uint8_t)keep;
        const double wv = !p->dropout.enabled ? w : keep ? w * rp : 0.0;
        fa2_load_row_f64(&a->v, s->batch, s->k_start + j, hk, d, kv);
        for (int64_t c = 0; c < d; c++)
            out[c] += wv * kv[c];
    }
    if (l == 0.0) /* no visible key (or only -inf scores): O = 0, LSE = +inf */
        return INFINITY;
    for (int64_t c = 0; c < d; c++)
        out[c] /= l;
    return m + log(l);
}

static void oracle_item(void *ctx, int64_t item, int worker)
{
    oracle_job *job = ctx;
    const fa2_fwd_args *a = job->a;
    const fa2_problem *p = job->p;
    const int64_t d = p->head_dim;
    const int64_t chunk = item % job->row_chunks;
    const int64_t h = (item / job->row_chunks) % p->heads_q;
    const int64_t b = item / job->row_chunks / p->heads_q;
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);
    const int64_t i0 = chunk * ORACLE_ROWS_PER_ITEM;
    int64_t i1 = i0 + ORACLE_ROWS_PER_ITEM;

    if (i1 > s.seqlen_q)
        i1 = s.seqlen_q;
    if (i0 >= i1)
        return;
    double *buf = malloc(sizeof(double) * (size_t)(3 * d + s.seqlen_k));
    float *orow = malloc(sizeof(float) * (size_t)d);
    if (!buf || !orow) {
        atomic_store(&job->failed, 1);
        free(buf);
        free(orow);
        return;
    }
    double *q = buf, *kv = buf + d, *out = buf + 2 * d, *scores = buf + 3 * d;
    for (int64_t i = i0; i < i1; i++) {
        const int64_t row = s.q_start + i;
        const double lse = oracle_row(a, p, &s, &mask, b, h, i, q, kv, scores, out);
        if (job->o64) {
            double *dst = job->o64 + ((s.batch * a->q.shape[1] + row) * p->heads_q + h) * d;
            for (int64_t c = 0; c < d; c++)
                dst[c] = out[c];
        }
        if (job->lse64)
            job->lse64[(s.batch * p->heads_q + h) * a->q.shape[1] + row] = lse;
        if (job->write_outputs) {
            for (int64_t c = 0; c < d; c++)
                orow[c] = (float)out[c];
            fa2_store_row_f32(&a->o, s.batch, row, h, d, orow);
            if (a->lse.data)
                *fa2_lse_at(&a->lse, s.batch, h, row) = (float)lse;
        }
    }
    free(buf);
    free(orow);
}

static fa2_status oracle_run(const fa2_fwd_args *a, const fa2_problem *p,
                             double *o64, double *lse64, int write_outputs)
{
    oracle_job job = {.a = a, .p = p, .o64 = o64, .lse64 = lse64,
                      .write_outputs = write_outputs};
    fa2_problem_mask_clear(p);
    atomic_init(&job.failed, 0);
    job.row_chunks = fa2_num_blocks(p->max_seqlen_q, ORACLE_ROWS_PER_ITEM);
    if (job.row_chunks == 0)
        return FA2_OK; /* every sequence empty */
    fa2_parallel_for(p->num_threads, p->num_seqs * p->heads_q * job.row_chunks,
                     oracle_item, &job);
    if (atomic_load(&job.failed))
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the oracle could not allocate a "
                        "row buffer of %lld doubles",
                        (long long)(3 * p->head_dim + p->max_seqlen_k));
    return FA2_OK;
}

fa2_status fa2_cpu_oracle_fwd(const fa2_fwd_args *a, const fa2_problem *p)
{
    return oracle_run(a, p, NULL, NULL, 1);
}

fa2_status fa2_oracle_fwd_f64(const fa2_fwd_args *args, double *o64,
                              double *lse64)
{
    fa2_problem p;
    fa2_status st = fa2_fwd_validate(args, NULL, &p);
    if (st != FA2_OK)
        return st;
    return oracle_run(args, &p, o64, lse64, 0);
}
