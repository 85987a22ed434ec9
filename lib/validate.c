/* validate.c — every argument of a forward call is checked here, once, for
 * every backend. A bad argument gets a status code and a sentence that names
 * it, its value and what was expected; nothing is read or written out of
 * bounds on the way. */
#include "config.h"
#include "fa2_backend.h"
#include "fa2_internal.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#define MAX_TILE 1024
#define MAX_THREADS 1024
/* No tensor may span more than 2^62 bytes: every element offset, and that
 * offset times the element size, then fits in int64 with room to spare. */
#define BYTE_LIMIT ((int64_t)1 << 62)

static int valid_dtype(fa2_dtype t)
{
    return t == FA2_DTYPE_FP32 || t == FA2_DTYPE_FP16 || t == FA2_DTYPE_BF16;
}

static int is_empty(const fa2_tensor *t, int ndim)
{
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0)
            return 1;
    return 0;
}

/* Largest element offset of t over `ndim` dims, or -1 if the bytes it spans
 * would pass BYTE_LIMIT. Sizes are checked positive and strides of dims of
 * extent > 1 positive before this; a dim of extent 1 contributes nothing,
 * whatever its stride (INT64_MIN included: it is never negated). */
static int64_t max_offset(const fa2_tensor *t, int ndim)
{
    const int64_t limit = BYTE_LIMIT / (int64_t)fa2_dtype_size(t->dtype) - 1;
    int64_t off = 0;
    if (is_empty(t, ndim))
        return 0; /* empty: touches nothing */
    for (int i = 0; i < ndim; i++) {
        const int64_t extent = t->shape[i] - 1;
        if (extent == 0)
            continue;
        const int64_t s = t->stride[i];
        if (s <= 0 || s > limit / extent || off > limit - extent * s)
            return -1;
        off += extent * s;
    }
    return off;
}

/* Sufficient condition for distinct indices to be distinct addresses: with
 * the dims of extent > 1 sorted by stride, each stride exceeds the largest
 * offset reachable by the smaller ones. (Called after the span check, so
 * the sums stay below 2^62.) */
int fa2_tensor_elements_disjoint(const fa2_tensor *t, int ndim)
{
    int order[4], n = 0;
    if (is_empty(t, ndim))
        return 1; /* empty: no elements to share memory */
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] > 1)
            order[n++] = i;
    for (int i = 1; i < n; i++) /* insertion sort by stride */
        for (int j = i; j > 0 && t->stride[order[j]] < t->stride[order[j - 1]]; j--) {
            const int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    int64_t reach = 0;
    for (int i = 0; i < n; i++) {
        const int d = order[i];
        if (t->stride[d] <= reach)
            return 0;
        reach += (t->shape[d] - 1) * t->stride[d];
    }
    return 1;
}

/* ---- do two tensors share memory? ----------------------------------------
 * Decided on elements, not on byte ranges, so that interleaved layouts that
 * share no element pass: flash-attn's packed gradient dqkv [B, N, 3, H, d]
 * gives dq, dk and dv whose byte ranges interleave but whose elements never
 * meet. A tensor is described by its byte span [lo, hi), its inner run (the
 * trailing dims that together are one contiguous block: [H, d] above, run
 * bytes from each outer index) and its outer byte strides. Every byte it
 * touches is lo + (a sum of multiples of the outer strides) + [0, run), so
 * modulo g, the gcd of the outer strides of both tensors, it lies in the arc
 * [lo mod g, lo mod g + run). Two tensors share no byte if their spans are
 * apart or their arcs are. This test is exact for single intervals and for
 * layouts like the above; otherwise it errs on the side of "overlap". */
typedef struct byte_layout {
    uint64_t lo, hi;   /* span [lo, hi)                     */
    uint64_t run;      /* bytes of the contiguous inner run */
    uint64_t outer[4]; /* byte strides of the other dims    */
    int n_outer;
} byte_layout;

/* For a checked tensor (positive strides, last dim contiguous, span within
 * BYTE_LIMIT, not empty). */
