/* cmd_bench.c — `fa2 bench`: CPU throughput over a grid of shapes.
 *
 * For each (backend, dtype, seqlen, causal, pass) it times the pass as
 * fa2 run does (tools/timing.h: a warm-up, then the median and spread of at
 * least --runs runs over at least half a second), reports GFLOP/s by the FA2
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
#include "fa2_writer.h"
#include "commands.h"
#include "fa2.h"
#include "problem.h"
#include "runner.h"
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

#define PROG "fa2 bench"
#define MAX_LIST OPT_LIST_MAX

typedef struct bench_opts {
    int backends[MAX_LIST], n_backends;
    int dtypes[MAX_LIST], n_dtypes;
    int64_t seqlens[MAX_LIST];
    int n_seqlens;
    int causals[2], n_causals;
    int passes[MAX_LIST], n_passes; /* 0 fwd, 1 bwd, 2 fwd+bwd */
    int64_t batch, heads, head_dim;
    int threads, runs, json;
    int64_t decode[MAX_LIST]; /* --decode: new tokens per sequence */
    int n_decode;
    int64_t heads_kv;
} bench_opts;

static const char *const pass_names[] = {"fwd", "bwd", "fwd+bwd", NULL};
static const char *const backend_names[] = {"oracle", "standard", "tiled", NULL};
static const char *const dtype_names[] = {"fp32", "fp16", "bf16", NULL};

typedef struct bench_result {
    double seconds, min, max; /* median and spread of the timed runs */
    double gflops, rss_bytes;
    int runs;
    int status; /* fa2_status of the run */
} bench_result;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: fa2 bench [--backend tiled,standard] [--dtype fp32,fp16,bf16]\n"
        "                 [--seqlen 1024,2048,4096] [--causal 0,1] [--pass fwd,bwd,fwd+bwd]\n"
        "                 [--batch 1] [--heads 16] [--head-dim 64] [--threads N]\n"
        "                 [--runs N] [--json]\n"
        "       fa2 bench --decode 1,8 [--seqlen 8192] [--heads 32 --heads-kv 8]\n"
        "                 [--head-dim 128] [--backend ...] [--dtype ...]\n"
        "Times CPU backends over a grid and compares with OpenBLAS sgemm 2048^3\n"
        "measured in the same run with the same threads, each the median of at\n"
        "least --runs runs (default 3) over at least 0.5 s after a warm-up;\n"
        "spread = (slowest - fastest) / median. Progress on stderr.\n"
        "--decode: the forward over a KV cache (fa2_fwd_kvcache), those new\n"
        "tokens per sequence against --seqlen cached keys, causal; K/V bytes\n"
        "read per second against the triad bandwidth of the same run.\n");
}

