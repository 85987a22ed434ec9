/* kvcache_launch.cu — the host side of the CUDA forward over a KV cache:
 * the checks only CUDA needs (device pointers, alignment, the stream, int32
 * positions), the split count, the workspace of the split-KV partials, and
 * the launches: append, main, combine (gpu/kvcache_kernel.cuh).
 *
 * lib/validate_kvcache.c has checked shapes, dtypes, strides, overlap and
 * the scalars. The cache lengths and the block table live on the device
 * and cannot be read here without a synchronisation; the kernels read a
 * block-table entry outside [0, num_pages) as a page of zeros and clamp a
 * length to [0, capacity], so a bad table reads no memory outside the
 * cache (the answer for such a sequence is then not the attention the
 * caller meant: fa2_fwd_kvcache_check on host copies says why). */
#include "config.h"
#include "fa2_cuda.h"
#include "fa2_kvcache.h"
#include "fwd_params.h" /* the traffic counters' indices */
#include "host_checks.h"
#include "kvcache_params.h"

#include <cuda_runtime.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
typedef fa2_status (*kvcache_launcher)(const fa2_kvcache_params *, int, int, void *);
fa2_status fa2_cuda_kvcache_hd64(const fa2_kvcache_params *, int, int, void *);
fa2_status fa2_cuda_kvcache_hd128(const fa2_kvcache_params *, int, int, void *);
fa2_status fa2_cuda_kvcache_hd256(const fa2_kvcache_params *, int, int, void *);
}

/* The append: 16-byte chunks of k_new/v_new [B, Nnew, Hkv, d] into the
 * cache at slots cache_seqlens[b] + t, through the page walk (a slot past
 * the capacity or a page outside the pool is not written). */
static __global__ void __launch_bounds__(256)
    kvcache_append_kernel(const __grid_constant__ fa2_kvcache_params p)
{
    const int cpr = p.head_dim / 8;
    const int64_t total = (int64_t)p.batch * p.seqlen_new * p.heads_kv * cpr;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % cpr);
        const int64_t h = (i / cpr) % p.heads_kv;
        const int64_t tk = (i / cpr / p.heads_kv) % p.seqlen_new;
        const int64_t b = i / cpr / p.heads_kv / p.seqlen_new;
        const int64_t key = (int64_t)p.cache_seqlens[b] + tk;
        if (key < 0 || key >= p.capacity)
            continue;
        const int32_t *const table_row =
            p.block_table ? p.block_table + b * p.block_table_stride : NULL;
        const fa2_kv_slot sl = fa2_kv_slot_of(table_row, p.page_size, b, key);
        if (table_row && (sl.i0 < 0 || sl.i0 >= p.num_pages))
            continue;
        const uint4 kv = *reinterpret_cast<const uint4 *>(
            (const uint16_t *)p.k_new + b * p.kn_sb + tk * p.kn_sr + h * p.kn_sh + c * 8);
        const uint4 vv = *reinterpret_cast<const uint4 *>(
            (const uint16_t *)p.v_new + b * p.vn_sb + tk * p.vn_sr + h * p.vn_sh + c * 8);
        *reinterpret_cast<uint4 *>((uint16_t *)p.k_cache + sl.i0 * p.k_s0 +
                                   sl.i1 * p.k_s1 + h * p.k_sh + c * 8) = kv;
        *reinterpret_cast<uint4 *>((uint16_t *)p.v_cache + sl.i0 * p.v_s0 +
                                   sl.i1 * p.v_s1 + h * p.v_sh + c * 8) = vv;
#ifdef FA2_TRAFFIC_COUNTERS
        if (p.traffic) { /* 16 bytes each way, the chunks it moves */
            atomicAdd(&p.traffic[FA2_TRAFFIC_K_NEW], 16ull);
            atomicAdd(&p.traffic[FA2_TRAFFIC_V_NEW], 16ull);
            atomicAdd(&p.traffic[FA2_TRAFFIC_K_CACHE_W], 16ull);
            atomicAdd(&p.traffic[FA2_TRAFFIC_V_CACHE_W], 16ull);
        }
#endif
    }
}

static fa2_status append(const fa2_kvcache_params *p, cudaStream_t stream)
{
    const int64_t chunks = (int64_t)p->batch * p->seqlen_new * p->heads_kv *
                           (p->head_dim / 8);
    int64_t blocks = (chunks + 255) / 256;
    if (blocks > 65536)
        blocks = 65536; /* grid-stride beyond */
    kvcache_append_kernel<<<(unsigned)blocks, 256, 0, stream>>>(*p);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return fa2_fail(FA2_ERR_CUDA, "launching the KV-cache append kernel "
                        "failed: %s", cudaGetErrorString(err));
    return FA2_OK;
}

