/* bwd_launch.cu — the host side of the CUDA backward: the checks only the
 * CUDA backend needs (device pointers, 16-byte alignment, the stream), the
 * workspace (the float32 dQ accumulator, D, the deterministic mode's
 * turn counters and the sinks' gradient shares, taken stream-ordered from
 * the device's memory pool and given back on the same stream), kernel
 * parameters from the validated problem, dispatch to the kernels of the
 * right head dim, the tiling query and the traffic counters.
 *
 * fa2_bwd_validate (lib/validate_bwd.c) has already checked shapes, dtypes,
 * strides, overlap and the scalars, the same way for every backend. */
#include "config.h"
#include "fa2_cuda.h"
#include "bwd_config.h"
#include "host_checks.h"
#include "bwd_params.h"

#include <cuda_runtime.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
typedef fa2_status (*bwd_launcher)(const fa2_bwd_params *, int, void *);
fa2_status fa2_cuda_bwd_hd64(const fa2_bwd_params *, int, void *);
fa2_status fa2_cuda_bwd_hd128(const fa2_bwd_params *, int, void *);
fa2_status fa2_cuda_bwd_hd256(const fa2_bwd_params *, int, void *);
}

static const bwd_launcher launchers[FA2_BWD_NUM_HEAD_DIMS] = {
    fa2_cuda_bwd_hd64, fa2_cuda_bwd_hd128, fa2_cuda_bwd_hd256};

/* ---- traffic counters -------------------------------------------------- */

#define FA2_BWD_TRAFFIC_COUNT (2 * (int)FA2_SIM_TENSOR_COUNT)

#ifdef FA2_TRAFFIC_COUNTERS
__device__ unsigned long long fa2_bwd_traffic_counters[FA2_BWD_TRAFFIC_COUNT];

static fa2_status bwd_traffic_pointer(unsigned long long **out)
{
    void *ptr = NULL;
    const cudaError_t err = cudaGetSymbolAddress(&ptr, fa2_bwd_traffic_counters);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "cannot find the backward's traffic "
                        "counters on the device: %s", cudaGetErrorString(err));
    }
    *out = (unsigned long long *)ptr;
    return FA2_OK;
}
#endif

extern "C" fa2_status fa2_cuda_bwd_traffic_reset(void)
{
#ifdef FA2_TRAFFIC_COUNTERS
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    const unsigned long long zero[FA2_BWD_TRAFFIC_COUNT] = {0};
    const cudaError_t err =
        cudaMemcpyToSymbol(fa2_bwd_traffic_counters, zero, sizeof zero);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "clearing the backward's traffic counters "
                        "failed: %s", cudaGetErrorString(err));
    }
    fa2_clear_error();
    return FA2_OK;
#else
    return fa2_fail(FA2_ERR_NOT_BUILT, "this fa2 counts no traffic; configure "
                    "with --enable-traffic-counters (and CUDA)");
#endif
}

extern "C" fa2_status fa2_cuda_bwd_traffic_read(fa2_bwd_traffic *out)
{
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
    memset(out, 0, sizeof *out);
#ifdef FA2_TRAFFIC_COUNTERS
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    unsigned long long c[FA2_BWD_TRAFFIC_COUNT];
    const cudaError_t err =
        cudaMemcpyFromSymbol(c, fa2_bwd_traffic_counters, sizeof c);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "reading the backward's traffic counters "
                        "failed: %s", cudaGetErrorString(err));
    }
    for (int i = 0; i < (int)FA2_SIM_TENSOR_COUNT; i++) {
        out->tensor_read[i] = c[i];
        out->tensor_written[i] = c[FA2_SIM_TENSOR_COUNT + i];
        out->read_bytes += c[i];
        out->written_bytes += c[FA2_SIM_TENSOR_COUNT + i];
    }
    fa2_clear_error();
    return FA2_OK;
