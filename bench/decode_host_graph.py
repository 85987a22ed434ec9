#!/usr/bin/env python3
"""Decode per call: back-to-back direct calls (events), the host's time per
call (no sync inside), and the same call replayed from a CUDA graph (GPU
time alone); cuDNN direct for reference. bf16, d 128, Hq 32 / Hkv 8, Nq 1."""
import os, sys, time, statistics, torch
sys.path.insert(0, os.path.join(os.getcwd(), "python"))
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import fa2
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from decode_compare import capture_calls, decode_tensors, events_ms


def ev_time(fn, n):
    return events_ms(torch, fn, n) * 1e3  # us


for B, n in ((1, 4096), (1, 32768), (8, 4096), (8, 32768), (1, 131072)):
    hq, hkv, d = 32, 8, 128
    q, k, v, lens, out, qs, ks, vs = decode_tensors(torch, B, n, hq, hkv, d)
    a = fa2.make_kvcache_args(q, k, v, out, lens, causal=True)
    f = lambda: fa2.run_kvcache(a, "cuda")
    def cud():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=True)
    st = torch.cuda.Stream()
    ag = fa2.make_kvcache_args(q, k, v, out, lens, causal=True, stream=st)
    for _ in range(3):
        f(); cud()
    st.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(st):
        fa2.run_kvcache(ag, "cuda")
    torch.cuda.synchronize()
    g = capture_calls(torch, lambda: fa2.run_kvcache(ag, "cuda"), st, 20)
    gc = capture_calls(torch, cud, st, 20)
    torch.cuda.synchronize()
    res = {"direct": [], "host": [], "graph": [], "cudnn": [], "cudnn_graph": []}
    for _ in range(5):
        res["direct"].append(ev_time(f, 200))
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(200):
            f()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        res["host"].append((t1 - t0) / 200 * 1e6)
        res["graph"].append(ev_time(g.replay, 10) / 20)
        res["cudnn"].append(ev_time(cud, 200))
        res["cudnn_graph"].append(ev_time(gc.replay, 10) / 20)
    med = {k_: statistics.median(v_) for k_, v_ in res.items()}
    print("b%d n%d splits %d: " % (B, n, fa2.kvcache_num_splits(a, "cuda")) +
          "  ".join("%s %.1f us" % (k_, v_) for k_, v_ in med.items()), flush=True)
    del q, k, v, ks, vs, g, gc
    torch.cuda.empty_cache()
