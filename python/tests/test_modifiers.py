"""Softcap, ALiBi, sinks and dropout through the Python API (numpy, the CPU
backends): the tiled mirror against an eager numpy float64 implementation
of the same maths (doc/algorithm.md section 7), with dropout's pattern taken
from fa2's mask output; the pattern's reproducibility and agreement across
backends; the sinks' gradient."""
import numpy as np
import pytest

import fa2


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def eager(q, k, v, scale, causal=False, softcap=0.0, slopes=None, sinks=None,
          keep=None, p=0.0):
    """O and LSE in float64, straight from the formulas: q [B, Nq, H, d],
    k/v [B, Nk, H, d]; keep [B, H, Nq, Nk] (1 kept) when p > 0."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    B, nq, H, _ = q.shape
    nk = k.shape[1]
    s = np.einsum("bihd,bjhd->bhij", q, k) * scale
    if softcap:
        s = softcap * np.tanh(s / softcap)
    i = np.arange(nq)[:, None] + nk - nq
    j = np.arange(nk)[None, :]
    if slopes is not None:
        s = s - np.asarray(slopes, np.float64)[None, :, None, None] * np.abs(i - j)
    if causal:
        s = np.where(j <= i, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    if sinks is not None:
        m = np.maximum(m, np.asarray(sinks, np.float64)[None, :, None, None])
    w = np.exp(s - m)
    l = w.sum(axis=-1, keepdims=True)
    if sinks is not None:
        l = l + np.exp(np.asarray(sinks, np.float64)[None, :, None, None] - m)
    P = w / l
    lse = (m + np.log(l))[..., 0]
    if p > 0:
        P = P * keep / (1.0 - p)
    return np.einsum("bhij,bjhd->bihd", P, v), lse


@pytest.mark.parametrize("kw", [
    {"softcap": 2.0},
    {"alibi": True},
    {"sinks": True},
    {"dropout_p": 0.3},
    {"softcap": 5.0, "alibi": True, "sinks": True, "dropout_p": 0.2, "causal": True},
])
def test_tiled_mirror_matches_an_eager_float64_implementation(kw):
    B, N, H, d = 2, 37, 3, 16
    q, k, v = rand((B, N, H, d), 1, 2.0), rand((B, N + 5, H, d), 2), rand((B, N + 5, H, d), 3)
    scale = d ** -0.5
    slopes = 2.0 ** (-8.0 * np.arange(1, H + 1) / H) if kw.get("alibi") else None
    sinks = rand((H,), 4) if kw.get("sinks") else None
    p = kw.get("dropout_p", 0.0)
    o, lse, mask = fa2.forward(q, k, v, causal=kw.get("causal", False),
                               softcap=kw.get("softcap", 0.0),
                               alibi_slopes=slopes, sinks=sinks, dropout_p=p,
                               dropout_seed=1234, return_lse=True,
                               return_dropout_mask=True)
    want_o, want_lse = eager(q, k, v, scale, kw.get("causal", False),
                             kw.get("softcap", 0.0), slopes, sinks, mask, p)
    assert np.abs(o - want_o).max() < 1e-5
    assert np.abs(lse - want_lse).max() < 1e-5
    if p:
        frac = mask.mean() if not kw.get("causal") else None
        assert frac is None or abs(frac - (1 - p)) < 0.05


def test_dropout_pattern_is_reproducible_and_backend_independent():
    q, k, v = (rand((1, 40, 2, 16), s) for s in (5, 6, 7))
    masks = []
    for backend in ("oracle", "standard", "tiled"):
        for bm, bn in ((0, 0), (8, 16), (5, 3)):
            _, m = fa2.forward(q, k, v, dropout_p=0.4, dropout_seed=99,
                               dropout_offset=7, backend=backend, block_m=bm,
                               block_n=bn, return_dropout_mask=True)
            masks.append(m)
    for m in masks[1:]:
        assert np.array_equal(m, masks[0])
    _, other = fa2.forward(q, k, v, dropout_p=0.4, dropout_seed=99,
                           dropout_offset=8, return_dropout_mask=True)
    assert not np.array_equal(other, masks[0])


def test_sink_gradient_matches_the_oracle_and_finite_differences():
    q, k, v, do = (rand((1, 12, 2, 8), s) for s in (8, 9, 10, 11))
    sinks = np.array([0.5, -1.0], np.float32)
    o, lse = fa2.forward(q, k, v, sinks=sinks, return_lse=True, backend="oracle")
    *_, ds_tiled = fa2.backward(q, k, v, o, lse, do, sinks=sinks)
    *_, ds_oracle = fa2.backward(q, k, v, o, lse, do, sinks=sinks, backend="oracle")
    assert np.abs(ds_tiled - ds_oracle).max() < 1e-4
    h = 1e-3
    for head in range(2):
        sp, sm = sinks.copy(), sinks.copy()
        sp[head] += h
        sm[head] -= h
        op = fa2.forward(q, k, v, sinks=sp, backend="oracle").astype(np.float64)
        om = fa2.forward(q, k, v, sinks=sm, backend="oracle").astype(np.float64)
        fd = ((op - om) * do).sum() / (2 * h)
        assert abs(fd - ds_oracle[head]) < 1e-3 * (1 + abs(fd))


def test_attention_with_seed_is_reproducible_and_varlen_takes_modifiers():
    q = rand((30, 2, 16), 12)
    cu = np.array([0, 11, 30], np.int32)
    a = fa2.attention_varlen(q, q, q, cu, cu, dropout_p=0.5, seed=3, softcap=4.0,
                             alibi_slopes=np.array([[0.5, 0.25], [0.125, 0.0625]],
                                                   np.float32))
    b = fa2.attention_varlen(q, q, q, cu, cu, dropout_p=0.5, seed=3, softcap=4.0,
                             alibi_slopes=np.array([[0.5, 0.25], [0.125, 0.0625]],
                                                   np.float32))
    c = fa2.attention_varlen(q, q, q, cu, cu, dropout_p=0.5, seed=4, softcap=4.0,
                             alibi_slopes=np.array([[0.5, 0.25], [0.125, 0.0625]],
                                                   np.float32))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_modifiers_raise():
    q = rand((1, 8, 2, 16), 13)
    with pytest.raises(fa2.Fa2Error):
        fa2.forward(q, q, q, softcap=-1.0)
    with pytest.raises(ValueError):
        fa2.forward(q, q, q, sinks=np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        fa2.attention(q, q, q, dropout_p=1.0)
