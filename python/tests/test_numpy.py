"""fa2 on numpy arrays: the CPU backends, every dtype, GQA, masks, varlen,
the backward; without torch."""
import inspect

import numpy as np
import pytest

import fa2
from fa2.testing import oracle, _Problem, to_float64


def rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def to_bf16_bits(x):
    """float32 -> bfloat16 bits (round to nearest even) as uint16."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def oracle_o(q, k, v, causal=False, window_size=(-1, -1), dtype=None,
             cu_q=None, cu_k=None):
    four = (lambda a: a[np.newaxis]) if q.ndim == 3 else (lambda a: a)
    P = _Problem(four(q), four(k), causal, window_size, None, cu_q, cu_k)
    o, lse, _ = oracle(P, four(to_float64(q, dtype)), four(to_float64(k, dtype)),
                       four(to_float64(v, dtype)))
    return (o[0] if q.ndim == 3 else o), lse


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float16, 2e-3)])
def test_forward_on_numpy_matches_the_float64_oracle(dtype, tol):
    q, k, v = (rand((2, 70, 4, 32), dtype, s) for s in (1, 2, 3))
    o, lse = fa2.forward(q, k, v, causal=True, return_lse=True)
    want, want_lse = oracle_o(q, k, v, causal=True)
    assert o.dtype == q.dtype and o.shape == q.shape and lse.shape == (2, 4, 70)
    assert np.abs(o.astype(np.float64) - want).max() < tol
    assert np.abs(lse - want_lse).max() < 1e-4


def test_bf16_as_uint16_bits_with_dtype_bf16():
    q32, k32, v32 = (rand((1, 40, 2, 64), np.float32, s) for s in (4, 5, 6))
    q, k, v = (to_bf16_bits(x) for x in (q32, k32, v32))
    o = fa2.forward(q, k, v, dtype="bf16")
    assert o.dtype == np.uint16
    want, _ = oracle_o(q, k, v, dtype="bf16")
    assert np.abs(to_float64(o, "bf16") - want).max() < 2e-2


def test_uint16_without_dtype_is_refused():
    q = np.zeros((1, 8, 1, 8), np.uint16)
    with pytest.raises(TypeError, match="dtype"):
        fa2.forward(q, q, q)


def test_bf16_through_ml_dtypes_when_installed():
    ml = pytest.importorskip("ml_dtypes")
    q, k, v = (rand((1, 33, 2, 16), np.float32, s).astype(ml.bfloat16)
               for s in (7, 8, 9))
    o = fa2.forward(q, k, v)
    want, _ = oracle_o(q, k, v)
    assert np.abs(o.astype(np.float64) - want).max() < 2e-2


def test_gqa_window_and_every_cpu_backend_agree():
    q = rand((1, 50, 4, 16), np.float32, 10)
    k, v = rand((1, 60, 2, 16), np.float32, 11), rand((1, 60, 2, 16), np.float32, 12)
    want, _ = oracle_o(q, k, v, window_size=(5, 3))
    for backend in ("oracle", "standard", "tiled"):
        o = fa2.forward(q, k, v, window_size=(5, 3), backend=backend)
        assert np.abs(o - want).max() < 1e-5, backend


def test_varlen_packed_sequences():
    cu = np.array([0, 10, 10, 45], np.int32)
    q, k, v = (rand((45, 2, 8), np.float32, s) for s in (13, 14, 15))
    o = fa2.attention_varlen(q, k, v, cu, cu, causal=True)
    want, _ = oracle_o(q, k, v, causal=True, cu_q=cu, cu_k=cu)
    assert o.shape == q.shape
    assert np.abs(o - want).max() < 1e-5


def test_strided_views_are_used_in_place():
    qkv = rand((1, 30, 3, 2, 16), np.float32, 16)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    assert not q.flags.c_contiguous
    o = fa2.forward(q, k, v)
    want, _ = oracle_o(np.ascontiguousarray(q), np.ascontiguousarray(k),
                       np.ascontiguousarray(v))
    assert np.abs(o - want).max() < 1e-5


def test_backward_on_numpy_matches_the_oracle_gradients():
    q, k, v, do = (rand((1, 40, 2, 16), np.float32, s) for s in (17, 18, 19, 20))
    o, lse = fa2.forward(q, k, v, causal=True, return_lse=True)
    dq, dk, dv = fa2.backward(q, k, v, o, lse, do, causal=True)
    P = _Problem(q, k, True, (-1, -1), None, None, None)
    _, _, g = oracle(P, q.astype(np.float64), k.astype(np.float64),
                     v.astype(np.float64), do.astype(np.float64))
    for got, want in zip((dq, dk, dv), g):
        assert np.abs(got - want).max() < 1e-4


def test_bad_input_raises_fa2error_with_the_libraries_sentence():
    q = rand((1, 8, 2, 7), np.float32, 21)    # head dim 7: refused
    with pytest.raises(fa2.Fa2Error) as e:
        fa2.forward(q, q, q)
    assert e.value.status == "FA2_ERR_HEAD_DIM" and str(e.value)


def test_fourth_positional_argument_is_dropout_p_not_causal():
    params = list(inspect.signature(fa2.attention).parameters)
    assert params[:6] == ["q", "k", "v", "dropout_p", "softmax_scale", "causal"]
    q = rand((1, 16, 1, 8), np.float32, 22)
    with pytest.raises(ValueError, match="dropout"):
        fa2.attention(q, q, q, True)
    with pytest.raises(ValueError, match="dropout"):
        fa2.attention(q, q, q, 1.5)
    # 0.0 in 4th place is flash-attn's no-dropout: not causal
    o = fa2.attention(q, q, q, 0.0)
    assert np.abs(o - oracle_o(q, q, q)[0]).max() < 1e-5


def test_version_is_the_headers():
    assert fa2.version().count(".") == 2


def test_the_library_is_found_in_an_in_tree_build(tmp_path, monkeypatch):
    # the README builds in the source tree: the library is lib/.libs/libfa2.so
    from fa2 import _lib
    (tmp_path / "lib" / ".libs").mkdir(parents=True)
    so = tmp_path / "lib" / ".libs" / "libfa2.so"
    so.write_bytes(b"")
    monkeypatch.delenv("FA2_LIB", raising=False)
    monkeypatch.setattr(_lib, "_source_roots", lambda: iter([str(tmp_path)]))
    assert _lib.find_library() == str(so)


def test_attention_kvcache_on_numpy_appends_and_matches_the_oracle():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 1, 4, 32)).astype(np.float32)
    kc = rng.standard_normal((2 * 4 + 1, 16, 2, 32)).astype(np.float32)
    vc = rng.standard_normal(kc.shape).astype(np.float32)
    table = np.arange(8, dtype=np.int32).reshape(2, 4)[:, ::-1].copy()
    k = rng.standard_normal((2, 1, 2, 32)).astype(np.float32)
    v = rng.standard_normal((2, 1, 2, 32)).astype(np.float32)
    lens = np.array([20, 0], dtype=np.int32)
    kc2, vc2 = kc.copy(), vc.copy()
    o, lse = fa2.attention_kvcache(q, kc, vc, k, v, cache_seqlens=lens,
                                   block_table=table, causal=True,
                                   num_splits=3, return_softmax_lse=True)
    ref, ref_lse = fa2.attention_kvcache(q, kc2, vc2, k, v, cache_seqlens=lens,
                                         block_table=table, causal=True,
                                         return_softmax_lse=True, backend="oracle")
    assert np.abs(o - ref).max() < 1e-5 and np.abs(lse - ref_lse).max() < 1e-5
    # the new token of sequence 0 is at slot 20: page table[0][1], slot 4
    assert np.array_equal(kc[table[0, 1], 4], k[0, 0])
    assert np.array_equal(kc, kc2) and np.array_equal(vc, vc2)
    # sequence 1's cache was empty: its one query sees only its own token
    assert np.allclose(o[1, 0], np.repeat(v[1, 0], 2, axis=0), atol=1e-6)
