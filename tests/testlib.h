/*
 * testlib.h — what the Check suites share: a seeded random generator (fresh
 * data every run, the seed printed on failure and taken from FA2_TEST_SEED
 * to reproduce one), strided tensors (contiguous or not) whose memory
 * outside the view is poisoned, random attention problems, poisoned outputs,
 * the error of an output against the float64 oracle, and the numerics
 * contract of doc/design.md:
 *
 *     max|impl - oracle| <= 2 * max|standard - oracle| + floor(dtype)
 *
 * for O and for LSE, where LSE must also be +inf exactly on the rows the
 * oracle finds +inf (rows that see no key) and finite everywhere else.
 */
#ifndef FA2_TESTLIB_H
#define FA2_TESTLIB_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "fa2.h"
#include "fa2_internal.h"
#include "fa2_cpu.h" /* the float64 oracle (fa2_oracle_fwd_f64 ...) */

/* ---- random numbers ----------------------------------------------------- */

typedef struct tl_rng {
    uint64_t s[4];
} tl_rng;

/* The run's seed: FA2_TEST_SEED if set, else drawn from the clock. */
uint64_t tl_seed(void);
/* A generator for one test: a function of the run's seed, a tag (the test's
 * name) and an index (the loop index), so that a test reproduces from the
 * seed alone whatever else runs before it. */
void tl_rng_init(tl_rng *r, const char *tag, int64_t index);
/* A generator independent of the run's seed (for fixed test grids). */
void tl_rng_fixed(tl_rng *r, uint64_t seed);
uint64_t tl_u64(tl_rng *r);
double tl_unif(tl_rng *r);                           /* [0, 1)          */
int64_t tl_range(tl_rng *r, int64_t lo, int64_t hi); /* lo .. hi inclusive */
double tl_normal(tl_rng *r);                         /* N(0, 1)         */

/* The generator of the current test: tag = the test function, index = _i. */
#define TL_RNG(r) tl_rng_init((r), __func__, _i)

/* Run a suite (Check's CK_ENV verbosity); print the seed first, and again
 * with a hint to reproduce if anything failed. Returns the exit status. */
int tl_run_suite(Suite *s);

/* ---- strided tensors ---------------------------------------------------- */

/* How a tensor lies in memory. q/k/v/o are [B, N, H, d]; lse is [B, H, N]. */
typedef enum tl_layout {
    TL_CONTIGUOUS = 0, /* dense row-major                                   */
    TL_PADDED,         /* gaps between heads, rows and batches              */
    TL_SEQ_MAJOR,      /* memory order [N, B, H, d] (lse: [H, B, N])        */
    TL_HEAD_MAJOR,     /* memory order [B, H, N, d] with gaps (lse: padded) */
    TL_LAYOUT_COUNT
} tl_layout;

const char *tl_layout_name(tl_layout l);

typedef struct tl_tensor {
    fa2_tensor t;           /* the view handed to fa2                    */
    int ndim;               /* 4 for q/k/v/o, 3 for lse                  */
    void *base;             /* the allocation                            */
    int64_t n_alloc;        /* its size in elements                      */
    unsigned char *in_view; /* n_alloc flags: element belongs to the view */
} tl_tensor;

/* Allocate a view of the given shape and layout; every element of the
 * allocation (the view, the gaps and a tail) is poison. */
void tl_tensor_alloc(tl_tensor *x, fa2_dtype dt, int ndim, const int64_t *shape,
                     tl_layout layout);
void tl_tensor_free(tl_tensor *x);

/* The poison: a NaN with a payload no computation produces. */
uint32_t tl_poison_bits(fa2_dtype dt);
/* Poison every element of the allocation. */
void tl_tensor_poison(tl_tensor *x);
/* Fill the view with N(0, sigma^2) values rounded to the dtype, never zero;
 * the gaps stay poison (so reading them would show up as NaN). */
void tl_tensor_fill_normal(tl_tensor *x, tl_rng *r, double sigma);

/* Element access by logical index (ndim indices; lse uses 3). */
int64_t tl_offset(const tl_tensor *x, const int64_t *idx);
double tl_get(const tl_tensor *x, const int64_t *idx);
void tl_set(tl_tensor *x, const int64_t *idx, double v); /* rounds to dtype */
uint32_t tl_get_bits(const tl_tensor *x, const int64_t *idx);
/* Logical elements in the view, and the flat index -> multi-index map. */
int64_t tl_numel(const tl_tensor *x);
void tl_unflatten(const tl_tensor *x, int64_t flat, int64_t *idx);

/* Bits of every view element in logical order (malloc'd, n = tl_numel). */
uint32_t *tl_view_bits(const tl_tensor *x);
/* A copy of the whole allocation, and whether it is still unchanged. */
void *tl_alloc_snapshot(const tl_tensor *x);
int tl_alloc_unchanged(const tl_tensor *x, const void *snapshot);
/* Elements outside the view whose poison was overwritten. */
int64_t tl_outside_touched(const tl_tensor *x);

