/* run_opts.h — the options of `fa2 run`: parsing, checking, --help. */
#ifndef FA2_TOOLS_RUN_OPTS_H
#define FA2_TOOLS_RUN_OPTS_H

#include "problem.h"

#include <stdio.h>

/* The passes `fa2 run --pass` names. */
typedef enum run_pass {
    RUN_PASS_FWD = 0,
    RUN_PASS_BWD,
    RUN_PASS_FWD_BWD,
    RUN_PASS_COUNT
} run_pass;

extern const char *const run_pass_names[RUN_PASS_COUNT]; /* "fwd", ... */

#define RUN_BACKEND_AUTO (-1) /* CUDA if it works here, else tiled */

typedef struct run_opts {
    problem_spec spec;
    int backend;     /* an fa2_backend, or RUN_BACKEND_AUTO */
    run_pass pass;
    int threads;     /* CPU worker threads (backends and the check) */
    int deterministic; /* fa2_bwd_args.deterministic of the backward */
    int kvcache;     /* the forward through fa2_fwd_kvcache (RUNNER_KVCACHE) */
    int check;
    int json;
    int help;        /* --help was given: print run_usage, exit 0 */
} run_opts;

/* The embedded default problem: fp16, batch 1, 8 heads, seqlen 2048, head
 * dim 64, causal, seed 1, best backend, forward pass. Options change only
 * what they name (--no-causal turns the mask off). */
void run_opts_default(run_opts *o);

/* Parse argv (the arguments after "run"). Returns 0, or 2 after printing
 * what is wrong and a usage line on stderr. With no arguments at all the
 * check is on. */
int run_opts_parse(run_opts *o, int argc, char **argv);

void run_usage(FILE *f);

#endif
