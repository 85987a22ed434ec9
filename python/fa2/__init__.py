"""fa2 — FlashAttention-2 from libfa2, on numpy arrays (CPU backends) and
torch tensors (CPU, and CUDA through libfa2's kernels).

    import numpy as np, fa2
    q = np.random.randn(2, 256, 8, 64).astype(np.float16)
    o = fa2.attention(q, q, q, causal=True)            # the tiled CPU mirror
    o, lse = fa2.forward(q, q, q, causal=True, backend="oracle")

    import torch
    q = torch.randn(2, 1024, 16, 128, device="cuda", dtype=torch.bfloat16,
                    requires_grad=True)
    o = fa2.attention(q, k, v, causal=True)            # autograd, CUDA kernels

Arguments follow flash-attn's order and names (attention(q, k, v,
dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1))), so
that `from fa2.flash_attn_interface import flash_attn_func` replaces
flash-attn's import. Layout [batch, seqlen, heads, head_dim]; k and v may
have fewer heads (GQA/MQA); causal is bottom-right aligned.

fa2.verify() and fa2.testing.assert_attention_close() check another
implementation's outputs against the float64 oracle (fa2.testing).
"""
from ._lib import (BACKENDS, DTYPE_BF16, DTYPE_FP16, DTYPE_FP32, FA2_OK,
                   PASS_BWD, PASS_FWD, BwdArgs, Fa2Error, FwdArgs, Tensor,
                   TileConfig, Traffic, backend_available, find_library, lib,
                   version)
from ._lib import find_library as _find_library  # the name python/fa2.py had

__all__ = ["attention", "attention_varlen", "attention_kvcache", "forward", "backward", "verify",
           "version", "lib", "backend_available", "Fa2Error", "BACKENDS"]


def _is_numpy(x):
    return type(x).__module__ == "numpy"


def _window(window_size, window):
    if window is not None:  # python/fa2.py's name, still accepted
        window_size = window
    return (int(window_size[0]), int(window_size[1]))


def _check_dropout(dropout_p):
    if isinstance(dropout_p, bool) or not 0.0 <= float(dropout_p) < 1.0:
        raise ValueError(
            "dropout_p must be a probability in [0, 1), not %r (as in "
            "flash-attn, the 4th positional argument is dropout_p; pass "
            "causal=True by keyword)" % (dropout_p,))


_no_dropout = _check_dropout  # the name before dropout was implemented


def _mods(softcap=0.0, alibi_slopes=None, sinks=None, dropout_p=0.0,
          dropout_seed=0, dropout_offset=0):
    """The score modifiers and dropout of one call (doc/algorithm.md
    section 7), as keywords of _numpy.set_mods / _torch.set_mods."""
    _check_dropout(dropout_p)
    return {"softcap": float(softcap or 0.0), "alibi_slopes": alibi_slopes,
            "sinks": sinks, "dropout_p": float(dropout_p),
            "dropout_seed": int(dropout_seed), "dropout_offset": int(dropout_offset)}


def _numpy_seed(seed, dropout_p):
    if seed is not None or not dropout_p:
        return int(seed or 0)
    import numpy as np
    return int(np.random.randint(0, 2**62))


def forward(q, k, v, causal=False, window_size=(-1, -1), softmax_scale=None,
            return_lse=False, cu_seqlens_q=None, cu_seqlens_k=None,
            max_seqlen_q=0, max_seqlen_k=0, backend=None, block_m=0,
            block_n=0, num_threads=0, dtype=None, out=None, window=None,
            softcap=0.0, alibi_slopes=None, sinks=None, dropout_p=0.0,
            dropout_seed=0, dropout_offset=0, return_dropout_mask=False):
    """O of attention (and LSE, float32 [batch, heads_q, seqlen_q], with
    return_lse=True), no autograd. numpy arrays run on a CPU backend
    (backend="tiled" by default, "oracle", "standard"); torch tensors on
    CUDA run on libfa2's kernels, on the CPU on the tiled mirror.
    softcap, alibi_slopes (float32 [Hq] or [B, Hq]), sinks (float32 [Hq])
    and dropout (dropout_p, dropout_seed, dropout_offset) as in
    doc/algorithm.md section 7; return_dropout_mask=True (CPU) appends the
    uint8 [B, Hq, Nq, Nk] kept-and-visible mask to the result."""
    w = _window(window_size, window)
    mods = _mods(softcap, alibi_slopes, sinks, dropout_p, dropout_seed,
                 dropout_offset)
    if _is_numpy(q):
        res = _numpy_backend().forward(
            q, k, v, causal, w, softmax_scale, cu_seqlens_q, cu_seqlens_k,
            max_seqlen_q, max_seqlen_k, backend or "tiled", block_m, block_n,
            num_threads, dtype, mods=mods, return_dropout_mask=return_dropout_mask)
        o, lse = res[0], res[1]
        out_ = (o, lse) if return_lse else (o,)
        out_ += (res[2],) if return_dropout_mask else ()
        return out_ if len(out_) > 1 else o
    from . import _torch
    return _torch.forward(q, k, v, causal=causal, window=w,
                          softmax_scale=softmax_scale or 0.0, out=out,
                          return_lse=return_lse, cu_seqlens_q=cu_seqlens_q,
                          cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q,
                          max_seqlen_k=max_seqlen_k, backend=backend, mods=mods,
                          return_dropout_mask=return_dropout_mask)


