/* runner.h — runs the passes of one problem on one backend, in that
 * backend's memory: the host buffers of the problem for the CPU backends,
 * GPU copies of them for CUDA. Outputs come back into the problem's host
 * buffers (runner_fetch), where the check reads them. */
#ifndef FA2_TOOLS_RUNNER_H
#define FA2_TOOLS_RUNNER_H

#include "fa2.h"
#include "problem.h"

/* runner_open's flags */
#define RUNNER_BWD 1u           /* the backward will run: dout, dq, dk, dv  */
#define RUNNER_DETERMINISTIC 2u /* fa2_bwd_args.deterministic = 1          */
#define RUNNER_KVCACHE 4u       /* the forward through fa2_fwd_kvcache: k, v
                                   as a full contiguous cache of seqlen_k
                                   keys, q its last tokens (the same
                                   attention; fixed lengths, no modifiers) */

typedef struct runner {
    fa2_backend backend;
    problem *prob;
    int on_device;
    int with_bwd;
    /* GPU copies (CUDA only) */
    void *d_q, *d_k, *d_v, *d_o;
    float *d_lse;
    int32_t *d_cu_q, *d_cu_k;
    void *d_dout, *d_dq, *d_dk, *d_dv;
    float *d_slopes, *d_sinks; /* the score modifiers' [Hq] arrays */
    float *d_dsinks;           /* the backward's sink gradient [Hq]   */
    void *d_workspace; /* the CUDA backward's (fa2_cuda_bwd_workspace_size) */
    int kvcache;       /* RUNNER_KVCACHE                                    */
    fa2_kvcache_args kv; /* over the forward's tensors                     */
    int32_t *lens, *d_lens; /* cache_seqlens: host, device                 */
    fa2_fwd_args fwd; /* over host or device memory */
    fa2_bwd_args bwd; /* the same tensors, and the gradients (RUNNER_BWD) */
    char error[512];  /* why the last call failed */
} runner;

/* Check that the backend is available, copy the inputs where it needs
 * them. With RUNNER_BWD the problem's gradient buffers must exist
 * (problem_alloc_grads). On failure the runner holds nothing and
 * runner_error() says why. */
fa2_status runner_open(runner *r, fa2_backend backend, problem *p,
                       int num_threads, unsigned flags);
void runner_close(runner *r);

/* One forward pass: poison o and lse, run, wait for it to finish.
 * *seconds is the run alone. (ctx is a runner; timing_fn-compatible.) */
fa2_status runner_fwd(void *runner_ctx, double *seconds);

/* The forward the backward needs (o and lse), run once, untimed. */
fa2_status runner_prepare_bwd(void *runner_ctx);

/* One backward pass over the o and lse runner_prepare_bwd left: poison
 * dq, dk and dv, run, wait. *seconds is fa2_bwd alone. */
fa2_status runner_bwd(void *runner_ctx, double *seconds);

/* Forward then backward: poison every output, run both, wait. *seconds
 * is both passes together. */
fa2_status runner_fwd_bwd(void *runner_ctx, double *seconds);

/* Bring the outputs (o, lse and with RUNNER_BWD dq, dk, dv) into the
 * problem's host buffers. */
fa2_status runner_fetch(runner *r);

/* A sentence for the last failure (library or device). */
const char *runner_error(const runner *r);

#endif
