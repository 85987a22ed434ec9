/* args.c — fa2_sim_args: defaults, validation, and the tiles each schedule
 * runs with, resolved into a sim_setup (sim.h). Bad input gets a status and
 * a sentence, never a crash. */
#include "config.h"
#include "sim.h"
#include "../gpu/fwd_config.h"
#include "../gpu/kvcache_params.h"
#include "fa2_kvcache.h"

#include <math.h>
#include <string.h>

#define MAX_TILE 65536
#define MAX_SEQLEN ((int64_t)1 << 31)

void fa2_sim_args_init(fa2_sim_args *a)
{
    if (!a)
        return;
    memset(a, 0, sizeof *a);
    a->algo = FA2_SIM_FA2;
    a->pass = FA2_SIM_PASS_FWD;
    a->dtype = FA2_DTYPE_FP16;
    a->batch = a->heads_q = a->heads_kv = 1;
    a->head_dim = 64;
    a->window_left = a->window_right = -1;
    a->l2 = 1;
}

const char *fa2_sim_algo_name(fa2_sim_algo a)
{
    switch (a) {
    case FA2_SIM_STANDARD: return "standard";
    case FA2_SIM_FA1: return "fa1";
    case FA2_SIM_FA2: return "fa2";
    case FA2_SIM_DECODE: return "decode";
    }
    return "?";
}

const char *fa2_sim_pass_name(fa2_sim_pass p)
{
    switch (p) {
    case FA2_SIM_PASS_FWD: return "fwd";
    case FA2_SIM_PASS_BWD: return "bwd";
    case FA2_SIM_PASS_FWD_BWD: return "fwd+bwd";
    }
    return "?";
}

const char *fa2_sim_partition_name(fa2_sim_partition p)
{
    switch (p) {
    case FA2_SIM_PARTITION_DEFAULT: return "default";
    case FA2_SIM_SPLIT_Q: return "split-q";
    case FA2_SIM_SPLIT_K: return "split-k";
    }
    return "?";
}

const char *fa2_sim_order_name(fa2_sim_order o)
{
    switch (o) {
    case FA2_SIM_ORDER_HEAD_MAJOR: return "head-major";
    case FA2_SIM_ORDER_BLOCK_MAJOR: return "block-major";
    }
    return "?";
}

const char *fa2_sim_tensor_name(fa2_sim_tensor t)
{
    static const char *const names[FA2_SIM_TENSOR_COUNT] = {
        "q", "k", "v", "o", "lse", "l", "m", "do", "d", "dq_accum",
        "dq", "dk", "dv", "s", "p", "dp", "ds", "o_partial", "lse_partial",
        "k_new", "v_new"};
    return (int)t >= 0 && t < FA2_SIM_TENSOR_COUNT ? names[t] : "?";
}

/* The CUDA forward kernel's tiling, from the kernel's own table
 * (gpu/fwd_config.h, plain C), so that the simulator reports the kernel's
 * traffic in builds without CUDA too: the kernel for head dim d runs at
 * hd = d rounded up to a multiple of 32. */
static sim_tiles fa2_fwd_table(int64_t d)
{
    const int hd = fa2_fwd_kernel_head_dim((int)d);
    sim_tiles t;
    t.bm = FA2_FWD_BLOCK_M(hd);
    t.bn = FA2_FWD_BLOCK_N(hd);
    t.warps = FA2_FWD_WARPS(hd);
    return t;
}

/* The sm_90 forward's tiling (gpu/fwd_config.h's FA2_FWD90_* table and
 * its consumer count for the problem): the kernel a device of arch >= 90
 * runs. */
static sim_tiles fa2_fwd90_table(int64_t d, int causal, int64_t max_seqlen_q)
{
    const int hd = fa2_fwd90_kernel_head_dim((int)d);
    const int nc = fa2_fwd90_consumers_for(hd, causal, (long long)max_seqlen_q);
    sim_tiles t;
    t.bm = 64 * nc;
    t.bn = FA2_FWD90_BLOCK_N(hd);
    t.warps = 4 * nc;
    return t;
}

/* The backward's tiling (flash-attn 2's sm80 choices: 8 warps; the key
 * block outer, so block_n is the resident K/V tile). */