#else
    return fa2_fail(FA2_ERR_NOT_BUILT, "this fa2 counts no traffic; configure "
                    "with --enable-traffic-counters (and CUDA)");
#endif
}

/* ---- the tiling -------------------------------------------------------- */

extern "C" fa2_status fa2_cuda_bwd_tile_config(fa2_dtype dtype, int head_dim,
                                               fa2_tile_config *out)
{
    if (dtype != FA2_DTYPE_FP16 && dtype != FA2_DTYPE_BF16)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the CUDA kernels take fp16 or bf16, "
                        "not %s", fa2_dtype_name(dtype));
    if (head_dim < 8 || head_dim > 256 || head_dim % 8 != 0)
        return fa2_fail(FA2_ERR_HEAD_DIM, "head_dim is %d, expected a multiple of "
                        "8 from 8 to 256", head_dim);
    const int hd = fa2_bwd_kernel_head_dim(head_dim);
    switch (hd) {
#define CFG(HD)                                                                \
    case HD:                                                                   \
        out->block_m = FA2_BWD_BLOCK_M(HD);                                    \
        out->block_n = FA2_BWD_BLOCK_N(HD);                                    \
        out->warps = FA2_BWD_WARPS(HD);                                        \
        break;
        CFG(64) CFG(128) CFG(256)
#undef CFG
    default:
        return fa2_fail(FA2_ERR_INTERNAL, "no backward kernel for head dim %d", hd);
    }
    out->head_dim = hd;
    fa2_clear_error();
    return FA2_OK;
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* ---- the workspace --------------------------------------------------------- */

/* float32 dQ accumulator [seqs][heads_q][rows][d] (deterministic mode: two
 * of them, one per chain of fa2_bwd_dq_turn, the second acc_bytes after
 * the first), D [seqs][heads_q][rows], two turn words per (sequence, query
 * head, query block), and one float32 share of dsinks per (sequence, query
 * head, query block); each part 256-byte aligned. The shares are reserved
 * with or without sinks (a few bytes per query block), so that a workspace
 * sized by fa2_cuda_bwd_workspace_size for a call without sinks serves the
 * same call with them (python/fa2 sizes it before setting the modifiers).
 * *turn_bytes: the turn words' part (the shares follow it). */
static void workspace_layout(const fa2_bwd_args *a, const fa2_problem *p,
                             int64_t m_blocks, size_t *acc_bytes, size_t *d_bytes,
                             size_t *turn_bytes, size_t *total)
{
    const size_t rows = (size_t)a->q.shape[1];
    const size_t slices = (size_t)a->q.shape[0] * (size_t)p->heads_q;
    const size_t accs = a->deterministic ? 2 : 1;
    const size_t blocks = (size_t)p->num_seqs * (size_t)p->heads_q * (size_t)m_blocks;
    *acc_bytes = round_up(slices * rows * (size_t)p->head_dim * 4, 256);
    *d_bytes = round_up(slices * rows * 4, 256);
    *turn_bytes = round_up(blocks * 2 * 4, 256);
    const size_t sink_bytes = round_up(blocks * 4, 256);
    *total = accs * *acc_bytes + *d_bytes + *turn_bytes + sink_bytes;
    if (*total == 0)
        *total = 256;
}

extern "C" fa2_status fa2_cuda_bwd_workspace_bytes(const fa2_bwd_args *a,
                                                   const fa2_problem *p, size_t *bytes)
{
    fa2_tile_config cfg;
    fa2_status st = fa2_cuda_bwd_tile_config(p->dtype, (int)p->head_dim, &cfg);
    if (st != FA2_OK)
        return st;
    size_t acc_bytes, d_bytes, turn_bytes;
    workspace_layout(a, p, fa2_num_blocks(p->max_seqlen_q, cfg.block_m), &acc_bytes,
                     &d_bytes, &turn_bytes, bytes);
    return FA2_OK;
}

/* the caller's workspace: on this device, aligned, large enough, apart
 * from every tensor (the kernels write all of it) */
