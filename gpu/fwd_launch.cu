/* fwd_launch.cu — the host side of the CUDA forward: the checks only the
 * CUDA backend needs (device pointers, 16-byte alignment, the stream),
 * kernel parameters from the validated problem, dispatch to the kernel of
 * the right head dim, the tiling query, and the traffic counters.
 *
 * fa2_fwd_validate (lib/validate.c) has already checked shapes, dtypes,
 * strides, overlap and the scalars, the same way for every backend. */
#include "config.h"
#include "fa2_cuda.h"
#include "fwd_config.h"
#include "fwd_params.h"
#include "host_checks.h"

#include <cuda_runtime.h>
#include <limits.h>
#include <string.h>

/* one launcher per head dim, gpu/fwd_hdNN.cu */
extern "C" {
typedef fa2_status (*fwd_launcher)(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd32(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd64(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd96(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd128(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd160(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd192(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd224(const fa2_fwd_params *, int, void *);
fa2_status fa2_cuda_fwd_hd256(const fa2_fwd_params *, int, void *);
}

/* the sm_90 kernel, gpu/fwd_sm90_launch.cu */
extern "C" int fa2_cuda_fwd_sm90_chosen(int head_dim);
extern "C" int fa2_cuda_fwd90_consumers(int head_dim, int causal, long long max_seqlen_q);
extern "C" fa2_status fa2_cuda_fwd_sm90(const fa2_fwd_params *k,
                                        const fa2_fwd_args *a, int head_dim);

static const fwd_launcher launchers[FA2_FWD_NUM_HEAD_DIMS] = {
    fa2_cuda_fwd_hd32,  fa2_cuda_fwd_hd64,  fa2_cuda_fwd_hd96,
    fa2_cuda_fwd_hd128, fa2_cuda_fwd_hd160, fa2_cuda_fwd_hd192,
    fa2_cuda_fwd_hd224, fa2_cuda_fwd_hd256,
};

/* ---- traffic counters -------------------------------------------------- */

#ifdef FA2_TRAFFIC_COUNTERS
__device__ unsigned long long fa2_traffic_counters[FA2_TRAFFIC_COUNT];

/* the forward's counters, also counted into by the KV-cache kernels */
fa2_status fa2_cuda_traffic_pointer(unsigned long long **out)
{
    void *ptr = NULL;
    const cudaError_t err = cudaGetSymbolAddress(&ptr, fa2_traffic_counters);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "cannot find the traffic counters on the "
                        "device: %s", cudaGetErrorString(err));
    }
    *out = (unsigned long long *)ptr;
    return FA2_OK;
}
#endif

extern "C" fa2_status fa2_cuda_traffic_reset(void)
{
#ifdef FA2_TRAFFIC_COUNTERS
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    const unsigned long long zero[FA2_TRAFFIC_COUNT] = {0};
    const cudaError_t err =
        cudaMemcpyToSymbol(fa2_traffic_counters, zero, sizeof zero);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "clearing the traffic counters failed: %s",
                        cudaGetErrorString(err));
    }
    fa2_clear_error();
    return FA2_OK;
#else
    return fa2_fail(FA2_ERR_NOT_BUILT, "this fa2 counts no traffic; configure "
                    "with --enable-traffic-counters (and CUDA)");
#endif
}

extern "C" fa2_status fa2_cuda_traffic_read(fa2_traffic *out)
{
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
#ifdef FA2_TRAFFIC_COUNTERS
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    unsigned long long c[FA2_TRAFFIC_COUNT];
    const cudaError_t err =
        cudaMemcpyFromSymbol(c, fa2_traffic_counters, sizeof c);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "reading the traffic counters failed: %s",
                        cudaGetErrorString(err));
    }
    out->q_bytes = c[FA2_TRAFFIC_Q];
    out->k_bytes = c[FA2_TRAFFIC_K];
    out->v_bytes = c[FA2_TRAFFIC_V];
    out->o_bytes = c[FA2_TRAFFIC_O];
    out->lse_bytes = c[FA2_TRAFFIC_LSE];
    out->k_new_bytes = c[FA2_TRAFFIC_K_NEW];
    out->v_new_bytes = c[FA2_TRAFFIC_V_NEW];
    out->k_cache_written_bytes = c[FA2_TRAFFIC_K_CACHE_W];
    out->v_cache_written_bytes = c[FA2_TRAFFIC_V_CACHE_W];
    out->o_partial_written_bytes = c[FA2_TRAFFIC_O_PART_W];
    out->lse_partial_written_bytes = c[FA2_TRAFFIC_LSE_PART_W];
    out->o_partial_read_bytes = c[FA2_TRAFFIC_O_PART_R];
    out->lse_partial_read_bytes = c[FA2_TRAFFIC_LSE_PART_R];
    out->read_bytes = out->q_bytes + out->k_bytes + out->v_bytes + out->k_new_bytes +
                      out->v_new_bytes + out->o_partial_read_bytes +
                      out->lse_partial_read_bytes;
    out->written_bytes = out->o_bytes + out->lse_bytes + out->k_cache_written_bytes +
                         out->v_cache_written_bytes + out->o_partial_written_bytes +
                         out->lse_partial_written_bytes;
    fa2_clear_error();
    return FA2_OK;
#else
    memset(out, 0, sizeof *out);
    return fa2_fail(FA2_ERR_NOT_BUILT, "this fa2 counts no traffic; configure "
                    "with --enable-traffic-counters (and CUDA)");
#endif
}

/* ---- the tiling -------------------------------------------------------- */

/* The forward's tiles for a problem that is causal or not with at most
 * max_seqlen_q query rows (the sm_90 kernel's consumer count depends on
 * both at head dim 64: gpu/fwd_config.h fa2_fwd90_consumers_for). */
static fa2_status fwd_tile(fa2_dtype dtype, int head_dim, int causal,
                           long long max_seqlen_q, fa2_tile_config *out)
{
    if (dtype != FA2_DTYPE_FP16 && dtype != FA2_DTYPE_BF16)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the CUDA kernels take fp16 or bf16, "
                        "not %s", fa2_dtype_name(dtype));
    if (head_dim >= 8 && head_dim <= 256 && head_dim % 8 == 0 &&
        fa2_cuda_fwd_sm90_chosen(head_dim)) {
        /* the warp-specialised kernel, gpu/fwd_kernel_sm90.cuh */
        const int hd90 = fa2_fwd90_kernel_head_dim(head_dim);
        const int nc = fa2_cuda_fwd90_consumers(head_dim, causal, max_seqlen_q);
        out->block_m = 64 * nc;
        out->block_n = hd90 == 64    ? FA2_FWD90_BLOCK_N(64)
                       : hd90 == 128 ? FA2_FWD90_BLOCK_N(128)
                                     : FA2_FWD90_BLOCK_N(256);
        out->warps = 4 * nc; /* consumer warps; one producer warpgroup besides */
        out->head_dim = hd90;
        fa2_clear_error();
        return FA2_OK;
    }
    const int hd = fa2_fwd_kernel_head_dim(head_dim);
    switch (hd) {
#define CFG(HD)                                                                \
    case HD:                                                                   \
        out->block_m = FA2_FWD_BLOCK_M(HD);                                    \
        out->block_n = FA2_FWD_BLOCK_N(HD);                                    \
        out->warps = FA2_FWD_WARPS(HD);                                        \
        break;
        CFG(32) CFG(64) CFG(96) CFG(128) CFG(160) CFG(192) CFG(224) CFG(256)
#undef CFG
    default:
        return fa2_fail(FA2_ERR_HEAD_DIM, "head_dim is %d, expected a multiple of "
                        "8 from 8 to 256", head_dim);
    }
    out->head_dim = hd;
    fa2_clear_error();
    return FA2_OK;
}

