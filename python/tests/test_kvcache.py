"""fa2.attention_kvcache on torch CPU tensors (skipped without torch):
against attention computed in float64 from the definition on the keys the
cache holds, contiguous and paged, with and without the append (which must
leave the new tokens in the cache), GQA, causal, splits; bad input raises
Fa2Error with the status's name."""
import math

import pytest

import fa2

torch = pytest.importorskip("torch")


def reference(q, keys, values, causal, window=(-1, -1)):
    """O and LSE of one sequence in float64: q [Nq, Hq, d], keys/values
    [Nk, Hkv, d]; bottom-right aligned mask."""
    nq, hq, d = q.shape
    nk, hkv, _ = keys.shape
    g = hq // hkv
    o = torch.zeros(nq, hq, d, dtype=torch.float64)
    lse = torch.full((hq, nq), math.inf, dtype=torch.float64)
    for h in range(hq):
        s = (q[:, h].double() @ keys[:, h // g].double().T) / math.sqrt(d)
        for i in range(nq):
            diag = i + nk - nq
            for j in range(nk):
                right = 0 if causal else window[1]
                if (right >= 0 and j > diag + right) or \
                        (window[0] >= 0 and j < diag - window[0]):
                    s[i, j] = -math.inf
        for i in range(nq):
            if torch.isinf(s[i]).all():
                continue
            p = torch.softmax(s[i], 0)
            o[i, h] = p @ values[:, h // g].double()
            lse[h, i] = torch.logsumexp(s[i], 0)
    return o, lse


def make(paged, dtype=torch.float32, batch=3, nq=2, hq=8, hkv=2, d=32, cap=96,
         page=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, nq, hq, d, generator=g).to(dtype)
    if paged:
        pages = batch * (cap // page) + 2
        kc = torch.randn(pages, page, hkv, d, generator=g).to(dtype)
        vc = torch.randn(pages, page, hkv, d, generator=g).to(dtype)
        perm = torch.randperm(pages, generator=g)[:batch * (cap // page)]
        table = perm.reshape(batch, cap // page).to(torch.int32)
    else:
        kc = torch.randn(batch, cap, hkv, d, generator=g).to(dtype)
        vc = torch.randn(batch, cap, hkv, d, generator=g).to(dtype)
        table = None
    return q, kc, vc, table


def seq_keys(cache, table, b, n):
    if table is None:
        return cache[b, :n]
    page = cache.shape[1]
    rows = [cache[int(table[b, j // page]), j % page] for j in range(n)]
    return torch.stack(rows) if rows else cache[0, :0]


@pytest.mark.parametrize("paged", [False, True])
@pytest.mark.parametrize("append", [False, True])
@pytest.mark.parametrize("num_splits", [0, 1, 3])
def test_kvcache_matches_the_definition_and_appends(paged, append, num_splits):
    q, kc, vc, table = make(paged)
    batch, nq = q.shape[0], q.shape[1]
    lens = torch.tensor([0, 17, 90 - nq], dtype=torch.int32)
    k = v = None
    if append:
        g = torch.Generator().manual_seed(1)
        k = torch.randn(batch, nq, kc.shape[2], kc.shape[3], generator=g)
        v = torch.randn(batch, nq, kc.shape[2], kc.shape[3], generator=g)
    kc0, vc0 = kc.clone(), vc.clone()
    o, lse = fa2.attention_kvcache(q, kc, vc, k, v, cache_seqlens=lens,
                                   block_table=table, causal=True,
                                   num_splits=num_splits, return_softmax_lse=True)
    for b in range(batch):
        n = int(lens[b])
        keys, values = seq_keys(kc0, table, b, n), seq_keys(vc0, table, b, n)
        if append:
            keys = torch.cat([keys, k[b]])
            values = torch.cat([values, v[b]])
            # the new tokens are in the cache now
            assert torch.equal(seq_keys(kc, table, b, n + nq)[n:], k[b])
            assert torch.equal(seq_keys(vc, table, b, n + nq)[n:], v[b])
        ro, rl = reference(q[b], keys, values, causal=True)
        assert (o[b].double() - ro).abs().max() < 1e-5
        fin = torch.isfinite(rl)
        assert torch.equal(torch.isinf(lse[b].double()), ~fin)
        if fin.any():
            assert (lse[b].double()[fin] - rl[fin]).abs().max() < 1e-5
    if not append:
        assert torch.equal(kc, kc0) and torch.equal(vc, vc0)


def test_backends_agree_in_bf16_and_an_int_cache_length():
    q, kc, vc, table = make(True, dtype=torch.bfloat16, hkv=1, nq=1)
    outs = [fa2.attention_kvcache(q, kc, vc, cache_seqlens=40, block_table=table,
                                  backend=b) for b in ("oracle", "standard", "tiled")]
    for o in outs[1:]:
        assert (o.float() - outs[0].float()).abs().max() < 0.02


def test_bad_input_raises_with_the_status_name():
    q, kc, vc, table = make(True)
    bad = table.clone()
    bad[0, 0] = 10 ** 6
    with pytest.raises(fa2.Fa2Error) as e:
        fa2.attention_kvcache(q, kc, vc, cache_seqlens=5, block_table=bad)
    assert e.value.status == "FA2_ERR_BLOCK_TABLE"
    with pytest.raises(fa2.Fa2Error) as e:
        fa2.attention_kvcache(q, kc, vc, cache_seqlens=10 ** 4, block_table=table)
    assert e.value.status == "FA2_ERR_CACHE_SEQLENS"
    with pytest.raises(TypeError):
        fa2.attention_kvcache(q, kc, vc, cache_seqlens=torch.zeros(3),
                              block_table=table)


def test_flash_attn_with_kvcache_is_attention_kvcache():
    from fa2.flash_attn_interface import flash_attn_with_kvcache
    q, kc, vc, table = make(True)
    lens = torch.tensor([3, 30, 60], dtype=torch.int32)
    o1 = flash_attn_with_kvcache(q, kc.clone(), vc.clone(), cache_seqlens=lens,
                                 block_table=table, causal=True)
    o2 = fa2.attention_kvcache(q, kc.clone(), vc.clone(), cache_seqlens=lens,
                               block_table=table, causal=True)
    assert torch.equal(o1, o2)
    with pytest.raises(NotImplementedError):
        flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, block_table=table,
                                rotary_cos=torch.zeros(1))


def test_reused_args_keep_every_tensor_they_point_at_alive():
    """make_kvcache_args (and make_args, make_bwd_args) hold a reference to
    each tensor: args built from temporaries stay valid after the caller
    drops its names (bench/decode_compare.py once reused args whose paged
    caches had been freed and reallocated to the next page size)."""
    import gc
    import weakref
    q, kc, vc, table = make(True, nq=1)
    lens = torch.tensor([5, 40, 80], dtype=torch.int32)
    want = fa2.attention_kvcache(q, kc, vc, cache_seqlens=lens, block_table=table)
    kt, vt, tt = kc.clone(), vc.clone(), table.clone()
    out = torch.empty_like(q)
    a = fa2.make_kvcache_args(q, kt, vt, out, lens.clone(), block_table=tt)
    refs = [weakref.ref(t) for t in (kt, vt, tt)]
    del kt, vt, tt
    gc.collect()
    assert all(r() is not None for r in refs)
    junk = [torch.full_like(kc, float("nan")) for _ in range(2)]  # reuse bait
    fa2.run_kvcache(a, "tiled")
    assert torch.equal(out, want)
    del junk
    x = torch.randn(1, 8, 2, 16)
    fwd = fa2.make_args(x.clone(), x.clone(), x.clone(), x.clone())
    held = [weakref.ref(t) for t in fwd._keep if t is not None]
    gc.collect()
    assert len(held) == 4 and all(r() is not None for r in held)
