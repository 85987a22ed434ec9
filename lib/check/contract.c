/* contract.c — the agreement check of the numerics contract (see
 * fa2_check.h). */
#include "config.h"
#include "fa2_check.h"
#include "fa2_cpu.h" /* fa2_oracle_fwd_f64: the oracle's float64 outputs */
#include "fa2_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A few units in the last place of values near 1 would hide real errors;
 * these floors only matter where standard attention is exact (O = V for a
 * single visible key, O = 0 and LSE = +inf for rows that see no key) and are
 * far below any error the dtype's rounding makes elsewhere. */
double fa2_check_floor(fa2_dtype t)
{
    switch (t) {
    case FA2_DTYPE_FP32: return 1e-6;
    case FA2_DTYPE_FP16: return 1e-5;
    case FA2_DTYPE_BF16: return 1e-4;
    }
    return 0.0;
}

double fa2_check_lse_floor(void) { return 1e-5; }

/* A gradient's floor (the same rule as tests/test_bwd.c): the absolute
 * floor, plus one unit roundoff of the gradient's largest value (the error
 * of merely rounding the exact gradient to the dtype), plus in fp32 128 ulp
 * of the largest gradient: FA2 rebuilds P from the stored LSE and takes D
 * from dO.O, so fp32 rounding that standard attention cancels (it is exact
 * when a row sees one key) shows up at a few tens of ulp. */
double fa2_check_grad_floor(fa2_dtype t, double own_magnitude, double all_magnitude)
{
    const double u = t == FA2_DTYPE_FP16 ? 0x1p-11 : t == FA2_DTYPE_BF16 ? 0x1p-8
                                                                         : 0x1p-24;
    return fa2_check_floor(t) + u * own_magnitude +
           (t == FA2_DTYPE_FP32 ? 128.0 * u * all_magnitude : 0.0);
}

const char *const fa2_check_grad_names[FA2_CHECK_GRADS] = {"dq", "dk", "dv"};

static double element(const void *buf, fa2_dtype t, size_t i)
{
    switch (t) {
    case FA2_DTYPE_FP32: return ((const float *)buf)[i];
    case FA2_DTYPE_FP16: return fa2_fp16_to_float(((const uint16_t *)buf)[i]);
    case FA2_DTYPE_BF16: return fa2_bf16_to_float(((const uint16_t *)buf)[i]);
    }
    return NAN;
}

/* Max |x - ref|; equal values (+inf included) differ by 0, and a NaN or an
 * infinity on one side only is an infinite error. */
static double max_err(const void *x, fa2_dtype t, const double *ref, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double v = element(x, t, i);
        if (v == ref[i])
            continue;
        const double e = fabs(v - ref[i]);
        if (!(e <= m))
            m = isnan(e) ? INFINITY : e;
    }
    return m;
}

/* A bound that is finite (an infinite yardstick would let any error pass:
 * that is a failure) and holds. */
static int within(double err, double bound)
{
    return isfinite(bound) && err <= bound;
}

/* Elements of t (its first ndim dims); 0 if it is not dense. */
static size_t dense_elements(const fa2_tensor *t, int ndim)
{
    int64_t n = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (t->shape[i] > 1 && t->stride[i] != n)
            return 0;
        n *= t->shape[i];
    }
    return (size_t)n;
}

