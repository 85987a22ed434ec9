/*
 * test_cuda_bwd.c — the CUDA backward kernels against the CPU mirror (run
 * with the kernels' own tiling, fa2_tile_config_for(FA2_BACKEND_CUDA,
 * FA2_PASS_BWD)) and the float64 oracle, over the backward property grid:
 * dtype x head dim x causal (bottom-right) x window x GQA/MQA x varlen
 * (empty and length-1 sequences) x odd lengths x strided layouts x
 * deterministic; the score modifiers and dropout (softcap, ALiBi, sinks with
 * their gradient dsinks, dropout) alone and together over that grid's
 * masks; plus determinism (bit-identical runs), the checks only the
 * CUDA backend makes, the tiling query and, in a --enable-traffic-counters
 * build, the exact global-memory byte counts against fa2 sim --no-l2.
 *
 * Every case: fresh random inputs (seed printed; FA2_TEST_SEED reproduces);
 * O and LSE from the CPU forward (so that both backwards see the same
 * inputs); dq, dk, dv and the memory around them poisoned, then
 *   - every gradient element written, nothing outside the views;
 *   - |grad_gpu - grad_mirror| within a few ulp of the dtype at the scale
 *     of the gradient row (its largest element in the mirror);
 *   - max|grad_gpu - oracle| <= 2 max|grad_standard - oracle| + floor per
 *     gradient, floor = the forward's absolute floor + one unit roundoff of
 *     the gradient's largest magnitude (tests/test_bwd.c's grad_floor).
 *
 * Exits 77 (automake SKIP) without a usable GPU; runs in Check's no-fork
 * mode. FA2_GPU_TEST_QUICK=1 runs a small subset (for compute-sanitizer).
 */
#include "config.h"
#include "fa2.h"
#include "fa2_internal.h"
#include "fa2_cpu.h" /* the float64 oracle */

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef FA2_HAVE_CUDA
#include <cuda_runtime.h>

#include "gpu_tensor.h"

static double ulp_of(fa2_dtype dt, double x)
{
    const int mant = dt == FA2_DTYPE_FP16 ? 10 : dt == FA2_DTYPE_BF16 ? 7 : 23;
    const int emin = dt == FA2_DTYPE_FP16 ? -14 : -126;
    int e;
    x = fabs(x);
    if (x == 0.0)
        return ldexp(1.0, emin - mant);
    frexp(x, &e); /* x = f 2^e, f in [0.5, 1) */
    e -= 1;
    if (e < emin)
        e = emin;
    return ldexp(1.0, e - mant);
}

/* ---- one problem ---------------------------------------------------------- */

#define MAX_SEQS 8

typedef struct spec {
    fa2_dtype dtype;
    int d;
    int64_t batch, nq, nk; /* fixed lengths */
    int nseq;              /* > 0: variable lengths */
    int64_t lens_q[MAX_SEQS], lens_k[MAX_SEQS];
    int hq, hkv;
    int causal;
    int64_t wl, wr;
    float scale;
    layout lay, out_lay; /* inputs; the gradients */
    int deterministic;
    int64_t nan_q_row;   /* >= 0: q[0, row, 0, 3] = NaN before the forward */
    float qk_value;      /* != 0: every element of q and k set to it     */
    /* score modifiers and dropout (doc/algorithm.md section 7); 0 = off */
    float softcap, dropout;
    int alibi, sinks;
} spec;

static void spec_init(spec *s, fa2_dtype dt, int d)
{
    memset(s, 0, sizeof *s);
    s->dtype = dt;
    s->d = d;
    s->batch = 1;
    s->nq = s->nk = 1;
    s->hq = s->hkv = 1;
    s->wl = s->wr = -1;
    s->nan_q_row = -1;
}

static void spec_describe(const spec *s, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s d=%d H=%d/%d %swin=(%lld,%lld) scale=%g in=%s "
                     "grad=%s%s ", fa2_dtype_name(s->dtype), s->d, s->hq, s->hkv,
                     s->causal ? "causal " : "", (long long)s->wl,
                     (long long)s->wr, (double)s->scale, layout_names[s->lay],
                     layout_names[s->out_lay], s->deterministic ? " det" : "");
    if (s->softcap > 0.0f || s->alibi || s->sinks || s->dropout > 0.0f)
        k += snprintf(buf + k, n - (size_t)k, "mods=(softcap %g%s%s dropout %g) ",
                      (double)s->softcap, s->alibi ? " alibi" : "",
                      s->sinks ? " sinks" : "", (double)s->dropout);
    if (s->nseq > 0) {
        k += snprintf(buf + k, n - (size_t)k, "varlen q=[");
        for (int i = 0; i < s->nseq; i++)
            k += snprintf(buf + k, n - (size_t)k, "%s%lld", i ? "," : "",
                          (long long)s->lens_q[i]);
        k += snprintf(buf + k, n - (size_t)k, "] k=[");
        for (int i = 0; i < s->nseq; i++)
            k += snprintf(buf + k, n - (size_t)k, "%s%lld", i ? "," : "",
                          (long long)s->lens_k[i]);
        snprintf(buf + k, n - (size_t)k, "]");
    } else {
        snprintf(buf + k, n - (size_t)k, "B=%lld Nq=%lld Nk=%lld",
                 (long long)s->batch, (long long)s->nq, (long long)s->nk);
    }
}

typedef struct problem {
    spec s;
    gtensor q, k, v, o, lse, dout, dq, dk, dv;
    int32_t cu_q[MAX_SEQS + 1], cu_k[MAX_SEQS + 1];
    int32_t *d_cu_q, *d_cu_k;
    int64_t max_q, max_k;
    /* the modifiers' arrays: ALiBi slopes [b * hq + h], sink logits [h],
     * dsinks [h] (host), and their device copies */
    float slopes[MAX_SEQS * 32], sinks[32], dsinks[32];
    float *d_slopes, *d_sinks, *d_dsinks;
    fa2_bwd_args host_args, dev_args;
    char desc[400];
} problem;

