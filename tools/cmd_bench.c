/* cmd_bench.c — `fa2 bench`: CPU throughput over a grid of shapes.
 *
 * For each (backend, dtype, seqlen, causal, pass) it times the pass with a
 * warm-up and the median of several runs, reports GFLOP/s by the FA2
 * paper's FLOP count (forward 4 N^2 d h, halved when causal; backward 2.5x
 * that), and the ratio to OpenBLAS sgemm 2048^3 measured in the same run
 * with the same thread count. The machine's ceilings measured in the same
 * run are printed first: sgemm with the BLAS's own name for the kernel it
 * chose (OpenBLAS picks by CPU model and may fall back to old kernels on a
 * CPU it does not know), a triad's memory bandwidth, and the tile-product
 * micro-kernel the tiled backend runs. Each configuration runs in a child process,
 * so its peak resident memory (wait4's ru_maxrss) is its own: inputs,
 * outputs and whatever the backend allocated. */
#define _DEFAULT_SOURCE /* wait4 */
#include "config.h"
#include "args.h"
#include "commands.h"
#include "fa2.h"
#include "problem.h"
#include "timing.h"
#include "tile_product.h" /* fa2_cpu_tile_kernel_name */

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 16

typedef struct bench_opts {
    int backends[MAX_LIST], n_backends;
    int dtypes[MAX_LIST], n_dtypes;
    int64_t seqlens[MAX_LIST];
    int n_seqlens;
    int causals[2], n_causals;
    int passes[3], n_passes; /* 0 fwd, 1 bwd, 2 fwd+bwd */
    int64_t batch, heads, head_dim;
    int threads, runs, json;
} bench_opts;

static const char *const pass_names[3] = {"fwd", "bwd", "fwd+bwd"};
static const char *const backend_names[3] = {"oracle", "standard", "tiled"};
static const char *const dtype_names[3] = {"fp32", "fp16", "bf16"};

typedef struct bench_result {
    double seconds, gflops, rss_bytes;
    int status; /* fa2_status of the run */
} bench_result;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: fa2 bench [--backend tiled,standard] [--dtype fp32,fp16,bf16]\n"
        "                 [--seqlen 1024,2048,4096] [--causal 0,1] [--pass fwd,bwd,fwd+bwd]\n"
        "                 [--batch 1] [--heads 16] [--head-dim 64] [--threads N]\n"
        "                 [--runs N] [--json]\n"
        "Times CPU backends over a grid and compares with OpenBLAS sgemm 2048^3\n"
        "measured in the same run with the same threads. Progress on stderr.\n");
}

/* "a,b,c" -> indices into names, or integers */
static int parse_choices(const arg_cursor *c, const char *text,
                         const char *const *names, int n_names, int *out, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        const int k = arg_parse_choice(c, tok, names, n_names);
        if (k < 0 || *n >= MAX_LIST)
            return -1;
        out[(*n)++] = k;
    }
    return *n ? 0 : -1;
}

static int parse_ints(const arg_cursor *c, const char *text, int64_t min,
                      int64_t max, int64_t *out, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n >= MAX_LIST || arg_parse_i64(c, tok, min, max, &out[*n]))
            return -1;
        (*n)++;
    }
    return *n ? 0 : -1;
}