static fa2_status fwd_part(const fa2_fwd_args *in, fa2_check_result *r)
{
    const fa2_dtype t = in->q.dtype;
    const size_t n_o = dense_elements(&in->o, 4), n_lse = dense_elements(&in->lse, 3);
    if (!n_o || !n_lse || !in->o.data || !in->lse.data)
        return fa2_fail(FA2_ERR_STRIDE, "the check reads o and lse as dense, "
                        "non-empty host tensors");
    fa2_status st = FA2_ERR_OUT_OF_MEMORY;
    double *o64 = malloc(sizeof(double) * n_o);
    double *lse64 = malloc(sizeof(double) * n_lse);
    void *o_ref = malloc(n_o * fa2_dtype_size(t));
    float *lse_ref = malloc(sizeof(float) * n_lse);
    if (!o64 || !lse64 || !o_ref || !lse_ref) {
        fa2_fail(st, "the check could not allocate its float64 reference "
                 "outputs (%zu + %zu doubles)", n_o, n_lse);
        goto out;
    }

    fa2_fwd_args a = *in;
    a.dropout_mask = NULL; /* the caller's stays the backend's */
    if ((st = fa2_oracle_fwd_f64(&a, o64, lse64)) != FA2_OK)
        goto out;
    r->max_abs_err = max_err(in->o.data, t, o64, n_o);
    r->lse_max_abs_err = max_err(in->lse.data, FA2_DTYPE_FP32, lse64, n_lse);

    /* the yardstick: standard attention, same inputs, same dtype */
    memset(o_ref, 0xff, n_o * fa2_dtype_size(t)); /* NaN: unwritten elements show */
    memset(lse_ref, 0xff, sizeof(float) * n_lse);
    a.o.data = o_ref;
    a.lse.data = lse_ref;
    if ((st = fa2_fwd(&a, FA2_BACKEND_CPU_STANDARD)) != FA2_OK)
        goto out;
    r->ref_max_abs_err = max_err(o_ref, t, o64, n_o);
    r->ref_lse_max_abs_err = max_err(lse_ref, FA2_DTYPE_FP32, lse64, n_lse);

    r->bound = 2.0 * r->ref_max_abs_err + fa2_check_floor(t);
    r->lse_bound = 2.0 * r->ref_lse_max_abs_err + fa2_check_lse_floor();
    r->fwd_checked = 1;
    st = FA2_OK;
out:
    free(o64);
    free(lse64);
    free(o_ref);
    free(lse_ref);
    return st;
}

static fa2_status bwd_part(const fa2_bwd_args *in, fa2_check_result *r)
{
    const fa2_dtype t = in->q.dtype;
    const size_t es = fa2_dtype_size(t);
    const size_t n[FA2_CHECK_GRADS] = {dense_elements(&in->dq, 4),
                                       dense_elements(&in->dk, 4),
                                       dense_elements(&in->dv, 4)};
    const size_t n_o = dense_elements(&in->o, 4), n_lse = dense_elements(&in->lse, 3);
    if (!n[0] || !n[1] || !n[2] || !n_o || !n_lse)
        return fa2_fail(FA2_ERR_STRIDE, "the check reads dq, dk, dv, o and lse "
                        "as dense, non-empty host tensors");
    const size_t bytes[FA2_CHECK_GRADS] = {n[0] * es, n[1] * es, n[2] * es};
    const int64_t heads = in->q.shape[2];
    double *ds64 = NULL; /* the sinks' gradients: oracle, standard */
    float *ds_ref = NULL;
    const void *mine[FA2_CHECK_GRADS] = {in->dq.data, in->dk.data, in->dv.data};
    double *g64[FA2_CHECK_GRADS] = {NULL, NULL, NULL};
    void *g_ref[FA2_CHECK_GRADS] = {NULL, NULL, NULL};
    void *o_ref = malloc(n_o * es);
    float *lse_ref = malloc(sizeof(float) * n_lse);
    fa2_status st = FA2_ERR_OUT_OF_MEMORY;
    int ok = o_ref && lse_ref;
    for (int g = 0; g < FA2_CHECK_GRADS; g++) {
        g64[g] = malloc(sizeof(double) * n[g]);
        g_ref[g] = malloc(bytes[g]);
        ok = ok && g64[g] && g_ref[g];
    }
    if (!ok) {
        fa2_fail(st, "the check could not allocate its float64 reference "
                 "gradients (%zu + 2 x %zu doubles)", n[FA2_CHECK_DQ], n[FA2_CHECK_DK]);
        goto out;
    }

    /* the exact gradients (the oracle recomputes P; o and lse unused) */
    fa2_bwd_args a = *in;
    if (in->sinks && (!(ds64 = malloc(sizeof(double) * (size_t)heads)) ||
                      !(ds_ref = malloc(sizeof(float) * (size_t)heads)))) {
        st = fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the check could not allocate "
                      "its sink gradients");
        goto out;
    }
    if ((st = fa2_oracle_bwd_f64_sinks(&a, g64[FA2_CHECK_DQ], g64[FA2_CHECK_DK],
                                       g64[FA2_CHECK_DV], ds64)) != FA2_OK)
        goto out;
    for (int g = 0; g < FA2_CHECK_GRADS; g++)
        r->grad[g].err = max_err(mine[g], t, g64[g], n[g]);

    /* the yardstick: standard attention's forward, then its backward over
     * that o and lse, same inputs and dO, same dtype; NaN-poisoned */
    fa2_fwd_args f = fa2_bwd_as_fwd_args(in);
    memset(o_ref, 0xff, n_o * es);
    memset(lse_ref, 0xff, sizeof(float) * n_lse);
    f.o.data = o_ref;
    f.lse.data = lse_ref;
    if ((st = fa2_fwd(&f, FA2_BACKEND_CPU_STANDARD)) != FA2_OK)
        goto out;
    a.o.data = o_ref;
    a.lse.data = lse_ref;
    a.dq.data = g_ref[FA2_CHECK_DQ];
    a.dk.data = g_ref[FA2_CHECK_DK];
    a.dv.data = g_ref[FA2_CHECK_DV];
    a.dsinks = ds_ref; /* the caller's dsinks stay the backend's */
    for (int g = 0; g < FA2_CHECK_GRADS; g++)
        memset(g_ref[g], 0xff, bytes[g]);
    if ((st = fa2_bwd(&a, FA2_BACKEND_CPU_STANDARD)) != FA2_OK)
        goto out;
    double mag[FA2_CHECK_GRADS], all = 0.0;
    for (int g = 0; g < FA2_CHECK_GRADS; g++) {
        mag[g] = 0.0;
        for (size_t i = 0; i < n[g]; i++)
            mag[g] = fabs(g64[g][i]) > mag[g] ? fabs(g64[g][i]) : mag[g];
        all = mag[g] > all ? mag[g] : all;
    }
    for (int g = 0; g < FA2_CHECK_GRADS; g++) {
        r->grad[g].ref_err = max_err(g_ref[g], t, g64[g], n[g]);
        r->grad[g].bound = 2.0 * r->grad[g].ref_err + fa2_check_grad_floor(t, mag[g], all);
    }
    r->bwd_checked = 1;
    if (in->sinks) { /* dsinks: like a gradient, over the heads */
        double mag_s = 0.0, e = 0.0, e_ref = 0.0;
        for (int64_t h = 0; h < heads; h++) {
            mag_s = fmax(mag_s, fabs(ds64[h]));
            e = fmax(e, fabs((double)in->dsinks[h] - ds64[h]));
            e_ref = fmax(e_ref, fabs((double)ds_ref[h] - ds64[h]));
            if (isnan(in->dsinks[h]) && !isnan(ds64[h]))
                e = INFINITY;
        }
        r->dsinks.err = e;
        r->dsinks.ref_err = e_ref;
        r->dsinks.bound = 2.0 * e_ref + fa2_check_grad_floor(t, mag_s, mag_s);
        r->dsinks_checked = 1;
    }
    st = FA2_OK;
