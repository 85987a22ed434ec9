/* cmd_sim.c — `fa2 sim`: the memory-hierarchy simulator on the command line
 * (one problem, or a sweep, as a table, JSON or CSV, and figures through
 * gnuplot). See doc/io-complexity.md. */
#include "config.h"
#include "commands.h"
#include "fa2.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "fa2 sim"
#define MAX_SEQS 4096

typedef enum { OUT_TEXT, OUT_JSON, OUT_CSV } out_kind;

typedef struct sim_opts {
    fa2_sim_args a;
    fa2_sim_device dev;
    int pass_given, kernel_tiles;
    out_kind out;
    const char *sweep; /* NULL, "paper", "seqlen", "sram" */
    const char *plot;  /* FILE.svg */
    int32_t cu_q[MAX_SEQS + 1], cu_k[MAX_SEQS + 1];
} sim_opts;

static void usage(FILE *f)
{
    fprintf(f,
"usage: fa2 sim [OPTIONS]\n"
"Simulate the memory traffic of one attention launch sequence on a GPU model.\n\n"
"  --algo standard|fa1|fa2      schedule (default fa2)\n"
"  --pass fwd|bwd|fwd+bwd       (default fwd; sweeps: fwd+bwd, sram: fwd)\n"
"  --batch N --heads N --heads-kv N --seqlen N --seqlen-k N --head-dim N\n"
"                               sizes (k suffix = x1024); seqlen-k defaults to\n"
"                               seqlen, heads-kv to heads\n"
"  --seqlens L1,L2,.. [--seqlens-k K1,K2,..]   variable lengths (packed)\n"
"  --dtype fp16|bf16|fp32       operand type (default fp16)\n"
"  --causal  --window LEFT,RIGHT   masks (-1: unbounded side)\n"
"  --device a100|h100|h200|FILE    profile (default h100); FILE holds\n"
"                               'key = value' lines (see --device-set)\n"
"  --device-set KEY=VALUE       override one profile field, e.g. l2_bytes=40M\n"
"  --sram BYTES                 SRAM size M (default: the device's smem per block)\n"
"  --block-m N --block-n N --warps N   tiles (FA2: forward; FA1, standard: all)\n"
"  --bwd-block-m N --bwd-block-n N --bwd-warps N   FA2 backward tiles\n"
"  --kernel-tiles               FA2 tiles from the CUDA backend (needs CUDA)\n"
"  --partition split-q|split-k  forward warp partitioning\n"
"  --order head-major|block-major   launch order of the blocks\n"
"  --regs N                     registers per thread (occupancy)\n"
"  --l2 | --no-l2               L2 model (default on)\n"
"  --json | --csv               machine-readable output\n"
"  --sweep paper|seqlen|sram    the FA2 paper's grid (batch x seqlen = 16k,\n"
"                               hidden 2048, d 64/128, seqlen 512..16k, causal\n"
"                               and not) for all three algorithms; seqlen\n"
"                               256..64k at fixed batch and heads; SRAM size\n"
"                               M = 16K..1M bytes for FA1 and FA2\n"
"  --plot FILE.svg              with --sweep: draw it (gnuplot, when installed;\n"
"                               FILE.dat and FILE.gp are written either way)\n");
}

/* ---- value parsing ---------------------------------------------------------- */

static int parse_i64(const char *opt, const char *v, int64_t min, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end != v && (*end == 'k' || *end == 'K') && end[1] == '\0') {
        if (x > INT64_MAX / 1024 || x < INT64_MIN / 1024)
            errno = ERANGE;
        x *= 1024;
        end++;
    }
    if (end == v || *end || errno || x < min) {
        fprintf(stderr, PROG ": %s '%s' is not an integer >= %lld\n", opt, v,
                (long long)min);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_int(const char *opt, const char *v, int min, int max, int *out)
{
    int64_t x;
    if (!parse_i64(opt, v, min, &x))
        return 0;
    if (x > max) {
        fprintf(stderr, PROG ": %s '%s' is above %d\n", opt, v, max);
        return 0;
    }
    *out = (int)x;
    return 1;
}

/* Bytes with an optional K/M/G suffix (1024-based). */
static int parse_bytes(const char *opt, const char *v, int64_t *out)
{
    fa2_sim_device scratch;
    memset(&scratch, 0, sizeof scratch);
    if (fa2_sim_device_set(&scratch, "l2_bytes", v) != FA2_OK || scratch.l2_bytes < 1) {
        fprintf(stderr, PROG ": %s '%s' is not a positive byte count (K/M/G "
                        "suffixes allowed)\n", opt, v);
        return 0;
    }
    *out = scratch.l2_bytes;
    return 1;
}

/* "a,b,c" lengths into offsets cu[0..n]. */
static int parse_lengths(const char *opt, const char *v, int32_t *cu, int64_t *n)
{
    int64_t count = 0, total = 0;
    cu[0] = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        const long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < 0 || count == MAX_SEQS ||
            total + x > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, PROG ": %s '%s' is not a list of at most %d lengths "
                            ">= 0 (sum below 2^31)\n", opt, v, MAX_SEQS);
            return 0;
        }
        total += x;
        cu[++count] = (int32_t)total;
        if (!*end)
            break;
        p = end + 1;
    }
    *n = count;
    return 1;
}

