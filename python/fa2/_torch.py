"""_torch.py — libfa2 on PyTorch tensors: the forward and backward passes,
and attention() with autograd over both (python/fa2.py before the package).

CUDA tensors run on libfa2's CUDA kernels on PyTorch's current stream; CPU
tensors on the tiled CPU mirror (backend="tiled"), the float64 oracle
("oracle") or standard attention ("standard"). Tensors are [batch, seqlen,
heads, head_dim] (flash-attn's layout, not SDPA's), last dim contiguous.
"""
import ctypes

from ._lib import (BACKENDS, DTYPE_BF16, DTYPE_FP16, DTYPE_FP32, PASS_FWD,
                   BwdArgs, FwdArgs, KvcacheArgs, Tensor, TileConfig, Traffic, check as _check,
                   lib)


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


def set_mods(a, q, softcap=0.0, alibi_slopes=None, sinks=None, dropout_p=0.0,
             dropout_seed=0, dropout_offset=0):
    """The score modifiers and dropout on FwdArgs/BwdArgs a (doc/
    algorithm.md section 7): slopes and sinks as float32 tensors on q's
    device, kept alive on a."""
    import torch
    hq = q.shape[-2]
    a.softcap = float(softcap or 0.0)
    keep = []
    if alibi_slopes is not None:
        sl = torch.as_tensor(alibi_slopes, dtype=torch.float32,
                             device=q.device).contiguous()
        if sl.dim() not in (1, 2) or sl.shape[-1] != hq:
            raise ValueError("fa2: alibi_slopes must be float32 [heads_q] or "
                             "[batch, heads_q], heads_q = %d" % hq)
        a.alibi_slopes = sl.data_ptr()
        a.alibi_batch_stride = hq if sl.dim() == 2 else 0
        keep.append(sl)
    if sinks is not None:
        sk = torch.as_tensor(sinks, device=q.device).detach().to(
            torch.float32).contiguous()
        if sk.dim() != 1 or sk.shape[0] != hq:
            raise ValueError("fa2: sinks must be float32 [heads_q] = [%d]" % hq)
        a.sinks = sk.data_ptr()
        keep.append(sk)
    a.dropout_p = float(dropout_p)
    a.dropout_seed = int(dropout_seed) & 0xFFFFFFFFFFFFFFFF
    a.dropout_offset = int(dropout_offset) & 0xFFFFFFFFFFFFFFFF
    a._mods_keep = keep


def make_args(q, k, v, out, lse=None, causal=False, window=(-1, -1),
              softmax_scale=0.0, cu_seqlens_q=None, cu_seqlens_k=None,
              max_seqlen_q=0, max_seqlen_k=0, stream=None, block_m=0, block_n=0):
    """The fa2_fwd_args for these tensors; reuse it with run(args) to time
    the kernel without Python overhead. The args hold a reference to every
    tensor they point at (a temporary passed here stays alive as long as
    the args: its memory cannot be reused under them)."""
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
    a._keep = (q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k)
    if q.is_cuda:
        import torch
        s = stream if stream is not None else torch.cuda.current_stream(q.device)
        a.stream = s.cuda_stream
    return a


def run(args, backend="cuda"):
    _check(lib().fa2_fwd(ctypes.byref(args), BACKENDS[backend]))


