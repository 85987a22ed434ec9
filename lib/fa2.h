/*
 * fa2.h — FlashAttention-2, three ways that agree: a float64 oracle, standard
 * attention, a tiled CPU mirror of the GPU algorithm, and CUDA kernels.
 *
 * Conventions (see doc/api.md):
 *   - every fallible call returns an fa2_status; fa2_status_str() names it and
 *     fa2_last_error() (thread-local) says in a sentence what was wrong;
 *   - no call aborts, exits or prints on bad input;
 *   - the caller owns every buffer; the library keeps no global state except
 *     the thread-local last-error message;
 *   - q, k, v, o are [batch, seqlen, heads, head_dim] with the last dimension
 *     contiguous and any other (positive) strides; lse is float32
 *     [batch, heads_q, seqlen_q]. Shapes and strides count elements, as int64.
 */
#ifndef FA2_H
#define FA2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FA2_VERSION_MAJOR 0
#define FA2_VERSION_MINOR 1
#define FA2_VERSION_PATCH 0

/* ---- status codes ------------------------------------------------------ */

typedef enum fa2_status {
    FA2_OK = 0,
    FA2_ERR_NULL_POINTER,     /* a required pointer is NULL                  */
    FA2_ERR_INVALID_ARGUMENT, /* a scalar argument is out of range            */
    FA2_ERR_DTYPE,            /* unknown dtype, or dtypes that do not match   */
    FA2_ERR_SHAPE,            /* a size is zero/negative or shapes disagree   */
    FA2_ERR_STRIDE,           /* last dim not contiguous, non-positive stride,
                                 or an output whose elements overlap          */
    FA2_ERR_HEAD_DIM,         /* head dim not a multiple of 8 in [8, 256]     */
    FA2_ERR_OVERLAP,          /* outputs share memory with each other/inputs  */
    FA2_ERR_SEQLENS,          /* cu_seqlens not monotone / do not match       */
    FA2_ERR_ALIGNMENT,        /* a device pointer is not 16-byte aligned      */
    FA2_ERR_OUT_OF_MEMORY,    /* a workspace allocation failed                */
    FA2_ERR_NOT_BUILT,        /* backend not compiled into this library       */
    FA2_ERR_NO_DEVICE,        /* CUDA backend built, but no usable GPU        */
    FA2_ERR_DEVICE_POINTER,   /* a pointer is not device memory               */
    FA2_ERR_CUDA,             /* the CUDA runtime reported an error           */
    FA2_ERR_UNSUPPORTED,      /* valid request this backend cannot serve      */
    FA2_ERR_INTERNAL,         /* a bug in fa2: please report it               */
    FA2_ERR_BLOCK_TABLE,      /* KV cache: a block_table entry outside the
                                 cache's pages, or a page size the kernels
                                 do not take (not a multiple of 16)          */
    FA2_ERR_CACHE_SEQLENS     /* KV cache: a cache_seqlens entry negative, or
                                 with the new tokens past the capacity       */
} fa2_status;

#define FA2_STATUS_COUNT ((int)FA2_ERR_CACHE_SEQLENS + 1)

/* Name of a status code ("FA2_ERR_SHAPE"); never NULL. */
const char *fa2_status_str(fa2_status s);

/* The sentence that explains the last error returned on this thread (which
 * argument, which value, what was expected). "" after a successful call. */
const char *fa2_last_error(void);

/* Library version, e.g. "0.1.0", and the libtool-independent triple. */
const char *fa2_version_string(void);
void fa2_version(int *major, int *minor, int *patch);

/* ---- element types ----------------------------------------------------- */

typedef enum fa2_dtype {
    FA2_DTYPE_FP32 = 0,
    FA2_DTYPE_FP16 = 1, /* IEEE binary16, stored as uint16_t */
    FA2_DTYPE_BF16 = 2  /* bfloat16, stored as uint16_t      */
} fa2_dtype;

const char *fa2_dtype_name(fa2_dtype t); /* "fp32", "fp16", "bf16", "?" */
size_t fa2_dtype_size(fa2_dtype t);      /* bytes per element; 0 if unknown */

/* Round-to-nearest-even conversions; NaN stays NaN, +-Inf stays +-Inf,
 * overflow rounds to Inf, subnormals are kept. Portable C, no intrinsics. */
uint16_t fa2_float_to_fp16(float x);
float fa2_fp16_to_float(uint16_t h);
uint16_t fa2_float_to_bf16(float x);
float fa2_bf16_to_float(uint16_t h);
/* x rounded to the precision of dtype and widened back to float. */
float fa2_round_to_dtype(float x, fa2_dtype t);

/* ---- tensors ----------------------------------------------------------- */

/* A strided view. q/k/v/o use all four dims [batch, seqlen, heads, head_dim];
 * lse uses the first three [batch, heads_q, seqlen_q]. */
typedef struct fa2_tensor {
    void *data;
    fa2_dtype dtype;
    int64_t shape[4];
    int64_t stride[4]; /* in elements */
} fa2_tensor;

/* A dense row-major 4-d tensor view over data (strides derived from shape). */
fa2_tensor fa2_tensor_4d(void *data, fa2_dtype t, int64_t d0, int64_t d1,
                         int64_t d2, int64_t d3);
/* A dense row-major 3-d float32 view (for lse). */
fa2_tensor fa2_tensor_lse(float *data, int64_t batch, int64_t heads,
                          int64_t seqlen);

/* ---- backends ---------------------------------------------------------- */

