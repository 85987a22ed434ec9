/* cmd_run.c — `fa2 run`: build a random problem, run one pass of it on a
 * backend, time it, optionally check it against the float64 oracle, and
 * report (a short human report, or one JSON object with --json).
 *
 *   fa2 run                        the default problem, checked
 *   fa2 run --dtype bf16 --seqlen 1000 --check --json
 *   fa2 run --pass fwd+bwd --seqlen 512 --check
 *
 * The passes are rows of one table: a pass is a way to run (runner.h), a
 * FLOP count and a check. */
#include "config.h"
#include "fa2_check.h"
#include "commands.h"
#include "fa2.h"
#include "fa2_writer.h"
#include "problem.h"
#include "run_opts.h"
#include "runner.h"
#include "timing.h"

#include <stdio.h>
#include <string.h>

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int num_threads); /* OpenBLAS's cblas.h */
#endif

/* Phases expected to take longer than this say so on stderr. */
#define PROGRESS_S 2.0

/* FLOPs by the FA2 paper's count: the backward is 2.5x the forward. */
static double bwd_flops(const problem *p)
{
    const fa2_bwd_args a = problem_bwd_args(p, 0);
    return fa2_bwd_flops(&a);
}

static double fwd_bwd_flops(const problem *p)
{
    return problem_fwd_flops(p) + bwd_flops(p);
}

/* The checks of the passes, over the problem's host buffers. */
static fa2_status check_fwd(const problem *p, int threads, fa2_check_result *r)
{
    const fa2_fwd_args a = problem_fwd_args(p, threads);
    return fa2_check_fwd(&a, r);
}

static fa2_status check_bwd(const problem *p, int threads, fa2_check_result *r)
{
    const fa2_bwd_args a = problem_bwd_args(p, threads);
    return fa2_check_bwd(&a, r);
}

static fa2_status check_fwd_bwd(const problem *p, int threads, fa2_check_result *r)
{
    const fa2_status st = check_fwd(p, threads, r);
    return st ? st : check_bwd(p, threads, r);
}

typedef struct pass_info {
    const char *title;                                   /* "forward"       */
    int bwd;                                             /* has a backward  */
    fa2_status (*prepare)(void *runner_ctx);             /* untimed, once   */
    timing_fn run;                                       /* ctx: a runner   */
    double (*flops)(const problem *p);                   /* FA2 paper count */
    fa2_status (*check)(const problem *p, int threads, fa2_check_result *r);
} pass_info;

static const pass_info passes[RUN_PASS_COUNT] = {
    [RUN_PASS_FWD] = {"forward", 0, NULL, runner_fwd, problem_fwd_flops,
                      check_fwd},
    [RUN_PASS_BWD] = {"backward", 1, runner_prepare_bwd, runner_bwd, bwd_flops,
                      check_bwd},
    [RUN_PASS_FWD_BWD] = {"forward + backward", 1, NULL, runner_fwd_bwd,
                          fwd_bwd_flops, check_fwd_bwd},
};

/* What one invocation found out. */
typedef struct run_result {
    fa2_backend backend;
    char fallback[300]; /* why auto did not pick CUDA ("" if not asked) */
    timing_result time;
    double flops;
    int checked;
    fa2_check_result check;
} run_result;

/* ---- reports ------------------------------------------------------------- */

static void window_text(const problem_spec *s, char *buf, size_t n)
{
    const int64_t right = s->causal ? 0 : s->window_right;
    if (s->window_left < 0 && right < 0)
        snprintf(buf, n, "none");
    else if (s->window_left < 0 && s->causal)
        snprintf(buf, n, "none (causal)");
    else
        snprintf(buf, n, "%lld,%lld%s", (long long)s->window_left,
                 (long long)right, s->causal ? " (causal)" : "");
}

