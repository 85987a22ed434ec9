/* verify.c — is another implementation's attention right? The engine of
 * `fa2 verify` (tools/cmd_verify.c parses its options): DIR holds the
 * kernel's inputs and outputs as .npy files (q, k, v, o and optionally lse,
 * dout, dq, dk, dv; cu_seqlens_q/_k: int32, packed [total, heads, d]
 * tensors). Each output is measured against the float64 oracle and passes
 * when max |x - oracle| <= 2 max |standard - oracle| + floor (the contract
 * of contract.c, with its floors); the tiled mirror, run with the kernel's
 * tiling, shows how close the kernel is to the same rounding points. The
 * report names the worst elements as (batch, row, head, col) with ulps, the
 * rows that are NaN or still hold the fill value, and the failing query
 * blocks. python/fa2/testing.py is the same check with a diagnosis of the
 * tiles. Library-internal (not exported): only the fa2 program calls it. */
#include "fa2_verify.h"

#include "fa2.h"
#include "fa2_check.h" /* the bound's floors */
#include "fa2_cpu.h"   /* fa2_oracle_fwd_f64, fa2_oracle_bwd_f64 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { T_Q, T_K, T_V, T_O, T_LSE, T_DOUT, T_DQ, T_DK, T_DV, T_CUQ, T_CUK, T_N };
static const char *const names[T_N] = {"q", "k", "v", "o", "lse", "dout",
                                       "dq", "dk", "dv", "cu_seqlens_q", "cu_seqlens_k"};
typedef struct npy { void *data; char descr[8]; int ndim; int64_t shape[4]; size_t n; } npy;

/* Read DIR/NAME.npy (format 1.0-3.0, C order); 1 if absent, -1 if bad. */
static int npy_load(const char *dir, const char *name, npy *a, FILE *err)
{
    char path[4096], hdr[1024];
    unsigned char pre[12];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 1;
    int ok = fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY", 6) == 0;
    size_t len = ok ? (size_t)(pre[8] | pre[9] << 8) : 0;
    if (ok && pre[6] >= 2 && fread(pre + 10, 1, 2, f) == 2)
        len |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    ok = ok && len < sizeof hdr && fread(hdr, 1, len, f) == len;
    hdr[ok ? len : 0] = '\0';
    const char *d = strstr(hdr, "'descr': '"), *s = strstr(hdr, "'shape': (");
    ok = ok && d && s && !strstr(hdr, "'fortran_order': True");
    if (ok) {
        sscanf(d + 10, "%7[^']", a->descr);
        a->n = 1;
        for (s += 10; *s && *s != ')' && a->ndim < 4; s++) {
            char *end;
            long long v = strtoll(s, &end, 10);
            if (end == s)
                continue;
            a->shape[a->ndim++] = v;
            a->n *= (size_t)v;
            s = end - 1;
        }
        size_t esz = (size_t)(a->descr[2] - '0');
        a->data = malloc(a->n * esz + 1);
        ok = a->data && strlen(a->descr) == 3 && fread(a->data, esz, a->n, f) == a->n;
    }
    fclose(f);
    if (!ok)
        fprintf(err, "fa2 verify: %s: not a C-order .npy file this tool reads\n", path);
    return ok ? 0 : -1;
}

static double value(const npy *a, fa2_dtype t, size_t i)
{
    if (!strcmp(a->descr + 1, "f4"))
        return ((const float *)a->data)[i];
    uint16_t h = ((const uint16_t *)a->data)[i];
    return t == FA2_DTYPE_BF16 ? fa2_bf16_to_float(h) : fa2_fp16_to_float(h);
}

static fa2_tensor view(npy *a, fa2_dtype t)
{
    int off = a->ndim == 3; /* packed [total, heads, d]: batch 1 */
    return fa2_tensor_4d(a->data, t, off ? 1 : a->shape[0], a->shape[1 - off],
                         a->shape[2 - off], a->shape[3 - off]);
}

