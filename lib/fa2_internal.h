/*
 * fa2_internal.h — what the library's parts share and users do not see:
 * error reporting, the validated form of a forward problem, element access
 * for strided tensors, and the worker pool.
 */
#ifndef FA2_INTERNAL_H
#define FA2_INTERNAL_H

#include "fa2.h"
#include "fa2_philox.h"
#include "fa2_score.h"
#include "fa2_tile.h"

#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors -------------------------------------------------------------- */

/* Record the sentence for this thread's fa2_last_error() and return s. */
fa2_status fa2_fail(fa2_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clear the thread's last error (called on success). */
void fa2_clear_error(void);

/* ---- tracing the tiled mirror (fa2 trace) ----------------------------------- */

/* The steps of the tiled algorithm a trace callback sees, in the order the
 * mirror executes them (one thread). */
typedef enum fa2_trace_kind {
    FA2_TRACE_FWD_S,       /* S = Q_i K_j^T after masking                  */
    FA2_TRACE_FWD_P,       /* P and the row state (m, l, alpha) after the   *
                            * online-softmax update of this tile            */
    FA2_TRACE_FWD_ACC,     /* the accumulator after acc = alpha acc + P V   */
    FA2_TRACE_FWD_OUT,     /* O_i = acc / l and LSE_i, written              */
    FA2_TRACE_BWD_D,       /* D = rowsum(dO o O) of one query block        */
    FA2_TRACE_BWD_P,       /* P recomputed from LSE                        */
    FA2_TRACE_BWD_DS,      /* dS = P o (dP - D)                             */
    FA2_TRACE_BWD_ACC,     /* dK_j, dV_j and this tile's dQ_i share          */
    FA2_TRACE_BWD_OUT      /* final dK_j, dV_j (scaled) of a key block      */
} fa2_trace_kind;

/* One step. Matrices are float32 views: element (i, j) of a [rows][cols]
 * tile is tile[i * row_stride + j * col_stride]. Unused fields are 0/NULL. */
typedef struct fa2_trace_event {
    fa2_trace_kind kind;
    int64_t seq, head;            /* sequence, query head              */
    int64_t m_block, n_block;     /* query block i, key block j        */
    int64_t row_lo, col_lo;       /* first query row, first key column */
    int64_t rows, cols;
    const float *tile;            /* S, P or dS                        */
    int64_t row_stride, col_stride;
    const fa2_row_state *state;   /* [rows] m and l                    */
    const float *alpha;           /* [rows] the rescale factors        */
    const float *vec;             /* [rows] LSE (OUT) or D (BWD_D)     */
    const float *acc;             /* [rows][d] acc, O or dQ_i's share  */
    const float *dk, *dv;         /* [cols][d] backward accumulators   */
    int64_t d;
} fa2_trace_event;

typedef void (*fa2_trace_fn)(void *user, const fa2_trace_event *ev);

/* ---- a validated forward problem ------------------------------------------ */

/* Everything a backend needs, checked and normalised by fa2_fwd_validate:
 * sizes, the mask parameters, the scale, and how to find sequence b. */
typedef struct fa2_problem {
    fa2_dtype dtype;
    int64_t num_seqs;     /* batch, or the number of packed sequences    */
    int64_t heads_q;
    int64_t heads_kv;
    int64_t head_dim;
    int64_t max_seqlen_q; /* the fixed length, or the longest sequence   */
    int64_t max_seqlen_k;
    float scale;          /* softmax scale (default already applied)     */
    float scale_log2;     /* scale * log2(e), folded into exp2           */
    int causal;
    int64_t window_left;  /* -1: unbounded */
    int64_t window_right; /* -1: unbounded */
    const int32_t *cu_seqlens_q; /* NULL: fixed lengths */
    const int32_t *cu_seqlens_k;
    int block_m, block_n; /* tile sizes for the tiled backend */
    int num_threads;
    fa2_trace_fn trace;   /* tiled backend only; NULL: no tracing  */
    void *trace_user;
    /* score modifiers (lib/fa2_score.h) and dropout (lib/fa2_philox.h) */
    int mods;             /* softcap, ALiBi or sinks on: scores -> logits */
    int bwd_logits;       /* softcap or ALiBi on: the backward's P from logits
                           * (a sink alone changes only LSE, which the
                           * backward reads: its P is plain attention's) */
    float softcap;        /* 0: off */
    const float *alibi_slopes; /* NULL: off */
    int64_t alibi_stride; /* between sequences; 0: one [Hq] for all */
    const float *sinks;   /* NULL: off */
    fa2_dropout dropout;  /* .enabled = 0: off */
    uint8_t *dropout_mask; /* forward only, optional output */
} fa2_problem;

/* Where sequence b lives: its batch index and first row in the tensors. */
typedef struct fa2_seq {
    int64_t batch;   /* index into dim 0                        */
    int64_t q_start; /* first row along dim 1 of q / o / lse    */
    int64_t k_start; /* first row along dim 1 of k / v          */
    int64_t seqlen_q;
    int64_t seqlen_k;
} fa2_seq;

static inline fa2_seq fa2_problem_seq(const fa2_problem *p, int64_t b)
{
    fa2_seq s;
    if (p->cu_seqlens_q) {
        s.batch = 0;
        s.q_start = p->cu_seqlens_q[b];
        s.k_start = p->cu_seqlens_k[b];
        s.seqlen_q = p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b];
        s.seqlen_k = p->cu_seqlens_k[b + 1] - p->cu_seqlens_k[b];
    } else {
        s.batch = b;
        s.q_start = s.k_start = 0;
        s.seqlen_q = p->max_seqlen_q;
        s.seqlen_k = p->max_seqlen_k;
    }
    return s;
}