out:
    free(ds64);
    free(ds_ref);
    free(o_ref);
    free(lse_ref);
    for (int g = 0; g < FA2_CHECK_GRADS; g++) {
        free(g64[g]);
        free(g_ref[g]);
    }
    return st;
}

/* passed: every part checked holds */
static void verdict(fa2_check_result *r)
{
    int ok = r->fwd_checked || r->bwd_checked;
    if (r->fwd_checked)
        ok = ok && within(r->max_abs_err, r->bound) &&
             within(r->lse_max_abs_err, r->lse_bound);
    if (r->bwd_checked)
        for (int g = 0; g < FA2_CHECK_GRADS; g++)
            ok = ok && within(r->grad[g].err, r->grad[g].bound);
    if (r->dsinks_checked)
        ok = ok && within(r->dsinks.err, r->dsinks.bound);
    r->passed = ok;
}

/* Either pass's check into *r, and the verdict over all parts so far. */
static fa2_status check_pass(fa2_pass pass, const void *a, fa2_check_result *r)
{
    if (!a || !r)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL", a ? "r" : "args");
    const fa2_status st = pass == FA2_PASS_FWD ? fwd_part(a, r) : bwd_part(a, r);
    verdict(r);
    return st;
}

fa2_status fa2_check_fwd(const fa2_fwd_args *a, fa2_check_result *r)
{
    return check_pass(FA2_PASS_FWD, a, r);
}

fa2_status fa2_check_bwd(const fa2_bwd_args *a, fa2_check_result *r)
{
    return check_pass(FA2_PASS_BWD, a, r);
}