/* Measure one output (n elements, rows of `row` elements) and print it. */
static int measure(FILE *out, const char *name, const npy *got, fa2_dtype t, const double *want,
                   const void *ref, const void *mir, size_t n, int64_t row,
                   double floor_, double fill, int worst, const fa2_tensor *shape,
                   int64_t block_m)
{
    double *row_err = row > 1 ? calloc(n / (size_t)row, sizeof(double)) : NULL;
    npy r = {(void *)ref, "", 0, {0}, 0}, m = {(void *)mir, "", 0, {0}, 0};
    strcpy(r.descr, t == FA2_DTYPE_FP32 || row == 1 ? "<f4" : "<u2");
    strcpy(m.descr, r.descr);
    const int fp16 = row > 1 && t == FA2_DTYPE_FP16;
    const int mant = row == 1 || t == FA2_DTYPE_FP32 ? 23 : fp16 ? 10 : 7;
    const double tiny = fp16 ? 0x1p-14 : 0x1p-126; /* smallest normal */
    double err = 0, ref_err = 0, mir_err = 0, ulps = 0, top[16] = {0};
    size_t top_i[16] = {0}, nan_rows = 0, unwritten = 0, first_bad = 0;
    for (size_t i = 0; i < n; i++) {
        double x = value(got, t, i), w = want[i], e = isfinite(w) ? fabs(x - w) : 0;
        if ((isfinite(w) && !isfinite(x)) || (isnan(w) && !isnan(x)))
            e = INFINITY;
        if (isfinite(w))
            ref_err = fmax(ref_err, fabs(value(&r, row == 1 ? FA2_DTYPE_FP32 : t, i) - w));
        if (isfinite(x))
            mir_err = fmax(mir_err, fabs(x - value(&m, row == 1 ? FA2_DTYPE_FP32 : t, i)));
        int ex;
        frexp(fmax(fabs(w), tiny), &ex);
        ulps = fmax(ulps, e / ldexp(1.0, ex - 1 - mant));
        err = fmax(err, e);
        if (row_err)
            row_err[i / (size_t)row] = fmax(row_err[i / (size_t)row], e);
        for (int j = 0; j < worst && isfinite(e); j++) /* NaN rows: below */
            if (e > top[j]) {
                memmove(top + j + 1, top + j, (size_t)(worst - 1 - j) * sizeof *top);
                memmove(top_i + j + 1, top_i + j, (size_t)(worst - 1 - j) * sizeof *top_i);
                top[j] = e, top_i[j] = i;
                break;
            }
        if (row > 1 && i % (size_t)row == (size_t)row - 1) { /* a row ends */
            int all_fill = 1, any_nan = 0, want_fill = 1;
            for (size_t c = i + 1 - (size_t)row; c <= i; c++) {
                double xc = value(got, t, c);
                all_fill &= isnan(fill) ? isnan(xc) : xc == fill;
                any_nan |= isnan(xc) && isfinite(want[c]);
                want_fill &= want[c] == fill;
            }
            if ((all_fill && !want_fill) || any_nan)
                first_bad = nan_rows + unwritten ? first_bad : i / (size_t)row;
            unwritten += all_fill && !want_fill;
            nan_rows += any_nan && !(all_fill && !want_fill);
        }
    }
    double bound = 2 * ref_err + floor_;
    int pass = err <= bound && !nan_rows && !unwritten;
    fprintf(out, "%-4s %12.4e %12.4e %12.4e %10.1f %12.4e  %s\n", name, err, ref_err,
           bound, ulps, mir_err, pass ? "ok" : "FAIL");
    for (int j = 0; !pass && j < worst && top[j] > 0; j++) {
        size_t i = top_i[j];
        int64_t c = row > 1 ? (int64_t)(i % (size_t)row) : -1, rest = (int64_t)(i / (size_t)(row > 1 ? row : 1));
        int64_t h = row > 1 ? rest % shape->shape[2] : (rest / shape->shape[1]) % shape->shape[2];
        int64_t rr = row > 1 ? rest / shape->shape[2] % shape->shape[1] : rest % shape->shape[1];
        int64_t b = row > 1 ? rest / shape->shape[2] / shape->shape[1] : rest / shape->shape[1] / shape->shape[2];
        int ex;
        frexp(fmax(fabs(want[i]), tiny), &ex);
        fprintf(out, "  (%lld, %lld, %lld, %lld)  got %.6g  want %.6g  (%.0f ulps)\n", (long long)b,
               (long long)rr, (long long)h, (long long)c, value(got, t, i), want[i],
               top[j] / ldexp(1.0, ex - 1 - mant));
    }
    /* failing rows by query block: where in the kernel's tiling it went wrong */
    int64_t nrow = shape->shape[1], nb = (nrow + block_m - 1) / block_m;
    for (int64_t blk = 0; !pass && row_err && blk < nb; blk++) {
        size_t rows = 0;
        for (size_t i = 0; i < n / (size_t)row; i++) /* i = (b * N + r) * H + h */
            rows += row_err[i] > bound && (int64_t)(i / (size_t)shape->shape[2] % (size_t)nrow) / block_m == blk;
        if (rows)
            fprintf(out, "  query block %lld (rows %lld..%lld): %zu (row, head) pairs out of bound\n", (long long)blk,
                   (long long)(blk * block_m), (long long)(blk * block_m + block_m - 1), rows);
    }
    free(row_err);
    if (nan_rows || unwritten) /* first_bad = (b * N + r) * H + h */
        fprintf(out, "  %zu NaN rows, %zu never-written rows (every element still %g); "
               "the first at (%lld, %lld, %lld)\n", nan_rows, unwritten, fill,
               (long long)(first_bad / (size_t)shape->shape[2] / (size_t)shape->shape[1]),
               (long long)(first_bad / (size_t)shape->shape[2] % (size_t)shape->shape[1]),
               (long long)(first_bad % (size_t)shape->shape[2]));
    return pass;
}

