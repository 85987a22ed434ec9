/* tile_io.c — moving tiles between the strided user tensors and a CPU
 * worker's dense float32 tiles (the CPU's "global -> shared memory" step):
 * rows widened from fp16/bf16 with vectorisable conversions, optionally
 * transposed, and prefetched ahead of use; and the element mask of a
 * boundary tile. */
#include "config.h"
#include "fa2_internal.h"
#include "fa2_cpu.h"
#include "fa2_cpu_simd.h"

FA2_CPU_CLONES
void fa2_cpu_load_row(const fa2_tensor *t, const fa2_seq *s, int64_t row,
                      int64_t h, int64_t d, float *dst)
{
    const int64_t off = fa2_offset4(t, s->batch, row, h, 0);
    switch (t->dtype) {
    case FA2_DTYPE_FP32: {
        const float *src = (const float *)t->data + off;
#pragma omp simd
        for (int64_t c = 0; c < d; c++)
            dst[c] = src[c];
        break;
    }
    case FA2_DTYPE_FP16: {
        const uint16_t *src = (const uint16_t *)t->data + off;
#pragma omp simd
        for (int64_t c = 0; c < d; c++)
            dst[c] = fa2_simd_fp16_to_float(src[c]);
        break;
    }
    case FA2_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)t->data + off;
#pragma omp simd
        for (int64_t c = 0; c < d; c++)
            dst[c] = fa2_simd_bf16_to_float(src[c]);
        break;
    }
    }
}

/* Ask for rows [row0, row0 + n) of head h of t ahead of use: K/V rows sit
 * a whole token apart in memory, a stride the hardware prefetcher does not
 * follow across pages. */
void fa2_cpu_prefetch_tile(const fa2_tensor *t, const fa2_seq *s,
                           int64_t start, int64_t row0, int64_t n, int64_t h, int64_t d)
{
#if defined(__GNUC__)
    const size_t bytes = (size_t)d * fa2_dtype_size(t->dtype);
    for (int64_t r = 0; r < n; r++) {
        const char *p = (const char *)t->data +
                        fa2_offset4(t, s->batch, start + row0 + r, h, 0) *
                            (int64_t)fa2_dtype_size(t->dtype);
        for (size_t off = 0; off < bytes; off += 64)
            __builtin_prefetch(p + off);
    }
#endif
}

/* Rows [row0, row0 + n) into a dense [n][d] tile. */
void fa2_cpu_load_tile(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                      int64_t row0, int64_t n, int64_t h, int64_t d, float *dst)
{
    for (int64_t r = 0; r < n; r++)
        fa2_cpu_load_row(t, s, start + row0 + r, h, d, dst + r * d);
}

/* Rows [row0, row0 + n) as a float32 [n][d] tile with leading dimension
 * *ld: float32 tensors are read in place (their rows are a fixed stride
 * apart, which the tile products take as the leading dimension: no copy),
 * fp16/bf16 ones are widened once into buf ([n][d], *ld = d). */
const float *fa2_cpu_tile_view(const fa2_tensor *t, const fa2_seq *s,
                               int64_t start, int64_t row0, int64_t n, int64_t h,
                               int64_t d, float *buf, int64_t *ld)
{
    if (t->dtype == FA2_DTYPE_FP32) {
        *ld = t->stride[1];
        return (const float *)t->data + fa2_offset4(t, s->batch, start + row0, h, 0);
    }
    fa2_cpu_load_tile(t, s, start, row0, n, h, d, buf);
    *ld = d;
    return buf;
}

/* Rows [row0, row0 + n) into a transposed [d][ld] tile: widen each row into
 * `row`, then write it out as a column (scalar stores: vector scatters are
 * slower here). */
void fa2_cpu_load_tile_t(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                        int64_t row0, int64_t n, int64_t h, int64_t d,
                        float *dst, int64_t ld, float *row)
{
    for (int64_t r = 0; r < n; r++) {
        fa2_cpu_load_row(t, s, start + row0 + r, h, d, row);
        for (int64_t c = 0; c < d; c++)
            dst[c * ld + r] = row[c];
    }
}


/* The element mask of one tile, as vector loops: each row's visible keys
 * are one interval (fa2_visible_cols of that single row, the set
 * fa2_mask_visible accepts), so masking is two compares per element. */
FA2_CPU_CLONES
void fa2_cpu_mask_tile(const fa2_mask *m, int64_t row_lo, int64_t rows,
                       int64_t col_lo, int64_t cols, float *tile, int64_t rs,
                       int64_t cs, int64_t *lo, int64_t *hi)
{
    for (int64_t i = 0; i < rows; i++)
        fa2_visible_cols(m, row_lo + i, row_lo + i + 1, &lo[i], &hi[i]);
    if (cs == 1) { /* row-major: vectorise along the keys of a row */
        for (int64_t i = 0; i < rows; i++) {
            float *t = tile + i * rs;
            const int64_t l = lo[i], h = hi[i];
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                const int64_t c = col_lo + j;
                t[j] = (c < l || c >= h) ? FA2_NEG_INF : t[j];
            }
        }
    } else { /* transposed: vectorise across the rows of a key */
        for (int64_t j = 0; j < cols; j++) {
            float *t = tile + j * cs;
            const int64_t c = col_lo + j;
#pragma omp simd
            for (int64_t i = 0; i < rows; i++)
                t[i * rs] = (c < lo[i] || c >= hi[i]) ? FA2_NEG_INF : t[i * rs];
        }
    }
}