static inline fa2_mask fa2_problem_mask(const fa2_problem *p, const fa2_seq *s)
{
    return fa2_mask_make(s->seqlen_q, s->seqlen_k, p->causal, p->window_left,
                         p->window_right);
}

/* The score modifiers of sequence b (its index, not its batch slot), head h,
 * in natural units (the oracle's and standard attention's). */
static inline fa2_score_mod fa2_problem_score_mod(const fa2_problem *p,
                                                  const fa2_seq *s, int64_t b,
                                                  int64_t h)
{
    const int alibi = p->alibi_slopes != NULL;
    return fa2_score_mod_make(p->scale, p->softcap, alibi,
                              alibi ? p->alibi_slopes[b * p->alibi_stride + h] : 0.0f,
                              s->seqlen_q, s->seqlen_k);
}

/* The same in the units the forward's tiled mirror and kernels run the
 * softmax in (fa2_score_mod_units). */
static inline fa2_score_mod fa2_problem_score_mod_units(const fa2_problem *p,
                                                        const fa2_seq *s, int64_t b,
                                                        int64_t h)
{
    fa2_score_mod sm = fa2_problem_score_mod(p, s, b, h);
    fa2_score_mod_units(&sm, p->scale_log2, p->sinks != NULL,
                        p->sinks ? p->sinks[h] : 0.0f);
    return sm;
}

/* The sink logit of head h, or -inf (no sink). */
static inline float fa2_problem_sink(const fa2_problem *p, int64_t h)
{
    return p->sinks ? p->sinks[h] : -INFINITY;
}

/* The dropout_mask byte of (sequence b, head h, row i, key j), or NULL. */
static inline uint8_t *fa2_problem_mask_at(const fa2_problem *p, int64_t b,
                                           int64_t h, int64_t i, int64_t j)
{
    if (!p->dropout_mask)
        return NULL;
    return p->dropout_mask +
           ((b * p->heads_q + h) * p->max_seqlen_q + i) * p->max_seqlen_k + j;
}

/* Zero the whole dropout_mask output (backends then mark the kept
 * visible elements). */
void fa2_problem_mask_clear(const fa2_problem *p);

/* Check every argument of a forward call; fill *p on success. ops is the
 * backend's row (fa2_backend.h): where its tensors live decides whether the
 * lengths in cu_seqlens can be read here; NULL: host memory (what a
 * backend's own helpers pass, such as the float64 oracle's). */
