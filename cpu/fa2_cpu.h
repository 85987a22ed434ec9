/* fa2_cpu.h — what the CPU backends share: tile loads (tile_io.c). */
#ifndef FA2_CPU_H
#define FA2_CPU_H

#include "fa2_internal.h"

/* Row `row` (absolute, along dim 1) of head h of t, widened to float into
 * dst[0 .. d). */
void fa2_cpu_load_row(const fa2_tensor *t, const fa2_seq *s, int64_t row,
                      int64_t h, int64_t d, float *dst);

/* Rows start + row0 .. start + row0 + n - 1 into a dense [n][d] tile. */
void fa2_cpu_load_tile(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                       int64_t row0, int64_t n, int64_t h, int64_t d, float *dst);

/* The same rows as a float32 tile: in place for a float32 tensor (leading
 * dimension *ld = its row stride), else widened into buf (*ld = d). */
const float *fa2_cpu_tile_view(const fa2_tensor *t, const fa2_seq *s,
                               int64_t start, int64_t row0, int64_t n, int64_t h,
                               int64_t d, float *buf, int64_t *ld);

/* The same rows into a transposed [d][ld] tile; `row` is a [d] buffer. */
void fa2_cpu_load_tile_t(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                         int64_t row0, int64_t n, int64_t h, int64_t d,
                         float *dst, int64_t ld, float *row);

/* Hint the cache to fetch those rows (no effect on results). */
void fa2_cpu_prefetch_tile(const fa2_tensor *t, const fa2_seq *s, int64_t start,
                           int64_t row0, int64_t n, int64_t h, int64_t d);

/* Set tile(i, j) = tile[i * rs + j * cs] to -inf wherever query row
 * row_lo + i may not see key col_lo + j (one of rs, cs must be 1); lo and
 * hi are [rows] scratch. */
void fa2_cpu_mask_tile(const fa2_mask *m, int64_t row_lo, int64_t rows,
                       int64_t col_lo, int64_t cols, float *tile, int64_t rs,
                       int64_t cs, int64_t *lo, int64_t *hi);

#endif /* FA2_CPU_H */
