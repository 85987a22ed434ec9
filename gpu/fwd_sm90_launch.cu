/* fwd_sm90_launch.cu — the host side of the sm_90 forward
 * (gpu/fwd_kernel_sm90.cuh): whether it runs here, and the tensor maps
 * the copy engine reads Q, K and V through.
 *
 * A tensor map describes q, k or v as the 4-D tensor
 * (head dim, rows, heads, batch) with the caller's strides, and the box one
 * copy moves: 64 columns (128 bytes, the swizzle's width) by block_m or
 * block_n rows. Elements outside the tensor (columns past the head dim,
 * rows past the sequence) arrive as zeros. The map is encoded by the
 * driver's cuTensorMapEncodeTiled, reached through the runtime's
 * cudaGetDriverEntryPointByVersion so that libfa2 needs no libcuda at link
 * time.
 */
#include "config.h"
#include "fa2_internal.h"
#include "fwd_config.h"
#include "fwd_params.h"

#include <cuda.h>
#include <cuda_runtime.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
fa2_status fa2_cuda_fwd90_hd64(const fa2_fwd_params *, const void *, int, int, int64_t,
                               void *);
fa2_status fa2_cuda_fwd90_hd128(const fa2_fwd_params *, const void *, int, int, int64_t,
                                void *);
fa2_status fa2_cuda_fwd90_hd256(const fa2_fwd_params *, const void *, int, int, int64_t,
                                void *);
int fa2_cuda_fwd90_runs_hd64(void);
int fa2_cuda_fwd90_runs_hd128(void);
int fa2_cuda_fwd90_runs_hd256(void);
}

/* The sm_90 kernel serves head dim d here unless FA2_CUDA_FWD_KERNEL=mma
 * asks for the mma.sync kernel (tests and comparisons) or the device does
 * not run sm_90a code. */
extern "C" int fa2_cuda_fwd_sm90_chosen(int head_dim)
{
    const char *force = getenv("FA2_CUDA_FWD_KERNEL");
    if (force && strcmp(force, "mma") == 0)
        return 0;
    switch (fa2_fwd90_kernel_head_dim(head_dim)) {
    case 64: return fa2_cuda_fwd90_runs_hd64();
    case 128: return fa2_cuda_fwd90_runs_hd128();
    default: return fa2_cuda_fwd90_runs_hd256();
    }
}

/* consumer warpgroups of the sm_90 kernel for head dim d on a problem
 * (block_m is 64 times that): fwd_config.h's fa2_fwd90_consumers_for, or
 * FA2_CUDA_FWD90_CONSUMERS=2|3 where the kernel is built for both (head
 * dim 64; a measurement knob) */
extern "C" int fa2_cuda_fwd90_consumers(int head_dim, int causal, long long max_seqlen_q)
{
    const int hd = fa2_fwd90_kernel_head_dim(head_dim);
    int nc = fa2_fwd90_consumers_for(hd, causal, max_seqlen_q);
    const char *env = getenv("FA2_CUDA_FWD90_CONSUMERS");
    if (env && hd == 64 && (strcmp(env, "2") == 0 || strcmp(env, "3") == 0))
        nc = env[0] - '0';
    return nc;
}

typedef CUresult (*encode_tiled_fn)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                    const cuuint64_t *, const cuuint64_t *,
                                    const cuuint32_t *, const cuuint32_t *,
                                    CUtensorMapInterleave, CUtensorMapSwizzle,
                                    CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

/* The map of t ([batch, rows, heads, head dim], last dim contiguous) with
 * box_rows-row boxes; FA2_ERR_UNSUPPORTED when the copy engine cannot
 * describe its strides (the caller then runs the mma.sync kernel). */