static int lookup(const char *opt, const char *v, const char *const *names, int n,
                  int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 1;
        }
    fprintf(stderr, PROG ": %s '%s' is not one of", opt, v);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        const size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (len + 1 == cap) {
            char *nb = cap < (1u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int set_device(sim_opts *o, const char *v)
{
    if (fa2_sim_device_builtin(v, &o->dev) == FA2_OK)
        return 1;
    char *text = read_file(v);
    if (!text) {
        fprintf(stderr, PROG ": --device '%s' is neither a100, h100, h200 nor a "
                        "readable profile file\n", v);
        return 0;
    }
    fa2_sim_device_builtin("h100", &o->dev); /* fields the file leaves out */
    const fa2_status st = fa2_sim_device_parse(&o->dev, text);
    /* named after the file unless it names itself */
    int named = 0;
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!strncmp(line, "name", 4) && strchr(" \t=", line[4]))
            named = 1;
    }
    if (!named)
        snprintf(o->dev.name, sizeof o->dev.name, "%s", base_name(v));
    free(text);
    if (st != FA2_OK) {
        fprintf(stderr, PROG ": %s: %s\n", v, fa2_last_error());
        return 0;
    }
    return 1;
}

/* ---- options ------------------------------------------------------------------ */

/* 1 ok, 0 usage error, -1 help printed. */
static int parse_options(sim_opts *o, int argc, char **argv)
{
    static const char *const algos[] = {"standard", "fa1", "fa2"};
    static const char *const passes[] = {"fwd", "bwd", "fwd+bwd"};
    static const char *const dtypes[] = {"fp32", "fp16", "bf16"};
    static const char *const parts[] = {"default", "split-q", "split-k"};
    static const char *const orders[] = {"head-major", "block-major"};
    static const char *const sweeps[] = {"paper", "seqlen", "sram"};
    fa2_sim_args *a = &o->a;
    int64_t heads_kv = 0, seqlen_k = 0, nq = -1, nk = -1;
    int bm = 0, bn = 0, w = 0;
    for (int i = 0; i < argc; i++) {
        char name[64];
        const char *arg = argv[i], *val = NULL;
        const char *eq = strchr(arg, '=');
        if (strncmp(arg, "--", 2) || (eq && (size_t)(eq - arg) >= sizeof name)) {
            fprintf(stderr, PROG ": unexpected argument '%s'\n", arg);
            return 0;
        }
        if (eq) {
            memcpy(name, arg, (size_t)(eq - arg));
            name[eq - arg] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        static const char *const flags[] = {"--help", "--causal", "--l2", "--no-l2",
                                            "--json", "--csv", "--kernel-tiles"};
        static const char *const valued[] = {
            "--algo", "--pass", "--dtype", "--partition", "--order", "--sweep",
            "--plot", "--batch", "--heads", "--heads-kv", "--seqlen", "--seqlen-k",
            "--head-dim", "--seqlens", "--seqlens-k", "--window", "--device",
            "--device-set", "--sram", "--block-m", "--block-n", "--warps",
            "--bwd-block-m", "--bwd-block-n", "--bwd-warps", "--regs"};
        int is_flag = 0, known = 0;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
            is_flag |= !strcmp(name, flags[f]);
        for (size_t f = 0; f < sizeof valued / sizeof valued[0]; f++)
            known |= !strcmp(name, valued[f]);
        if (!is_flag && !known) {
            fprintf(stderr, PROG ": unknown option '%s' (fa2 sim --help)\n", name);
            return 0;
        }
        if (is_flag && val) {
            fprintf(stderr, PROG ": %s takes no value\n", name);
            return 0;
        }
        if (!is_flag && !val) {
            if (i + 1 >= argc) {
                fprintf(stderr, PROG ": %s needs a value\n", name);
                return 0;
            }
            val = argv[++i];
        }
        int x, ok = 1;
        int64_t n;
        if (!strcmp(name, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(name, "--causal")) {
            a->causal = 1;
        } else if (!strcmp(name, "--l2")) {
            a->l2 = 1;
        } else if (!strcmp(name, "--no-l2")) {
            a->l2 = 0;
        } else if (!strcmp(name, "--json")) {
            o->out = OUT_JSON;
        } else if (!strcmp(name, "--csv")) {
            o->out = OUT_CSV;
        } else if (!strcmp(name, "--kernel-tiles")) {
            o->kernel_tiles = 1;
        } else if (!strcmp(name, "--algo")) {
            ok = lookup(name, val, algos, 3, &x) && ((a->algo = (fa2_sim_algo)x), 1);
        } else if (!strcmp(name, "--pass")) {
            ok = lookup(name, val, passes, 3, &x) &&
                 ((a->pass = (fa2_sim_pass)(x + 1)), (o->pass_given = 1));
        } else if (!strcmp(name, "--dtype")) {
            ok = lookup(name, val, dtypes, 3, &x) && ((a->dtype = (fa2_dtype)x), 1);
        } else if (!strcmp(name, "--partition")) {
            ok = lookup(name, val, parts, 3, &x) &&
                 ((a->partition = (fa2_sim_partition)x), 1);
        } else if (!strcmp(name, "--order")) {
            ok = lookup(name, val, orders, 2, &x) && ((a->order = (fa2_sim_order)x), 1);
        } else if (!strcmp(name, "--sweep")) {
            ok = lookup(name, val, sweeps, 3, &x) && ((o->sweep = sweeps[x]), 1);
        } else if (!strcmp(name, "--plot")) {
            o->plot = val;
        } else if (!strcmp(name, "--batch")) {
            ok = parse_i64(name, val, 1, &a->batch);
        } else if (!strcmp(name, "--heads")) {
            ok = parse_i64(name, val, 1, &a->heads_q);
        } else if (!strcmp(name, "--heads-kv")) {
            ok = parse_i64(name, val, 1, &heads_kv);
        } else if (!strcmp(name, "--seqlen")) {
            ok = parse_i64(name, val, 1, &a->seqlen_q);
        } else if (!strcmp(name, "--seqlen-k")) {
            ok = parse_i64(name, val, 1, &seqlen_k);
        } else if (!strcmp(name, "--head-dim")) {
            ok = parse_i64(name, val, 1, &a->head_dim);
        } else if (!strcmp(name, "--seqlens")) {
            ok = parse_lengths(name, val, o->cu_q, &nq);
        } else if (!strcmp(name, "--seqlens-k")) {
            ok = parse_lengths(name, val, o->cu_k, &nk);
        } else if (!strcmp(name, "--window")) {
            long long l, r;
            char tail;
            ok = sscanf(val, "%lld,%lld%c", &l, &r, &tail) == 2 && l >= -1 && r >= -1;
            if (!ok)
                fprintf(stderr, PROG ": --window '%s' is not LEFT,RIGHT (each >= -1)\n", val);
            a->window_left = l;
            a->window_right = r;
        } else if (!strcmp(name, "--device")) {
            ok = set_device(o, val);
        } else if (!strcmp(name, "--device-set")) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s", val);
            char *e = strchr(kv, '=');
            ok = e != NULL;
            if (ok) {
                *e = '\0';
                ok = fa2_sim_device_set(&o->dev, kv, e + 1) == FA2_OK;
                if (!ok)
                    fprintf(stderr, PROG ": --device-set: %s\n", fa2_last_error());
            } else {
                fprintf(stderr, PROG ": --device-set '%s' is not KEY=VALUE\n", val);
            }
        } else if (!strcmp(name, "--sram")) {
            ok = parse_bytes(name, val, &a->sram_bytes);
        } else if (!strcmp(name, "--block-m")) {
            ok = parse_int(name, val, 1, 65536, &bm);
        } else if (!strcmp(name, "--block-n")) {
            ok = parse_int(name, val, 1, 65536, &bn);
        } else if (!strcmp(name, "--warps")) {
            ok = parse_int(name, val, 1, 32, &w);
        } else if (!strcmp(name, "--bwd-block-m")) {
            ok = parse_int(name, val, 1, 65536, &a->bwd_block_m);
        } else if (!strcmp(name, "--bwd-block-n")) {
            ok = parse_int(name, val, 1, 65536, &a->bwd_block_n);
        } else if (!strcmp(name, "--bwd-warps")) {
            ok = parse_int(name, val, 1, 32, &a->bwd_warps);
        } else if (!strcmp(name, "--regs")) {
            ok = parse_int(name, val, 1, 255, &a->regs_per_thread);
        } else {
            fprintf(stderr, PROG ": unknown option '%s' (fa2 sim --help)\n", name);
            return 0;
        }
        if (!ok)
            return 0;
        (void)n;
    }
    a->heads_kv = heads_kv ? heads_kv : a->heads_q;
    a->seqlen_k = seqlen_k ? seqlen_k : a->seqlen_q;
    a->block_m = bm;
    a->block_n = bn;
    a->warps = w;
    if (nq >= 0 || nk >= 0) {
        if (nq < 0) {
            fprintf(stderr, PROG ": --seqlens-k needs --seqlens\n");
            return 0;
        }
        if (nk < 0) {
            memcpy(o->cu_k, o->cu_q, sizeof(int32_t) * (size_t)(nq + 1));
            nk = nq;
        }
        if (nk != nq) {
            fprintf(stderr, PROG ": --seqlens has %lld lengths but --seqlens-k %lld\n",
                    (long long)nq, (long long)nk);
            return 0;
        }
        a->cu_seqlens_q = o->cu_q;
        a->cu_seqlens_k = o->cu_k;
        a->num_seqs = nq;
        a->batch = 1;
    }
    if (o->plot && !o->sweep) {
        fprintf(stderr, PROG ": --plot needs --sweep\n");
        return 0;
    }
    return 1;
}

/* --kernel-tiles: ask the CUDA backend for its tiling. */
static int apply_kernel_tiles(fa2_sim_args *a)
{
    fa2_tile_config t;
    if (fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_FWD, a->dtype,
                            (int)a->head_dim, &t) != FA2_OK) {
        fprintf(stderr, PROG ": --kernel-tiles: %s\n", fa2_last_error());
        return 0;
    }
    a->block_m = t.block_m;
    a->block_n = t.block_n;
    a->warps = t.warps;
    if (fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_BWD, a->dtype,
                            (int)a->head_dim, &t) == FA2_OK) {
        a->bwd_block_m = t.block_m;
        a->bwd_block_n = t.block_n;
        a->bwd_warps = t.warps;
    }
    return 1;
}

