"""flash_attn_interface.py — flash-attn's function names and signatures over
fa2, so that switching is one import:

    from fa2.flash_attn_interface import flash_attn_func
    o = flash_attn_func(q, k, v, causal=True)

torch tensors get autograd; numpy arrays get the forward on the tiled CPU
mirror. Dropout, softcap and ALiBi slopes are implemented (doc/algorithm.md
section 7; dropout's seed comes from torch's or numpy's generator). What
fa2 does not implement is refused with an error, never ignored: a paged KV
cache in the varlen functions (block_table; flash_attn_with_kvcache takes
one), and in flash_attn_with_kvcache rotary embeddings, cache_batch_idx,
cache_leftpad, softcap and ALiBi. With return_attn_probs=True the result is (out,
softmax_lse, None): fa2 never materialises the probabilities.
"""
from . import _check_dropout
from . import attention as _attention
from . import attention_kvcache as _attention_kvcache
from . import attention_varlen as _attention_varlen
from . import forward as _forward


def _refuse(block_table=None):
    if block_table is not None:
        raise NotImplementedError("fa2 does not implement a paged KV cache "
                                  "(block_table)")


def _with_lse(out, q, k, v, softmax_scale, causal, window_size, varlen=None,
              softcap=0.0, alibi_slopes=None):
    # The LSE flash-attn returns next to out: recomputed by a forward
    # (the autograd path does not expose it).
    kw = {}
    if varlen is not None:
        kw = dict(zip(("cu_seqlens_q", "cu_seqlens_k", "max_seqlen_q",
                       "max_seqlen_k"), varlen))
    _, lse = _forward(q, k, v, causal=causal, window_size=window_size,
                      softmax_scale=softmax_scale, return_lse=True,
                      softcap=softcap, alibi_slopes=alibi_slopes, **kw)
    if varlen is not None:
        lse = lse[0]  # flash-attn's varlen LSE is [heads, total_q]
    return out, lse, None


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False,
                    window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                    deterministic=False, return_attn_probs=False):
    """q [B, Nq, Hq, d], k/v [B, Nk, Hkv, d] -> out [B, Nq, Hq, d]."""
    _check_dropout(dropout_p)
    out = _attention(q, k, v, dropout_p, softmax_scale, causal, window_size,
                     deterministic, softcap=softcap, alibi_slopes=alibi_slopes)
    if return_attn_probs:
        return _with_lse(out, q, k, v, softmax_scale, causal, window_size,
                         softcap=softcap, alibi_slopes=alibi_slopes)
    return out


def flash_attn_kvpacked_func(q, kv, dropout_p=0.0, softmax_scale=None,
                             causal=False, window_size=(-1, -1), softcap=0.0,
                             alibi_slopes=None, deterministic=False,
                             return_attn_probs=False):
    """kv [B, Nk, 2, Hkv, d]: k = kv[:, :, 0], v = kv[:, :, 1]."""
    return flash_attn_func(q, kv[:, :, 0], kv[:, :, 1], dropout_p,
                           softmax_scale, causal, window_size, softcap,
                           alibi_slopes, deterministic, return_attn_probs)


def flash_attn_qkvpacked_func(qkv, dropout_p=0.0, softmax_scale=None,
                              causal=False, window_size=(-1, -1), softcap=0.0,
                              alibi_slopes=None, deterministic=False,
                              return_attn_probs=False):
    """qkv [B, N, 3, H, d]: q, k, v = qkv[:, :, 0], [:, :, 1], [:, :, 2]."""
    return flash_attn_func(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2],
                           dropout_p, softmax_scale, causal, window_size,
                           softcap, alibi_slopes, deterministic,
                           return_attn_probs)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                           max_seqlen_k, dropout_p=0.0, softmax_scale=None,
                           causal=False, window_size=(-1, -1), softcap=0.0,
                           alibi_slopes=None, deterministic=False,
                           return_attn_probs=False, block_table=None):
    """Packed sequences: q [total_q, Hq, d], k/v [total_k, Hkv, d], int32
    cu_seqlens_q/k with num_seqs + 1 offsets."""
    _check_dropout(dropout_p)
    _refuse(block_table)
    out = _attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                            max_seqlen_k, dropout_p, softmax_scale, causal,
                            window_size, deterministic, softcap=softcap,
                            alibi_slopes=alibi_slopes)
    if return_attn_probs:
        return _with_lse(out, q, k, v, softmax_scale, causal, window_size,
                         (cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k),
                         softcap=softcap, alibi_slopes=alibi_slopes)
    return out


def flash_attn_varlen_kvpacked_func(q, kv, cu_seqlens_q, cu_seqlens_k,
                                    max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                                    softmax_scale=None, causal=False,
                                    window_size=(-1, -1), softcap=0.0,
                                    alibi_slopes=None, deterministic=False,
                                    return_attn_probs=False):
    """kv [total_k, 2, Hkv, d]."""
    return flash_attn_varlen_func(q, kv[:, 0], kv[:, 1], cu_seqlens_q,
                                  cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                                  dropout_p, softmax_scale, causal,
                                  window_size, softcap, alibi_slopes,
                                  deterministic, return_attn_probs)


def flash_attn_varlen_qkvpacked_func(qkv, cu_seqlens, max_seqlen,
                                     dropout_p=0.0, softmax_scale=None,
                                     causal=False, window_size=(-1, -1),
                                     softcap=0.0, alibi_slopes=None,
                                     deterministic=False,
                                     return_attn_probs=False):
    """qkv [total, 3, H, d], one cu_seqlens for queries and keys."""
    return flash_attn_varlen_func(qkv[:, 0], qkv[:, 1], qkv[:, 2], cu_seqlens,
                                  cu_seqlens, max_seqlen, max_seqlen,
                                  dropout_p, softmax_scale, causal,
                                  window_size, softcap, alibi_slopes,
                                  deterministic, return_attn_probs)


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None,
                            rotary_sin=None, cache_seqlens=None, cache_batch_idx=None,
                            cache_leftpad=None, block_table=None, softmax_scale=None,
                            causal=False, window_size=(-1, -1), softcap=0.0,
                            rotary_interleaved=True, alibi_slopes=None, num_splits=0,
                            return_softmax_lse=False):
    """fa2.attention_kvcache under flash-attn's name (no autograd)."""
    if softcap or alibi_slopes is not None:
        raise NotImplementedError("fa2's KV-cache forward implements no softcap "
                                  "or ALiBi")
    if rotary_cos is not None or rotary_sin is not None:
        raise NotImplementedError("fa2 does not implement rotary embeddings")
    if cache_batch_idx is not None or cache_leftpad is not None:
        raise NotImplementedError("fa2 does not implement cache_batch_idx or "
                                  "cache_leftpad")
    return _attention_kvcache(q, k_cache, v_cache, k, v, cache_seqlens=cache_seqlens,
                              block_table=block_table, causal=causal,
                              window_size=window_size, softmax_scale=softmax_scale,
                              num_splits=num_splits,
                              return_softmax_lse=return_softmax_lse)


__all__ = ["flash_attn_func", "flash_attn_kvpacked_func",
           "flash_attn_qkvpacked_func", "flash_attn_varlen_func",
           "flash_attn_varlen_kvpacked_func", "flash_attn_varlen_qkvpacked_func",
           "flash_attn_with_kvcache"]