struct fa2_backend_ops;
fa2_status fa2_fwd_validate(const fa2_fwd_args *args,
                            const struct fa2_backend_ops *ops, fa2_problem *p);

/* The score modifiers' and dropout's arguments (lib/modifiers.c), the
 * last step of fa2_fwd_validate: fills their fields of *p. */
fa2_status fa2_mods_validate(const fa2_fwd_args *args,
                             const struct fa2_backend_ops *ops, fa2_problem *p);

/* Distinct indices of t (first ndim dims) are distinct addresses (a
 * sufficient test on sorted strides). */
int fa2_tensor_elements_disjoint(const fa2_tensor *t, int ndim);
/* a and b (first na / nb dims, both checked) may share a byte: decided on
 * elements, so interleaved layouts that share none (packed dqkv) pass. */
int fa2_tensor_spans_overlap(const fa2_tensor *a, int na, const fa2_tensor *b,
                             int nb);
/* t spans at most 2^62 bytes and does not wrap around the address space
 * (FA2_ERR_SHAPE otherwise); sizes and strides already checked. */
fa2_status fa2_tensor_check_span(const fa2_tensor *t, const char *name, int ndim);

/* Check every argument of a backward call; fill *p on success. */
fa2_status fa2_bwd_validate(const fa2_bwd_args *args,
                            const struct fa2_backend_ops *ops, fa2_problem *p);

/* The forward arguments a backward call implies (q, k, v, o, lse and the
 * mask, varlen and tiling parameters), for code shared by both passes. */
fa2_fwd_args fa2_bwd_as_fwd_args(const fa2_bwd_args *b);
/* The other way: the backward's arguments over the forward's tensors and
 * parameters; dout, dq, dk, dv and the workspace are left empty. */
fa2_bwd_args fa2_fwd_as_bwd_args(const fa2_fwd_args *f);

/* ---- a validated KV-cache problem ------------------------------------------ */

/* What fa2_kvcache_validate checked and normalised (fa2_fwd_kvcache). */
typedef struct fa2_kvcache_problem {
    fa2_dtype dtype;
    int64_t batch;
    int64_t heads_q;
    int64_t heads_kv;
    int64_t group;        /* heads_q / heads_kv: query heads per key head   */
    int64_t head_dim;
    int64_t seqlen_q;     /* Nq                                             */
    int64_t seqlen_new;   /* Nnew; 0: no append                             */
    int paged;
    int64_t page_size;    /* paged: k_cache.shape[1]; contiguous: Nmax      */
    int64_t num_pages;    /* paged: k_cache.shape[0]; contiguous: batch     */
    int64_t max_pages;    /* paged: block table columns; contiguous: 1      */
    int64_t block_table_stride;
    int64_t capacity;     /* keys one sequence can hold                     */
    int64_t max_seqlen_k; /* host lengths: the longest seqlen_k; device:
                             the capacity                                   */
    const int32_t *block_table;   /* NULL: contiguous                       */
    const int32_t *cache_seqlens;
    float scale;
    float scale_log2;
    int causal;
    int64_t window_left;
    int64_t window_right;
    int num_splits;       /* resolved: >= 1                                 */
    int block_m;          /* packed rows per tile (fa2_kvcache_block_m)     */
    int block_n;          /* keys per tile                                  */
    int key_warps;        /* resolved: 1 or 4 (FA2_KVCACHE_KEY_WARPS_MAX)   */
    int num_threads;
} fa2_kvcache_problem;

/* Keys of sequence b after the append (host lengths only). */
static inline int64_t fa2_kvcache_seqlen_k(const fa2_kvcache_problem *p,
                                           int64_t b)
{
    return (int64_t)p->cache_seqlens[b] + p->seqlen_new;
}

/* Sequence b's row of the block table, NULL when contiguous. */
static inline const int32_t *fa2_kvcache_table_row(const fa2_kvcache_problem *p,
                                                   int64_t b)
{
    return p->block_table ? p->block_table + b * p->block_table_stride : NULL;
}