static sim_tiles fa2_bwd_table(int64_t d)
{
    sim_tiles t;
    t.warps = 8;
    if (d <= 64) {
        t.bm = 128;
        t.bn = 128;
    } else if (d <= 128) {
        t.bm = 64;
        t.bn = 128;
    } else {
        t.bm = 64;
        t.bn = 64;
    }
    return t;
}

/* The kernel's tiling for problem p: the forward's from the table of the
 * kernel the profile's device runs (arch >= 90: the warp-specialised one);
 * the backward's from the CUDA backend when it is built, the table
 * otherwise. */
static sim_tiles fa2_default_tiles(fa2_pass pass, fa2_dtype dt, int64_t d, int arch,
                                   const fa2_problem *p)
{
    if (pass == FA2_PASS_FWD)
        return arch >= 90 ? fa2_fwd90_table(d, p->causal, p->max_seqlen_q) : fa2_fwd_table(d);
    fa2_tile_config cfg;
    if (fa2_tile_config_for(FA2_BACKEND_CUDA, pass, dt, (int)d, &cfg) == FA2_OK &&
        cfg.block_m > 0 && cfg.block_n > 0 && cfg.warps > 0) {
        sim_tiles t = {cfg.block_m, cfg.block_n, cfg.warps};
        return t;
    }
    return pass == FA2_PASS_FWD ? fa2_fwd_table(d) : fa2_bwd_table(d);
}

/* FlashAttention's rule (FA paper, Algorithm 1 line 1): Bc = ceil(M / 4d),
 * Br = min(Bc, d), M the SRAM size in elements. */
static sim_tiles fa1_tiles(int64_t m_elems, int64_t d)
{
    sim_tiles t;
    const int64_t bc = sim_min(fa2_ceil_div(m_elems, 4 * d), MAX_TILE);
    t.bn = (int)bc;
    t.bm = (int)sim_min(bc, d);
    t.warps = 4;
    return t;
}

static void override(sim_tiles *t, int bm, int bn, int warps)
{
    if (bm > 0)
        t->bm = bm;
    if (bn > 0)
        t->bn = bn;
    if (warps > 0)
        t->warps = warps;
}

static fa2_status check_tile(int v, const char *name, int max)
{
    if (v < 0 || v > max)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "%s is %d, expected 0 (the "
                        "default) or 1 .. %d", name, v, max);
    return FA2_OK;
}

static fa2_status check_cu(const int32_t *cu, const char *name, int64_t n,
                           int64_t *max_len)
{
    if (cu[0] != 0)
        return fa2_fail(FA2_ERR_SEQLENS, "%s[0] is %d, expected 0", name, (int)cu[0]);
    *max_len = 0;
    for (int64_t b = 0; b < n; b++) {
        const int64_t len = (int64_t)cu[b + 1] - cu[b];
        if (len < 0)
            return fa2_fail(FA2_ERR_SEQLENS, "%s is not non-decreasing: %s[%lld] = "
                            "%d > %s[%lld] = %d", name, name, (long long)b,
                            (int)cu[b], name, (long long)(b + 1), (int)cu[b + 1]);
        *max_len = sim_max(*max_len, len);
    }
    return FA2_OK;
}

/* FA2_SIM_DECODE: the checks of its own fields and its tiles (the decode
 * kernels': lib/fa2_kvcache.h), and the split count. */