static void report_human(const run_opts *o, const problem *p, const run_result *r)
{
    const problem_spec *s = &p->spec;
    const pass_info *pi = &passes[o->pass];
    char win[64];
    window_text(s, win, sizeof win);
    printf("fa2 %s: %s pass, %s%s%s%s%s\n", fa2_version_string(), pi->title,
           fa2_dtype_name(s->dtype), s->causal ? ", causal" : "",
           s->varlen ? ", variable lengths" : "",
           pi->bwd && o->deterministic ? ", deterministic" : "",
           o->kvcache ? ", through fa2_fwd_kvcache" : "");
    printf("  problem  batch %lld, heads %lld (kv %lld), seqlen %lld (k %lld), "
           "head dim %lld, window %s, seed %llu\n", (long long)s->batch,
           (long long)s->heads_q, (long long)s->heads_kv, (long long)s->seqlen_q,
           (long long)s->seqlen_k, (long long)s->head_dim, win,
           (unsigned long long)s->seed);
    if (s->softcap > 0.0f || s->alibi || s->sinks || s->dropout_p > 0.0f)
        printf("  modifiers softcap %g%s%s, dropout %g\n", (double)s->softcap,
               s->alibi ? ", ALiBi" : "", s->sinks ? ", sinks" : "",
               (double)s->dropout_p);
    if (s->varlen && s->batch <= 16) {
        printf("  lengths  q");
        for (int64_t b = 0; b < s->batch; b++)
            printf(" %d", (int)(p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b]));
        printf(" / k");
        for (int64_t b = 0; b < s->batch; b++)
            printf(" %d", (int)(p->cu_seqlens_k[b + 1] - p->cu_seqlens_k[b]));
        printf("\n");
    } else if (s->varlen) {
        printf("  lengths  max q %lld, max k %lld (packed %lld / %lld)\n",
               (long long)p->max_seqlen_q, (long long)p->max_seqlen_k,
               (long long)p->rows_q, (long long)p->rows_k);
    }
    if (r->backend == FA2_BACKEND_CUDA)
        printf("  backend  cuda\n");
    else
        printf("  backend  %s, %d threads\n", fa2_backend_name(r->backend), o->threads);
    if (r->fallback[0])
        printf("           (not cuda: %s)\n", r->fallback);
    printf("  time     %.3f ms (median of %d runs, %.3f .. %.3f)  %.2f GFLOP/s  "
           "(%.3g GFLOP%s)\n", r->time.seconds * 1e3, r->time.runs,
           r->time.min * 1e3, r->time.max * 1e3,
           r->flops / r->time.seconds * 1e-9, r->flops * 1e-9,
           s->window_left >= 0 || (!s->causal && s->window_right >= 0)
               ? ", visible pairs of the window counted" : "");
    if (!r->checked)
        return;
    const fa2_check_result *c = &r->check;
    const char *lead = "  error   ";
    if (c->fwd_checked) {
        printf("%s O    max %.3g vs oracle; standard attention %.3g; "
               "bound %.3g\n", lead, c->max_abs_err, c->ref_max_abs_err, c->bound);
        printf("           LSE  max %.3g vs oracle; standard attention %.3g; "
               "bound %.3g\n", c->lse_max_abs_err, c->ref_lse_max_abs_err,
               c->lse_bound);
        lead = "          ";
    }
    static const char *const grad_titles[FA2_CHECK_GRADS] = {"dQ ", "dK ", "dV "};
    for (int g = 0; c->bwd_checked && g < FA2_CHECK_GRADS; g++) {
        printf("%s %s  max %.3g vs oracle; standard attention %.3g; "
               "bound %.3g\n", lead, grad_titles[g], c->grad[g].err,
               c->grad[g].ref_err, c->grad[g].bound);
        lead = "          ";
    }
    if (c->dsinks_checked)
        printf("%s dsinks max %.3g vs oracle; standard attention %.3g; "
               "bound %.3g\n", lead, c->dsinks.err, c->dsinks.ref_err,
               c->dsinks.bound);
    char lse_floor[32];
    snprintf(lse_floor, sizeof lse_floor, "%g", fa2_check_lse_floor());
    printf("  check    %s (bound: 2 x standard attention's error + %g%s%s)\n",
           c->passed ? "PASS" : "FAIL", fa2_check_floor(s->dtype),
           c->fwd_checked ? "; LSE + " : "", c->fwd_checked ? lse_floor : "");
}