typedef enum fa2_backend {
    FA2_BACKEND_CPU_ORACLE = 0,   /* float64, straight from the definition   */
    FA2_BACKEND_CPU_STANDARD = 1, /* S and P materialised, OpenBLAS          */
    FA2_BACKEND_CPU_TILED = 2,    /* FlashAttention-2, step for step as GPU  */
    FA2_BACKEND_CUDA = 3          /* CUDA kernels, device pointers           */
} fa2_backend;

#define FA2_BACKEND_COUNT 4

const char *fa2_backend_name(fa2_backend b); /* "oracle", "standard", ... */

/* FA2_OK if the backend can run here; FA2_ERR_NOT_BUILT or FA2_ERR_NO_DEVICE
 * (with a sentence in fa2_last_error) otherwise. */
fa2_status fa2_backend_available(fa2_backend b);

/* Number of worker threads the CPU backends use when num_threads == 0. */
int fa2_default_num_threads(void);

/* ---- forward ----------------------------------------------------------- */

typedef struct fa2_fwd_args {
    fa2_tensor q; /* [B, Nq, Hq, d]                                          */
    fa2_tensor k; /* [B, Nk, Hkv, d], Hq a multiple of Hkv (GQA/MQA)         */
    fa2_tensor v; /* [B, Nk, Hkv, d]                                         */
    fa2_tensor o; /* [B, Nq, Hq, d], output, same dtype as q                 */
    /* float32 [B, Hq, Nq], output; lse.data == NULL: not written.
     * LSE = ln sum_j exp(scale * q.k_j); +inf for a row that sees no key,
     * NaN for a row that sees a NaN or +inf score (see fa2_fwd). */
    fa2_tensor lse;

    /* 0: 1/sqrt(head_dim); else finite, > 0 and at most FLT_MAX / log2(e)
     * = 2.36e38 (FA2_ERR_INVALID_ARGUMENT otherwise) */
    float softmax_scale;
    int causal;          /* bottom-right aligned when Nq != Nk              */
    /* Sliding window: query row i (aligned to the end of the keys, i.e.
     * i' = i + Nk - Nq) sees key j iff i' - window_left <= j <= i' +
     * window_right. -1 means unbounded on that side. causal sets
     * window_right to 0. */
    int64_t window_left;
    int64_t window_right;

    /* Variable lengths. Both NULL: fixed lengths from the shapes. Both set:
     * q/k/v/o have batch 1 and the tokens of all sequences packed along
     * dim 1; sequence b owns rows cu_seqlens_q[b] .. cu_seqlens_q[b+1]-1;
     * lse is [1, Hq, total_q]. num_seqs + 1 entries each, starting at 0,
     * non-decreasing, ending at the packed length. Host memory for the CPU
     * backends, device memory for CUDA. */
    const int32_t *cu_seqlens_q;
    const int32_t *cu_seqlens_k;
    int64_t num_seqs;
    /* 0: computed; else >= every length and <= the packed length (dim 1
     * of q / k), FA2_ERR_SEQLENS otherwise. The CPU backends size their
     * work by the true lengths; CUDA sizes its grid by these. */
    int64_t max_seqlen_q;
    int64_t max_seqlen_k;

    /* Tiled backend (and the CUDA one, which ignores these): tile sizes,
     * 0 = the library's choice (fa2_tile_config). */
    int block_m; /* query rows per tile  (Br in the paper) */
    int block_n; /* key rows per tile    (Bc in the paper) */

    int num_threads; /* CPU backends; 0 = fa2_default_num_threads()       */
    void *stream;    /* CUDA backend: a cudaStream_t, NULL = default      */

    /* ---- score modifiers and dropout (doc/algorithm.md, "Score modifiers"
     * and "Dropout"); all zero / NULL (fa2_fwd_args_init) means off. ---- */
    /* Logit soft-capping: each score s = scale q.k becomes softcap *
     * tanh(s / softcap). 0: off; else finite and > 0. */
    float softcap;
    /* ALiBi: score(i, j) -= slope * |i + Nk - Nq - j| (bottom-right
     * aligned like the mask). NULL: off; else float32 host memory (device
     * memory for CUDA): slope of (sequence b, head h) at
     * alibi_slopes[b * alibi_batch_stride + h], i.e. [Hq] when the stride
     * is 0 and [B, Hq] when it is Hq (any stride >= Hq is accepted). */
    const float *alibi_slopes;
    int64_t alibi_batch_stride;
    /* Attention sinks: float32 [Hq] logits (in the units of the scaled,
     * capped scores) that join each row's softmax denominator and have no
     * value row. NULL: off. */
    const float *sinks;
    /* Dropout on P after the softmax: element (b, h, i, j) is dropped with
     * probability dropout_p by Philox 4x32-10 keyed by dropout_seed,
     * dropout_offset (lib/fa2_philox.h), kept ones scaled by 1/(1-p).
     * dropout_p in [0, 1); 0: off. The draws have 16 bits: the drop
     * probability is dropout_p rounded to a multiple of 2^-16 (below
     * 2^-17: nothing dropped). The same (seed, offset) gives the same
     * pattern in every backend, tiling, thread count and in the backward. */
    float dropout_p;
    uint64_t dropout_seed;
    uint64_t dropout_offset;
    /* Optional output for tests and teaching (CPU backends): uint8
     * [num_seqs][Hq][max_seqlen_q][max_seqlen_k], dense; 1 where query i
     * sees key j and the element is kept, 0 elsewhere (the whole buffer is
     * written). NULL: not written. */
    uint8_t *dropout_mask;
} fa2_fwd_args;

/* Defaults: everything zero / NULL, window -1/-1 (unbounded). */
void fa2_fwd_args_init(fa2_fwd_args *args);

/* Validate args (fa2_fwd does this first) without computing anything. */
fa2_status fa2_fwd_check(const fa2_fwd_args *args, fa2_backend backend);