/* warps per block: one for up to 16 packed rows (decode), else four;
 * FA2_CUDA_KVCACHE_WARPS=4 forces four (rows past the packed ones padded:
 * more threads issue the K/V copies; a measurement knob) */
static int kvcache_warps(const fa2_kvcache_problem *p)
{
    const char *e = getenv("FA2_CUDA_KVCACHE_WARPS");
    if (e && e[0] == '4')
        return 4;
    return p->seqlen_q * p->group <= 16 ? 1 : 4;
}

static int kvcache_block_n(int64_t head_dim)
{
    const int hd = FA2_KVC_KERNEL_HEAD_DIM(head_dim);
    return hd == 64 ? FA2_KVC_BLOCK_N(64) : hd == 128 ? FA2_KVC_BLOCK_N(128)
                                                      : FA2_KVC_BLOCK_N(256);
}

static int kvcache_smem(int64_t head_dim, int nw, int kw)
{
    const int hd = FA2_KVC_KERNEL_HEAD_DIM(head_dim);
    const int bn = kvcache_block_n(head_dim);
    return hd == 64    ? FA2_KVC_SMEM_BYTES_BN(64, nw, bn, kw)
           : hd == 128 ? FA2_KVC_SMEM_BYTES_BN(128, nw, bn, kw)
                       : FA2_KVC_SMEM_BYTES_BN(256, nw, bn, kw);
}

/* A usable device's SMs and shared memory per SM, for the rules below */
static fa2_status device_sms(int *sms, int *smem_sm)
{
    const fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(smem_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor,
                               dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "cannot query the device's SMs and shared "
                        "memory");
    }
    return FA2_OK;
}

/* The key warps when the caller gave 0: fa2_kvcache_gpu_key_warps over
 * this device's SMs (one-warp blocks only; the simulator asks the same
 * function). */
extern "C" fa2_status fa2_cuda_kvcache_key_warps(const fa2_kvcache_problem *p,
                                                 int *key_warps)
{
    int sms = 0, smem_sm = 0;
    const fa2_status st = device_sms(&sms, &smem_sm);
    if (st != FA2_OK)
        return st;
    *key_warps = kvcache_warps(p) == 1
                     ? fa2_kvcache_gpu_key_warps(
                           p->batch, p->heads_kv, p->seqlen_q, p->group, p->capacity,
                           p->block_table ? p->page_size : 0,
                           FA2_KVC_KERNEL_HEAD_DIM(p->head_dim), sms)
                     : 1;
    return FA2_OK;
}

/* The split count when the caller gave 0: fa2_kvcache_gpu_splits over
 * this device's SMs and the decode blocks one SM's shared memory holds,
 * with this kernel's tile (the simulator asks the same function). */
extern "C" fa2_status fa2_cuda_kvcache_splits(const fa2_kvcache_problem *p,
                                              int *num_splits)
{
    int sms = 0, smem_sm = 0;
    const fa2_status st = device_sms(&sms, &smem_sm);
    if (st != FA2_OK)
        return st;
    const int nw = kvcache_warps(p), kw = p->key_warps > 1 ? p->key_warps : 1;
    const int64_t per_sm =
        fa2_kvc_blocks_per_sm(smem_sm, kvcache_smem(p->head_dim, nw, kw));
    /* a block's keys come KW tiles at a time: the rule sees them as one */
    const int bn = kvcache_block_n(p->head_dim) * kw;
    *num_splits = fa2_kvcache_gpu_splits(p->batch, p->heads_kv, p->seqlen_q * p->group,
                                         p->capacity, 16 * nw, bn, sms, per_sm,
                                         FA2_KVC_KERNEL_HEAD_DIM(p->head_dim));
    return FA2_OK;
}

static fa2_status check_tensor(const fa2_tensor *t, const char *name, int dev)
{
    fa2_status st = fa2_gpu_check_device_pointer(t->data, name, dev);
    return st != FA2_OK ? st : fa2_gpu_check_alignment(t, name);
}

static fa2_status check_int32(const void *ptr, const char *name, int dev)
{
    fa2_status st = fa2_gpu_check_device_pointer(ptr, name, dev);
    if (st == FA2_OK && (uintptr_t)ptr % 4 != 0)
        st = fa2_fail(FA2_ERR_ALIGNMENT, "%s (%p) is not 4-byte aligned", name, ptr);
    return st;
}