static fa2_status decode_setup(const fa2_sim_args *a, const fa2_sim_device *dev,
                               sim_setup *S)
{
    const fa2_problem *p = &S->p;
    if (a->pass != FA2_SIM_PASS_FWD || a->cu_seqlens_q)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "the decode schedule is a "
                        "forward over fixed lengths (pass fwd, no cu_seqlens)");
    if (a->page_size < 0 || a->page_size % 16 != 0)
        return fa2_fail(FA2_ERR_BLOCK_TABLE, "page_size is %lld, expected 0 "
                        "(contiguous) or a multiple of 16", (long long)a->page_size);
    if (a->num_splits < 0 || a->num_splits > FA2_KVCACHE_MAX_SPLITS)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "num_splits is %d, expected 0 "
                        "(the library's choice) or 1 .. %d", a->num_splits,
                        FA2_KVCACHE_MAX_SPLITS);
    if (a->seqlen_new < 0 || a->seqlen_new > p->max_seqlen_k)
        return fa2_fail(FA2_ERR_CACHE_SEQLENS, "seqlen_new is %lld, expected 0 .. "
                        "seqlen_k (%lld): the appended tokens are part of the "
                        "keys", (long long)a->seqlen_new, (long long)p->max_seqlen_k);
    if (a->cache_capacity != 0 && (a->cache_capacity < p->max_seqlen_k ||
                                   a->cache_capacity >= MAX_SEQLEN))
        return fa2_fail(FA2_ERR_CACHE_SEQLENS, "cache_capacity is %lld, expected 0 "
                        "(= seqlen_k) or seqlen_k (%lld) .. 2^31 - 1",
                        (long long)a->cache_capacity, (long long)p->max_seqlen_k);
    sim_decode *D = &S->dec;
    /* the kernels' tiling (gpu/kvcache_params.h): 16 packed rows a warp */
    const int64_t rows = p->max_seqlen_q * S->group;
    S->fwd.bm = fa2_kvcache_block_m(rows);
    S->fwd.bn = FA2_KVC_BLOCK_N(FA2_KVC_KERNEL_HEAD_DIM(a->head_dim));
    S->fwd.warps = S->fwd.bm / 16;
    override(&S->fwd, a->block_m, a->block_n, a->warps);
    S->bwd = S->fwd;
    S->partition = FA2_SIM_SPLIT_Q;
    D->page_size = a->page_size;
    D->seqlen_new = a->seqlen_new;
    D->capacity = a->cache_capacity ? a->cache_capacity : p->max_seqlen_k;
    D->rows = p->max_seqlen_q * S->group;
    D->r_blocks = fa2_ceil_div(D->rows, S->fwd.bm);
    /* the kernels' launch (fa2_cuda_kvcache_splits): the GPU's split rule
     * over the SMs and the blocks one SM's shared memory holds */
    const int hd = FA2_KVC_KERNEL_HEAD_DIM(a->head_dim);
    const int64_t warps = S->fwd.bm / 16; /* 16 packed rows a warp */
    /* the key warps as fa2_cuda_kvcache_key_warps chooses them */
    D->key_warps = warps == 1 ? fa2_kvcache_gpu_key_warps(p->num_seqs, p->heads_kv,
                                                          p->max_seqlen_q, S->group,
                                                          D->capacity, D->page_size, hd,
                                                          dev->sms)
                              : 1;
    D->smem = FA2_KVC_SMEM_BYTES_BN(hd, warps, S->fwd.bn, D->key_warps);
    const int64_t per_sm = fa2_kvc_blocks_per_sm(dev->smem_per_sm, D->smem);
    D->splits = a->num_splits > 0
                    ? a->num_splits
                    : fa2_kvcache_gpu_splits(p->num_seqs, p->heads_kv, D->rows, D->capacity,
                                             S->fwd.bm, S->fwd.bn * D->key_warps, dev->sms,
                                             per_sm, hd);
    return FA2_OK;
}