/* O = softmax(scale * Q K^T + mask) V, and LSE, on the chosen backend.
 *
 * Non-finite inputs (doc/algorithm.md section 5), the same in every
 * backend, the float64 oracle and the CUDA kernels: NaN in, NaN out.
 *   - a NaN or +inf score (NaN/inf in q_i or k_j, or a float32 dot product
 *     that overflows) makes all of O_i and LSE_i NaN: a NaN in q_i reaches
 *     row i only, a NaN in k_j exactly the rows that see key j;
 *   - a -inf score weighs 0 like a masked key; a row whose visible scores
 *     are all -inf is a row that sees no key (O = 0, LSE = +inf);
 *   - a NaN or inf in v_j[c] makes O[i, c] non-finite on every row i that
 *     sees key j; rows that do not see key j may get NaN too in backends
 *     that multiply blocks (0 * NaN), LSE never;
 *   - finite inputs give the right answer or NaN/inf honestly, never a
 *     plausible wrong number: large logits included.
 * Tensors may also not span more than 2^62 bytes nor wrap around the
 * address space (FA2_ERR_SHAPE). Windows wider than the sequence are the
 * same as -1. Outputs overlapping an input or each other are refused
 * (FA2_ERR_OVERLAP) when they share an element, not merely a byte range:
 * packed qkv / dqkv layouts ([B, N, 3, H, d]) are accepted. */
fa2_status fa2_fwd(const fa2_fwd_args *args, fa2_backend backend);

/* ---- forward over a KV cache (inference) -------------------------------- */
/* Decoding and chunked prefill: Nq new query tokens per sequence attend to
 * the keys and values already in a cache, optionally after appending the
 * new tokens' own keys and values to it (in place). The cache is either
 * contiguous, one row of Nmax slots per sequence, or paged (vLLM style):
 * a pool of pages of page_size slots and a block table that lists, for each
 * sequence, the pages holding its keys 0 .. page_size-1, page_size .. and so
 * on. Key j of sequence b lives in
 *   contiguous: k_cache[b, j]
 *   paged:      k_cache[block_table[b * stride + j / page_size], j % page_size]
 *
 * Sequence b has seqlen_k = cache_seqlens[b] + Nnew keys (Nnew = 0 without
 * k_new), and its Nq queries are the last Nq positions of a sequence of that
 * length: the mask is bottom-right aligned as in fa2_fwd (causal: query i
 * sees keys j <= i + seqlen_k - Nq; with the append and Nnew = Nq, each new
 * token sees the cache and the new tokens up to itself).
 *
 * Split-KV ("flash-decoding"): the keys of each (sequence, key head) may be
 * cut into num_splits chunks computed in parallel, each giving a partial
 * (O, LSE) per row, merged by LSE in a fixed order (lib/fa2_kvcache.h,
 * doc/algorithm.md section 8). The result is the same attention up to
 * rounding for every num_splits; the mirror reproduces a kernel bit for
 * bit only with the kernel's num_splits and block_n. */
#define FA2_KVCACHE_MAX_SPLITS 128
/* key_warps: 1, or this many warps sharing the keys of a work item of at
 * most FA2_KVCACHE_KEY_WARPS_ROWS packed rows (see key_warps below) */
#define FA2_KVCACHE_KEY_WARPS_MAX 4
#define FA2_KVCACHE_KEY_WARPS_ROWS 16

typedef struct fa2_kvcache_args {
    fa2_tensor q;       /* [B, Nq, Hq, d] queries of the new tokens          */
    /* contiguous: [B, Nmax, Hkv, d]; paged: [num_pages, page_size, Hkv, d],
     * page_size a multiple of 16. Hq a multiple of Hkv (GQA/MQA). Written
     * only by the append, at slots cache_seqlens[b] .. + Nnew - 1. */
    fa2_tensor k_cache;
    fa2_tensor v_cache; /* shape of k_cache                                  */
    /* NULL: contiguous cache. Else int32 [B, max_pages], row b starting at
     * block_table + b * block_table_stride (0: max_pages); the entries
     * for the pages that hold keys 0 .. seqlen_k - 1 must lie in
     * [0, num_pages) (FA2_ERR_BLOCK_TABLE), later ones are not read.
     * Sequences may share pages they only read (a common prefix). */
    const int32_t *block_table;
    int64_t max_pages;
    int64_t block_table_stride;
    /* int32 [B], required: the tokens already in each cache, >= 0, and with
     * the Nnew new ones at most the capacity (Nmax, or max_pages *
     * page_size): FA2_ERR_CACHE_SEQLENS otherwise. Not updated by the call
     * (the caller advances it by Nnew after an append). */
    const int32_t *cache_seqlens;
    /* Optional (data NULL: no append): [B, Nnew, Hkv, d], Nnew >= 1, the
     * new tokens' keys and values, copied into the cache at slots
     * cache_seqlens[b] .. cache_seqlens[b] + Nnew - 1 before attending.
     * Both or neither. A page the append writes may appear only once among
     * the used entries of the block table (FA2_ERR_BLOCK_TABLE). */
    fa2_tensor k_new;
    fa2_tensor v_new;
    fa2_tensor o;       /* output, shape and dtype of q                      */
    fa2_tensor lse;     /* float32 [B, Hq, Nq]; data NULL: not written       */

    float softmax_scale; /* 0: 1/sqrt(d); as fa2_fwd_args                    */
    int causal;          /* bottom-right: see above                          */
    int64_t window_left; /* -1: unbounded; as fa2_fwd_args                   */
    int64_t window_right;

    /* 0: the library chooses (fa2_kvcache_num_splits); else 1 ..
     * FA2_KVCACHE_MAX_SPLITS chunks of each sequence's keys. */
    int num_splits;
    /* Keys per tile, 0: the library's (fa2_kvcache_block_n in
     * lib/fa2_kvcache.h); the chunks of the split are whole tiles. The
     * tiled backend runs any multiple of 16 up to 1024; CUDA its own. */
    int block_n;
    /* Warps that share a block's keys, 0: the library's choice
     * (fa2_kvcache_key_warps); else 1, or 4 when a work item has at most
     * 16 packed rows (Nq x Hq / Hkv <= 16, decode): then each of four
     * takes every fourth tile of its split with its own running max and
     * sum, and the four partials are merged by LSE in that order
     * (fa2_merge_lse), a split inside the split. The tiled and CUDA
     * backends run what they are given (CUDA up to head dim 128: four
     * warps' stages at 256 exceed a block's shared memory, and the call
     * is refused with FA2_ERR_UNSUPPORTED); the others ignore it. */
    int key_warps;
    int num_threads;     /* CPU backends; 0 = fa2_default_num_threads()      */
    void *stream;        /* CUDA backend: a cudaStream_t, NULL = default     */
    /* CUDA backend, optional: device memory for the split-KV partials, at
     * least fa2_kvcache_workspace_size() bytes, 256-byte aligned; NULL: the
     * library takes it from the stream-ordered pool. The CPU backends
     * allocate their own and ignore these. */
    void *workspace;
    size_t workspace_bytes;
} fa2_kvcache_args;