static void problem_init(problem *p, const spec *s, uint64_t *rng)
{
    memset(p, 0, sizeof *p);
    p->s = *s;
    spec_describe(s, p->desc, sizeof p->desc);
    int64_t B = s->batch, tq = s->nq, tk = s->nk;
    p->max_q = s->nq;
    p->max_k = s->nk;
    if (s->nseq > 0) {
        B = 1;
        p->cu_q[0] = p->cu_k[0] = 0;
        p->max_q = p->max_k = 1;
        for (int i = 0; i < s->nseq; i++) {
            p->cu_q[i + 1] = p->cu_q[i] + (int32_t)s->lens_q[i];
            p->cu_k[i + 1] = p->cu_k[i] + (int32_t)s->lens_k[i];
            p->max_q = s->lens_q[i] > p->max_q ? s->lens_q[i] : p->max_q;
            p->max_k = s->lens_k[i] > p->max_k ? s->lens_k[i] : p->max_k;
        }
        tq = p->cu_q[s->nseq];
        tk = p->cu_k[s->nseq];
    }
    const int64_t qs[4] = {B, tq, s->hq, s->d}, ks[4] = {B, tk, s->hkv, s->d};
    const int64_t ls[3] = {B, s->hq, tq};
    gt_alloc(&p->q, s->dtype, 4, qs, s->lay);
    gt_alloc(&p->k, s->dtype, 4, ks, s->lay);
    gt_alloc(&p->v, s->dtype, 4, ks, s->lay);
    gt_alloc(&p->o, s->dtype, 4, qs, s->lay);
    gt_alloc(&p->lse, FA2_DTYPE_FP32, 3, ls, s->lay);
    gt_alloc(&p->dout, s->dtype, 4, qs, s->lay);
    gt_alloc(&p->dq, s->dtype, 4, qs, s->out_lay);
    gt_alloc(&p->dk, s->dtype, 4, ks, s->out_lay);
    gt_alloc(&p->dv, s->dtype, 4, ks, s->out_lay);
    gt_fill(&p->q, rng, 1.0);
    gt_fill(&p->k, rng, 1.0);
    gt_fill(&p->v, rng, 1.0);
    gt_fill(&p->dout, rng, 1.0);
    if (s->qk_value != 0.0f) {
        int64_t idx[4];
        for (int64_t f = 0; f < gt_numel(&p->q); f++) {
            gt_unflatten(&p->q, f, idx);
            gt_set(&p->q, idx, s->qk_value);
        }
        for (int64_t f = 0; f < gt_numel(&p->k); f++) {
            gt_unflatten(&p->k, f, idx);
            gt_set(&p->k, idx, s->qk_value);
        }
    }
    if (s->nan_q_row >= 0) {
        const int64_t idx[4] = {0, s->nan_q_row, 0, 3};
        gt_set(&p->q, idx, NAN);
    }

    /* the modifiers: ALiBi's slopes per (sequence, head), sink logits */
    const int64_t nseq = s->nseq > 0 ? s->nseq : s->batch;
    ck_assert(s->hq <= 32 && nseq <= MAX_SEQS);
    for (int64_t b = 0; b < nseq; b++)
        for (int h = 0; h < s->hq; h++)
            p->slopes[b * s->hq + h] = (float)(pow(2.0, -8.0 * (h + 1) / s->hq) *
                                               (1.0 + 0.5 * (double)b));
    for (int h = 0; h < s->hq; h++)
        p->sinks[h] = (float)(unif(rng) * 4.0 - 2.0);

    /* O and LSE from the CPU mirror's forward: both backwards get the same */
    fa2_fwd_args f;
    fa2_fwd_args_init(&f);
    f.softcap = s->softcap;
    f.alibi_slopes = s->alibi ? p->slopes : NULL;
    f.alibi_batch_stride = s->alibi ? s->hq : 0;
    f.sinks = s->sinks ? p->sinks : NULL;
    f.dropout_p = s->dropout;
    f.dropout_seed = 0x5eed0000ULL + (uint64_t)s->d;
    f.dropout_offset = 3;
    f.q = p->q.host;
    f.k = p->k.host;
    f.v = p->v.host;
    f.o = p->o.host;
    f.lse = p->lse.host;
    f.softmax_scale = s->scale;
    f.causal = s->causal;
    f.window_left = s->wl;
    f.window_right = s->wr;
    if (s->nseq > 0) {
        f.cu_seqlens_q = p->cu_q;
        f.cu_seqlens_k = p->cu_k;
        f.num_seqs = s->nseq;
    }
    ck_assert_msg(fa2_fwd(&f, FA2_BACKEND_CPU_TILED) == FA2_OK,
                  "CPU forward failed on %s: %s", p->desc, fa2_last_error());
    gt_upload(&p->q);
    gt_upload(&p->k);
    gt_upload(&p->v);
    gt_upload(&p->o);
    gt_upload(&p->lse);
    gt_upload(&p->dout);

    fa2_bwd_args *a = &p->host_args;
    fa2_bwd_args_init(a);
    a->q = p->q.host;
    a->k = p->k.host;
    a->v = p->v.host;
    a->o = p->o.host;
    a->lse = p->lse.host;
    a->dout = p->dout.host;
    a->dq = p->dq.host;
    a->dk = p->dk.host;
    a->dv = p->dv.host;
    a->softmax_scale = s->scale;
    a->causal = s->causal;
    a->window_left = s->wl;
    a->window_right = s->wr;
    a->deterministic = s->deterministic;
    a->softcap = f.softcap;
    a->alibi_slopes = f.alibi_slopes;
    a->alibi_batch_stride = f.alibi_batch_stride;
    a->sinks = f.sinks;
    a->dsinks = s->sinks ? p->dsinks : NULL;
    a->dropout_p = f.dropout_p;
    a->dropout_seed = f.dropout_seed;
    a->dropout_offset = f.dropout_offset;
    if (s->nseq > 0) {
        a->cu_seqlens_q = p->cu_q;
        a->cu_seqlens_k = p->cu_k;
        a->num_seqs = s->nseq;
        const size_t bytes = sizeof(int32_t) * (size_t)(s->nseq + 1);
        cuda_ok(cudaMalloc((void **)&p->d_cu_q, bytes), "cudaMalloc");
        cuda_ok(cudaMalloc((void **)&p->d_cu_k, bytes), "cudaMalloc");
        cuda_ok(cudaMemcpy(p->d_cu_q, p->cu_q, bytes, cudaMemcpyHostToDevice),
                "cudaMemcpy");
        cuda_ok(cudaMemcpy(p->d_cu_k, p->cu_k, bytes, cudaMemcpyHostToDevice),
                "cudaMemcpy");
    }
    p->dev_args = *a;
    fa2_bwd_args *g = &p->dev_args;
    g->q = p->q.dev;
    g->k = p->k.dev;
    g->v = p->v.dev;
    g->o = p->o.dev;
    g->lse = p->lse.dev;
    g->dout = p->dout.dev;
    g->dq = p->dq.dev;
    g->dk = p->dk.dev;
    g->dv = p->dv.dev;
    if (s->alibi || s->sinks) {
        p->d_slopes = gpu_copy_of(p->slopes, sizeof p->slopes);
        p->d_sinks = gpu_copy_of(p->sinks, sizeof p->sinks);
        p->d_dsinks = gpu_copy_of(NULL, sizeof p->dsinks);
        g->alibi_slopes = s->alibi ? p->d_slopes : NULL;
        g->sinks = s->sinks ? p->d_sinks : NULL;
        g->dsinks = s->sinks ? p->d_dsinks : NULL;
    }
    if (s->nseq > 0) {
        g->cu_seqlens_q = p->d_cu_q;
        g->cu_seqlens_k = p->d_cu_k;
        g->max_seqlen_q = p->max_q;
        g->max_seqlen_k = p->max_k;
    }
}

static void problem_free(problem *p)
{
    gtensor *all[9] = {&p->q, &p->k, &p->v, &p->o, &p->lse,
                       &p->dout, &p->dq, &p->dk, &p->dv};
    for (int i = 0; i < 9; i++)
        gt_free(all[i]);
    if (p->d_cu_q)
        cudaFree(p->d_cu_q);
    if (p->d_cu_k)
        cudaFree(p->d_cu_k);
    float *mods[3] = {p->d_slopes, p->d_sinks, p->d_dsinks};
    for (int i = 0; i < 3; i++)
        if (mods[i])
            cudaFree(mods[i]);
}

/* the three gradients of one backend, allocation-sized host buffers, and
 * with sinks dsinks */
typedef struct grads {
    void *g[3];
    float ds[32];
} grads;

static void grads_free(grads *r)
{
    for (int i = 0; i < 3; i++) {
        free(r->g[i]);
        r->g[i] = NULL;
    }
}

static gtensor *grad_tensor(problem *p, int i)
{
    return i == 0 ? &p->dq : i == 1 ? &p->dk : &p->dv;
}

static const char *const grad_names[3] = {"dq", "dk", "dv"};

static void run_cpu_args(problem *p, fa2_backend b, fa2_bwd_args a, grads *r)
{
    if (b == FA2_BACKEND_CPU_TILED) { /* mirror the kernels' tiling */
        fa2_tile_config cfg;
        ck_assert_msg(fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD,
                                          p->s.dtype, p->s.d, &cfg) == FA2_OK,
                      "fa2_tile_config_for: %s", fa2_last_error());
        a.block_m = cfg.block_m;
        a.block_n = cfg.block_n;
    }
    for (int i = 0; i < 3; i++) {
        gtensor *x = grad_tensor(p, i);
        memset(x->h_base, 0xFF, (size_t)x->n_alloc * x->esize);
    }
    memset(p->dsinks, 0xFF, sizeof p->dsinks);
    const fa2_status st = fa2_bwd(&a, b);
    ck_assert_msg(st == FA2_OK, "%s backward failed on %s: %s (%s)",
                  fa2_backend_name(b), p->desc, fa2_status_str(st),
                  fa2_last_error());
    for (int i = 0; i < 3; i++) {
        gtensor *x = grad_tensor(p, i);
        r->g[i] = xmalloc((size_t)x->n_alloc * x->esize);
        memcpy(r->g[i], x->h_base, (size_t)x->n_alloc * x->esize);
    }
    memcpy(r->ds, p->dsinks, sizeof r->ds);
}

static void run_cpu(problem *p, fa2_backend b, grads *r)
{
    run_cpu_args(p, b, p->host_args, r);
}

static fa2_status run_gpu(problem *p, const fa2_bwd_args *a, grads *r)
{
    for (int i = 0; i < 3; i++) {
        gtensor *x = grad_tensor(p, i);
        cuda_ok(cudaMemset(x->d_base, 0xFF, (size_t)x->n_alloc * x->esize),
                "cudaMemset");
    }
    if (p->d_dsinks)
        cuda_ok(cudaMemset(p->d_dsinks, 0xFF, sizeof p->dsinks), "cudaMemset");
    const fa2_status st = fa2_bwd(a, FA2_BACKEND_CUDA);
    if (st != FA2_OK)
        return st;
    cuda_ok(cudaDeviceSynchronize(), "the backward kernels");
    for (int i = 0; i < 3; i++)
        r->g[i] = gt_download(grad_tensor(p, i));
    memset(r->ds, 0xFF, sizeof r->ds);
    if (p->d_dsinks)
        cuda_ok(cudaMemcpy(r->ds, p->d_dsinks, sizeof r->ds, cudaMemcpyDeviceToHost),
                "cudaMemcpy dsinks");
    return FA2_OK;
}

typedef struct gcmp {
    double vs_oracle; /* max abs error                              */
    double mag;       /* max |oracle|                               */
    double ulps;      /* max |gpu - mirror| beyond the floor, in ulps at
                         the row's scale */
    int64_t differ, unwritten, nonfinite, outside;
} gcmp;

static double floor_o(fa2_dtype dt)
{
    return dt == FA2_DTYPE_FP16 ? 0x1p-14 : 0x1p-11; /* 1/16 ulp at 1 */
}

/* GPU vs mirror, per element: |gpu - mirror| <= MIRROR_ULPS ulps of the
 * dtype at the scale of the gradient row (its largest |element| in the
 * mirror) + the forward's absolute floor. The floor is for rows whose
 * gradient cancels to (almost) zero: a query row that sees a single key has
 * P = 1 and dS = dP - D, zero up to the float32 rounding of the two dot
 * products, which the kernel (mma, a tree sum for D) and the mirror (BLAS,
 * a sequential sum) round differently; such a row's scale is that noise. */
