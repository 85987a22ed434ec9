/* cmd_trace.c — `fa2 trace`: the teaching view. It runs the tiled CPU
 * mirror (cpu/tiled_fwd.c, cpu/tiled_bwd.c) on a tiny problem with a trace
 * callback and prints every step as the mirror executes it: the tile, S,
 * the running max m, the correction factor alpha, l, the accumulator; then
 * O and LSE next to the float64 oracle's. `--pass bwd` does the same for
 * the backward (D, P, dS, the dQ/dK/dV accumulators). The numbers printed
 * are the mirror's own: nothing here recomputes the algorithm. */
#include "config.h"
#include "args.h"
#include "commands.h"
#include "fa2.h"
#include "fa2_cpu.h" /* the traced mirror and the float64 oracle */
#include "fa2_teach_html.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "fa2 trace"

typedef struct trace_opts {
    int64_t seqlen, seqlen_k, head_dim, block_m, block_n, window_l, window_r;
    int causal, bwd, digits;
    uint64_t seed;
    float softcap, dropout; /* score modifiers (doc/algorithm.md) */
    int alibi, sinks;
    float sink;             /* the sink logit, when --sinks */
    const char *html; /* --html FILE: the teaching page (lib/check/teach_html.c) */
} trace_opts;

typedef struct trace_ctx {
    const trace_opts *o;
    int64_t last_m_block; /* to print a header when the query block changes */
    int64_t last_n_block;
} trace_ctx;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fa2 trace [--pass fwd|bwd] [--seqlen N] [--seqlen-k N]\n"
            "                 [--head-dim D] [--block-m BR] [--block-n BC]\n"
            "                 [--causal] [--window L,R] [--digits K] [--seed S]\n"
            "                 [--softcap CAP] [--alibi] [--sinks] [--dropout P]\n"
            "                 [--html FILE]  (FILE: a self-contained teaching page)\n"
            "Prints the tiled FlashAttention-2 mirror step by step on a tiny\n"
            "problem (default: seqlen 8, head dim 4, 4x4 tiles, fp32). Sizes\n"
            "and tiles 1..64; head dim 4 or a multiple of 8 up to 64; digits\n"
            "1..8.\n");
}

/* Small numbers that read well in a table: deterministic, never zero. */
static float tiny_value(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    const int v = (int)((*state >> 33) % 17) - 8; /* -8 .. 8 */
    return (float)(v == 0 ? 1 : v) / 4.0f;
}

static void print_matrix(const char *title, const float *m, int64_t rows,
                         int64_t cols, int64_t rs, int64_t cs, int64_t row0,
                         int digits)
{
    printf("  %s\n", title);
    for (int64_t i = 0; i < rows; i++) {
        printf("    %3lld |", (long long)(row0 + i));
        for (int64_t j = 0; j < cols; j++) {
            const float x = m[i * rs + j * cs];
            if (isinf(x))
                printf(" %*s", digits + 5, x < 0 ? "-inf" : "+inf");
            else
                printf(" %*.*f", digits + 5, digits, (double)x);
        }
        printf("\n");
    }
}