/* Defaults: everything zero / NULL, window -1/-1 (unbounded). */
void fa2_kvcache_args_init(fa2_kvcache_args *args);

/* Validate args for a backend without computing or writing anything. On
 * the host (the CPU backends) the lengths and block table are read and
 * checked; the CUDA backend's live on the device and cannot be. */
fa2_status fa2_fwd_kvcache_check(const fa2_kvcache_args *args,
                                 fa2_backend backend);

/* Append k_new/v_new (if given), then O = softmax(scale Q K^T + mask) V and
 * LSE over each sequence's seqlen_k cached keys. Non-finite values as in
 * fa2_fwd, through the split-KV merge as well: a NaN a row sees makes the
 * row NaN; a row that sees no key (an empty cache, say) gets O = 0 and
 * LSE = +inf. On any error nothing is written, the caches included. */
fa2_status fa2_fwd_kvcache(const fa2_kvcache_args *args, fa2_backend backend);

/* *num_splits = the split count the backend runs for these args: args'
 * own when > 0, else the library's choice for the backend (from the batch,
 * the key heads, the packed rows Nq * Hq / Hkv, the cache capacity and the
 * backend's parallelism: SMs or worker threads). Pass it to the tiled
 * backend to reproduce the CUDA backend's chunks. */
fa2_status fa2_kvcache_num_splits(const fa2_kvcache_args *args,
                                  fa2_backend backend, int *num_splits);
/* *key_warps = the warps a block's keys are shared by for these args
 * (args' key_warps if > 0, else the backend's choice: 1 on the CPU, the
 * CUDA backend's rule fa2_kvcache_gpu_key_warps on the GPU). */
fa2_status fa2_kvcache_key_warps(const fa2_kvcache_args *args,
                                 fa2_backend backend, int *key_warps);

/* *bytes = the CUDA workspace these args need (0 with one split): float32
 * partial O and LSE for every split, row and head. Args checked as
 * fa2_fwd_kvcache_check does, workspace ignored. */
fa2_status fa2_kvcache_workspace_size(const fa2_kvcache_args *args,
                                      fa2_backend backend, size_t *bytes);

/* ---- backward ---------------------------------------------------------- */

typedef struct fa2_bwd_args {
    /* inputs: the forward's q, k, v, its output o and lse (required), and
     * the gradient dout of the loss with respect to o (shape and dtype of o) */
    fa2_tensor q, k, v, o, lse, dout;
    /* outputs: dq like q, dk and dv like k and v (dtype of q). With GQA/MQA
     * dk and dv are summed over the query heads that share a key head. */
    fa2_tensor dq, dk, dv;

    /* the forward's parameters, with the same meaning as in fa2_fwd_args */
    float softmax_scale;
    int causal;
    int64_t window_left;
    int64_t window_right;
    const int32_t *cu_seqlens_q;
    const int32_t *cu_seqlens_k;
    int64_t num_seqs;
    int64_t max_seqlen_q;
    int64_t max_seqlen_k;
    int block_m;
    int block_n;

    /* dQ is summed over key blocks that run in parallel. 0: fast (any
     * order, results may differ in the last bits between runs); 1: a fixed
     * order, results bit-identical for any thread count and every run. */
    int deterministic;
    int num_threads;
    void *stream;

    /* CUDA backend, optional: device memory the backward may use for its
     * float32 dQ accumulator, D = rowsum(dO o O) and the deterministic
     * mode's counters, at least fa2_cuda_bwd_workspace_size() bytes,
     * 256-byte aligned, overlapping no tensor above, not in use by other
     * work on the stream until this backward is done. NULL: the library
     * takes it from the device's stream-ordered pool (cudaMallocAsync) and
     * gives it back on the stream; a caching allocator's buffer (PyTorch's,
     * as python/fa2.py passes) avoids the pool's cost of mapping memory
     * again after each synchronisation. */
    void *workspace;
    size_t workspace_bytes;

    /* the forward's modifiers, with the same meaning as in fa2_fwd_args
     * (dropout recomputed from the generator, never stored) */
    float softcap;
    const float *alibi_slopes;
    int64_t alibi_batch_stride;
    const float *sinks;
    float dropout_p;
    uint64_t dropout_seed;
    uint64_t dropout_offset;
    /* output, required when sinks is set: float32 [Hq], the gradient of
     * the loss with respect to each head's sink logit (overwritten) */
    float *dsinks;
} fa2_bwd_args;