#define MIRROR_ULPS 4.0

static void compare_grad(const gtensor *x, const void *r, const void *m,
                         const double *g64, gcmp *c)
{
    const double fl = floor_o(x->host.dtype);
    memset(c, 0, sizeof *c);
    int64_t idx[4];
    const int64_t d = x->host.shape[3], n = gt_numel(x);
    const int64_t nrows = n / (d > 0 ? d : 1);
    double *rowmax = calloc((size_t)(nrows > 0 ? nrows : 1), sizeof(double));
    ck_assert(rowmax != NULL);
    if (m)
        for (int64_t f = 0; f < n; f++) {
            gt_unflatten(x, f, idx);
            const double mv = fabs(gt_get_raw(x, m, gt_off(x, idx)));
            if (mv > rowmax[f / d])
                rowmax[f / d] = mv;
        }
    for (int64_t f = 0; f < n; f++) {
        gt_unflatten(x, f, idx);
        const int64_t off = gt_off(x, idx);
        const double g = gt_get_raw(x, r, off);
        c->mag = fabs(g64[f]) > c->mag ? fabs(g64[f]) : c->mag;
        if (isnan(g)) {
            c->unwritten++;
            continue;
        }
        if (!isfinite(g))
            c->nonfinite++;
        const double e = fabs(g - g64[f]);
        c->vs_oracle = e > c->vs_oracle ? e : c->vs_oracle;
        if (m) {
            const double mv = gt_get_raw(x, m, off);
            const double ex = fabs(g - mv) > fl ? fabs(g - mv) - fl : 0.0;
            const double u = ex / ulp_of(x->host.dtype, rowmax[f / d]);
            c->ulps = u > c->ulps ? u : c->ulps;
            if (g != mv)
                c->differ++;
        }
    }
    free(rowmax);
    c->outside = gt_outside_touched(x, r);
}

static double unit_roundoff(fa2_dtype dt)
{
    return dt == FA2_DTYPE_FP16 ? 0x1p-11 : dt == FA2_DTYPE_BF16 ? 0x1p-8 : 0x1p-24;
}


static int verbose(void)
{
    const char *v = getenv("FA2_TEST_VERBOSE");
    return v && *v && *v != '0';
}

static int quick(void)
{
    const char *v = getenv("FA2_GPU_TEST_QUICK");
    return v && *v && *v != '0';
}

static void set_env(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static double worst_ulps[2]; /* fp16, bf16: reported at the end */
static double worst_dsinks;  /* |gpu - mirror| / bound, reported at the end */

static int uses_mods(const spec *s)
{
    return s->softcap > 0.0f || s->alibi || s->sinks || s->dropout > 0.0f;
}

/* dsinks[h] = -sum over query rows i of P_sink,i D_i, D_i = dO_i . O_i:
 * the kernels and the mirror form the same float32 terms from the same
 * rounded O and dO, each D_i with its own summation order (error at most
 * d u sum_c |dO_ic O_ic| each), and add the n rows in different orders
 * (at most n u sum_i |P D_i| each); P_sink through exp2f (a few ulp). So
 * |gpu - mirror| <= (2 (d + n) + 32) u M, M = sum_i P_sink,i sum_c
 * |dO_ic O_ic| (float64, from the same inputs), u = 2^-24. */
static double dsinks_bound(const problem *p, int64_t h)
{
    const spec *s = &p->s;
    const int64_t B = p->q.host.shape[0], rows = p->q.host.shape[1];
    double M = 0.0;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < rows; i++) {
            const int64_t li[3] = {b, h, i};
            const double lse = gt_get_raw(&p->lse, p->lse.h_base, gt_off(&p->lse, li));
            const double P = exp((double)p->sinks[h] - lse);
            double a = 0.0;
            for (int64_t c = 0; c < s->d; c++) {
                const int64_t x[4] = {b, i, h, c};
                a += fabs(gt_get_raw(&p->o, p->o.h_base, gt_off(&p->o, x)) *
                          gt_get_raw(&p->dout, p->dout.h_base, gt_off(&p->dout, x)));
            }
            M += P * a;
            n++;
        }
    return (2.0 * (double)(s->d + n) + 32.0) * 0x1p-24 * M;
}

/* The sinks' gradient: the GPU's against the mirror's (dsinks_bound) and
 * against the oracle's (no worse than the mirror plus twice standard
 * attention's error and the floor); and large enough that the checks mean
 * something (a sign error or a missing term is far outside the bound). */
static void check_dsinks(const problem *p, const grads *gpu, const grads *mirror,
                         const grads *standard, const double *ds64)
{
    double biggest = 0.0;
    for (int64_t h = 0; h < p->s.hq; h++) {
        const double g = gpu->ds[h], m = mirror->ds[h];
        const double bound = dsinks_bound(p, h);
        ck_assert_msg(isfinite(g), "dsinks[%lld] = %g, expected finite: %s",
                      (long long)h, g, p->desc);
        ck_assert_msg(fabs(g - m) <= bound, "dsinks[%lld]: GPU %.9g, mirror %.9g, "
                      "bound %.3g: %s", (long long)h, g, m, bound, p->desc);
        if (bound > 0.0 && fabs(g - m) / bound > worst_dsinks)
            worst_dsinks = fabs(g - m) / bound;
        const double e_m = fabs(m - ds64[h]), e_s = fabs(standard->ds[h] - ds64[h]);
        const double fl = floor_o(p->s.dtype) + unit_roundoff(p->s.dtype) * fabs(ds64[h]);
        ck_assert_msg(fabs(g - ds64[h]) <= e_m + 2.0 * e_s + fl + bound,
                      "dsinks[%lld]: GPU %.9g, oracle %.9g (mirror %.9g, standard "
                      "%.9g): %s", (long long)h, g, ds64[h], m, standard->ds[h],
                      p->desc);
        if (bound > 0.0 && fabs(ds64[h]) / bound > biggest)
            biggest = fabs(ds64[h]) / bound;
    }
    /* (the bound is a worst case, about (2 (d + n) + 32) 2^-24 of M, while
     * |dsinks| is about M / sqrt(n d): 30 to 100 bounds on these cases) */
    ck_assert_msg(biggest > 4.0, "every |dsinks| is within 4 bounds of 0: the "
                  "case cannot tell a wrong dsinks from a right one: %s", p->desc);
}

/* The modifiers other than sinks change dq, dk or dv by far more than the
 * GPU-vs-mirror tolerance (the mirror's gradients without them, over the
 * same O and LSE), so a kernel that ignored one would fail the comparison.
 * (Sinks act on dq, dk, dv only through LSE and O, which both runs share:
 * their check is dsinks.) */
/* the same call without the modifiers */
static fa2_bwd_args without_mods(fa2_bwd_args a)
{
    a.softcap = 0.0f;
    a.alibi_slopes = NULL;
    a.alibi_batch_stride = 0;
    a.sinks = NULL;
    a.dsinks = NULL;
    a.dropout_p = 0.0f;
    return a;
}

static void check_mods_matter(problem *p, const grads *mirror, double *const *g64)
{
    const fa2_bwd_args a = without_mods(p->host_args);
    grads plain;
    run_cpu_args(p, FA2_BACKEND_CPU_TILED, a, &plain);
    double most = 0.0;
    for (int i = 0; i < 3; i++) {
        gcmp c;
        compare_grad(grad_tensor(p, i), plain.g[i], mirror->g[i], g64[i], &c);
        most = c.ulps > most ? c.ulps : most;
    }
    grads_free(&plain);
    ck_assert_msg(most > 3.0 * MIRROR_ULPS, "the modifiers move the mirror's "
                  "gradients by only %.1f ulp: the case cannot tell whether the "
                  "kernel applies them: %s", most, p->desc);
}