static void on_fwd_step(void *user, const fa2_trace_event *e)
{
    trace_ctx *t = user;
    const int dg = t->o->digits;
    if (e->m_block != t->last_m_block) {
        t->last_m_block = e->m_block;
        if (t->o->sinks) /* the row state starts with the sink (fa2_score.h) */
            printf("\n== query block i = %lld (rows %lld..%lld): m = sink = %.*f, "
                   "l = exp2(sink log2(e) - m log2(e)) (the sink's weight), acc = 0\n",
                   (long long)e->m_block, (long long)e->row_lo,
                   (long long)(e->row_lo + e->rows - 1), dg, (double)t->o->sink);
        else
            printf("\n== query block i = %lld (rows %lld..%lld): m = -inf, l = 0, "
                   "acc = 0\n", (long long)e->m_block, (long long)e->row_lo,
                   (long long)(e->row_lo + e->rows - 1));
    }
    switch (e->kind) {
    case FA2_TRACE_FWD_S:
        printf("\n-- tile (i = %lld, j = %lld): keys %lld..%lld\n",
               (long long)e->m_block, (long long)e->n_block, (long long)e->col_lo,
               (long long)(e->col_lo + e->cols - 1));
        print_matrix(t->o->softcap > 0.0f || t->o->alibi || t->o->sinks
                         ? "S = logits u of Q_i K_j^T: scale x, capped cap tanh(./cap), "
                           "minus ALiBi slope |i'-j|  (masked entries -inf)"
                         : "S = Q_i K_j^T  (masked entries -inf)",
                     e->tile, e->rows, e->cols, e->row_stride, e->col_stride,
                     e->row_lo, dg);
        break;
    case FA2_TRACE_FWD_P:
        printf("  online softmax, per row: new running max m, correction alpha = "
               "exp2((m_old - m) c), l = alpha l + rowsum(P)\n");
        for (int64_t i = 0; i < e->rows; i++)
            printf("    %3lld | m %*.*f   alpha %*.*f   l %*.*f\n",
                   (long long)(e->row_lo + i), dg + 5, dg, (double)e->state[i].m,
                   dg + 3, dg, (double)e->alpha[i], dg + 4, dg,
                   (double)e->state[i].l);
        print_matrix(t->o->softcap > 0.0f || t->o->alibi || t->o->sinks
                         ? (t->o->dropout > 0.0f
                                ? "P = exp2(u c - m c), c = log2(e) on logits; dropped "
                                  "entries 0 (kept ones x 1/(1-p) at the end)"
                                : "P = exp2(u c - m c), c = log2(e) on logits")
                         : t->o->dropout > 0.0f
                         ? "P = exp2(S c - m c), c = scale log2(e); dropped entries 0 "
                           "(kept ones x 1/(1-p) at the end)"
                         : "P = exp2(S c - m c), c = scale log2(e)  (rounded to the "
                           "input dtype for P V)", e->tile, e->rows, e->cols,
                     e->row_stride, e->col_stride, e->row_lo, dg);
        break;
    case FA2_TRACE_FWD_ACC:
        print_matrix("acc = alpha acc + P V_j", e->acc, e->rows, t->o->head_dim, e->d, 1,
                     e->row_lo, dg);
        break;
    case FA2_TRACE_FWD_OUT:
        printf("\n-- end of query block %lld: O_i = acc / l, LSE_i = m scale + ln l\n",
               (long long)e->m_block);
        print_matrix("O_i", e->acc, e->rows, t->o->head_dim, e->d, 1, e->row_lo, dg);
        print_matrix("LSE_i", e->vec, e->rows, 1, 1, 1, e->row_lo, dg);
        break;
    default:
        break;
    }
}

static void on_bwd_step(void *user, const fa2_trace_event *e)
{
    trace_ctx *t = user;
    const int dg = t->o->digits;
    switch (e->kind) {
    case FA2_TRACE_BWD_D:
        printf("\n== preprocess: D = rowsum(dO o O), head %lld\n", (long long)e->head);
        print_matrix("D", e->vec, e->rows, 1, 1, 1, 0, dg);
        return;
    case FA2_TRACE_BWD_OUT:
        printf("\n-- end of key block %lld: dK_j = scale dK_j, dV_j\n",
               (long long)e->n_block);
        print_matrix("dK_j", e->dk, e->cols, t->o->head_dim, e->d, 1, e->col_lo, dg);
        print_matrix("dV_j", e->dv, e->cols, t->o->head_dim, e->d, 1, e->col_lo, dg);
        t->last_n_block = -1;
        return;
    default:
        break;
    }
    if (e->n_block != t->last_n_block) {
        t->last_n_block = e->n_block;
        printf("\n== key block j = %lld (keys %lld..%lld) resident: dK_j = dV_j = 0\n",
               (long long)e->n_block, (long long)e->col_lo,
               (long long)(e->col_lo + e->cols - 1));
    }
    switch (e->kind) {
    case FA2_TRACE_BWD_P:
        printf("\n-- tile (i = %lld, j = %lld): query rows %lld..%lld\n",
               (long long)e->m_block, (long long)e->n_block, (long long)e->row_lo,
               (long long)(e->row_lo + e->rows - 1));
        print_matrix("P = exp2(S c - LSE log2(e))  (from the saved LSE)", e->tile,
                     e->rows, e->cols, e->row_stride, e->col_stride, e->row_lo, dg);
        break;
    case FA2_TRACE_BWD_DS:
        print_matrix("dS = P o (dO_i V_j^T - D_i)", e->tile, e->rows, e->cols,
                     e->row_stride, e->col_stride, e->row_lo, dg);
        break;
    case FA2_TRACE_BWD_ACC:
        print_matrix("dV_j += P^T dO_i", e->dv, e->cols, t->o->head_dim, e->d, 1, e->col_lo, dg);
        print_matrix("dK_j += dS^T Q_i  (scaled at the end)", e->dk, e->cols,
                     t->o->head_dim, e->d, 1, e->col_lo, dg);
        print_matrix("dQ_i += dS K_j  (this key block's share, added to the float32 "
                     "accumulator)", e->acc, e->rows, t->o->head_dim, e->d, 1, e->row_lo, dg);
        break;
    default:
        break;
    }
}

