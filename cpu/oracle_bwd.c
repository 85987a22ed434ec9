/* oracle_bwd.c — the gradients of attention in float64, from the
 * definitions. For one query row i with visible keys j:
 *
 *   s_j = scale q_i.k_j,   p_j = softmax(s)_j,   o_i = sum_j p_j v_j
 *   dv_j += p_j do_i                     (o is linear in v)
 *   dp_j  = do_i . v_j
 *   ds_j  = p_j (dp_j - sum_k p_k dp_k)  (the softmax Jacobian)
 *   dq_i  = scale sum_j ds_j k_j,   dk_j += scale ds_j q_i
 *
 * It recomputes P from q and k itself and ignores the forward's o and lse:
 * this is the exact gradient of the function, the yardstick for backends
 * that use the rounded o and lse. One work item is one (sequence, key head);
 * it runs the query heads of its group in turn, so dk and dv (summed over
 * the group, GQA) have a single writer. */
#include "config.h"
#include "fa2_cpu.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct oracle_bwd_job {
    const fa2_bwd_args *a;
    const fa2_problem *p;
    double *dq64, *dk64, *dv64; /* dense like q / k / v, or NULL */
    double *dsink_part;         /* [num_seqs][Hq]: each (sequence, head)'s
                                   share of dsinks, summed in order after */
    int write_outputs;
    int d_from_o; /* D = dO . o with the forward's o, not sum_k p_k dp_k */
    atomic_int failed;
} oracle_bwd_job;

static void oracle_bwd_item(void *ctx, int64_t item, int worker)
{
    oracle_bwd_job *job = ctx;
    const fa2_bwd_args *a = job->a;
    const fa2_problem *p = job->p;
    const int64_t d = p->head_dim;
    const int64_t group = p->heads_q / p->heads_kv;
    const int64_t hk = item % p->heads_kv;
    const int64_t b = item / p->heads_kv;
    const fa2_seq s = fa2_problem_seq(p, b);
    const fa2_mask mask = fa2_problem_mask(p, &s);
    const int64_t nk = s.seqlen_k;
    const int64_t kd = nk * d;

    double *k = fa2_alloc_n(kd, sizeof(double)), *v = fa2_alloc_n(kd, sizeof(double));
    double *dk = fa2_calloc_n(kd, sizeof(double)), *dv = fa2_calloc_n(kd, sizeof(double));
    double *sc = fa2_alloc_n(nk, sizeof(double));
    double *g = fa2_alloc_n(nk, sizeof(double)); /* du/dx of each key */
    double *dp = fa2_alloc_n(nk, sizeof(double));
    double *q = malloc(sizeof(double) * (size_t)d), *dO = malloc(sizeof(double) * (size_t)d);
    double *dq = malloc(sizeof(double) * (size_t)d);
    double *o = malloc(sizeof(double) * (size_t)d);
    float *row = malloc(sizeof(float) * (size_t)d);
    if (!k || !v || !dk || !dv || !sc || !g || !dp || !q || !dO || !dq || !o || !row) {
        atomic_store(&job->failed, 1);
        goto out;
    }
    for (int64_t j = 0; j < nk; j++) {
        fa2_load_row_f64(&a->k, s.batch, s.k_start + j, hk, d, k + j * d);
        fa2_load_row_f64(&a->v, s.batch, s.k_start + j, hk, d, v + j * d);
    }
    const double rp = 1.0 / (1.0 - (double)a->dropout_p);
    for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
        const fa2_score_mod sm = fa2_problem_score_mod(p, &s, b, h);
        const double sink = p->sinks ? (double)p->sinks[h] : -INFINITY;
        double dsink = 0.0;
        for (int64_t i = 0; i < s.seqlen_q; i++) {
            const int64_t qrow = s.q_start + i;
            fa2_load_row_f64(&a->q, s.batch, qrow, h, d, q);
            fa2_load_row_f64(&a->dout, s.batch, qrow, h, d, dO);
            /* the keys row i sees: one interval (fa2_tile.h); as in the
             * forward oracle, non-finite values are carried, not filtered:
             * a NaN score makes l, every p_j and so every gradient the row
             * touches NaN, and a row with l = 0 (no key, or only -inf
             * scores) has p = 0: its gradients are 0 * (its terms) */
            int64_t lo, hi;
            fa2_visible_cols(&mask, i, i + 1, &lo, &hi);
            double m = -INFINITY;
            for (int64_t j = lo; j < hi; j++) {
                double dot = 0.0;
                for (int64_t c = 0; c < d; c++)
                    dot += q[c] * k[j * d + c];
                /* u = logit(x) and du/dx (fa2_score.h); plain: scale x */
                sc[j] = p->mods ? fa2_score_logit_f64(&sm, dot, i, j)
                                : (double)p->scale * dot;
                g[j] = p->mods ? fa2_score_grad_f64(&sm, dot) : (double)p->scale;
                if (sc[j] > m)
                    m = sc[j];
            }
            if (sink > m)
                m = sink;
            const double shift = m == -INFINITY ? 0.0 : m;
            double l = p->sinks ? exp(sink - shift) : 0.0, pdp = 0.0;
            for (int64_t j = lo; j < hi; j++)
                l += exp(sc[j] - shift);
            for (int64_t j = lo; j < hi; j++) {
                sc[j] = l == 0.0 ? 0.0 : exp(sc[j] - shift) / l; /* now p_j */
                double t = 0.0;
                for (int64_t c = 0; c < d; c++)
                    t += dO[c] * v[j * d + c];
                /* dropout: O = sum_j p_j z_j rp v_j, so dP_j = z_j rp dO.v_j
                 * (z_j recomputed from the generator) */
                if (p->dropout.enabled)
                    t = fa2_dropout_keep(&p->dropout, b * p->heads_q + h, i, j)
                            ? t * rp : 0.0;
                dp[j] = t;
                pdp += sc[j] * t;
            }
            if (job->d_from_o) {
                fa2_load_row_f64(&a->o, s.batch, qrow, h, d, o);
                pdp = 0.0;
                for (int64_t c = 0; c < d; c++)
                    pdp += dO[c] * o[c];
            }
            /* the sink's gradient: dL/dsink = -P_sink D (algorithm.md) */
            if (p->sinks && l != 0.0)
                dsink -= exp(sink - shift) / l * pdp;
            memset(dq, 0, sizeof(double) * (size_t)d);
            for (int64_t j = lo; j < hi; j++) {
                const double ds = sc[j] * (dp[j] - pdp) * g[j];
                /* p_j z_j rp: the weight v_j had in O */
                const double pv =
                    !p->dropout.enabled ? sc[j]
                    : fa2_dropout_keep(&p->dropout, b * p->heads_q + h, i, j)
                        ? sc[j] * rp : 0.0;
                for (int64_t c = 0; c < d; c++) {
                    dv[j * d + c] += pv * dO[c];
                    dk[j * d + c] += ds * q[c];
                    dq[c] += ds * k[j * d + c];
                }
            }
            if (job->dq64)
                memcpy(job->dq64 + ((s.batch * a->q.shape[1] + qrow) * p->heads_q + h) * d,
                       dq, sizeof(double) * (size_t)d);
            if (job->write_outputs) {
                for (int64_t c = 0; c < d; c++)
                    row[c] = (float)dq[c];
                fa2_store_row_f32(&a->dq, s.batch, qrow, h, d, row);
            }
        }
        if (job->dsink_part)
            job->dsink_part[b * p->heads_q + h] = dsink;
    }
    for (int64_t j = 0; j < nk; j++) {
        const int64_t krow = s.k_start + j;
        const size_t at = (size_t)(((s.batch * a->k.shape[1] + krow) * p->heads_kv + hk) * d);
        if (job->dk64)
            memcpy(job->dk64 + at, dk + j * d, sizeof(double) * (size_t)d);
        if (job->dv64)
            memcpy(job->dv64 + at, dv + j * d, sizeof(double) * (size_t)d);
        if (job->write_outputs) {
            for (int64_t c = 0; c < d; c++)
                row[c] = (float)dk[j * d + c];
            fa2_store_row_f32(&a->dk, s.batch, krow, hk, d, row);
            for (int64_t c = 0; c < d; c++)
                row[c] = (float)dv[j * d + c];
            fa2_store_row_f32(&a->dv, s.batch, krow, hk, d, row);
        }
    }
