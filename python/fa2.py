"""fa2.py — a small ctypes binding of libfa2 for PyTorch tensors: the forward
and backward passes, and attention() with autograd over both.

    import torch, fa2
    q = torch.randn(2, 1024, 16, 128, device="cuda", dtype=torch.bfloat16)
    o, lse = fa2.forward(q, k, v, causal=True, return_lse=True)
    dq, dk, dv = fa2.backward(q, k, v, o, lse, do, causal=True)
    o = fa2.attention(q, k, v, causal=True)          # autograd
    o = fa2.attention_varlen(q, k, v, cu_q, cu_k)    # packed, [total, H, d]

Tensors are [batch, seqlen, heads, head_dim] (flash-attn's layout, not SDPA's
[batch, heads, seqlen, head_dim]), last dim contiguous, any other strides.
CUDA tensors run on libfa2's CUDA kernel on PyTorch's current stream; CPU
tensors on the tiled CPU mirror (backend="tiled"), the float64 oracle
("oracle") or standard attention ("standard").

The library is found through $FA2_LIB, else the build trees beside this file
(build*/lib/.libs/libfa2.so), else the system's libfa2.so.0.
"""
import ctypes
import ctypes.util
import glob
import os

FA2_OK = 0
DTYPE_FP32, DTYPE_FP16, DTYPE_BF16 = 0, 1, 2
BACKENDS = {"oracle": 0, "standard": 1, "tiled": 2, "cuda": 3}
PASS_FWD, PASS_BWD = 0, 1


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("shape", ctypes.c_int64 * 4), ("stride", ctypes.c_int64 * 4)]


class FwdArgs(ctypes.Structure):
    _fields_ = [("q", Tensor), ("k", Tensor), ("v", Tensor), ("o", Tensor),
                ("lse", Tensor),
                ("softmax_scale", ctypes.c_float), ("causal", ctypes.c_int),
                ("window_left", ctypes.c_int64), ("window_right", ctypes.c_int64),
                ("cu_seqlens_q", ctypes.c_void_p), ("cu_seqlens_k", ctypes.c_void_p),
                ("num_seqs", ctypes.c_int64),
                ("max_seqlen_q", ctypes.c_int64), ("max_seqlen_k", ctypes.c_int64),
                ("block_m", ctypes.c_int), ("block_n", ctypes.c_int),
                ("num_threads", ctypes.c_int), ("stream", ctypes.c_void_p)]


class TileConfig(ctypes.Structure):
    _fields_ = [("block_m", ctypes.c_int), ("block_n", ctypes.c_int),
                ("warps", ctypes.c_int), ("head_dim", ctypes.c_int)]


class Traffic(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("q_bytes", "k_bytes", "v_bytes", "o_bytes", "lse_bytes",
                 "read_bytes", "written_bytes")]


class Fa2Error(RuntimeError):
    def __init__(self, status, message):
        super().__init__("%s: %s" % (status, message))
        self.status = status


def _find_library():
    env = os.environ.get("FA2_LIB")
    if env:
        return env
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for pat in ("build-cuda*/lib/.libs/libfa2.so", "build*/lib/.libs/libfa2.so",
                "_build/lib/.libs/libfa2.so"):
        hits = sorted(glob.glob(os.path.join(root, pat)))
        if hits:
            return hits[0]
    found = ctypes.util.find_library("fa2")
    return found or "libfa2.so.0"


_lib = None


def lib():
    """The loaded libfa2 (loaded on first use)."""
    global _lib
    if _lib is None:
        L = ctypes.CDLL(_find_library())
        L.fa2_fwd.argtypes = [ctypes.POINTER(FwdArgs), ctypes.c_int]
        L.fa2_fwd.restype = ctypes.c_int
        L.fa2_fwd_args_init.argtypes = [ctypes.POINTER(FwdArgs)]
        L.fa2_fwd_args_init.restype = None
        L.fa2_last_error.restype = ctypes.c_char_p
        L.fa2_status_str.argtypes = [ctypes.c_int]
        L.fa2_status_str.restype = ctypes.c_char_p
        L.fa2_version_string.restype = ctypes.c_char_p
        L.fa2_backend_available.argtypes = [ctypes.c_int]
        L.fa2_backend_available.restype = ctypes.c_int
        L.fa2_tile_config_for.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                          ctypes.c_int, ctypes.POINTER(TileConfig)]
        L.fa2_tile_config_for.restype = ctypes.c_int
        L.fa2_cuda_traffic_reset.restype = ctypes.c_int
        L.fa2_cuda_traffic_read.argtypes = [ctypes.POINTER(Traffic)]
        L.fa2_cuda_traffic_read.restype = ctypes.c_int
        _lib = L
    return _lib