static void check_problem(const spec *s, uint64_t *rng, void *stream)
{
    problem p;
    problem_init(&p, s, rng);
    double *g64[3];
    for (int i = 0; i < 3; i++)
        g64[i] = xmalloc(sizeof(double) * (size_t)(gt_numel(grad_tensor(&p, i)) + 1));
    double ds64[32];
    ck_assert_msg(fa2_oracle_bwd_f64_sinks(&p.host_args, g64[0], g64[1], g64[2],
                                           s->sinks ? ds64 : NULL) == FA2_OK,
                  "oracle failed on %s: %s", p.desc, fa2_last_error());
    /* the rounded-O term: how far the exact gradients move when D takes
     * the forward's rounded o (fa2_oracle_bwd_f64_rounded_o) */
    double rounded_o[3];
    {
        double *r64[3];
        for (int i = 0; i < 3; i++)
            r64[i] = xmalloc(sizeof(double) * (size_t)(gt_numel(grad_tensor(&p, i)) + 1));
        ck_assert_msg(fa2_oracle_bwd_f64_rounded_o(&p.host_args, r64[0], r64[1],
                                                   r64[2]) == FA2_OK,
                      "oracle (rounded o) failed on %s: %s", p.desc, fa2_last_error());
        for (int i = 0; i < 3; i++) {
            rounded_o[i] = 0.0;
            for (int64_t e = 0; e < gt_numel(grad_tensor(&p, i)); e++) {
                const double t = fabs(r64[i][e] - g64[i][e]);
                rounded_o[i] = t > rounded_o[i] ? t : rounded_o[i];
            }
            free(r64[i]);
        }
    }
    grads mirror, standard, gpu;
    run_cpu(&p, FA2_BACKEND_CPU_TILED, &mirror);
    run_cpu(&p, FA2_BACKEND_CPU_STANDARD, &standard);
    fa2_bwd_args a = p.dev_args;
    a.stream = stream;
    const fa2_status st = run_gpu(&p, &a, &gpu);
    ck_assert_msg(st == FA2_OK, "CUDA backward failed on %s: %s (%s)", p.desc,
                  fa2_status_str(st), fa2_last_error());
    gcmp cg[3], cs[3];
    for (int i = 0; i < 3; i++) {
        compare_grad(grad_tensor(&p, i), gpu.g[i], mirror.g[i], g64[i], &cg[i]);
        compare_grad(grad_tensor(&p, i), standard.g[i], NULL, g64[i], &cs[i]);
    }
    if (verbose())
        fprintf(stderr, "case %-96s dq %.2e/%.2e %.1fu  dk %.2e/%.2e %.1fu  "
                "dv %.2e/%.2e %.1fu\n", p.desc, cg[0].vs_oracle, cs[0].vs_oracle,
                cg[0].ulps, cg[1].vs_oracle, cs[1].vs_oracle, cg[1].ulps,
                cg[2].vs_oracle, cs[2].vs_oracle, cg[2].ulps);
    for (int i = 0; i < 3; i++) {
        const int di = s->dtype == FA2_DTYPE_BF16;
        worst_ulps[di] = cg[i].ulps > worst_ulps[di] ? cg[i].ulps : worst_ulps[di];
        ck_assert_msg(cg[i].unwritten == 0, "%lld %s elements never written: %s",
                      (long long)cg[i].unwritten, grad_names[i], p.desc);
        ck_assert_msg(cg[i].outside == 0, "%lld elements outside the %s view "
                      "overwritten: %s", (long long)cg[i].outside, grad_names[i],
                      p.desc);
        ck_assert_msg(cg[i].nonfinite == 0, "%lld non-finite %s elements: %s",
                      (long long)cg[i].nonfinite, grad_names[i], p.desc);
        ck_assert_msg(cg[i].ulps <= MIRROR_ULPS, "%s differs from the CPU mirror "
                      "by %.2f ulp of the row's scale beyond the floor (limit "
                      "%.0f): %s",
                      grad_names[i], cg[i].ulps, MIRROR_ULPS, p.desc);
        /* The 2x-standard rule compares two maxima of rounding errors; over
         * a few hundred elements it fails by chance: with three one-row
         * sequences (case 8) the CPU mirror itself exceeded it in 3% of
         * seeds, and the GPU equals the mirror there bit for bit. Small
         * gradients are held to the mirror (above) and the mirror to the
         * oracle by tests/test_bwd.c, whose grid has >= 1024 elements.
         * Larger ones get the rounded-O term besides: FA2's D comes from
         * the rounded o, which standard attention's does not (case 8's dk,
         * three one-row sequences over 1, 64 and 2 keys, failed without
         * it on the H100 for fp16 in 1 of 3 seeds, the GPU equal to the
         * mirror there). */
        const double fl = floor_o(s->dtype) + unit_roundoff(s->dtype) * cg[i].mag +
                          rounded_o[i];
        if (gt_numel(grad_tensor(&p, i)) >= 1024)
            ck_assert_msg(cg[i].vs_oracle <= 2 * cs[i].vs_oracle + fl,
                          "%s error vs the oracle %.3e > 2 x standard's %.3e + "
                          "%.2e: %s", grad_names[i], cg[i].vs_oracle,
                          cs[i].vs_oracle, fl, p.desc);
    }
    if (s->sinks)
        check_dsinks(&p, &gpu, &mirror, &standard, ds64);
    if (s->softcap > 0.0f || s->alibi || s->dropout > 0.0f)
        check_mods_matter(&p, &mirror, g64);
    grads_free(&mirror);
    grads_free(&standard);
    grads_free(&gpu);
    for (int i = 0; i < 3; i++)
        free(g64[i]);
    problem_free(&p);
}

/* ---- the property grid ------------------------------------------------- */

static const int head_dims[] = {64, 128, 256, 40, 96, 160, 248};
#define N_HEAD_DIMS ((int)(sizeof head_dims / sizeof head_dims[0]))
#define N_VARIANTS 11

static void set_lens(spec *s, int n, const int64_t *lq, const int64_t *lk)
{
    s->nseq = n;
    for (int i = 0; i < n; i++) {
        s->lens_q[i] = lq[i];
        s->lens_k[i] = lk[i];
    }
}

static void grid_spec(spec *s, fa2_dtype dt, int d, int v)
{
    spec_init(s, dt, d);
    switch (v) {
    case 0: /* plain, batch 2 */
        s->batch = 2, s->nq = s->nk = 200, s->hq = s->hkv = 3;
        break;
    case 1: /* causal, GQA, padded layouts, deterministic */
        s->nq = s->nk = 257, s->hq = 4, s->hkv = 2, s->causal = 1;
        s->lay = L_PADDED, s->out_lay = L_PADDED, s->deterministic = 1;
        break;
    case 2: /* causal, Nq < Nk (bottom-right), MQA, [B,H,N,d] memory */
        s->batch = 2, s->nq = 100, s->nk = 300, s->hq = 4, s->hkv = 1;
        s->causal = 1, s->lay = L_HEAD_MAJOR, s->out_lay = L_HEAD_MAJOR;
        break;
    case 3: /* causal, Nq > Nk: the first rows see no key (zero gradients) */
        s->nq = 300, s->nk = 100, s->hq = s->hkv = 2, s->causal = 1;
        s->lay = L_SEQ_MAJOR, s->out_lay = L_PADDED;
        break;
    case 4: /* sliding window, deterministic */
        s->nq = s->nk = 333, s->hq = s->hkv = 2, s->wl = 32, s->wr = 16;
        s->deterministic = 1;
        break;
    case 5: /* window (0, 0): the diagonal only */
        s->nq = s->nk = 129, s->hq = 2, s->hkv = 1, s->wl = 0, s->wr = 0;
        s->out_lay = L_HEAD_MAJOR;
        break;
    case 6: /* causal + left window, GQA 6/3, a scale */
        s->nq = s->nk = 400, s->hq = 6, s->hkv = 3, s->causal = 1, s->wl = 50;
        s->scale = 0.3f;
        break;
    case 7: { /* varlen, causal, with empty and length-1 sequences */
        const int64_t lq[5] = {0, 1, 200, 17, 130}, lk[5] = {5, 1, 150, 0, 300};
        set_lens(s, 5, lq, lk);
        s->hq = 4, s->hkv = 2, s->causal = 1;
        break;
    }
    case 8: { /* varlen, max_seqlen_q 1, deterministic */
        const int64_t lq[3] = {1, 1, 1}, lk[3] = {1, 64, 2};
        set_lens(s, 3, lq, lk);
        s->deterministic = 1;
        break;
    }
    case 9: { /* varlen, window, odd lengths */
        const int64_t lq[3] = {77, 300, 5}, lk[3] = {131, 260, 9};
        set_lens(s, 3, lq, lk);
        s->hq = s->hkv = 2, s->wl = 20, s->wr = 40, s->lay = L_PADDED;
        break;
    }
    default: /* one row, one key */
        s->nq = 1, s->nk = 1, s->hq = 3, s->hkv = 3;
        break;
    }
}

START_TEST(test_grid_matches_mirror_and_oracle)
{
    const fa2_dtype dt = _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    const int d = head_dims[(_i / 2) % N_HEAD_DIMS];
    const int v = _i / (2 * N_HEAD_DIMS);
    uint64_t rng = run_seed ^ (0x51ed2701ull * (uint64_t)(_i + 1));
    spec s;
    grid_spec(&s, dt, d, v);
    check_problem(&s, &rng, NULL);
}
END_TEST

static const int quick_cases[][3] = {{0, 64, 1}, {1, 128, 0}, {7, 64, 1},
                                     {3, 256, 0}, {4, 96, 1}};

START_TEST(test_quick_grid)
{
    uint64_t rng = run_seed ^ (0x9e37ull * (uint64_t)(_i + 1));
    spec s;
    grid_spec(&s, quick_cases[_i][2] ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16,
              quick_cases[_i][1], quick_cases[_i][0]);
    check_problem(&s, &rng, NULL);
}
END_TEST

/* ---- the score modifiers and dropout ------------------------------------- */

/* Feature f of the modifier cases: 0 softcap, 1 ALiBi [B, Hq], 2 sinks,
 * 3 dropout, 4 all four. The softcap alone is as large as the scores
 * (about N(0, 1) after scaling), so that tanh bends them well past the
 * tolerance (check_mods_matter). */
#define N_MOD_FEATURES 5
static void set_mods(spec *s, int f)
{
    switch (f) {
    case 0: s->softcap = 1.0f; break;
    case 1: s->alibi = 1; break;
    case 2: s->sinks = 1; break;
    case 3: s->dropout = 0.2f; break;
    default:
        s->softcap = 5.0f, s->alibi = 1, s->sinks = 1, s->dropout = 0.1f;
        break;
    }
    ck_assert(uses_mods(s));
}

