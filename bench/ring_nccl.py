"""ring_nccl.py — fa2.distributed on R GPUs against one GPU (issue 18's
multi-GPU check): forward and backward of ring attention equal the
single-GPU fa2 result (max |diff| and ulps reported), and its time per pass
against the single-GPU time (the scaling).

    torchrun --nproc_per_node=2 bench/ring_nccl.py --seqlen 32768 --causal
    torchrun --nproc_per_node=4 bench/ring_nccl.py --seqlen 32768 --causal
    torchrun --nproc_per_node=2 bench/ring_nccl.py --device cpu --seqlen 512

Every rank draws the same global problem (seeded), runs ring attention on
its zig-zag share, and rank 0 gathers the shares and compares them with
fa2.attention on the whole problem on its own GPU. With --device cpu it
runs on gloo over the tiled CPU backend (a smoke test of the script).
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import fa2  # noqa: E402
import fa2.distributed as fd  # noqa: E402


def timed(fn, device, reps):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dist.barrier()
    return (time.perf_counter() - t0) / reps * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--heads-kv", type=int, default=0)
    p.add_argument("--seqlen", type=int, default=32768)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--dtype", default="bf16", choices=["fp16", "bf16", "fp32"])
    p.add_argument("--causal", action="store_true")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = p.parse_args()
    cuda = a.device == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    dev = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    hkv = a.heads_kv or a.heads
    g = torch.Generator().manual_seed(0)
    shp_q = (a.batch, a.seqlen, a.heads, a.head_dim)
    shp_k = (a.batch, a.seqlen, hkv, a.head_dim)
    q, do = (torch.randn(shp_q, generator=g).to(dev, dt) for _ in range(2))
    k, v = (torch.randn(shp_k, generator=g).to(dev, dt) for _ in range(2))

    qs, ks, vs = (fd.shard(x, rank, world).clone().requires_grad_() for x in (q, k, v))
    dos = fd.shard(do, rank, world).contiguous()
    o = fd.ring_attention(qs, ks, vs, causal=a.causal)
    o.backward(dos)
    outs = {"o": o.detach(), "dq": qs.grad, "dk": ks.grad, "dv": vs.grad}

    def ring_fwd():
        with torch.no_grad():
            fd.ring_attention(qs, ks, vs, causal=a.causal)

    def ring_fwd_bwd():
        qs.grad = ks.grad = vs.grad = None
        fd.ring_attention(qs, ks, vs, causal=a.causal).backward(dos)

    t_fwd = timed(ring_fwd, dev, a.reps)
    t_all = timed(ring_fwd_bwd, dev, a.reps)
    gathered = {}
    for name, x in outs.items():
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        gathered[name] = fd.unshard(parts, world)
    if rank == 0:
        q1, k1, v1 = (x.clone().requires_grad_() for x in (q, k, v))
        o1 = fa2.attention(q1, k1, v1, causal=a.causal)
        o1.backward(do)
        want = {"o": o1.detach(), "dq": q1.grad, "dk": k1.grad, "dv": v1.grad}
        for name in ("o", "dq", "dk", "dv"):
            d = (gathered[name].float() - want[name].float()).abs()
            ulp = torch.finfo(dt).eps * float(want[name].float().abs().max())
            print("%s: max |ring - one GPU| = %.3g = %.2f ulp of the largest |%s|"
                  % (name, float(d.max()), float(d.max()) / ulp, name))

        def one_fwd():
            with torch.no_grad():
                fa2.attention(q, k, v, causal=a.causal)

        def one_fwd_bwd():
            q1.grad = k1.grad = v1.grad = None
            fa2.attention(q1, k1, v1, causal=a.causal).backward(do)
    else:
        one_fwd = one_fwd_bwd = lambda: None
    t1_fwd = timed(one_fwd, dev, a.reps)
    t1_all = timed(one_fwd_bwd, dev, a.reps)
    if rank == 0:
        print("R=%d %s seqlen %d heads %d/%d d %d %s%s" % (
            world, a.device, a.seqlen, a.heads, hkv, a.head_dim, a.dtype,
            " causal" if a.causal else ""))
        print("forward:     ring %.3f ms, one GPU %.3f ms, speedup %.2fx (ideal %d)"
              % (t_fwd, t1_fwd, t1_fwd / t_fwd, world))
        print("fwd + bwd:   ring %.3f ms, one GPU %.3f ms, speedup %.2fx"
              % (t_all, t1_all, t1_all / t_all))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