/* The tiling by pass, dtype and head dim alone (fa2_tile_config_for): the
 * forward's for a problem without a mask, which is also every long one's. */
extern "C" fa2_status fa2_cuda_tile_config(fa2_pass pass, fa2_dtype dtype,
                                           int head_dim, fa2_tile_config *out)
{
    if (pass == FA2_PASS_BWD) /* the backward's table, gpu/bwd_launch.cu */
        return fa2_cuda_bwd_tile_config(dtype, head_dim, out);
    if (pass != FA2_PASS_FWD)
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "pass is %d, expected "
                        "FA2_PASS_FWD or FA2_PASS_BWD", (int)pass);
    return fwd_tile(dtype, head_dim, 0, LLONG_MAX, out);
}

/* The forward's tiling for this validated problem: what fa2_cuda_fwd runs
 * (fa2_fwd_tile_config). */
extern "C" fa2_status fa2_cuda_fwd_tile_config(const fa2_problem *p, fa2_tile_config *out)
{
    return fwd_tile(p->dtype, (int)p->head_dim, p->causal, (long long)p->max_seqlen_q, out);
}

/* ---- the forward -------------------------------------------------------- */

extern "C" fa2_status fa2_cuda_fwd(const fa2_fwd_args *a, const fa2_problem *p)
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

    const fa2_tensor *tensors[4] = {&a->q, &a->k, &a->v, &a->o};
    static const char *const names[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++)
        if ((st = fa2_gpu_check_device_pointer(tensors[i]->data, names[i], dev)) ||
            (st = fa2_gpu_check_alignment(tensors[i], names[i])))
            return st;
    if (a->lse.data) {
        if ((st = fa2_gpu_check_device_pointer(a->lse.data, "lse", dev)))
            return st;
        if ((uintptr_t)a->lse.data % 4 != 0)
            return fa2_fail(FA2_ERR_ALIGNMENT, "lse.data (%p) is not 4-byte "
                            "aligned", a->lse.data);
    }
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
    const void *mod_ptrs[4] = {p->alibi_slopes, p->sinks, p->dropout_mask, NULL};
    static const char *const mod_names[3] = {"alibi_slopes", "sinks", "dropout_mask"};
    for (int i = 0; i < 3; i++)
        if (mod_ptrs[i] &&
            ((st = fa2_gpu_check_device_pointer(mod_ptrs[i], mod_names[i], dev))))
            return st;
    if (((uintptr_t)p->alibi_slopes | (uintptr_t)p->sinks) % 4 != 0)
        return fa2_fail(FA2_ERR_ALIGNMENT, "alibi_slopes/sinks (%p, %p) are not "
                        "4-byte aligned", (const void *)p->alibi_slopes,
                        (const void *)p->sinks);

    /* the kernel keeps key and query positions of one sequence in int32 */
    if (p->max_seqlen_q > INT_MAX - 1024 || p->max_seqlen_k > INT_MAX - 1024)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "seqlen_q/seqlen_k are %lld/%lld; "
                        "the CUDA kernel takes sequences of up to 2^31 - 1025 "
                        "rows", (long long)p->max_seqlen_q,
                        (long long)p->max_seqlen_k);

    fa2_tile_config cfg;
    if ((st = fa2_cuda_fwd_tile_config(p, &cfg)))
        return st;
    const int64_t m_blocks = fa2_num_blocks(p->max_seqlen_q, cfg.block_m);
    const int64_t grid = m_blocks * p->heads_q * p->num_seqs;
    if (grid > INT_MAX || p->heads_q > INT_MAX || p->num_seqs > INT_MAX)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "%lld query blocks x %lld heads x "
                        "%lld sequences is more thread blocks than one launch "
                        "takes (2^31 - 1)", (long long)m_blocks,
                        (long long)p->heads_q, (long long)p->num_seqs);
    if (grid == 0) {
        fa2_clear_error();
        return FA2_OK;
    }

    fa2_fwd_params k;
    memset(&k, 0, sizeof k);
    k.q = a->q.data;
    k.k = a->k.data;
    k.v = a->v.data;
    k.o = a->o.data;
    k.lse = (float *)a->lse.data;
    k.q_sb = a->q.stride[0], k.q_sr = a->q.stride[1], k.q_sh = a->q.stride[2];
    k.k_sb = a->k.stride[0], k.k_sr = a->k.stride[1], k.k_sh = a->k.stride[2];
    k.v_sb = a->v.stride[0], k.v_sr = a->v.stride[1], k.v_sh = a->v.stride[2];
    k.o_sb = a->o.stride[0], k.o_sr = a->o.stride[1], k.o_sh = a->o.stride[2];
    if (a->lse.data) {
        k.lse_sb = a->lse.stride[0];
        k.lse_sh = a->lse.stride[1];
        k.lse_sr = a->lse.stride[2];
    }
    k.cu_seqlens_q = p->cu_seqlens_q;
    k.cu_seqlens_k = p->cu_seqlens_k;
    k.seqlen_q = p->max_seqlen_q;
    k.seqlen_k = p->max_seqlen_k;
    k.num_seqs = (int)p->num_seqs;
    k.heads_q = (int)p->heads_q;
    k.heads_kv = (int)p->heads_kv;
    k.head_dim = (int)p->head_dim;
    k.m_blocks = (int)m_blocks;
    k.scale = p->scale;
    k.scale_log2 = p->scale_log2;
    k.causal = p->causal;
    k.window_left = p->window_left;
    k.window_right = p->window_right;
    k.traffic = NULL;
    k.tile_counter = NULL; /* the sm_90 launch sets its own */
    k.tile_pairs = 0;
    k.softcap = p->softcap;
    k.alibi_slopes = p->alibi_slopes;
    k.alibi_stride = p->alibi_stride;
    k.sinks = p->sinks;
    k.dropout = p->dropout;
    k.dropout_mask = p->dropout_mask;
    k.mods = p->mods || p->dropout.enabled || p->dropout_mask;
