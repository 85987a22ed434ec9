/* fa2_verify.h — `fa2 verify`'s engine (check/verify.c): another
 * implementation's .npy outputs against the float64 oracle and the bound. */
#ifndef FA2_VERIFY_H
#define FA2_VERIFY_H

#include <stdint.h>
#include <stdio.h>

typedef struct fa2_verify_opts {
    int causal;
    int64_t window_left, window_right; /* -1: unbounded                    */
    double scale;                      /* 0: 1/sqrt(head_dim)              */
    int64_t block_m, block_n;          /* the kernel's tiling; 0: default  */
    int dtype16;   /* what uint16 arrays hold: FA2_DTYPE_FP16/BF16; 0 unset */
    double fill;   /* the outputs' value before the kernel ran (NaN works)  */
    int worst;     /* worst elements listed per output, at most 16          */
} fa2_verify_opts;

/* Check DIR's files; the report goes to out, errors to err. 0: every
 * output passes; 1: one fails; 2: the files cannot be checked. */
int fa2_verify_dir(const char *dir, const fa2_verify_opts *opt, FILE *out, FILE *err);

#endif
