"""Ring attention's CPU mirror (fa2.ring, numpy, no torch): R simulated
ranks with zig-zag chunks over the tiled backend give the single-device
result within the usual bound (fa2.verify: 2x standard attention's error
against the float64 oracle, plus the floor), forward and backward, causal
and not, for 2, 3, 4 and 8 ranks, GQA and varlen; the merge follows
lib/fa2_kvcache.h's rules for empty and NaN parts."""
import numpy as np
import pytest

import fa2
from fa2 import ring


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def check_against_single_device(q, k, v, dout, world, causal, cu=None):
    o, lse = ring.ring_attention_mirror(q, k, v, world, causal=causal,
                                        cu_seqlens=cu)
    dq, dk, dv = ring.ring_attention_mirror_backward(
        q, k, v, o, lse, dout, world, causal=causal, cu_seqlens=cu)
    rep = fa2.verify(q, k, v, o, lse=lse, dout=dout, dq=dq, dk=dk, dv=dv,
                     causal=causal, cu_seqlens_q=cu, cu_seqlens_k=cu)
    assert rep.passed, str(rep)
    # and the distance to the single-device tiled result is inside the
    # same bound (the bound is about the error; both errors are inside it)
    one_o, one_lse = fa2.forward(q, k, v, causal=causal, return_lse=True,
                                 cu_seqlens_q=cu, cu_seqlens_k=cu)
    one_g = fa2.backward(q, k, v, one_o, one_lse, dout, causal=causal,
                         cu_seqlens_q=cu, cu_seqlens_k=cu)
    for name, got, want in (("o", o, one_o), ("dq", dq, one_g[0]),
                            ("dk", dk, one_g[1]), ("dv", dv, one_g[2])):
        dist = float(np.abs(got.astype(np.float64) - want).max())
        assert dist <= 2 * rep.outputs[name].bound, (name, dist)
    assert np.abs(lse.reshape(one_lse.shape) - one_lse).max() < 1e-5
    return rep


@pytest.mark.parametrize("world", [2, 3, 4, 8])
@pytest.mark.parametrize("causal", [False, True])
def test_ring_mirror_equals_single_device_forward_and_backward(world, causal):
    q = rand((2, 67, 4, 16), 1)
    k, v = rand((2, 67, 2, 16), 2), rand((2, 67, 2, 16), 3)  # GQA 4:2
    dout = rand(q.shape, 4)
    check_against_single_device(q, k, v, dout, world, causal)


@pytest.mark.parametrize("world", [2, 3, 4, 8])
@pytest.mark.parametrize("causal", [False, True])
def test_ring_mirror_varlen_each_sequence_cut_into_2r_chunks(world, causal):
    # lengths 37, 5 (shorter than 2R for R >= 3: some chunks empty), 0, 50
    cu = np.array([0, 37, 42, 42, 92], np.int32)
    q = rand((92, 4, 16), 5)
    k, v = rand((92, 1, 16), 6), rand((92, 1, 16), 7)  # MQA
    dout = rand(q.shape, 8)
    check_against_single_device(q, k, v, dout, world, causal, cu)


def test_one_rank_is_the_single_device_result_bit_for_bit():
    q, k, v = (rand((1, 40, 2, 16), s) for s in (9, 10, 11))
    o, lse = ring.ring_attention_mirror(q, k, v, 1, causal=True)
    want, want_lse = fa2.forward(q, k, v, causal=True, return_lse=True)
    assert np.array_equal(o, want) and np.array_equal(lse, want_lse)


def test_zigzag_gives_every_rank_chunks_r_and_2r_minus_1_minus_r():
    zz = ring.ZigZag(np.array([0, 16], np.int32), 4)  # chunks of 2 tokens
    assert zz.index[0].tolist() == [0, 1, 14, 15]
    assert zz.index[3].tolist() == [6, 7, 8, 9]
    everyone = np.sort(np.concatenate(zz.index))
    assert everyone.tolist() == list(range(16))


