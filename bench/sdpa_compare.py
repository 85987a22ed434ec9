#!/usr/bin/env python3
"""sdpa_compare.py — libfa2's CUDA forward, backward and forward+backward
against PyTorch's scaled_dot_product_attention backends (flash, cuDNN,
efficient, math), in one process, on the same tensors, on the
FlashAttention-2 paper's grid:

    batch * seqlen = 16k, hidden 2048 (head dim 64 -> 32 heads, 128 -> 16,
    256 -> 8), seqlen 512 .. 16k, causal and not, fp16 and bf16.

Timing: CUDA events around `inner` back-to-back calls of one implementation
(the queue stays full, so launch overhead is hidden as in a model), rounds
alternating the implementations, the median over rounds after warm-up.
TFLOP/s counts FLOPs as the paper does (forward 4 N^2 d H B, halved when
causal; backward 2.5x that, forward+backward 3.5x). A backward call is
fa2_bwd on the forward's o and lse (python/fa2.py's prepared args, workspace
included), against torch.autograd.grad through the backend's retained graph;
forward+backward is one of each.

Correctness, on every shape: our output (backward: dq, dk, dv) and SDPA
flash's against SDPA's math backend in float32 (on a few heads, to bound
memory), reported as max absolute errors; ours must be within 2x flash's +
1e-3 (backward: + 1e-3 of the largest reference gradient).

Writes OUT/sdpa_compare.json, .csv and sdpa_compare.png (forward),
sdpa_compare_bwd.png, sdpa_compare_fwdbwd.png (TFLOP/s per seqlen, one bar
per implementation, one panel per head dim x dtype x mask).

    python3 bench/sdpa_compare.py --out /tmp/bench [--quick] [--lib PATH]
        [--passes fwd,bwd,fwd+bwd]
"""
import argparse
import csv
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--lib", help="path of libfa2.so (default: see python/fa2.py)")
    ap.add_argument("--quick", action="store_true", help="seqlen 1k/4k, d 64/128")
    ap.add_argument("--head-dims", default="64,128,256")
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--dtypes", default="fp16,bf16")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--passes", default="fwd,bwd,fwd+bwd")
    ap.add_argument("--impls", default="fa2,flash,cudnn,efficient,math")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--target-ms", type=float, default=4.0,
                    help="GPU time per timed block of back-to-back calls")
    ap.add_argument("--math-max-seqlen", type=int, default=4096)
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--hidden", type=int, default=2048)
    args = ap.parse_args()
    if args.lib:
        os.environ["FA2_LIB"] = args.lib

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import fa2

    if args.quick:
        args.head_dims, args.seqlens = "64,128", "1024,4096"
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    meta = {"device": props.name, "sms": props.multi_processor_count,
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "fa2": fa2.version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "lib": fa2._find_library()}
    print(json.dumps(meta), flush=True)

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    backends = {"flash": SDPBackend.FLASH_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "math": SDPBackend.MATH}
    impls = args.impls.split(",")
    records = []

    def timed(fn, inner):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(inner):
            fn()
        e.record()
        e.synchronize()
        return s.elapsed_time(e) / inner

    def measure(pname, d, N, B, H, dname, causal, q, k, v, o, lse, fargs, qt, kt, vt):
        flops = 4.0 * N * N * d * H * B * (0.5 if causal else 1.0)
        flops *= {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}[pname]
        fns = {}
        if pname != "fwd":
            dout = torch.randn_like(q)
            fa2.run(fargs)
            dq, dk, dv = (torch.empty_like(x) for x in (q, k, v))
            bargs = fa2.make_bwd_args(q, k, v, o, lse, dout, dq, dk, dv,
                                      causal=causal)
            # leaves in fa2's layout [B, N, H, d]; SDPA gets [B, H, N, d] views
            qg, kg, vg = (x.detach().requires_grad_() for x in (q, k, v))
            dot = dout.transpose(1, 2)
        if "fa2" in impls:
            if pname == "fwd":
                fns["fa2"] = (lambda: fa2.run(fargs), None)
            elif pname == "bwd":
                fns["fa2"] = (lambda: fa2.run_bwd(bargs), None)
            else:
                fns["fa2"] = (lambda: (fa2.run(fargs), fa2.run_bwd(bargs)), None)
        for name in ("flash", "cudnn", "efficient", "math"):
            if name not in impls:
                continue
            if name == "math" and N > args.math_max_seqlen:
                continue
            if pname == "fwd":
                def f(qt=qt, kt=kt, vt=vt):
                    return F.scaled_dot_product_attention(qt, kt, vt,
                                                          is_causal=causal)
            elif pname == "bwd":
                try:  # the graph of this backend's forward, kept
                    with sdpa_kernel([backends[name]]):
                        out = F.scaled_dot_product_attention(
                            qg.transpose(1, 2), kg.transpose(1, 2),
                            vg.transpose(1, 2), is_causal=causal)
                except Exception as ex:
                    print("  %s unavailable for d=%d N=%d %s: %s" %
                          (name, d, N, dname, str(ex).split("\n")[0][:120]),
                          flush=True)
                    continue

                def f(out=out):
                    return torch.autograd.grad(out, (qg, kg, vg), dot,
                                               retain_graph=True)
            else:
                def f():
                    out = F.scaled_dot_product_attention(
                        qg.transpose(1, 2), kg.transpose(1, 2), vg.transpose(1, 2),
                        is_causal=causal)
                    return torch.autograd.grad(out, (qg, kg, vg), dot)
            fns[name] = (f, backends[name])
        # warm up; drop what this build/device cannot run
        est = {}
        for name in list(fns):
            fn, be = fns[name]
            try:
                if be is None:
                    fn()
                    torch.cuda.synchronize()
                    est[name] = timed(fn, 2)
                else:
                    with sdpa_kernel([be]):
                        fn()
                        torch.cuda.synchronize()
                        est[name] = timed(fn, 2)
            except Exception as ex:  # backend unsupported here
                print("  %s unavailable for d=%d N=%d %s: %s" %
                      (name, d, N, dname, str(ex).split("\n")[0][:120]),
                      flush=True)
                del fns[name]
        inner = {n: max(1, int(args.target_ms / max(est[n], 1e-3)))
                 for n in fns}
        times = {n: [] for n in fns}
        for r in range(args.rounds):
            order = list(fns) if r % 2 == 0 else list(reversed(list(fns)))
            for name in order:
                fn, be = fns[name]
                if be is None:
                    times[name].append(timed(fn, inner[name]))
                else:
                    with sdpa_kernel([be]):
                        times[name].append(timed(fn, inner[name]))
        # correctness against the float32 math backend, few heads
        heads = sorted({0, H // 2, H - 1})
        bsel = slice(0, 1)
        if pname == "fwd":
            err_fa2, err_flash, mag = check_fwd(causal, heads, bsel, o,
                                                fargs, qt, kt, vt)
        else:
            err_fa2, err_flash, mag = check_bwd(causal, heads, bsel, bargs,
                                                dq, dk, dv, qg, kg, vg, dot)
        floor = 1e-3 * (1.0 if pname == "fwd" else max(1.0, mag))
        ok = math.isfinite(err_fa2) and err_fa2 <= 2 * err_flash + floor
        rec = {"pass": pname, "head_dim": d, "seqlen": N, "batch": B,
               "heads": H, "dtype": dname, "causal": causal,
               "flops": flops, "err_fa2": err_fa2,
               "err_flash": err_flash, "check": ok}
        for name in fns:
            ms = statistics.median(times[name])
            rec["ms_" + name] = ms
            rec["tflops_" + name] = flops / (ms * 1e-3) / 1e12
        if "fa2" in fns and "flash" in fns:
            rec["ratio_vs_flash"] = rec["tflops_fa2"] / rec["tflops_flash"]
        if "fa2" in fns and "cudnn" in fns:
            rec["ratio_vs_cudnn"] = rec["tflops_fa2"] / rec["tflops_cudnn"]
        print("%-7s d=%3d N=%5d B=%2d %s %-6s " % (pname, d, N, B, dname,
              "causal" if causal else "full") +
              " ".join("%s %6.1f" % (n, rec["tflops_" + n]) for n in fns) +
              "  ratio/flash %.3f  err %.2e (flash %.2e) %s" %
              (rec.get("ratio_vs_flash", float("nan")), err_fa2,
               err_flash, "ok" if ok else "FAIL"), flush=True)
        return rec

    def check_fwd(causal, heads, bsel, o, fargs, qt, kt, vt):
        fa2.run(fargs)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            of = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
        torch.cuda.synchronize()
        err_fa2 = err_flash = mag = 0.0
        for h in heads:
            with sdpa_kernel([SDPBackend.MATH]):
                ref = F.scaled_dot_product_attention(
                    qt[bsel, h:h + 1].float(), kt[bsel, h:h + 1].float(),
                    vt[bsel, h:h + 1].float(), is_causal=causal)
            mine = o[bsel, :, h:h + 1].transpose(1, 2).float()
            err_fa2 = max(err_fa2, (mine - ref).abs().max().item())
            err_flash = max(err_flash, (of[bsel, h:h + 1].float() - ref).abs().max().item())
            mag = max(mag, ref.abs().max().item())
        return err_fa2, err_flash, mag

    def check_bwd(causal, heads, bsel, bargs, dq, dk, dv, qg, kg, vg, dot):
        """max |grad - math fp32 grad| over dq, dk, dv of a few heads"""
        fa2.run_bwd(bargs)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(qg.transpose(1, 2), kg.transpose(1, 2),
                                                 vg.transpose(1, 2), is_causal=causal)
        gflash = torch.autograd.grad(out, (qg, kg, vg), dot)
        torch.cuda.synchronize()
        mine = (dq, dk, dv)  # all [B, N, H, d]
        err_fa2 = err_flash = mag = 0.0
        for h in heads:
            sl = (bsel, slice(None), slice(h, h + 1))
            xs = [x[sl].detach().float().requires_grad_() for x in (qg, kg, vg)]
            with sdpa_kernel([SDPBackend.MATH]):
                ref_out = F.scaled_dot_product_attention(
                    *(x.transpose(1, 2) for x in xs), is_causal=causal)
            refs = torch.autograd.grad(ref_out, xs, dot[bsel, h:h + 1].float())
            for m, gf, r in zip(mine, gflash, refs):
                err_fa2 = max(err_fa2, (m[sl].float() - r).abs().max().item())
                err_flash = max(err_flash, (gf[sl].float() - r).abs().max().item())
                mag = max(mag, r.abs().max().item())
        return err_fa2, err_flash, mag

    for d in [int(x) for x in args.head_dims.split(",")]:
        H = args.hidden // d
        for N in [int(x) for x in args.seqlens.split(",")]:
            B = max(1, args.tokens // N)
            for dname in args.dtypes.split(","):
                dt = dtypes[dname]
                for causal in [bool(int(c)) for c in args.causal.split(",")]:
                    torch.manual_seed(1234 + N + d)
                    q = torch.randn(B, N, H, d, device=dev, dtype=dt)
                    k = torch.randn(B, N, H, d, device=dev, dtype=dt)
                    v = torch.randn(B, N, H, d, device=dev, dtype=dt)
                    o = torch.empty_like(q)
                    lse = torch.empty(B, H, N, device=dev, dtype=torch.float32)
                    fargs = fa2.make_args(q, k, v, o, lse, causal=causal)
                    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
                    for pname in args.passes.split(","):
                        rec = measure(pname, d, N, B, H, dname, causal, q, k, v, o,
                                      lse, fargs, qt, kt, vt)
                        if rec:
                            records.append(rec)
                    del q, k, v, o, lse, qt, kt, vt
                    torch.cuda.empty_cache()

    with open(os.path.join(args.out, "sdpa_compare.json"), "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    cols = ["pass", "head_dim", "seqlen", "batch", "heads", "dtype", "causal"] + \
        ["tflops_" + n for n in impls] + ["ratio_vs_flash", "ratio_vs_cudnn",
                                           "err_fa2", "err_flash", "check"]
    with open(os.path.join(args.out, "sdpa_compare.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow(r)
    for pname in args.passes.split(","):
        name = "sdpa_compare%s.png" % {"fwd": "", "bwd": "_bwd", "fwd+bwd": "_fwdbwd"}[pname]
        plot([r for r in records if r["pass"] == pname], impls, meta,
             os.path.join(args.out, name), pname)
    bad = [r for r in records if not r["check"]]
    print("%d shapes, %d failed the check against math/fp32" % (len(records), len(bad)))
    return 1 if bad else 0


def plot(records, impls, meta, path, pname="fwd"):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart")
        return
    panels = sorted({(r["dtype"], r["causal"], r["head_dim"]) for r in records})
    if not panels:
        return
    ncol = len({p[2] for p in panels})
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.5 * ncol, 3.6 * nrow),
                             squeeze=False)
    names = {"fa2": "fa2 (ours)", "flash": "SDPA flash", "cudnn": "SDPA cuDNN",
             "efficient": "SDPA efficient", "math": "SDPA math"}
    for ax, (dname, causal, d) in zip(axes.flat, panels):
        rs = sorted([r for r in records if (r["dtype"], r["causal"], r["head_dim"]) ==
                     (dname, causal, d)], key=lambda r: r["seqlen"])
        present = [n for n in impls if any("tflops_" + n in r for r in rs)]
        width = 0.8 / max(1, len(present))
        for i, n in enumerate(present):
            xs = [j + i * width for j in range(len(rs))]
            ys = [r.get("tflops_" + n, 0.0) for r in rs]
            bars = ax.bar(xs, ys, width, label=names.get(n, n))
            for b, y in zip(bars, ys):
                if y > 0 and n in ("fa2", "flash"):
                    ax.text(b.get_x() + b.get_width() / 2, y, "%d" % round(y),
                            ha="center", va="bottom", fontsize=6)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rs))])
        ax.set_xticklabels(["%dk" % (r["seqlen"] // 1024) if r["seqlen"] >= 1024
                            else str(r["seqlen"]) for r in rs])
        ax.set_title("%s, head dim %d, %s" % ("causal" if causal else "no mask", d, dname),
                     fontsize=9)
        ax.set_ylabel("TFLOP/s")
        ax.set_xlabel("sequence length")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    title = {"fwd": "forward", "bwd": "backward", "fwd+bwd": "forward + backward"}[pname]
    fig.suptitle("Attention %s, %s, %s" % (title, meta["device"], meta["date"]),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path)


if __name__ == "__main__":
    sys.exit(main())