static byte_layout layout_of(const fa2_tensor *t, int ndim)
{
    const uint64_t es = fa2_dtype_size(t->dtype);
    byte_layout L;
    L.lo = (uint64_t)(uintptr_t)t->data;
    L.hi = L.lo + ((uint64_t)max_offset(t, ndim) + 1) * es;
    int64_t run = 1; /* elements */
    int i = ndim - 1;
    for (; i >= 0; i--) {
        if (t->shape[i] == 1)
            continue;
        if (t->stride[i] != run)
            break;
        run *= t->shape[i];
    }
    L.run = (uint64_t)run * es;
    L.n_outer = 0;
    for (; i >= 0; i--)
        if (t->shape[i] > 1)
            L.outer[L.n_outer++] = (uint64_t)t->stride[i] * es;
    return L;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        const uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

int fa2_tensor_spans_overlap(const fa2_tensor *a, int na, const fa2_tensor *b, int nb)
{
    if (is_empty(a, na) || is_empty(b, nb))
        return 0;
    const byte_layout A = layout_of(a, na), B = layout_of(b, nb);
    if (A.hi <= B.lo || B.hi <= A.lo)
        return 0; /* spans apart */
    uint64_t g = 0;
    for (int i = 0; i < A.n_outer; i++)
        g = gcd_u64(g, A.outer[i]);
    for (int i = 0; i < B.n_outer; i++)
        g = gcd_u64(g, B.outer[i]);
    if (g == 0 || A.run > g || B.run > g)
        return 1; /* single intervals that meet, or runs longer than the period */
    const uint64_t ra = A.lo % g, rb = B.lo % g;
    const uint64_t ab = (rb + g - ra) % g, ba = (ra + g - rb) % g;
    return ab < A.run || ba < B.run;
}

/* t's bytes, data .. data + span, must not wrap around the address space. */
static fa2_status check_address_range(const fa2_tensor *t, const char *name,
                                      int ndim)
{
    if (is_empty(t, ndim))
        return FA2_OK;
    const uint64_t bytes =
        ((uint64_t)max_offset(t, ndim) + 1) * fa2_dtype_size(t->dtype);
    if ((uint64_t)(uintptr_t)t->data > UINT64_MAX - bytes ||
        (uint64_t)(uintptr_t)t->data + bytes > (uint64_t)UINTPTR_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "%s.data (%p) plus the %llu bytes its "
                        "shape and strides span passes the end of the address "
                        "space", name, t->data, (unsigned long long)bytes);
    return FA2_OK;
}

/* The span checks every tensor gets, inputs and outputs alike: at most
 * 2^62 bytes, not wrapping around the address space. */
fa2_status fa2_tensor_check_span(const fa2_tensor *t, const char *name, int ndim)
{
    if (max_offset(t, ndim) < 0)
        return fa2_fail(FA2_ERR_SHAPE, "%s spans more than 2^62 bytes", name);
    return check_address_range(t, name, ndim);
}

/* data, dtype, positive sizes, contiguous last dim, positive strides. */
static fa2_status check_tensor(const fa2_tensor *t, const char *name, int ndim,
                               int empty_dim)
{
    if (!t->data)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s.data is NULL", name);
    if (!valid_dtype(t->dtype))
        return fa2_fail(FA2_ERR_DTYPE, "%s.dtype is %d, expected FA2_DTYPE_FP32, "
                        "FA2_DTYPE_FP16 or FA2_DTYPE_BF16", name, (int)t->dtype);
    for (int i = 0; i < ndim; i++) {
        const int64_t min = i == empty_dim ? 0 : 1;
        if (t->shape[i] < min)
            return fa2_fail(FA2_ERR_SHAPE, "%s.shape[%d] is %lld, expected >= %lld",
                            name, i, (long long)t->shape[i], (long long)min);
    }
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] == 0)
            return FA2_OK; /* empty (all sequences empty): touches no memory,
                              so its strides do not matter (a dense view of
                              it has zero strides: fa2_tensor_lse(p, 1, H, 0)) */
    if (t->stride[ndim - 1] != 1 && t->shape[ndim - 1] > 1)
        return fa2_fail(FA2_ERR_STRIDE, "%s.stride[%d] is %lld: the last dimension "
                        "must be contiguous (stride 1)", name, ndim - 1,
                        (long long)t->stride[ndim - 1]);
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] > 1 && t->stride[i] < 1)
            return fa2_fail(FA2_ERR_STRIDE, "%s.stride[%d] is %lld, expected a "
                            "positive stride", name, i, (long long)t->stride[i]);
    return fa2_tensor_check_span(t, name, ndim);
}

fa2_status fa2_tensor_check(const fa2_tensor *t, const char *name, int ndim,
                            int empty_dim)
{
    return check_tensor(t, name, ndim, empty_dim);
}