def _check(status):
    if status != FA2_OK:
        L = lib()
        raise Fa2Error(L.fa2_status_str(status).decode(),
                       L.fa2_last_error().decode())


def version():
    return lib().fa2_version_string().decode()


def _dtype_code(t):
    import torch
    codes = {torch.float32: DTYPE_FP32, torch.float16: DTYPE_FP16,
             torch.bfloat16: DTYPE_BF16}
    if t.dtype not in codes:
        raise TypeError("fa2 takes float32, float16 or bfloat16, not %s" % t.dtype)
    return codes[t.dtype]


def tensor_view(t):
    """fa2_tensor describing a torch tensor (4-d, or 3-d for lse)."""
    x = Tensor()
    x.data = t.data_ptr()
    x.dtype = _dtype_code(t)
    for i in range(4):
        x.shape[i] = t.shape[i] if i < t.dim() else 1
        x.stride[i] = t.stride(i) if i < t.dim() else 1
    return x


def tile_config(backend, dtype, head_dim, pass_=PASS_FWD):
    import torch
    c = TileConfig()
    code = {torch.float32: DTYPE_FP32, torch.float16: DTYPE_FP16,
            torch.bfloat16: DTYPE_BF16}[dtype]
    _check(lib().fa2_tile_config_for(BACKENDS[backend], pass_, code, head_dim,
                                     ctypes.byref(c)))
    return {"block_m": c.block_m, "block_n": c.block_n, "warps": c.warps,
            "head_dim": c.head_dim}


def traffic_reset():
    _check(lib().fa2_cuda_traffic_reset())


def traffic_read():
    t = Traffic()
    _check(lib().fa2_cuda_traffic_read(ctypes.byref(t)))
    return {n: getattr(t, n) for n, _ in Traffic._fields_}


def make_args(q, k, v, out, lse=None, causal=False, window=(-1, -1),
              softmax_scale=0.0, cu_seqlens_q=None, cu_seqlens_k=None,
              max_seqlen_q=0, max_seqlen_k=0, stream=None, block_m=0, block_n=0):
    """The fa2_fwd_args for these tensors (kept alive by the caller); reuse
    it with run(args) to time the kernel without Python overhead."""
    a = FwdArgs()
    lib().fa2_fwd_args_init(ctypes.byref(a))
    a.q, a.k, a.v, a.o = tensor_view(q), tensor_view(k), tensor_view(v), tensor_view(out)
    if lse is not None:
        a.lse = tensor_view(lse)
    a.softmax_scale = float(softmax_scale or 0.0)
    a.causal = 1 if causal else 0
    a.window_left, a.window_right = int(window[0]), int(window[1])
    if cu_seqlens_q is not None:
        a.cu_seqlens_q = cu_seqlens_q.data_ptr()
        a.cu_seqlens_k = cu_seqlens_k.data_ptr()
        a.num_seqs = cu_seqlens_q.numel() - 1
        a.max_seqlen_q, a.max_seqlen_k = int(max_seqlen_q), int(max_seqlen_k)
    a.block_m, a.block_n = block_m, block_n
    if q.is_cuda:
        import torch
        s = stream if stream is not None else torch.cuda.current_stream(q.device)
        a.stream = s.cuda_stream
    return a


def run(args, backend="cuda"):
    _check(lib().fa2_fwd(ctypes.byref(args), BACKENDS[backend]))


