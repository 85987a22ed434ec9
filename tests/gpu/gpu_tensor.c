/* gpu_tensor.c — the GPU suites' shared helpers (see gpu_tensor.h). */
#include "config.h"
#include "gpu_tensor.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FA2_HAVE_CUDA
/* ---- random numbers ------------------------------------------------------ */

uint64_t run_seed;

uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double unif(uint64_t *s) { return (splitmix(s) >> 11) * 0x1p-53; }

double normal(uint64_t *s)
{
    double u = unif(s), v = unif(s);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- strided tensors, host copy and device copy -------------------------- */


const char *const layout_names[L_COUNT] = {"dense", "padded", "bhnd",
                                                  "nbhd"};


void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_msg(p != NULL, "out of host memory (%zu bytes)", n);
    return p;
}

/* shape [s0, s1, s2, s3] (lse: 3 dims [B, H, N]) in the given layout; the
 * allocation is poisoned (0xFF bytes: NaN in fp16, bf16 and fp32) */
void gt_alloc(gtensor *x, fa2_dtype dt, int ndim, const int64_t *shape,
              layout lay)
{
    memset(x, 0, sizeof *x);
    x->ndim = ndim;
    x->esize = fa2_dtype_size(dt);
    fa2_tensor *t = &x->host;
    t->dtype = dt;
    for (int i = 0; i < 4; i++) {
        t->shape[i] = i < ndim ? shape[i] : 1;
        t->stride[i] = 1;
    }
    int64_t n;
    if (ndim == 3) { /* lse [B, H, N], padded rows in PADDED */
        const int64_t pad = lay == L_PADDED ? 3 : 0;
        t->stride[2] = 1;
        t->stride[1] = shape[2] + pad;
        t->stride[0] = shape[1] * t->stride[1];
        n = shape[0] * t->stride[0];
    } else {
        const int64_t B = shape[0], N = shape[1], H = shape[2], D = shape[3];
        switch (lay) {
        case L_PADDED: /* gaps that keep 16-byte alignment */
            t->stride[2] = D + 8;
            t->stride[1] = H * t->stride[2] + 16;
            t->stride[0] = N * t->stride[1] + 8;
            n = B * t->stride[0];
            break;
        case L_HEAD_MAJOR:
            t->stride[1] = D;
            t->stride[2] = N * D + 8;
            t->stride[0] = H * t->stride[2];
            n = B * t->stride[0];
            break;
        case L_SEQ_MAJOR:
            t->stride[2] = D;
            t->stride[0] = H * D;
            t->stride[1] = B * H * D;
            n = N * t->stride[1];
            break;
        default:
            t->stride[3] = 1;
            t->stride[2] = D;
            t->stride[1] = H * D;
            t->stride[0] = N * H * D;
            n = B * t->stride[0];
        }
        t->stride[3] = 1;
    }
    x->n_alloc = n + 8; /* a tail the kernel must not touch either */
    x->h_base = xmalloc((size_t)x->n_alloc * x->esize);
    memset(x->h_base, 0xFF, (size_t)x->n_alloc * x->esize);
    cuda_ok(cudaMalloc(&x->d_base, (size_t)x->n_alloc * x->esize), "cudaMalloc");
    cuda_ok(cudaMemset(x->d_base, 0xFF, (size_t)x->n_alloc * x->esize),
            "cudaMemset");
    t->data = x->h_base;
    x->dev = *t;
    x->dev.data = x->d_base;
}

void gt_free(gtensor *x)
{
    free(x->h_base);
    if (x->d_base)
        cudaFree(x->d_base);
    memset(x, 0, sizeof *x);
}

int64_t gt_off(const gtensor *x, const int64_t *i)
{
    int64_t o = 0;
    for (int k = 0; k < x->ndim; k++)
        o += i[k] * x->host.stride[k];
    return o;
}

double gt_get_raw(const gtensor *x, const void *base, int64_t off)
{
    switch (x->host.dtype) {
    case FA2_DTYPE_FP16: return fa2_fp16_to_float(((const uint16_t *)base)[off]);
    case FA2_DTYPE_BF16: return fa2_bf16_to_float(((const uint16_t *)base)[off]);
    default: return ((const float *)base)[off];
    }
}

void gt_set(gtensor *x, const int64_t *i, float v)
{
    const int64_t o = gt_off(x, i);
    switch (x->host.dtype) {
    case FA2_DTYPE_FP16: ((uint16_t *)x->h_base)[o] = fa2_float_to_fp16(v); break;
    case FA2_DTYPE_BF16: ((uint16_t *)x->h_base)[o] = fa2_float_to_bf16(v); break;
    default: ((float *)x->h_base)[o] = v;
    }
}

int64_t gt_numel(const gtensor *x)
{
    int64_t n = 1;
    for (int k = 0; k < x->ndim; k++)
        n *= x->host.shape[k];
    return n;
}

void gt_unflatten(const gtensor *x, int64_t f, int64_t *i)
{
    for (int k = x->ndim - 1; k >= 0; k--) {
        i[k] = f % x->host.shape[k];
        f /= x->host.shape[k];
    }
}

/* N(0, sigma^2) rounded to the dtype, never exactly zero */
void gt_fill(gtensor *x, uint64_t *rng, double sigma)
{
    int64_t idx[4];
    for (int64_t f = 0; f < gt_numel(x); f++) {
        gt_unflatten(x, f, idx);
        double v = sigma * normal(rng);
        if (fabs(v) < 1e-3)
            v = v < 0 ? -1e-3 : 1e-3;
        gt_set(x, idx, (float)v);
    }
}

void gt_upload(gtensor *x)
{
    cuda_ok(cudaMemcpy(x->d_base, x->h_base, (size_t)x->n_alloc * x->esize,
                       cudaMemcpyHostToDevice),
            "cudaMemcpy to the device");
}

/* the device allocation into a fresh host buffer */
void *gt_download(const gtensor *x)
{
    void *h = xmalloc((size_t)x->n_alloc * x->esize);
    cuda_ok(cudaMemcpy(h, x->d_base, (size_t)x->n_alloc * x->esize,
                       cudaMemcpyDeviceToHost),
            "cudaMemcpy from the device");
    return h;
}

/* elements outside the view whose poison (0xFF bytes) changed */
int64_t gt_outside_touched(const gtensor *x, const void *buf)
{
    unsigned char *in = calloc((size_t)x->n_alloc, 1);
    ck_assert(in != NULL);
    int64_t idx[4];
    for (int64_t f = 0; f < gt_numel(x); f++) {
        gt_unflatten(x, f, idx);
        in[gt_off(x, idx)] = 1;
    }
    int64_t bad = 0;
    for (int64_t e = 0; e < x->n_alloc; e++) {
        if (in[e])
            continue;
        const unsigned char *b = (const unsigned char *)buf + e * x->esize;
        for (size_t k = 0; k < x->esize; k++)
            if (b[k] != 0xFF) {
                bad++;
                break;
            }
    }
    free(in);
    return bad;
}

#endif /* FA2_HAVE_CUDA */