out:
    free(k);
    free(v);
    free(dk);
    free(dv);
    free(sc);
    free(g);
    free(dp);
    free(q);
    free(dO);
    free(dq);
    free(o);
    free(row);
}

static fa2_status oracle_bwd_run(const fa2_bwd_args *a, const fa2_problem *p,
                                 double *dq64, double *dk64, double *dv64,
                                 double *dsinks64, int write_outputs,
                                 int d_from_o)
{
    oracle_bwd_job job = {.a = a, .p = p, .dq64 = dq64, .dk64 = dk64,
                          .dv64 = dv64, .write_outputs = write_outputs,
                          .d_from_o = d_from_o};
    atomic_init(&job.failed, 0);
    if (p->sinks) {
        job.dsink_part = fa2_calloc_n(p->num_seqs * p->heads_q, sizeof(double));
        if (!job.dsink_part)
            return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the oracle backward could "
                            "not allocate its sink gradient buffer");
    }
    fa2_parallel_for(p->num_threads, p->num_seqs * p->heads_kv, oracle_bwd_item,
                     &job);
    if (atomic_load(&job.failed)) {
        free(job.dsink_part);
        return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the oracle backward could not "
                        "allocate its buffers for %lld keys",
                        (long long)p->max_seqlen_k);
    }
    /* dsinks[h]: the sequences' shares summed in sequence order */
    for (int64_t h = 0; p->sinks && h < p->heads_q; h++) {
        double sum = 0.0;
        for (int64_t b = 0; b < p->num_seqs; b++)
            sum += job.dsink_part[b * p->heads_q + h];
        if (dsinks64)
            dsinks64[h] = sum;
        if (write_outputs)
            a->dsinks[h] = (float)sum;
    }
    free(job.dsink_part);
    return FA2_OK;
}

fa2_status fa2_cpu_oracle_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    return oracle_bwd_run(a, p, NULL, NULL, NULL, NULL, 1, 0);
}

fa2_status fa2_oracle_bwd_f64(const fa2_bwd_args *args, double *dq64,
                              double *dk64, double *dv64)
{
    return fa2_oracle_bwd_f64_sinks(args, dq64, dk64, dv64, NULL);
}

fa2_status fa2_oracle_bwd_f64_sinks(const fa2_bwd_args *args, double *dq64,
                                    double *dk64, double *dv64,
                                    double *dsinks64)
{
    fa2_problem p;
    fa2_status st = fa2_bwd_validate(args, NULL, &p);
    if (st != FA2_OK)
        return st;
    return oracle_bwd_run(args, &p, dq64, dk64, dv64, dsinks64, 0, 0);
}

fa2_status fa2_oracle_bwd_f64_rounded_o(const fa2_bwd_args *args, double *dq64,
                                        double *dk64, double *dv64)
{
    fa2_problem p;
    fa2_status st = fa2_bwd_validate(args, NULL, &p);
    if (st != FA2_OK)
        return st;
    return oracle_bwd_run(args, &p, dq64, dk64, dv64, NULL, 0, 1);
}