/* Defaults: everything zero / NULL, window -1/-1 (unbounded). */
void fa2_bwd_args_init(fa2_bwd_args *args);

fa2_status fa2_bwd_check(const fa2_bwd_args *args, fa2_backend backend);

/* dq, dk, dv of the attention fa2_fwd computed (FA2 Algorithm 2).
 * Non-finite values as in fa2_fwd: a NaN in row i's scores, LSE_i, O_i or
 * dout_i makes dq_i NaN and dk_j, dv_j NaN for every key j row i sees (the
 * tiled and CUDA backends may spread it to other keys of the same tile); a
 * row that sees no key (LSE = +inf) has zero gradients. The backward
 * rebuilds P from the float32 LSE: a row with |LSE log2 e| >= 2^16, where
 * that loses more than 0.27%, gets NaN gradients, not wrong ones. dout,
 * dq, dk and dv get the same span checks as q (FA2_ERR_SHAPE). */
fa2_status fa2_bwd(const fa2_bwd_args *args, fa2_backend backend);

/* FLOPs of the backward pass by the paper's count: 2.5 x the forward's. */
double fa2_bwd_flops(const fa2_bwd_args *args);

/* ---- tiling ------------------------------------------------------------ */

typedef enum fa2_pass { FA2_PASS_FWD = 0, FA2_PASS_BWD = 1 } fa2_pass;

typedef struct fa2_tile_config {
    int block_m;  /* query rows per tile                      */
    int block_n;  /* key rows per tile                        */
    int warps;    /* warps per thread block (GPU); 0 on CPU   */
    int head_dim; /* head dim the kernel is instantiated for  */
} fa2_tile_config;

/* The tiling the backend uses for a pass, dtype and head dim (the forward
 * without a mask: fa2_fwd_tile_config gives it for a given problem). The
 * tiled CPU backend runs any tiling; give it the CUDA one to mirror the
 * kernel exactly. */
fa2_status fa2_tile_config_for(fa2_backend backend, fa2_pass pass,
                               fa2_dtype dtype, int head_dim,
                               fa2_tile_config *out);

/* The forward tiling the backend picks for these arguments (checked as
 * fa2_fwd_check checks them): fa2_tile_config_for's, except where the
 * backend's choice depends on more than the head dim (the CUDA forward on
 * sm_90 at head dim 64 runs 128-row tiles for causal problems of at most
 * 1024 query rows, 192 otherwise). The tiled CPU backend runs the
 * caller's block_m / block_n instead where the arguments set them. */
fa2_status fa2_fwd_tile_config(const fa2_fwd_args *args, fa2_backend backend,
                               fa2_tile_config *out);

/* FLOPs of the forward pass, summed over sequences: the FlashAttention-2
 * paper's count 4 * Nq * Nk * d * heads_q, halved when causal with Nq = Nk;
 * with a window, or causal with Nq != Nk, 4 * d * heads_q * (the number of
 * visible (query, key) pairs), counted exactly. With cu_seqlens, these must
 * be host pointers here (the function reads them). 0 for invalid args. */
double fa2_fwd_flops(const fa2_fwd_args *args);

/* ---- CUDA backend (gpu/) ------------------------------------------------ */
/* fa2_fwd(..., FA2_BACKEND_CUDA) takes device pointers (q, k, v, o, lse and
 * cu_seqlens_q/k, on the current device; data 16-byte aligned and strides
 * of dims 0..2 multiples of 16 bytes), fp16 or bf16, and args->stream (NULL:
 * the default stream). It returns once the kernel is queued: an error of the
 * running kernel surfaces at the caller's next synchronising CUDA call. With
 * cu_seqlens, max_seqlen_q and max_seqlen_k must be given (the lengths live
 * on the device). Callers allocate device memory themselves (cudaMalloc or a
 * framework's allocator); the library allocates nothing per call. */

/* Global-memory traffic of the CUDA forward kernels (fa2_fwd, and the
 * append, main and combine kernels of fa2_fwd_kvcache), counted by their
 * thread blocks in a library configured with --enable-traffic-counters:
 * the bytes each block requests from and writes to global memory (rows and
 * columns it predicates off are not counted), summed over every launch
 * since the last reset. Other builds return FA2_ERR_NOT_BUILT. Read and
 * reset with the device idle; the counters are those of the current
 * device. The fields after written_bytes only fa2_fwd_kvcache moves (the
 * simulator's FA2_SIM_T_K_NEW, _V_NEW, _O_PARTIAL, _LSE_PARTIAL, and its K
 * and V written). */
typedef struct fa2_traffic {
    uint64_t q_bytes;       /* loaded  */
    uint64_t k_bytes;       /* loaded  */
    uint64_t v_bytes;       /* loaded  */
    uint64_t o_bytes;       /* stored  */
    uint64_t lse_bytes;     /* stored  */
    uint64_t read_bytes;    /* every load counted here     */
    uint64_t written_bytes; /* every store counted here    */
    uint64_t k_new_bytes, v_new_bytes;  /* loaded by the append          */
    uint64_t k_cache_written_bytes;     /* stored into the caches by the */
    uint64_t v_cache_written_bytes;     /*   append                      */
    uint64_t o_partial_written_bytes;   /* split-KV float32 partials:    */
    uint64_t lse_partial_written_bytes; /*   stored by the main kernel,  */
    uint64_t o_partial_read_bytes;      /*   loaded by the combine (an   */
    uint64_t lse_partial_read_bytes;    /*   empty part's O is not)      */
} fa2_traffic;

