/* runner.c — see runner.h. */
#include "config.h"
#include "runner.h"
#include "device.h"
#include "timing.h"

#include <stdio.h>
#include <string.h>

static fa2_status lib_fail(runner *r, fa2_status st)
{
    snprintf(r->error, sizeof r->error, "%s", fa2_last_error());
    return st;
}

static fa2_status device_fail(runner *r)
{
    snprintf(r->error, sizeof r->error, "%s", device_error());
    return FA2_ERR_CUDA;
}

/* GPU copies of the inputs and room for the outputs; the arguments point
 * at them. cu_seqlens live on the device too (the CUDA backend reads them
 * there), with the max lengths given, as the CUDA backend requires. */
static fa2_status open_device(runner *r)
{
    problem *p = r->prob;
    const size_t cu_bytes = sizeof(int32_t) * (size_t)(p->spec.batch + 1);
    if (device_alloc(&r->d_q, p->q_bytes) || device_alloc(&r->d_k, p->kv_bytes) ||
        device_alloc(&r->d_v, p->kv_bytes) || device_alloc(&r->d_o, p->q_bytes) ||
        device_alloc((void **)&r->d_lse, p->lse_bytes) ||
        device_upload(r->d_q, p->q, p->q_bytes) ||
        device_upload(r->d_k, p->k, p->kv_bytes) ||
        device_upload(r->d_v, p->v, p->kv_bytes))
        return device_fail(r);
    if (p->spec.varlen &&
        (device_alloc((void **)&r->d_cu_q, cu_bytes) ||
         device_alloc((void **)&r->d_cu_k, cu_bytes) ||
         device_upload(r->d_cu_q, p->cu_seqlens_q, cu_bytes) ||
         device_upload(r->d_cu_k, p->cu_seqlens_k, cu_bytes)))
        return device_fail(r);
    r->fwd.q.data = r->d_q;
    r->fwd.k.data = r->d_k;
    r->fwd.v.data = r->d_v;
    r->fwd.o.data = r->d_o;
    r->fwd.lse.data = r->d_lse;
    if (p->spec.varlen) {
        r->fwd.cu_seqlens_q = r->d_cu_q;
        r->fwd.cu_seqlens_k = r->d_cu_k;
    }
    return FA2_OK;
}

fa2_status runner_open(runner *r, fa2_backend backend, problem *p,
                       int num_threads)
{
    memset(r, 0, sizeof *r);
    r->backend = backend;
    r->prob = p;
    r->on_device = backend == FA2_BACKEND_CUDA;
    r->fwd = problem_fwd_args(p, num_threads);
    fa2_status st = fa2_backend_available(backend);
    if (st != FA2_OK)
        return lib_fail(r, st);
    if (r->on_device && (st = open_device(r)) != FA2_OK) {
        char why[sizeof r->error];
        memcpy(why, r->error, sizeof why);
        runner_close(r);
        memcpy(r->error, why, sizeof why);
        return st;
    }
    return FA2_OK;
}

void runner_close(runner *r)
{
    device_free(r->d_q);
    device_free(r->d_k);
    device_free(r->d_v);
    device_free(r->d_o);
    device_free(r->d_lse);
    device_free(r->d_cu_q);
    device_free(r->d_cu_k);
    memset(r, 0, sizeof *r);
}

static fa2_status poison_outputs(runner *r)
{
    if (!r->on_device) {
        problem_poison_outputs(r->prob);
        return FA2_OK;
    }
    if (device_fill_bytes(r->d_o, 0xff, r->prob->q_bytes) ||
        device_fill_bytes(r->d_lse, 0xff, r->prob->lse_bytes) ||
        device_synchronize())
        return device_fail(r);
    return FA2_OK;
}

fa2_status runner_fwd(void *runner_ctx, double *seconds)
{
    runner *r = runner_ctx;
    fa2_status st = poison_outputs(r);
    if (st != FA2_OK)
        return st;
    const double t0 = timing_now();
    st = fa2_fwd(&r->fwd, r->backend);
    if (st != FA2_OK)
        return lib_fail(r, st);
    if (r->on_device && device_synchronize() != 0)
        return device_fail(r);
    *seconds = timing_now() - t0;
    return FA2_OK;
}

fa2_status runner_fetch(runner *r)
{
    if (!r->on_device)
        return FA2_OK;
    if (device_download(r->prob->o, r->d_o, r->prob->q_bytes) ||
        device_download(r->prob->lse, r->d_lse, r->prob->lse_bytes))
        return device_fail(r);
    return FA2_OK;
}

const char *runner_error(const runner *r) { return r->error; }
