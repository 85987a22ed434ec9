/* cmd_sim.c — `fa2 sim`: the memory-hierarchy simulator on the command line
 * (one problem, or a sweep, as a table, JSON or CSV, and figures through
 * gnuplot). It parses, calls the simulator (sim/) and prints; the sweeps'
 * grids and figures are sim/sweep.c's and sim/plot.c's. See
 * doc/io-complexity.md. */
#include "config.h"
#include "args.h"
#include "commands.h"
#include "fa2.h"
#include "sim.h"
#include "sweep.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "fa2 sim"
#define MAX_SEQS 4096

typedef enum { OUT_TEXT, OUT_JSON, OUT_CSV } out_kind;

typedef struct sim_opts {
    fa2_sim_args a;
    fa2_sim_device dev;
    int pass_given, kernel_tiles;
    out_kind out;
    int sweep;        /* a sim_sweep_kind, or -1 */
    const char *plot; /* FILE.svg */
    int32_t cu_q[MAX_SEQS + 1], cu_k[MAX_SEQS + 1];
    int64_t nq, nk;   /* --seqlens / --seqlens-k counts, -1: not given */
    int ring;         /* --ring GPUS, 0: not a ring                     */
    sim_link link;    /* --link, --link-gbps                            */
} sim_opts;

static void usage(FILE *f)
{
    fprintf(f,
"usage: fa2 sim [OPTIONS]\n"
"Simulate the memory traffic of one attention launch sequence on a GPU model.\n\n"
"  --algo standard|fa1|fa2|decode  schedule (default fa2); decode: the\n"
"                               forward over a KV cache, --seqlen new tokens\n"
"                               against --seqlen-k keys (the cache after the\n"
"                               append), query heads of a group packed\n"
"  --page-size N --num-splits N --seqlen-new N --cache-capacity N\n"
"                               decode: paged cache (0: contiguous), split-KV\n"
"                               chunks (0: the library's choice for the\n"
"                               device's SMs), tokens appended, keys a cache\n"
"                               holds (the split choice's input; 0: seqlen-k)\n"
"  --pass fwd|bwd|fwd+bwd       (default fwd; --sweep paper: fwd+bwd)\n"
"  --batch N --heads N --heads-kv N --seqlen N --seqlen-k N --head-dim N\n"
"                               sizes (k suffix = x1024); seqlen-k defaults to\n"
"                               seqlen, heads-kv to heads\n"
"  --seqlens L1,L2,.. [--seqlens-k K1,K2,..]   variable lengths (packed)\n"
"  --dtype fp16|bf16|fp32       operand type (default fp16)\n"
"  --causal  --window LEFT,RIGHT   masks (-1: unbounded side)\n"
"  --device a100|h100|h200|FILE    profile (default h100); FILE holds\n"
"                               'key = value' lines (see --device-set)\n"
"  --device-set KEY=VALUE       override one profile field, e.g. l2_bytes=40M,\n"
"                               hbm_gbps=4250, launch_us=2.5 (the fixed costs:\n"
"                               launch_us, block_us, dram_latency_ns,\n"
"                               l2_latency_ns, smem_latency_ns, tile_step_ns;\n"
"                               0 turns one off)\n"
"  --sram BYTES                 SRAM size M (default: the device's smem per block;\n"
"                               at least a row each of Q, K, V, O: 4 d es bytes)\n"
"  --block-m N --block-n N --warps N   tiles (FA2: forward; FA1, standard: all)\n"
"  --bwd-block-m N --bwd-block-n N --bwd-warps N   FA2 backward tiles\n"
"  --kernel-tiles               FA2 tiles from the CUDA backend (needs CUDA)\n"
"  --partition split-q|split-k  forward warp partitioning\n"
"  --order head-major|block-major   launch order of the blocks\n"
"  --regs N                     registers per thread (occupancy)\n"
"  --l2 | --no-l2               L2 model (default on)\n"
"  --deterministic              FA2 backward in its deterministic mode (its\n"
"                               order and second dQ accumulator)\n"
"  --softcap CAP --alibi --sinks --dropout P   FA2 with the score modifiers\n"
"                               and dropout: their per-element work in the\n"
"                               FLOP counts and the time (bytes unchanged)\n"
"  --ring GPUS                  ring attention (context parallelism) over GPUS\n"
"                               devices: per-step link bytes and compute, step\n"
"                               time max(compute, link), against one GPU\n"
"                               (FA2, fixed length, 2 GPUS must divide seqlen)\n"
"  --link nvlink4|pcie5         the ring's link (default nvlink4: 450 GB/s per\n"
"                               direction; pcie5: 64 GB/s)\n"
"  --link-gbps X                override the link's GB/s per direction\n"
"  --json | --csv               machine-readable output\n"
"  --sweep paper|seqlen|sram    the FA2 paper's grid (batch x seqlen = 16k,\n"
"                               hidden 2048, d 64/128, seqlen 512..16k, causal\n"
"                               and not) for all three algorithms; seqlen\n"
"                               256..64k at fixed batch and heads; SRAM size\n"
"                               M = 16K..1M bytes for FA1 and FA2\n"
"  --plot FILE.svg              with --sweep: draw it (gnuplot, when installed;\n"
"                               FILE.dat and FILE.gp are written either way)\n"
"  -h, --help                   this text\n"
"Sweeps print their progress on stderr.\n");
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- options with values of their own shape ----------------------------- */

/* "a,b,c" lengths into offsets cu[0..n]; n is the int64_t after cu. */
static int parse_lengths(int32_t *cu, int64_t *n, const char *name, const char *v)
{
    int64_t count = 0, total = 0, x;
    cu[0] = 0;
    for (const char *p = v;;) {
        char item[32];
        const size_t len = strcspn(p, ",");
        if (len >= sizeof item || count == MAX_SEQS) {
            fprintf(stderr, PROG ": %s: '%s' is not a list of at most %d lengths\n",
                    name, v, MAX_SEQS);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (opt_parse_i64(PROG, name, item, 0, INT32_MAX - total, &x))
            return -1;
        total += x;
        cu[++count] = (int32_t)total;
        if (!p[len])
            break;
        p += len + 1;
    }
    *n = count;
    return 0;
}

static int seqlens_q(void *o, const char *v)
{
    return parse_lengths(((sim_opts *)o)->cu_q, &((sim_opts *)o)->nq, "--seqlens", v);
}

static int seqlens_k(void *o, const char *v)
{
    return parse_lengths(((sim_opts *)o)->cu_k, &((sim_opts *)o)->nk, "--seqlens-k", v);
}

static int set_device(void *out, const char *v)
{
    fa2_sim_device *dev = out;
    if (fa2_sim_device_builtin(v, dev) == FA2_OK || sim_device_load(v, dev) == FA2_OK)
        return 0;
    fprintf(stderr, PROG ": --device: %s\n", fa2_last_error());
    return -1;
}

static int set_link(void *out, const char *v)
{
    if (sim_link_builtin(v, out) == FA2_OK)
        return 0;
    fprintf(stderr, PROG ": --link: %s\n", fa2_last_error());
    return -1;
}

static int link_gbps(void *out, const char *v)
{
    char *end;
    const double x = strtod(v, &end);
    if (end == v || *end || !(x > 0) || x > 1e6) {
        fprintf(stderr, PROG ": --link-gbps '%s' is not a positive GB/s\n", v);
        return -1;
    }
    ((sim_link *)out)->bytes_per_s = x * 1e9;
    return 0;
}

static int device_set(void *out, const char *v)
{
    char kv[256];
    snprintf(kv, sizeof kv, "%s", v);
    char *e = strchr(kv, '=');
    if (!e) {
        fprintf(stderr, PROG ": --device-set '%s' is not KEY=VALUE\n", v);
        return -1;
    }
    *e = '\0';
    if (fa2_sim_device_set(out, kv, e + 1) == FA2_OK)
        return 0;
    fprintf(stderr, PROG ": --device-set: %s\n", fa2_last_error());
    return -1;
}

/* Bytes with an optional K/M/G suffix (1024-based), as profiles take them. */
static int sram_bytes(void *out, const char *v)
{
    fa2_sim_device scratch;
    memset(&scratch, 0, sizeof scratch);
    if (fa2_sim_device_set(&scratch, "l2_bytes", v) == FA2_OK && scratch.l2_bytes > 0) {
        *(int64_t *)out = scratch.l2_bytes;
        return 0;
    }
    fprintf(stderr, PROG ": --sram '%s' is not a positive byte count (K/M/G "
                    "suffixes allowed)\n", v);
    return -1;
}

/* 0 ok, 1 help, 2 usage error. */
static int parse_options(sim_opts *o, int argc, char **argv)
{
    static const char *const algos[] = {"standard", "fa1", "fa2", "decode", NULL};
    static const char *const passes[] = {"fwd", "bwd", "fwd+bwd", NULL};
    static const char *const dtypes[] = {"fp32", "fp16", "bf16", NULL};
    static const char *const parts[] = {"default", "split-q", "split-k", NULL};
    static const char *const orders[] = {"head-major", "block-major", NULL};
    fa2_sim_args *a = &o->a;
    int algo = (int)a->algo, pass = -1, dtype = (int)a->dtype;
    int part = (int)a->partition, order = (int)a->order, json = 0, csv = 0;
    int64_t heads_kv = 0, seqlen_k = 0, window[2] = {a->window_left, a->window_right};
    const int64_t big = INT32_MAX;
    const opt opts[] = {
        OPT_CHOICE_("--algo", &algo, algos),
        OPT_CHOICE_("--pass", &pass, passes),
        OPT_CHOICE_("--dtype", &dtype, dtypes),
        OPT_CHOICE_("--partition", &part, parts),
        OPT_CHOICE_("--order", &order, orders),
        OPT_CHOICE_("--sweep", &o->sweep, sim_sweep_names),
        OPT_STRING_("--plot", &o->plot),
        OPT_I64_("--batch", &a->batch, 1, big),
        OPT_I64_("--heads", &a->heads_q, 1, big),
        OPT_I64_("--heads-kv", &heads_kv, 1, big),
        OPT_I64_("--seqlen", &a->seqlen_q, 1, big),
        OPT_I64_("--seqlen-k", &seqlen_k, 1, big),
        OPT_I64_("--head-dim", &a->head_dim, 1, big),
        OPT_CALL_("--seqlens", o, seqlens_q),
        OPT_CALL_("--seqlens-k", o, seqlens_k),
        OPT_PAIR_("--window", window, -1, big),
        OPT_FLAG_("--causal", &a->causal, 1),
        OPT_CALL_("--device", &o->dev, set_device),
        OPT_CALL_("--device-set", &o->dev, device_set),
        OPT_CALL_("--sram", &a->sram_bytes, sram_bytes),
        OPT_INT_("--block-m", &a->block_m, 1, 65536),
        OPT_INT_("--block-n", &a->block_n, 1, 65536),
        OPT_INT_("--warps", &a->warps, 1, 32),
        OPT_INT_("--bwd-block-m", &a->bwd_block_m, 1, 65536),
        OPT_INT_("--bwd-block-n", &a->bwd_block_n, 1, 65536),
        OPT_INT_("--bwd-warps", &a->bwd_warps, 1, 32),
        OPT_INT_("--regs", &a->regs_per_thread, 1, 255),
        OPT_FLAG_("--l2", &a->l2, 1),
        OPT_FLAG_("--no-l2", &a->l2, 0),
        OPT_FLAG_("--deterministic", &a->deterministic, 1),
        OPT_CALL_("--softcap", &a->softcap, opt_nonneg_float),
        OPT_FLAG_("--alibi", &a->alibi, 1),
        OPT_FLAG_("--sinks", &a->sinks, 1),
        OPT_CALL_("--dropout", &a->dropout_p, opt_nonneg_float),
        OPT_FLAG_("--json", &json, 1),
        OPT_FLAG_("--csv", &csv, 1),
        OPT_FLAG_("--kernel-tiles", &o->kernel_tiles, 1),
        OPT_I64_("--page-size", &a->page_size, 0, big),
        OPT_INT_("--num-splits", &a->num_splits, 0, 1 << 20),
        OPT_I64_("--seqlen-new", &a->seqlen_new, 0, big),
        OPT_I64_("--cache-capacity", &a->cache_capacity, 0, big),
        OPT_INT_("--ring", &o->ring, 2, 4096),
        OPT_CALL_("--link", &o->link, set_link),
        OPT_CALL_("--link-gbps", &o->link, link_gbps),
    };
    const int rc = opt_parse(PROG, opts, OPT_COUNT(opts), argc, argv);
    if (rc)
        return rc;
    a->algo = (fa2_sim_algo)algo;
    a->dtype = (fa2_dtype)dtype;
    a->partition = (fa2_sim_partition)part;
    a->order = (fa2_sim_order)order;
    o->pass_given = pass >= 0;
    if (pass >= 0)
        a->pass = (fa2_sim_pass)(pass + 1);
    o->out = json ? OUT_JSON : csv ? OUT_CSV : OUT_TEXT;
    a->window_left = window[0];
    a->window_right = window[1];
    a->heads_kv = heads_kv ? heads_kv : a->heads_q;
    a->seqlen_k = seqlen_k ? seqlen_k : a->seqlen_q;
    if (o->nq >= 0 || o->nk >= 0) {
        if (o->nq < 0) {
            fprintf(stderr, PROG ": --seqlens-k needs --seqlens\n");
            return 2;
        }
        if (o->nk < 0) {
            memcpy(o->cu_k, o->cu_q, sizeof(int32_t) * (size_t)(o->nq + 1));
            o->nk = o->nq;
        }
        if (o->nk != o->nq) {
            fprintf(stderr, PROG ": --seqlens has %lld lengths but --seqlens-k %lld\n",
                    (long long)o->nq, (long long)o->nk);
            return 2;
        }
        a->cu_seqlens_q = o->cu_q;
        a->cu_seqlens_k = o->cu_k;
        a->num_seqs = o->nq;
        a->batch = 1;
    }
    if (o->ring && (o->sweep >= 0 || o->out != OUT_TEXT)) {
        fprintf(stderr, PROG ": --ring prints a table (no --sweep, --json, --csv)\n");
        return 2;
    }
    if (o->plot && o->sweep < 0) {
        fprintf(stderr, PROG ": --plot needs --sweep\n");
        return 2;
    }
    return 0;
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

/* ---- one run ------------------------------------------------------------- */

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

static int run_ring(sim_opts *o)
{
    sim_ring_result r;
    if (sim_ring_run(&o->a, &o->dev, &o->link, o->ring, &r) != FA2_OK) {
        fprintf(stderr, PROG ": --ring: %s\n", fa2_last_error());
        return 1;
    }
    sim_ring_print(stdout, &o->a, &o->dev, &r);
    return 0;
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

/* ---- sweeps -------------------------------------------------------------- */

static void progress(void *user, int done, int n)
{
    (void)user;
    fprintf(stderr, "\r" PROG ": %d/%d simulations", done, n);
    if (done == n)
        fprintf(stderr, "\r%40s\r", "");
}

/* Print the rows as a table (or JSON / CSV). */
static int print_rows(const sim_opts *o, const sim_sweep_row *rows, int n,
                      int threads, double secs)
{
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
    sim_sweep_print(stdout, (sim_sweep_kind)o->sweep, &o->a, &o->dev, rows, n);
    printf("(%d simulations in %.2f s on %d thread%s)\n", n, secs, threads,
           threads > 1 ? "s" : "");
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

/* FILE.dat (the numbers) and FILE.gp (the figure), then FILE.svg. */
static int write_plot(const sim_opts *o, const sim_sweep_row *rows, int n)
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
    sim_sweep_plot((sim_sweep_kind)o->sweep, &o->a, &o->dev, rows, n, fd, fg,
                   base_name(dat), base_name(gp), base_name(o->plot), o->plot);
    fclose(fd);
    fclose(fg);
    printf("wrote %s and %s\n", dat, gp);
    render(gp, o->plot);
    return 1;
}

static int run_sweep(sim_opts *o)
{
    sim_sweep_row *rows = calloc(SIM_SWEEP_MAX_ROWS, sizeof *rows);
    if (!rows) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    const int n = sim_sweep_rows((sim_sweep_kind)o->sweep, &o->a, o->pass_given, rows);
    const int threads = fa2_default_num_threads();
    const double t0 = timing_now();
    int ok = sim_sweep_run(rows, n, &o->dev, threads, progress, NULL) == FA2_OK;
    if (!ok)
        fprintf(stderr, "\n" PROG ": %s\n", fa2_last_error());
    if (ok)
        ok = print_rows(o, rows, n, threads, timing_now() - t0);
    if (ok && o->plot)
        ok = write_plot(o, rows, n);
    free(rows);
    return ok ? 0 : 1;
}

int fa2_cmd_sim(int argc, char **argv)
{
    static sim_opts o; /* large (the varlen offsets); one command per process */
    memset(&o, 0, sizeof o);
    o.sweep = -1;
    o.nq = o.nk = -1;
    fa2_sim_args_init(&o.a);
    fa2_sim_device_builtin("h100", &o.dev);
    sim_link_builtin("nvlink4", &o.link);
    const int parsed = parse_options(&o, argc, argv);
    if (parsed == 1)
        usage(stdout);
    if (parsed)
        return parsed == 1 ? 0 : 2;
    if (o.kernel_tiles && !apply_kernel_tiles(&o.a))
        return 1;
    if (o.sweep >= 0) {
        if (o.sweep == SIM_SWEEP_SEQLEN && o.a.seqlen_q == 0)
            o.a.seqlen_q = o.a.seqlen_k = 1024; /* placeholders; the sweep sets them */
        return run_sweep(&o);
    }
    if (!o.a.cu_seqlens_q && o.a.seqlen_q == 0) {
        fprintf(stderr, PROG ": --seqlen (or --seqlens) is required (fa2 sim --help)\n");
        return 2;
    }
    return o.ring ? run_ring(&o) : run_one(&o);
}
