/* device.c — the GPU profiles the simulator models, and custom ones.
 *
 * Sources of the built-in numbers:
 *  [A100] NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB: FP16 tensor
 *         312 TFLOPS dense, FP32 19.5 TFLOPS, HBM2e 2,039 GB/s) and the
 *         NVIDIA A100 Tensor Core GPU Architecture whitepaper (108 SMs,
 *         40 MB L2, 1410 MHz boost).
 *  [H100] NVIDIA H100 Tensor Core GPU datasheet (SXM5: FP16 tensor 1,979
 *         TFLOPS with sparsity = 989 dense, FP32 67 TFLOPS, HBM3 3.35 TB/s)
 *         and the NVIDIA H100 Tensor Core GPU Architecture whitepaper
 *         (132 SMs on SXM5, 50 MB L2). 67 TFLOPS = 132 SMs x 128 FP32 lanes
 *         x 2 x 1.98 GHz, the boost clock used below.
 *  [H200] NVIDIA H200 Tensor Core GPU datasheet (SXM 141 GB: HBM3e 4.8 TB/s,
 *         FP16 tensor 1,979 TFLOPS with sparsity, FP32 67 TFLOPS); the GH100
 *         die of the H100 SXM5 (132 SMs). The datasheet gives no L2 size; the
 *         CUDA runtime (cudaDeviceProp::l2CacheSize, read through PyTorch on
 *         an H200 SXM of this project's GPU hosts) reports 60 MB.
 *  [CUDA] CUDA C++ Programming Guide, "Compute Capabilities": shared memory
 *         per SM 164 KB (8.0) / 228 KB (9.0), per block 163 KB / 227 KB,
 *         1 KB reserved by the system per block, 32 blocks and 64 warps per
 *         SM, 64 K 32-bit registers per SM; "Arithmetic Instructions": 16
 *         exp2/log2/reciprocal results per clock per SM (8.0 and 9.0), so
 *         sfu_tops = SMs x 16 x boost clock.
 */
