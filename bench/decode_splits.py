#!/usr/bin/env python3
"""Decode time against num_splits (fa2 with each count, and SDPA cuDNN), same
tensors, alternating, median of 7 (bf16, d 128, Nq 1; the shapes below).
Run from the source tree on a GPU host with FA2_LIB set: python3 bench/decode_splits.py"""
import os, sys, statistics, torch
sys.path.insert(0, os.path.join(os.getcwd(), "python"))
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import fa2
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from decode_compare import decode_tensors, gpu_time
for hq, hkv, B, n in ((32, 8, 64, 4096), (32, 8, 64, 32768), (32, 32, 64, 4096),
                      (32, 32, 8, 4096), (32, 8, 8, 32768), (32, 8, 1, 131072)):
    d = 128
    q, k, v, lens, out, qs, ks, vs = decode_tensors(torch, B, n, hq, hkv, d)
    a0 = fa2.make_kvcache_args(q, k, v, out, lens, causal=True)
    auto = fa2.kvcache_num_splits(a0, "cuda")
    impls = {}
    extra = {48, 63, 64, 95} if B == 1 else {12} if B == 8 else set()
    for s in sorted({1, 2, 3, 4, 6, auto, auto + 1, max(1, auto - 1)} | extra):
        a = fa2.make_kvcache_args(q, k, v, out, lens, causal=True, num_splits=s)
        impls["s%d" % s] = (lambda a=a: fa2.run_kvcache(a, "cuda"), a)
    def cud():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=hq != hkv)
    fns = {k_: f for k_, (f, _) in impls.items()}
    fns["cudnn"] = cud
    ts = {}
    for _ in range(7):
        for name, f in fns.items():
            ts.setdefault(name, []).append(gpu_time(torch, f, 1))
    med = {k_: statistics.median(v_) for k_, v_ in ts.items()}
    print("%d/%d b%d n%d auto %d: " % (hq, hkv, B, n, auto) + "  ".join(
        "%s %.1fus(%.3f)" % (k_, med[k_] * 1e3, med["cudnn"] / med[k_]) for k_ in med), flush=True)
    del q, k, v, ks, vs
    torch.cuda.empty_cache()