static void report_json(const run_opts *o, const problem *p, const run_result *r)
{
    const problem_spec *s = &p->spec;
    fa2_writer w;
    fa2_writer_file(&w, stdout);
    fa2_json_begin(&w);
    fa2_json_string(&w, "version", fa2_version_string());
    fa2_json_string(&w, "backend", fa2_backend_name(r->backend));
    fa2_json_string(&w, "backend_requested", o->backend == RUN_BACKEND_AUTO
                ? "auto" : fa2_backend_name((fa2_backend)o->backend));
    if (r->fallback[0])
        fa2_json_string(&w, "cuda_unavailable", r->fallback);
    fa2_json_string(&w, "pass", run_pass_names[o->pass]);
    fa2_json_bool(&w, "kvcache", o->kvcache);
    if (passes[o->pass].bwd)
        fa2_json_bool(&w, "deterministic", o->deterministic);
    fa2_json_string(&w, "dtype", fa2_dtype_name(s->dtype));
    fa2_json_int(&w, "batch", s->batch);
    fa2_json_int(&w, "seqlen_q", s->seqlen_q);
    fa2_json_int(&w, "seqlen_k", s->seqlen_k);
    fa2_json_int(&w, "heads_q", s->heads_q);
    fa2_json_int(&w, "heads_kv", s->heads_kv);
    fa2_json_int(&w, "head_dim", s->head_dim);
    fa2_json_bool(&w, "causal", s->causal);
    fa2_json_int(&w, "window_left", s->window_left);
    fa2_json_int(&w, "window_right", s->causal ? 0 : s->window_right);
    fa2_json_bool(&w, "varlen", s->varlen);
    if (s->varlen) {
        fa2_json_int(&w, "max_seqlen_q", p->max_seqlen_q);
        fa2_json_int(&w, "max_seqlen_k", p->max_seqlen_k);
        fa2_json_int_array(&w, "cu_seqlens_q", p->cu_seqlens_q, s->batch + 1);
        fa2_json_int_array(&w, "cu_seqlens_k", p->cu_seqlens_k, s->batch + 1);
    }
    fa2_json_uint(&w, "seed", s->seed);
    fa2_json_number(&w, "softcap", s->softcap);
    fa2_json_bool(&w, "alibi", s->alibi);
    fa2_json_bool(&w, "sinks", s->sinks);
    fa2_json_number(&w, "dropout_p", s->dropout_p);
    fa2_json_int(&w, "threads", o->threads);
    fa2_json_int(&w, "runs", r->time.runs);
    fa2_json_number(&w, "time_ms", r->time.seconds * 1e3);
    fa2_json_number(&w, "time_min_ms", r->time.min * 1e3);
    fa2_json_number(&w, "time_max_ms", r->time.max * 1e3);
    fa2_json_number(&w, "flops", r->flops);
    fa2_json_number(&w, "gflops", r->flops / r->time.seconds * 1e-9);
    if (r->checked) {
        const fa2_check_result *c = &r->check;
        char k[64];
        if (c->fwd_checked) {
            fa2_json_number(&w, "max_abs_err", c->max_abs_err);
            fa2_json_number(&w, "ref_max_abs_err", c->ref_max_abs_err);
            fa2_json_number(&w, "max_abs_err_bound", c->bound);
            fa2_json_number(&w, "lse_max_abs_err", c->lse_max_abs_err);
            fa2_json_number(&w, "ref_lse_max_abs_err", c->ref_lse_max_abs_err);
            fa2_json_number(&w, "lse_max_abs_err_bound", c->lse_bound);
        }
        for (int g = 0; c->bwd_checked && g < FA2_CHECK_GRADS; g++) {
            const char *n = fa2_check_grad_names[g];
            snprintf(k, sizeof k, "%s_max_abs_err", n);
            fa2_json_number(&w, k, c->grad[g].err);
            snprintf(k, sizeof k, "ref_%s_max_abs_err", n);
            fa2_json_number(&w, k, c->grad[g].ref_err);
            snprintf(k, sizeof k, "%s_max_abs_err_bound", n);
            fa2_json_number(&w, k, c->grad[g].bound);
        }
        if (c->dsinks_checked) {
            fa2_json_number(&w, "dsinks_max_abs_err", c->dsinks.err);
            fa2_json_number(&w, "ref_dsinks_max_abs_err", c->dsinks.ref_err);
            fa2_json_number(&w, "dsinks_max_abs_err_bound", c->dsinks.bound);
        }
        fa2_json_bool(&w, "check_passed", c->passed);
    }
    fa2_json_end(&w);
}

/* ---- running ------------------------------------------------------------------ */

static int lib_error(const char *what, fa2_status st, const char *why)
{
    fflush(stdout);
    fprintf(stderr, "fa2 run: %s: %s: %s\n", what, fa2_status_str(st), why);
    return 1;
}

/* Why CUDA may be passed over silently in auto mode: it is absent, or it
 * cannot serve this request. A CUDA backend that is there and fails is an
 * error to report, not a reason to quietly run something else. */
static int cuda_absent(fa2_status st)
{
    return st == FA2_ERR_NOT_BUILT || st == FA2_ERR_NO_DEVICE ||
           st == FA2_ERR_UNSUPPORTED;
}