/* grid_spec's variants the modifier cases run: plain (batch 2); causal
 * GQA 4/2 deterministic; causal Nq < Nk MQA; causal Nq > Nk (rows that see
 * no key: with a sink their LSE is the sink's alone); varlen causal with
 * empty and length-1 sequences; varlen with a window and odd lengths. */
static const int mod_variants[] = {0, 1, 2, 3, 7, 9};
#define N_MOD_VARIANTS ((int)(sizeof mod_variants / sizeof mod_variants[0]))

/* Each feature alone and all four together, over those masks, head dims 64
 * and 128, fp16 and bf16: dq, dk, dv within MIRROR_ULPS of the mirror run
 * with the kernels' tiling and within 2x standard attention's error of the
 * oracle (check_problem), dsinks against both (check_dsinks), and the
 * modifiers shown to matter (check_mods_matter). */
START_TEST(test_modifiers_match_mirror_and_oracle)
{
    const fa2_dtype dt = _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    const int d = (_i / 2) % 2 ? 128 : 64;
    const int f = (_i / 4) % N_MOD_FEATURES;
    const int v = mod_variants[_i / (4 * N_MOD_FEATURES)];
    uint64_t rng = run_seed ^ (0x30d5ull * (uint64_t)(_i + 1));
    spec s;
    grid_spec(&s, dt, d, v);
    set_mods(&s, f);
    check_problem(&s, &rng, NULL);
}
END_TEST

/* All four modifiers at the other kernel head dims (256, and 96 on the
 * 128 kernel with columns predicated off), and a longer causal problem
 * (many key blocks, dropout's counters past the first tiles). */
START_TEST(test_modifiers_other_head_dims_and_long)
{
    uint64_t rng = run_seed ^ (0x30d6ull * (uint64_t)(_i + 1));
    spec s;
    const fa2_dtype dt = _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    if (_i < 4) {
        grid_spec(&s, dt, _i < 2 ? 256 : 96, _i < 2 ? 1 : 7);
    } else {
        spec_init(&s, dt, _i < 6 ? 64 : 128);
        s.nq = s.nk = 1100, s.hq = 4, s.hkv = 2, s.causal = 1;
    }
    set_mods(&s, 4);
    check_problem(&s, &rng, NULL);
}
END_TEST

/* Deterministic mode with every modifier: bit-identical dq, dk, dv and
 * dsinks over runs and over split grids (FA2_CUDA_BWD_GRID). */
START_TEST(test_modifiers_deterministic_bits)
{
    uint64_t rng = run_seed ^ 0xde70ull ^ (uint64_t)_i;
    spec s;
    spec_init(&s, _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16, _i < 2 ? 64 : 128);
    s.nq = s.nk = quick() ? 300 : 900;
    s.hq = 4, s.hkv = 2, s.causal = _i % 2, s.deterministic = 1;
    set_mods(&s, 4);
    problem p;
    problem_init(&p, &s, &rng);
    static const char *const grid[] = {NULL, "1", "7"};
    grads first, again;
    ck_assert_int_eq(run_gpu(&p, &p.dev_args, &first), FA2_OK);
    for (int run = 0; run < 3; run++) {
        set_env("FA2_CUDA_BWD_GRID", grid[run]);
        const fa2_status st = run_gpu(&p, &p.dev_args, &again);
        set_env("FA2_CUDA_BWD_GRID", NULL);
        ck_assert_int_eq(st, FA2_OK);
        for (int i = 0; i < 3; i++) {
            gtensor *x = grad_tensor(&p, i);
            ck_assert_msg(memcmp(first.g[i], again.g[i],
                                 (size_t)x->n_alloc * x->esize) == 0,
                          "deterministic %s differs from the first run with "
                          "FA2_CUDA_BWD_GRID=%s: %s", grad_names[i],
                          grid[run] ? grid[run] : "(unset)", p.desc);
        }
        ck_assert_msg(memcmp(first.ds, again.ds, sizeof(float) * (size_t)s.hq) == 0,
                      "deterministic dsinks differ between runs: %s", p.desc);
        grads_free(&again);
    }
    grads_free(&first);
    problem_free(&p);
}
END_TEST

/* ---- both main kernels with the modifiers ------------------------------ */

/* On sm_90 the wgmma kernel's MODS instantiation runs the cases above;
 * FA2_CUDA_BWD_KERNEL=mma forces the mma.sync kernel's (the one sm_80
 * runs). The environment is read per call. */
static void force_mma_kernel(int on)
{
    set_env("FA2_CUDA_BWD_KERNEL", on ? "mma" : NULL);
}

/* the mods case's checked teardown: a failed case must not leave the
 * next ones on the forced kernel */
static void default_kernel(void)
{
    force_mma_kernel(0);
}

static int device_is_sm90(void)
{
    int dev = 0, major = 0;
    cuda_ok(cudaGetDevice(&dev), "cudaGetDevice");
    cuda_ok(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev),
            "cudaDeviceGetAttribute");
    return major == 9;
}

/* The mma.sync kernel's MODS instantiation against the mirror and the
 * oracle as above: each feature over grid variants 0 and 1, head dims 64
 * and 128, fp16 and bf16, and all four at head dim 256. */
START_TEST(test_modifiers_on_the_mma_kernel_match_mirror_and_oracle)
{
    const fa2_dtype dt = _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    const int f = (_i / 4) % N_MOD_FEATURES;
    uint64_t rng = run_seed ^ (0x30d8ull * (uint64_t)(_i + 1));
    spec s;
    if (_i < 4 * N_MOD_FEATURES)
        grid_spec(&s, dt, (_i / 2) % 2 ? 128 : 64, (_i / 2) % 2);
    else
        grid_spec(&s, dt, 256, 1);
    set_mods(&s, _i < 4 * N_MOD_FEATURES ? f : 4);
    force_mma_kernel(1);
    check_problem(&s, &rng, NULL);
    force_mma_kernel(0);
}
END_TEST

/* Both kernels compute the same products in the same order and the
 * modifiers' elements with the same code (gpu/bwd_mods.cuh), so where the
 * plain kernels give the same bits for a gradient (deterministic mode:
 * dq's adds in the same order too), the MODS kernels must as well; dsinks
 * comes from the shared preprocess, the same bits always. Loop: each
 * feature (and all four), head dims 64 / 128 / 256, fp16 and bf16, causal
 * GQA. (Where the device has no wgmma kernel both runs take the mma.sync
 * one and agree trivially.) */
START_TEST(test_modifiers_same_bits_on_both_kernels)
{
    const fa2_dtype dt = _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    const int d = (_i / 2) % 3 == 0 ? 64 : (_i / 2) % 3 == 1 ? 128 : 256;
    const int f = _i / 6;
    uint64_t rng = run_seed ^ (0x30d9ull * (uint64_t)(_i + 1));
    spec s;
    spec_init(&s, dt, d);
    s.nq = s.nk = quick() ? 200 : 333;
    s.hq = 4, s.hkv = 2, s.causal = 1, s.deterministic = 1;
    set_mods(&s, f);
    problem p;
    problem_init(&p, &s, &rng);
    const fa2_bwd_args plain = without_mods(p.dev_args);
    grads r[2][2]; /* [plain, mods][default kernel, mma.sync] */
    for (int k = 0; k < 2; k++) {
        force_mma_kernel(k);
        const fa2_status st0 = run_gpu(&p, &plain, &r[0][k]);
        const fa2_status st1 = run_gpu(&p, &p.dev_args, &r[1][k]);
        force_mma_kernel(0);
        ck_assert_int_eq(st0, FA2_OK);
        ck_assert_int_eq(st1, FA2_OK);
    }
    int agree[2][3];
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            gtensor *x = grad_tensor(&p, i);
            agree[m][i] = memcmp(r[m][0].g[i], r[m][1].g[i],
                                 (size_t)x->n_alloc * x->esize) == 0;
        }
    if (verbose())
        fprintf(stderr, "kernels %s (%s): plain dq/dk/dv same bits %d%d%d, "
                "modifiers %d%d%d\n", device_is_sm90() ? "wgmma vs mma.sync"
                                                       : "mma.sync twice",
                p.desc, agree[0][0], agree[0][1], agree[0][2], agree[1][0],
                agree[1][1], agree[1][2]);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(!agree[0][i] || agree[1][i], "plain %s has the same bits "
                      "on both kernels, but with the modifiers it differs: %s",
                      grad_names[i], p.desc);
    if (s.sinks)
        ck_assert_msg(memcmp(r[1][0].ds, r[1][1].ds, sizeof(float) * (size_t)s.hq) == 0,
                      "dsinks differ between the kernels: %s", p.desc);
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 2; k++)
            grads_free(&r[m][k]);
    problem_free(&p);
}
END_TEST

/* Longer sequences (many key blocks add into each dQ row). */
START_TEST(test_long_sequences)
{
    uint64_t rng = run_seed ^ (0xabcdull * (uint64_t)(_i + 1));
    spec s;
    spec_init(&s, _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16, _i / 2 == 1 ? 128 : 64);
    s.nq = s.nk = 1000 + 37 * _i;
    s.hq = 2, s.hkv = 1, s.causal = _i < 2, s.deterministic = _i == 3;
    check_problem(&s, &rng, NULL);
}
END_TEST

