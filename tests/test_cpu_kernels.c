/*
 * test_cpu_kernels.c — the tiled mirror's tile-product micro-kernels
 * (cpu/tile_product*.c): every kernel this CPU can run computes each
 * product with the summation order tile_product.h fixes (a float32 fmaf
 * chain over p in order, from zero, then one add into C for "+="), so it
 * equals a naive reference loop bit for bit, on every shape (edge blocks,
 * masked columns), both operand layouts and both modes, and writes nothing
 * outside C; and FA2_CPU_KERNEL picks, or refuses with a sentence.
 *
 * `test_cpu_kernels --can-run` exits 0 if the kernel FA2_CPU_KERNEL names
 * can run here, 77 if not (tests/cpu_kernels.sh uses it to run the mirror
 * suites under each kernel).
 */
#include "config.h"
#include "testlib.h"

#include "tile_product.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kernel_names[] = {"portable", "avx2", "avx512"};
#define N_KERNELS 3

/* The kernel `name`, if this CPU can run it (FA2_CPU_KERNEL is the way). */
static int kernel_named(const char *name, fa2_tile_kernel *k)
{
    setenv("FA2_CPU_KERNEL", name, 1);
    const fa2_status st = fa2_cpu_tile_kernel(k);
    unsetenv("FA2_CPU_KERNEL");
    return st == FA2_OK;
}

/* C(i, j) op= sum_p A(i, p) B(p, j), as tile_product.h defines it */
static void reference(const fa2_tile_product *g)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < g->k; p++)
                s = fmaf(g->a[i * g->a_rs + p * g->a_cs], g->b[p * g->ldb + j], s);
            float *c = &g->c[i * g->ldc + j];
            *c = g->accumulate ? *c + s : s;
        }
}

static float draw(tl_rng *r)
{
    /* mixed magnitudes, so that rounding differences would show */
    return (float)(tl_normal(r) * ldexp(1.0, (int)tl_range(r, -6, 6)));
}

START_TEST(every_kernel_equals_the_reference_loop_bit_for_bit)
{
    static const int64_t sizes[] = {1, 2, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 128};
    const int n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    tl_rng r;
    TL_RNG(&r);
    int ran = 0;
    for (int kk = 0; kk < N_KERNELS; kk++) {
        fa2_tile_kernel kern;
        if (!kernel_named(kernel_names[kk], &kern))
            continue;
        ran++;
        for (int t = 0; t < 120; t++) {
            const int64_t m = sizes[tl_range(&r, 0, n_sizes - 1)];
            const int64_t n = sizes[tl_range(&r, 0, n_sizes - 1)];
            const int64_t k = sizes[tl_range(&r, 0, n_sizes - 1)];
            const int trans = (int)tl_range(&r, 0, 1), acc = (int)tl_range(&r, 0, 1);
            const int64_t pad = tl_range(&r, 0, 9);
            const int64_t lda = (trans ? m : k) + pad, ldb = n + pad, ldc = n + pad;
            const int64_t a_rows = trans ? k : m;
            float *a = malloc(sizeof(float) * (size_t)(a_rows * lda));
            float *b = malloc(sizeof(float) * (size_t)(k * ldb));
            float *c = malloc(sizeof(float) * (size_t)(m * ldc));
            float *want = malloc(sizeof(float) * (size_t)(m * ldc));
            ck_assert(a && b && c && want);
            for (int64_t x = 0; x < a_rows * lda; x++)
                a[x] = x % lda < (trans ? m : k) ? draw(&r) : NAN; /* padding: NaN */
            for (int64_t x = 0; x < k * ldb; x++)
                b[x] = x % ldb < n ? draw(&r) : NAN;
            for (int64_t x = 0; x < m * ldc; x++)
                c[x] = x % ldc < n ? draw(&r) : 12345.0f; /* padding: a sentinel */
            memcpy(want, c, sizeof(float) * (size_t)(m * ldc));
            fa2_tile_product g = {m, n, k, a, trans ? 1 : lda, trans ? lda : 1,
                                  b, ldb, c, ldc, acc};
            kern.product(&g);
            g.c = want;
            reference(&g);
            TL_CHECK(memcmp(c, want, sizeof(float) * (size_t)(m * ldc)) == 0,
                     "kernel %s, m %lld n %lld k %lld, %s, %s, pad %lld: differs "
                     "from the reference loop (or wrote outside C)", kern.name,
                     (long long)m, (long long)n, (long long)k, trans ? "A^T" : "A",
                     acc ? "C +=" : "C =", (long long)pad);
            free(a); free(b); free(c); free(want);
        }
    }
    ck_assert_int_ge(ran, 1); /* portable always runs */
}
END_TEST

START_TEST(the_default_kernel_is_the_widest_this_cpu_runs)
{
    fa2_tile_kernel def, k;
    unsetenv("FA2_CPU_KERNEL");
    ck_assert_int_eq(fa2_cpu_tile_kernel(&def), FA2_OK);
    const char *best = "portable";
    for (int kk = 0; kk < N_KERNELS; kk++)
        if (kernel_named(kernel_names[kk], &k))
            best = kernel_names[kk];
    ck_assert_str_eq(def.name, best);
    ck_assert_str_eq(fa2_cpu_tile_kernel_name(), best);
}
END_TEST

START_TEST(an_unknown_fa2_cpu_kernel_is_refused_with_a_sentence)
{
    float q[8 * 8] = {0}, o[8 * 8];
    fa2_fwd_args a;
    fa2_fwd_args_init(&a);
    a.q = fa2_tensor_4d(q, FA2_DTYPE_FP32, 1, 8, 1, 8);
    a.k = a.v = a.q;
    a.o = fa2_tensor_4d(o, FA2_DTYPE_FP32, 1, 8, 1, 8);
    setenv("FA2_CPU_KERNEL", "sse9", 1);
    const fa2_status st = fa2_fwd(&a, FA2_BACKEND_CPU_TILED);
    unsetenv("FA2_CPU_KERNEL");
    ck_assert_int_eq(st, FA2_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(fa2_last_error(), "sse9"));
    ck_assert_int_eq(fa2_fwd(&a, FA2_BACKEND_CPU_TILED), FA2_OK);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--can-run") == 0) {
        fa2_tile_kernel k;
        return fa2_cpu_tile_kernel(&k) == FA2_OK ? 0 : 77;
    }
    Suite *s = suite_create("cpu_kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_kernel_equals_the_reference_loop_bit_for_bit);
    tcase_add_test(tc, the_default_kernel_is_the_widest_this_cpu_runs);
    tcase_add_test(tc, an_unknown_fa2_cpu_kernel_is_refused_with_a_sentence);
    suite_add_tcase(s, tc);
    return tl_run_suite(s);
}