def forward(q, k, v, causal=False, window=(-1, -1), softmax_scale=0.0,
            out=None, return_lse=False, cu_seqlens_q=None, cu_seqlens_k=None,
            max_seqlen_q=0, max_seqlen_k=0, backend=None, mods=None,
            return_dropout_mask=False):
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
    set_mods(a, q, **(mods or {}))
    mask = None
    if return_dropout_mask:
        if cu_seqlens_q is not None:
            mq, mk = _max_lens(cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
            shape = (cu_seqlens_q.numel() - 1, q.shape[2], mq, mk)
        else:
            shape = (q.shape[0], q.shape[2], q.shape[1], k.shape[1])
        mask = torch.zeros(shape, dtype=torch.uint8, device=q.device)
        a.dropout_mask = mask.data_ptr()
    run(a, backend)
    if squeeze:
        out = out.squeeze(0)
    res = (out, lse) if return_lse else (out,)
    res += (mask,) if return_dropout_mask else ()
    return res if len(res) > 1 else out


def _int32_on(t, device, name):
    import torch
    if not isinstance(t, torch.Tensor):
        raise TypeError("%s must be a torch tensor, not %s" % (name, type(t)))
    if t.dtype != torch.int32:
        raise TypeError("%s must be int32, not %s" % (name, t.dtype))
    if t.device != device:
        raise ValueError("%s is on %s but q on %s" % (name, t.device, device))
    return t


def make_kvcache_args(q, k_cache, v_cache, out, cache_seqlens, k_new=None,
                      v_new=None, block_table=None, lse=None, causal=False,
                      window=(-1, -1), softmax_scale=0.0, num_splits=0,
                      block_n=0, num_threads=0, stream=None, key_warps=0):
    """The fa2_kvcache_args for these tensors, holding a reference to each
    (as make_args); reuse it with run_kvcache(args) to time the call
    without Python work.
    cache_seqlens (and block_table) are int32 tensors on q's device; a
    block_table's last dim must be contiguous."""
    import torch
    L = lib()
    a = KvcacheArgs()
    L.fa2_kvcache_args_init(ctypes.byref(a))
    a.q, a.k_cache, a.v_cache = tensor_view(q), tensor_view(k_cache), tensor_view(v_cache)
    a.o = tensor_view(out)
    if lse is not None:
        a.lse = tensor_view(lse)
    if k_new is not None or v_new is not None:
        if k_new is None or v_new is None:
            raise ValueError("k and v (the new tokens) go together")
        a.k_new, a.v_new = tensor_view(k_new), tensor_view(v_new)
    a.cache_seqlens = _int32_on(cache_seqlens, q.device, "cache_seqlens").data_ptr()
    if block_table is not None:
        block_table = _int32_on(block_table, q.device, "block_table")
        if block_table.dim() != 2 or block_table.stride(1) != 1:
            raise ValueError("block_table must be [batch, max_pages] with its last "
                             "dim contiguous")
        a.block_table = block_table.data_ptr()
        a.max_pages = block_table.shape[1]
        a.block_table_stride = block_table.stride(0)
    a.softmax_scale = float(softmax_scale or 0.0)
    a.causal = 1 if causal else 0
    a.window_left, a.window_right = int(window[0]), int(window[1])
    a.num_splits, a.block_n, a.num_threads = int(num_splits), int(block_n), int(num_threads)
    a.key_warps = int(key_warps)
    if q.is_cuda:
        s = stream if stream is not None else torch.cuda.current_stream(q.device)
        a.stream = s.cuda_stream
        n = ctypes.c_size_t(0)
        if L.fa2_kvcache_workspace_size(ctypes.byref(a), BACKENDS["cuda"],
                                        ctypes.byref(n)) == 0 and n.value:
            ws = torch.empty(n.value, dtype=torch.uint8, device=q.device)
            a.workspace, a.workspace_bytes = ws.data_ptr(), n.value
            a._workspace = ws  # alive as long as the args
    a._keep = (q, k_cache, v_cache, out, lse, k_new, v_new, cache_seqlens,
               block_table)
    return a


def run_kvcache(args, backend="cuda"):
    _check(lib().fa2_fwd_kvcache(ctypes.byref(args), BACKENDS[backend]))


def kvcache_num_splits(args, backend="cuda"):
    """The split count the backend runs for these args."""
    n = ctypes.c_int(0)
    _check(lib().fa2_kvcache_num_splits(ctypes.byref(args), BACKENDS[backend],
                                        ctypes.byref(n)))
    return n.value


def kvcache_key_warps(args, backend="cuda"):
    """The key warps the backend runs for these args (1, or 4 warps sharing
    a decode block's keys)."""
    n = ctypes.c_int(0)
    _check(lib().fa2_kvcache_key_warps(ctypes.byref(args), BACKENDS[backend],
                                       ctypes.byref(n)))
    return n.value


def make_bwd_args(q, k, v, o, lse, dout, dq, dk, dv, causal=False,
                  window=(-1, -1), softmax_scale=0.0, cu_seqlens_q=None,
                  cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0,
                  deterministic=False, stream=None):
    """The fa2_bwd_args for these tensors, holding a reference to each (as
    make_args); reuse it with run_bwd(args) to time the kernels without
    Python overhead."""
    L = lib()
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
    a._keep = (q, k, v, o, lse, dout, dq, dk, dv, cu_seqlens_q, cu_seqlens_k)
    if q.is_cuda:
        import torch
        s = stream if stream is not None else torch.cuda.current_stream(q.device)
        a.stream = s.cuda_stream
        # The dQ accumulator from PyTorch's caching allocator: the library's
        # own (cudaMallocAsync) maps its memory again after every
        # synchronisation, which costs more than a short backward.
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
             cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0, backend=None,
             mods=None):
    """dq, dk, dv of the attention forward() computed (o and its lse given),
    for the loss gradient dout. With GQA/MQA dk and dv are summed over the
    query heads that share a key head. Layouts as forward(). With sinks in
    mods: (dq, dk, dv, dsinks)."""
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
    set_mods(a, q, **(mods or {}))
    dsinks = None
    if mods and mods.get("sinks") is not None:
        dsinks = torch.zeros(q.shape[2], dtype=torch.float32, device=q.device)
        a.dsinks = dsinks.data_ptr()
    run_bwd(a, backend)
    if squeeze:
        dq, dk, dv = dq.squeeze(0), dk.squeeze(0), dv.squeeze(0)
    return (dq, dk, dv) if dsinks is None else (dq, dk, dv, dsinks)


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
                    cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                    sinks, mods):
            if cu_seqlens_q is not None and q.is_cuda:
                max_seqlen_q, max_seqlen_k = _max_lens(
                    cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
            mods = dict(mods, sinks=sinks)
            o, lse = forward(q, k, v, causal=causal, window=window,
                             softmax_scale=softmax_scale, return_lse=True,
                             cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k,
                             max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
                             mods=mods)
            ctx.save_for_backward(q, k, v, o, lse)
            ctx.cfg = (causal, window, softmax_scale, deterministic, cu_seqlens_q,
                       cu_seqlens_k, max_seqlen_q, max_seqlen_k, mods)
            return o

        @staticmethod
        def backward(ctx, do):
            q, k, v, o, lse = ctx.saved_tensors
            (causal, window, scale, det, cq, ck, mq, mk, mods) = ctx.cfg
            g = backward(q, k, v, o, lse, do, causal=causal, window=window,
                         softmax_scale=scale, deterministic=det,
                         cu_seqlens_q=cq, cu_seqlens_k=ck,
                         max_seqlen_q=mq, max_seqlen_k=mk, mods=mods)
            dsinks = g[3] if len(g) > 3 and ctx.needs_input_grad[11] else None
            if dsinks is not None:
                dsinks = dsinks.to(mods["sinks"].dtype)
            return (g[0], g[1], g[2], None, None, None, None, None, None, None,
                    None, dsinks, None)

    _FA2_FUNCTION = FA2Function
    return FA2Function


def attention(q, k, v, causal, window, softmax_scale, deterministic,
              cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0,
              max_seqlen_k=0, softcap=0.0, alibi_slopes=None, sinks=None,
              dropout_p=0.0, seed=None, offset=0):
    """Attention with autograd on torch tensors (fa2.attention and
    fa2.attention_varlen check and order the arguments). Dropout's seed,
    when None, is drawn from torch's default generator, so torch.manual_seed
    makes the pattern reproducible; the backward reuses it."""
    import torch
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout_p else 0
    mods = {"softcap": float(softcap or 0.0), "alibi_slopes": alibi_slopes,
            "dropout_p": float(dropout_p), "dropout_seed": int(seed),
            "dropout_offset": int(offset)}
    return _autograd_function().apply(q, k, v, bool(causal), tuple(window),
                                      float(softmax_scale or 0.0),
                                      bool(deterministic), cu_seqlens_q,
                                      cu_seqlens_k, int(max_seqlen_q),
                                      int(max_seqlen_k), sinks, mods)