START_TEST(test_runs_on_a_user_stream)
{
    cudaStream_t stream;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
            "cudaStreamCreate");
    uint64_t rng = run_seed ^ 0x5157ull;
    spec s;
    grid_spec(&s, FA2_DTYPE_FP16, 128, 1);
    check_problem(&s, &rng, stream);
    cudaStreamDestroy(stream);
}
END_TEST

/* Deterministic mode: bit-identical gradients over runs, on a problem where
 * many key blocks add into every dQ row concurrently; and over grid sizes:
 * the main kernel launched as pieces of 1, 5 or 37 blocks
 * (FA2_CUDA_BWD_GRID), so that far fewer blocks are resident than the
 * problem has (the order must neither deadlock nor change: a block only
 * waits for one launched before it, lib/fa2_tile.h fa2_bwd_dq_turn), and
 * with dQ added by per-thread reductions (the default) or by the copy
 * engine (FA2_CUDA_BWD90_DQ=bulk): the same adds in the same order. Loop:
 * d 64 / 128, causal or not (GQA 4/2, 1500 rows: non-causal walks wrap
 * round, so both dQ chains are used); d 256; varlen with a window. */
START_TEST(test_deterministic_bits)
{
    uint64_t rng = run_seed ^ 0xde7ull ^ (uint64_t)_i;
    spec s;
    spec_init(&s, _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16,
              _i < 2 ? 64 : _i < 4 ? 128 : _i == 4 ? 256 : 96);
    s.nq = s.nk = quick() ? 300 : 1500;
    s.hq = 4, s.hkv = 2, s.causal = _i % 2, s.deterministic = 1;
    if (_i == 5) {
        const int64_t lq[4] = {700, 1, 0, 333}, lk[4] = {900, 64, 5, 333};
        set_lens(&s, 4, lq, lk);
        s.causal = 0, s.wl = 300, s.wr = 100;
    }
    problem p;
    problem_init(&p, &s, &rng);
    static const char *const grid[] = {NULL, NULL, "1", "5", "37", NULL, "5"};
    /* the default is the per-thread reductions: the last runs take the
     * copy engine's (head dims 64 and 128; elsewhere the same path) */
    static const char *const dq[] = {NULL, NULL, NULL, NULL, NULL, "bulk", "bulk"};
    const int runs = quick() ? 3 : 7;
    grads first, again;
    ck_assert_int_eq(run_gpu(&p, &p.dev_args, &first), FA2_OK);
    for (int run = 0; run < runs; run++) {
        set_env("FA2_CUDA_BWD_GRID", grid[run]);
        set_env("FA2_CUDA_BWD90_DQ", dq[run]);
        const fa2_status st = run_gpu(&p, &p.dev_args, &again);
        set_env("FA2_CUDA_BWD_GRID", NULL);
        set_env("FA2_CUDA_BWD90_DQ", NULL);
        ck_assert_int_eq(st, FA2_OK);
        for (int i = 0; i < 3; i++) {
            gtensor *x = grad_tensor(&p, i);
            ck_assert_msg(memcmp(first.g[i], again.g[i],
                                 (size_t)x->n_alloc * x->esize) == 0,
                          "deterministic %s differs from the first run with "
                          "FA2_CUDA_BWD_GRID=%s FA2_CUDA_BWD90_DQ=%s: %s",
                          grad_names[i], grid[run] ? grid[run] : "(unset)",
                          dq[run] ? dq[run] : "(unset)", p.desc);
        }
        grads_free(&again);
    }
    grads_free(&first);
    problem_free(&p);
}
END_TEST

/* The other paths of the default mode give the mirror's results too: dQ by
 * per-thread reductions (FA2_CUDA_BWD90_DQ=atomic), the rotated walk
 * (FA2_CUDA_BWD_ORDER=rotate), a split grid. Loop: grid variants 0, 1, 7,
 * 9 at d 64 / 128. */
START_TEST(test_default_mode_variants_match_the_mirror)
{
    static const char *const names[3] = {"FA2_CUDA_BWD90_DQ", "FA2_CUDA_BWD_ORDER",
                                         "FA2_CUDA_BWD_GRID"};
    static const char *const values[3] = {"atomic", "rotate", "3"};
    static const int variants[4] = {0, 1, 7, 9};
    for (int e = 0; e < 3; e++)
        unsetenv(names[e]); /* an earlier failure may have left one set */
    for (int e = 0; e < 3; e++) {
        uint64_t rng = run_seed ^ (0xd0ull * (uint64_t)(_i + 1) + (uint64_t)e);
        spec s;
        grid_spec(&s, _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16, _i < 4 ? 64 : 128,
                  variants[_i % 4]);
        setenv(names[e], values[e], 1);
        check_problem(&s, &rng, NULL);
        unsetenv(names[e]);
    }
}
END_TEST

/* ---- non-finite inputs and large logits (doc/algorithm.md section 5) ------ */

static double grad_at(const gtensor *x, const void *buf, int64_t i, int64_t h,
                      int64_t c)
{
    const int64_t idx[4] = {0, i, h, c};
    return gt_get_raw(x, buf, gt_off(x, idx));
}

/* A NaN in q row 150 (head 0; heads 1 use their own key head) gives NaN in
 * dq of that row and in dk, dv of every key the row sees, and leaves the
 * other rows of dq and the other head finite; the CPU mirror agrees on
 * which elements are NaN for dq and the other head. Loop: fp16 / bf16 x
 * causal or not, head dims 64 and 128. */
START_TEST(test_nan_in_gives_nan_out_where_the_contract_says)
{
    spec s;
    spec_init(&s, _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16, _i < 4 ? 64 : 128);
    s.nq = s.nk = 300, s.hq = s.hkv = 2, s.causal = (_i / 2) % 2;
    s.nan_q_row = 150;
    uint64_t rng = run_seed ^ (0x7000ull + (uint64_t)_i);
    problem p;
    problem_init(&p, &s, &rng);
    grads g;
    ck_assert_int_eq(run_gpu(&p, &p.dev_args, &g), FA2_OK);
    for (int64_t i = 0; i < 300; i++)
        for (int64_t h = 0; h < 2; h++)
            for (int64_t c = 0; c < s.d; c++) {
                const double dq = grad_at(&p.dq, g.g[0], i, h, c);
                const int hit = h == 0 && i == 150;
                if (hit ? !isnan(dq) : !isfinite(dq))
                    ck_abort_msg("dq[%lld, %lld, %lld] = %g, expected %s on %s",
                                 (long long)i, (long long)h, (long long)c, dq,
                                 hit ? "NaN" : "finite", p.desc);
                const double dk = grad_at(&p.dk, g.g[1], i, h, c);
                const double dv = grad_at(&p.dv, g.g[2], i, h, c);
                if (h == 1 && !(isfinite(dk) && isfinite(dv)))
                    ck_abort_msg("dk/dv of head 1 [%lld, %lld] = %g/%g, expected "
                                 "finite on %s", (long long)i, (long long)c, dk, dv,
                                 p.desc);
                if (h == 0 && (!s.causal || i <= 150) && !(isnan(dk) && isnan(dv)))
                    ck_abort_msg("dk/dv[%lld, %lld] = %g/%g, expected NaN: the NaN "
                                 "row sees key %lld, on %s", (long long)i,
                                 (long long)c, dk, dv, (long long)i, p.desc);
            }
    grads_free(&g);
    problem_free(&p);
}
END_TEST

/* q = k = 12288, d = 64: every score is 9 * 2^30 and LSE about 1.2e9, far
 * past what a float32 LSE can rebuild P from (FA2_BWD_LSE_LIMIT): every
 * gradient of every row must come out NaN, as the CPU mirror's do, never
 * a finite wrong number. Loop: fp16 / bf16. */
START_TEST(test_large_logits_give_nan_gradients_not_wrong_ones)
{
    spec s;
    spec_init(&s, _i ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16, 64);
    s.nq = s.nk = 200, s.hq = s.hkv = 1;
    s.qk_value = 12288.0f;
    uint64_t rng = run_seed ^ 0x7100ull;
    problem p;
    problem_init(&p, &s, &rng);
    grads g;
    ck_assert_int_eq(run_gpu(&p, &p.dev_args, &g), FA2_OK);
    for (int t = 0; t < 3; t++)
        for (int64_t i = 0; i < 200; i++)
            for (int64_t c = 0; c < 64; c++) {
                const double x = grad_at(grad_tensor(&p, t), g.g[t], i, 0, c);
                if (!isnan(x))
                    ck_abort_msg("%s[%lld, %lld] = %g with LSE 1.2e9, expected NaN "
                                 "on %s", grad_names[t], (long long)i, (long long)c,
                                 x, p.desc);
            }
    grads_free(&g);
    problem_free(&p);
}
END_TEST

/* A caller's workspace (fa2_bwd_args.workspace) gives the very bits the
 * library's own does (deterministic mode), and a workspace that is too
 * small, misaligned, on the host or over an output is refused before
 * anything runs. */