def forward(q, k, v, causal=False, window=(-1, -1), softmax_scale=0.0,
            out=None, return_lse=False, cu_seqlens_q=None, cu_seqlens_k=None,
            max_seqlen_q=0, max_seqlen_k=0, backend=None):
    """O (and LSE [batch, heads_q, seqlen_q], float32) of attention.

    q [B, Nq, Hq, d], k/v [B, Nk, Hkv, d]; with cu_seqlens (int32, on q's
    device) the sequences are packed along dim 1 of tensors with batch 1
    (3-d [total, H, d] tensors are accepted and get that batch dim)."""
    import torch
    squeeze = q.dim() == 3
    if squeeze:
        q, k, v = q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)
    if backend is None:
        backend = "cuda" if q.is_cuda else "tiled"
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    elif squeeze:
        out = out.unsqueeze(0)
    lse = None
    if return_lse:
        lse = torch.empty(q.shape[0], q.shape[2], q.shape[1], device=q.device,
                          dtype=torch.float32)
    if cu_seqlens_q is not None and q.is_cuda and (not max_seqlen_q or not max_seqlen_k):
        lq = cu_seqlens_q[1:] - cu_seqlens_q[:-1]
        lk = cu_seqlens_k[1:] - cu_seqlens_k[:-1]
        max_seqlen_q = max(1, int(lq.max())) if not max_seqlen_q else max_seqlen_q
        max_seqlen_k = max(1, int(lk.max())) if not max_seqlen_k else max_seqlen_k
    a = make_args(q, k, v, out, lse, causal, window, softmax_scale, cu_seqlens_q,
                  cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    run(a, backend)
    if squeeze:
        out = out.squeeze(0)
    return (out, lse) if return_lse else out


class BwdArgs(ctypes.Structure):
    _fields_ = [("q", Tensor), ("k", Tensor), ("v", Tensor), ("o", Tensor),
                ("lse", Tensor), ("dout", Tensor),
                ("dq", Tensor), ("dk", Tensor), ("dv", Tensor),
                ("softmax_scale", ctypes.c_float), ("causal", ctypes.c_int),
                ("window_left", ctypes.c_int64), ("window_right", ctypes.c_int64),
                ("cu_seqlens_q", ctypes.c_void_p), ("cu_seqlens_k", ctypes.c_void_p),
                ("num_seqs", ctypes.c_int64),
                ("max_seqlen_q", ctypes.c_int64), ("max_seqlen_k", ctypes.c_int64),
                ("block_m", ctypes.c_int), ("block_n", ctypes.c_int),
                ("deterministic", ctypes.c_int), ("num_threads", ctypes.c_int),
                ("stream", ctypes.c_void_p),
                ("workspace", ctypes.c_void_p), ("workspace_bytes", ctypes.c_size_t)]


def make_bwd_args(q, k, v, o, lse, dout, dq, dk, dv, causal=False,
                  window=(-1, -1), softmax_scale=0.0, cu_seqlens_q=None,
                  cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0,
                  deterministic=False, stream=None):
    """The fa2_bwd_args for these tensors (kept alive by the caller); reuse
    it with run_bwd(args) to time the kernels without Python overhead."""
    L = lib()
    if not getattr(L, "_fa2_bwd_bound", False):
        L.fa2_bwd.argtypes = [ctypes.POINTER(BwdArgs), ctypes.c_int]
        L.fa2_bwd.restype = ctypes.c_int
        L.fa2_bwd_args_init.argtypes = [ctypes.POINTER(BwdArgs)]
        L.fa2_bwd_args_init.restype = None
        L._fa2_bwd_bound = True
    a = BwdArgs()
    L.fa2_bwd_args_init(ctypes.byref(a))
    a.q, a.k, a.v = tensor_view(q), tensor_view(k), tensor_view(v)
    a.o, a.lse, a.dout = tensor_view(o), tensor_view(lse), tensor_view(dout)
    a.dq, a.dk, a.dv = tensor_view(dq), tensor_view(dk), tensor_view(dv)
    a.softmax_scale = float(softmax_scale or 0.0)
    a.causal = 1 if causal else 0
    a.window_left, a.window_right = int(window[0]), int(window[1])
    if cu_seqlens_q is not None:
        a.cu_seqlens_q = cu_seqlens_q.data_ptr()
        a.cu_seqlens_k = cu_seqlens_k.data_ptr()
        a.num_seqs = cu_seqlens_q.numel() - 1
        a.max_seqlen_q, a.max_seqlen_k = int(max_seqlen_q), int(max_seqlen_k)
    a.deterministic = 1 if deterministic else 0
    if q.is_cuda:
        import torch
        s = stream if stream is not None else torch.cuda.current_stream(q.device)
        a.stream = s.cuda_stream
        # The dQ accumulator from PyTorch's caching allocator: the library's
        # own (cudaMallocAsync) maps its memory again after every
        # synchronisation, which costs more than a short backward.
        if not getattr(L, "_fa2_ws_bound", False):
            L.fa2_cuda_bwd_workspace_size.argtypes = [ctypes.POINTER(BwdArgs),
                                                      ctypes.POINTER(ctypes.c_size_t)]
            L.fa2_cuda_bwd_workspace_size.restype = ctypes.c_int
            L._fa2_ws_bound = True
        n = ctypes.c_size_t(0)
        if L.fa2_cuda_bwd_workspace_size(ctypes.byref(a), ctypes.byref(n)) == 0:
            ws = torch.empty(n.value, dtype=torch.uint8, device=q.device)
            if s != torch.cuda.current_stream(q.device):
                ws.record_stream(s)
            a.workspace, a.workspace_bytes = ws.data_ptr(), n.value
            a._workspace = ws  # alive as long as the args
    return a


def run_bwd(args, backend="cuda"):
    _check(lib().fa2_bwd(ctypes.byref(args), BACKENDS[backend]))


def _max_lens(cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k):
    if not max_seqlen_q:
        max_seqlen_q = max(1, int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max()))
    if not max_seqlen_k:
        max_seqlen_k = max(1, int((cu_seqlens_k[1:] - cu_seqlens_k[:-1]).max()))
    return max_seqlen_q, max_seqlen_k


