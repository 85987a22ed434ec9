#!/usr/bin/env python3
"""fwd_sched.py — the sm_90 forward's tile schedules against each other
and against SDPA's cuDNN backend, in one process, on the same tensors
(issue 12: causal launches at short sequences).

    static   FA2_CUDA_FWD90_SCHED=static: one block per SM, tiles round robin
    dynamic  FA2_CUDA_FWD90_SCHED=dynamic: one block per SM, tiles from a counter
    pairs    FA2_CUDA_FWD90_SCHED=pairs: one block per SM, causal query blocks
             (m, last - m) of a head in pairs, pairs round robin
    blocks   FA2_CUDA_FWD90_SCHED=blocks: one block per tile

The paper grid's shapes (batch x seqlen = 16k, hidden 2048), each variant
and cuDNN timed in turn, round after round (CUDA events around --reps
back-to-back calls), medians in TFLOP/s (causal counts half the FLOPs).

    FA2_LIB=.../libfa2.so.0 python3 bench/fwd_sched.py [--head-dims 64,128,256]
        [--seqlens 512,1024,...] [--masks causal,none] [--dtype bf16]
        [--scheds pairs,blocks,dynamic,static] [--rounds 10] [--reps 5] [--profile]

--profile calls each schedule twice per shape, untimed, without cuDNN,
for a profiler: e.g. `ncu --clock-control none --launch-skip 2
--launch-count 2 -k regex:fwd_kernel_sm90 python3 bench/fwd_sched.py
--profile --head-dims 128 --seqlens 1024` profiles the second call of
each of the two default schedules.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import fa2  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402


def timed(fn, reps):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(reps):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--head-dims", default="64,128,256")
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--masks", default="causal")
    ap.add_argument("--dtype", default="bf16", choices=("fp16", "bf16"))
    ap.add_argument("--scheds", default="pairs,blocks")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float16
    scheds = a.scheds.split(",")
    print("device: %s; torch %s; cuDNN %s; %s" % (torch.cuda.get_device_name(), torch.__version__,
                                                   torch.backends.cudnn.version(), a.dtype))
    head = ["d", "seqlen", "mask"] + scheds + ["cudnn"] + ["%s/cudnn" % s for s in scheds]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for d in map(int, a.head_dims.split(",")):
        for n in map(int, a.seqlens.split(",")):
            for mask in a.masks.split(","):
                causal = mask == "causal"
                b, h = max(1, 16384 // n), 2048 // d
                torch.manual_seed(0)
                q, k, v = (torch.randn(b, n, h, d, dtype=dt, device="cuda") for _ in range(3))
                qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))
                flops = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
                calls = []
                for sc in scheds:
                    def f(sc=sc):
                        os.environ["FA2_CUDA_FWD90_SCHED"] = sc
                        return fa2.forward(q, k, v, causal=causal)
                    calls.append((sc, f))

                def cudnn():
                    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                        return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                if a.profile:
                    for _ in range(2):
                        for name, fn in calls:
                            fn()
                    torch.cuda.synchronize()
                    continue
                calls.append(("cudnn", cudnn))
                ref = None
                for name, fn in calls:  # warm up, and every schedule gives the same bytes
                    out = fn()
                    if name != "cudnn":
                        if ref is None:
                            ref = out.clone()
                        elif not torch.equal(ref, out):
                            print("MISMATCH: %s differs from %s at d %d n %d %s"
                                  % (name, scheds[0], d, n, mask))
                torch.cuda.synchronize()
                t = {name: [] for name, _ in calls}
                for _ in range(a.rounds):
                    for name, fn in calls:
                        t[name].append(timed(fn, a.reps))
                tf = {name: flops / (statistics.median(v) * 1e-3) / 1e12 for name, v in t.items()}
                row = [str(d), str(n), mask] + ["%.0f" % tf[s] for s in scheds] + \
                      ["%.0f" % tf["cudnn"]] + ["%.3f" % (tf[s] / tf["cudnn"]) for s in scheds]
                print("| " + " | ".join(row) + " |", flush=True)
    os.environ.pop("FA2_CUDA_FWD90_SCHED", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