START_TEST(test_caller_workspace)
{
    uint64_t rng = run_seed ^ 0x3a5ull;
    spec s;
    spec_init(&s, FA2_DTYPE_BF16, 128);
    s.nq = s.nk = 700;
    s.hq = 4, s.hkv = 2, s.causal = 1, s.deterministic = 1;
    problem p;
    problem_init(&p, &s, &rng);
    size_t need = 0;
    ck_assert_int_eq(fa2_cuda_bwd_workspace_size(&p.dev_args, &need), FA2_OK);
    /* dQ accumulator (float32, like q) and D (a float per query row) at least */
    ck_assert(need >= (size_t)gt_numel(&p.q) * 4 + (size_t)(4 * 700) * 4);
    ck_assert_int_eq(fa2_cuda_bwd_workspace_size(&p.dev_args, NULL),
                     FA2_ERR_NULL_POINTER);
    void *ws = NULL;
    cuda_ok(cudaMalloc(&ws, need + 512), "workspace");
    grads own, given;
    ck_assert_int_eq(run_gpu(&p, &p.dev_args, &own), FA2_OK);
    fa2_bwd_args a = p.dev_args;
    a.workspace = ws, a.workspace_bytes = need;
    ck_assert_int_eq(run_gpu(&p, &a, &given), FA2_OK);
    for (int i = 0; i < 3; i++) {
        gtensor *x = grad_tensor(&p, i);
        ck_assert_msg(memcmp(own.g[i], given.g[i], (size_t)x->n_alloc * x->esize) == 0,
                      "%s with the caller's workspace differs: %s", grad_names[i],
                      p.desc);
    }
    a.workspace_bytes = need - 256;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(fa2_last_error(), "workspace_bytes"));
    a.workspace = (char *)ws + 16, a.workspace_bytes = need;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_ALIGNMENT);
    a.workspace = p.dq.host.data;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_DEVICE_POINTER);
    /* one overlap only: dv moved into the workspace's own allocation, which
     * no other tensor shares wherever the allocator put them (pointing the
     * workspace at dv instead ran past dv into whatever tensor the
     * allocator placed next, and that one was reported) */
    a.workspace = ws, a.workspace_bytes = need;
    ck_assert((size_t)p.dv.n_alloc * p.dv.esize <= need); /* dv fits inside */
    a.dv.data = ws;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_OVERLAP);
    ck_assert_ptr_nonnull(strstr(fa2_last_error(), "dv"));
    cuda_ok(cudaFree(ws), "workspace");
    grads_free(&own);
    grads_free(&given);
    problem_free(&p);
}
END_TEST

/* ---- the checks only the CUDA backend makes ------------------------------ */

START_TEST(test_rejects_host_pointers_and_misalignment)
{
    uint64_t rng = run_seed ^ 0xbadull;
    spec s;
    spec_init(&s, FA2_DTYPE_FP16, 64);
    s.nq = s.nk = 40;
    problem p;
    problem_init(&p, &s, &rng);
    fa2_bwd_args a = p.dev_args;
    a.dq = p.dq.host;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_DEVICE_POINTER);
    a = p.dev_args;
    a.lse = p.lse.host;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_DEVICE_POINTER);
    a = p.dev_args;
    a.dk.data = (uint16_t *)a.dk.data + 1;
    a.dk.shape[1] -= 1; /* stay inside the allocation */
    a.dv.shape[1] -= 1;
    a.k.shape[1] -= 1;
    a.v.shape[1] -= 1;
    ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_ALIGNMENT);
    problem_free(&p);
}
END_TEST

/* The modifiers' arrays (ALiBi slopes, sink logits, dsinks) are device
 * memory like every tensor: a host array is refused with a sentence naming
 * it, before anything runs. */
START_TEST(test_rejects_host_modifier_arrays)
{
    uint64_t rng = run_seed ^ 0x30d7ull;
    spec s;
    spec_init(&s, FA2_DTYPE_FP16, 64);
    s.nq = s.nk = 40, s.hq = s.hkv = 2;
    s.alibi = 1, s.sinks = 1;
    problem p;
    problem_init(&p, &s, &rng);
    static const char *const names[3] = {"alibi_slopes", "sinks", "dsinks"};
    for (int m = 0; m < 3; m++) {
        fa2_bwd_args a = p.dev_args;
        if (m == 0)
            a.alibi_slopes = p.slopes;
        if (m == 1)
            a.sinks = p.sinks;
        if (m == 2)
            a.dsinks = p.dsinks;
        ck_assert_int_eq(fa2_bwd(&a, FA2_BACKEND_CUDA), FA2_ERR_DEVICE_POINTER);
        ck_assert_msg(strstr(fa2_last_error(), names[m]) != NULL,
                      "the sentence does not name %s: \"%s\"", names[m],
                      fa2_last_error());
    }
    problem_free(&p);
}
END_TEST

START_TEST(test_tile_config_query)
{
    static const int want[][4] = {/* d, block_m, block_n, kernel head dim */
                                  {8, 128, 128, 64},   {64, 128, 128, 64},
                                  {72, 64, 128, 128},  {128, 64, 128, 128},
                                  {136, 64, 64, 256},  {256, 64, 64, 256}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        for (int b = 0; b < 2; b++) {
            fa2_tile_config c;
            ck_assert_int_eq(fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD,
                                                 b ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16,
                                                 want[i][0], &c),
                             FA2_OK);
            ck_assert_int_eq(c.block_m, want[i][1]);
            ck_assert_int_eq(c.block_n, want[i][2]);
            ck_assert_int_eq(c.head_dim, want[i][3]);
            ck_assert_int_eq(c.warps, 8);
        }
    fa2_tile_config c;
    ck_assert_int_eq(fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD,
                                         FA2_DTYPE_FP32, 64, &c),
                     FA2_ERR_UNSUPPORTED);
    ck_assert_int_eq(fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD,
                                         FA2_DTYPE_FP16, 260, &c),
                     FA2_ERR_HEAD_DIM);
}
END_TEST

/* The GPU runs the shared order (lib/fa2_tile.h): after a deterministic
 * backward, each (query head, query block)'s two turn words in the
 * caller's workspace hold "last adder + 1", and the last adder of chain 0
 * is the lowest key block that sees the query block, of chain 1 the lowest
 * one that starts after it (fa2_bwd_dq_turn's chains, computed here on the
 * host with the kernels' tiling); 0 where a chain is empty. The workspace
 * layout is bwd_launch.cu's: two float32 accumulators, D, then the turn
 * words, each part 256-byte aligned. Loop: d 64 / 128 without a mask
 * (walks wrap round), d 128 causal, d 64 with a window and GQA. */
static size_t round256(size_t n) { return (n + 255) / 256 * 256; }

START_TEST(test_deterministic_turns_follow_the_shared_order)
{
    uint64_t rng = run_seed ^ (0x70ddull + (uint64_t)_i);
    spec s;
    spec_init(&s, FA2_DTYPE_BF16, _i == 0 || _i == 3 ? 64 : 128);
    s.nq = 1000, s.nk = 1100, s.hq = 2, s.hkv = 2, s.deterministic = 1;
    s.causal = _i == 2;
    if (_i == 3)
        s.hq = 4, s.hkv = 2, s.wl = 200, s.wr = 300;
    problem p;
    problem_init(&p, &s, &rng);
    fa2_tile_config cfg;
    ck_assert_int_eq(fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD, s.dtype, s.d,
                                         &cfg), FA2_OK);
    size_t need = 0;
    ck_assert_int_eq(fa2_cuda_bwd_workspace_size(&p.dev_args, &need), FA2_OK);
    void *ws = NULL;
    cuda_ok(cudaMalloc(&ws, need), "workspace");
    fa2_bwd_args a = p.dev_args;
    a.workspace = ws, a.workspace_bytes = need;
    grads g;
    ck_assert_int_eq(run_gpu(&p, &a, &g), FA2_OK);
    const int64_t mblocks = fa2_num_blocks(s.nq, cfg.block_m);
    const size_t rows = (size_t)s.nq, slices = (size_t)s.hq;
    const size_t acc = round256(slices * rows * (size_t)s.d * 4);
    const size_t off = 2 * acc + round256(slices * rows * 4);
    const size_t nturn = slices * (size_t)mblocks * 2;
    ck_assert(off + nturn * 4 <= need);
    int *turn = malloc(nturn * sizeof *turn);
    ck_assert(turn);
    cuda_ok(cudaMemcpy(turn, (char *)ws + off, nturn * sizeof *turn,
                       cudaMemcpyDeviceToHost), "turn words");
    int64_t wl = s.wl, wr = s.wr;
    const fa2_mask m = fa2_mask_make(s.nq, s.nk, s.causal, wl, wr);
    int chain1 = 0;
    for (int64_t h = 0; h < s.hq; h++)
        for (int64_t i = 0; i < mblocks; i++) {
            const fa2_block_range kv = fa2_fwd_kv_blocks(&m, i, cfg.block_m, cfg.block_n);
            int64_t last[2] = {0, 0};
            for (int64_t j = kv.hi - 1; j >= kv.lo; j--)
                last[fa2_bwd_dq_turn(&m, i, j, cfg.block_m, cfg.block_n).chain] = j + 1;
            chain1 |= last[1] != 0;
            for (int ch = 0; ch < 2; ch++)
                ck_assert_msg(turn[(h * mblocks + i) * 2 + ch] == (int)last[ch],
                              "head %lld query block %lld chain %d: the turn word "
                              "holds %d, the shared order ends at %lld, on %s",
                              (long long)h, (long long)i, ch,
                              turn[(h * mblocks + i) * 2 + ch], (long long)last[ch],
                              p.desc);
        }
    if (!s.causal)
        ck_assert_msg(chain1, "no query block has a chain 1 on %s", p.desc);
    free(turn);
    grads_free(&g);
    cuda_ok(cudaFree(ws), "workspace");
    problem_free(&p);
}
END_TEST