fa2_status fa2_cuda_traffic_reset(void);
fa2_status fa2_cuda_traffic_read(fa2_traffic *out);

/* *bytes = the workspace the CUDA backward of these args needs (see
 * fa2_bwd_args.workspace); the args are checked as fa2_bwd_check does,
 * except that workspace and workspace_bytes are ignored. */
fa2_status fa2_cuda_bwd_workspace_size(const fa2_bwd_args *args, size_t *bytes);
/* ---- end of the CUDA section -------------------------------------------- */

/* ---- simulator ----------------------------------------------------------- */
/* The memory-hierarchy simulator (sim/, doc/io-complexity.md). It executes
 * the tile schedule of standard attention, FlashAttention(-1) or
 * FlashAttention-2, forward and/or backward, driven by the same tile logic
 * as the CPU mirror and the kernels (lib/fa2_tile.h), against a model of a
 * GPU, and counts bytes moved and FLOPs done at each level. Sizes only: no
 * tensor data is touched. Everything is returned in caller-owned structs. */

typedef enum fa2_sim_algo {
    FA2_SIM_STANDARD = 0, /* the FA paper's Algorithm 0: S and P via HBM      */
    FA2_SIM_FA1 = 1,      /* FlashAttention: K/V outer, O, l, m via HBM       */
    FA2_SIM_FA2 = 2,      /* FlashAttention-2: Q outer, O and LSE once        */
    FA2_SIM_DECODE = 3    /* the forward over a KV cache (fa2_fwd_kvcache):
                             a group's query heads packed as one tile's rows,
                             K/V read once per (sequence, key head, split),
                             split-KV partials and their combine            */
} fa2_sim_algo;

typedef enum fa2_sim_pass {
    FA2_SIM_PASS_FWD = 1,
    FA2_SIM_PASS_BWD = 2,
    FA2_SIM_PASS_FWD_BWD = 3
} fa2_sim_pass;

/* How a thread block's warps share a forward tile step. */
typedef enum fa2_sim_partition {
    FA2_SIM_PARTITION_DEFAULT = 0, /* the algorithm's own: FA1 split-K, else split-Q */
    FA2_SIM_SPLIT_Q = 1, /* FA2: warps split the query rows, share K/V       */
    FA2_SIM_SPLIT_K = 2  /* FA1: warps split K/V, reduce through smem        */
} fa2_sim_partition;

/* Launch order of a grid's thread blocks. */
typedef enum fa2_sim_order {
    FA2_SIM_ORDER_HEAD_MAJOR = 0, /* the blocks of one (sequence, head) are
                                     consecutive (the kernels' order)        */
    FA2_SIM_ORDER_BLOCK_MAJOR = 1 /* block index slowest: every (sequence,
                                     head) at one depth, then the next       */
} fa2_sim_order;

/* The global-memory tensors the schedules move. */
typedef enum fa2_sim_tensor {
    FA2_SIM_T_Q = 0, FA2_SIM_T_K, FA2_SIM_T_V, FA2_SIM_T_O,
    FA2_SIM_T_LSE,      /* float32 log-sum-exp (FA2)                         */
    FA2_SIM_T_L,        /* float32 row sums l (FA1)                          */
    FA2_SIM_T_M,        /* float32 row maxima m (FA1)                        */
    FA2_SIM_T_DO, FA2_SIM_T_D, /* dO; float32 D = rowsum(dO o O)           */
    FA2_SIM_T_DQ_ACCUM, /* float32 dQ accumulator                            */
    FA2_SIM_T_DQ, FA2_SIM_T_DK, FA2_SIM_T_DV,
    FA2_SIM_T_S, FA2_SIM_T_P, FA2_SIM_T_DP, FA2_SIM_T_DS, /* standard only   */
    FA2_SIM_T_O_PARTIAL,   /* decode: float32 partial O of each split        */
    FA2_SIM_T_LSE_PARTIAL, /* decode: float32 partial LSE of each split      */
    FA2_SIM_T_K_NEW, FA2_SIM_T_V_NEW, /* decode: the appended tokens         */
    FA2_SIM_TENSOR_COUNT
} fa2_sim_tensor;

/* A GPU. The built-in profiles cite their sources in sim/device.c. */
typedef struct fa2_sim_device {
    char name[48];
    int sms;                      /* streaming multiprocessors              */
    int max_blocks_per_sm;        /* resident thread blocks per SM          */
    int max_warps_per_sm;
    int64_t regs_per_sm;          /* 32-bit registers                       */
    int64_t smem_per_sm;          /* shared memory per SM, bytes            */
    int64_t smem_per_block;       /* most one block may have, bytes         */
    int64_t smem_reserved_per_block; /* taken by the system per block       */
    int64_t l2_bytes;
    int l2_sector_bytes;
    double hbm_gbps;              /* DRAM bandwidth, 1e9 bytes/s            */
    double matmul_tflops;         /* dense fp16/bf16 tensor-core peak       */
    double fp32_tflops;           /* non-matmul fp32 peak (an FMA is 2)     */
    double sfu_tops;              /* exp2/log2/rcp per second, 1e12         */
    int arch;                     /* compute capability x 10 (80: A100, 90:
                                     H100/H200); >= 90 runs the forward as
                                     the warp-specialised sm_90 kernel, whose
                                     tensor-core and CUDA-core work overlap */
    /* Fixed costs (doc/io-complexity.md section 12, "Fixed costs"); 0
     * turns a term off. A launch takes launch_us + max(memory, compute,
     * latency), its latency the longest chain of a block slot: each block
     * holds a slot for block_us plus the dependent round trips its
     * schedule makes (to DRAM: dram_latency_ns each; to L2: l2_latency_ns;
     * to shared memory: smem_latency_ns) plus its pipelined tile steps
     * (each max(tile_step_ns scaled to the tile, dram_latency_ns)). */
    double launch_us;             /* per kernel launch: launch latency plus
                                     the grid's drain, the gap a dependent
                                     kernel on the same stream waits        */
    double block_us;              /* per thread block: dispatch, prologue
                                     and exit on its SM                     */
    double dram_latency_ns;       /* one load that misses L2, issue to use  */
    double l2_latency_ns;         /* one load that hits L2, issue to use    */
    double smem_latency_ns;       /* one shared-memory load and the operation
                                     waiting on it, in a dependent loop     */
    double tile_step_ns;          /* one warp's step over a 32-key tile at
                                     head dim 128 (two MMA chains and the
                                     online softmax), latency bound: the
                                     decode kernel's warp, alone on its
                                     scheduler                              */
} fa2_sim_device;

