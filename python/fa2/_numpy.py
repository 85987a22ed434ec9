"""_numpy.py — libfa2's CPU backends on numpy arrays.

Arrays are [batch, seqlen, heads, head_dim] (or [total, heads, head_dim]
with cu_seqlens), the last dimension contiguous; any other positive
strides are passed through as they are. Element types: float32, float16,
and bfloat16 as ml_dtypes.bfloat16 (when installed) or as uint16 arrays
holding the bits, with dtype="bf16" (uint16 needs dtype= to say which
16-bit type it holds). Outputs are new arrays of the same numpy dtype.
"""
import ctypes

import numpy as np

from ._lib import (BACKENDS, DTYPE_BF16, DTYPE_FP16, DTYPE_FP32, BwdArgs,
                   FwdArgs, Tensor, check, lib)

_CODES = {"fp32": DTYPE_FP32, "fp16": DTYPE_FP16, "bf16": DTYPE_BF16}


def dtype_code(a, dtype=None):
    """fa2_dtype of array a; dtype ("fp32", "fp16", "bf16") names the type
    of a uint16 array's bits and must agree with any other array type."""
    name = a.dtype.name
    if name == "float32":
        code = DTYPE_FP32
    elif name == "float16":
        code = DTYPE_FP16
    elif name == "bfloat16":
        code = DTYPE_BF16
    elif name == "uint16":
        if dtype not in ("fp16", "bf16"):
            raise TypeError("fa2: a uint16 array needs dtype='bf16' or "
                            "dtype='fp16' to say what its bits hold")
        return _CODES[dtype]
    else:
        raise TypeError("fa2 takes float32, float16 or bfloat16 arrays "
                        "(or uint16 bits with dtype=), not %s" % name)
    if dtype is not None and _CODES.get(dtype) != code:
        raise TypeError("fa2: dtype=%r does not match the array's %s" % (dtype, name))
    return code


def tensor_view(a, dtype=None, code=None):
    """fa2_tensor over numpy array a (4-d, or 3-d for lse)."""
    if a.ndim > 4:
        raise ValueError("fa2: arrays have at most 4 dimensions, not %d" % a.ndim)
    t = Tensor()
    t.data = a.ctypes.data
    t.dtype = dtype_code(a, dtype) if code is None else code
    item = a.itemsize
    for i in range(4):
        if i < a.ndim:
            if a.strides[i] % item:
                raise ValueError("fa2: stride %d of an array is not a whole "
                                 "number of elements" % i)
            t.shape[i] = a.shape[i]
            t.stride[i] = a.strides[i] // item
        else:
            t.shape[i], t.stride[i] = 1, 1
    return t


def _as_4d(a):
    return a[np.newaxis] if a.ndim == 3 else a


def _seqlens(cu):
    if cu is None:
        return None
    return np.ascontiguousarray(np.asarray(cu), dtype=np.int32)


def _common(a, causal, window_size, softmax_scale, cu_q, cu_k, max_q, max_k,
            block_m, block_n, num_threads):
    a.softmax_scale = float(softmax_scale or 0.0)
    a.causal = 1 if causal else 0
    a.window_left, a.window_right = int(window_size[0]), int(window_size[1])
    if (cu_q is None) != (cu_k is None):
        raise ValueError("fa2: give both cu_seqlens_q and cu_seqlens_k, or neither")
    if cu_q is not None:
        a.cu_seqlens_q = cu_q.ctypes.data
        a.cu_seqlens_k = cu_k.ctypes.data
        a.num_seqs = cu_q.size - 1
        a.max_seqlen_q, a.max_seqlen_k = int(max_q), int(max_k)
    a.block_m, a.block_n = int(block_m), int(block_n)
    a.num_threads = int(num_threads)


def _f32(x, name):
    a = np.ascontiguousarray(np.asarray(x), dtype=np.float32)
    if a.ndim not in (1, 2):
        raise ValueError("fa2: %s must be 1-d [heads] (or 2-d [batch, heads] "
                         "for alibi_slopes), not %d-d" % (name, a.ndim))
    return a


