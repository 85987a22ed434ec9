/* runner.c — see runner.h. */
#include "config.h"
#include "runner.h"
#include "device.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
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
    /* ALiBi slopes and sink logits: float32 [Hq], read by the kernels */
    const size_t h_bytes = sizeof(float) * (size_t)p->spec.heads_q;
    if (r->fwd.alibi_slopes &&
        (device_alloc((void **)&r->d_slopes, h_bytes) ||
         device_upload(r->d_slopes, r->fwd.alibi_slopes, h_bytes)))
        return device_fail(r);
    if (r->fwd.sinks && (device_alloc((void **)&r->d_sinks, h_bytes) ||
                         device_upload(r->d_sinks, r->fwd.sinks, h_bytes)))
        return device_fail(r);
    if (r->d_slopes)
        r->fwd.alibi_slopes = r->d_slopes;
    if (r->d_sinks)
        r->fwd.sinks = r->d_sinks;
    if (r->with_bwd &&
        (device_alloc(&r->d_dout, p->q_bytes) || device_alloc(&r->d_dq, p->q_bytes) ||
         device_alloc(&r->d_dk, p->kv_bytes) || device_alloc(&r->d_dv, p->kv_bytes) ||
         device_upload(r->d_dout, p->dout, p->q_bytes)))
        return device_fail(r);
    if (r->with_bwd && r->d_sinks && device_alloc((void **)&r->d_dsinks, h_bytes))
        return device_fail(r);
    return FA2_OK;
}

/* RUNNER_KVCACHE: the forward's tensors as a KV-cache call, every cache
 * full (cache_seqlens = seqlen_k), no append. */
static fa2_status set_kvcache_args(runner *r)
{
    const fa2_fwd_args *f = &r->fwd;
    const size_t bytes = sizeof(int32_t) * (size_t)f->q.shape[0];
    r->lens = malloc(bytes);
    if (!r->lens)
        return lib_fail(r, FA2_ERR_OUT_OF_MEMORY);
    for (int64_t b = 0; b < f->q.shape[0]; b++)
        r->lens[b] = (int32_t)f->k.shape[1];
    if (r->on_device && (device_alloc((void **)&r->d_lens, bytes) ||
                         device_upload(r->d_lens, r->lens, bytes)))
        return device_fail(r);
    fa2_kvcache_args *a = &r->kv;
    fa2_kvcache_args_init(a);
    a->q = f->q;
    a->k_cache = f->k;
    a->v_cache = f->v;
    a->o = f->o;
    a->lse = f->lse;
    a->cache_seqlens = r->on_device ? r->d_lens : r->lens;
    a->softmax_scale = f->softmax_scale;
    a->causal = f->causal;
    a->window_left = f->window_left;
    a->window_right = f->window_right;
    a->num_threads = f->num_threads;
    a->stream = f->stream;
    return FA2_OK;
}

/* The backward's arguments over the same memory as the forward's. */
static void set_bwd_args(runner *r, unsigned flags)
{
    fa2_bwd_args *b = &r->bwd;
    const fa2_fwd_args *f = &r->fwd;
    *b = problem_bwd_args(r->prob, f->num_threads);
    b->q.data = f->q.data;
    b->k.data = f->k.data;
    b->v.data = f->v.data;
    b->o.data = f->o.data;
    b->lse.data = f->lse.data;
    b->cu_seqlens_q = f->cu_seqlens_q;
    b->cu_seqlens_k = f->cu_seqlens_k;
    if (r->on_device) {
        b->dout.data = r->d_dout;
        b->dq.data = r->d_dq;
        b->dk.data = r->d_dk;
        b->dv.data = r->d_dv;
        /* the modifiers' arrays: the device copies open_device made */
        b->alibi_slopes = f->alibi_slopes;
        b->sinks = f->sinks;
        if (b->dsinks)
            b->dsinks = r->d_dsinks;
    }
    b->deterministic = (flags & RUNNER_DETERMINISTIC) ? 1 : 0;
}

fa2_status runner_open(runner *r, fa2_backend backend, problem *p,
                       int num_threads, unsigned flags)
{
    memset(r, 0, sizeof *r);
    r->backend = backend;
    r->prob = p;
    r->on_device = backend == FA2_BACKEND_CUDA;
    r->with_bwd = (flags & RUNNER_BWD) != 0;
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
    if (r->with_bwd)
        set_bwd_args(r, flags);
    r->kvcache = (flags & RUNNER_KVCACHE) != 0;
    if (r->kvcache && (st = set_kvcache_args(r)) != FA2_OK) {
        char why[sizeof r->error];
        memcpy(why, r->error, sizeof why);
        runner_close(r);
        memcpy(r->error, why, sizeof why);
        return st;
    }
    /* the CUDA backward's workspace, owned here like every other buffer:
     * the library's own would come from the stream-ordered pool, which
     * maps its memory again after each synchronisation (doc/api.md) */
    size_t ws = 0;
    if (r->with_bwd && r->on_device &&
        fa2_cuda_bwd_workspace_size(&r->bwd, &ws) == FA2_OK) {
        if (device_alloc(&r->d_workspace, ws)) {
            char why[sizeof r->error];
            device_fail(r);
            memcpy(why, r->error, sizeof why);
            runner_close(r);
            memcpy(r->error, why, sizeof why);
            return FA2_ERR_OUT_OF_MEMORY;
        }
        r->bwd.workspace = r->d_workspace;
        r->bwd.workspace_bytes = ws;
    }
    return FA2_OK;
}

