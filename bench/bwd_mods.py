#!/usr/bin/env python3
"""bwd_mods.py — what the score modifiers and dropout cost the CUDA backward
(issue 15: softcap / ALiBi / sinks <= 10% and dropout <= 25% over plain
attention, head dim 128, seqlen 4k), in one process, on the same q, k, v
and dO:

    plain        no modifier
    softcap      softcap 30
    alibi        ALiBi, the paper's slopes for the head count
    sinks        a sink logit per head (and its gradient dsinks)
    dropout      dropout 0.1
    all          the four together

Each variant's O and LSE come from fa2's forward with its modifiers; then
the backward alone (fa2.run_bwd on prepared arguments) is timed, the
variants in turn, round after round (CUDA events), and the median of each
is printed with its ratio to plain's. --mma adds the same modifier
variants on the mma.sync kernel (FA2_CUDA_BWD_KERNEL=mma, read per call),
for comparison. Before timing, each variant's gradients are checked to be
finite and, for the modifier variants, to differ from plain's (a variant
that silently ran without its modifier would time the plain kernel).

    FA2_LIB=.../libfa2.so.0 python3 bench/bwd_mods.py [--rounds 30]
        [--batch 1 --heads 16 --seqlen 4096 --head-dim 128 --dtype bfloat16]
        [--no-causal] [--mma]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import fa2  # noqa: E402
import torch  # noqa: E402
from fa2._torch import set_mods  # noqa: E402
from bwd_det import timed  # noqa: E402  (CUDA-event timings, bench/bwd_det.py)


def alibi_slopes(h):
    # ALiBi's slopes for h heads (h a power of two: 2^(-8 k / h), k = 1..h)
    return torch.tensor([2.0 ** (-8.0 * (k + 1) / h) for k in range(h)], dtype=torch.float32)


VARIANTS = ("plain", "softcap", "alibi", "sinks", "dropout", "all")


def mods_of(name, h, device):
    m = {}
    if name in ("softcap", "all"):
        m["softcap"] = 30.0
    if name in ("alibi", "all"):
        m["alibi_slopes"] = alibi_slopes(h).to(device)
    if name in ("sinks", "all"):
        g = torch.Generator().manual_seed(5)
        m["sinks"] = (torch.rand(h, generator=g) * 4 - 2).to(device)
    if name in ("dropout", "all"):
        m.update(dropout_p=0.1, dropout_seed=1234, dropout_offset=0)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=4096)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--no-causal", action="store_true")
    ap.add_argument("--mma", action="store_true",
                    help="also the modifier variants on the mma.sync kernel")
    args = ap.parse_args()
    b, h, n, d = args.batch, args.heads, args.seqlen, args.head_dim
    causal = not args.no_causal
    dtype = getattr(torch, args.dtype)
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__,
          "libfa2", fa2.version())
    print("backward, %s b=%d h=%d n=%d d=%d%s, medians of %d rounds"
          % (args.dtype, b, h, n, d, " causal" if causal else "", args.rounds))
    torch.manual_seed(3)
    q = torch.randn(b, n, h, d, device="cuda", dtype=dtype)
    k, v, do = torch.randn_like(q), torch.randn_like(q), torch.randn_like(q)
    runs, grads, keep = {}, {}, []
    names = list(VARIANTS)
    if args.mma:
        names += [x + "/mma" for x in VARIANTS]
    for name in names:
        base, mma = name.split("/")[0], name.endswith("/mma")
        m = mods_of(base, h, q.device)
        o = torch.empty_like(q)
        lse = torch.empty(b, h, n, device="cuda", dtype=torch.float32)
        fa = fa2.make_args(q, k, v, o, lse, causal=causal)
        set_mods(fa, q, **m)
        fa2.run(fa)
        g = tuple(torch.empty_like(q) for _ in range(3))
        a = fa2.make_bwd_args(q, k, v, o, lse, do, *g, causal=causal)
        set_mods(a, q, **m)
        if "sinks" in m:
            ds = torch.zeros(h, device="cuda", dtype=torch.float32)
            a.dsinks = ds.data_ptr()
            keep.append(ds)
        keep += [fa, o, lse, a]

        def fn(a=a, mma=mma):
            if mma:
                os.environ["FA2_CUDA_BWD_KERNEL"] = "mma"
            else:
                os.environ.pop("FA2_CUDA_BWD_KERNEL", None)
            fa2.run_bwd(a)
        runs[name], grads[name] = fn, g
    ok = True
    for name, fn in runs.items():
        fn()
    torch.cuda.synchronize()
    for name, g in grads.items():
        finite = all(bool(torch.isfinite(x).all()) for x in g)
        moved = name.split("/")[0] == "plain" or any(
            not torch.equal(x, y) for x, y in zip(g, grads["plain"]))
        if not (finite and moved):
            print("  %s: gradients %s" % (name, "not finite" if not finite
                                         else "equal to plain's (modifier not applied?)"))
            ok = False
    for fn in runs.values():
        timed(fn, 3)  # warm-up
    times = {x: [] for x in runs}
    for _ in range(args.rounds):
        for x, fn in runs.items():
            times[x] += timed(fn)
    os.environ.pop("FA2_CUDA_BWD_KERNEL", None)
    med = {x: statistics.median(t) for x, t in times.items()}
    flops = 2.5 * 4.0 * b * n * n * d * h / (2 if causal else 1)
    budget = {"softcap": 1.10, "alibi": 1.10, "sinks": 1.10, "dropout": 1.25}
    for x, t in med.items():
        base = x.split("/")[0]
        r = t / med["plain"]
        extra = ""
        if base in budget and "/" not in x:
            extra = "  (budget %.2fx: %s)" % (budget[base], "ok" if r <= budget[base] else "over")
        spread = (max(times[x]) - min(times[x])) / t
        print("  %-13s %8.3f ms %7.1f TFLOP/s  %.3fx plain  spread %.0f%%%s"
              % (x, t, flops / t / 1e9, r, 100 * spread, extra))
    print("bwd_mods", "PASS" if ok else "FAIL (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