/* 0 ok, 1 help, 2 usage error. */
static int parse(int argc, char **argv, trace_opts *o)
{
    static const char *const passes[] = {"fwd", "bwd", NULL};
    int64_t window[2] = {o->window_l, o->window_r};
    const opt opts[] = {
        OPT_CHOICE_("--pass", &o->bwd, passes),
        OPT_I64_("--seqlen", &o->seqlen, 1, 64),
        OPT_I64_("--seqlen-k", &o->seqlen_k, 1, 64),
        OPT_I64_("--head-dim", &o->head_dim, 1, 64),
        OPT_I64_("--block-m", &o->block_m, 1, 64),
        OPT_I64_("--block-n", &o->block_n, 1, 64),
        OPT_FLAG_("--causal", &o->causal, 1),
        OPT_PAIR_("--window", window, -1, 1 << 20),
        OPT_INT_("--digits", &o->digits, 1, 8),
        OPT_U64_("--seed", &o->seed),
        OPT_STRING_("--html", &o->html),
        OPT_CALL_("--softcap", &o->softcap, opt_nonneg_float),
        OPT_FLAG_("--alibi", &o->alibi, 1),
        OPT_FLAG_("--sinks", &o->sinks, 1),
        OPT_CALL_("--dropout", &o->dropout, opt_nonneg_float),
    };
    const int rc = opt_parse(PROG, opts, OPT_COUNT(opts), argc, argv);
    if (rc)
        return rc;
    /* the head dims the library takes, and 4: run as 8 (see below) */
    if (o->head_dim != 4 && o->head_dim % 8 != 0) {
        fprintf(stderr, PROG ": --head-dim: %lld is neither 4 nor a multiple of "
                "8 (the library's head dims)\n", (long long)o->head_dim);
        return 2;
    }
    if (o->dropout >= 1.0f) {
        fprintf(stderr, PROG ": --dropout %g is not a probability in [0, 1)\n",
                (double)o->dropout);
        return 2;
    }
    o->window_l = window[0];
    o->window_r = window[1];
    if (o->seqlen_k == 0)
        o->seqlen_k = o->seqlen;
    return 0;
}

