#!/usr/bin/env python3
"""d64 forward: 2 vs 3 consumer warpgroups (FA2_CUDA_FWD90_CONSUMERS per
call) against SDPA cuDNN, same tensors, alternating, median of 7."""
import os, sys, statistics, torch
sys.path.insert(0, os.path.join(os.getcwd(), "python"))
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import fa2
from decode_compare import events_ms
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

def timed(fn, inner):
    return events_ms(torch, fn, inner)

d, H = 64, 32
for N in (512, 1024, 1536, 2048, 3072, 4096, 8192):
    B = max(1, 16384 // N)
    for causal in (0, 1):
        q, k, v = (torch.randn(B, N, H, d, dtype=torch.bfloat16, device="cuda") for _ in range(3))
        o = torch.empty_like(q)
        lse = torch.empty(B, H, N, dtype=torch.float32, device="cuda")
        a = fa2.make_args(q, k, v, o, lse, causal=bool(causal))
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        outs = {}
        def run_nc(nc):
            os.environ["FA2_CUDA_FWD90_CONSUMERS"] = str(nc)
            fa2.run(a)
        for nc in (2, 3):
            run_nc(nc); torch.cuda.synchronize(); outs[nc] = o.clone()
        diff = (outs[2].float() - outs[3].float()).abs().max().item()
        def cud():
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                return F.scaled_dot_product_attention(qt, kt, vt, is_causal=bool(causal))
        fns = {"nc2": lambda: run_nc(2), "nc3": lambda: run_nc(3), "cudnn": cud}
        for f in fns.values():
            f()
        torch.cuda.synchronize()
        inner = max(1, int(3.0 / max(timed(cud, 2), 1e-3)))
        ts = {}
        for _ in range(7):
            for name, f in fns.items():
                ts.setdefault(name, []).append(timed(f, inner))
        med = {n_: statistics.median(t) for n_, t in ts.items()}
        fl = 4.0 * N * N * d * H * B * (0.5 if causal else 1.0)
        print("d%d N%5d %-6s nc2 %5.0f nc3 %5.0f cudnn %5.0f TF/s  nc2/cud %.3f nc3/cud %.3f  |o2-o3| %.3g" % (
            d, N, "causal" if causal else "none", fl / med["nc2"] / 1e9, fl / med["nc3"] / 1e9,
            fl / med["cudnn"] / 1e9, med["cudnn"] / med["nc2"], med["cudnn"] / med["nc3"], diff), flush=True)
os.environ.pop("FA2_CUDA_FWD90_CONSUMERS", None)