static fa2_status check_same_dim(const fa2_tensor *a, const char *an,
                                 const fa2_tensor *b, const char *bn, int dim,
                                 const char *what)
{
    if (a->shape[dim] != b->shape[dim])
        return fa2_fail(FA2_ERR_SHAPE, "%s.shape[%d] (%s) is %lld but %s.shape[%d] "
                        "is %lld; they must match", bn, dim, what,
                        (long long)b->shape[dim], an, dim, (long long)a->shape[dim]);
    return FA2_OK;
}

/* cu_seqlens: num_seqs+1 entries, 0 first, non-decreasing, total last. */
static fa2_status check_cu_seqlens(const int32_t *cu, const char *name,
                                   int64_t num_seqs, int64_t total,
                                   int64_t *max_len)
{
    if (cu[0] != 0)
        return fa2_fail(FA2_ERR_SEQLENS, "%s[0] is %d, expected 0", name, (int)cu[0]);
    *max_len = 0;
    for (int64_t b = 0; b < num_seqs; b++) {
        const int64_t len = (int64_t)cu[b + 1] - cu[b];
        if (len < 0)
            return fa2_fail(FA2_ERR_SEQLENS, "%s decreases at entry %lld (%d -> %d)",
                            name, (long long)b + 1, (int)cu[b], (int)cu[b + 1]);
        if (len > *max_len)
            *max_len = len;
    }
    if (cu[num_seqs] != total)
        return fa2_fail(FA2_ERR_SEQLENS, "%s[%lld] is %d but the packed tensors "
                        "hold %lld rows; they must match", name,
                        (long long)num_seqs, (int)cu[num_seqs], (long long)total);
    return FA2_OK;
}

/* max_seqlen_q/k with variable lengths: 0 = computed; else at least the
 * longest sequence (when known: the CPU backends read cu_seqlens) and at most
 * the packed length (no sequence is longer than the tensor that holds it).
 * The CPU backends size their work by the true longest sequence, never by
 * the given value, so a generous max_seqlen costs them nothing. */
static fa2_status check_max_seqlen(int64_t given, int64_t actual, int64_t packed,
                                   const char *name, int64_t *out)
{
    if (given < 0)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "%s is %lld, expected >= 0 "
                        "(0 = computed)", name, (long long)given);
    if (given > 0 && actual >= 0 && given < actual)
        return fa2_fail(FA2_ERR_SEQLENS, "%s is %lld but a sequence has %lld rows",
                        name, (long long)given, (long long)actual);
    if (given > packed)
        return fa2_fail(FA2_ERR_SEQLENS, "%s is %lld but the packed tensors hold "
                        "only %lld rows; no sequence can be longer", name,
                        (long long)given, (long long)packed);
    *out = actual >= 0 ? actual : given;
    return FA2_OK;
}