void runner_close(runner *r)
{
    void *bufs[] = {r->d_q, r->d_k, r->d_v, r->d_o, r->d_lse, r->d_cu_q, r->d_cu_k,
                    r->d_dout, r->d_dq, r->d_dk, r->d_dv, r->d_workspace, r->d_lens,
                    r->d_slopes, r->d_sinks, r->d_dsinks};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        device_free(bufs[i]);
    free(r->lens);
    memset(r, 0, sizeof *r);
}

/* Fill the outputs, or with grads the gradients, with NaN bytes (all ones
 * in every dtype): an element the backend does not write fails the check. */
static fa2_status poison(runner *r, int grads)
{
    const problem *p = r->prob;
    if (!r->on_device) {
        (grads ? problem_poison_grads : problem_poison_outputs)(r->prob);
        return FA2_OK;
    }
    void *const buf[4] = {grads ? r->d_dq : r->d_o, grads ? r->d_dk : (void *)r->d_lse,
                          grads ? r->d_dv : NULL, grads ? (void *)r->d_dsinks : NULL};
    const size_t bytes[4] = {p->q_bytes, grads ? p->kv_bytes : p->lse_bytes, p->kv_bytes,
                             sizeof(float) * (size_t)p->spec.heads_q};
    for (int i = 0; i < 4; i++)
        if (buf[i] && device_fill_bytes(buf[i], 0xff, bytes[i]))
            return device_fail(r);
    return device_synchronize() ? device_fail(r) : FA2_OK;
}

/* The calls of one timed run: the forward, the backward or both, then
 * waiting for the device. */
static fa2_status run_timed(runner *r, int fwd, int bwd, double *seconds)
{
    fa2_status st;
    const double t0 = timing_now();
    if (fwd && (st = r->kvcache ? fa2_fwd_kvcache(&r->kv, r->backend)
                                : fa2_fwd(&r->fwd, r->backend)) != FA2_OK)
        return lib_fail(r, st);
    if (bwd && (st = fa2_bwd(&r->bwd, r->backend)) != FA2_OK)
        return lib_fail(r, st);
    if (r->on_device && device_synchronize() != 0)
        return device_fail(r);
    *seconds = timing_now() - t0;
    return FA2_OK;
}

fa2_status runner_fwd(void *runner_ctx, double *seconds)
{
    runner *r = runner_ctx;
    fa2_status st = poison(r, 0);
    return st != FA2_OK ? st : run_timed(r, 1, 0, seconds);
}

fa2_status runner_prepare_bwd(void *runner_ctx)
{
    double seconds;
    return runner_fwd(runner_ctx, &seconds);
}

fa2_status runner_bwd(void *runner_ctx, double *seconds)
{
    runner *r = runner_ctx;
    fa2_status st = poison(r, 1);
    return st != FA2_OK ? st : run_timed(r, 0, 1, seconds);
}

fa2_status runner_fwd_bwd(void *runner_ctx, double *seconds)
{
    runner *r = runner_ctx;
    fa2_status st = poison(r, 0);
    if (st == FA2_OK)
        st = poison(r, 1);
    return st != FA2_OK ? st : run_timed(r, 1, 1, seconds);
}

fa2_status runner_fetch(runner *r)
{
    const problem *p = r->prob;
    if (!r->on_device)
        return FA2_OK;
    if (device_download(p->o, r->d_o, p->q_bytes) ||
        device_download(p->lse, r->d_lse, p->lse_bytes))
        return device_fail(r);
    if (r->with_bwd &&
        (device_download(p->dq, r->d_dq, p->q_bytes) ||
         device_download(p->dk, r->d_dk, p->kv_bytes) ||
         device_download(p->dv, r->d_dv, p->kv_bytes)))
        return device_fail(r);
    if (r->with_bwd && r->d_dsinks &&
        device_download(p->dsinks, r->d_dsinks,
                        sizeof(float) * (size_t)p->spec.heads_q))
        return device_fail(r);
    return FA2_OK;
}

const char *runner_error(const runner *r) { return r->error; }