static fa2_status check_workspace(const fa2_bwd_args *a, size_t need, int dev)
{
    fa2_status st = fa2_gpu_check_device_pointer(a->workspace, "workspace", dev);
    if (st != FA2_OK)
        return st;
    if ((uintptr_t)a->workspace % 256 != 0)
        return fa2_fail(FA2_ERR_ALIGNMENT, "workspace (%p) is not 256-byte aligned",
                        a->workspace);
    if (a->workspace_bytes < need)
        return fa2_fail(FA2_ERR_SHAPE, "workspace_bytes is %zu; this backward needs "
                        "%zu (fa2_cuda_bwd_workspace_size)", a->workspace_bytes, need);
    fa2_tensor w;
    memset(&w, 0, sizeof w);
    w.data = a->workspace;
    w.dtype = FA2_DTYPE_FP32; /* need is a multiple of 256: whole floats */
    w.shape[0] = (int64_t)(need / 4);
    w.stride[0] = 1;
    const fa2_tensor *tensors[9] = {&a->q, &a->k, &a->v, &a->o, &a->dout,
                                    &a->dq, &a->dk, &a->dv, &a->lse};
    static const char *const names[9] = {"q", "k", "v", "o", "dout",
                                         "dq", "dk", "dv", "lse"};
    for (int i = 0; i < 9; i++)
        if (fa2_tensor_spans_overlap(&w, 1, tensors[i], i == 8 ? 3 : 4))
            return fa2_fail(FA2_ERR_OVERLAP, "workspace overlaps %s: the backward "
                            "writes all of its workspace", names[i]);
    return FA2_OK;
}

/* ---- the backward ---------------------------------------------------------- */