/* 0 ok, 1 help, 2 usage error. */
static int parse(int argc, char **argv, bench_opts *o)
{
    int64_t causals[OPT_LIST_MAX];
    int n_causals = 0;
    const opt opts[] = {
        OPT_CHOICES_("--backend", o->backends, backend_names, &o->n_backends),
        OPT_CHOICES_("--dtype", o->dtypes, dtype_names, &o->n_dtypes),
        OPT_CHOICES_("--pass", o->passes, pass_names, &o->n_passes),
        OPT_I64S_("--seqlen", o->seqlens, 1, 1 << 20, &o->n_seqlens),
        OPT_I64S_("--causal", causals, 0, 1, &n_causals),
        OPT_I64_("--batch", &o->batch, 1, 1 << 16),
        OPT_I64_("--heads", &o->heads, 1, 1 << 16),
        OPT_I64_("--head-dim", &o->head_dim, 8, 256),
        OPT_INT_("--threads", &o->threads, 1, 1024),
        OPT_INT_("--runs", &o->runs, 1, 100),
        OPT_FLAG_("--json", &o->json, 1),
        OPT_I64S_("--decode", o->decode, 1, 1 << 16, &o->n_decode),
        OPT_I64_("--heads-kv", &o->heads_kv, 1, 1 << 16),
    };
    const int rc = opt_parse(PROG, opts, OPT_COUNT(opts), argc, argv);
    if (rc)
        return rc;
    if (n_causals > 2) {
        fprintf(stderr, PROG ": --causal: at most two values (0,1)\n");
        return 2;
    }
    if (n_causals) {
        o->n_causals = n_causals;
        for (int i = 0; i < n_causals; i++)
            o->causals[i] = (int)causals[i];
    }
    if (o->head_dim % 8) {
        fprintf(stderr, PROG ": --head-dim must be a multiple of 8\n");
        return 2;
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

/* sgemm C = A B, n x n, as a timing_fn. */
typedef struct sgemm_job {
    int n;
    float *a, *b, *c;
} sgemm_job;

static fa2_status sgemm_run(void *ctx, double *seconds)
{
    const sgemm_job *j = ctx;
    const double t0 = timing_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->n, j->n, j->n, 1.0f,
                j->a, j->n, j->b, j->n, 0.0f, j->c, j->n);
    *seconds = timing_now() - t0;
    return FA2_OK;
}

/* OpenBLAS sgemm 2048^3 with `threads` BLAS threads, timed like the
 * attention passes (a warm-up, then the median of at least `runs`). */
static double sgemm_gflops(int threads, int runs)
{
    const size_t n = 2048;
    sgemm_job j = {(int)n, malloc(sizeof(float) * n * n), malloc(sizeof(float) * n * n),
                   malloc(sizeof(float) * n * n)};
    timing_result t = {0};
    double warm;
    if (j.a && j.b && j.c) {
        for (size_t i = 0; i < n * n; i++) {
            j.a[i] = (float)(i % 7) * 0.25f;
            j.b[i] = (float)(i % 5) * 0.5f;
        }
        blas_threads(threads);
        sgemm_run(&j, &warm);
        timing_measure(sgemm_run, &j, runs, &t);
        blas_threads(1); /* the library runs its own workers */
    }
    free(j.a), free(j.b), free(j.c);
    return t.seconds > 0 ? 2.0 * (double)n * (double)n * (double)n / t.seconds / 1e9 : 0.0;
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
 * arrays split over the threads (part 0 on the calling thread), timed like
 * the attention passes; bytes read and written (3 per element) per second. */
enum { TRIAD_MAX_THREADS = 64 };

typedef struct triad_part {
    float *a;
    const float *b, *c;
    size_t n;
} triad_part;

typedef struct triad_job {
    float *a, *b, *c;
    size_t n;
    int threads;
} triad_job;

static void *triad_part_run(void *p)
{
    triad_part *t = p;
    for (size_t i = 0; i < t->n; i++)
        t->a[i] = t->b[i] + 3.0f * t->c[i];
    return NULL;
}

static fa2_status triad_run(void *ctx, double *seconds)
{
    const triad_job *j = ctx;
    pthread_t th[TRIAD_MAX_THREADS];
    triad_part part[TRIAD_MAX_THREADS];
    int started[TRIAD_MAX_THREADS] = {0};
    const double t0 = timing_now();
    for (int k = j->threads - 1; k >= 0; k--) {
        const size_t lo = j->n * (size_t)k / (size_t)j->threads;
        const size_t hi = j->n * (size_t)(k + 1) / (size_t)j->threads;
        part[k] = (triad_part){j->a + lo, j->b + lo, j->c + lo, hi - lo};
        started[k] = k > 0 && pthread_create(&th[k], NULL, triad_part_run, &part[k]) == 0;
        if (!started[k])
            triad_part_run(&part[k]);
    }
    for (int k = 1; k < j->threads; k++)
        if (started[k])
            pthread_join(th[k], NULL);
    *seconds = timing_now() - t0;
    return FA2_OK;
}

static double triad_gbs(int threads, int runs)
{
    const size_t n = (size_t)16 << 20; /* floats per array */
    triad_job j = {malloc(sizeof(float) * n), malloc(sizeof(float) * n),
                   malloc(sizeof(float) * n), n,
                   threads < 1 ? 1 : (threads > TRIAD_MAX_THREADS ? TRIAD_MAX_THREADS
                                                                  : threads)};
    timing_result t = {0};
    double warm;
    if (j.a && j.b && j.c) {
        for (size_t i = 0; i < n; i++)
            j.a[i] = 0.0f, j.b[i] = 1.0f, j.c[i] = 2.0f;
        triad_run(&j, &warm);
        timing_measure(triad_run, &j, runs, &t);
    }
    free(j.a), free(j.b), free(j.c);
    return t.seconds > 0 ? 3.0 * sizeof(float) * (double)n / t.seconds / 1e9 : 0.0;
}

/* ---- --decode: the forward over a KV cache ---------------------------------- */

typedef struct decode_job {
    fa2_kvcache_args a;
    fa2_backend backend;
} decode_job;

static fa2_status decode_run(void *ctx, double *seconds)
{
    const decode_job *j = ctx;
    const double t0 = timing_now();
    const fa2_status st = fa2_fwd_kvcache(&j->a, j->backend);
    *seconds = timing_now() - t0;
    return st;
}

/* One decode shape: a contiguous cache of n keys, full, nq new queries. */
static int bench_decode_one(const bench_opts *o, int be, int dt, int64_t n, int64_t nq,
                            double triad)
{
    const size_t es = fa2_dtype_size((fa2_dtype)dt);
    const int64_t B = o->batch, hq = o->heads, hkv = o->heads_kv, d = o->head_dim;
    const size_t qn = (size_t)(B * nq * hq * d), kn = (size_t)(B * n * hkv * d);
    void *q = calloc(qn, es), *out = calloc(qn, es), *k = malloc(kn * es),
         *v = malloc(kn * es);
    int32_t *lens = malloc(sizeof(int32_t) * (size_t)B);
    int rc = 1;
    if (q && out && k && v && lens) {
        for (size_t i = 0; i < kn * es; i++) /* small finite values in any dtype */
            ((unsigned char *)k)[i] = ((unsigned char *)v)[i] = (unsigned char)(i % 61);
        for (int64_t b = 0; b < B; b++)
            lens[b] = (int32_t)n;
        decode_job j = {.backend = (fa2_backend)be};
        fa2_kvcache_args_init(&j.a);
        j.a.q = fa2_tensor_4d(q, (fa2_dtype)dt, B, nq, hq, d);
        j.a.o = fa2_tensor_4d(out, (fa2_dtype)dt, B, nq, hq, d);
        j.a.k_cache = fa2_tensor_4d(k, (fa2_dtype)dt, B, n, hkv, d);
        j.a.v_cache = fa2_tensor_4d(v, (fa2_dtype)dt, B, n, hkv, d);
        j.a.cache_seqlens = lens;
        j.a.causal = 1;
        j.a.num_threads = o->threads;
        timing_result t;
        double warm;
        fa2_status st = decode_run(&j, &warm);
        if (st == FA2_OK)
            st = timing_measure(decode_run, &j, o->runs, &t);
        if (st != FA2_OK) {
            fprintf(stderr, "\n" PROG ": decode %s %s: %s (%s)\n", backend_names[be],
                    dtype_names[dt], fa2_status_str(st), fa2_last_error());
        } else {
            const double gbs = 2.0 * (double)kn * (double)es / t.seconds / 1e9;
            int splits = 0;
            fa2_kvcache_num_splits(&j.a, j.backend, &splits);
            if (o->json) {
                fa2_writer w;
                fa2_writer_file(&w, stdout);
                fa2_json_begin(&w);
                fa2_json_string(&w, "pass", "decode");
                fa2_json_string(&w, "backend", backend_names[be]);
                fa2_json_string(&w, "dtype", dtype_names[dt]);
                fa2_json_int(&w, "batch", B);
                fa2_json_int(&w, "seqlen_q", nq);
                fa2_json_int(&w, "seqlen_k", n);
                fa2_json_int(&w, "heads", hq);
                fa2_json_int(&w, "heads_kv", hkv);
                fa2_json_int(&w, "head_dim", d);
                fa2_json_int(&w, "threads", o->threads);
                fa2_json_int(&w, "num_splits", splits);
                fa2_json_number(&w, "time_ms", t.seconds * 1e3);
                fa2_json_number(&w, "kv_gbs", gbs);
                fa2_json_number(&w, "triad_gbs", triad);
                fa2_json_number(&w, "of_triad", gbs / triad);
                fa2_json_end(&w);
            } else {
                printf("%-8s %-5s %6lld %6lld %6d %10.2f %7.1f%% %9.2f %7.2f\n",
                       backend_names[be], dtype_names[dt], (long long)nq, (long long)n,
                       splits, t.seconds * 1e3, 100.0 * (t.max - t.min) / t.seconds,
                       gbs, gbs / triad);
            }
            rc = 0;
        }
    }
    free(q), free(out), free(k), free(v), free(lens);
    return rc;
}

static int bench_decode(const bench_opts *o, double triad)
{
    if (!o->json)
        printf("decode: batch %lld, heads %lld/%lld, head dim %lld, causal, contiguous "
               "cache, %d threads\n%-8s %-5s %6s %6s %6s %10s %8s %9s %7s\n",
               (long long)o->batch, (long long)o->heads, (long long)o->heads_kv,
               (long long)o->head_dim, o->threads, "backend", "dtype", "nq", "cache",
               "splits", "time_ms", "spread", "K/V GB/s", "/triad");
    int failed = 0;
    for (int ib = 0; ib < o->n_backends; ib++)
        for (int id = 0; id < o->n_dtypes; id++)
            for (int is = 0; is < o->n_seqlens; is++)
                for (int iq = 0; iq < o->n_decode; iq++)
                    failed |= bench_decode_one(o, o->backends[ib], o->dtypes[id],
                                               o->seqlens[is], o->decode[iq], triad);
    fflush(stdout);
    return failed;
}

/* In a child: build the problem, open a runner, warm up, time, report. */
static void child_bench(const bench_opts *o, int backend, int dtype, int64_t n,
                        int causal, int pass, int fd)
{
    static const timing_fn runs[3] = {runner_fwd, runner_bwd, runner_fwd_bwd};
    static const double flops_x[3] = {1.0, 2.5, 3.5}; /* the FA2 paper's count */
    bench_result r = {0};
    problem pr;
    runner rn;
    timing_result t;
    double warm;
    problem_spec s = {(fa2_dtype)dtype, o->batch, n, n, o->heads, o->heads,
                      o->head_dim, causal, -1, -1, 0, 1, 0.0f, 0, 0, 0.0f};
    r.status = FA2_ERR_OUT_OF_MEMORY;
    /* gradient buffers only when a backward runs, so that a forward's peak
     * RSS is its own */
    if (problem_create(&pr, &s) == 0 && (pass == 0 || problem_alloc_grads(&pr) == 0)) {
        r.status = runner_open(&rn, (fa2_backend)backend, &pr, o->threads,
                               pass ? RUNNER_BWD : 0u);
        if (r.status == FA2_OK && pass == 1)
            r.status = runner_prepare_bwd(&rn);
        if (r.status == FA2_OK)
            r.status = runs[pass](&rn, &warm);
        if (r.status == FA2_OK)
            r.status = timing_measure(runs[pass], &rn, o->runs, &t);
        if (r.status == FA2_OK) {
            r.seconds = t.seconds;
            r.min = t.min;
            r.max = t.max;
            r.runs = t.runs;
            r.gflops = flops_x[pass] * problem_fwd_flops(&pr) / r.seconds / 1e9;
        }
        runner_close(&rn);
    }
    problem_destroy(&pr);
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

/* One row: a table line, or a JSON object (JSON Lines). */
static void report(const bench_opts *o, int be, int dt, int64_t n, int causal,
                   int pass, const bench_result *r, double sgemm)
{
    const double spread = 100.0 * (r->max - r->min) / r->seconds;
    if (!o->json) {
        printf("%-8s %-5s %6lld %6s %-7s %10.1f %7.1f%% %9.1f %6.2f %9.1f\n",
               backend_names[be], dtype_names[dt], (long long)n, causal ? "yes" : "no",
               pass_names[pass], r->seconds * 1e3, spread, r->gflops,
               r->gflops / sgemm, r->rss_bytes / 1048576.0);
        return;
    }
    fa2_writer w;
    fa2_writer_file(&w, stdout);
    fa2_json_begin(&w);
    fa2_json_string(&w, "backend", backend_names[be]);
    fa2_json_string(&w, "dtype", dtype_names[dt]);
    fa2_json_int(&w, "batch", o->batch);
    fa2_json_int(&w, "seqlen", n);
    fa2_json_int(&w, "heads", o->heads);
    fa2_json_int(&w, "head_dim", o->head_dim);
    fa2_json_bool(&w, "causal", causal);
    fa2_json_string(&w, "pass", pass_names[pass]);
    fa2_json_int(&w, "threads", o->threads);
    fa2_json_int(&w, "runs", r->runs);
    fa2_json_number(&w, "time_ms", r->seconds * 1e3);
    fa2_json_number(&w, "time_min_ms", r->min * 1e3);
    fa2_json_number(&w, "time_max_ms", r->max * 1e3);
    fa2_json_number(&w, "gflops", r->gflops);
    fa2_json_number(&w, "sgemm_gflops", sgemm);
    fa2_json_number(&w, "ratio", r->gflops / sgemm);
    fa2_json_number(&w, "peak_rss_bytes", r->rss_bytes);
    fa2_json_end(&w);
}

int fa2_cmd_bench(int argc, char **argv)
{
    bench_opts o = {.backends = {2}, .n_backends = 1, .dtypes = {0, 1},
                    .n_dtypes = 2, .causals = {0, 1}, .n_causals = 2,
                    .passes = {0, 1, 2}, .n_passes = 3, .batch = 1,
                    .threads = 0, .runs = 3};
    const int rc = parse(argc, argv, &o);
    if (rc == 1)
        usage(stdout);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (o.threads == 0)
        o.threads = fa2_default_num_threads();
    blas_threads(1);
    /* defaults of what was not given: the prefill grid, or with --decode
     * the decode shapes of issue 14 (8192 cached keys, 32/8 heads, d 128) */
    if (!o.n_seqlens) {
        const int64_t prefill[3] = {1024, 2048, 4096};
        o.n_seqlens = o.n_decode ? 1 : 3;
        memcpy(o.seqlens, prefill, sizeof prefill);
        if (o.n_decode)
            o.seqlens[0] = 8192;
    }
    if (!o.heads)
        o.heads = o.n_decode ? 32 : 16;
    if (!o.head_dim)
        o.head_dim = o.n_decode ? 128 : 64;
    if (o.n_decode) {
        if (!o.heads_kv)
            o.heads_kv = o.heads % 8 == 0 && o.heads >= 32 ? o.heads / 4 : o.heads;
        if (o.heads % o.heads_kv) {
            fprintf(stderr, PROG ": --heads must be a multiple of --heads-kv\n");
            return 2;
        }
    }

    const double sgemm = sgemm_gflops(o.threads, o.runs);
    const double triad = triad_gbs(o.threads, o.runs);
    const char *core = blas_core_name(), *kernel = fa2_cpu_tile_kernel_name();
    if (o.json) {
        fa2_writer w;
        fa2_writer_file(&w, stdout);
        fa2_json_begin(&w);
        fa2_json_bool(&w, "ceilings", 1);
        fa2_json_int(&w, "threads", o.threads);
        fa2_json_number(&w, "sgemm_gflops", sgemm);
        fa2_json_string(&w, "blas_core", core);
        fa2_json_number(&w, "triad_gbs", triad);
        fa2_json_string(&w, "tile_kernel", kernel);
        fa2_json_end(&w);
    } else {
        printf("OpenBLAS sgemm 2048^3, %d threads: %.1f GFLOP/s (median of >= %d "
               "runs; OpenBLAS kernel: %s)\n"
               "triad memory bandwidth, %d threads: %.1f GB/s\n"
               "tiled backend's tile-product micro-kernel: %s\n\n", o.threads,
               sgemm, o.runs, core, o.threads, triad, kernel);
        if (!o.n_decode)
            printf("%-8s %-5s %6s %6s %-7s %10s %8s %9s %6s %9s\n", "backend",
                   "dtype", "seqlen", "causal", "pass", "time_ms", "spread",
                   "GFLOP/s", "ratio", "peak_MiB");
    }
    if (o.n_decode)
        return bench_decode(&o, triad);
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
                        report(&o, be, dt, n, causal, pass, &r, sgemm);
                        fflush(stdout);
                    }
    fprintf(stderr, "\r%60s\r", "");
    return failed;
}