def test_causal_zigzag_balances_the_work():
    # visible (query, key) pairs per rank are equal when 2R divides N
    n, world = 64, 4
    zz = ring.ZigZag(np.array([0, n], np.int32), world)
    work = [int(sum(i + 1 for i in zz.index[r])) for r in range(world)]
    assert len(set(work)) == 1, work


def merge(lses, outs):
    with np.errstate(invalid="ignore", over="ignore"):
        return ring.merge_lse(np, [np.float32(x) * np.ones(1, np.float32)
                                   for x in lses],
                              [np.asarray(o, np.float32)[None] for o in outs])


def test_merge_of_two_parts_is_the_union():
    s = rand((2, 9), 12).astype(np.float64)  # two parts' scores, one row
    vals = rand((2, 9, 3), 13).astype(np.float64)
    lses = [np.log(np.exp(s[i]).sum()) for i in range(2)]
    outs = [(np.exp(s[i] - lses[i])[:, None] * vals[i]).sum(0) for i in range(2)]
    o, lse = merge(lses, outs)
    all_s, all_v = s.reshape(-1), vals.reshape(-1, 3)
    want_lse = np.log(np.exp(all_s).sum())
    want_o = (np.exp(all_s - want_lse)[:, None] * all_v).sum(0)
    assert abs(lse[0] - want_lse) < 1e-5
    assert np.abs(o[0] - want_o).max() < 1e-5


def test_merge_skips_empty_parts_and_propagates_nan():
    o, lse = merge([np.inf, 0.5], [[np.nan, np.nan], [1.0, 2.0]])
    assert lse[0] == np.float32(0.5) and o[0].tolist() == [1.0, 2.0]
    o, lse = merge([-np.inf, np.inf], [[np.nan, 1.0], [3.0, np.nan]])
    assert lse[0] == np.inf and o[0].tolist() == [0.0, 0.0]
    o, lse = merge([np.nan, 0.5], [[1.0, 1.0], [1.0, 2.0]])
    assert np.isnan(lse[0]) and np.isnan(o[0]).all()
    o, lse = merge([0.0, -200.0], [[1.0, 1.0], [np.nan, 2.0]])  # weight ~0
    assert np.isnan(o[0][0]) and o[0][1] == np.float32(1.0)


def test_nan_in_a_key_reaches_the_same_rows_as_on_one_device():
    q, k, v = (rand((1, 32, 2, 8), s) for s in (14, 15, 16))
    k[0, 20, 1, 3] = np.nan
    o, lse = ring.ring_attention_mirror(q, k, v, 4, causal=True)
    want, want_lse = fa2.forward(q, k, v, causal=True, return_lse=True)
    assert np.array_equal(np.isnan(o), np.isnan(want))
    assert np.array_equal(np.isnan(lse), np.isnan(want_lse))
    assert np.isnan(o[0, 20:, 1]).all() and not np.isnan(o[0, :20]).any()


@pytest.mark.parametrize("causal", [False, True])
def test_fp16_ring_stays_inside_the_bound(causal):
    # each step's partial o is rounded to fp16 by the forward before the
    # merge (one more rounding than on one device): still inside the bound
    q, do = (rand((2, 64, 4, 32), s).astype(np.float16) for s in (17, 18))
    k, v = (rand((2, 64, 2, 32), s).astype(np.float16) for s in (19, 20))
    o, lse = ring.ring_attention_mirror(q, k, v, 4, causal=causal)
    g = ring.ring_attention_mirror_backward(q, k, v, o, lse, do, 4, causal=causal)
    assert o.dtype == np.float16 and g[0].dtype == np.float16
    rep = fa2.verify(q, k, v, o, lse=lse, dout=do, dq=g[0], dk=g[1], dv=g[2],
                     causal=causal)
    assert rep.passed, str(rep)