/* "a100" (A100-SXM4-80GB), "h100" (H100-SXM5-80GB), "h200" (H200-SXM). */
fa2_status fa2_sim_device_builtin(const char *name, fa2_sim_device *out);
/* Set one field by its name (the struct member's name, e.g. "l2_bytes",
 * "hbm_gbps"; "base" loads a built-in profile first). Sizes accept a K, M
 * or G suffix (powers of 1024). */
fa2_status fa2_sim_device_set(fa2_sim_device *dev, const char *key,
                              const char *value);
/* Apply "key = value" lines (# comments, blank lines) to *dev. */
fa2_status fa2_sim_device_parse(fa2_sim_device *dev, const char *text);
/* FA2_OK if every field is in range. */
fa2_status fa2_sim_device_check(const fa2_sim_device *dev);

typedef struct fa2_sim_args {
    fa2_sim_algo algo;
    fa2_sim_pass pass;
    fa2_dtype dtype;            /* operands; LSE, D, l, m, dQ accum: fp32   */
    int64_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
    int causal;                 /* as fa2_fwd_args: bottom-right aligned    */
    int64_t window_left, window_right; /* -1: unbounded                     */
    /* Variable lengths (host memory): num_seqs + 1 offsets each, batch 1;
     * seqlen_q/seqlen_k are then ignored. Both NULL: fixed lengths. */
    const int32_t *cu_seqlens_q, *cu_seqlens_k;
    int64_t num_seqs;
    /* Tiles, 0 = default: FA2 the kernels' tiling; FA1 Bc = ceil(M/4d),
     * Br = min(Bc, d); standard 128 x 128 GEMM tiles. */
    int block_m, block_n, warps; /* FA2 forward; FA1 and standard: both
                                    passes (standard: every GEMM's tile)  */
    int bwd_block_m, bwd_block_n, bwd_warps; /* FA2 backward              */
    /* SRAM size M in bytes; 0 = the device's smem_per_block. FA1's tiles
     * come from it; FA2's too when it is given and its tiles are not. */
    int64_t sram_bytes;
    fa2_sim_partition partition; /* forward warp partitioning             */
    int l2;                      /* model the L2 cache (DRAM counters)     */
    fa2_sim_order order;
    int regs_per_thread;         /* occupancy limit; 0 = not limiting      */
    /* FA2_SIM_DECODE only (fixed lengths, forward): seqlen_q new tokens of
     * each sequence against seqlen_k keys, the cache after the append.
     * block_m / block_n / warps override the decode tiles (packed rows, 64;
     * the kernels' (gpu/kvcache_params.h: 16 packed rows a warp, one warp
     * up to 16 rows, else four; keys fa2_kvcache_block_n). */
    int64_t page_size;      /* 0: contiguous cache; else a multiple of 16    */
    int num_splits;         /* 0: the library's choice for the device's SMs  */
    int64_t seqlen_new;     /* tokens appended (0 .. seqlen_k): read from
                               k_new / v_new, written into the cache by an
                               append launch before the decode launch       */
    int64_t cache_capacity; /* keys a cache holds (the split choice's input);
                               0: seqlen_k                                   */
    /* FA2 backward in deterministic mode (fa2_bwd_args.deterministic): the
     * key blocks launch in descending order and walk their query blocks
     * from fa2_bwd_q_start, and dQ has a second float32 accumulator that
     * the preprocess clears and the postprocess reads (lib/fa2_tile.h,
     * fa2_bwd_dq_turn) */
    int deterministic;
    /* FA2 (both passes): the score modifiers and dropout, as on
     * fa2_fwd_args (0: off): their per-element work is counted in
     * flops_other and sfu_ops (sim/flops.c); the bytes do not change (the
     * slopes and sinks are a float per head) */
    float softcap;
    int alibi, sinks;
    float dropout_p;
} fa2_sim_args;

/* Defaults: FA2 forward, fp16, window -1/-1, L2 on, everything else 0. */
void fa2_sim_args_init(fa2_sim_args *args);

/* Counters of one launch or a whole run; bytes and FLOPs. */
typedef struct fa2_sim_counters {
    int64_t global_read, global_written; /* what the kernels request      */
    int64_t dram_read, dram_written;     /* after the L2 model (0 without) */
    int64_t smem_read, smem_written;
    int64_t flops_matmul;                /* executed, tile-granular        */
    int64_t flops_other;                 /* exp, max, sum, rescale, mask   */
    int64_t sfu_ops;                     /* the exp2/log2/rcp among them   */
    int64_t tensor_read[FA2_SIM_TENSOR_COUNT];    /* global, per tensor   */
    int64_t tensor_written[FA2_SIM_TENSOR_COUNT];
} fa2_sim_counters;