int fa2_cmd_trace(int argc, char **argv)
{
    trace_opts o = {.seqlen = 8, .head_dim = 4, .block_m = 4, .block_n = 4,
                    .window_l = -1, .window_r = -1, .digits = 3, .seed = 1};
    const int rc_parse = parse(argc, argv, &o);
    if (rc_parse == 1)
        usage(stdout);
    if (rc_parse)
        return rc_parse == 1 ? 0 : 2;
    /* The library's head dims are multiples of 8; a head dim of 4 (the
     * default, for a readable trace) is run as 8 with the upper half of
     * every q, k, v row zero, which changes no dot product and no softmax,
     * and only the first 4 columns are printed. */
    const int64_t d_show = o.head_dim, d = (o.head_dim + 7) / 8 * 8;
    const int64_t nq = o.seqlen, nk = o.seqlen_k;
    float *q = calloc((size_t)(nq * d), 4), *k = calloc((size_t)(nk * d), 4);
    float *v = calloc((size_t)(nk * d), 4), *out = calloc((size_t)(nq * d), 4);
    float *dO = calloc((size_t)(nq * d), 4), *dq = calloc((size_t)(nq * d), 4);
    float *dk = calloc((size_t)(nk * d), 4), *dv = calloc((size_t)(nk * d), 4);
    float *lse = calloc((size_t)nq, 4);
    double *o64 = calloc((size_t)(nq * d), 8), *lse64 = calloc((size_t)nq, 8);
    double *dq64 = calloc((size_t)(nq * d), 8), *dk64 = calloc((size_t)(nk * d), 8);
    double *dv64 = calloc((size_t)(nk * d), 8);
    int rc = 1;
    if (!q || !k || !v || !out || !dO || !dq || !dk || !dv || !lse || !o64 ||
        !lse64 || !dq64 || !dk64 || !dv64) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    uint64_t st = o.seed;
    for (int64_t i = 0; i < nq; i++)
        for (int64_t c = 0; c < d_show; c++) {
            q[i * d + c] = tiny_value(&st);
            dO[i * d + c] = tiny_value(&st);
        }
    for (int64_t j = 0; j < nk; j++)
        for (int64_t c = 0; c < d_show; c++) {
            k[j * d + c] = tiny_value(&st);
            v[j * d + c] = tiny_value(&st);
        }

    fa2_fwd_args a;
    fa2_fwd_args_init(&a);
    a.q = fa2_tensor_4d(q, FA2_DTYPE_FP32, 1, nq, 1, d);
    a.k = fa2_tensor_4d(k, FA2_DTYPE_FP32, 1, nk, 1, d);
    a.v = fa2_tensor_4d(v, FA2_DTYPE_FP32, 1, nk, 1, d);
    a.o = fa2_tensor_4d(out, FA2_DTYPE_FP32, 1, nq, 1, d);
    a.lse = fa2_tensor_lse(lse, 1, 1, nq);
    a.causal = o.causal;
    a.window_left = o.window_l;
    a.window_right = o.window_r;
    a.block_m = (int)o.block_m;
    a.block_n = (int)o.block_n;
    /* the scale of the printed head dim, not of the zero padding */
    a.softmax_scale = (float)(1.0 / sqrt((double)d_show));
    /* the modifiers: one head, so ALiBi's slope is 2^-8; the sink drawn
     * after the inputs, so they do not change with --sinks */
    float slope = 1.0f / 256.0f, dsink = 0.0f;
    double dsink64 = 0.0;
    o.sink = tiny_value(&st);
    a.softcap = o.softcap;
    a.alibi_slopes = o.alibi ? &slope : NULL;
    a.sinks = o.sinks ? &o.sink : NULL;
    a.dropout_p = o.dropout;
    a.dropout_seed = o.seed;
    if (o.html) {
        rc = trace_html_write(o.html, &a, dO, dq, dk, dv);
        goto done;
    }

    printf("FlashAttention-2 %s, traced step by step as the tiled CPU mirror runs it\n"
           "(cpu/tiled_%s.c, the same loop order and rounding points as the CUDA kernel)\n\n",
           o.bwd ? "backward" : "forward", o.bwd ? "bwd" : "fwd");
    printf("problem: seqlen_q %lld, seqlen_k %lld, head dim %lld, tiles %lld x %lld "
           "(Br x Bc), fp32, causal %s, window %lld,%lld, scale %.4f\n",
           (long long)nq, (long long)nk, (long long)d_show, (long long)o.block_m,
           (long long)o.block_n, o.causal ? "yes" : "no", (long long)o.window_l,
           (long long)o.window_r, (double)a.softmax_scale);
    if (o.softcap > 0.0f || o.alibi || o.sinks || o.dropout > 0.0f)
        printf("modifiers: softcap %g, ALiBi slope %s, sink %s%.*f, dropout %g "
               "(seed %llu)\n", (double)o.softcap, o.alibi ? "2^-8" : "none",
               o.sinks ? "" : "none ", o.sinks ? o.digits : 0,
               o.sinks ? (double)o.sink : 0.0, (double)o.dropout,
               (unsigned long long)o.seed);
    print_matrix("Q", q, nq, d_show, d, 1, 0, o.digits);
    print_matrix("K", k, nk, d_show, d, 1, 0, o.digits);
    print_matrix("V", v, nk, d_show, d, 1, 0, o.digits);

    trace_ctx t = {&o, -1, -1};
    fa2_status s;
    if (!o.bwd) {
        s = fa2_tiled_fwd_traced(&a, on_fwd_step, &t);
    } else {
        s = fa2_fwd(&a, FA2_BACKEND_CPU_TILED);
        if (s == FA2_OK) {
            print_matrix("O (from the tiled forward)", out, nq, d_show, d, 1, 0, o.digits);
            print_matrix("LSE (from the tiled forward)", lse, nq, 1, 1, 1, 0, o.digits);
            print_matrix("dO", dO, nq, d_show, d, 1, 0, o.digits);
        }
    }
    fa2_bwd_args g = fa2_fwd_as_bwd_args(&a);
    g.dout = fa2_tensor_4d(dO, FA2_DTYPE_FP32, 1, nq, 1, d);
    g.dq = fa2_tensor_4d(dq, FA2_DTYPE_FP32, 1, nq, 1, d);
    g.dk = fa2_tensor_4d(dk, FA2_DTYPE_FP32, 1, nk, 1, d);
    g.dv = fa2_tensor_4d(dv, FA2_DTYPE_FP32, 1, nk, 1, d);
    g.deterministic = 1;
    g.dsinks = o.sinks ? &dsink : NULL;
    if (s == FA2_OK && o.bwd)
        s = fa2_tiled_bwd_traced(&g, on_bwd_step, &t);
    if (s == FA2_OK)
        s = o.bwd ? fa2_oracle_bwd_f64_sinks(&g, dq64, dk64, dv64, &dsink64)
                  : fa2_oracle_fwd_f64(&a, o64, lse64);
    if (s != FA2_OK) {
        fprintf(stderr, PROG ": %s: %s\n", fa2_status_str(s), fa2_last_error());
        goto done;
    }

    printf("\n== result next to the float64 oracle (cpu/oracle_%s.c)\n",
           o.bwd ? "bwd" : "fwd");
    const char *names[3] = {"O", "", ""};
    const float *got[3] = {out, NULL, NULL};
    const double *want[3] = {o64, NULL, NULL};
    int64_t rows[3] = {nq, 0, 0};
    if (o.bwd) {
        names[0] = "dQ", names[1] = "dK", names[2] = "dV";
        got[0] = dq, got[1] = dk, got[2] = dv;
        want[0] = dq64, want[1] = dk64, want[2] = dv64;
        rows[0] = nq, rows[1] = nk, rows[2] = nk;
    }
    double max_err = 0.0;
    for (int m = 0; m < 3 && got[m]; m++) {
        printf("  %s: tiled | oracle\n", names[m]);
        for (int64_t i = 0; i < rows[m]; i++) {
            printf("    %3lld |", (long long)i);
            for (int64_t c = 0; c < d_show; c++)
                printf(" %*.*f", o.digits + 5, o.digits, (double)got[m][i * d + c]);
            printf("  |");
            for (int64_t c = 0; c < d_show; c++) {
                printf(" %*.*f", o.digits + 5, o.digits, want[m][i * d + c]);
                const double e = fabs(got[m][i * d + c] - want[m][i * d + c]);
                max_err = e > max_err ? e : max_err;
            }
            printf("\n");
        }
    }
    if (!o.bwd) {
        printf("  LSE: tiled | oracle\n");
        for (int64_t i = 0; i < nq; i++)
            printf("    %3lld | %*.*f  | %*.*f\n", (long long)i, o.digits + 5, o.digits,
                   (double)lse[i], o.digits + 5, o.digits, lse64[i]);
    }
    if (o.bwd && o.sinks) {
        printf("  dsink: tiled | oracle  (= -sum_i P_sink,i D_i)\n    %*.*f  | %*.*f\n",
               o.digits + 5, o.digits, (double)dsink, o.digits + 5, o.digits, dsink64);
        max_err = fmax(max_err, fabs(dsink - dsink64));
    }
    printf("  max |tiled - oracle| = %.3g\n", max_err);
    rc = 0;
done:
    free(q), free(k), free(v), free(out), free(dO), free(dq), free(dk), free(dv);
    free(lse), free(o64), free(lse64), free(dq64), free(dk64), free(dv64);
    return rc;
}