def backward(q, k, v, o, lse, dout, causal=False, window=(-1, -1),
             softmax_scale=0.0, deterministic=False, cu_seqlens_q=None,
             cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0, backend=None):
    """dq, dk, dv of the attention forward() computed (o and its lse given),
    for the loss gradient dout. With GQA/MQA dk and dv are summed over the
    query heads that share a key head. Layouts as forward()."""
    import torch
    squeeze = q.dim() == 3
    if squeeze:
        q, k, v, o, dout = (x.unsqueeze(0) for x in (q, k, v, o, dout))
    if backend is None:
        backend = "cuda" if q.is_cuda else "tiled"
    if dout.stride(-1) != 1 or any(s % 8 for s in dout.stride()[:-1]):
        dout = dout.contiguous()
    dq = torch.empty_like(q, memory_format=torch.contiguous_format)
    dk = torch.empty_like(k, memory_format=torch.contiguous_format)
    dv = torch.empty_like(v, memory_format=torch.contiguous_format)
    if cu_seqlens_q is not None and q.is_cuda:
        max_seqlen_q, max_seqlen_k = _max_lens(cu_seqlens_q, cu_seqlens_k,
                                               max_seqlen_q, max_seqlen_k)
    a = make_bwd_args(q, k, v, o, lse, dout, dq, dk, dv, causal, window,
                      softmax_scale, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                      max_seqlen_k, deterministic)
    run_bwd(a, backend)
    if squeeze:
        dq, dk, dv = dq.squeeze(0), dk.squeeze(0), dv.squeeze(0)
    return dq, dk, dv


_FA2_FUNCTION = None


def _autograd_function():
    global _FA2_FUNCTION
    if _FA2_FUNCTION is not None:
        return _FA2_FUNCTION
    import torch

    class FA2Function(torch.autograd.Function):
        """Forward and backward through libfa2 (CUDA kernels for CUDA
        tensors, the tiled CPU mirror otherwise)."""

        @staticmethod
        def forward(ctx, q, k, v, causal, window, softmax_scale, deterministic,
                    cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k):
            if cu_seqlens_q is not None and q.is_cuda:
                max_seqlen_q, max_seqlen_k = _max_lens(
                    cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
            o, lse = forward(q, k, v, causal=causal, window=window,
                             softmax_scale=softmax_scale, return_lse=True,
                             cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k,
                             max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k)
            ctx.save_for_backward(q, k, v, o, lse)
            ctx.cfg = (causal, window, softmax_scale, deterministic, cu_seqlens_q,
                       cu_seqlens_k, max_seqlen_q, max_seqlen_k)
            return o

        @staticmethod
        def backward(ctx, do):
            q, k, v, o, lse = ctx.saved_tensors
            (causal, window, scale, det, cq, ck, mq, mk) = ctx.cfg
            dq, dk, dv = backward(q, k, v, o, lse, do, causal=causal, window=window,
                                  softmax_scale=scale, deterministic=det,
                                  cu_seqlens_q=cq, cu_seqlens_k=ck,
                                  max_seqlen_q=mq, max_seqlen_k=mk)
            return dq, dk, dv, None, None, None, None, None, None, None, None

    _FA2_FUNCTION = FA2Function
    return FA2Function


def attention(q, k, v, causal=False, window=(-1, -1), softmax_scale=None,
              deterministic=False):
    """Attention with autograd: q [B, Nq, Hq, d], k/v [B, Nk, Hkv, d] (Hq a
    multiple of Hkv), fp16/bf16 CUDA tensors (or CPU tensors, on the tiled
    mirror). causal is bottom-right aligned; window = (left, right), -1 for
    unbounded; softmax_scale None = 1/sqrt(d); deterministic = dQ summed in
    a fixed order (bit-identical gradients run to run)."""
    return _autograd_function().apply(q, k, v, bool(causal), tuple(window),
                                      float(softmax_scale or 0.0),
                                      bool(deterministic), None, None, 0, 0)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=0,
                     max_seqlen_k=0, causal=False, window=(-1, -1),
                     softmax_scale=None, deterministic=False):
    """attention() on packed sequences: q [total_q, Hq, d], k/v [total_k,
    Hkv, d], cu_seqlens int32 on q's device (num_seqs + 1 offsets)."""
    return _autograd_function().apply(q, k, v, bool(causal), tuple(window),
                                      float(softmax_scale or 0.0),
                                      bool(deterministic), cu_seqlens_q,
                                      cu_seqlens_k, int(max_seqlen_q),
                                      int(max_seqlen_k))