static int parse(int argc, char **argv, bench_opts *o)
{
    arg_cursor c;
    arg_cursor_init(&c, "fa2 bench", argc, argv);
    while (arg_next(&c)) {
        const char *v = NULL;
        int64_t x, tmp[MAX_LIST];
        int n;
        if (!strcmp(c.name, "--help") || !strcmp(c.name, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(c.name, "--json")) {
            o->json = 1;
            continue;
        }
        if (!(v = arg_value(&c)))
            return -1;
        if (!strcmp(c.name, "--backend")) {
            if (parse_choices(&c, v, backend_names, 3, o->backends, &o->n_backends))
                return -1;
        } else if (!strcmp(c.name, "--dtype")) {
            if (parse_choices(&c, v, dtype_names, 3, o->dtypes, &o->n_dtypes))
                return -1;
        } else if (!strcmp(c.name, "--pass")) {
            if (parse_choices(&c, v, pass_names, 3, o->passes, &o->n_passes))
                return -1;
        } else if (!strcmp(c.name, "--seqlen")) {
            if (parse_ints(&c, v, 1, 1 << 20, o->seqlens, &o->n_seqlens))
                return -1;
        } else if (!strcmp(c.name, "--causal")) {
            if (parse_ints(&c, v, 0, 1, tmp, &n) || n > 2)
                return -1;
            o->n_causals = n;
            for (int i = 0; i < n; i++)
                o->causals[i] = (int)tmp[i];
        } else if (!strcmp(c.name, "--batch")) {
            if (arg_parse_i64(&c, v, 1, 1 << 16, &o->batch))
                return -1;
        } else if (!strcmp(c.name, "--heads")) {
            if (arg_parse_i64(&c, v, 1, 1 << 16, &o->heads))
                return -1;
        } else if (!strcmp(c.name, "--head-dim")) {
            if (arg_parse_i64(&c, v, 8, 256, &o->head_dim))
                return -1;
        } else if (!strcmp(c.name, "--threads")) {
            if (arg_parse_i64(&c, v, 1, 1024, &x))
                return -1;
            o->threads = (int)x;
        } else if (!strcmp(c.name, "--runs")) {
            if (arg_parse_i64(&c, v, 1, 100, &x))
                return -1;
            o->runs = (int)x;
        } else {
            fprintf(stderr, "fa2 bench: unknown option '%s'\n", c.name);
            usage(stderr);
            return -1;
        }
    }
    if (o->head_dim % 8) {
        fprintf(stderr, "fa2 bench: --head-dim must be a multiple of 8\n");
        return -1;
    }
    return 0;
}

static void blas_threads(int n)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(n);
#else
    (void)n;
#endif
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* OpenBLAS sgemm 2048^3 with `threads` BLAS threads: median of 5. */
static double sgemm_gflops(int threads)
{
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
    float *c = malloc(sizeof(float) * n * n);
    double t[5] = {0};
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0.0;
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)(i % 7) * 0.25f;
        b[i] = (float)(i % 5) * 0.5f;
    }
    blas_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b,
                n, 0.0f, c, n);
    for (int r = 0; r < 5; r++) {
        const double t0 = timing_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n,
                    b, n, 0.0f, c, n);
        t[r] = timing_now() - t0;
    }
    blas_threads(1); /* the library runs its own workers */
    qsort(t, 5, sizeof t[0], cmp_double);
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / t[2] / 1e9;
}

/* OpenBLAS's name for the kernels it picked on this CPU ("SkylakeX",
 * "Zen", "Prescott" = its SSE3 fallback). */
static const char *blas_core_name(void)
{
#ifdef HAVE_OPENBLAS_GET_CORENAME
    return openblas_get_corename();
#else
    return "unknown";
#endif
}

/* Memory bandwidth, STREAM-style triad a = b + s c over three 64 MiB
 * arrays, split over `threads` threads: bytes read and written (3 per
 * element) per second, the median of 5, in GB/s. */
typedef struct triad_part {
    float *a;
    const float *b, *c;
    size_t n;
} triad_part;

static void *triad_run(void *p)
{
    triad_part *t = p;
    for (size_t i = 0; i < t->n; i++)
        t->a[i] = t->b[i] + 3.0f * t->c[i];
    return NULL;
}

static double triad_gbs(int threads)
{
    enum { MAX_T = 64 };
    const size_t n = (size_t)16 << 20; /* floats per array */
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    float *c = malloc(sizeof(float) * n);
    double t[5] = {0};
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0.0;
    }
    threads = threads < 1 ? 1 : (threads > MAX_T ? MAX_T : threads);
    for (size_t i = 0; i < n; i++)
        a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
    for (int r = 0; r < 6; r++) { /* the first is a warm-up */
        pthread_t th[MAX_T];
        triad_part part[MAX_T];
        int started[MAX_T] = {0};
        const double t0 = timing_now();
        for (int k = threads - 1; k >= 0; k--) { /* part 0 on this thread */
            const size_t lo = n * (size_t)k / (size_t)threads;
            const size_t hi = n * (size_t)(k + 1) / (size_t)threads;
            part[k] = (triad_part){a + lo, b + lo, c + lo, hi - lo};
            started[k] = k > 0 && pthread_create(&th[k], NULL, triad_run, &part[k]) == 0;
            if (!started[k])
                triad_run(&part[k]);
        }
        for (int k = 1; k < threads; k++)
            if (started[k])
                pthread_join(th[k], NULL);
        if (r > 0)
            t[r - 1] = timing_now() - t0;
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    free(a), free(b), free(c);
    return 3.0 * sizeof(float) * (double)n / t[2] / 1e9;
}

