/* fa2_check.h — the agreement check of the numerics contract
 * (doc/design.md, "Agreement"): a backend's outputs against the float64
 * oracle, with standard attention computed in the same dtype as the
 * yardstick. An output passes if its max abs error is at most twice
 * standard attention's, plus a tiny floor for the cases where standard
 * attention is exact; the same for LSE, and for each of the backward's
 * gradients dQ, dK, dV. Used by `fa2 run --check`; a layer above the entry
 * points (it runs the oracle and standard attention through them). */
#ifndef FA2_CHECK_H
#define FA2_CHECK_H

#include "fa2.h"

/* One output's errors. */
typedef struct fa2_check_error {
    double err;     /* max |x - oracle|, the backend under test        */
    double ref_err; /* the same for standard attention                 */
    double bound;   /* 2 * ref_err + floor                              */
} fa2_check_error;

enum { FA2_CHECK_DQ = 0, FA2_CHECK_DK, FA2_CHECK_DV, FA2_CHECK_GRADS };
extern const char *const fa2_check_grad_names[FA2_CHECK_GRADS]; /* "dq", ... */

typedef struct fa2_check_result {
    int fwd_checked; /* O and LSE below are set                         */
    double max_abs_err;      /* |O - O_oracle|, the backend under test   */
    double ref_max_abs_err;  /* the same for standard attention          */
    double bound;            /* 2 * ref_max_abs_err + floor               */
    double lse_max_abs_err;  /* |LSE - LSE_oracle|                        */
    double ref_lse_max_abs_err;
    double lse_bound;
    int bwd_checked; /* grad[] is set                                   */
    fa2_check_error grad[FA2_CHECK_GRADS];
    int passed;      /* every part checked is within its bound          */
    int dsinks_checked; /* the backward had sinks: dsinks below is set  */
    fa2_check_error dsinks; /* over the heads' sink gradients           */
} fa2_check_result;

/* The absolute floors of the bounds: O (by dtype), LSE, and a gradient's
 * (with its own largest magnitude and the largest of all three). */
double fa2_check_floor(fa2_dtype t);
double fa2_check_lse_floor(void);
double fa2_check_grad_floor(fa2_dtype t, double own_magnitude,
                            double all_magnitude);

/* Check the forward's outputs a->o and a->lse (host memory, dense as
 * fa2_tensor_4d / fa2_tensor_lse make them) into *r, which the caller
 * zeroes before the first check; r->passed covers every part checked so
 * far. */
fa2_status fa2_check_fwd(const fa2_fwd_args *a, fa2_check_result *r);
/* The same for the backward's a->dq, a->dk, a->dv. */
fa2_status fa2_check_bwd(const fa2_bwd_args *a, fa2_check_result *r);

#endif