def set_mods(a, heads_q, softcap=0.0, alibi_slopes=None, sinks=None,
             dropout_p=0.0, dropout_seed=0, dropout_offset=0):
    """Set the score modifiers and dropout on FwdArgs/BwdArgs a (doc/
    algorithm.md section 7); returns the arrays a points into (keep them
    alive until the call is done)."""
    keep = []
    a.softcap = float(softcap or 0.0)
    if alibi_slopes is not None:
        sl = _f32(alibi_slopes, "alibi_slopes")
        if sl.shape[-1] != heads_q:
            raise ValueError("fa2: alibi_slopes has %d heads, q has %d"
                             % (sl.shape[-1], heads_q))
        a.alibi_slopes = sl.ctypes.data
        a.alibi_batch_stride = heads_q if sl.ndim == 2 else 0
        keep.append(sl)
    if sinks is not None:
        sk = _f32(sinks, "sinks")
        if sk.ndim != 1 or sk.shape[0] != heads_q:
            raise ValueError("fa2: sinks must be float32 [heads_q] = [%d]" % heads_q)
        a.sinks = sk.ctypes.data
        keep.append(sk)
    a.dropout_p = float(dropout_p)
    a.dropout_seed = int(dropout_seed) & 0xFFFFFFFFFFFFFFFF
    a.dropout_offset = int(dropout_offset) & 0xFFFFFFFFFFFFFFFF
    return keep


def forward(q, k, v, causal=False, window_size=(-1, -1), softmax_scale=None,
            cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0,
            max_seqlen_k=0, backend="tiled", block_m=0, block_n=0,
            num_threads=0, dtype=None, mods=None, return_dropout_mask=False):
    """(o, lse): o like q, lse float32 [batch, heads_q, seqlen_q] (with
    cu_seqlens: [1, heads_q, total_q]); mods: set_mods' keywords. With
    return_dropout_mask, (o, lse, mask): uint8 [num_seqs, heads_q,
    max_seqlen_q, max_seqlen_k], 1 where the key is visible and kept."""
    squeeze = q.ndim == 3
    q4, k4, v4 = _as_4d(q), _as_4d(k), _as_4d(v)
    code = dtype_code(q4, dtype)
    o = np.empty(q4.shape, dtype=q4.dtype)
    lse = np.empty((q4.shape[0], q4.shape[2], q4.shape[1]), dtype=np.float32)
    cu_q, cu_k = _seqlens(cu_seqlens_q), _seqlens(cu_seqlens_k)
    a = FwdArgs()
    lib().fa2_fwd_args_init(ctypes.byref(a))
    a.q = tensor_view(q4, code=code)
    a.k = tensor_view(k4, code=dtype_code(k4, dtype))
    a.v = tensor_view(v4, code=dtype_code(v4, dtype))
    a.o = tensor_view(o, code=code)
    a.lse = tensor_view(lse)
    _common(a, causal, window_size, softmax_scale, cu_q, cu_k, max_seqlen_q,
            max_seqlen_k, block_m, block_n, num_threads)
    keep = set_mods(a, q4.shape[2], **(mods or {}))
    mask = None
    if return_dropout_mask:
        if cu_q is not None:
            lens_q, lens_k = np.diff(cu_q), np.diff(cu_k)
            shape = (cu_q.size - 1, q4.shape[2], int(max_seqlen_q or lens_q.max()),
                     int(max_seqlen_k or lens_k.max()))
        else:
            shape = (q4.shape[0], q4.shape[2], q4.shape[1], k4.shape[1])
        mask = np.zeros(shape, dtype=np.uint8)
        a.dropout_mask = mask.ctypes.data
    check(lib().fa2_fwd(ctypes.byref(a), BACKENDS[backend]))
    del keep
    o = o[0] if squeeze else o
    return (o, lse, mask) if return_dropout_mask else (o, lse)


