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
    FA2_ERR_INTERNAL          /* a bug in fa2: please report it               */
} fa2_status;

#define FA2_STATUS_COUNT ((int)FA2_ERR_INTERNAL + 1)

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
     * LSE = ln sum_j exp(scale * q.k_j); +inf for a row that sees no key. */
    fa2_tensor lse;

    float softmax_scale; /* 0: 1/sqrt(head_dim); must be finite            */
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
    int64_t max_seqlen_q; /* 0: computed; else must be >= every length    */
    int64_t max_seqlen_k;

    /* Tiled backend (and the CUDA one, which ignores these): tile sizes,
     * 0 = the library's choice (fa2_tile_config). */
    int block_m; /* query rows per tile  (Br in the paper) */
    int block_n; /* key rows per tile    (Bc in the paper) */

    int num_threads; /* CPU backends; 0 = fa2_default_num_threads()       */
    void *stream;    /* CUDA backend: a cudaStream_t, NULL = default      */
} fa2_fwd_args;

/* Defaults: everything zero / NULL, window -1/-1 (unbounded). */
void fa2_fwd_args_init(fa2_fwd_args *args);

/* Validate args (fa2_fwd does this first) without computing anything. */
fa2_status fa2_fwd_check(const fa2_fwd_args *args, fa2_backend backend);

/* O = softmax(scale * Q K^T + mask) V, and LSE, on the chosen backend. */
fa2_status fa2_fwd(const fa2_fwd_args *args, fa2_backend backend);

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
} fa2_bwd_args;

/* Defaults: everything zero / NULL, window -1/-1 (unbounded). */
void fa2_bwd_args_init(fa2_bwd_args *args);

fa2_status fa2_bwd_check(const fa2_bwd_args *args, fa2_backend backend);

/* dq, dk, dv of the attention fa2_fwd computed (FA2 Algorithm 2). */
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

/* The tiling the backend uses for this problem. The tiled CPU backend runs
 * any tiling; give it the CUDA one to mirror the kernel exactly. */
fa2_status fa2_tile_config_for(fa2_backend backend, fa2_pass pass,
                               fa2_dtype dtype, int head_dim,
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

/* Global-memory traffic of the CUDA forward kernel, counted by its thread
 * blocks in a library configured with --enable-traffic-counters: the bytes
 * each block requests from and writes to global memory (rows and columns it
 * predicates off are not counted), summed over every launch since the last
 * reset. Other builds return FA2_ERR_NOT_BUILT. Read and reset with the
 * device idle; the counters are those of the current device. */
typedef struct fa2_traffic {
    uint64_t q_bytes;       /* loaded  */
    uint64_t k_bytes;       /* loaded  */
    uint64_t v_bytes;       /* loaded  */
    uint64_t o_bytes;       /* stored  */
    uint64_t lse_bytes;     /* stored  */
    uint64_t read_bytes;    /* q + k + v */
    uint64_t written_bytes; /* o + lse   */
} fa2_traffic;

fa2_status fa2_cuda_traffic_reset(void);
fa2_status fa2_cuda_traffic_read(fa2_traffic *out);
/* ---- end of the CUDA section -------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* FA2_H */