/* ---- attention problems --------------------------------------------------- */

#define TL_MAX_SEQS 8

typedef struct tl_spec {
    fa2_dtype dtype;
    int64_t batch;              /* fixed lengths: batch, seqlen_q, seqlen_k */
    int64_t seqlen_q, seqlen_k;
    int64_t num_seqs;           /* > 0: variable lengths lens_q/lens_k      */
    int64_t lens_q[TL_MAX_SEQS], lens_k[TL_MAX_SEQS];
    int64_t heads_q, heads_kv, head_dim;
    int causal;
    int64_t window_left, window_right;
    float softmax_scale;        /* 0: the default 1/sqrt(d)                  */
    double q_sigma;             /* std of q (k and v: 1); 0 means 1          */
    tl_layout layout;           /* q, k, v                                   */
    tl_layout out_layout;       /* o, lse                                    */
    int no_lse;                 /* lse.data = NULL                           */
    int block_m, block_n, num_threads;
    int64_t max_seqlen_q, max_seqlen_k;
} tl_spec;

/* Defaults: fp32, batch 1, seqlens 1, one head of dim 8, no mask, default
 * scale, contiguous, lse written, library-chosen tiles and threads. */
void tl_spec_init(tl_spec *s);
/* "fp16 d=64 B=2 Nq=65 Nk=130 H=8/2 causal win=(7,3) ..." for messages. */
void tl_spec_describe(const tl_spec *s, char *buf, size_t n);

typedef struct tl_problem {
    tl_spec spec;
    tl_tensor q, k, v, o, lse;
    int32_t cu_q[TL_MAX_SEQS + 1], cu_k[TL_MAX_SEQS + 1];
    int64_t total_q, total_k; /* dim 1 of q/o and k/v */
    fa2_fwd_args args;
    double *o64;   /* the oracle in float64, dense [B, Nq, Hq, d]; NULL until */
    double *lse64; /* tl_problem_oracle; lse64 dense [B, Hq, Nq]             */
    char desc[256];
} tl_problem;

/* Allocate and fill q, k, v with fresh random data; o and lse poisoned. */
void tl_problem_init(tl_problem *p, const tl_spec *s, tl_rng *r);
void tl_problem_free(tl_problem *p);
/* Compute the float64 oracle outputs (asserts success). */
void tl_problem_oracle(tl_problem *p);
/* Poison o and lse, then run the backend. */
fa2_status tl_problem_run(tl_problem *p, fa2_backend b);
/* Run and assert FA2_OK (message names the backend and the problem). */
void tl_problem_run_ok(tl_problem *p, fa2_backend b);

/* ---- errors against the oracle -------------------------------------------- */

typedef struct tl_err {
    double o_max;         /* max |o - oracle| over the view              */
    double lse_max;       /* max |lse - oracle| over rows finite in both  */
    int64_t o_unwritten;  /* view elements still NaN                     */
    int64_t o_outside;    /* elements outside the o view overwritten     */
    int64_t lse_unwritten;
    int64_t lse_outside;
    int64_t lse_inf_mismatch; /* +inf where the oracle is finite or back */
    int64_t masked_nonzero;   /* O != 0 on a row that sees no key        */
} tl_err;

/* Measure the current outputs of p against its oracle (computed if needed). */
void tl_measure(tl_problem *p, tl_err *e);
/* Assert: every output element written, nothing outside the views, LSE
 * +inf exactly where the oracle's is, O == 0 exactly on rows seeing no key. */
void tl_check_written(const tl_problem *p, const tl_err *e, const char *who);

/* Fold e into acc: the larger maxima, the summed counts. */
void tl_err_merge(tl_err *acc, const tl_err *e);
/* Output elements of O on rows that see at least one key (oracle LSE
 * finite): the sample the maximum error is taken over. */
int64_t tl_visible_outputs(tl_problem *p);

/* The floors of the bound (absolute, per dtype; see testlib.c). */
double tl_floor_o(fa2_dtype dt);
double tl_floor_lse(fa2_dtype dt);
/* Assert the doc/design.md bound for O and LSE: impl against standard. */
void tl_check_bound(const tl_problem *p, const tl_err *impl, const tl_err *std,
                    const char *who);

/* ---- small helpers ------------------------------------------------------ */

/* ck_assert_msg for hot loops: Check records a passing ck_assert too (a
 * write to the parent per call), so loops over millions of elements assert
 * only on failure. */
#define TL_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond))                                                          \
            ck_abort_msg(__VA_ARGS__);                                        \
    } while (0)

/* Whether the message of the last error contains `needle`. */
int tl_error_mentions(const char *needle);
/* Unit roundoff of a dtype: 2^-24, 2^-11, 2^-8. */
double tl_unit_roundoff(fa2_dtype dt);

#endif /* FA2_TESTLIB_H */
