"""fa2.distributed on CPU tensors: 2, 3 and 4 processes (torch.multiprocessing
spawn, gloo) run ring attention forward and backward; the gathered result
equals the CPU mirror (fa2.ring, one process, the same chunk pairs and merge
order) bit for bit and the single-process fa2 result within the
usual bound (fa2.verify), causal and not, GQA and varlen. Skipped without
torch or without gloo."""
import os
import tempfile

import numpy as np
import pytest

import fa2
from fa2 import ring

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed without gloo", allow_module_level=True)
mp = pytest.importorskip("torch.multiprocessing")

VARLEN_CU = [0, 37, 42, 42, 92]  # lengths 37, 5, 0, 50
WORLDS = (2, 3, 4)


def problem(varlen, seed=0):
    g = torch.Generator().manual_seed(seed)
    if varlen:
        shape_q, shape_k = (92, 4, 16), (92, 1, 16)  # MQA 4:1
    else:
        shape_q, shape_k = (2, 48, 4, 16), (2, 48, 2, 16)  # GQA 2:1
    q = torch.randn(shape_q, generator=g)
    k, v = torch.randn(shape_k, generator=g), torch.randn(shape_k, generator=g)
    return q, k, v, torch.randn(shape_q, generator=g)


def worker(rank, nprocs, init_file, out_dir):
    """One process: for each ring size R = 2, 3, 4 (the subgroup of ranks
    0 .. R-1, so one spawn serves every size and the group argument is
    exercised), every case's forward and backward on its shares."""
    import fa2.distributed as fd
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + init_file,
                            rank=rank, world_size=nprocs)
    try:
        for world in WORLDS:
            group = dist.new_group(list(range(world)))
            if rank >= world:
                continue
            res = {}
            for varlen in (False, True):
                cu = torch.tensor(VARLEN_CU, dtype=torch.int32) if varlen else None
                q, k, v, do = problem(varlen)
                for causal in (False, True):
                    qs, ks, vs, dos = (fd.shard(x, rank, world, cu)
                                       for x in (q, k, v, do))
                    qs, ks, vs = (x.clone().requires_grad_() for x in (qs, ks, vs))
                    o, lse = fd.ring_attention(qs, ks, vs, causal=causal,
                                               cu_seqlens=cu, group=group,
                                               return_lse=True)
                    o.backward(dos)
                    res[(varlen, causal)] = (o.detach(), lse, qs.grad, ks.grad,
                                             vs.grad)
            torch.save(res, os.path.join(out_dir, "w%d-rank%d.pt" % (world, rank)))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ring_runs():
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(worker, args=(max(WORLDS), os.path.join(d, "init"), d),
                 nprocs=max(WORLDS), join=True)
        return {w: [torch.load(os.path.join(d, "w%d-rank%d.pt" % (w, r)))
                    for r in range(w)] for w in WORLDS}


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("varlen", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_ring_on_gloo_equals_the_mirror_and_the_single_process(ring_runs, world,
                                                               varlen, causal):
    import fa2.distributed as fd
    parts = ring_runs[world]
    cu = torch.tensor(VARLEN_CU, dtype=torch.int32) if varlen else None
    cu_np = np.array(VARLEN_CU, np.int32) if varlen else None
    q, k, v, do = problem(varlen)
    got = [fd.unshard([p[(varlen, causal)][i] for p in parts], world, cu)
           for i in (0, 2, 3, 4)]
    zz = ring.ZigZag(VARLEN_CU if varlen else fd._cu_fixed(q.shape[0], q.shape[1]),
                     world)
    lse = torch.empty(q.shape[-2], sum(len(i) for i in zz.index))
    for r in range(world):
        lse[:, torch.as_tensor(zz.index[r])] = parts[r][(varlen, causal)][1]
    qn, kn, vn, don = (x.numpy() for x in (q, k, v, do))
    # the mirror: the same chunk pairs, the same merge order
    mo, mlse = ring.ring_attention_mirror(qn, kn, vn, world, causal=causal,
                                          cu_seqlens=cu_np)
    mg = ring.ring_attention_mirror_backward(qn, kn, vn, mo, mlse, don, world,
                                             causal=causal, cu_seqlens=cu_np)
    # bit for bit: the same tiled calls, the same merge rounding and order,
    # the same accumulation order of dQ and of the travelling dK/dV
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, (mo,) + tuple(mg)):
        assert torch.equal(a, torch.from_numpy(b)), \
            (name, float((a - torch.from_numpy(b)).abs().max()))
    mlse_h = mlse if varlen else mlse.transpose(1, 0, 2).reshape(mlse.shape[1], -1)
    assert torch.equal(lse, torch.from_numpy(mlse_h))
    # the single process, within the usual bound against the oracle
    rep = fa2.verify(qn, kn, vn, got[0].numpy(), lse=mlse, dout=don,
                     dq=got[1].numpy(), dk=got[2].numpy(), dv=got[3].numpy(),
                     causal=causal, cu_seqlens_q=cu_np, cu_seqlens_k=cu_np)
    assert rep.passed, str(rep)
    one = fa2.attention_varlen(q, k, v, cu, cu, causal=causal) if varlen else \
        fa2.attention(q, k, v, causal=causal)
    assert float((one - got[0]).abs().max()) <= 2 * rep.outputs["o"].bound


def test_shard_and_unshard_are_inverse():
    import fa2.distributed as fd
    x = torch.arange(2 * 24 * 3, dtype=torch.float32).reshape(2, 24, 3, 1)
    parts = [fd.shard(x, r, 3) for r in range(3)]
    assert parts[0][0, :, 0, 0].tolist() == [0, 3, 6, 9, 60, 63, 66, 69]
    assert torch.equal(fd.unshard(parts, 3), x)
    with pytest.raises(ValueError, match="multiple of 2"):
        fd.shard(x, 0, 5)
