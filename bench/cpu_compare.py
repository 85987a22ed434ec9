#!/usr/bin/env python3
"""cpu_compare.py — libfa2's tiled CPU backend against PyTorch's CPU
scaled_dot_product_attention, in one process, on the same values, calls
alternating (fa2, torch, fa2, torch, ...) so that both see the same machine
load; the best of the rounds after one warm-up call each (wall clock, or
with --threads 1 --clock thread the calling thread's CPU time).

Shapes (batch 1; issue 16): prefill 16 heads x 4096 x d 64 (fwd and
fwd+bwd), 8 heads x 2048 x d 128 causal (fwd), and decode 32 heads, 1 and
8 queries against 8192 keys, d 128 (fwd), in fp32, fp16 and bf16.

fa2 runs through the python/fa2 package (ctypes) on torch CPU tensors in its own
layout [B, N, H, d]; SDPA gets contiguous [B, H, N, d] tensors holding the
same values (--layout sdpa: fa2 reads those same tensors through strided
views, so that both stream the same bytes in the same order). Threads: torch.set_num_threads(T) and fa2's default worker
count T = --threads (default: the core count), set in fa2's args.
GFLOP/s by the FA2 paper's count: forward 4 Nq Nk d H, halved when causal,
forward+backward 3.5x that. Also printed: the tiled backend's micro-kernel
(FA2_CPU_KERNEL forces one) and the max |fa2 - sdpa| of each output.

    python3 bench/cpu_compare.py [--quick] [--rounds 3] [--dtypes fp32,bf16]
        [--only prefill|decode] [--threads T] [--clock wall|thread]
        [--layout own|sdpa] [--json FILE]
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import torch  # noqa: E402  (torch first, as a user would)
import torch.nn.functional as F  # noqa: E402

from fa2 import _lib as fa2lib  # noqa: E402
from fa2 import _torch as fa2  # noqa: E402  (make_args, run, ...: prebuilt args)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def shapes(quick, only):
    n = 2048 if quick else 4096
    n2 = 1024 if quick else 2048
    nk = 4096 if quick else 8192
    out = []
    if only in (None, "prefill"):
        out += [dict(name=f"h16 n{n} d64", h=16, hkv=16, nq=n, nk=n, d=64,
                     causal=False, passes=("fwd", "fwd+bwd")),
                dict(name=f"h8 n{n2} d128 causal", h=8, hkv=8, nq=n2, nk=n2,
                     d=128, causal=True, passes=("fwd",))]
    if only in (None, "decode"):
        for nq in (1, 8):
            out.append(dict(name=f"h32 {nq}q x {nk}k d128", h=32, hkv=32, nq=nq,
                            nk=nk, d=128, causal=False, passes=("fwd",)))
    return out


def flops(s, pass_):
    f = 4.0 * s["nq"] * s["nk"] * s["d"] * s["h"]
    if s["causal"]:
        f /= 2
    return f * (3.5 if pass_ == "fwd+bwd" else 1.0)


def make_calls(s, dt, pass_, threads, same_memory=False):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, s["nq"], s["h"], s["d"], generator=g).to(dt)
    k = torch.randn(1, s["nk"], s["hkv"], s["d"], generator=g).to(dt)
    v = torch.randn(1, s["nk"], s["hkv"], s["d"], generator=g).to(dt)
    do = torch.randn(1, s["nq"], s["h"], s["d"], generator=g).to(dt)
    # SDPA's layout, same values
    qs, ks, vs, dos = (x.transpose(1, 2).contiguous() for x in (q, k, v, do))
    if same_memory:  # fa2 reads SDPA's tensors through strided views
        q, k, v, do = (x.transpose(1, 2) for x in (qs, ks, vs, dos))
    causal = s["causal"]
    res = {}

    T = threads
    # fa2's args hold raw pointers: keep the tensors alive with the calls
    res["inputs"] = (q, k, v, do)
    o = torch.empty_like(q)
    lse = torch.empty(1, s["h"], s["nq"], dtype=torch.float32)
    res["outputs"] = (o, lse)
    fwd_args = fa2.make_args(q, k, v, o, lse, causal)
    fwd_args.num_threads = T
    grads = [torch.empty_like(x) for x in (q, k, v)]
    res["grads"] = grads
    bwd_args = fa2.make_bwd_args(q, k, v, o, lse, do, *grads, causal)
    bwd_args.num_threads = T

    def fa2_call():
        fa2.run(fwd_args, "tiled")
        if pass_ == "fwd":
            res["fa2"] = o
        else:
            fa2.run_bwd(bwd_args, "tiled")
            res["fa2"] = grads

    def torch_call():
        if pass_ == "fwd":
            with torch.no_grad():
                res["torch"] = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal)
        else:
            a, b, c = (x.detach().requires_grad_() for x in (qs, ks, vs))
            o = F.scaled_dot_product_attention(a, b, c, is_causal=causal)
            o.backward(dos)
            res["torch"] = (a.grad, b.grad, c.grad)

    def max_err():
        if pass_ == "fwd":
            pairs = [(res["fa2"], res["torch"].transpose(1, 2))]
        else:
            pairs = [(x, y.transpose(1, 2)) for x, y in zip(res["fa2"], res["torch"])]
        return max(float((x.float() - y.float()).abs().max()) for x, y in pairs)

    return fa2_call, torch_call, max_err


def tile_kernel():
    """The tile-product kernel the library picks (cpu/tile_product.c's rule:
    FA2_CPU_KERNEL if set, else AVX-512F, else AVX2 with FMA, else portable;
    the shared library exports only the public API, so it is read here from
    the CPU's flags)."""
    forced = os.environ.get("FA2_CPU_KERNEL")
    if forced:
        return forced + " (forced)"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return "unknown"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if {"avx2", "fma"} <= flags else "portable"


def timed(fn, clock):
    t = clock()
    fn()
    return clock() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="half the lengths")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dtypes", default="fp32,fp16,bf16")
    ap.add_argument("--only", choices=("prefill", "decode"))
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="thread: this thread's CPU time (only with --threads 1: "
                    "both then run on the calling thread), robust on a shared machine")
    ap.add_argument("--layout", choices=("own", "sdpa"), default="own",
                    help="own: fa2 gets [B, N, H, d] tensors, SDPA [B, H, N, d] "
                    "copies; sdpa: fa2 reads SDPA's [B, H, N, d] memory through "
                    "strided views (the same bytes in the same order for both)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.clock == "thread" and a.threads != 1:
        ap.error("--clock thread needs --threads 1")
    clock = time.thread_time if a.clock == "thread" else time.perf_counter
    torch.set_num_threads(a.threads)
    fa2lib.lib()
    kernel = tile_kernel()
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "FA2_"))}
    print(f"torch {torch.__version__} ({torch.__config__.parallel_info().splitlines()[0]}), "
          f"{a.threads} threads; fa2 {fa2lib.version()} micro-kernel {kernel}; "
          f"environment {env or 'default'}", flush=True)
    print(f"{'shape':26} {'dtype':5} {'pass':8} {'fa2 GF/s':>9} {'torch GF/s':>10} "
          f"{'ratio':>6} {'max|diff|':>10}  kernel", flush=True)
    rows = []
    for s in shapes(a.quick, a.only):
        for pass_ in s["passes"]:
            for dn in a.dtypes.split(","):
                fa2_call, torch_call, max_err = make_calls(s, DTYPES[dn], pass_, a.threads,
                                                         a.layout == "sdpa")
                fa2_call()
                torch_call()  # warm-up, and the outputs to compare
                err = max_err()
                tf, tt = [], []
                for _ in range(a.rounds):
                    tf.append(timed(fa2_call, clock))
                    tt.append(timed(torch_call, clock))
                # best of the rounds: on a shared machine the least
                # disturbed run is the closest to either's own speed
                gf = flops(s, pass_) / min(tf) * 1e-9
                gt = flops(s, pass_) / min(tt) * 1e-9
                row = dict(shape=s["name"], dtype=dn, pass_=pass_, fa2_gflops=gf,
                           torch_gflops=gt, ratio=gf / gt, max_abs_diff=err,
                           kernel=kernel, fa2_s=tf, torch_s=tt)
                rows.append(row)
                print(f"{s['name']:26} {dn:5} {pass_:8} {gf:9.1f} {gt:10.1f} "
                      f"{gf / gt:6.2f} {err:10.2e}  {kernel}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(torch=torch.__version__, threads=a.threads, kernel=kernel,
                           clock=a.clock, layout=a.layout,
                           env=env, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