static fa2_status check_args(const fa2_kvcache_args *a, const fa2_kvcache_problem *p,
                             int dev)
{
    fa2_status st;
    if ((st = check_tensor(&a->q, "q", dev)) || (st = check_tensor(&a->o, "o", dev)) ||
        (st = check_tensor(&a->k_cache, "k_cache", dev)) ||
        (st = check_tensor(&a->v_cache, "v_cache", dev)) ||
        (st = check_int32(p->cache_seqlens, "cache_seqlens", dev)))
        return st;
    if (p->seqlen_new > 0 && ((st = check_tensor(&a->k_new, "k_new", dev)) ||
                              (st = check_tensor(&a->v_new, "v_new", dev))))
        return st;
    if (p->block_table && (st = check_int32(p->block_table, "block_table", dev)))
        return st;
    if (a->lse.data) {
        if ((st = fa2_gpu_check_device_pointer(a->lse.data, "lse", dev)))
            return st;
        if ((uintptr_t)a->lse.data % 4 != 0)
            return fa2_fail(FA2_ERR_ALIGNMENT, "lse.data (%p) is not 4-byte "
                            "aligned", a->lse.data);
    }
    if ((st = fa2_gpu_check_stream(a->stream, dev)))
        return st;
    if (p->capacity > INT_MAX - 1024 || p->seqlen_q * p->group > INT_MAX / 2)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "a cache of %lld keys and %lld packed "
                        "query rows; the CUDA kernels keep positions in int32",
                        (long long)p->capacity, (long long)(p->seqlen_q * p->group));
    return FA2_OK;
}

/* The kernel's shared memory against what this device lets a block have:
 * checked before anything runs, so a refusal writes nothing (four key
 * warps at head dim 256 need 270336 bytes, more than any GPU gives). */
static fa2_status check_smem(const fa2_kvcache_problem *p, int nw, int kw, int dev)
{
    int optin = 0;
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) !=
        cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "cannot query the device's shared memory per "
                        "block");
    }
    const int need = kvcache_smem(p->head_dim, nw, kw);
    if (need > optin)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the head-dim-%d KV-cache kernel with %d "
                        "key warp%s needs %d bytes of shared memory per block and this "
                        "device gives at most %d%s", FA2_KVC_KERNEL_HEAD_DIM(p->head_dim),
                        kw, kw > 1 ? "s" : "", need, optin,
                        kw > 1 ? " (key_warps 1 needs less)" : "");
    return FA2_OK;
}

extern "C" fa2_status fa2_cuda_fwd_kvcache(const fa2_kvcache_args *a,
                                           const fa2_kvcache_problem *p)
{
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    if (p->dtype != FA2_DTYPE_FP16 && p->dtype != FA2_DTYPE_BF16)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "q.dtype is %s; the CUDA kernels take "
                        "fp16 or bf16", fa2_dtype_name(p->dtype));
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_CUDA, "cudaGetDevice failed: %s",
                        cudaGetErrorString(err));
    }
    if ((st = check_args(a, p, dev)))
        return st;

    const int nw = kvcache_warps(p);
    if (nw != 1 && p->key_warps > 1)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "key_warps %d with four-warp blocks "
                        "(FA2_CUDA_KVCACHE_WARPS=4): key warps share a one-warp "
                        "block's rows", p->key_warps);
    const int kw = p->key_warps > 1 ? p->key_warps : 1;
    if ((st = check_smem(p, nw, kw, dev)))
        return st;
    const int64_t rows = p->seqlen_q * p->group;
    const int64_t row_blocks = fa2_ceil_div(rows, 16 * nw);
    const int64_t grid = row_blocks * p->num_splits * p->heads_kv * p->batch;
    if (grid > INT_MAX)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "%lld thread blocks are more than one "
                        "launch takes", (long long)grid);

    fa2_kvcache_params k;
    memset(&k, 0, sizeof k);
    k.q = a->q.data;
    k.o = a->o.data;
    k.lse = (float *)a->lse.data;
    k.k_cache = a->k_cache.data;
    k.v_cache = a->v_cache.data;
    k.q_sb = a->q.stride[0], k.q_sr = a->q.stride[1], k.q_sh = a->q.stride[2];
    k.o_sb = a->o.stride[0], k.o_sr = a->o.stride[1], k.o_sh = a->o.stride[2];
    if (a->lse.data) {
        k.lse_sb = a->lse.stride[0];
        k.lse_sh = a->lse.stride[1];
        k.lse_sr = a->lse.stride[2];
    }
    k.k_s0 = a->k_cache.stride[0], k.k_s1 = a->k_cache.stride[1];
    k.k_sh = a->k_cache.stride[2];
    k.v_s0 = a->v_cache.stride[0], k.v_s1 = a->v_cache.stride[1];
    k.v_sh = a->v_cache.stride[2];
    if (p->seqlen_new > 0) {
        k.k_new = a->k_new.data;
        k.v_new = a->v_new.data;
        k.kn_sb = a->k_new.stride[0], k.kn_sr = a->k_new.stride[1];
        k.kn_sh = a->k_new.stride[2];
        k.vn_sb = a->v_new.stride[0], k.vn_sr = a->v_new.stride[1];
        k.vn_sh = a->v_new.stride[2];
    }
    k.block_table = p->block_table;
    k.block_table_stride = p->block_table_stride;
    k.page_size = p->page_size;
    k.num_pages = p->num_pages;
    k.capacity = p->capacity;
    k.cache_seqlens = p->cache_seqlens;
    k.batch = (int)p->batch;
    k.heads_q = (int)p->heads_q;
    k.heads_kv = (int)p->heads_kv;
    k.group = (int)p->group;
    k.head_dim = (int)p->head_dim;
    k.seqlen_q = (int)p->seqlen_q;
    k.seqlen_new = (int)p->seqlen_new;
    k.row_blocks = (int)row_blocks;
    k.num_splits = p->num_splits;
    k.key_warps = kw;
    k.scale = p->scale;
    k.scale_log2 = p->scale_log2;
    k.causal = p->causal;
    k.window_left = p->window_left;
    k.window_right = p->window_right;