/* ---- one run -------------------------------------------------------------------- */

static int print_result(const sim_opts *o, const fa2_sim_result *r,
                        fa2_sim_format_kind kind)
{
    size_t need = 0;
    fa2_sim_format(&o->a, &o->dev, r, kind, NULL, 0, &need);
    char *buf = malloc(need + 1);
    if (!buf) {
        fprintf(stderr, PROG ": out of memory\n");
        return 0;
    }
    fa2_sim_format(&o->a, &o->dev, r, kind, buf, need + 1, NULL);
    fputs(buf, stdout);
    free(buf);
    return 1;
}

static int run_one(sim_opts *o)
{
    fa2_sim_result r;
    if (fa2_sim_run(&o->a, &o->dev, &r) != FA2_OK) {
        fprintf(stderr, PROG ": %s\n", fa2_last_error());
        return 1;
    }
    if (o->out == OUT_CSV && !print_result(o, &r, FA2_SIM_FORMAT_CSV_HEADER))
        return 1;
    return print_result(o, &r, o->out == OUT_JSON  ? FA2_SIM_FORMAT_JSON
                               : o->out == OUT_CSV ? FA2_SIM_FORMAT_CSV
                                                   : FA2_SIM_FORMAT_TEXT)
               ? 0
               : 1;
}

