/*
 * fuzz_fa2.c — a libFuzzer harness over fa2's public entry points: fa2_fwd,
 * fa2_bwd, their _check forms, fa2_fwd_flops / fa2_bwd_flops and
 * fa2_cuda_bwd_workspace_size, on the CPU backends (and the CUDA one, which
 * in a build without CUDA must say so after validating).
 *
 * Each input is read as an argument set: shapes, strides (dense, padded or
 * arbitrary int64), dtypes, masks and windows (INT64 extremes included),
 * max_seqlen, cu_seqlens (sometimes corrupt), softmax_scale (NaN, inf,
 * huge), tiles, threads, and tensor values (NaN and inf now and then).
 * Every buffer is allocated with exactly the bytes its tensor claims to
 * span, so ASan sees any access outside what the arguments allow; a tensor
 * whose claim is too large to allocate is checked only (fa2_*_check, which
 * touches no tensor memory).
 *
 * What counts as a finding (besides ASan/UBSan reports, crashes and hangs):
 *   - a call that fails and wrote to an output anyway;
 *   - a call that succeeds and left an output element unwritten;
 *   - a success with finite, moderate inputs (|x| <= 4, scale <= 1) whose O,
 *     LSE or gradients are not finite (LSE may be +inf: a row that sees no
 *     key);
 *   - a failure with an empty fa2_last_error(), or a success with a
 *     non-empty one.
 *
 * Build: ../configure CC=clang --enable-fuzzing && make tests/fuzz/fuzz_fa2
 * Run:   tests/fuzz/fuzz_fa2 -max_total_time=60   (.ci/run does this)
 */
#include "fa2.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the input ------------------------------------------------------ */

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint64_t take(reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = v << 8 | (r->n ? *r->p : 0);
        if (r->n)
            r->p++, r->n--;
    }
    return v;
}

static int64_t pick(reader *r, const int64_t *choices, int n)
{
    return choices[take(r, 1) % (uint64_t)n];
}

/* A size: mostly small, sometimes 0 or an extreme. */
static int64_t take_size(reader *r, int64_t small)
{
    const uint64_t k = take(r, 1);
    if (k < 240)
        return (int64_t)(k % (uint64_t)(small + 1));
    static const int64_t odd[] = {0, -1, INT32_MAX, (int64_t)1 << 32,
                                  (int64_t)1 << 62, INT64_MAX, INT64_MIN,
                                  (int64_t)1 << 40};
    return odd[k % 8];
}

/* A window edge: -1 (unbounded), small, or an extreme. */
static int64_t take_window(reader *r)
{
    static const int64_t w[] = {-1, -1, -1, 0, 1, 3, 7, 16, 40, INT64_MAX,
                                INT64_MAX - 1, (int64_t)1 << 62, -2, INT64_MIN,
                                (int64_t)1 << 31, 1000};
    return pick(r, w, 16);
}