#ifdef FA2_TRAFFIC_COUNTERS
    if ((st = fa2_cuda_traffic_pointer(&k.traffic)))
        return st;
#endif


    /* the split-KV partials: the caller's workspace or the pool's, taken
     * before the append so that a refusal leaves the cache as it was */
    cudaStream_t stream = (cudaStream_t)a->stream;
    void *ws = NULL;
    bool own_ws = false;
    if (p->num_splits > 1) {
        const size_t prow = (size_t)p->num_splits * p->batch * p->heads_q * p->seqlen_q;
        const size_t need = prow * ((size_t)p->head_dim + 1) * sizeof(float);
        if (a->workspace) {
            if ((st = fa2_gpu_check_device_pointer(a->workspace, "workspace", dev)))
                return st;
            if ((uintptr_t)a->workspace % 256 != 0)
                return fa2_fail(FA2_ERR_ALIGNMENT, "workspace (%p) is not 256-byte "
                                "aligned", a->workspace);
            if (a->workspace_bytes < need)
                return fa2_fail(FA2_ERR_SHAPE, "workspace_bytes is %zu; %d splits "
                                "need %zu (fa2_kvcache_workspace_size)",
                                a->workspace_bytes, p->num_splits, need);
            ws = a->workspace;
        } else {
            if ((err = cudaMallocAsync(&ws, need, stream)) != cudaSuccess) {
                (void)cudaGetLastError();
                return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "the split-KV workspace of "
                                "%zu bytes could not be allocated: %s", need,
                                cudaGetErrorString(err));
            }
            own_ws = true;
        }
        k.o_part = (float *)ws;
        k.lse_part = (float *)ws + prow * p->head_dim;
    }

    if (p->seqlen_new > 0 && (st = append(&k, stream))) {
        if (own_ws)
            (void)cudaFreeAsync(ws, stream);
        return st;
    }

    const int hd = FA2_KVC_KERNEL_HEAD_DIM(p->head_dim);
    const kvcache_launcher launch = hd == 64    ? fa2_cuda_kvcache_hd64
                                    : hd == 128 ? fa2_cuda_kvcache_hd128
                                                : fa2_cuda_kvcache_hd256;
    st = grid > 0 ? launch(&k, p->dtype == FA2_DTYPE_BF16, nw, stream) : FA2_OK;
    err = own_ws ? cudaFreeAsync(ws, stream) : cudaSuccess;
    if (st == FA2_OK && err != cudaSuccess) {
        (void)cudaGetLastError();
        st = fa2_fail(FA2_ERR_CUDA, "returning the split-KV workspace failed: %s",
                      cudaGetErrorString(err));
    }
    if (st == FA2_OK)
        fa2_clear_error();
    return st;
}
