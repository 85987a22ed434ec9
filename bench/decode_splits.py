#!/usr/bin/env python3
"""Decode time against num_splits (fa2 with each count, and SDPA cuDNN), same
tensors, alternating, median of 7 (bf16, d 128, Nq 1).
Run from the source tree on a GPU host with FA2_LIB set:
    python3 bench/decode_splits.py [--shapes HQ/HKV/B/N,...] [--splits 1,2,..]
        [--graph]
--graph times 20 calls replayed from a CUDA graph (GPU time alone, no host
launch costs); without it, one direct call at a time (gpu_time)."""
import argparse, os, sys, statistics, torch
sys.path.insert(0, os.path.join(os.getcwd(), "python"))
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import fa2
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from decode_compare import capture_calls, decode_tensors, gpu_time, events_ms

DEFAULT_SHAPES = "32/8/64/4096,32/8/64/32768,32/32/64/4096,32/32/8/4096,32/8/8/32768,32/8/1/131072"
ap = argparse.ArgumentParser()
ap.add_argument("--shapes", default=DEFAULT_SHAPES)
ap.add_argument("--splits", default="", help="counts to try (default: around the library's)")
ap.add_argument("--graph", action="store_true")
args = ap.parse_args()


def graph_timer(fn, stream):
    """ms per call of fn, from 20 calls captured in a CUDA graph"""
    g = capture_calls(torch, fn, stream, 20)
    return lambda: events_ms(torch, g.replay, 5) / 20


for shape in args.shapes.split(","):
    hq, hkv, B, n = (int(x) for x in shape.split("/"))
    d = 128
    q, k, v, lens, out, qs, ks, vs = decode_tensors(torch, B, n, hq, hkv, d)
    st = torch.cuda.Stream()
    a0 = fa2.make_kvcache_args(q, k, v, out, lens, causal=True, stream=st)
    auto = fa2.kvcache_num_splits(a0, "cuda")
    if args.splits:
        counts = sorted({int(s) for s in args.splits.split(",")} | {auto})
    else:
        extra = {48, 63, 64, 95} if B == 1 else {12} if B == 8 else set()
        counts = sorted({1, 2, 3, 4, 6, auto, auto + 1, max(1, auto - 1)} | extra)
    fns = {}
    for s in counts:
        a = fa2.make_kvcache_args(q, k, v, out, lens, causal=True, num_splits=s, stream=st)
        fns["s%d" % s] = lambda a=a: fa2.run_kvcache(a, "cuda")
    def cud():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=hq != hkv)
    fns["cudnn"] = cud
    with torch.cuda.stream(st):
        for f in fns.values():
            f()
        torch.cuda.synchronize()
        if args.graph:
            timers = {k_: graph_timer(f, st) for k_, f in fns.items()}
        else:
            timers = {k_: (lambda f=f: gpu_time(torch, f, 1)) for k_, f in fns.items()}
        ts = {}
        for _ in range(7):
            for name, t in timers.items():
                ts.setdefault(name, []).append(t())
    med = {k_: statistics.median(v_) for k_, v_ in ts.items()}
    print("%d/%d b%d n%d auto %d%s: " % (hq, hkv, B, n, auto, " (graph)" if args.graph else "") +
          "  ".join("%s %.1fus(%.3f)" % (k_, med[k_] * 1e3, med["cudnn"] / med[k_]) for k_ in med),
          flush=True)
    del q, k, v, ks, vs, fns, timers
    torch.cuda.empty_cache()
