/* tile_product.h — the tiled mirror's tile products (S = Q K^T, acc += P V
 * and the backward's five), computed by register-blocked micro-kernels that
 * do not depend on a BLAS or on its CPU detection.
 *
 * One product is C = A B or C += A B in float32, with
 *     A(i, p) = a[i * a_rs + p * a_cs]     (so A or A^T, row-major),
 *     B(p, j) = b[p * ldb + j],  C(i, j) = c[i * ldc + j].
 *
 * Summation order, the same in every kernel so that they agree bit for
 * bit: each C(i, j) is one float32 sum over p = 0, 1, ..., k-1 in order, a
 * fused multiply-add per term, started from zero; "C += A B" then adds that
 * sum to the old C(i, j) with one rounding (as BLAS's beta = 1 does). The
 * operands are float32 tiles that already hold the values the numerics
 * contract asks for (fp16/bf16 inputs widened exactly, P and dS rounded to
 * the input dtype), so products of fp16/bf16 values are exact and the sums
 * are float32 sums: the tensor cores' semantics.
 *
 * Which kernel runs is chosen per call from the CPU's features (AVX-512F,
 * AVX2 with FMA, else portable C); FA2_CPU_KERNEL=avx512|avx2|portable
 * forces one (tests run the suites under each). Nothing is cached: the
 * choice costs a getenv and a cpuid look-up per call. */
#ifndef FA2_TILE_PRODUCT_H
#define FA2_TILE_PRODUCT_H

#include "fa2.h"

#include <stdint.h>

typedef struct fa2_tile_product {
    int64_t m, n, k;
    const float *a;
    int64_t a_rs, a_cs;
    const float *b;
    int64_t ldb;
    float *c;
    int64_t ldc;
    int accumulate; /* 0: C = A B;  1: C += A B */
} fa2_tile_product;

typedef void (*fa2_tile_product_fn)(const fa2_tile_product *g);

/* One micro-kernel family. */
typedef struct fa2_tile_kernel {
    const char *name; /* "avx512", "avx2", "portable" */
    fa2_tile_product_fn product;
} fa2_tile_kernel;

/* The kernel for this CPU (or the one FA2_CPU_KERNEL names). FA2_OK, or
 * FA2_ERR_UNSUPPORTED with a sentence when FA2_CPU_KERNEL names a kernel
 * this CPU or build cannot run, or one that does not exist. */
fa2_status fa2_cpu_tile_kernel(fa2_tile_kernel *out);

/* The name of the kernel fa2_cpu_tile_kernel would pick now, or a sentence
 * starting "error:" (for `fa2 bench` and bench/cpu_compare.py). */
const char *fa2_cpu_tile_kernel_name(void);

/* The kernels themselves; the x86 ones are NULL-safe to name but must run
 * only where fa2_cpu_tile_kernel allows. */
void fa2_tile_product_portable(const fa2_tile_product *g);
/* FA2_NO_X86_KERNELS: the fuzz build (configure --enable-fuzzing) leaves
 * them out; clang 14 spends over 7 minutes compiling the AVX-512 kernel
 * under the fuzzer's instrumentation, and the ASan build covers them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(FA2_NO_X86_KERNELS)
#define FA2_HAVE_X86_KERNELS 1
void fa2_tile_product_avx2(const fa2_tile_product *g);
void fa2_tile_product_avx512(const fa2_tile_product *g);
#endif

/* S^T = K Q^T style helpers: the two shapes the tiled passes use. */

/* C = A B (accumulate 0) or C += A B, A row-major [m][k] with leading
 * dimension lda. */
static inline void fa2_product_nn(const fa2_tile_kernel *kern, int64_t m,
                                  int64_t n, int64_t k, const float *a,
                                  int64_t lda, const float *b, int64_t ldb,
                                  float *c, int64_t ldc, int accumulate)
{
    const fa2_tile_product g = {m, n, k, a, lda, 1, b, ldb, c, ldc, accumulate};
    kern->product(&g);
}

/* C = A^T B or C += A^T B, A stored row-major [k][m] with leading
 * dimension lda. */
static inline void fa2_product_tn(const fa2_tile_kernel *kern, int64_t m,
                                  int64_t n, int64_t k, const float *a,
                                  int64_t lda, const float *b, int64_t ldb,
                                  float *c, int64_t ldc, int accumulate)
{
    const fa2_tile_product g = {m, n, k, a, 1, lda, b, ldb, c, ldc, accumulate};
    kern->product(&g);
}

#endif /* FA2_TILE_PRODUCT_H */
