/* tile_product_avx2.c — the tile-product micro-kernel for x86-64 CPUs with
 * AVX2 and FMA (Haswell, Zen and later). Compiled for that target with
 * function attributes, so the rest of the library keeps the baseline ISA;
 * tile_product.c calls it only where the CPU has both.
 *
 * Register blocking: a 6 x 16 block of C lives in 12 ymm registers; per
 * term p, two loads of B's row p (16 floats) and six broadcasts of A's
 * column p feed 12 FMAs. Each C element is one FMA chain over p in order
 * (tile_product.h), so the result equals the portable kernel's bit for bit.
 * B's 16-column panel (k rows) is packed once into a dense buffer, reused
 * by every row block from L1. The last columns of C use masked stores. */
#include "config.h"
#include "tile_product.h"

#ifdef FA2_HAVE_X86_KERNELS
#include <immintrin.h>

#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

enum { MR = 6, NR = 16 };

/* all-ones lanes for the first `left` of 8 columns (left may be <= 0) */
AVX2_INLINE __m256i lanes(int64_t left)
{
    const int l = left < 0 ? 0 : (left > 8 ? 8 : (int)left);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* C[i0 .. i0+mr)[j0 .. j0+16) from the B panel bp (row p at bp + p * ldbp);
 * loads of B masked by m0, m1 unless load_full, stores unless store_full */
AVX2_INLINE void block(const fa2_tile_product *g, int64_t i0, int64_t j0,
                       const float *bp, int64_t ldbp, const int mr,
                       const int load_full, const int store_full, __m256i m0,
                       __m256i m1)
{
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm256_setzero_ps();
    const float *a = g->a + i0 * g->a_rs;
    const float *b = bp;
    const int64_t rs = g->a_rs;
    for (int64_t p = 0; p < g->k; p++) {
        const __m256 b0 = load_full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
        const __m256 b1 = load_full ? _mm256_loadu_ps(b + 8)
                                    : _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i * rs);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += g->a_cs;
        b += ldbp;
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *c = g->c + (i0 + i) * g->ldc + j0;
        if (store_full) {
            if (g->accumulate) {
                c0[i] = _mm256_add_ps(_mm256_loadu_ps(c), c0[i]);
                c1[i] = _mm256_add_ps(_mm256_loadu_ps(c + 8), c1[i]);
            }
            _mm256_storeu_ps(c, c0[i]);
            _mm256_storeu_ps(c + 8, c1[i]);
        } else {
            if (g->accumulate) {
                c0[i] = _mm256_add_ps(_mm256_maskload_ps(c, m0), c0[i]);
                c1[i] = _mm256_add_ps(_mm256_maskload_ps(c + 8, m1), c1[i]);
            }
            _mm256_maskstore_ps(c, m0, c0[i]);
            _mm256_maskstore_ps(c + 8, m1, c1[i]);
        }
    }
}

/* one column panel, all row blocks; the flags are constants at each call */
AVX2_INLINE void panel(const fa2_tile_product *g, int64_t j0, const float *bp,
                       int64_t ldbp, const int load_full, const int store_full,
                       __m256i m0, __m256i m1)
{
    int64_t i0 = 0;
    for (; i0 + MR <= g->m; i0 += MR)
        block(g, i0, j0, bp, ldbp, MR, load_full, store_full, m0, m1);
    switch (g->m - i0) {
    case 5: block(g, i0, j0, bp, ldbp, 5, load_full, store_full, m0, m1); break;
    case 4: block(g, i0, j0, bp, ldbp, 4, load_full, store_full, m0, m1); break;
    case 3: block(g, i0, j0, bp, ldbp, 3, load_full, store_full, m0, m1); break;
    case 2: block(g, i0, j0, bp, ldbp, 2, load_full, store_full, m0, m1); break;
    case 1: block(g, i0, j0, bp, ldbp, 1, load_full, store_full, m0, m1); break;
    default: break;
    }
}

/* B's panel of columns j0 .. j0+nj copied to a dense [k][16] buffer, the
 * columns past nj zero: its rows then sit in consecutive cache lines
 * whatever B's leading dimension (a K or V tile read in place from a
 * [B, N, H, d] tensor has rows kilobytes apart, which map onto a few L1
 * sets and evict each other), and every load is a full one. */
AVX2_INLINE void pack_panel(const fa2_tile_product *g, int64_t j0, int64_t nj,
                            float *dst)
{
    const __m256i m0 = lanes(nj), m1 = lanes(nj - 8);
    const float *b = g->b + j0;
    for (int64_t p = 0; p < g->k; p++, b += g->ldb, dst += NR) {
        _mm256_store_ps(dst, _mm256_maskload_ps(b, m0));
        _mm256_store_ps(dst + 8, _mm256_maskload_ps(b + 8, m1));
    }
}

enum { PACK_K_MAX = 512 }; /* longest panel packed (32 KiB of stack) */

AVX2_FN void fa2_tile_product_avx2(const fa2_tile_product *g)
{
    _Alignas(32) float packed[PACK_K_MAX * NR];
    const __m256i all = _mm256_set1_epi32(-1);
    const int pack = g->k <= PACK_K_MAX && g->m > MR; /* reused by row blocks */
    for (int64_t j0 = 0; j0 < g->n; j0 += NR) {
        const int64_t nj = g->n - j0 < NR ? g->n - j0 : NR;
        const __m256i m0 = lanes(nj), m1 = lanes(nj - 8);
        if (pack) {
            pack_panel(g, j0, nj, packed);
            if (nj == NR)
                panel(g, j0, packed, NR, 1, 1, all, all);
            else
                panel(g, j0, packed, NR, 1, 0, m0, m1);
        } else if (nj == NR) {
            panel(g, j0, g->b + j0, g->ldb, 1, 1, all, all);
        } else {
            panel(g, j0, g->b + j0, g->ldb, 0, 0, m0, m1);
        }
    }
}
#endif /* FA2_HAVE_X86_KERNELS */