def backward(q, k, v, o, lse, dout, causal=False, window_size=(-1, -1),
             softmax_scale=None, deterministic=False, cu_seqlens_q=None,
             cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0, backend=None,
             block_m=0, block_n=0, num_threads=0, dtype=None, window=None,
             softcap=0.0, alibi_slopes=None, sinks=None, dropout_p=0.0,
             dropout_seed=0, dropout_offset=0):
    """(dq, dk, dv) of the attention forward() computed (its o and lse), for
    the loss gradient dout. With GQA/MQA dk and dv are summed over the query
    heads that share a key head. The modifiers must be the forward's; with
    sinks the result is (dq, dk, dv, dsinks). Dropout's pattern is
    recomputed from (dropout_seed, dropout_offset)."""
    w = _window(window_size, window)
    mods = _mods(softcap, alibi_slopes, sinks, dropout_p, dropout_seed,
                 dropout_offset)
    if _is_numpy(q):
        return _numpy_backend().backward(
            q, k, v, o, lse, dout, causal, w, softmax_scale, cu_seqlens_q,
            cu_seqlens_k, max_seqlen_q, max_seqlen_k, deterministic,
            backend or "tiled", block_m, block_n, num_threads, dtype, mods=mods)
    from . import _torch
    return _torch.backward(q, k, v, o, lse, dout, causal=causal, window=w,
                           softmax_scale=softmax_scale or 0.0,
                           deterministic=deterministic,
                           cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k,
                           max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
                           backend=backend, mods=mods)


def attention(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False,
              window_size=(-1, -1), deterministic=False, window=None,
              softcap=0.0, alibi_slopes=None, sinks=None, seed=None, offset=0):
    """softmax(scale * Q K^T + mask) V, in flash-attn's argument order:
    q [B, Nq, Hq, d], k/v [B, Nk, Hkv, d] (Hq a multiple of Hkv). torch
    tensors get autograd (CUDA kernels on the GPU, the tiled mirror on the
    CPU), sinks included when it requires grad; numpy arrays get O from the
    tiled mirror. softcap (0: off), alibi_slopes (float32 [Hq] or [B, Hq]),
    sinks (float32 [Hq] logits), dropout_p in [0, 1) with seed / offset of
    the Philox stream (seed None: drawn from torch's or numpy's generator)."""
    w = _window(window_size, window)
    _check_dropout(dropout_p)
    if _is_numpy(q):
        return forward(q, k, v, causal=causal, window_size=w,
                       softmax_scale=softmax_scale, softcap=softcap,
                       alibi_slopes=alibi_slopes, sinks=sinks,
                       dropout_p=dropout_p,
                       dropout_seed=_numpy_seed(seed, dropout_p),
                       dropout_offset=offset)
    from . import _torch
    return _torch.attention(q, k, v, causal, w, softmax_scale, deterministic,
                            softcap=softcap, alibi_slopes=alibi_slopes,
                            sinks=sinks, dropout_p=dropout_p, seed=seed,
                            offset=offset)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=0,
                     max_seqlen_k=0, dropout_p=0.0, softmax_scale=None,
                     causal=False, window_size=(-1, -1), deterministic=False,
                     window=None, softcap=0.0, alibi_slopes=None, sinks=None,
                     seed=None, offset=0):
    """attention() on packed sequences (flash-attn's varlen order): q
    [total_q, Hq, d], k/v [total_k, Hkv, d], cu_seqlens int32 (num_seqs + 1
    offsets; on q's device for torch); alibi_slopes [Hq] or [num_seqs, Hq]."""
    _check_dropout(dropout_p)
    w = _window(window_size, window)
    if _is_numpy(q):
        return forward(q, k, v, causal=causal, window_size=w,
                       softmax_scale=softmax_scale, cu_seqlens_q=cu_seqlens_q,
                       cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q,
                       max_seqlen_k=max_seqlen_k, softcap=softcap,
                       alibi_slopes=alibi_slopes, sinks=sinks,
                       dropout_p=dropout_p,
                       dropout_seed=_numpy_seed(seed, dropout_p),
                       dropout_offset=offset)
    from . import _torch
    return _torch.attention(q, k, v, causal, w, softmax_scale, deterministic,
                            cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                            max_seqlen_k, softcap=softcap,
                            alibi_slopes=alibi_slopes, sinks=sinks,
                            dropout_p=dropout_p, seed=seed, offset=offset)