fa2_status sim_setup_make(const fa2_sim_args *a, const fa2_sim_device *dev,
                          sim_setup *S)
{
    fa2_status st;
    if (!a)
        return fa2_fail(FA2_ERR_NULL_POINTER, "args is NULL");
    if ((st = fa2_sim_device_check(dev)) != FA2_OK)
        return st;
    if (a->algo != FA2_SIM_STANDARD && a->algo != FA2_SIM_FA1 &&
        a->algo != FA2_SIM_FA2 && a->algo != FA2_SIM_DECODE)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "algo is %d, expected "
                        "FA2_SIM_STANDARD, FA2_SIM_FA1, FA2_SIM_FA2 or "
                        "FA2_SIM_DECODE", (int)a->algo);
    if (a->pass != FA2_SIM_PASS_FWD && a->pass != FA2_SIM_PASS_BWD &&
        a->pass != FA2_SIM_PASS_FWD_BWD)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "pass is %d, expected "
                        "FA2_SIM_PASS_FWD, _BWD or _FWD_BWD", (int)a->pass);
    if (a->dtype != FA2_DTYPE_FP16 && a->dtype != FA2_DTYPE_BF16 &&
        a->dtype != FA2_DTYPE_FP32)
        return fa2_fail(FA2_ERR_DTYPE, "dtype is %d, expected FA2_DTYPE_FP16, "
                        "FA2_DTYPE_BF16 or FA2_DTYPE_FP32", (int)a->dtype);
    if (a->head_dim < 8 || a->head_dim > 256 || a->head_dim % 8)
        return fa2_fail(FA2_ERR_HEAD_DIM, "head_dim is %lld, expected a multiple "
                        "of 8 from 8 to 256", (long long)a->head_dim);
    if (a->heads_q < 1 || a->heads_kv < 1 || a->heads_q % a->heads_kv)
        return fa2_fail(FA2_ERR_SHAPE, "heads_q is %lld and heads_kv %lld: both "
                        "must be >= 1 and heads_q a multiple of heads_kv",
                        (long long)a->heads_q, (long long)a->heads_kv);
    if (a->heads_q > (1 << 20))
        return fa2_fail(FA2_ERR_SHAPE, "heads_q is %lld, expected at most 2^20",
                        (long long)a->heads_q);
    if (a->window_left < -1 || a->window_right < -1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "window is (%lld, %lld), "
                        "expected values >= -1 (-1: unbounded)",
                        (long long)a->window_left, (long long)a->window_right);
    if ((st = check_tile(a->block_m, "block_m", MAX_TILE)) ||
        (st = check_tile(a->block_n, "block_n", MAX_TILE)) ||
        (st = check_tile(a->bwd_block_m, "bwd_block_m", MAX_TILE)) ||
        (st = check_tile(a->bwd_block_n, "bwd_block_n", MAX_TILE)) ||
        (st = check_tile(a->warps, "warps", 32)) ||
        (st = check_tile(a->bwd_warps, "bwd_warps", 32)) ||
        (st = check_tile(a->regs_per_thread, "regs_per_thread", 255)))
        return st;
    if (!(a->softcap >= 0.0f && a->softcap < INFINITY))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "softcap is %g, expected 0 (off) "
                        "or a finite cap > 0", (double)a->softcap);
    if (!(a->dropout_p >= 0.0f && a->dropout_p < 1.0f))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "dropout_p is %g, expected a "
                        "probability in [0, 1)", (double)a->dropout_p);
    if ((a->alibi != 0 && a->alibi != 1) || (a->sinks != 0 && a->sinks != 1))
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "alibi and sinks are %d and %d, "
                        "expected 0 or 1", a->alibi, a->sinks);
    if (a->deterministic != 0 && a->deterministic != 1)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "deterministic is %d, expected "
                        "0 or 1", a->deterministic);
    if (a->sram_bytes < 0)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "sram_bytes is %lld, expected "
                        ">= 0 (0: the device's smem_per_block)",
                        (long long)a->sram_bytes);
    if (a->partition != FA2_SIM_PARTITION_DEFAULT && a->partition != FA2_SIM_SPLIT_Q &&
        a->partition != FA2_SIM_SPLIT_K)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "partition is %d, expected "
                        "FA2_SIM_PARTITION_DEFAULT, FA2_SIM_SPLIT_Q or "
                        "FA2_SIM_SPLIT_K", (int)a->partition);
    if (a->order != FA2_SIM_ORDER_HEAD_MAJOR && a->order != FA2_SIM_ORDER_BLOCK_MAJOR)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "order is %d, expected "
                        "FA2_SIM_ORDER_HEAD_MAJOR or FA2_SIM_ORDER_BLOCK_MAJOR",
                        (int)a->order);

    memset(S, 0, sizeof *S);
    fa2_problem *p = &S->p;
    p->dtype = a->dtype;
    p->heads_q = a->heads_q;
    p->heads_kv = a->heads_kv;
    p->head_dim = a->head_dim;
    p->scale = 1.0f / sqrtf((float)a->head_dim);
    p->scale_log2 = p->scale * 1.4426950408889634f;
    p->causal = a->causal != 0;
    p->window_left = a->window_left;
    p->window_right = a->window_right;
    if (!a->cu_seqlens_q != !a->cu_seqlens_k)
        return fa2_fail(FA2_ERR_NULL_POINTER, "cu_seqlens_%s is NULL but "
                        "cu_seqlens_%s is not: give both or neither",
                        a->cu_seqlens_q ? "k" : "q", a->cu_seqlens_q ? "q" : "k");
    if (a->cu_seqlens_q) {
        if (a->num_seqs < 1 || a->num_seqs > (1 << 24))
            return fa2_fail(FA2_ERR_SEQLENS, "num_seqs is %lld, expected 1 .. 2^24 "
                            "with cu_seqlens", (long long)a->num_seqs);
        if (a->batch != 1)
            return fa2_fail(FA2_ERR_SHAPE, "batch is %lld with cu_seqlens, "
                            "expected 1 (the sequences are packed)",
                            (long long)a->batch);
        if ((st = check_cu(a->cu_seqlens_q, "cu_seqlens_q", a->num_seqs,
                           &p->max_seqlen_q)) ||
            (st = check_cu(a->cu_seqlens_k, "cu_seqlens_k", a->num_seqs,
                           &p->max_seqlen_k)))
            return st;
        p->num_seqs = a->num_seqs;
        p->cu_seqlens_q = a->cu_seqlens_q;
        p->cu_seqlens_k = a->cu_seqlens_k;
    } else {
        if (a->batch < 1 || a->batch > (1 << 24))
            return fa2_fail(FA2_ERR_SHAPE, "batch is %lld, expected 1 .. 2^24",
                            (long long)a->batch);
        if (a->seqlen_q < 1 || a->seqlen_k < 1 || a->seqlen_q >= MAX_SEQLEN ||
            a->seqlen_k >= MAX_SEQLEN)
            return fa2_fail(FA2_ERR_SHAPE, "seqlen_q is %lld and seqlen_k %lld, "
                            "expected 1 .. 2^31 - 1", (long long)a->seqlen_q,
                            (long long)a->seqlen_k);
        p->num_seqs = a->batch;
        p->max_seqlen_q = a->seqlen_q;
        p->max_seqlen_k = a->seqlen_k;
    }
    if ((double)p->num_seqs * (double)p->heads_q > (double)((int64_t)1 << 40))
        return fa2_fail(FA2_ERR_SHAPE, "batch x heads_q is above 2^40");

    S->algo = a->algo;
    S->pass = a->pass;
    S->es = (int64_t)fa2_dtype_size(a->dtype);
    S->E = a->head_dim * S->es;
    S->group = a->heads_q / a->heads_kv;
    S->order = a->order;
    S->regs_per_thread = a->regs_per_thread;
    S->det = a->algo == FA2_SIM_FA2 && a->deterministic;
    if (a->algo == FA2_SIM_FA2) {
        S->mods.softcap = a->softcap > 0.0f;
        S->mods.alibi = a->alibi;
        S->mods.sinks = a->sinks;
        S->mods.dropout = a->dropout_p > 0.0f;
    }
    const int64_t sram = a->sram_bytes > 0 ? a->sram_bytes : dev->smem_per_block;
    S->sram_elems = sim_max(1, sram / S->es);

    /* The largest FLOP count (standard's S over every pair) must fit int64
     * with room for the byte counters' sums. */
    double pairs = 0;
    for (int64_t b = 0; b < p->num_seqs; b++) {
        const fa2_seq s = fa2_problem_seq(p, b);
        pairs += (double)s.seqlen_q * (double)s.seqlen_k;
    }
    if (pairs * (double)p->heads_q * (double)(a->head_dim + 64) * 16.0 > 4.0e18)
        return fa2_fail(FA2_ERR_SHAPE, "the problem is too large to count in "
                        "64-bit integers (%.3g query-key pairs x %lld heads)",
                        pairs, (long long)p->heads_q);

    /* FA1's rule (and FA2's with M given) fits Q, K, V and O tiles in M: at
     * least one row of each, 4 d elements */
    if ((a->algo == FA2_SIM_FA1 || (a->algo == FA2_SIM_FA2 && a->sram_bytes > 0)) &&
        S->sram_elems < 4 * a->head_dim)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "sram_bytes is %lld: it holds "
                        "less than one row each of Q, K, V and O (4 x head_dim x "
                        "%lld bytes = %lld), so no tiling fits", (long long)sram,
                        (long long)S->es, (long long)(4 * a->head_dim * S->es));
    switch (a->algo) {
    case FA2_SIM_FA2:
        if (a->sram_bytes > 0) { /* tiles from M, like FA1's Bc */
            S->fwd = fa1_tiles(S->sram_elems, a->head_dim);
            S->fwd.bm = S->fwd.bn;
            S->bwd = S->fwd;
        } else {
            S->fwd = fa2_default_tiles(FA2_PASS_FWD, a->dtype, a->head_dim, dev->arch, p);
            S->bwd = fa2_default_tiles(FA2_PASS_BWD, a->dtype, a->head_dim, dev->arch, p);
        }
        override(&S->fwd, a->block_m, a->block_n, a->warps);
        override(&S->bwd, a->bwd_block_m, a->bwd_block_n, a->bwd_warps);
        S->partition = a->partition == FA2_SIM_SPLIT_K ? FA2_SIM_SPLIT_K
                                                       : FA2_SIM_SPLIT_Q;
        /* the warp-specialised forward: arch >= 90, the kernel's own
         * (split-Q) partitioning, tiles not derived from an SRAM size */
        S->fwd_ws = dev->arch >= 90 && a->sram_bytes <= 0 &&
                    S->partition == FA2_SIM_SPLIT_Q;
        break;
    case FA2_SIM_FA1:
        S->fwd = fa1_tiles(S->sram_elems, a->head_dim);
        override(&S->fwd, a->block_m, a->block_n, a->warps);
        S->bwd = S->fwd;
        S->partition = a->partition == FA2_SIM_SPLIT_Q ? FA2_SIM_SPLIT_Q
                                                       : FA2_SIM_SPLIT_K;
        break;
    case FA2_SIM_STANDARD:
        S->fwd.bm = S->fwd.bn = 128;
        S->fwd.warps = 4;
        override(&S->fwd, a->block_m, a->block_n, a->warps);
        S->bwd = S->fwd;
        S->partition = FA2_SIM_SPLIT_Q;
        break;
    case FA2_SIM_DECODE:
        if ((st = decode_setup(a, dev, S)) != FA2_OK)
            return st;
        break;
    }
    fa2_clear_error();
    return FA2_OK;
}