extern "C" fa2_status fa2_cuda_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    if (p->dtype != FA2_DTYPE_FP16 && p->dtype != FA2_DTYPE_BF16)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "q.dtype is %s; the CUDA kernels take "
                        "fp16 or bf16 (the CPU backends take fp32)",
                        fa2_dtype_name(p->dtype));
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "cudaGetDevice failed: %s",
                        cudaGetErrorString(err));
    }
    const fa2_tensor *tensors[8] = {&a->q, &a->k, &a->v, &a->o,
                                    &a->dout, &a->dq, &a->dk, &a->dv};
    static const char *const names[8] = {"q", "k", "v", "o", "dout", "dq", "dk", "dv"};
    for (int i = 0; i < 8; i++)
        if ((st = fa2_gpu_check_device_pointer(tensors[i]->data, names[i], dev)) ||
            (st = fa2_gpu_check_alignment(tensors[i], names[i])))
            return st;
    if ((st = fa2_gpu_check_device_pointer(a->lse.data, "lse", dev)))
        return st;
    if ((uintptr_t)a->lse.data % 4 != 0)
        return fa2_fail(FA2_ERR_ALIGNMENT, "lse.data (%p) is not 4-byte aligned",
                        a->lse.data);
    if (p->cu_seqlens_q) {
        if ((st = fa2_gpu_check_device_pointer(p->cu_seqlens_q, "cu_seqlens_q", dev)) ||
            (st = fa2_gpu_check_device_pointer(p->cu_seqlens_k, "cu_seqlens_k", dev)))
            return st;
        if ((uintptr_t)p->cu_seqlens_q % 4 != 0 ||
            (uintptr_t)p->cu_seqlens_k % 4 != 0)
            return fa2_fail(FA2_ERR_ALIGNMENT, "cu_seqlens_q/k (%p, %p) are not "
                            "4-byte aligned", (const void *)p->cu_seqlens_q,
                            (const void *)p->cu_seqlens_k);
    }
    if ((st = fa2_gpu_check_stream(a->stream, dev)))
        return st;
    /* the modifiers' arrays live on the device too */
    const void *mod_ptrs[3] = {p->alibi_slopes, p->sinks, a->dsinks};
    static const char *const mod_names[3] = {"alibi_slopes", "sinks", "dsinks"};
    for (int i = 0; i < 3; i++)
        if (mod_ptrs[i] &&
            ((st = fa2_gpu_check_device_pointer(mod_ptrs[i], mod_names[i], dev))))
            return st;
    if (((uintptr_t)p->alibi_slopes | (uintptr_t)p->sinks | (uintptr_t)a->dsinks) % 4 != 0)
        return fa2_fail(FA2_ERR_ALIGNMENT, "alibi_slopes/sinks/dsinks (%p, %p, %p) "
                        "are not 4-byte aligned", (const void *)p->alibi_slopes,
                        (const void *)p->sinks, (const void *)a->dsinks);
    if (p->max_seqlen_q > INT_MAX - 1024 || p->max_seqlen_k > INT_MAX - 1024)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "seqlen_q/seqlen_k are %lld/%lld; "
                        "the CUDA kernels take sequences of up to 2^31 - 1025 "
                        "rows", (long long)p->max_seqlen_q,
                        (long long)p->max_seqlen_k);

    fa2_tile_config cfg;
    if ((st = fa2_cuda_bwd_tile_config(p->dtype, (int)p->head_dim, &cfg)))
        return st;
    const int64_t m_blocks = fa2_num_blocks(p->max_seqlen_q, cfg.block_m);
    const int64_t n_blocks = fa2_num_blocks(p->max_seqlen_k, cfg.block_n);
    const int64_t rows_grid = m_blocks * p->heads_q * p->num_seqs;
    const int64_t main_grid = n_blocks * p->heads_kv * p->num_seqs;
    if (rows_grid > INT_MAX || main_grid > INT_MAX || p->num_seqs > INT_MAX ||
        p->heads_q > INT_MAX)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "%lld query blocks x %lld heads x "
                        "%lld sequences is more thread blocks than one launch "
                        "takes (2^31 - 1)", (long long)m_blocks,
                        (long long)p->heads_q, (long long)p->num_seqs);
    if (rows_grid == 0 && main_grid == 0) {
        /* no rows and no keys: the sinks' gradient is 0 */
        if (a->dsinks &&
            (err = cudaMemsetAsync(a->dsinks, 0, sizeof(float) * (size_t)p->heads_q,
                                   (cudaStream_t)a->stream)) != cudaSuccess) {
            (void)cudaGetLastError();
            return fa2_fail(FA2_ERR_CUDA, "clearing dsinks failed: %s",
                            cudaGetErrorString(err));
        }
        fa2_clear_error();
        return FA2_OK;
    }

    /* workspace: dQ accumulator, D, turn counters; the caller's, or the
     * stream-ordered pool's */
    const size_t rows = (size_t)a->q.shape[1];
    size_t acc_bytes, d_bytes, turn_bytes, total;
    workspace_layout(a, p, m_blocks, &acc_bytes, &d_bytes, &turn_bytes, &total);
    cudaStream_t stream = (cudaStream_t)a->stream;
    void *ws = a->workspace;
    const bool own_ws = ws == NULL;
    if (!own_ws && (st = check_workspace(a, total, dev)))
        return st;
    if (own_ws) {
        err = cudaMallocAsync(&ws, total, stream);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the CUDA backward could not "
                            "allocate its %zu-byte workspace (float32 dQ "
                            "accumulator, D): %s", total, cudaGetErrorString(err));
        }
    }

    fa2_bwd_params k;
    memset(&k, 0, sizeof k);
    k.q = a->q.data;
    k.k = a->k.data;
    k.v = a->v.data;
    k.o = a->o.data;
    k.dout = a->dout.data;
    k.lse = (const float *)a->lse.data;
    k.dq = a->dq.data;
    k.dk = a->dk.data;
    k.dv = a->dv.data;