/* ---- sweeps ------------------------------------------------------------------- */

typedef struct sweep_row {
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_tile_config t;
    fa2_status st;
    char err[256];
} sweep_row;

/* The rows are independent: workers claim them in order. */
typedef struct sweep_job {
    const sim_opts *o;
    sweep_row *rows;
    int n;
    atomic_int next;
} sweep_job;

static void *sweep_worker(void *arg)
{
    sweep_job *job = arg;
    for (;;) {
        const int i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n)
            break;
        sweep_row *w = &job->rows[i];
        w->st = fa2_sim_run(&w->a, &job->o->dev, &w->r);
        if (w->st == FA2_OK)
            w->st = fa2_sim_tiles(&w->a, &job->o->dev, FA2_SIM_PASS_FWD, &w->t);
        if (w->st != FA2_OK)
            snprintf(w->err, sizeof w->err, "%s", fa2_last_error());
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t total_bytes(const fa2_sim_counters *c)
{
    return c->global_read + c->global_written;
}

static int64_t dram_bytes(const fa2_sim_counters *c)
{
    return c->dram_read + c->dram_written;
}

/* Run every row; print the table (or JSON / CSV). */
static int run_rows(const sim_opts *o, sweep_row *rows, int n, int sram_sweep)
{
    const double t0 = now_s();
    sweep_job job;
    job.o = o;
    job.rows = rows;
    job.n = n;
    atomic_init(&job.next, 0);
    enum { MAX_THREADS = 64 };
    pthread_t th[MAX_THREADS];
    int threads = fa2_default_num_threads();
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    int started = 0;
    for (; started < threads - 1; started++)
        if (pthread_create(&th[started], NULL, sweep_worker, &job))
            break;
    sweep_worker(&job); /* this thread is one of the workers */
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    const double secs = now_s() - t0;
    for (int i = 0; i < n; i++)
        if (rows[i].st != FA2_OK) {
            fprintf(stderr, PROG ": %s\n", rows[i].err);
            return 0;
        }
    if (o->out != OUT_TEXT) {
        sim_opts one = *o;
        if (o->out == OUT_JSON)
            fputs("[\n", stdout);
        for (int i = 0; i < n; i++) {
            one.a = rows[i].a;
            if (o->out == OUT_CSV && i == 0 &&
                !print_result(&one, &rows[i].r, FA2_SIM_FORMAT_CSV_HEADER))
                return 0;
            if (o->out == OUT_JSON && i)
                fputs(",\n", stdout);
            if (!print_result(&one, &rows[i].r, o->out == OUT_JSON ? FA2_SIM_FORMAT_JSON
                                                                   : FA2_SIM_FORMAT_CSV))
                return 0;
        }
        if (o->out == OUT_JSON)
            fputs("]\n", stdout);
        return 1;
    }
    printf("fa2 sim --sweep %s: %s on %s, %s, L2 model %s\n", o->sweep,
           fa2_sim_pass_name(o->a.pass), o->dev.name, fa2_dtype_name(o->a.dtype),
           o->a.l2 ? "on" : "off");
    if (sram_sweep) {
        printf("%8s %5s  %-4s %7s %7s %12s %12s %10s\n", "M bytes", "d", "algo", "Br",
               "Bc", "global MB", "12N2d2es2/M", "ratio");
        for (int i = 0; i < n; i++) {
            const sweep_row *w = &rows[i];
            const double nq = (double)w->a.seqlen_q, d = (double)w->a.head_dim;
            const double es = (double)fa2_dtype_size(w->a.dtype);
            const double ref = 12.0 * nq * nq * d * d * es * es /
                               (double)w->a.sram_bytes * (double)w->a.heads_q *
                               (double)w->a.batch;
            printf("%8lld %5lld  %-4s %7d %7d %12.2f %12.2f %10.3f\n",
                   (long long)w->a.sram_bytes, (long long)w->a.head_dim,
                   fa2_sim_algo_name(w->a.algo), w->t.block_m, w->t.block_n,
                   (double)total_bytes(&w->r.total) / 1e6, ref / 1e6,
                   (double)total_bytes(&w->r.total) / ref);
        }
    } else {
        printf("%4s %6s %7s %5s %5s  %-8s %10s %10s %7s %10s %9s %8s\n", "d", "causal",
               "seqlen", "batch", "heads", "algo", "global GB", "DRAM GB", "L2 hit",
               "smem GB", "time ms", "TFLOP/s");
        for (int i = 0; i < n; i++) {
            const sweep_row *w = &rows[i];
            const int64_t acc = w->r.l2_hits + w->r.l2_misses;
            char dram[16] = "-", hit[16] = "-";
            if (w->a.l2) {
                snprintf(dram, sizeof dram, "%.3f", (double)dram_bytes(&w->r.total) / 1e9);
                snprintf(hit, sizeof hit, "%.1f%%",
                         acc ? 100.0 * (double)w->r.l2_hits / (double)acc : 0.0);
            }
            printf("%4lld %6s %7lld %5lld %5lld  %-8s %10.3f %10s %7s %10.3f %9.3f %8.1f\n",
                   (long long)w->a.head_dim, w->a.causal ? "yes" : "no",
                   (long long)w->a.seqlen_q, (long long)w->a.batch,
                   (long long)w->a.heads_q, fa2_sim_algo_name(w->a.algo),
                   (double)total_bytes(&w->r.total) / 1e9, dram, hit,
                   (double)(w->r.total.smem_read + w->r.total.smem_written) / 1e9,
                   w->r.time_ms, w->r.tflops);
        }
    }
    printf("(%d simulations in %.2f s on %d thread%s)\n", n, secs, started + 1,
           started ? "s" : "");
    return 1;
}

/* ---- plots ---------------------------------------------------------------------- */

/* FILE.svg -> FILE.dat, FILE.gp */
static int plot_paths(const char *svg, char *dat, char *gp, size_t size)
{
    size_t len = strlen(svg);
    if (len > 4 && !strcmp(svg + len - 4, ".svg"))
        len -= 4;
    if (len + 5 > size) {
        fprintf(stderr, PROG ": --plot path too long\n");
        return 0;
    }
    snprintf(dat, size, "%.*s.dat", (int)len, svg);
    snprintf(gp, size, "%.*s.gp", (int)len, svg);
    return 1;
}

/* Run gnuplot on NAME.gp in the directory that holds it (the .gp file
 * names its data and output files relative to that directory). */
static void render(const char *gp, const char *svg)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", gp);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (slash && chdir(dir) != 0)
            _exit(126);
        execlp("gnuplot", "gnuplot", base_name(gp), (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        const int missing = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127;
        fprintf(stderr, PROG ": gnuplot %s; render the figure with: (cd %s && "
                        "gnuplot %s)\n", missing ? "is not installed" : "failed",
                slash ? dir : ".", base_name(gp));
        return;
    }
    printf("wrote %s\n", svg);
}

/* FILE.dat (the numbers) and FILE.gp (the figure), then FILE.svg. */
static int write_plot(const sim_opts *o, const sweep_row *rows, int n)
{
    char dat[1024], gp[1024];
    if (!plot_paths(o->plot, dat, gp, sizeof dat))
        return 0;
    FILE *fd = fopen(dat, "w"), *fg = fopen(gp, "w");
    if (!fd || !fg) {
        fprintf(stderr, PROG ": cannot write %s or %s\n", dat, gp);
        if (fd)
            fclose(fd);
        if (fg)
            fclose(fg);
        return 0;
    }
    fprintf(fd, "# fa2 sim --sweep %s (%s, %s, %s): one block per series, two "
                "blank lines apart\n", o->sweep, fa2_sim_pass_name(o->a.pass),
            o->dev.name, fa2_dtype_name(o->a.dtype));
    fprintf(fg, "# fa2 sim --sweep %s --plot %s; to render it again, run gnuplot "
                "%s in this file's directory\n", o->sweep, o->plot, base_name(gp));
    fprintf(fg, "set terminal svg size 960,%d dynamic font 'Helvetica,12' background "
                "'white'\nset output '%s'\nset logscale xy\nset grid\n"
                "set key top left\nset format y '%%.0e'\n",
            !strcmp(o->sweep, "paper") ? 760 : 520, base_name(o->plot));
    if (!strcmp(o->sweep, "sram")) {
        fprintf(fd, "# M_bytes global_bytes (fa1 block, fa2 block) and the "
                    "reference 12 N^2 d^2 es^2 / M\n");
        int block = 0;
        for (int algo = FA2_SIM_FA1; algo <= FA2_SIM_FA2; algo++) {
            fprintf(fd, "%s# %s\n", block++ ? "\n\n" : "", algo == FA2_SIM_FA1 ? "fa1" : "fa2");
            for (int i = 0; i < n; i++)
                if ((int)rows[i].a.algo == algo)
                    fprintf(fd, "%lld %lld\n", (long long)rows[i].a.sram_bytes,
                            (long long)total_bytes(&rows[i].r.total));
        }
        const sweep_row *w = &rows[0];
        const double nq = (double)w->a.seqlen_q, d = (double)w->a.head_dim;
        const double es = (double)fa2_dtype_size(w->a.dtype);
        const double c = 12.0 * nq * nq * d * d * es * es * (double)w->a.heads_q *
                         (double)w->a.batch;
        fprintf(fg, "set title \"HBM (global) bytes vs SRAM size M (%s), N = %lld, "
                    "d = %lld, %s\"\n",
                fa2_sim_pass_name(o->a.pass), (long long)w->a.seqlen_q,
                (long long)w->a.head_dim, fa2_dtype_name(w->a.dtype));
        fprintf(fg, "set xlabel 'SRAM size M (bytes)'\nset ylabel 'global bytes'\n"
                    "set key top right\nset xrange [%g:%g]\n",
                (double)rows[0].a.sram_bytes / 1.25,
                (double)rows[n - 1].a.sram_bytes * 1.25);
        fprintf(fg, "plot '%s' index 0 with linespoints lw 2 pt 7 title "
                    "'FlashAttention (Bc = M/4d, Br = min(Bc, d))', \\\n"
                    "     '%s' index 1 with linespoints lw 2 pt 5 title "
                    "'FlashAttention-2 (Br = Bc = M/4d)', \\\n"
                    "     %.6g / x with lines dt 2 lc rgb 'black' title "
                    "'12 N^2 d^2 es^2 / M (slope -1)'\n",
                base_name(dat), base_name(dat), c);
    } else {
        static const char *const colour[] = {"#d62728", "#1f77b4", "#2ca02c"};
        const int paper = !strcmp(o->sweep, "paper");
        fprintf(fd, "# seqlen global_bytes dram_bytes; blocks: for each panel "
                    "(head dim, causal) the algorithms standard, fa1, fa2\n");
        int block = 0;
        const int panels = paper ? 4 : 1;
        for (int pnl = 0; pnl < panels; pnl++)
            for (int algo = 0; algo < 3; algo++) {
                fprintf(fd, "%s# panel %d %s\n", block++ ? "\n\n" : "", pnl,
                        fa2_sim_algo_name((fa2_sim_algo)algo));
                for (int i = 0; i < n; i++) {
                    const int rp = paper ? (rows[i].a.head_dim == 128) * 2 +
                                               (rows[i].a.causal != 0)
                                         : 0;
                    if (rp == pnl && (int)rows[i].a.algo == algo)
                        fprintf(fd, "%lld %lld %lld\n", (long long)rows[i].a.seqlen_q,
                                (long long)total_bytes(&rows[i].r.total),
                                (long long)dram_bytes(&rows[i].r.total));
                }
            }
        if (paper)
            fprintf(fg, "set multiplot layout 2,2 title \"HBM bytes (%s) on the FA2 "
                        "paper's grid, %s\\nsolid: global (requested)%s\"\n",
                    fa2_sim_pass_name(o->a.pass), o->dev.name,
                    o->a.l2 ? ", dashed: DRAM (after L2)" : "");
        else
            fprintf(fg, "set title \"HBM bytes vs sequence length (%s), batch "
                        "%lld, %lld heads, d = %lld, %s\\nsolid: global (requested)%s\"\n",
                    fa2_sim_pass_name(o->a.pass), (long long)rows[0].a.batch,
                    (long long)rows[0].a.heads_q, (long long)rows[0].a.head_dim,
                    o->dev.name, o->a.l2 ? ", dashed: DRAM (after L2)" : "");
        fprintf(fg, "set xlabel 'sequence length'\nset ylabel 'bytes'\n"
                    "set logscale x 2\n");
        for (int pnl = 0; pnl < panels; pnl++) {
            if (paper)
                fprintf(fg, "set title 'head dim %d, %s'\n", pnl / 2 ? 128 : 64,
                        pnl % 2 ? "causal" : "not causal");
            fprintf(fg, "plot ");
            for (int algo = 0; algo < 3; algo++) {
                const int idx = pnl * 3 + algo;
                const char *name = algo == 0 ? "standard" : algo == 1 ? "FlashAttention"
                                                                      : "FlashAttention-2";
                fprintf(fg, "%s'%s' index %d using 1:2 with linespoints lw 2 pt 7 lc "
                            "rgb '%s' title '%s'",
                        algo ? ", \\\n     " : "", base_name(dat), idx, colour[algo],
                        name);
                if (o->a.l2)
                    fprintf(fg, ", \\\n     '%s' index %d using 1:3 with linespoints "
                                "lw 2 dt 2 pt 6 lc rgb '%s' notitle",
                            base_name(dat), idx, colour[algo]);
            }
            fprintf(fg, "\n");
        }
        if (paper)
            fprintf(fg, "unset multiplot\n");
    }
    fclose(fd);
    fclose(fg);
    printf("wrote %s and %s\n", dat, gp);
    render(gp, o->plot);
    return 1;
}

static int run_sweep(sim_opts *o)
{
    enum { MAX_ROWS = 256 };
    sweep_row *rows = calloc(MAX_ROWS, sizeof *rows);
    if (!rows) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int n = 0;
    const int sram = !strcmp(o->sweep, "sram");
    if (!strcmp(o->sweep, "paper")) {
        if (!o->pass_given)
            o->a.pass = FA2_SIM_PASS_FWD_BWD;
        for (int d = 64; d <= 128; d *= 2)
            for (int causal = 0; causal <= 1; causal++)
                for (int64_t nq = 512; nq <= 16384; nq *= 2)
                    for (int algo = 0; algo < 3; algo++) {
                        fa2_sim_args *a = &rows[n++].a;
                        *a = o->a;
                        a->algo = (fa2_sim_algo)algo;
                        a->head_dim = d;
                        a->causal = causal;
                        a->batch = 16384 / nq;
                        a->heads_q = a->heads_kv = 2048 / d;
                        a->seqlen_q = a->seqlen_k = nq;
                        a->cu_seqlens_q = a->cu_seqlens_k = NULL;
                    }
    } else if (!strcmp(o->sweep, "seqlen")) {
        for (int64_t nq = 256; nq <= 65536; nq *= 2)
            for (int algo = 0; algo < 3; algo++) {
                fa2_sim_args *a = &rows[n++].a;
                *a = o->a;
                a->algo = (fa2_sim_algo)algo;
                a->seqlen_q = a->seqlen_k = nq;
                a->cu_seqlens_q = a->cu_seqlens_k = NULL;
            }
    } else { /* sram: global bytes only, so no L2 */
        if (o->a.seqlen_q == 0)
            o->a.seqlen_q = o->a.seqlen_k = 16384;
        o->a.l2 = 0;
        for (int algo = FA2_SIM_FA1; algo <= FA2_SIM_FA2; algo++)
            for (int64_t m = 16 * 1024; m <= 1024 * 1024; m *= 2) {
                fa2_sim_args *a = &rows[n++].a;
                *a = o->a;
                a->algo = (fa2_sim_algo)algo;
                a->sram_bytes = m;
                a->block_m = a->block_n = a->bwd_block_m = a->bwd_block_n = 0;
            }
    }
    int ok = run_rows(o, rows, n, sram);
    if (ok && o->plot)
        ok = write_plot(o, rows, n);
    free(rows);
    return ok ? 0 : 1;
}

int fa2_cmd_sim(int argc, char **argv)
{
    static sim_opts o; /* large (the varlen offsets); one command per process */
    memset(&o, 0, sizeof o);
    fa2_sim_args_init(&o.a);
    fa2_sim_device_builtin("h100", &o.dev);
    const int parsed = parse_options(&o, argc, argv);
    if (parsed < 0)
        return 0;
    if (parsed == 0)
        return 2;
    if (o.kernel_tiles && !apply_kernel_tiles(&o.a))
        return 1;
    if (o.sweep) {
        if (!strcmp(o.sweep, "seqlen") && o.a.seqlen_q == 0)
            o.a.seqlen_q = o.a.seqlen_k = 1024; /* placeholders; the sweep sets them */
        return run_sweep(&o);
    }
    if (!o.a.cu_seqlens_q && o.a.seqlen_q == 0) {
        fprintf(stderr, PROG ": --seqlen (or --seqlens) is required (fa2 sim --help)\n");
        return 2;
    }
    return run_one(&o);
}