static fa2_status make_map(encode_tiled_fn encode, CUtensorMap *map, const fa2_tensor *t,
                           const char *name, int box_rows)
{
    /* dims innermost first: head dim, rows, heads, batch */
    const cuuint64_t dims[4] = {(cuuint64_t)t->shape[3], (cuuint64_t)t->shape[1],
                                (cuuint64_t)t->shape[2], (cuuint64_t)t->shape[0]};
    const int64_t strides[3] = {t->stride[1], t->stride[2], t->stride[0]};
    const int64_t extents[3] = {t->shape[1], t->shape[2], t->shape[0]};
    cuuint64_t sb[3];
    for (int i = 0; i < 3; i++) {
        const int64_t bytes = strides[i] * 2;
        if (extents[i] <= 1) {
            sb[i] = 16; /* never stepped along: any legal stride */
            continue;
        }
        if (bytes <= 0 || bytes % 16 != 0 || bytes >= ((int64_t)1 << 40))
            return fa2_fail(FA2_ERR_UNSUPPORTED, "%s's strides do not suit the copy "
                            "engine", name);
        sb[i] = (cuuint64_t)bytes;
    }
    for (int i = 0; i < 4; i++)
        if (dims[i] == 0 || dims[i] > ((cuuint64_t)1 << 32))
            return fa2_fail(FA2_ERR_UNSUPPORTED, "%s's shape does not suit the copy "
                            "engine", name);
    const cuuint32_t box[4] = {64, (cuuint32_t)box_rows, 1, 1};
    const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
    const CUresult r = encode(
        map, t->dtype == FA2_DTYPE_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                        : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
        4, t->data, dims, sb, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return fa2_fail(FA2_ERR_UNSUPPORTED, "cuTensorMapEncodeTiled refused %s (error "
                        "%d)", name, (int)r);
    return FA2_OK;
}

/* Run the sm_90 kernel on the validated problem whose kernel parameters
 * are k (m_blocks for the sm_90 tiling, fa2_cuda_tile_config's).
 * FA2_ERR_UNSUPPORTED (nothing launched) when the copy engine cannot read
 * these tensors. */
extern "C" fa2_status fa2_cuda_fwd_sm90(const fa2_fwd_params *k_in, const fa2_fwd_args *a,
                                        int head_dim)
{
    fa2_fwd_params k = *k_in;
    const int nc = fa2_cuda_fwd90_consumers(head_dim, k.causal, (long long)k.seqlen_q);
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q;
    cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                       cudaEnableDefault, &q);
    if (err != cudaSuccess || q != cudaDriverEntryPointSuccess || !fn) {
        (void)cudaGetLastError();
        return fa2_fail(FA2_ERR_UNSUPPORTED, "the driver offers no "
                        "cuTensorMapEncodeTiled");
    }
    const encode_tiled_fn encode = (encode_tiled_fn)fn;
    const int hd = fa2_fwd90_kernel_head_dim(head_dim);
    const int bn = hd == 64 ? FA2_FWD90_BLOCK_N(64)
                   : hd == 128 ? FA2_FWD90_BLOCK_N(128) : FA2_FWD90_BLOCK_N(256);
    CUtensorMap maps[4];
    static_assert(sizeof(CUtensorMap) == 128, "CUtensorMap is 128 bytes");
    fa2_status st;
    if ((st = make_map(encode, &maps[0], &a->q, "q", 64 * nc)) ||
        (st = make_map(encode, &maps[1], &a->k, "k", bn)) ||
        (st = make_map(encode, &maps[2], &a->v, "v", bn)))
        return st;
    /* O by TMA store, a warpgroup's 64 rows a box: where O has its own
     * staging buffer (head dims 64 and 128) and the lengths are fixed (with
     * cu_seqlens a box past a sequence's end would write the next one's
     * rows); else, or where the copy engine cannot describe O's strides,
     * the consumer threads copy it. FA2_CUDA_FWD90_OSTORE=threads forces
     * the copy, for measurements. */
    const int separate_o = hd == 64    ? FA2_FWD90_SEPARATE_O(64, nc)
                           : hd == 128 ? FA2_FWD90_SEPARATE_O(128, nc)
                                       : FA2_FWD90_SEPARATE_O(256, nc);
    const char *ose = getenv("FA2_CUDA_FWD90_OSTORE");
    memset(&maps[3], 0, sizeof maps[3]);
    k.o_tma = 0;
    if (separate_o && !k.cu_seqlens_q && !(ose && strcmp(ose, "threads") == 0)) {
        if (make_map(encode, &maps[3], &a->o, "o", 64) == FA2_OK)
            k.o_tma = 1;
        else
            fa2_clear_error(); /* not an error: the threads copy O */
    }
    const int bf16 = a->q.dtype == FA2_DTYPE_BF16;
    /* Grid, four schedules:
     *   static   one block per SM, each running every gridDim-th tile, so
     *            that a tile's epilogue overlaps the next tile's loads;
     *            where the tiles are all alike (no causal mask, no window,
     *            fixed lengths). A static assignment of unequal tiles leaves
     *            SMs idle (causal tiles round robin measured 0.6-0.9x of one
     *            block per tile on the H200, bench/NOTES-fwd90.md);
     *   dynamic  one block per SM taking each next tile from a zeroed
     *            counter (the kernel's tile scheduler): unequal tiles
     *            balance, and the epilogue still overlaps the next loads;
     *            measured slower than `blocks` on causal launches and than
     *            `static` on the others (bench/NOTES-fwd90.md), so opt-in;
     *   pairs    one block per SM, each running every gridDim-th pair of
     *            query blocks (m, last - m) of a head, whose causal costs
     *            add up to the same for every pair: a balanced static
     *            assignment that keeps the concurrent blocks on a few
     *            heads' K/V. Causal launches of fixed lengths with 128-row
     *            tiles and up to 64 query blocks (seqlen 8k): 1.05-1.10x
     *            `blocks` at 1k-2k on the H200, 1.00-1.07x at 4k-8k; at 16k the
     *            static assignment's last round costs 3% and at head dim
     *            64 (192-row tiles) it lost (bench/NOTES-fwd90.md);
     *   blocks   one block per tile, the hardware's scheduling: window
     *            and varlen launches, and the causal ones pairs leaves.
     * FA2_CUDA_FWD90_SCHED=static|dynamic|pairs|blocks overrides the choice (and
     * FA2_CUDA_FWD90_PERSISTENT=1|0 means static|blocks), for
     * measurements. */
    const int64_t tiles = (int64_t)k.m_blocks * k.heads_q * k.num_seqs;
    const int fixed = k.window_left < 0 && k.window_right < 0 && !k.cu_seqlens_q;
    enum { SCHED_STATIC, SCHED_DYNAMIC, SCHED_PAIRS, SCHED_BLOCKS } sched =
        !fixed     ? SCHED_BLOCKS
        : !k.causal ? SCHED_STATIC
        : nc == 2 && k.m_blocks <= 64 ? SCHED_PAIRS
                                      : SCHED_BLOCKS;
    const char *pe = getenv("FA2_CUDA_FWD90_PERSISTENT");
    if (pe && (strcmp(pe, "0") == 0 || strcmp(pe, "1") == 0))
        sched = pe[0] == '1' ? SCHED_STATIC : SCHED_BLOCKS;
    const char *se = getenv("FA2_CUDA_FWD90_SCHED");
    if (se && strcmp(se, "static") == 0)
        sched = SCHED_STATIC;
    else if (se && strcmp(se, "dynamic") == 0)
        sched = SCHED_DYNAMIC;
    else if (se && strcmp(se, "pairs") == 0)
        sched = SCHED_PAIRS;
    else if (se && strcmp(se, "blocks") == 0)
        sched = SCHED_BLOCKS;
    /* pairs: a block runs both slots of a pair, so the grid counts pairs */
    k.tile_pairs = sched == SCHED_PAIRS;
    int64_t grid =
        sched == SCHED_PAIRS ? (int64_t)fa2_pair_count(k.m_blocks) * k.heads_q * k.num_seqs : tiles;
    if (sched != SCHED_BLOCKS) {
        int dev = 0, sms = 0;
        if (cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
            sms > 0 && sms < grid)
            grid = sms;
        (void)cudaGetLastError();
        /* the counter is an int and every block takes one number past the end */
        if (sched == SCHED_DYNAMIC && tiles + grid >= INT_MAX)
            sched = SCHED_BLOCKS, grid = tiles;
    }
    k.tile_counter = NULL;
    cudaStream_t stream = (cudaStream_t)a->stream;
    if (sched == SCHED_DYNAMIC) {
        err = cudaMallocAsync((void **)&k.tile_counter, sizeof(int), stream);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            return fa2_fail(FA2_ERR_OUT_OF_MEMORY, "allocating the forward's tile "
                            "counter (4 bytes) failed: %s", cudaGetErrorString(err));
        }
        err = cudaMemsetAsync(k.tile_counter, 0, sizeof(int), stream);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            (void)cudaFreeAsync(k.tile_counter, stream);
            return fa2_fail(FA2_ERR_CUDA, "clearing the forward's tile counter "
                            "failed: %s", cudaGetErrorString(err));
        }
    }
    switch (hd) {
    case 64: st = fa2_cuda_fwd90_hd64(&k, maps, nc, bf16, grid, a->stream); break;
    case 128: st = fa2_cuda_fwd90_hd128(&k, maps, nc, bf16, grid, a->stream); break;
    default: st = fa2_cuda_fwd90_hd256(&k, maps, nc, bf16, grid, a->stream); break;
    }
    if (k.tile_counter) {
        err = cudaFreeAsync(k.tile_counter, stream);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            if (st == FA2_OK)
                st = fa2_fail(FA2_ERR_CUDA, "returning the forward's tile counter "
                              "failed: %s", cudaGetErrorString(err));
        }
    }
    return st;
}