typedef struct bwd_bufs {
    void *dout, *dq, *dk, *dv;
} bwd_bufs;

/* One timed pass on a built problem. */
static fa2_status run_pass(const problem *pr, int backend, int pass, int threads,
                           const bwd_bufs *g, double *seconds)
{
    fa2_fwd_args f = problem_fwd_args(pr, threads);
    const double t0 = timing_now();
    fa2_status st = FA2_OK;
    if (pass != 1)
        st = fa2_fwd(&f, (fa2_backend)backend);
    if (st == FA2_OK && pass != 0) {
        fa2_bwd_args b;
        fa2_bwd_args_init(&b);
        b.q = f.q, b.k = f.k, b.v = f.v, b.o = f.o, b.lse = f.lse;
        b.dout = f.o, b.dout.data = g->dout;
        b.dq = f.q, b.dq.data = g->dq;
        b.dk = f.k, b.dk.data = g->dk;
        b.dv = f.v, b.dv.data = g->dv;
        b.causal = f.causal;
        b.num_threads = threads;
        st = fa2_bwd(&b, (fa2_backend)backend);
    }
    *seconds = timing_now() - t0;
    return st;
}

/* In a child: build the problem, warm up, time `runs` runs, report. */
static void child_bench(const bench_opts *o, int backend, int dtype, int64_t n,
                        int causal, int pass, int fd)
{
    bench_result r = {0};
    problem pr;
    problem_spec s = {(fa2_dtype)dtype, o->batch, n, n, o->heads, o->heads,
                      o->head_dim, causal, -1, -1, 0, 1};
    bwd_bufs g = {0};
    r.status = FA2_ERR_OUT_OF_MEMORY;
    if (problem_create(&pr, &s) == 0) {
        if (pass != 0) { /* gradient buffers only when a backward runs,
                              * so a forward's peak RSS is its own */
            g.dout = malloc(pr.q_bytes), g.dq = malloc(pr.q_bytes);
            g.dk = malloc(pr.kv_bytes), g.dv = malloc(pr.kv_bytes);
            if (g.dout)
                memcpy(g.dout, pr.q, pr.q_bytes); /* any non-zero gradient */
        }
        if (pass == 0 || (g.dout && g.dq && g.dk && g.dv)) {
            double sec[100];
            fa2_fwd_args f = problem_fwd_args(&pr, o->threads);
            r.status = pass == 1 ? fa2_fwd(&f, (fa2_backend)backend) : FA2_OK;
            if (r.status == FA2_OK)
                r.status = run_pass(&pr, backend, pass, o->threads, &g, &sec[0]);
            for (int i = 0; i < o->runs && r.status == FA2_OK; i++)
                r.status = run_pass(&pr, backend, pass, o->threads, &g, &sec[i]);
            if (r.status == FA2_OK) {
                qsort(sec, (size_t)o->runs, sizeof sec[0], cmp_double);
                r.seconds = sec[o->runs / 2];
                const double ff = problem_fwd_flops(&pr);
                const double flops = pass == 0 ? ff : pass == 1 ? 2.5 * ff : 3.5 * ff;
                r.gflops = flops / r.seconds / 1e9;
            }
        }
        free(g.dout), free(g.dq), free(g.dk), free(g.dv);
        problem_destroy(&pr);
    }
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(1);
    _exit(0);
}

static int bench_one(const bench_opts *o, int backend, int dtype, int64_t n,
                     int causal, int pass, bench_result *r)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        child_bench(o, backend, dtype, n, causal, pass, fds[1]);
    }
    close(fds[1]);
    const ssize_t got = read(fds[0], r, sizeof *r);
    close(fds[0]);
    int wst = 0;
    struct rusage ru;
    if (wait4(pid, &wst, 0, &ru) < 0 || got != (ssize_t)sizeof *r)
        return -1;
    r->rss_bytes = (double)ru.ru_maxrss * 1024.0;
    return 0;
}