/* ---- traffic counters ------------------------------------------------------ */

#ifdef FA2_TRAFFIC_COUNTERS
START_TEST(test_traffic_counters_match_the_simulator)
{
    const int v = _i / 4, dims[4] = {64, 128, 256, 40};
    uint64_t rng = run_seed ^ (0x7aull * (uint64_t)(_i + 1));
    spec s;
    grid_spec(&s, _i % 2 ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16, dims[_i % 4], v);
    problem p;
    problem_init(&p, &s, &rng);
    ck_assert_int_eq(fa2_cuda_bwd_traffic_reset(), FA2_OK);
    grads r;
    ck_assert_int_eq(run_gpu(&p, &p.dev_args, &r), FA2_OK);
    fa2_bwd_traffic got;
    ck_assert_int_eq(fa2_cuda_bwd_traffic_read(&got), FA2_OK);

    fa2_sim_args sa;
    fa2_sim_args_init(&sa);
    sa.algo = FA2_SIM_FA2;
    sa.pass = FA2_SIM_PASS_BWD;
    sa.dtype = s.dtype;
    sa.batch = s.batch;
    sa.heads_q = s.hq;
    sa.heads_kv = s.hkv;
    sa.seqlen_q = s.nq;
    sa.seqlen_k = s.nk;
    sa.head_dim = s.d;
    sa.causal = s.causal;
    sa.window_left = s.wl;
    sa.window_right = s.wr;
    sa.deterministic = s.deterministic; /* its second dQ accumulator */
    if (s.nseq > 0) {
        sa.cu_seqlens_q = p.cu_q;
        sa.cu_seqlens_k = p.cu_k;
        sa.num_seqs = s.nseq;
    }
    sa.l2 = 0;
    fa2_sim_device dev;
    ck_assert_int_eq(fa2_sim_device_builtin("h100", &dev), FA2_OK);
    fa2_sim_result *res = xmalloc(sizeof *res);
    ck_assert_msg(fa2_sim_run(&sa, &dev, res) == FA2_OK, "fa2_sim_run: %s",
                  fa2_last_error());
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        ck_assert_msg(got.tensor_read[t] == (uint64_t)res->total.tensor_read[t] &&
                          got.tensor_written[t] ==
                              (uint64_t)res->total.tensor_written[t],
                      "%s traffic of %s: kernels read %llu wrote %llu, the "
                      "simulator %lld and %lld", fa2_sim_tensor_name(t), p.desc,
                      (unsigned long long)got.tensor_read[t],
                      (unsigned long long)got.tensor_written[t],
                      (long long)res->total.tensor_read[t],
                      (long long)res->total.tensor_written[t]);
    }
    ck_assert(got.read_bytes == (uint64_t)res->total.global_read);
    ck_assert(got.written_bytes == (uint64_t)res->total.global_written);
    fprintf(stderr, "bwd traffic %-90s read %llu written %llu = sim\n", p.desc,
            (unsigned long long)got.read_bytes,
            (unsigned long long)got.written_bytes);
    free(res);
    grads_free(&r);
    problem_free(&p);
}
END_TEST
#else
START_TEST(test_traffic_counters_not_built)
{
    fa2_bwd_traffic t;
    ck_assert_int_eq(fa2_cuda_bwd_traffic_read(&t), FA2_ERR_NOT_BUILT);
    ck_assert_int_eq(fa2_cuda_bwd_traffic_reset(), FA2_ERR_NOT_BUILT);
}
END_TEST
#endif

static Suite *cuda_bwd_suite(void)
{
    Suite *s = suite_create("cuda_bwd");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 600);
    if (quick()) {
        tcase_add_loop_test(tc, test_quick_grid, 0,
                            (int)(sizeof quick_cases / sizeof quick_cases[0]));
        tcase_add_loop_test(tc, test_deterministic_bits, 0, 1);
    } else {
        tcase_add_loop_test(tc, test_grid_matches_mirror_and_oracle, 0,
                            2 * N_HEAD_DIMS * N_VARIANTS);
        tcase_add_loop_test(tc, test_long_sequences, 0, 4);
        tcase_add_test(tc, test_runs_on_a_user_stream);
        tcase_add_loop_test(tc, test_deterministic_bits, 0, 6);
        tcase_add_loop_test(tc, test_default_mode_variants_match_the_mirror, 0, 8);
    }
    suite_add_tcase(s, tc);
    /* the score modifiers and dropout (CK_RUN_CASE=mods runs them alone) */
    TCase *mods = tcase_create("mods");
    tcase_set_timeout(mods, 600);
    tcase_add_checked_fixture(mods, NULL, default_kernel);
    if (quick()) {
        /* each feature once, over grid variants 0 and 1, both dtypes and
         * head dims 64 and 128 */
        for (int f = 0; f < N_MOD_FEATURES; f++)
            tcase_add_loop_test(mods, test_modifiers_match_mirror_and_oracle,
                                4 * N_MOD_FEATURES * (f % 2) + 4 * f + (f % 4),
                                4 * N_MOD_FEATURES * (f % 2) + 4 * f + (f % 4) + 1);
        tcase_add_loop_test(mods, test_modifiers_deterministic_bits, 0, 1);
    } else {
        tcase_add_loop_test(mods, test_modifiers_match_mirror_and_oracle, 0,
                            4 * N_MOD_FEATURES * N_MOD_VARIANTS);
        tcase_add_loop_test(mods, test_modifiers_other_head_dims_and_long, 0, 8);
        tcase_add_loop_test(mods, test_modifiers_deterministic_bits, 0, 4);
    }
    tcase_add_test(mods, test_rejects_host_modifier_arrays);
    /* the other main kernel (on sm_90: the mma.sync one) and the bits of both */
    if (quick()) {
        tcase_add_loop_test(mods, test_modifiers_on_the_mma_kernel_match_mirror_and_oracle,
                            4 * N_MOD_FEATURES - 1, 4 * N_MOD_FEATURES);
        tcase_add_loop_test(mods, test_modifiers_same_bits_on_both_kernels,
                            6 * (N_MOD_FEATURES - 1) + 3, 6 * (N_MOD_FEATURES - 1) + 4);
    } else {
        tcase_add_loop_test(mods, test_modifiers_on_the_mma_kernel_match_mirror_and_oracle,
                            0, 4 * N_MOD_FEATURES + 2);
        tcase_add_loop_test(mods, test_modifiers_same_bits_on_both_kernels, 0,
                            6 * N_MOD_FEATURES);
    }
    suite_add_tcase(s, mods);
    TCase *args = tcase_create("arguments");
    tcase_add_test(args, test_rejects_host_pointers_and_misalignment);
    tcase_add_test(args, test_tile_config_query);
    tcase_add_test(args, test_caller_workspace);
    tcase_add_loop_test(args, test_deterministic_turns_follow_the_shared_order, 0, 4);
    tcase_add_loop_test(args, test_nan_in_gives_nan_out_where_the_contract_says, 0, 8);
    tcase_add_loop_test(args, test_large_logits_give_nan_gradients_not_wrong_ones, 0, 2);
    suite_add_tcase(s, args);
    TCase *tr = tcase_create("traffic");
#ifdef FA2_TRAFFIC_COUNTERS
    tcase_add_loop_test(tr, test_traffic_counters_match_the_simulator, 0,
                        quick() ? 4 : 4 * N_VARIANTS);
#else
    tcase_add_test(tr, test_traffic_counters_not_built);
#endif
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    if (fa2_backend_available(FA2_BACKEND_CUDA) != FA2_OK) {
        printf("SKIP: %s\n", fa2_last_error());
        return 77;
    }
    const char *e = getenv("FA2_TEST_SEED");
    run_seed = e && *e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
    printf("test_cuda_bwd: seed %llu (FA2_TEST_SEED=%llu reproduces)\n",
           (unsigned long long)run_seed, (unsigned long long)run_seed);
    fflush(stdout);
    SRunner *sr = srunner_create(cuda_bwd_suite());
    srunner_set_fork_status(sr, CK_NOFORK); /* CUDA does not survive fork() */
    srunner_run_all(sr, CK_ENV);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("test_cuda_bwd: worst GPU vs mirror %.2f ulp (fp16), %.2f ulp (bf16) "
           "at the gradient row's scale; dsinks %.3f of its bound\n", worst_ulps[0],
           worst_ulps[1], worst_dsinks);
    if (failed)
        printf("test_cuda_bwd: %d failed; rerun with FA2_TEST_SEED=%llu\n",
               failed, (unsigned long long)run_seed);
    return failed ? 1 : 0;
}

#else /* no CUDA */

int main(void)
{
    printf("SKIP: this fa2 was built without CUDA\n");
    return 77;
}

#endif
