"""fa2.flash_attn_interface has flash-attn's names, argument order and
defaults, and refuses what fa2 does not implement instead of ignoring it."""
import inspect

import numpy as np
import pytest

from fa2 import flash_attn_interface as fai
from test_numpy import oracle_o, rand

# flash-attn 2.x's parameters, in order (its flash_attn_interface.py)
FLASH_ATTN = {
    "flash_attn_func": ["q", "k", "v", "dropout_p", "softmax_scale", "causal",
                        "window_size", "softcap", "alibi_slopes",
                        "deterministic", "return_attn_probs"],
    "flash_attn_qkvpacked_func": ["qkv", "dropout_p", "softmax_scale", "causal",
                                  "window_size", "softcap", "alibi_slopes",
                                  "deterministic", "return_attn_probs"],
    "flash_attn_varlen_func": ["q", "k", "v", "cu_seqlens_q", "cu_seqlens_k",
                               "max_seqlen_q", "max_seqlen_k", "dropout_p",
                               "softmax_scale", "causal", "window_size",
                               "softcap", "alibi_slopes", "deterministic",
                               "return_attn_probs", "block_table"],
}


@pytest.mark.parametrize("name", sorted(FLASH_ATTN))
def test_signature_is_flash_attns(name):
    sig = inspect.signature(getattr(fai, name))
    assert list(sig.parameters) == FLASH_ATTN[name]
    assert sig.parameters["dropout_p"].default == 0.0
    assert sig.parameters["window_size"].default == (-1, -1)
    assert sig.parameters["causal"].default is False


def test_flash_attn_func_on_numpy():
    q, k, v = (rand((2, 48, 2, 32), np.float16, s) for s in (1, 2, 3))
    o = fai.flash_attn_func(q, k, v, causal=True)
    want, want_lse = oracle_o(q, k, v, causal=True)
    assert np.abs(o.astype(np.float64) - want).max() < 2e-3
    o2, lse, probs = fai.flash_attn_func(q, k, v, causal=True,
                                         return_attn_probs=True)
    assert probs is None and lse.shape == (2, 2, 48)
    assert np.abs(lse - want_lse).max() < 1e-4


def test_qkvpacked_equals_unpacked():
    qkv = rand((1, 40, 3, 2, 16), np.float32, 4)
    o = fai.flash_attn_qkvpacked_func(qkv, causal=True)
    o2 = fai.flash_attn_func(np.ascontiguousarray(qkv[:, :, 0]),
                             np.ascontiguousarray(qkv[:, :, 1]),
                             np.ascontiguousarray(qkv[:, :, 2]), causal=True)
    assert np.array_equal(o, o2)


def test_varlen_lse_is_heads_by_total():
    cu = np.array([0, 7, 20], np.int32)
    q, k, v = (rand((20, 2, 16), np.float32, s) for s in (5, 6, 7))
    o, lse, _ = fai.flash_attn_varlen_func(q, k, v, cu, cu, 13, 13,
                                           return_attn_probs=True)
    assert o.shape == (20, 2, 16) and lse.shape == (2, 20)
    assert np.abs(o - oracle_o(q, k, v, cu_q=cu, cu_k=cu)[0]).max() < 1e-5


@pytest.mark.parametrize("kw", [{"dropout_p": 1.0}, {"dropout_p": -0.1},
                                {"softcap": -1.0}])
def test_bad_modifier_values_are_refused(kw):
    q = rand((1, 8, 2, 16), np.float32, 8)
    with pytest.raises((ValueError, Exception)):
        fai.flash_attn_func(q, q, q, **kw)


def test_paged_kv_is_refused():
    q = rand((8, 2, 16), np.float32, 8)
    cu = np.array([0, 8], np.int32)
    with pytest.raises(NotImplementedError):
        fai.flash_attn_varlen_func(q, q, q, cu, cu, 8, 8, block_table=cu)


def test_softcap_and_alibi_reach_the_library():
    """flash_attn_func's softcap and alibi_slopes give the oracle's answer
    with them, not plain attention's."""
    import fa2
    q, k, v = (rand((1, 24, 2, 16), np.float32, s) for s in (9, 10, 11))
    slopes = np.array([0.25, 0.0625], np.float32)
    o = fai.flash_attn_func(q * 4, k, v, softcap=3.0, alibi_slopes=slopes)
    want = fa2.forward(q * 4, k, v, softcap=3.0, alibi_slopes=slopes,
                       backend="oracle")
    plain = fa2.forward(q * 4, k, v, backend="oracle")
    assert np.abs(o - want).max() < 1e-5
    assert np.abs(o - plain).max() > 1e-2
