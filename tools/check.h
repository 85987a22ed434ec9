/* check.h — is a backend's output right? Its max abs error against the
 * float64 oracle must be at most twice that of standard attention computed
 * in the same dtype, plus a tiny floor for the cases where standard
 * attention is exact (DESIGN.md, "Agreement"); the same for LSE. */
#ifndef FA2_TOOLS_CHECK_H
#define FA2_TOOLS_CHECK_H

#include "fa2.h"
#include "problem.h"

typedef struct check_result {
    double max_abs_err;      /* |O - O_oracle|, the backend under test   */
    double ref_max_abs_err;  /* the same for standard attention          */
    double bound;            /* 2 * ref_max_abs_err + floor               */
    double lse_max_abs_err;  /* |LSE - LSE_oracle|                        */
    double ref_lse_max_abs_err;
    double lse_bound;
    int passed;
} check_result;

/* The absolute floors of the bounds, per output dtype (LSE is float32). */
double check_floor(fa2_dtype t);
double check_lse_floor(void);

/* Check the forward outputs in p->o and p->lse: run the oracle (float64
 * outputs) and standard attention on p's inputs with num_threads workers.
 * A library error is returned as is (fa2_last_error() says why). */
fa2_status check_fwd(const problem *p, int num_threads, check_result *r);

#endif
