"""Key warps on the GPU (issue 14, doc/NOTES-kvcache.md): fa2's decode with
key_warps 1, the library's choice (0) and 4, and SDPA's cuDNN backend,
alternating in one process on the same tensors; GPU time per call (20
calls replayed from a CUDA graph) and per direct call, median of 7 rounds.
With --pages, key warps 1 and 4 on the contiguous cache and on pages of
16 and 64 slots instead (GPU time), each output checked against the
contiguous one-key-warp output. --local-pages shuffles the pages only
within each 2 MiB of the pool (the GPU's large-page size): if pages of 16
then cost what contiguous costs, their price is address translation or
DRAM locality, not the page walk (not run yet).

    python3 bench/decode_key_warps.py [--pages [--local-pages]] [--nq N] B,N,HKV ...

Hq 32, d 128, bf16; $FA2_LIB picks the library (python/fa2)."""
import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
sys.path.insert(0, HERE)
import fa2  # noqa: E402
from decode_compare import capture_calls, events_ms, paged_cache  # noqa: E402

DEFAULT = ["1,4096,8", "1,32768,8", "8,32768,8", "1,131072,8", "8,131072,8",
           "64,4096,8", "1,32768,32", "1,131072,32"]


def timed(fns, stream, rounds=7):
    """median GPU-time (graph) and direct us per call of each function"""
    with torch.cuda.stream(stream):
        for f in fns.values():
            f()
        graphs = {n: capture_calls(torch, f, stream, 20) for n, f in fns.items()}
        torch.cuda.synchronize()
        g = {n: [] for n in fns}
        d = {n: [] for n in fns}
        for _ in range(rounds):
            for n, f in fns.items():
                g[n].append(events_ms(torch, graphs[n].replay, 3) * 1e3 / 20)
                d[n].append(events_ms(torch, f, 20) * 1e3)
    med = statistics.median
    return {n: med(v) for n, v in g.items()}, {n: med(v) for n, v in d.items()}


def local_paged_cache(k, v, page, gen, span=2 << 20):
    """paged_cache's pool with pages shuffled only within each `span` bytes
    of the pool (block table likewise): the same pages, the locality of a
    contiguous cache at the span's scale."""
    b, n, h, d = k.shape
    per = n // page
    total = b * per
    group = max(1, span // (page * h * d * k.element_size()))
    perm = torch.cat([g0 + torch.randperm(min(group, total - g0), generator=gen)
                      for g0 in range(0, total, group)]).to(k.device)
    kp = torch.empty(total, page, h, d, dtype=k.dtype, device=k.device)
    vp = torch.empty_like(kp)
    kp[perm] = k.reshape(total, page, h, d)
    vp[perm] = v.reshape(total, page, h, d)
    return kp, vp, perm.reshape(b, per).to(torch.int32)


def one(B, n, hkv, nq, pages, local=False):
    hq, d = 32, 128
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(B, nq, hq, d, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(B, n, hkv, d, dtype=torch.bfloat16, device="cuda")
    v = torch.randn(B, n, hkv, d, dtype=torch.bfloat16, device="cuda")
    lens = torch.full((B,), n, dtype=torch.int32, device="cuda")
    st = torch.cuda.Stream()
    caches = {0: (k, v, None)}
    for page in ((16, 64) if pages else ()):
        caches[page] = (local_paged_cache(k, v, page, gen) if local
                        else paged_cache(torch, k, v, page, gen))
    torch.cuda.synchronize()  # the pools exist before st reads them
    fns, outs, args = {}, {}, {}
    for page, (kk, vv, table) in caches.items():
        for kw in ((1, 4) if pages else (1, 0, 4)):
            o = torch.empty_like(q)
            name = "p%d_kw%d" % (page, kw)
            args[name] = fa2.make_kvcache_args(q, kk, vv, o, lens, block_table=table,
                                               causal=True, key_warps=kw, stream=st)
            fns[name] = (lambda a=args[name]: fa2.run_kvcache(a, "cuda"))
            outs[name] = o
    if not pages:
        qs, ks, vs = (t.transpose(1, 2).contiguous() for t in (q, k, v))

        def cudnn():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                return F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=hq != hkv)
        if nq == 1:  # SDPA's masks align top-left: one query only
            fns["cudnn"] = cudnn
    g, dr = timed(fns, st)
    ref = outs["p0_kw1"].float()
    diff = {nm: (o.float() - ref).abs().max().item() for nm, o in outs.items()}
    head = "nq%d b%-2d n%-6d hkv%-2d" % (nq, B, n, hkv)
    if pages:
        print(head, " ".join("%s %.1f" % (nm, t) for nm, t in g.items()),
              "| p16/p0 kw1 %.3f kw4 %.3f | kw4/kw1 p0 %.3f p16 %.3f p64 %.3f" % (
                  g["p16_kw1"] / g["p0_kw1"], g["p16_kw4"] / g["p0_kw4"],
                  g["p0_kw4"] / g["p0_kw1"], g["p16_kw4"] / g["p16_kw1"],
                  g["p64_kw4"] / g["p64_kw1"]),
              "| max diff %.2g" % max(diff.values()), flush=True)
        return
    chosen = fa2.kvcache_key_warps(args["p0_kw0"], "cuda")
    splits = [fa2.kvcache_num_splits(args["p0_kw%d" % kw], "cuda") for kw in (1, 0, 4)]
    print(head, "auto kw %d splits(1/auto/4) %s max diff %.2g |" % (
        chosen, splits, max(diff.values())),
        "graph", " ".join("%s %.1f" % (nm, t) for nm, t in g.items()),
        "| direct", " ".join("%s %.1f" % (nm, t) for nm, t in dr.items()), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", action="store_true")
    ap.add_argument("--local-pages", action="store_true",
                    help="with --pages: shuffle pages within 2 MiB of the pool only")
    ap.add_argument("--nq", type=int, default=1)
    ap.add_argument("shapes", nargs="*", default=DEFAULT, help="B,N,HKV")
    a = ap.parse_args()
    for s in a.shapes:
        B, n, hkv = (int(x) for x in s.split(","))
        one(B, n, hkv, a.nq, a.pages, a.local_pages)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
