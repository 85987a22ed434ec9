/* sweep.c — the grids `fa2 sim --sweep` runs (see sweep.h), on the
 * library's worker threads: the rows are independent simulations. */
#include "config.h"
#include "sim.h"
#include "sweep.h"

#include <stdatomic.h>
#include <stdio.h>

const char *const sim_sweep_names[SIM_SWEEP_COUNT + 1] = {"paper", "seqlen", "sram",
                                                          NULL};

static fa2_sim_args *next_row(sim_sweep_row *rows, int *n, const fa2_sim_args *base,
                              int algo)
{
    fa2_sim_args *a = &rows[(*n)++].a;
    *a = *base;
    a->algo = (fa2_sim_algo)algo;
    a->cu_seqlens_q = a->cu_seqlens_k = NULL;
    return a;
}

int sim_sweep_rows(sim_sweep_kind kind, fa2_sim_args *base, int pass_given,
                   sim_sweep_row *rows)
{
    int n = 0;
    switch (kind) {
    case SIM_SWEEP_PAPER:
        if (!pass_given)
            base->pass = FA2_SIM_PASS_FWD_BWD;
        for (int d = 64; d <= 128; d *= 2)
            for (int causal = 0; causal <= 1; causal++)
                for (int64_t nq = 512; nq <= 16384; nq *= 2)
                    for (int algo = 0; algo < 3; algo++) {
                        fa2_sim_args *a = next_row(rows, &n, base, algo);
                        a->head_dim = d;
                        a->causal = causal;
                        a->batch = 16384 / nq;
                        a->heads_q = a->heads_kv = 2048 / d;
                        a->seqlen_q = a->seqlen_k = nq;
                    }
        break;
    case SIM_SWEEP_SEQLEN:
        for (int64_t nq = 256; nq <= 65536; nq *= 2)
            for (int algo = 0; algo < 3; algo++) {
                fa2_sim_args *a = next_row(rows, &n, base, algo);
                a->seqlen_q = a->seqlen_k = nq;
            }
        break;
    default: /* sram: global bytes only, so no L2 */
        if (base->seqlen_q == 0)
            base->seqlen_q = base->seqlen_k = 16384;
        base->l2 = 0;
        for (int algo = FA2_SIM_FA1; algo <= FA2_SIM_FA2; algo++)
            for (int64_t m = 16 * 1024; m <= 1024 * 1024; m *= 2) {
                fa2_sim_args *a = next_row(rows, &n, base, algo);
                a->sram_bytes = m;
                a->block_m = a->block_n = a->bwd_block_m = a->bwd_block_n = 0;
            }
        break;
    }
    return n;
}

typedef struct sweep_job {
    sim_sweep_row *rows;
    int n;
    const fa2_sim_device *dev;
    atomic_int done;
    void (*progress)(void *, int, int);
    void *user;
} sweep_job;

static void run_row(void *ctx, int64_t i, int worker)
{
    sweep_job *job = ctx;
    sim_sweep_row *w = &job->rows[i];
    (void)worker;
    w->st = fa2_sim_run(&w->a, job->dev, &w->r);
    if (w->st == FA2_OK)
        w->st = fa2_sim_tiles(&w->a, job->dev, FA2_SIM_PASS_FWD, &w->t);
    if (w->st != FA2_OK)
        snprintf(w->err, sizeof w->err, "%s", fa2_last_error());
    const int done = atomic_fetch_add(&job->done, 1) + 1;
    if (job->progress)
        job->progress(job->user, done, job->n);
}

fa2_status sim_sweep_run(sim_sweep_row *rows, int n, const fa2_sim_device *dev,
                         int num_threads, void (*progress)(void *, int, int),
                         void *user)
{
    sweep_job job = {rows, n, dev, 0, progress, user};
    atomic_init(&job.done, 0);
    fa2_status st = fa2_parallel_for(num_threads, n, run_row, &job);
    for (int i = 0; st == FA2_OK && i < n; i++)
        if (rows[i].st != FA2_OK)
            return fa2_fail(rows[i].st, "%s", rows[i].err);
    return st;
}