fa2_status fa2_fwd_validate(const fa2_fwd_args *a, const fa2_backend_ops *ops,
                            fa2_problem *p)
{
    fa2_status st;
    if (!a)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    const int varlen = a->cu_seqlens_q || a->cu_seqlens_k;

    /* with variable lengths the packed dim may be empty (all sequences 0) */
    const int empty_dim = varlen ? 1 : -1;
    if ((st = check_tensor(&a->q, "q", 4, empty_dim)) ||
        (st = check_tensor(&a->k, "k", 4, empty_dim)) ||
        (st = check_tensor(&a->v, "v", 4, empty_dim)) ||
        (st = check_tensor(&a->o, "o", 4, empty_dim)))
        return st;
    if (a->k.dtype != a->q.dtype || a->v.dtype != a->q.dtype ||
        a->o.dtype != a->q.dtype)
        return fa2_fail(FA2_ERR_DTYPE, "dtypes differ: q is %s, k %s, v %s, o %s; "
                        "all four must match", fa2_dtype_name(a->q.dtype),
                        fa2_dtype_name(a->k.dtype), fa2_dtype_name(a->v.dtype),
                        fa2_dtype_name(a->o.dtype));

    /* shapes: q [B, Nq, Hq, d], k = v = [B, Nk, Hkv, d], o = q */
    const int64_t d = a->q.shape[3];
    if (d % 8 != 0 || d > 256)
        return fa2_fail(FA2_ERR_HEAD_DIM, "head_dim (q.shape[3]) is %lld, expected "
                        "a multiple of 8 from 8 to 256", (long long)d);
    if ((st = check_same_dim(&a->q, "q", &a->k, "k", 0, "batch")) ||
        (st = check_same_dim(&a->q, "q", &a->k, "k", 3, "head_dim")) ||
        (st = check_same_dim(&a->k, "k", &a->v, "v", 0, "batch")) ||
        (st = check_same_dim(&a->k, "k", &a->v, "v", 1, "seqlen_k")) ||
        (st = check_same_dim(&a->k, "k", &a->v, "v", 2, "heads_kv")) ||
        (st = check_same_dim(&a->k, "k", &a->v, "v", 3, "head_dim")))
        return st;
    for (int i = 0; i < 4; i++)
        if ((st = check_same_dim(&a->q, "q", &a->o, "o", i, "same as q")))
            return st;
    /* sequence lengths are int32 everywhere past validation: cu_seqlens,
     * BLAS dimensions, the kernels' row indices */
    if (a->q.shape[1] > INT32_MAX || a->k.shape[1] > INT32_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "seqlen_q/seqlen_k (q.shape[1], k.shape[1]) "
                        "are %lld/%lld, expected at most 2^31 - 1",
                        (long long)a->q.shape[1], (long long)a->k.shape[1]);
    if (a->q.shape[2] % a->k.shape[2] != 0)
        return fa2_fail(FA2_ERR_SHAPE, "heads_q (q.shape[2] = %lld) must be a "
                        "multiple of heads_kv (k.shape[2] = %lld)",
                        (long long)a->q.shape[2], (long long)a->k.shape[2]);
    if (!fa2_tensor_elements_disjoint(&a->o, 4))
        return fa2_fail(FA2_ERR_STRIDE, "o's strides make distinct elements share "
                        "memory; an output needs non-overlapping strides");

    /* lse: optional float32 [B, Hq, Nq] */
    if (a->lse.data) {
        if (a->lse.dtype != FA2_DTYPE_FP32)
            return fa2_fail(FA2_ERR_DTYPE, "lse.dtype is %s, expected fp32",
                            fa2_dtype_name(a->lse.dtype));
        if ((st = check_tensor(&a->lse, "lse", 3, varlen ? 2 : -1)))
            return st;
        if (a->lse.shape[0] != a->q.shape[0] || a->lse.shape[1] != a->q.shape[2] ||
            a->lse.shape[2] != a->q.shape[1])
            return fa2_fail(FA2_ERR_SHAPE, "lse.shape is [%lld, %lld, %lld], expected "
                            "[batch, heads_q, seqlen_q] = [%lld, %lld, %lld]",
                            (long long)a->lse.shape[0], (long long)a->lse.shape[1],
                            (long long)a->lse.shape[2], (long long)a->q.shape[0],
                            (long long)a->q.shape[2], (long long)a->q.shape[1]);
        if (!fa2_tensor_elements_disjoint(&a->lse, 3))
            return fa2_fail(FA2_ERR_STRIDE, "lse's strides make distinct elements "
                            "share memory; an output needs non-overlapping strides");
        if (fa2_tensor_spans_overlap(&a->lse, 3, &a->o, 4))
            return fa2_fail(FA2_ERR_OVERLAP, "lse and o share memory; outputs must "
                            "not overlap");
    }
    const fa2_tensor *inputs[3] = {&a->q, &a->k, &a->v};
    static const char *const input_names[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        if (fa2_tensor_spans_overlap(&a->o, 4, inputs[i], 4))
            return fa2_fail(FA2_ERR_OVERLAP, "o shares memory with %s; outputs must "
                            "not overlap the inputs", input_names[i]);
        if (a->lse.data && fa2_tensor_spans_overlap(&a->lse, 3, inputs[i], 4))
            return fa2_fail(FA2_ERR_OVERLAP, "lse shares memory with %s; outputs "
                            "must not overlap the inputs", input_names[i]);
    }

    /* scalars */
    /* scale log2(e) must be a finite float too: the kernels fold it into
     * exp2 (FLT_MAX / log2(e) = 2.36e38) */
    if (!isfinite(a->softmax_scale) || a->softmax_scale < 0.0f ||
        (double)a->softmax_scale * 1.4426950408889634 > (double)FLT_MAX)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "softmax_scale is %g, expected a "
                        "finite positive number at most FLT_MAX / log2(e) = "
                        "2.36e38 (or 0 for 1/sqrt(head_dim))",
                        (double)a->softmax_scale);
    if (a->window_left < -1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "window_left is %lld, expected "
                        ">= 0, or -1 for unbounded", (long long)a->window_left);
    if (a->window_right < -1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "window_right is %lld, expected "
                        ">= 0, or -1 for unbounded", (long long)a->window_right);
    if (a->block_m < 0 || a->block_m > MAX_TILE || a->block_n < 0 ||
        a->block_n > MAX_TILE)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "block_m/block_n are %d/%d, "
                        "expected 0 (library's choice) or 1 .. %d", a->block_m,
                        a->block_n, MAX_TILE);
    if (a->num_threads < 0 || a->num_threads > MAX_THREADS)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "num_threads is %d, expected 0 "
                        "(default) or 1 .. %d", a->num_threads, MAX_THREADS);

    p->dtype = a->q.dtype;
    p->heads_q = a->q.shape[2];
    p->heads_kv = a->k.shape[2];
    p->head_dim = d;
    p->scale = a->softmax_scale > 0.0f ? a->softmax_scale
                                       : (float)(1.0 / sqrt((double)d));
    p->scale_log2 = (float)((double)p->scale * 1.4426950408889634);
    p->causal = a->causal != 0;
    p->window_left = a->window_left;
    p->window_right = a->window_right;
    p->block_m = a->block_m;
    p->block_n = a->block_n;
    p->num_threads = a->num_threads > 0 ? a->num_threads : fa2_default_num_threads();
    p->cu_seqlens_q = a->cu_seqlens_q;
    p->cu_seqlens_k = a->cu_seqlens_k;
    p->trace = NULL;
    p->trace_user = NULL;

    if (!varlen) {
        p->num_seqs = a->q.shape[0];
        p->max_seqlen_q = a->q.shape[1];
        p->max_seqlen_k = a->k.shape[1];
        return fa2_mods_validate(a, ops, p);
    }

    /* variable lengths */
    if (!a->cu_seqlens_q || !a->cu_seqlens_k)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL while %s is set; variable "
                        "lengths need both", a->cu_seqlens_q ? "cu_seqlens_k"
                        : "cu_seqlens_q", a->cu_seqlens_q ? "cu_seqlens_q"
                        : "cu_seqlens_k");
    if (a->num_seqs < 1 || a->num_seqs > INT32_MAX)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "num_seqs is %lld, expected >= 1 "
                        "with cu_seqlens", (long long)a->num_seqs);
    if (a->q.shape[0] != 1)
        return fa2_fail(FA2_ERR_SHAPE, "q.shape[0] is %lld; with cu_seqlens the "
                        "sequences are packed along dim 1 and the batch dim must "
                        "be 1", (long long)a->q.shape[0]);
    if (a->q.shape[1] > INT32_MAX || a->k.shape[1] > INT32_MAX)
        return fa2_fail(FA2_ERR_SHAPE, "packed lengths %lld/%lld exceed the int32 "
                        "range of cu_seqlens", (long long)a->q.shape[1],
                        (long long)a->k.shape[1]);
    p->num_seqs = a->num_seqs;
    int64_t max_q = -1, max_k = -1; /* -1: unknown (device memory) */
    if (!ops || !ops->device_memory) {
        if ((st = check_cu_seqlens(a->cu_seqlens_q, "cu_seqlens_q", a->num_seqs,
                                   a->q.shape[1], &max_q)) ||
            (st = check_cu_seqlens(a->cu_seqlens_k, "cu_seqlens_k", a->num_seqs,
                                   a->k.shape[1], &max_k)))
            return st;
    } else if (a->max_seqlen_q < 1 || a->max_seqlen_k < 1) {
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "max_seqlen_q/k are %lld/%lld; "
                        "the %s backend cannot read device cu_seqlens and needs "
                        "both given", (long long)a->max_seqlen_q,
                        (long long)a->max_seqlen_k, ops->name);
    }
    if ((st = check_max_seqlen(a->max_seqlen_q, max_q, a->q.shape[1],
                               "max_seqlen_q", &p->max_seqlen_q)) ||
        (st = check_max_seqlen(a->max_seqlen_k, max_k, a->k.shape[1],
                               "max_seqlen_k", &p->max_seqlen_k)))
        return st;
    return fa2_mods_validate(a, ops, p);
}