#ifdef FA2_TRAFFIC_COUNTERS
    if ((st = fa2_cuda_traffic_pointer(&k.traffic)))
        return st;
#endif
    if (k.dropout_mask) { /* either kernel marks the kept visible elements */
        err = cudaMemsetAsync(
            k.dropout_mask, 0, (size_t)k.num_seqs * k.heads_q * k.seqlen_q * k.seqlen_k,
            (cudaStream_t)a->stream);
        if (err != cudaSuccess)
            return fa2_fail(FA2_ERR_CUDA, "clearing dropout_mask failed: %s",
                            cudaGetErrorString(err));
    }
    if (fa2_cuda_fwd_sm90_chosen((int)p->head_dim)) {
        st = fa2_cuda_fwd_sm90(&k, a, (int)p->head_dim);
        if (st != FA2_ERR_UNSUPPORTED) {
            if (st == FA2_OK)
                fa2_clear_error();
            return st;
        }
        /* the copy engine cannot describe these strides: the mma.sync
         * kernel takes them, with its own tiling */
        k.m_blocks = (int)fa2_num_blocks(p->max_seqlen_q, FA2_FWD_BLOCK_M(64));
        cfg.head_dim = fa2_fwd_kernel_head_dim((int)p->head_dim);
    }
    const int slot = cfg.head_dim / 32 - 1;
    if (slot < 0 || slot >= FA2_FWD_NUM_HEAD_DIMS)
        return fa2_fail(FA2_ERR_INTERNAL, "no forward kernel for head dim %d",
                        cfg.head_dim);
    st = launchers[slot](&k, p->dtype == FA2_DTYPE_BF16, a->stream);
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}