#define STR(T, X)                                                              \
    k.X##_sb = a->T.stride[0], k.X##_sr = a->T.stride[1], k.X##_sh = a->T.stride[2]
    STR(q, q);
    STR(k, k);
    STR(v, v);
    STR(o, o);
    STR(dout, do);
    STR(dq, dq);
    STR(dk, dk);
    STR(dv, dv);
#undef STR
    k.lse_sb = a->lse.stride[0];
    k.lse_sh = a->lse.stride[1];
    k.lse_sr = a->lse.stride[2];
    const size_t accs_bytes = (a->deterministic ? 2 : 1) * acc_bytes;
    k.dq_acc = (float *)ws;
    k.acc2_off = a->deterministic ? (int64_t)(acc_bytes / 4) : 0;
    k.dsum = (float *)((char *)ws + accs_bytes);
    k.turn = (int *)((char *)ws + accs_bytes + d_bytes);
    k.dsink_part = a->sinks ? (float *)((char *)ws + accs_bytes + d_bytes + turn_bytes)
                            : NULL;
    k.rows = (int64_t)rows;
    k.cu_seqlens_q = p->cu_seqlens_q;
    k.cu_seqlens_k = p->cu_seqlens_k;
    k.seqlen_q = p->max_seqlen_q;
    k.seqlen_k = p->max_seqlen_k;
    k.num_seqs = (int)p->num_seqs;
    k.heads_q = (int)p->heads_q;
    k.heads_kv = (int)p->heads_kv;
    k.head_dim = (int)p->head_dim;
    k.m_blocks = (int)m_blocks;
    k.n_blocks = (int)n_blocks;
    k.scale = p->scale;
    k.scale_log2 = p->scale_log2;
    k.causal = p->causal;
    k.window_left = p->window_left;
    k.window_right = p->window_right;
    k.deterministic = a->deterministic;
    /* FA2_CUDA_BWD_ORDER=rotate: the deterministic mode's rotated walk in
     * the default mode too (an experiment: it spreads the float32
     * reductions of a head's key blocks over different dQ blocks);
     * FA2_CUDA_BWD90_DQ=atomic|bulk: the sm_90a kernel's dQ path. Per-thread
     * reductions are the default: on the H200 the copy engine's bulk
     * reduction measured 4-7% slower over bench/bwd_det.py's shapes
     * (bench/NOTES-bwd.md, 2026-12-02); both give the same bits in
     * deterministic mode */
    const char *order = getenv("FA2_CUDA_BWD_ORDER");
    k.rotate = a->deterministic || (order && strcmp(order, "rotate") == 0);
    const char *dqp = getenv("FA2_CUDA_BWD90_DQ");
    k.dq_bulk = dqp && strcmp(dqp, "bulk") == 0;
    k.block_offset = 0;
    k.traffic = NULL;
    /* the modifiers (validated with the forward's arguments) */
    k.softcap = p->softcap;
    k.alibi_slopes = p->alibi_slopes;
    k.alibi_stride = p->alibi_stride;
    k.sinks = p->sinks;
    k.dsinks = a->dsinks;
    k.dropout = p->dropout;
    /* a sink alone changes only LSE (and dsinks, the preprocess's): the
     * plain kernel's P from LSE is then the right one */
    k.logits = p->bwd_logits;
    k.mods = p->bwd_logits || p->dropout.enabled;
#ifdef FA2_TRAFFIC_COUNTERS
    if ((st = bwd_traffic_pointer(&k.traffic))) {
        if (own_ws)
            cudaFreeAsync(ws, stream);
        return st;
    }
#endif
    st = launchers[fa2_bwd_kernel_slot(cfg.head_dim)](&k, p->dtype == FA2_DTYPE_BF16,
                                                      a->stream);
    err = own_ws ? cudaFreeAsync(ws, stream) : cudaSuccess;
    if (st == FA2_OK && err != cudaSuccess) {
        (void)cudaGetLastError();
        st = fa2_fail(FA2_ERR_CUDA, "returning the backward's workspace failed: %s",
                      cudaGetErrorString(err));
    }
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}
