/* fa2_cpu.h — the CPU backends: their passes (one row each of the backend
 * table, cpu/backends.c), what they share (tile loads, tile_io.c), and the
 * float64 oracle and traced mirror the tests and tools call directly. */
#ifndef FA2_CPU_H
#define FA2_CPU_H

#include "fa2_backend.h"
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

/* The online softmax over one S^T tile (cpu/softmax_tile.c): st is
 * [cols][ld], row i of the query tile in column i; per-row vectors of
 * `rows` floats; acc [rows][d] is rescaled by alpha. */
typedef struct fa2_cpu_softmax_io {
    float *st;
    int64_t ld;
    float *acc;
    int64_t d;
    fa2_row_state *state;
    float *tile_max, *alpha, *max_scaled, *rowsum; /* scratch / alpha out */
    float scale_log2;
    fa2_dtype dtype; /* P is rounded to it */
} fa2_cpu_softmax_io;
void fa2_cpu_softmax_tile(const fa2_cpu_softmax_io *io, int64_t rows, int64_t cols);

/* ---- the KV-cache forward's helpers (cpu/kvcache_io.c) ------------------ */

/* Copy k_new / v_new into the cache slots cache_seqlens[b] .. + Nnew - 1. */
void fa2_cpu_kvcache_append(const fa2_kvcache_args *a, const fa2_kvcache_problem *p);
/* The address of key `key`, head h of sequence b in cache (k_cache or
 * v_cache), through the block table when paged. */
const void *fa2_cpu_kvcache_row(const fa2_tensor *cache, const fa2_kvcache_problem *p,
                                int64_t b, int64_t key, int64_t h);
/* Key (value = 0) or value (1) row `key` of sequence b, head h, in float64:
 * keys past cache_seqlens[b] come from k_new / v_new, not from the cache,
 * so the result does not depend on the append having run. */
void fa2_cpu_kvcache_key_f64(const fa2_kvcache_args *a, const fa2_kvcache_problem *p,
                             int value, int64_t b, int64_t key, int64_t h,
                             double *out);

/* ---- the rows of the backend table (cpu/backends.c) ---------------------- */

extern const fa2_backend_ops fa2_cpu_oracle_ops;
extern const fa2_backend_ops fa2_cpu_standard_ops;
extern const fa2_backend_ops fa2_cpu_tiled_ops;

/* The tiled backend's own tiling (cpu/tile_config.c). */
fa2_status fa2_cpu_tiled_tile_config(fa2_pass pass, fa2_dtype dtype,
                                     int head_dim, fa2_tile_config *out);

/* ---- the passes ------------------------------------------------------------ */

fa2_status fa2_cpu_oracle_fwd(const fa2_fwd_args *a, const fa2_problem *p);
fa2_status fa2_cpu_standard_fwd(const fa2_fwd_args *a, const fa2_problem *p);
fa2_status fa2_cpu_tiled_fwd(const fa2_fwd_args *a, const fa2_problem *p);

fa2_status fa2_cpu_oracle_kvcache(const fa2_kvcache_args *a,
                                  const fa2_kvcache_problem *p);
fa2_status fa2_cpu_standard_kvcache(const fa2_kvcache_args *a,
                                    const fa2_kvcache_problem *p);
fa2_status fa2_cpu_tiled_kvcache(const fa2_kvcache_args *a,
                                 const fa2_kvcache_problem *p);
/* The tiled backend's num_splits when the caller gives 0. */
fa2_status fa2_cpu_tiled_kvcache_splits(const fa2_kvcache_problem *p,
                                        int *num_splits);

/* Standard attention's softmax of one score row (cpu/standard_fwd.c). */
float fa2_standard_softmax_row(const fa2_problem *p, const fa2_mask *mask,
                               int64_t i, float *row, int64_t nk, float sink);
/* Its scores (scale Q K^T or the modifiers' logits, in the dtype) and its
 * dropout of one P row (cpu/standard_fwd.c), shared with the backward. */
void fa2_standard_scores(const fa2_problem *p, const fa2_seq *s, int64_t b,
                         int64_t h, const float *q, const float *k, float *sp);
void fa2_standard_dropout_row(const fa2_problem *p, const fa2_mask *mask,
                              int64_t b, int64_t h, int64_t i, float *row,
                              int64_t nk, int mark);

fa2_status fa2_cpu_oracle_bwd(const fa2_bwd_args *a, const fa2_problem *p);
fa2_status fa2_cpu_standard_bwd(const fa2_bwd_args *a, const fa2_problem *p);
fa2_status fa2_cpu_tiled_bwd(const fa2_bwd_args *a, const fa2_problem *p);

/* ---- for tests and tools ------------------------------------------------- */

/* The float64 oracle with float64 outputs: o64 is dense with o's shape
 * [q.shape[0], q.shape[1], heads_q, head_dim] and lse64 dense [q.shape[0],
 * heads_q, q.shape[1]]; either may be NULL. args->o and args->lse are not
 * touched. */
fa2_status fa2_oracle_fwd_f64(const fa2_fwd_args *args, double *o64,
                              double *lse64);

/* The float64 oracle of a KV-cache forward: o64 dense [B, Nq, Hq, d],
 * lse64 dense [B, Hq, Nq] (either may be NULL); nothing of args is written
 * (the new tokens are read from k_new / v_new, the caches not appended). */
fa2_status fa2_oracle_kvcache_f64(const fa2_kvcache_args *args, double *o64,
                                  double *lse64);

/* The tiled mirror with a callback at every step (one thread). */
fa2_status fa2_tiled_fwd_traced(const fa2_fwd_args *args, fa2_trace_fn fn,
                                void *user);
fa2_status fa2_tiled_bwd_traced(const fa2_bwd_args *args, fa2_trace_fn fn,
                                void *user);

/* The float64 oracle's gradients, dense with the shapes of q, k and v;
 * any of the three may be NULL. args' own outputs are not touched. */
fa2_status fa2_oracle_bwd_f64(const fa2_bwd_args *args, double *dq64,
                              double *dk64, double *dv64);
/* The same, and the sinks' gradient in float64 ([Hq], may be NULL). */
fa2_status fa2_oracle_bwd_f64_sinks(const fa2_bwd_args *args, double *dq64,
                                    double *dk64, double *dv64,
                                    double *dsinks64);
/* The same with D = dO . o taken from the forward's (rounded) o, as FA2's
 * backward takes it: its distance from the exact gradients is the part of a
 * backend's error that comes from o's rounding alone (large where dS = P (dP
 * - D) cancels, e.g. a row over nearly uniform keys). */
fa2_status fa2_oracle_bwd_f64_rounded_o(const fa2_bwd_args *args, double *dq64,
                                        double *dk64, double *dv64);

#endif /* FA2_CPU_H */