fa2_status fa2_sim_tiles(const fa2_sim_args *args, const fa2_sim_device *dev,
                         fa2_sim_pass pass, fa2_tile_config *out)
{
    sim_setup S;
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
    if (pass != FA2_SIM_PASS_FWD && pass != FA2_SIM_PASS_BWD)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "pass is %d, expected "
                        "FA2_SIM_PASS_FWD or FA2_SIM_PASS_BWD", (int)pass);
    fa2_status st = sim_setup_make(args, dev, &S);
    if (st != FA2_OK)
        return st;
    const sim_tiles *t = pass == FA2_SIM_PASS_FWD ? &S.fwd : &S.bwd;
    out->block_m = t->bm;
    out->block_n = t->bn;
    out->warps = t->warps;
    out->head_dim = (int)args->head_dim;
    return FA2_OK;
}

double sim_paper_flops(const sim_setup *S)
{
    const fa2_problem *p = &S->p;
    if (S->algo == FA2_SIM_DECODE) { /* 4 d Hq per visible pair, exactly */
        const fa2_mask m = fa2_mask_make(p->max_seqlen_q, p->max_seqlen_k, p->causal,
                                         p->window_left, p->window_right);
        double pairs = 0;
        for (int64_t i = 0; i < p->max_seqlen_q; i++) {
            int64_t lo, hi;
            fa2_visible_cols(&m, i, i + 1, &lo, &hi);
            pairs += (double)(hi - lo);
        }
        return 4.0 * pairs * (double)p->num_seqs * (double)p->head_dim *
               (double)p->heads_q;
    }
    double pairs = 0;
    for (int64_t b = 0; b < p->num_seqs; b++) {
        const fa2_seq s = fa2_problem_seq(p, b);
        pairs += (double)s.seqlen_q * (double)s.seqlen_k;
    }
    const double fwd = 4.0 * pairs * (double)p->head_dim * (double)p->heads_q *
                       (p->causal ? 0.5 : 1.0);
    double f = 0;
    if (S->pass & FA2_SIM_PASS_FWD)
        f += fwd;
    if (S->pass & FA2_SIM_PASS_BWD)
        f += 2.5 * fwd;
    return f;
}
