#!/usr/bin/env python3
"""mods_cost.py — what the score modifiers and dropout cost over plain
attention on the GPU, in one process, on the same tensors (issue 15's
budget: softcap, ALiBi and sinks <= 10%, dropout <= 25% at head dim 128,
seqlen 4k).

For each pass (forward; backward, given the forward's O and LSE) the
variants plain, softcap 30, ALiBi, sinks, dropout 0.1 and all four are
timed in turn, round after round (CUDA events around one call each, so the
variants see the same clocks and the same L2 history; --reps calls
back to back between the events, so that the host's per-call cost is
hidden behind the kernels), and the median of
each is printed with its ratio to plain. FA2_CUDA_FWD_KERNEL /
FA2_CUDA_BWD_KERNEL in the environment pick the kernels as usual.

    FA2_LIB=.../libfa2.so.0 python3 bench/mods_cost.py [--batch 1]
        [--heads 16] [--seqlen 4096] [--head-dim 128] [--dtype bf16]
        [--causal] [--rounds 30] [--passes fwd,bwd]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import fa2  # noqa: E402
import torch  # noqa: E402


def variants(h, dev):
    slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / h) for i in range(h)],
                          dtype=torch.float32, device=dev)
    sinks = torch.randn(h, dtype=torch.float32, device=dev)
    drop = {"dropout_p": 0.1, "dropout_seed": 1234, "dropout_offset": 0}
    return (("plain", {}),
            ("softcap 30", {"softcap": 30.0}),
            ("alibi", {"alibi_slopes": slopes}),
            ("sinks", {"sinks": sinks}),
            ("dropout 0.1", drop),
            ("all four", dict(softcap=30.0, alibi_slopes=slopes, sinks=sinks, **drop)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=4096)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--dtype", default="bf16", choices=("fp16", "bf16"))
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--passes", default="fwd,bwd")
    a = ap.parse_args()
    dev = "cuda"
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float16
    torch.manual_seed(0)
    shape = (a.batch, a.seqlen, a.heads, a.head_dim)
    q, k, v, do = (torch.randn(shape, dtype=dt, device=dev) for _ in range(4))
    vs = variants(a.heads, dev)
    passes = a.passes.split(",")
    print("device: %s; torch %s; libfa2 %s" % (torch.cuda.get_device_name(),
                                               torch.__version__, os.environ.get("FA2_LIB", "?")))
    print("shape: batch %d, heads %d, seqlen %d, head dim %d, %s, %s; kernels: fwd %s, bwd %s"
          % (a.batch, a.heads, a.seqlen, a.head_dim, a.dtype,
             "causal" if a.causal else "no mask",
             os.environ.get("FA2_CUDA_FWD_KERNEL", "default"),
             os.environ.get("FA2_CUDA_BWD_KERNEL", "default")))
    # the forward's outputs for the backward, per variant (untimed)
    fo = {}
    for name, m in vs:
        fo[name] = fa2.forward(q, k, v, causal=a.causal, return_lse=True, **m)
    calls = []
    for name, m in vs:
        if "fwd" in passes:
            calls.append(("fwd", name, lambda m=m: fa2.forward(q, k, v, causal=a.causal,
                                                               return_lse=True, **m)))
        if "bwd" in passes:
            o, lse = fo[name]
            calls.append(("bwd", name, lambda m=m, o=o, lse=lse: fa2.backward(
                q, k, v, o, lse, do, causal=a.causal, **m)))
    times = {(p, n): [] for p, n, _ in calls}
    for _, _, fn in calls:  # warm up
        fn()
    torch.cuda.synchronize()
    for _ in range(a.rounds):
        for p, n, fn in calls:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(a.reps):
                fn()
            e.record()
            torch.cuda.synchronize()
            times[(p, n)].append(s.elapsed_time(e) / a.reps)
    for p in passes:
        base = statistics.median(times[(p, "plain")])
        print("\n%s (median of %d rounds of %d calls)" % (p, a.rounds, a.reps))
        print("| variant | ms | / plain |")
        print("|---|---:|---:|")
        for name, _ in vs:
            t = statistics.median(times[(p, name)])
            print("| %s | %.3f | %.3f |" % (name, t, t / base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