int fa2_verify_dir(const char *dir, const fa2_verify_opts *opt, FILE *out, FILE *err)
{
    const int causal = opt->causal, worst = opt->worst;
    const int64_t wl = opt->window_left, wr = opt->window_right;
    const int64_t bm = opt->block_m, bn = opt->block_n;
    const double scale = opt->scale, fill = opt->fill;
    int dt16 = opt->dtype16, rc = 2;
    npy a[T_N] = {{0}};
    double *o64 = NULL, *l64 = NULL;
    void *ro = NULL, *mo = NULL, *rl = NULL, *ml = NULL;
    for (int i = 0; i < T_N; i++) {
        int r = npy_load(dir, names[i], &a[i], err);
        if (r < 0 || (r > 0 && i <= T_O)) {
            if (r > 0)
                fprintf(err, "fa2 verify: %s/%s.npy is missing\n", dir, names[i]);
            goto out;
        }
    }
    if (a[T_Q].ndim < 3 || a[T_Q].shape[a[T_Q].ndim - 1] <= 0) {
        fprintf(err, "fa2 verify: q.npy: a [batch, seqlen, heads, head_dim] array "
                "(or [total, heads, head_dim] with cu_seqlens) expected\n");
        goto out;
    }
    /* element types this tool reads, and every array the size it must be */
    const size_t nq = a[T_Q].n, nk = a[T_K].n, nlse = nq / (size_t)a[T_Q].shape[a[T_Q].ndim - 1];
    const size_t want_n[T_N] = {nq, nk, nk, nq, nlse, nq, nq, nk, nk, a[T_CUQ].n, a[T_CUQ].n};
    for (int i = 0; i < T_N; i++) {
        const char *d = a[i].descr + 1, *want = i == T_LSE ? "f4" : i >= T_CUQ ? "i4" : NULL;
        int ok = !a[i].data || (a[i].n == want_n[i] &&
                 (want ? !strcmp(d, want) : !strcmp(a[i].descr, a[T_Q].descr) &&
                  (!strcmp(d, "f4") || !strcmp(d, "f2") || !strcmp(d, "u2") || !strcmp(d, "V2"))));
        ok = ok && (i >= T_LSE || a[i].ndim == (a[T_CUQ].data ? 3 : 4));
        if (!ok) {
            fprintf(err, "fa2 verify: %s.npy: %s elements of type %s expected (%zu of %s "
                    "found; q, k, v: %s-d)\n", names[i], i == T_LSE ? "float32" : i >= T_CUQ ?
                    "int32" : "q's", want ? want : a[T_Q].descr, a[i].n, a[i].descr,
                    a[T_CUQ].data ? "3" : "4");
            goto out;
        }
    }
    /* uint16 bits need --dtype; ml_dtypes' bfloat16 is saved as 2-byte void */
    if (!dt16 && !strcmp(a[T_Q].descr + 1, "V2"))
        dt16 = FA2_DTYPE_BF16;
    if (!dt16 && !strcmp(a[T_Q].descr + 1, "u2")) {
        fprintf(err, "fa2 verify: q.npy holds uint16: say --dtype fp16 or --dtype bf16\n");
        goto out;
    }
    fa2_dtype t = !strcmp(a[T_Q].descr + 1, "f4") ? FA2_DTYPE_FP32
                : !strcmp(a[T_Q].descr + 1, "f2") ? FA2_DTYPE_FP16 : (fa2_dtype)dt16;
    size_t no = nq, nl = nlse, es = fa2_dtype_size(t);
    double *g64[3] = {0};
    o64 = malloc(no * 8), l64 = malloc(nl * 8);
    ro = malloc(no * es), mo = malloc(no * es), rl = malloc(nl * 4), ml = malloc(nl * 4);
    fa2_fwd_args f;
    fa2_fwd_args_init(&f);
    f.q = view(&a[T_Q], t), f.k = view(&a[T_K], t), f.v = view(&a[T_V], t);
    f.causal = causal, f.window_left = wl, f.window_right = wr, f.softmax_scale = (float)scale;
    if (a[T_CUQ].data)
        f.cu_seqlens_q = a[T_CUQ].data, f.cu_seqlens_k = a[T_CUK].data,
        f.num_seqs = (int64_t)a[T_CUQ].n - 1;
    f.o = fa2_tensor_4d(ro, t, f.q.shape[0], f.q.shape[1], f.q.shape[2], f.q.shape[3]);
    f.lse = fa2_tensor_lse(rl, f.q.shape[0], f.q.shape[2], f.q.shape[1]);
    fa2_status st = o64 && l64 && ro && mo && rl && ml ? fa2_oracle_fwd_f64(&f, o64, l64) : FA2_ERR_OUT_OF_MEMORY;
    if (st == FA2_OK)
        st = fa2_fwd(&f, FA2_BACKEND_CPU_STANDARD);
    fa2_fwd_args fm = f;
    fm.o.data = mo, fm.lse.data = ml, fm.block_m = (int)bm, fm.block_n = (int)bn;
    fa2_tile_config tc = {(int)bm, (int)bn, 0, 0};
    if (st == FA2_OK && (!bm || !bn) &&
        (st = fa2_tile_config_for(FA2_BACKEND_CPU_TILED, FA2_PASS_FWD, t, (int)f.q.shape[3], &tc)) == FA2_OK)
        tc.block_m = bm ? (int)bm : tc.block_m, tc.block_n = bn ? (int)bn : tc.block_n;
    fm.block_m = tc.block_m, fm.block_n = tc.block_n;
    if (st == FA2_OK)
        st = fa2_fwd(&fm, FA2_BACKEND_CPU_TILED);
    if (st != FA2_OK) {
        fprintf(err, "fa2 verify: %s: %s\n", fa2_status_str(st), fa2_last_error());
        goto out;
    }
    fprintf(out, "fa2 verify %s: %s, mirror tiling %lld x %lld\n%-4s %12s %12s %12s %10s %12s\n", dir,
           fa2_dtype_name(t), (long long)tc.block_m, (long long)tc.block_n, "out", "max err", "standard",
           "bound", "ulps", "vs mirror");
    int pass = measure(out, "o", &a[T_O], t, o64, ro, mo, no, f.q.shape[3], fa2_check_floor(t), fill, (int)worst, &f.q, tc.block_m);
    if (a[T_LSE].data)
        pass &= measure(out, "lse", &a[T_LSE], FA2_DTYPE_FP32, l64, rl, ml, nl, 1, fa2_check_lse_floor(), 0, (int)worst, &f.q, tc.block_m);
    if (a[T_DOUT].data && a[T_LSE].data && (a[T_DQ].data || a[T_DK].data || a[T_DV].data)) {
        fa2_bwd_args b;
        fa2_bwd_args_init(&b);
        b.q = f.q, b.k = f.k, b.v = f.v, b.o = view(&a[T_O], t), b.dout = view(&a[T_DOUT], t);
        b.lse = f.lse, b.lse.data = a[T_LSE].data, b.causal = causal, b.window_left = wl;
        b.window_right = wr, b.softmax_scale = f.softmax_scale, b.cu_seqlens_q = f.cu_seqlens_q;
        b.cu_seqlens_k = f.cu_seqlens_k, b.num_seqs = f.num_seqs;
        size_t n[3] = {no, a[T_K].n, a[T_V].n};
        const fa2_tensor *sh[3] = {&f.q, &f.k, &f.v};
        void *rg[3], *mg[3];
        for (int i = 0; i < 3; i++)
            g64[i] = malloc(n[i] * 8), rg[i] = malloc(n[i] * es), mg[i] = malloc(n[i] * es);
        b.dq = fa2_tensor_4d(rg[0], t, f.q.shape[0], f.q.shape[1], f.q.shape[2], f.q.shape[3]);
        b.dk = fa2_tensor_4d(rg[1], t, f.k.shape[0], f.k.shape[1], f.k.shape[2], f.k.shape[3]);
        b.dv = fa2_tensor_4d(rg[2], t, f.v.shape[0], f.v.shape[1], f.v.shape[2], f.v.shape[3]);
        st = FA2_OK;
        for (int i = 0; i < 3; i++)
            if (!g64[i] || !rg[i] || !mg[i])
                st = FA2_ERR_OUT_OF_MEMORY;
        if (st == FA2_OK) /* b's own outputs are not touched */
            st = fa2_oracle_bwd_f64(&b, g64[0], g64[1], g64[2]);
        fa2_bwd_args br = b, bm_ = b; /* standard over its own forward; mirror over the mirror's */
        br.o = f.o, br.lse = f.lse, bm_.o = fm.o, bm_.lse = fm.lse;
        bm_.block_m = tc.block_m, bm_.block_n = tc.block_n;
        bm_.dq = br.dq, bm_.dk = br.dk, bm_.dv = br.dv;
        bm_.dq.data = mg[0], bm_.dk.data = mg[1], bm_.dv.data = mg[2];
        if (st == FA2_OK && (st = fa2_bwd(&br, FA2_BACKEND_CPU_STANDARD)) == FA2_OK)
            st = fa2_bwd(&bm_, FA2_BACKEND_CPU_TILED);
        double mag[3] = {0}, all = 0;
        for (int i = 0; i < 3; i++) {
            for (size_t j = 0; st == FA2_OK && j < n[i]; j++)
                mag[i] = fmax(mag[i], fabs(g64[i][j]));
            all = fmax(all, mag[i]);
        }
        for (int i = 0; st == FA2_OK && i < 3; i++)
            if (a[T_DQ + i].data)
                pass &= measure(out, names[T_DQ + i], &a[T_DQ + i], t, g64[i], rg[i], mg[i], n[i],
                                f.q.shape[3], fa2_check_grad_floor(t, mag[i], all), fill, (int)worst, sh[i], tc.block_m);
        for (int i = 0; i < 3; i++)
            free(g64[i]), free(rg[i]), free(mg[i]);
        if (st != FA2_OK) {
            fprintf(err, "fa2 verify: %s: %s\n", fa2_status_str(st), fa2_last_error());
            goto out;
        }
    }
    fprintf(out, "%s\n", pass ? "PASS" : "FAIL");
    rc = pass ? 0 : 1;
out:
    for (int i = 0; i < T_N; i++)
        free(a[i].data);
    free(o64), free(l64), free(ro), free(mo), free(rl), free(ml);
    return rc;
}
