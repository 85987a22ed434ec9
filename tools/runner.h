/* runner.h — runs the passes of one problem on one backend, in that
 * backend's memory: the host buffers of the problem for the CPU backends,
 * GPU copies of them for CUDA. Outputs come back into the problem's host
 * buffers (runner_fetch), where the check reads them. */
#ifndef FA2_TOOLS_RUNNER_H
#define FA2_TOOLS_RUNNER_H

#include "fa2.h"
#include "problem.h"

typedef struct runner {
    fa2_backend backend;
    problem *prob;
    int on_device;
    /* GPU copies (CUDA only) */
    void *d_q, *d_k, *d_v, *d_o;
    float *d_lse;
    int32_t *d_cu_q, *d_cu_k;
    fa2_fwd_args fwd; /* over host or device memory */
    char error[512];  /* why the last call failed */
} runner;

/* Check that the backend is available, copy the inputs where it needs
 * them. On failure the runner holds nothing and runner_error() says why. */
fa2_status runner_open(runner *r, fa2_backend backend, problem *p,
                       int num_threads);
void runner_close(runner *r);

/* One forward pass: poison the outputs, run, wait for it to finish.
 * *seconds is the run alone. (ctx is a runner; timing_fn-compatible.) */
fa2_status runner_fwd(void *runner_ctx, double *seconds);

/* Bring the outputs into the problem's host buffers. */
fa2_status runner_fetch(runner *r);

/* A sentence for the last failure (library or device). */
const char *runner_error(const runner *r);

#endif