typedef struct fa2_sim_launch {
    char name[32];        /* e.g. "fa2_fwd", "fa2_bwd_preprocess"           */
    int64_t grid;         /* thread blocks                                  */
    int warps, block_m, block_n;
    int64_t smem_per_block; /* modelled shared-memory footprint, bytes      */
    int blocks_per_sm;    /* resident blocks per SM (occupancy)             */
    int fits;             /* footprint <= the device's smem_per_block       */
    fa2_sim_counters c;
    double memory_ms;     /* DRAM (with L2) or global bytes / bandwidth     */
    double compute_ms;    /* the busiest SM's FLOPs at its share of peak    */
    double latency_ms;    /* the longest block-slot chain of fixed costs and
                             dependent round trips                          */
    double launch_ms;     /* the device's launch_us                         */
    double time_ms;       /* launch_ms + max(max(memory_ms, compute_ms) +
                             fill_ms, latency_ms)                           */
    double fill_ms;       /* the part of a streaming (tile-stepping) block's
                             chain its tiles do not flow in: block_us and
                             its round trips; the least over the launch's
                             blocks (0: none streams)                       */
} fa2_sim_launch;

#define FA2_SIM_MAX_LAUNCHES 8

typedef struct fa2_sim_result {
    int num_launches;
    fa2_sim_launch launch[FA2_SIM_MAX_LAUNCHES];
    fa2_sim_counters total;
    int64_t closed_form_read, closed_form_written; /* global, closed forms  */
    int64_t compulsory_read, compulsory_written;   /* inputs once, outputs once */
    int64_t l2_hits, l2_misses;   /* tile accesses (reads and atomics)      */
    double flops_paper;           /* the FA2 paper's FLOP count             */
    double time_ms;               /* sum of the launches' times             */
    double tflops;                /* flops_paper / time                     */
} fa2_sim_result;

/* Simulate; *out is overwritten. */
fa2_status fa2_sim_run(const fa2_sim_args *args, const fa2_sim_device *dev,
                       fa2_sim_result *out);

/* The global bytes of the schedule from its closed forms (no simulation):
 * out's global_read, global_written and tensor_* are filled, the rest 0. */
fa2_status fa2_sim_closed_form(const fa2_sim_args *args,
                               const fa2_sim_device *dev,
                               fa2_sim_counters *out);

/* The bytes any exact schedule must move: each input row (or score) that
 * some visible (query, key) pair needs read once, each output written once. */
fa2_status fa2_sim_compulsory(const fa2_sim_args *args, int64_t *read,
                              int64_t *written);

/* The tiling the simulation uses for one pass (FA2_SIM_PASS_FWD or _BWD). */
fa2_status fa2_sim_tiles(const fa2_sim_args *args, const fa2_sim_device *dev,
                         fa2_sim_pass pass, fa2_tile_config *out);

typedef enum fa2_sim_format_kind {
    FA2_SIM_FORMAT_TEXT = 0,
    FA2_SIM_FORMAT_JSON = 1,
    FA2_SIM_FORMAT_CSV = 2,       /* one data row                           */
    FA2_SIM_FORMAT_CSV_HEADER = 3 /* the header row of FA2_SIM_FORMAT_CSV   */
} fa2_sim_format_kind;

/* Write a report into buf (snprintf rules: always terminated when size >
 * 0); *needed (may be NULL) gets the length without the terminator. */
fa2_status fa2_sim_format(const fa2_sim_args *args, const fa2_sim_device *dev,
                          const fa2_sim_result *res, fa2_sim_format_kind kind,
                          char *buf, size_t size, size_t *needed);

/* Names: "standard" "fa1" "fa2"; "fwd" "bwd" "fwd+bwd"; "split-q" ...;
 * "head-major" "block-major"; "q" "k" ... "ds". "?" when out of range. */
const char *fa2_sim_algo_name(fa2_sim_algo a);
const char *fa2_sim_pass_name(fa2_sim_pass p);
const char *fa2_sim_partition_name(fa2_sim_partition p);
const char *fa2_sim_order_name(fa2_sim_order o);
const char *fa2_sim_tensor_name(fa2_sim_tensor t);
/* ---- end of the simulator section ---------------------------------------- */

/* ---- CUDA backward traffic ----------------------------------------------- */
/* Global-memory traffic of the CUDA backward's three kernels (preprocess,
 * main, postprocess), counted like the forward's (fa2_traffic) in a library
 * configured with --enable-traffic-counters, per tensor and indexed like
 * the simulator's counters (fa2_sim_tensor): tensor_read[FA2_SIM_T_Q] is
 * what fa2 sim --no-l2 --pass bwd reports as global reads of Q. The fp32
 * atomic add of a dQ tile counts as a read and a write of the accumulator
 * (doc/io-complexity.md section 9). Summed over every launch since the last
 * fa2_cuda_bwd_traffic_reset; other builds return FA2_ERR_NOT_BUILT. */
typedef struct fa2_bwd_traffic {
    uint64_t tensor_read[FA2_SIM_TENSOR_COUNT];
    uint64_t tensor_written[FA2_SIM_TENSOR_COUNT];
    uint64_t read_bytes;    /* sums of the above */
    uint64_t written_bytes;
} fa2_bwd_traffic;

fa2_status fa2_cuda_bwd_traffic_reset(void);
fa2_status fa2_cuda_bwd_traffic_read(fa2_bwd_traffic *out);

#ifdef __cplusplus
}
#endif

#endif /* FA2_H */