def backward(q, k, v, o, lse, dout, causal=False, window_size=(-1, -1),
             softmax_scale=None, cu_seqlens_q=None, cu_seqlens_k=None,
             max_seqlen_q=0, max_seqlen_k=0, deterministic=False,
             backend="tiled", block_m=0, block_n=0, num_threads=0, dtype=None,
             mods=None):
    """(dq, dk, dv) for the loss gradient dout of the output o (with its
    lse) that forward() returned; like q, k and v. With sinks in mods,
    (dq, dk, dv, dsinks), dsinks float32 [heads_q]."""
    squeeze = q.ndim == 3
    q4, k4, v4, o4, do4 = (_as_4d(x) for x in (q, k, v, o, dout))
    dq = np.empty(q4.shape, dtype=q4.dtype)
    dk = np.empty(k4.shape, dtype=k4.dtype)
    dv = np.empty(v4.shape, dtype=v4.dtype)
    lse = np.asarray(lse)
    if lse.ndim == 2:
        lse = lse[np.newaxis]
    cu_q, cu_k = _seqlens(cu_seqlens_q), _seqlens(cu_seqlens_k)
    a = BwdArgs()
    lib().fa2_bwd_args_init(ctypes.byref(a))
    for name, arr in (("q", q4), ("k", k4), ("v", v4), ("o", o4), ("dout", do4),
                      ("dq", dq), ("dk", dk), ("dv", dv)):
        setattr(a, name, tensor_view(arr, code=dtype_code(arr, dtype)))
    a.lse = tensor_view(lse)
    _common(a, causal, window_size, softmax_scale, cu_q, cu_k, max_seqlen_q,
            max_seqlen_k, block_m, block_n, num_threads)
    a.deterministic = 1 if deterministic else 0
    keep = set_mods(a, q4.shape[2], **(mods or {}))
    dsinks = None
    if mods and mods.get("sinks") is not None:
        dsinks = np.zeros(q4.shape[2], dtype=np.float32)
        a.dsinks = dsinks.ctypes.data
    check(lib().fa2_bwd(ctypes.byref(a), BACKENDS[backend]))
    del keep
    grads = (dq[0], dk[0], dv[0]) if squeeze else (dq, dk, dv)
    return grads + (dsinks,) if dsinks is not None else grads


def kvcache(q, k_cache, v_cache, k, v, cache_seqlens, block_table, causal,
            window_size, softmax_scale, num_splits, return_lse, backend,
            num_threads, dtype=None):
    """fa2_fwd_kvcache on numpy arrays (the caches are appended in place);
    returns (o, lse or None)."""
    from ._lib import KvcacheArgs
    code = dtype_code(q, dtype)
    a = KvcacheArgs()
    lib().fa2_kvcache_args_init(ctypes.byref(a))
    o = np.empty(q.shape, dtype=q.dtype)
    a.q, a.o = tensor_view(q, code=code), tensor_view(o, code=code)
    a.k_cache, a.v_cache = tensor_view(k_cache, code=code), tensor_view(v_cache, code=code)
    if (k is None) != (v is None):
        raise ValueError("fa2: k and v (the new tokens) go together")
    if k is not None:
        a.k_new, a.v_new = tensor_view(k, code=code), tensor_view(v, code=code)
    lens = np.ascontiguousarray(np.asarray(cache_seqlens), dtype=np.int32)
    if lens.ndim != 1 or lens.shape[0] != q.shape[0]:
        raise ValueError("fa2: cache_seqlens must hold one length per sequence")
    a.cache_seqlens = lens.ctypes.data
    table = None
    if block_table is not None:
        table = np.ascontiguousarray(np.asarray(block_table), dtype=np.int32)
        if table.ndim != 2 or table.shape[0] != q.shape[0]:
            raise ValueError("fa2: block_table must be [batch, max_pages]")
        a.block_table = table.ctypes.data
        a.max_pages = table.shape[1]
        a.block_table_stride = table.shape[1]
    lse = None
    if return_lse:
        lse = np.empty((q.shape[0], q.shape[2], q.shape[1]), dtype=np.float32)
        a.lse = tensor_view(lse, code=DTYPE_FP32)
    a.softmax_scale = float(softmax_scale or 0.0)
    a.causal = 1 if causal else 0
    a.window_left, a.window_right = int(window_size[0]), int(window_size[1])
    a.num_splits, a.num_threads = int(num_splits), int(num_threads)
    check(lib().fa2_fwd_kvcache(ctypes.byref(a), BACKENDS[backend]))
    return o, lse