#include "config.h"
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fixed costs of a launch and of a block (doc/io-complexity.md section
 * 12, "Fixed costs"), the same for the three profiles until measured on
 * each (the lead's H200 measurements re-calibrate them: --device-set):
 *  LAUNCH_US: the gap between two dependent kernels on one stream, from
 *      the end of the last block of one to the first block of the next
 *      running, plus the launch's own start: a few microseconds on recent
 *      NVIDIA GPUs.
 *  BLOCK_US: a block's dispatch, prologue (index arithmetic, the mask, the
 *      first loads' issue) and epilogue on its SM beyond its loads and tile
 *      steps. 3.6: the intercept of the H200 decode kernel's duration
 *      against its tile steps a block at batch 1 (TILE_STEP_NS) less one
 *      DRAM round trip.
 *  DRAM_LATENCY_NS: a dependent load's round trip that misses L2.
 *      Published pointer-chasing figures for Hopper spread (HBM ~400-700
 *      ns, idle); 600, not measured here.
 *  L2_LATENCY_NS: ... that hits L2. 205: the H200's first combine kernel
 *      (one warp a row walking the splits, a dependent L2 load each)
 *      took 31.9, 51.4 and 65.0 us for 141, 243 and 253 round trips
 *      besides BLOCK_US: 205, 199 and 245 ns each (2026-12-02).
 *  SMEM_LATENCY_NS: a shared-memory load and the operation waiting on it.
 *      19.3: the H200's combine kernel (one block a row, partials staged
 *      in shared memory, summed in split order), the median over its
 *      durations at batch 1-64 besides BLOCK_US and its two L2 trips.
 *  TILE_STEP_NS: a one-warp decode block's step over a 32-key tile at head
 *      dim 128, when the block's own chain (not HBM) is what it waits on.
 *      1800: fitted, since the kernel became memory-bound and its
 *      one-wave durations no longer separate the chain from the bytes
 *      (their least-squares slope, 2755 ns, is the bandwidth's share of a
 *      tile at 6 blocks an SM, and over-predicted the 4-blocks-an-SM
 *      launches of fa2_kvcache_gpu_workers by up to 1.5x): the value that
 *      puts the per-call times of two H200 runs (2026-12-03, 60 rows:
 *      Hq 32 / Hkv 8 and 32, Nq 1 and 4, batch 1-64, 4k-128k keys, the
 *      old and the new split counts) within 15%; a third run, not used
 *      for the fit, 29 of 30 rows (bench/sim_decode_calib.py --json).
 *      Kept with the fill and the combine's hidden block_us (sim/run.c,
 *      doc/NOTES-kvcache.md "Fill and programmatic overlap"), which are
 *      checked against GPU time (graph replays: 30 of 30 rows of the
 *      2026-12-03e run, 29 of 30 of the 03d one); the per-call times,
 *      which include host time at batch 1, are then 24-28 of 30.
 *      It was 3030 before the kernel's copies and softmax lost their
 *      excess instructions.
 *  Measured on 2026-12-03 (doc/NOTES-kvcache.md, "the decode warp was
 *  bound by its own instructions"), L2_LATENCY_NS on 2026-12-02. */
#define LAUNCH_US 2.0
#define BLOCK_US 3.6
#define DRAM_LATENCY_NS 600.0
#define L2_LATENCY_NS 205.0
#define SMEM_LATENCY_NS 19.3
#define TILE_STEP_NS 1800.0

#define KB 1024LL
#define MB (1024LL * 1024LL)

/* The fixed costs (launch_us, block_us, dram_latency_ns, l2_latency_ns,
 * smem_latency_ns, tile_step_ns): see FIXED_COSTS below. */
#define FIXED_COSTS LAUNCH_US, BLOCK_US, DRAM_LATENCY_NS, L2_LATENCY_NS, SMEM_LATENCY_NS, \
    TILE_STEP_NS
static const fa2_sim_device builtin[] = {
    {"A100-SXM4-80GB", 108, 32, 64, 65536, 164 * KB, 163 * KB, 1 * KB, 40 * MB,
     32, 2039.0, 312.0, 19.5, 108 * 16 * 1.41e9 / 1e12, 80, FIXED_COSTS},
    {"H100-SXM5-80GB", 132, 32, 64, 65536, 228 * KB, 227 * KB, 1 * KB, 50 * MB,
     32, 3350.0, 989.0, 67.0, 132 * 16 * 1.98e9 / 1e12, 90, FIXED_COSTS},
    {"H200-SXM-141GB", 132, 32, 64, 65536, 228 * KB, 227 * KB, 1 * KB, 60 * MB,
     32, 4800.0, 989.0, 67.0, 132 * 16 * 1.98e9 / 1e12, 90, FIXED_COSTS},
};
static const char *const short_names[] = {"a100", "h100", "h200"};
#define NBUILTIN (sizeof builtin / sizeof builtin[0])

static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

fa2_status fa2_sim_device_builtin(const char *name, fa2_sim_device *out)
{
    if (!name || !out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL", name ? "out" : "name");
    for (size_t i = 0; i < NBUILTIN; i++)
        if (same_name(name, short_names[i]) || same_name(name, builtin[i].name)) {
            *out = builtin[i];
            fa2_clear_error();
            return FA2_OK;
        }
    return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device '%s' is not built in; "
                    "expected a100, h100 or h200 (or a profile file)", name);
}

/* A size: digits with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || errno || !isfinite(x) || x < 0)
        return 0;
    double mult = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mult = (double)KB; end++; break;
    case 'M': mult = (double)MB; end++; break;
    case 'G': mult = (double)MB * KB; end++; break;
    default: break;
    }
    if (toupper((unsigned char)*end) == 'B')
        end++;
    while (isspace((unsigned char)*end))
        end++;
    if (*end || x * mult > 9.0e18 || x * mult != floor(x * mult))
        return 0;
    *out = (int64_t)(x * mult);
    return 1;
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == v || *end || errno || !isfinite(x))
        return 0;
    *out = x;
    return 1;
}

typedef enum { F_INT, F_I64, F_DBL } field_kind;
typedef struct field {
    const char *key;
    field_kind kind;
    size_t off;
} field;

#define FLD(name, kind) {#name, kind, offsetof(fa2_sim_device, name)}
static const field fields[] = {
    FLD(sms, F_INT),           FLD(max_blocks_per_sm, F_INT),
    FLD(max_warps_per_sm, F_INT), FLD(regs_per_sm, F_I64),
    FLD(smem_per_sm, F_I64),   FLD(smem_per_block, F_I64),
    FLD(smem_reserved_per_block, F_I64), FLD(l2_bytes, F_I64),
    FLD(l2_sector_bytes, F_INT), FLD(hbm_gbps, F_DBL),
    FLD(matmul_tflops, F_DBL), FLD(fp32_tflops, F_DBL),
    FLD(sfu_tops, F_DBL),      FLD(arch, F_INT),
    FLD(launch_us, F_DBL),     FLD(block_us, F_DBL),
    FLD(dram_latency_ns, F_DBL), FLD(l2_latency_ns, F_DBL),
    FLD(smem_latency_ns, F_DBL), FLD(tile_step_ns, F_DBL),
};

fa2_status fa2_sim_device_set(fa2_sim_device *dev, const char *key,
                              const char *value)
{
    if (!dev || !key || !value)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL",
                        !dev ? "dev" : !key ? "key" : "value");
    if (!strcmp(key, "base"))
        return fa2_sim_device_builtin(value, dev);
    if (!strcmp(key, "name")) {
        snprintf(dev->name, sizeof dev->name, "%s", value);
        fa2_clear_error();
        return FA2_OK;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(key, fields[i].key))
            continue;
        char *at = (char *)dev + fields[i].off;
        int64_t n;
        double x;
        switch (fields[i].kind) {
        case F_INT:
            if (!parse_size(value, &n) || n > 0x7fffffff)
                goto bad;
            *(int *)(void *)at = (int)n;
            break;
        case F_I64:
            if (!parse_size(value, &n))
                goto bad;
            *(int64_t *)(void *)at = n;
            break;
        case F_DBL:
            if (!parse_double(value, &x) || x < 0)
                goto bad;
            *(double *)(void *)at = x;
            break;
        }
        fa2_clear_error();
        return FA2_OK;
    bad:
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s = '%s' is not a "
                        "non-negative %s", key, value,
                        fields[i].kind == F_DBL ? "number" : "integer (K/M/G allowed)");
    }
    return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "unknown device key '%s' (expected "
                    "base, name, sms, max_blocks_per_sm, max_warps_per_sm, "
                    "regs_per_sm, smem_per_sm, smem_per_block, "
                    "smem_reserved_per_block, l2_bytes, l2_sector_bytes, hbm_gbps, "
                    "matmul_tflops, fp32_tflops, sfu_tops, arch, launch_us, "
                    "block_us, dram_latency_ns, l2_latency_ns, smem_latency_ns or "
                    "tile_step_ns)", key);
}

fa2_status fa2_sim_device_parse(fa2_sim_device *dev, const char *text)
{
    if (!dev || !text)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL", dev ? "text" : "dev");
    int lineno = 0;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        const size_t len = eol ? (size_t)(eol - line) : strlen(line);
        lineno++;
        char buf[256];
        if (len >= sizeof buf)
            return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device profile line %d is "
                            "longer than %zu characters", lineno, sizeof buf - 1);
        memcpy(buf, line, len);
        buf[len] = '\0';
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char *k = buf;
        while (isspace((unsigned char)*k))
            k++;
        if (*k) {
            char *eq = strchr(k, '=');
            if (!eq)
                return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device profile line %d: "
                                "expected 'key = value', got '%s'", lineno, k);
            char *v = eq + 1;
            char *kend = eq;
            while (kend > k && isspace((unsigned char)kend[-1]))
                kend--;
            *kend = '\0';
            while (isspace((unsigned char)*v))
                v++;
            char *vend = v + strlen(v);
            while (vend > v && isspace((unsigned char)vend[-1]))
                vend--;
            *vend = '\0';
            const fa2_status st = fa2_sim_device_set(dev, k, v);
            if (st != FA2_OK) {
                char why[400];
                snprintf(why, sizeof why, "%s", fa2_last_error());
                return fa2_fail(st, "device profile line %d: %s", lineno, why);
            }
        }
        line += len + (eol ? 1 : 0);
    }
    fa2_clear_error();
    return FA2_OK;
}

fa2_status fa2_sim_device_check(const fa2_sim_device *d)
{
    if (!d)
        return fa2_fail(FA2_ERR_NULL_POINTER, "dev is NULL");
    if (d->sms < 1 || d->max_blocks_per_sm < 1 || d->max_warps_per_sm < 1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: sms (%d), "
                        "max_blocks_per_sm (%d) and max_warps_per_sm (%d) must be "
                        ">= 1", d->name, d->sms, d->max_blocks_per_sm,
                        d->max_warps_per_sm);
    if ((int64_t)d->sms * d->max_blocks_per_sm > (1 << 24))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: sms x "
                        "max_blocks_per_sm is above 2^24", d->name);
    if (d->regs_per_sm < 1 || d->smem_per_sm < 1 || d->smem_per_block < 1 ||
        d->smem_per_block > d->smem_per_sm || d->smem_reserved_per_block < 0)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: regs_per_sm, "
                        "smem_per_sm and smem_per_block must be >= 1, smem_per_block "
                        "<= smem_per_sm, smem_reserved_per_block >= 0", d->name);
    if (d->arch < 0 || d->arch > 1000)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: arch is %d, expected "
                        "the compute capability x 10 (80, 90, ...)", d->name, d->arch);
    if (d->l2_bytes < 0 || d->l2_sector_bytes < 1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: l2_bytes must be "
                        ">= 0 and l2_sector_bytes >= 1", d->name);
    if (!(d->hbm_gbps > 0) || !(d->matmul_tflops > 0) || !(d->fp32_tflops > 0) ||
        !(d->sfu_tops > 0) || !isfinite(d->hbm_gbps) ||
        !isfinite(d->matmul_tflops) || !isfinite(d->fp32_tflops) ||
        !isfinite(d->sfu_tops))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: hbm_gbps, "
                        "matmul_tflops, fp32_tflops and sfu_tops must be positive "
                        "and finite", d->name);
    const double fixed[] = {d->launch_us, d->block_us, d->dram_latency_ns,
                            d->l2_latency_ns, d->smem_latency_ns, d->tile_step_ns};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!(fixed[i] >= 0) || !isfinite(fixed[i]))
            return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "device %s: launch_us, block_us, "
                            "dram_latency_ns, l2_latency_ns, smem_latency_ns and "
                            "tile_step_ns must be >= 0 and finite", d->name);
    fa2_clear_error();
    return FA2_OK;
}

/* The whole of a small text file (profiles are a few hundred bytes). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    enum { MAX = 1 << 20 };
    char *buf = malloc(MAX + 1);
    const size_t len = buf ? fread(buf, 1, MAX + 1, f) : 0;
    fclose(f);
    if (buf && len > MAX) {
        free(buf);
        return NULL;
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

fa2_status sim_device_load(const char *path, fa2_sim_device *dev)
{
    char *text = read_text(path);
    if (!text)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "'%s' is neither a100, h100, "
                        "h200 nor a readable profile file (up to 1 MiB)", path);
    fa2_sim_device_builtin("h100", dev); /* fields the file leaves out */
    const fa2_status st = fa2_sim_device_parse(dev, text);
    /* named after the file unless it names itself */
    int named = 0;
    for (const char *line = text; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        line += strspn(line, " \t");
        named |= !strncmp(line, "name", 4) && line[4] && strchr(" \t=", line[4]);
    }
    if (!named) {
        const char *base = strrchr(path, '/');
        snprintf(dev->name, sizeof dev->name, "%s", base ? base + 1 : path);
    }
    free(text);
    if (st != FA2_OK)
        return fa2_fail(st, "%s: %s", path, fa2_last_error());
    return FA2_OK;
}
