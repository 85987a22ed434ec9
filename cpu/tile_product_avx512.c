/* tile_product_avx512.c — the tile-product micro-kernel for x86-64 CPUs with
 * AVX-512F (Skylake-X, Ice Lake, Sapphire Rapids, Zen 4 and later).
 * Compiled for that target with function attributes; tile_product.c calls
 * it only where the CPU has AVX-512F.
 *
 * Register blocking: an 8 x 32 block of C lives in 16 zmm registers; per
 * term p, two loads of B's row p (32 floats) and eight broadcasts of A's
 * column p (folded into the FMAs as embedded broadcasts) feed 16 FMAs. Each
 * C element is one FMA chain over p in order (tile_product.h), so the
 * result equals the portable and AVX2 kernels' bit for bit. B's panel is
 * packed once into a dense buffer; the last columns of C use AVX-512's
 * lane masks. */
#include "config.h"
#include "tile_product.h"

#ifdef FA2_HAVE_X86_KERNELS
#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

enum { MR = 8, NR = 32 };

/* the first `left` of 16 lanes (left may be <= 0 or > 16) */
AVX512_INLINE __mmask16 lanes(int64_t left)
{
    const int l = left < 0 ? 0 : (left > 16 ? 16 : (int)left);
    return (__mmask16)((1u << l) - 1u);
}

/* C[i0 .. i0+mr)[j0 .. j0+32) from the B panel bp (row p at bp + p * ldbp),
 * columns masked by m0, m1 (all ones for a full panel) */
AVX512_INLINE void block(const fa2_tile_product *g, int64_t i0, int64_t j0,
                         const float *bp, int64_t ldbp, const int mr,
                         __mmask16 m0, __mmask16 m1)
{
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm512_setzero_ps();
    const float *a = g->a + i0 * g->a_rs;
    const float *b = bp;
    const int64_t rs = g->a_rs;
    for (int64_t p = 0; p < g->k; p++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        const __m512 b1 = _mm512_maskz_loadu_ps(m1, b + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(a[i * rs]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        a += g->a_cs;
        b += ldbp;
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        float *c = g->c + (i0 + i) * g->ldc + j0;
        if (g->accumulate) {
            c0[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), c0[i]);
            c1[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), c1[i]);
        }
        _mm512_mask_storeu_ps(c, m0, c0[i]);
        _mm512_mask_storeu_ps(c + 16, m1, c1[i]);
    }
}

AVX512_INLINE void panel(const fa2_tile_product *g, int64_t j0, const float *bp,
                         int64_t ldbp, __mmask16 m0, __mmask16 m1)
{
    int64_t i0 = 0;
    for (; i0 + MR <= g->m; i0 += MR)
        block(g, i0, j0, bp, ldbp, MR, m0, m1);
    switch (g->m - i0) {
    case 7: block(g, i0, j0, bp, ldbp, 7, m0, m1); break;
    case 6: block(g, i0, j0, bp, ldbp, 6, m0, m1); break;
    case 5: block(g, i0, j0, bp, ldbp, 5, m0, m1); break;
    case 4: block(g, i0, j0, bp, ldbp, 4, m0, m1); break;
    case 3: block(g, i0, j0, bp, ldbp, 3, m0, m1); break;
    case 2: block(g, i0, j0, bp, ldbp, 2, m0, m1); break;
    case 1: block(g, i0, j0, bp, ldbp, 1, m0, m1); break;
    default: break;
    }
}

/* B's panel of columns j0 .. j0+32 (masked by m0, m1; the rest zero) copied
 * to a dense [k][32] buffer: consecutive cache lines whatever B's leading
 * dimension (see tile_product_avx2.c). */
AVX512_INLINE void pack_panel(const fa2_tile_product *g, int64_t j0, __mmask16 m0,
                              __mmask16 m1, float *dst)
{
    const float *b = g->b + j0;
    for (int64_t p = 0; p < g->k; p++, b += g->ldb, dst += NR) {
        _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m0, b));
        _mm512_store_ps(dst + 16, _mm512_maskz_loadu_ps(m1, b + 16));
    }
}

enum { PACK_K_MAX = 512 }; /* longest panel packed (64 KiB of stack) */

AVX512_FN void fa2_tile_product_avx512(const fa2_tile_product *g)
{
    _Alignas(64) float packed[PACK_K_MAX * NR];
    const int pack = g->k <= PACK_K_MAX && g->m > MR; /* reused by row blocks */
    for (int64_t j0 = 0; j0 < g->n; j0 += NR) {
        const __mmask16 m0 = lanes(g->n - j0), m1 = lanes(g->n - j0 - 16);
        if (pack) {
            pack_panel(g, j0, m0, m1, packed);
            panel(g, j0, packed, NR, m0, m1);
        } else {
            panel(g, j0, g->b + j0, g->ldb, m0, m1);
        }
    }
}
#endif /* FA2_HAVE_X86_KERNELS */