/* Open a runner on backend, prepare the pass and do the warm-up run. */
static fa2_status open_prepare_warm_up(const run_opts *o, const pass_info *pi,
                                       fa2_backend backend, problem *p,
                                       runner *rn, double *warmup_s)
{
    const unsigned flags = (pi->bwd ? RUNNER_BWD : 0u) |
                           (o->deterministic ? RUNNER_DETERMINISTIC : 0u) |
                           (o->kvcache ? RUNNER_KVCACHE : 0u);
    fa2_status st = runner_open(rn, backend, p, o->threads, flags);
    if (st == FA2_OK && pi->prepare)
        st = pi->prepare(rn);
    if (st == FA2_OK)
        st = pi->run(rn, warmup_s);
    return st;
}

/* Open the runner and do the warm-up run; in auto mode try CUDA first. A
 * pass CUDA cannot run (the backward, while it has no kernel) runs on the
 * tiled backend as a whole, forward included, and the report says why. */
static fa2_status open_and_warm_up(const run_opts *o, const pass_info *pi,
                                   problem *p, runner *rn, run_result *r,
                                   double *warmup_s)
{
    fa2_status st;
    if (o->backend == RUN_BACKEND_AUTO) {
        r->backend = FA2_BACKEND_CUDA;
        st = open_prepare_warm_up(o, pi, FA2_BACKEND_CUDA, p, rn, warmup_s);
        if (st == FA2_OK || !cuda_absent(st))
            return st;
        snprintf(r->fallback, sizeof r->fallback, "%s", runner_error(rn));
        runner_close(rn);
    }
    r->backend = o->backend == RUN_BACKEND_AUTO ? FA2_BACKEND_CPU_TILED
                                                : (fa2_backend)o->backend;
    return open_prepare_warm_up(o, pi, r->backend, p, rn, warmup_s);
}

static int run_problem(const run_opts *o, problem *p)
{
    const pass_info *pi = &passes[o->pass];
    run_result r;
    runner rn;
    double warmup_s = 0.0;
    memset(&r, 0, sizeof r);

    fa2_status st = open_and_warm_up(o, pi, p, &rn, &r, &warmup_s);
    if (st == FA2_OK && warmup_s * TIMING_MIN_RUNS > PROGRESS_S)
        fprintf(stderr, "fa2 run: one %s run took %.1f s; timing %d more ...\n",
                fa2_backend_name(r.backend), warmup_s, TIMING_MIN_RUNS);
    if (st == FA2_OK)
        st = timing_measure(pi->run, &rn, 0, &r.time);
    if (st == FA2_OK)
        st = runner_fetch(&rn);
    if (st != FA2_OK) {
        char why[sizeof rn.error];
        snprintf(why, sizeof why, "%s", runner_error(&rn));
        runner_close(&rn);
        return lib_error(fa2_backend_name(r.backend), st, why);
    }
    runner_close(&rn);

    r.flops = pi->flops(p);
    if (o->check) {
        /* the float64 oracle runs at well under a GFLOP/s a thread: say so
         * when the check will take a while */
        const double t0 = timing_now(), guess = r.flops / (0.5e9 * o->threads);
        if (guess > PROGRESS_S)
            fprintf(stderr, "fa2 run: checking against the float64 oracle and "
                    "standard attention (%.3g GFLOP) ...\n", r.flops * 1e-9);
        if ((st = pi->check(p, o->threads, &r.check)) != FA2_OK)
            return lib_error("check", st, fa2_last_error());
        if (guess > PROGRESS_S)
            fprintf(stderr, "fa2 run: checked in %.1f s\n", timing_now() - t0);
        r.checked = 1;
    }
    if (o->json)
        report_json(o, p, &r);
    else
        report_human(o, p, &r);
    return r.checked && !r.check.passed ? 1 : 0;
}

int fa2_cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = run_opts_parse(&o, argc, argv);
    if (rc != 0)
        return rc;
    if (o.help) {
        run_usage(stdout);
        return 0;
    }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    /* The library runs its own worker threads (--threads) and calls BLAS
     * from inside each of them; OpenBLAS's own thread pool on top would
     * oversubscribe the cores. The library never changes this global
     * setting behind its caller's back (doc/design.md); this program is the
     * application, so it does. */
    openblas_set_num_threads(1);
#endif
    problem p;
    if (problem_create(&p, &o.spec) != 0 ||
        (passes[o.pass].bwd && problem_alloc_grads(&p) != 0)) {
        problem_destroy(&p);
        fprintf(stderr, "fa2 run: out of memory allocating the problem's "
                "tensors\n");
        return 1;
    }
    rc = run_problem(&o, &p);
    problem_destroy(&p);
    return rc;
}