int fa2_cmd_bench(int argc, char **argv)
{
    bench_opts o = {.backends = {2}, .n_backends = 1, .dtypes = {0, 1},
                    .n_dtypes = 2, .seqlens = {1024, 2048, 4096}, .n_seqlens = 3,
                    .causals = {0, 1}, .n_causals = 2, .passes = {0, 1, 2},
                    .n_passes = 3, .batch = 1, .heads = 16, .head_dim = 64,
                    .threads = 0, .runs = 3};
    if (parse(argc, argv, &o))
        return 2;
    if (o.threads == 0)
        o.threads = fa2_default_num_threads();
    blas_threads(1);

    const double sgemm = sgemm_gflops(o.threads);
    const double triad = triad_gbs(o.threads);
    const char *core = blas_core_name(), *kernel = fa2_cpu_tile_kernel_name();
    if (o.json)
        printf("{\"ceilings\": true, \"threads\": %d, \"sgemm_gflops\": %.2f, "
               "\"blas_core\": \"%s\", \"triad_gbs\": %.2f, \"tile_kernel\": "
               "\"%s\"}\n", o.threads, sgemm, core, triad, kernel);
    else
        printf("OpenBLAS sgemm 2048^3, %d threads: %.1f GFLOP/s (OpenBLAS kernel: %s)\n"
               "triad memory bandwidth, %d threads: %.1f GB/s\n"
               "tiled backend's tile-product micro-kernel: %s\n\n"
               "%-8s %-5s %6s %6s %-7s %10s %9s %6s %9s\n", o.threads, sgemm, core,
               o.threads, triad, kernel,
               "backend", "dtype", "seqlen", "causal", "pass", "time_ms", "GFLOP/s",
               "ratio", "peak_MiB");
    int total = o.n_backends * o.n_dtypes * o.n_seqlens * o.n_causals * o.n_passes;
    int done = 0, failed = 0;
    for (int ib = 0; ib < o.n_backends; ib++)
        for (int id = 0; id < o.n_dtypes; id++)
            for (int is = 0; is < o.n_seqlens; is++)
                for (int ic = 0; ic < o.n_causals; ic++)
                    for (int ip = 0; ip < o.n_passes; ip++) {
                        const int be = o.backends[ib], dt = o.dtypes[id];
                        const int64_t n = o.seqlens[is];
                        const int causal = o.causals[ic], pass = o.passes[ip];
                        bench_result r;
                        fprintf(stderr, "\r[%d/%d] %s %s seqlen %lld causal %d %s ...   ",
                                ++done, total, backend_names[be], dtype_names[dt],
                                (long long)n, causal, pass_names[pass]);
                        if (bench_one(&o, be, dt, n, causal, pass, &r) ||
                            r.status != FA2_OK) {
                            fprintf(stderr, "\nfa2 bench: %s %s seqlen %lld %s failed "
                                    "(%s)\n", backend_names[be], dtype_names[dt],
                                    (long long)n, pass_names[pass],
                                    fa2_status_str((fa2_status)r.status));
                            failed = 1;
                            continue;
                        }
                        if (o.json)
                            printf("{\"backend\": \"%s\", \"dtype\": \"%s\", \"batch\": "
                                   "%lld, \"seqlen\": %lld, \"heads\": %lld, "
                                   "\"head_dim\": %lld, \"causal\": %s, \"pass\": "
                                   "\"%s\", \"threads\": %d, \"time_ms\": %.3f, "
                                   "\"gflops\": %.2f, \"sgemm_gflops\": %.2f, "
                                   "\"ratio\": %.3f, \"peak_rss_bytes\": %.0f}\n",
                                   backend_names[be], dtype_names[dt],
                                   (long long)o.batch, (long long)n,
                                   (long long)o.heads, (long long)o.head_dim,
                                   causal ? "true" : "false", pass_names[pass],
                                   o.threads, r.seconds * 1e3, r.gflops, sgemm,
                                   r.gflops / sgemm, r.rss_bytes);
                        else
                            printf("%-8s %-5s %6lld %6s %-7s %10.1f %9.1f %6.2f %9.1f\n",
                                   backend_names[be], dtype_names[dt], (long long)n,
                                   causal ? "yes" : "no", pass_names[pass],
                                   r.seconds * 1e3, r.gflops, r.gflops / sgemm,
                                   r.rss_bytes / 1048576.0);
                        fflush(stdout);
                    }
    fprintf(stderr, "\r%60s\r", "");
    return failed;
}