/* The visibility rule of sequence b's rows (bottom-right aligned). */
static inline fa2_mask fa2_kvcache_mask(const fa2_kvcache_problem *p,
                                        int64_t seqlen_k)
{
    return fa2_mask_make(p->seqlen_q, seqlen_k, p->causal, p->window_left,
                         p->window_right);
}

/* Check every argument of a KV-cache call (lib/validate_kvcache.c); fill *p
 * on success, num_splits as given (0: not yet chosen). ops as in
 * fa2_fwd_validate: device memory means the lengths and the block table
 * cannot be read here. Nothing is written. */
fa2_status fa2_kvcache_validate(const fa2_kvcache_args *args,
                                const struct fa2_backend_ops *ops,
                                fa2_kvcache_problem *p);

/* The checks every tensor of a call gets (lib/validate.c): data, dtype,
 * sizes >= 1 (dim empty_dim may be 0; -1: none), contiguous last dim,
 * positive strides, span. */
fa2_status fa2_tensor_check(const fa2_tensor *t, const char *name, int ndim,
                            int empty_dim);

/* ---- strided element access ------------------------------------------------ */

/* Offset in elements of [i0, i1, i2, i3]. */
static inline int64_t fa2_offset4(const fa2_tensor *t, int64_t i0, int64_t i1,
                                  int64_t i2, int64_t i3)
{
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] +
           i3 * t->stride[3];
}

/* Read row [b, row, h, 0:n] of q/k/v as float (exact widening). */
void fa2_load_row_f32(const fa2_tensor *t, int64_t b, int64_t row, int64_t h,
                      int64_t n, float *out);
/* Same, into double. */
void fa2_load_row_f64(const fa2_tensor *t, int64_t b, int64_t row, int64_t h,
                      int64_t n, double *out);
/* Write row [b, row, h, 0:n] rounding float -> dtype (round-to-nearest-even). */
void fa2_store_row_f32(const fa2_tensor *t, int64_t b, int64_t row, int64_t h,
                       int64_t n, const float *in);
/* The lse element [b, h, row]. */
static inline float *fa2_lse_at(const fa2_tensor *lse, int64_t b, int64_t h,
                                int64_t row)
{
    return (float *)lse->data + b * lse->stride[0] + h * lse->stride[1] +
           row * lse->stride[2];
}

/* malloc / calloc of n elements of `size` bytes, NULL when n * size does
 * not fit in size_t (a score matrix of two 2^31-row sequences would wrap
 * to a small allocation otherwise). n = 0 allocates one element. */
static inline void *fa2_alloc_n(int64_t n, size_t size)
{
    if (n < 1)
        n = 1;
    if ((uint64_t)n > SIZE_MAX / size)
        return NULL;
    return malloc((size_t)n * size);
}
static inline void *fa2_calloc_n(int64_t n, size_t size)
{
    if (n < 1)
        n = 1;
    if ((uint64_t)n > SIZE_MAX / size)
        return NULL;
    return calloc((size_t)n, size);
}

/* Round every element of buf to dtype's precision, in place. */
void fa2_round_buffer(float *buf, int64_t n, fa2_dtype t);

/* ---- workers -------------------------------------------------------------- */

/* Run fn(ctx, item, worker) for item = 0 .. n_items-1 on num_threads
 * threads (the caller's thread is one of them). Items are claimed in order
 * from a shared counter; worker is in 0 .. num_threads-1 (0 is the caller).
 * If a thread cannot be started, the others do its share. */
typedef void (*fa2_work_fn)(void *ctx, int64_t item, int worker);
fa2_status fa2_parallel_for(int num_threads, int64_t n_items, fa2_work_fn fn,
                            void *ctx);

/* Attach a trace callback to a validated problem (the tiled backend then
 * runs on one thread, so the callback sees the steps in order). */
static inline fa2_status fa2_problem_trace(fa2_problem *p, fa2_trace_fn fn,
                                           void *user)
{
    if (!fn)
        return fa2_fail(FA2_ERR_NULL_POINTER, "the trace callback is NULL");
    p->trace = fn;
    p->trace_user = user;
    p->num_threads = 1;
    return FA2_OK;
}

#ifdef __cplusplus
}
#endif

#endif /* FA2_INTERNAL_H */