static float take_scale(reader *r)
{
    const uint64_t k0 = take(r, 1) % 32;
    if (k0 < 16)
        return k0 < 12 ? 0.0f : k0 == 12 ? 1e20f : k0 == 13 ? 1e-3f : 1.0f;
    const uint64_t k = k0 % 16;
    static const float s[] = {0.0f, 0.0f, 0.0f, 0.125f, 1.0f, 1e-3f, 1e20f,
                              3e38f, 2e38f, -1.0f, 1e-40f, 0.5f};
    if (k < 12)
        return s[k];
    if (k == 12)
        return NAN;
    if (k == 13)
        return INFINITY;
    const uint32_t bits = (uint32_t)take(r, 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---- tensors whose buffer is exactly what they claim ------------------------- */

typedef struct buf {
    void *data;   /* exactly `bytes` long (at least 1)       */
    size_t bytes;
    int real;     /* allocated to its claim (else a 1-element stand-in) */
} buf;

#define CLAIM_CAP ((size_t)8 << 20) /* bytes per tensor we allocate for real */

static size_t dsize(fa2_dtype t)
{
    const size_t s = fa2_dtype_size(t);
    return s ? s : 4;
}

/* Bytes spanned by t (first ndim dims), or 0 if the claim cannot be
 * computed (negative/overflowing strides) or is beyond CLAIM_CAP. */
static size_t claimed_bytes(const fa2_tensor *t, int ndim)
{
    __int128 off = 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0)
            return 1; /* empty: touches nothing */
    for (int i = 0; i < ndim; i++) {
        if (t->shape[i] == 1)
            continue;
        if (t->stride[i] < 0)
            return 0;
        off += (__int128)(t->shape[i] - 1) * t->stride[i]; /* < 2^126 */
        if (off > (__int128)CLAIM_CAP)
            return 0;
    }
    const __int128 bytes = (off + 1) * (__int128)dsize(t->dtype);
    return bytes > (__int128)CLAIM_CAP ? 0 : (size_t)bytes;
}

/* Allocate t's buffer; fill it with values drawn from r (finite small
 * values, or now and then NaN / inf / huge when wild). */
static void buf_make(buf *b, fa2_tensor *t, int ndim, reader *r, int wild,
                     uint64_t *rng)
{
    const size_t claim = claimed_bytes(t, ndim);
    b->real = claim > 0;
    b->bytes = b->real ? claim : 16;
    b->data = malloc(b->bytes);
    const size_t es = dsize(t->dtype), n = b->bytes / es;
    for (size_t i = 0; i < n; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t x = (uint32_t)(*rng >> 33);
        float v = ((float)(x % 2001) - 1000.0f) / 250.0f; /* [-4, 4] */
        if (wild && x % 97 == 0)
            v = (x / 97) % 3 == 0 ? NAN : (x / 97) % 3 == 1 ? INFINITY : 6e4f;
        if (t->dtype == FA2_DTYPE_FP16) {
            const uint16_t h = fa2_float_to_fp16(v);
            memcpy((char *)b->data + i * 2, &h, 2);
        } else if (t->dtype == FA2_DTYPE_BF16) {
            const uint16_t h = fa2_float_to_bf16(v);
            memcpy((char *)b->data + i * 2, &h, 2);
        } else {
            memcpy((char *)b->data + i * es, &v, sizeof v < es ? sizeof v : es);
        }
    }
    (void)r;
    t->data = b->data;
}

/* The sentinel an output starts as: a NaN payload no computation makes. */
static void buf_sentinel(buf *b, fa2_dtype dt)
{
    const size_t es = dsize(dt);
    for (size_t i = 0; i + es <= b->bytes; i += es) {
        if (es == 2) {
            const uint16_t s = 0x7d5a;
            memcpy((char *)b->data + i, &s, 2);
        } else {
            const uint32_t s = 0x7fa5a5a5u;
            memcpy((char *)b->data + i, &s, 4);
        }
    }
}

static int buf_all_sentinel(const buf *b, fa2_dtype dt)
{
    const size_t es = dsize(dt);
    for (size_t i = 0; i + es <= b->bytes; i += es) {
        uint32_t v = 0;
        memcpy(&v, (const char *)b->data + i, es);
        if (v != (es == 2 ? 0x7d5au : 0x7fa5a5a5u))
            return 0;
    }
    return 1;
}

/* Value of element [i0, i1, i2, i3] of a valid, checked tensor as float;
 * *sentinel set if it still holds the sentinel. */
static float elem(const fa2_tensor *t, int ndim, const int64_t *idx, int *sentinel)
{
    int64_t off = 0;
    for (int i = 0; i < ndim; i++)
        off += idx[i] * t->stride[i];
    const size_t es = dsize(t->dtype);
    uint32_t v = 0;
    memcpy(&v, (const char *)t->data + off * (int64_t)es, es);
    *sentinel = v == (es == 2 ? 0x7d5au : 0x7fa5a5a5u);
    if (t->dtype == FA2_DTYPE_FP16)
        return fa2_fp16_to_float((uint16_t)v);
    if (t->dtype == FA2_DTYPE_BF16)
        return fa2_bf16_to_float((uint16_t)v);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static void finding(const char *what)
{
    fprintf(stderr, "fuzz_fa2 finding: %s (last error: \"%s\")\n", what,
            fa2_last_error());
    abort();
}

/* Every element of an output that a successful call must have written:
 * not the sentinel; finite when `finite` (LSE may be +inf). */
static void check_output(const fa2_tensor *t, int ndim, int finite, int is_lse,
                         const char *name)
{
    int64_t idx[4] = {0, 0, 0, 0};
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0)
            return;
    for (;;) {
        int sentinel;
        const float v = elem(t, ndim, idx, &sentinel);
        if (sentinel) {
            fprintf(stderr, "%s element unwritten\n", name);
            finding("a successful call left an output element unwritten");
        }
        if (finite && !(isfinite(v) || (is_lse && v == INFINITY))) {
            fprintf(stderr, "%s element %g\n", name, (double)v);
            finding("finite moderate inputs gave a non-finite output");
        }
        int d = ndim - 1;
        while (d >= 0 && ++idx[d] == t->shape[d])
            idx[d--] = 0;
        if (d < 0)
            return;
    }
}

/* Does row i of a sequence (nq queries, nk keys) see any key? Worked out
 * here from the documented rule, in 128-bit arithmetic, independently of
 * the library's own mask code. */
static int row_sees_a_key(const fa2_fwd_args *a, int64_t nq, int64_t nk, int64_t i)
{
    const __int128 diag = (__int128)i + nk - nq;
    const int64_t wr = a->causal ? 0 : a->window_right;
    __int128 lo = 0, hi = (__int128)nk - 1;
    if (a->window_left >= 0 && diag - a->window_left > lo)
        lo = diag - a->window_left;
    if (wr >= 0 && diag + wr < hi)
        hi = diag + wr;
    return lo <= hi;
}

/* After a successful forward on finite, moderate inputs: LSE is +inf
 * exactly on the rows that see no key; with `ref` (the oracle's outputs in
 * buffers laid out like o and lse), O and LSE agree with it within tol. */
static void check_forward(const fa2_fwd_args *a, const fa2_tensor *ref_o,
                          const fa2_tensor *ref_lse, float tol)
{
    const int64_t nseq = a->cu_seqlens_q ? a->num_seqs : a->q.shape[0];
    const int64_t H = a->q.shape[2], d = a->q.shape[3];
    for (int64_t sq = 0; sq < nseq; sq++) {
        const int64_t b = a->cu_seqlens_q ? 0 : sq;
        const int64_t q0 = a->cu_seqlens_q ? a->cu_seqlens_q[sq] : 0;
        const int64_t nq = a->cu_seqlens_q ? a->cu_seqlens_q[sq + 1] - q0 : a->q.shape[1];
        const int64_t nk = a->cu_seqlens_k
                               ? a->cu_seqlens_k[sq + 1] - a->cu_seqlens_k[sq]
                               : a->k.shape[1];
        for (int64_t i = 0; i < nq; i++)
            for (int64_t h = 0; h < H; h++) {
                const int64_t li[3] = {b, h, q0 + i};
                int sent;
                if (a->lse.data) {
                    const float l = elem(&a->lse, 3, li, &sent);
                    const int sees = row_sees_a_key(a, nq, nk, i);
                    if (sees ? !isfinite(l) : l != INFINITY) {
                        fprintf(stderr, "row %lld of sequence %lld (%lld x %lld, "
                                "window %lld/%lld causal %d): LSE %g\n",
                                (long long)i, (long long)sq, (long long)nq,
                                (long long)nk, (long long)a->window_left,
                                (long long)a->window_right, a->causal, (double)l);
                        finding("LSE is +inf exactly on rows that see no key: not so");
                    }
                    if (ref_lse && sees &&
                        fabsf(l - elem(ref_lse, 3, li, &sent)) > tol * (1.0f + fabsf(l)))
                        finding("LSE differs from the oracle's");
                }
                for (int64_t c = 0; ref_o && c < d; c++) {
                    const int64_t oi[4] = {b, q0 + i, h, c};
                    const float o = elem(&a->o, 4, oi, &sent);
                    const float r = elem(ref_o, 4, oi, &sent);
                    if (!(fabsf(o - r) <= tol * (1.0f + fabsf(r)))) {
                        fprintf(stderr, "O %g, oracle %g\n", (double)o, (double)r);
                        finding("O differs from the oracle's");
                    }
                }
            }
    }
}

static void set_shape(fa2_tensor *t, fa2_dtype dt, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3)
{
    *t = fa2_tensor_4d(NULL, dt, d0, d1, d2, d3);
}

/* Strides: dense (most), padded, or arbitrary. */
static void take_strides(reader *r, fa2_tensor *t, int ndim)
{
    const uint64_t mode = take(r, 1) % 32;
    if (mode < 26)
        return; /* dense */
    if (mode < 31) { /* padded: each outer stride grows by a little */
        int64_t s = 1; /* saturating: absurd shapes make absurd, refused claims */
        for (int i = ndim - 1; i >= 0; i--) {
            const int64_t pad = i == ndim - 1 ? 0 : (int64_t)(take(r, 1) % 5);
            if (__builtin_add_overflow(s, pad, &t->stride[i]))
                t->stride[i] = INT64_MAX;
            if (t->shape[i] > 0 && __builtin_mul_overflow(t->stride[i], t->shape[i], &s))
                s = INT64_MAX;
        }
        return;
    }
    for (int i = 0; i < ndim; i++) { /* arbitrary */
        static const int64_t odd[] = {0, -1, 1, 8, INT64_MIN, INT64_MAX,
                                      (int64_t)1 << 62, (int64_t)1 << 40};
        if (take(r, 1) % 2)
            t->stride[i] = pick(r, odd, 8);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_FA2_STATS=1: print how many calls got each status (to see that the
 * inputs reach the backends, not only validation). */
static long status_count[FA2_STATUS_COUNT + 1];
static void print_stats(void)
{
    for (int i = 0; i <= FA2_STATUS_COUNT; i++)
        if (status_count[i])
            fprintf(stderr, "%-26s %ld\n", i < FA2_STATUS_COUNT ?
                    fa2_status_str((fa2_status)i) : "(not run: too large)",
                    status_count[i]);
}
static void count(fa2_status st)
{
    static int registered;
    if (!registered && getenv("FUZZ_FA2_STATS")) {
        atexit(print_stats);
        registered = 1;
    }
    status_count[(int)st >= 0 && (int)st < FA2_STATUS_COUNT ? (int)st : 0]++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader rd = {data, size}, *r = &rd;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ take(r, 4);

    const int bwd = (int)(take(r, 1) % 2);
    static const int64_t be_choice[] = {FA2_BACKEND_CPU_ORACLE,
                                        FA2_BACKEND_CPU_STANDARD,
                                        FA2_BACKEND_CPU_TILED,
                                        FA2_BACKEND_CPU_TILED,
                                        FA2_BACKEND_CUDA, 7};
    const fa2_backend be = (fa2_backend)pick(r, be_choice, 6);
    static const int64_t dt_choice[] = {FA2_DTYPE_FP32, FA2_DTYPE_FP16,
                                        FA2_DTYPE_BF16, FA2_DTYPE_FP16, 9};
    fa2_dtype dt = (fa2_dtype)pick(r, dt_choice, 4);
    if (take(r, 1) % 32 == 0)
        dt = (fa2_dtype)dt_choice[4]; /* unknown */
    const int wild = take(r, 1) % 4 == 0; /* NaN / inf in the inputs */
    const int varlen = take(r, 1) % 3 == 0;

    int64_t B = take_size(r, 3), Nq = take_size(r, 40), Nk = take_size(r, 40);
    if (B == 0 && take(r, 1) % 4)
        B = 1; /* batch 0 now and then, not mostly */
    int64_t Hkv = 1 + (int64_t)(take(r, 1) % 3), Hq = Hkv * (1 + (int64_t)(take(r, 1) % 2));
    int64_t d = 8 * (1 + (int64_t)(take(r, 1) % 8));
    if (take(r, 1) % 16 == 0)
        Hq += 1; /* not a multiple */
    if (take(r, 1) % 16 == 0)
        d = take_size(r, 300);

    /* variable lengths: num_seqs sequences packed along dim 1 */
    int32_t cu_q[6] = {0}, cu_k[6] = {0};
    int64_t num_seqs = 0;
    if (varlen) {
        num_seqs = 1 + (int64_t)(take(r, 1) % 4);
        B = 1;
        for (int64_t s = 0; s < num_seqs; s++) {
            cu_q[s + 1] = cu_q[s] + (int32_t)(take(r, 1) % 20);
            cu_k[s + 1] = cu_k[s] + (int32_t)(take(r, 1) % 20);
        }
        Nq = cu_q[num_seqs];
        Nk = cu_k[num_seqs];
        if (take(r, 1) % 8 == 0) /* corrupt one entry */
            cu_q[take(r, 1) % (uint64_t)(num_seqs + 1)] += (int32_t)(take(r, 1) % 7) - 3;
        if (take(r, 1) % 16 == 0)
            num_seqs += 1; /* claims one more than the arrays hold: must be caught
                              by cu[num_seqs] != total, reading cu_q[num_seqs]
                              within the 6-entry arrays */
    }

    fa2_tensor q, k, v, o, lse, dout, dq, dk, dv;
    set_shape(&q, dt, B, Nq, Hq, d);
    set_shape(&k, dt, B, Nk, Hkv, d);
    set_shape(&v, dt, B, Nk, Hkv, d);
    set_shape(&o, dt, B, Nq, Hq, d);
    lse = fa2_tensor_lse(NULL, B, Hq, Nq);
    set_shape(&dout, dt, B, Nq, Hq, d);
    set_shape(&dq, dt, B, Nq, Hq, d);
    set_shape(&dk, dt, B, Nk, Hkv, d);
    set_shape(&dv, dt, B, Nk, Hkv, d);
    fa2_tensor *ts[9] = {&q, &k, &v, &o, &lse, &dout, &dq, &dk, &dv};
    const int nd[9] = {4, 4, 4, 4, 3, 4, 4, 4, 4};
    for (int i = 0; i < 9; i++)
        take_strides(r, ts[i], nd[i]);

    const int causal = (int)(take(r, 1) % 2);
    const int64_t wl = take_window(r), wr = take_window(r);
    const float scale = take_scale(r);
    static const int64_t blocks[] = {0, 0, 1, 3, 8, 16, 64, 128, 1025, -1};
    const int bm = (int)pick(r, blocks, take(r, 1) % 16 ? 8 : 10);
    const int bn = (int)pick(r, blocks, take(r, 1) % 16 ? 8 : 10);
    static const int64_t threads[] = {1, 2, 3, 0, -1, 5000};
    int nt = (int)pick(r, threads, take(r, 1) % 16 ? 4 : 6);
    if (nt == 0)
        nt = 2; /* the default is the core count: keep the harness small */
    int64_t msq = 0, msk = 0;
    if (varlen) {
        static const int64_t ms[] = {0, 0, 1, 19, 20, 40, INT32_MAX,
                                     (int64_t)1 << 32, INT64_MAX, -1};
        msq = pick(r, ms, take(r, 1) % 8 ? 6 : 10);
        msk = pick(r, ms, take(r, 1) % 8 ? 6 : 10);
    }
    const int no_lse = !bwd && take(r, 1) % 4 == 0;
    const int deterministic = (int)(take(r, 1) % 16 == 15 ? 2 : take(r, 1) % 2);

    /* buffers: exactly the claimed spans */
    buf bufs[9];
    int all_real = 1;
    for (int i = 0; i < 9; i++) {
        buf_make(&bufs[i], ts[i], nd[i], r, wild && i < 3, &rng);
        all_real &= bufs[i].real;
    }
    const int moderate = !wild && scale <= 1.0f && isfinite(scale);

    fa2_status st;
    if (!bwd) {
        fa2_fwd_args a;
        fa2_fwd_args_init(&a);
        a.q = q, a.k = k, a.v = v, a.o = o;
        if (!no_lse)
            a.lse = lse;
        a.softmax_scale = scale;
        a.causal = causal;
        a.window_left = wl, a.window_right = wr;
        if (varlen) {
            a.cu_seqlens_q = cu_q, a.cu_seqlens_k = cu_k;
            a.num_seqs = num_seqs;
            a.max_seqlen_q = msq, a.max_seqlen_k = msk;
        }
        a.block_m = bm, a.block_n = bn;
        a.num_threads = nt;
        const fa2_status chk = fa2_fwd_check(&a, be);
        (void)fa2_fwd_flops(&a);
        if (all_real) {
            buf_sentinel(&bufs[3], o.dtype);
            buf_sentinel(&bufs[4], FA2_DTYPE_FP32);
            st = fa2_fwd(&a, be);
            count(st);
            if (st != chk && be != FA2_BACKEND_CUDA)
                finding("fa2_fwd and fa2_fwd_check disagree");
            if (st != FA2_OK) {
                if (!fa2_last_error()[0])
                    finding("a failure without a sentence");
                if (!buf_all_sentinel(&bufs[3], o.dtype) ||
                    !buf_all_sentinel(&bufs[4], FA2_DTYPE_FP32))
                    finding("a failed forward wrote to o or lse");
            } else {
                if (fa2_last_error()[0])
                    finding("a success with a last error");
                check_output(&a.o, 4, moderate, 0, "o");
                if (!no_lse)
                    check_output(&a.lse, 3, moderate, 1, "lse");
                if (moderate && be == FA2_BACKEND_CPU_TILED && scale == 0.0f) {
                    /* the mirror against the oracle (default scale: scores
                     * <= 16 sqrt(d), where P's rounding is all that differs) */
                    buf ro, rl;
                    fa2_fwd_args b = a;
                    ro.bytes = bufs[3].bytes, rl.bytes = bufs[4].bytes;
                    ro.data = malloc(ro.bytes), rl.data = malloc(rl.bytes);
                    b.o.data = ro.data;
                    if (!no_lse)
                        b.lse.data = rl.data;
                    if (fa2_fwd(&b, FA2_BACKEND_CPU_ORACLE) != FA2_OK)
                        finding("the oracle refused what the tiled backend took");
                    const float tol = dt == FA2_DTYPE_FP32 ? 1e-4f
                                      : dt == FA2_DTYPE_FP16 ? 1e-2f : 4e-2f;
                    check_forward(&a, &b.o, no_lse ? NULL : &b.lse, tol);
                    free(ro.data);
                    free(rl.data);
                } else if (moderate) {
                    check_forward(&a, NULL, NULL, 0.0f);
                }
            }
        }
    } else {
        fa2_bwd_args a;
        fa2_bwd_args_init(&a);
        a.q = q, a.k = k, a.v = v, a.o = o, a.lse = lse, a.dout = dout;
        a.dq = dq, a.dk = dk, a.dv = dv;
        a.softmax_scale = scale;
        a.causal = causal;
        a.window_left = wl, a.window_right = wr;
        if (varlen) {
            a.cu_seqlens_q = cu_q, a.cu_seqlens_k = cu_k;
            a.num_seqs = num_seqs;
            a.max_seqlen_q = msq, a.max_seqlen_k = msk;
        }
        a.block_m = bm, a.block_n = bn;
        a.num_threads = nt;
        a.deterministic = deterministic;
        const fa2_status chk = fa2_bwd_check(&a, be);
        (void)fa2_bwd_flops(&a);
        size_t ws = 0;
        (void)fa2_cuda_bwd_workspace_size(&a, &ws);
        if (all_real) {
            /* o and lse from this backend's forward when it accepts them,
             * so that moderate inputs give a meaningful backward */
            fa2_fwd_args f;
            fa2_fwd_args_init(&f);
            f.q = q, f.k = k, f.v = v, f.o = o, f.lse = lse;
            f.softmax_scale = scale, f.causal = causal;
            f.window_left = wl, f.window_right = wr;
            if (varlen) {
                f.cu_seqlens_q = cu_q, f.cu_seqlens_k = cu_k;
                f.num_seqs = num_seqs;
                f.max_seqlen_q = msq, f.max_seqlen_k = msk;
            }
            f.num_threads = nt;
            const int have_fwd = fa2_fwd(&f, be) == FA2_OK;
            for (int i = 6; i < 9; i++)
                buf_sentinel(&bufs[i], ts[i]->dtype);
            st = fa2_bwd(&a, be);
            count(st);
            if (st != chk && be != FA2_BACKEND_CUDA)
                finding("fa2_bwd and fa2_bwd_check disagree");
            if (st != FA2_OK) {
                if (!fa2_last_error()[0])
                    finding("a failure without a sentence");
                for (int i = 6; i < 9; i++)
                    if (!buf_all_sentinel(&bufs[i], ts[i]->dtype))
                        finding("a failed backward wrote to a gradient");
            } else {
                if (fa2_last_error()[0])
                    finding("a success with a last error");
                /* fp16 gradients of random data may overflow honestly
                 * (dk sums up to 40 rows of |dS q| ~ 1e3): not checked */
                const int fin = moderate && have_fwd && dt != FA2_DTYPE_FP16;
                check_output(&a.dq, 4, fin, 0, "dq");
                check_output(&a.dk, 4, fin, 0, "dk");
                check_output(&a.dv, 4, fin, 0, "dv");
            }
        }
    }
    if (!all_real)
        status_count[FA2_STATUS_COUNT]++;
    for (int i = 0; i < 9; i++)
        free(bufs[i].data);
    return 0;
}
