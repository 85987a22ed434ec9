/* tile_product.c — choosing the tile-product micro-kernel for this CPU, and
 * the portable C kernel every other one must agree with bit for bit (the
 * summation order is fixed in tile_product.h). */
#include "config.h"
#include "fa2_internal.h"
#include "tile_product.h"
#include "fa2_cpu_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Portable C: one output row at a time, in column chunks, each element a
 * float32 sum over p in order with fmaf (the loop over j is the one a
 * compiler may vectorise: it does not reorder any element's sum). The
 * clones let fmaf be one instruction where the CPU has FMA, instead of a
 * libm call per term. */
FA2_CPU_CLONES
void fa2_tile_product_portable(const fa2_tile_product *g)
{
    enum { CHUNK = 64 };
    float sum[CHUNK];
    for (int64_t i = 0; i < g->m; i++) {
        float *c = g->c + i * g->ldc;
        for (int64_t j0 = 0; j0 < g->n; j0 += CHUNK) {
            const int64_t nj = g->n - j0 < CHUNK ? g->n - j0 : CHUNK;
            for (int64_t j = 0; j < nj; j++)
                sum[j] = 0.0f;
            for (int64_t p = 0; p < g->k; p++) {
                const float a = g->a[i * g->a_rs + p * g->a_cs];
                const float *b = g->b + p * g->ldb + j0;
#pragma omp simd
                for (int64_t j = 0; j < nj; j++)
                    sum[j] = fmaf(a, b[j], sum[j]);
            }
            if (g->accumulate)
                for (int64_t j = 0; j < nj; j++)
                    c[j0 + j] += sum[j];
            else
                for (int64_t j = 0; j < nj; j++)
                    c[j0 + j] = sum[j];
        }
    }
}

typedef enum { KERNEL_PORTABLE, KERNEL_AVX2, KERNEL_AVX512, KERNEL_COUNT } kernel_id;

static const char *const kernel_names[KERNEL_COUNT] = {"portable", "avx2", "avx512"};

static int cpu_can_run(kernel_id id)
{
    switch (id) {
    case KERNEL_PORTABLE:
        return 1;
#ifdef FA2_HAVE_X86_KERNELS
    case KERNEL_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KERNEL_AVX512:
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return 0;
    }
}

static void kernel_of(kernel_id id, fa2_tile_kernel *out)
{
    out->name = kernel_names[id];
    out->product = fa2_tile_product_portable;
#ifdef FA2_HAVE_X86_KERNELS
    if (id == KERNEL_AVX2)
        out->product = fa2_tile_product_avx2;
    else if (id == KERNEL_AVX512)
        out->product = fa2_tile_product_avx512;
#endif
}

fa2_status fa2_cpu_tile_kernel(fa2_tile_kernel *out)
{
    const char *want = getenv("FA2_CPU_KERNEL");
    if (want && *want) {
        for (int id = 0; id < KERNEL_COUNT; id++) {
            if (strcmp(want, kernel_names[id]) != 0)
                continue;
            if (!cpu_can_run((kernel_id)id))
                return fa2_fail(FA2_ERR_UNSUPPORTED, "FA2_CPU_KERNEL=%s, but this "
                                "CPU or build cannot run the %s kernel", want, want);
            kernel_of((kernel_id)id, out);
            return FA2_OK;
        }
        return fa2_fail(FA2_ERR_UNSUPPORTED, "FA2_CPU_KERNEL=%s names no kernel: "
                        "expected avx512, avx2 or portable", want);
    }
    kernel_id best = KERNEL_PORTABLE;
    for (int id = KERNEL_COUNT - 1; id > KERNEL_PORTABLE; id--)
        if (cpu_can_run((kernel_id)id)) {
            best = (kernel_id)id;
            break;
        }
    kernel_of(best, out);
    return FA2_OK;
}

const char *fa2_cpu_tile_kernel_name(void)
{
    fa2_tile_kernel k;
    if (fa2_cpu_tile_kernel(&k) != FA2_OK)
        return "error: FA2_CPU_KERNEL names a kernel this CPU cannot run";
    return k.name;
}
