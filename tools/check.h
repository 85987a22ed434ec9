/* check.h — is a backend's output right? Its max abs error against the
 * float64 oracle must be at most twice that of standard attention computed
 * in the same dtype, plus a tiny floor for the cases where standard
 * attention is exact (doc/design.md, "Agreement"); the same for LSE, and for
 * each of the backward's gradients dQ, dK, dV. */
#ifndef FA2_TOOLS_CHECK_H
#define FA2_TOOLS_CHECK_H

#include "fa2.h"
#include "problem.h"

/* One output's errors. */
typedef struct check_error {
    double err;     /* max |x - oracle|, the backend under test        */
    double ref_err; /* the same for standard attention                 */
    double bound;   /* 2 * ref_err + floor                              */
} check_error;

enum { CHECK_DQ = 0, CHECK_DK, CHECK_DV, CHECK_GRADS };
extern const char *const check_grad_names[CHECK_GRADS]; /* "dq", "dk", "dv" */

typedef struct check_result {
    int fwd_checked; /* O and LSE below are set                         */
    double max_abs_err;      /* |O - O_oracle|, the backend under test   */
    double ref_max_abs_err;  /* the same for standard attention          */
    double bound;            /* 2 * ref_max_abs_err + floor               */
    double lse_max_abs_err;  /* |LSE - LSE_oracle|                        */
    double ref_lse_max_abs_err;
    double lse_bound;
    int bwd_checked; /* grad[] is set                                   */
    check_error grad[CHECK_GRADS]; /* dq, dk, dv                        */
    int passed;      /* every output checked is within its bound        */
} check_result;

/* The absolute floors of the bounds, per output dtype (LSE is float32;
 * the gradients have the dtype of q and use check_floor). */
double check_floor(fa2_dtype t);
double check_lse_floor(void);
/* A gradient's floor: see check.c (own/all: max |exact| of this gradient
 * and of all three). */
double check_grad_floor(fa2_dtype t, double own_magnitude, double all_magnitude);

/* Check the forward outputs in p->o and p->lse: run the oracle (float64
 * outputs) and standard attention on p's inputs with num_threads workers.
 * A library error is returned as is (fa2_last_error() says why). */
fa2_status check_fwd(const problem *p, int num_threads, check_result *r);

/* Check the gradients in p->dq, p->dk, p->dv of the loss whose output
 * gradient is p->dout: against the oracle's float64 gradients, with
 * standard attention's backward (over its own forward's o and lse, same
 * dtype) as the yardstick. */
fa2_status check_bwd(const problem *p, int num_threads, check_result *r);

/* Both: O, LSE, dQ, dK, dV. */
fa2_status check_fwd_bwd(const problem *p, int num_threads, check_result *r);

#endif