def attention_kvcache(q, k_cache, v_cache, k=None, v=None, cache_seqlens=None,
                      block_table=None, causal=False, window_size=(-1, -1),
                      softmax_scale=None, num_splits=0, return_softmax_lse=False,
                      backend=None, num_threads=0, out=None):
    """Attention of new tokens over a KV cache (flash-attn's
    flash_attn_with_kvcache names), no autograd, torch tensors or numpy
    arrays (the CPU backends; uint16 bf16 bits are not taken here):
    q [B, Nq, Hq, d]; k_cache/v_cache contiguous [B, Nmax, Hkv, d] or, with
    block_table (int32 [B, max_pages]), paged [num_pages, page_size, Hkv, d]
    (page_size a multiple of 16); k/v, optional [B, Nnew, Hkv, d], are
    written into the cache at cache_seqlens[b] .. + Nnew - 1 (in place)
    before attending; cache_seqlens: int32 [B] or an int (None: the cache
    is full), not advanced. Sequence b attends to its cache_seqlens[b] +
    Nnew keys; causal is bottom-right aligned (the new tokens are the last
    ones). num_splits: split-KV chunks, 0 = the library's choice. CUDA
    tensors run on libfa2's CUDA backend, CPU tensors on backend ("tiled"
    by default, "oracle", "standard"). Returns out, or (out, lse) with lse
    float32 [B, Hq, Nq]."""
    batch = q.shape[0]
    if _is_numpy(q):
        if cache_seqlens is None or isinstance(cache_seqlens, int):
            full = (block_table.shape[1] * k_cache.shape[1]
                    if block_table is not None else k_cache.shape[1])
            cache_seqlens = [full if cache_seqlens is None else cache_seqlens] * batch
        o, lse = _numpy_backend().kvcache(
            q, k_cache, v_cache, k, v, cache_seqlens, block_table, causal,
            window_size, softmax_scale, num_splits, return_softmax_lse,
            backend or "tiled", num_threads)
        return (o, lse) if return_softmax_lse else o
    import torch
    from . import _torch
    if backend is None:
        backend = "cuda" if q.is_cuda else "tiled"
    if cache_seqlens is None or isinstance(cache_seqlens, int):
        if cache_seqlens is None:
            cache_seqlens = (block_table.shape[1] * k_cache.shape[1]
                             if block_table is not None else k_cache.shape[1])
        cache_seqlens = torch.full((batch,), int(cache_seqlens), dtype=torch.int32,
                                   device=q.device)
    if block_table is not None and block_table.stride(-1) != 1:
        block_table = block_table.contiguous()
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = None
    if return_softmax_lse:
        lse = torch.empty(q.shape[0], q.shape[2], q.shape[1], device=q.device,
                          dtype=torch.float32)
    a = _torch.make_kvcache_args(q, k_cache, v_cache, out, cache_seqlens, k, v,
                                 block_table, lse, causal, window_size,
                                 softmax_scale or 0.0, num_splits,
                                 num_threads=num_threads)
    _torch.run_kvcache(a, backend)
    return (out, lse) if return_softmax_lse else out


def verify(*args, **kwargs):
    """fa2.testing.verify: check another implementation's outputs against
    the float64 oracle; returns a report (see fa2.testing)."""
    from . import testing
    return testing.verify(*args, **kwargs)


def _numpy_backend():
    from . import _numpy as m
    return m


def __getattr__(name):
    # python/fa2.py's torch helpers (make_args, run, make_bwd_args, run_bwd,
    # tile_config, traffic_reset, traffic_read, tensor_view), loaded with
    # torch only when asked for.
    if name in ("make_args", "run", "make_bwd_args", "run_bwd", "tile_config",
                "traffic_reset", "traffic_read", "tensor_view",
                "make_kvcache_args", "run_kvcache", "kvcache_num_splits",
                "kvcache_key_warps"):
        from . import _torch
        return getattr(_torch, name)
    raise AttributeError("module 'fa2' has no attribute %r" % name)
