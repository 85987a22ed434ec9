#!/usr/bin/env python3
"""bwd_compare.py — the CUDA backward (and forward+backward) of libfa2 against
PyTorch SDPA's flash backend, on the FA2 paper's grid (batch * seqlen = 16k,
hidden 2048: head dim 64 -> 32 heads, 128 -> 16 heads), causal and not, fp16
and bf16; medians of CUDA-event timings after warm-up, alternating the two
implementations; TFLOP/s by the paper's count (backward = 2.5 x forward).

Before timing, a gradient check: fa2.attention's gradients against SDPA's
math backend in float64 (the reference), next to SDPA flash's gradients in
the same dtype (the yardstick): ours must be within 2x flash's error + a
floor of one unit roundoff of the gradient's magnitude.

    FA2_LIB=.../libfa2.so.0 python3 bench/bwd_compare.py [--quick] [--csv F]
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


def sdpa(q, k, v, causal, backend):
    # SDPA takes [B, H, N, d]; causal there is top-left, equal for Nq == Nk
    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
            is_causal=causal, enable_gqa=q.shape[2] != k.shape[2]).transpose(1, 2)


def grad_check(dtype, d, causal, n=777, h=4, hkv=2):
    torch.manual_seed(0)
    q = torch.randn(2, n, h, d, device="cuda", dtype=dtype, requires_grad=True)
    k = torch.randn(2, n, hkv, d, device="cuda", dtype=dtype, requires_grad=True)
    v = torch.randn(2, n, hkv, d, device="cuda", dtype=dtype, requires_grad=True)
    do = torch.randn(2, n, h, d, device="cuda", dtype=dtype)
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    o64 = sdpa(q64, k64, v64, causal, SDPBackend.MATH)
    ref = torch.autograd.grad(o64, (q64, k64, v64), do.double())
    o = fa2.attention(q, k, v, causal=causal)
    ours = torch.autograd.grad(o, (q, k, v), do)
    od = fa2.attention(q, k, v, causal=causal, deterministic=True)
    ours_det = torch.autograd.grad(od, (q, k, v), do)
    od2 = fa2.attention(q, k, v, causal=causal, deterministic=True)
    ours_det2 = torch.autograd.grad(od2, (q, k, v), do)
    try:
        # flash has no GQA backward in every version: repeat k/v for the yardstick
        rep = h // hkv
        qf, kf, vf = (x.detach().requires_grad_() for x in (q, k, v))
        of = sdpa(qf, kf.repeat_interleave(rep, 2), vf.repeat_interleave(rep, 2),
                  causal, SDPBackend.FLASH_ATTENTION)
        flash = torch.autograd.grad(of, (qf, kf, vf), do)
    except RuntimeError as e:
        print("flash yardstick unavailable:", e)
        flash = None
    u = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}[dtype]
    ok = True
    for name, a, b, r, x in zip(("dq", "dk", "dv"), ours, flash or ours, ref, ours_det):
        e = (a.double() - r).abs().max().item()
        ef = (b.double() - r).abs().max().item()
        mag = r.abs().max().item()
        bound = 2 * ef + u * mag + {torch.float16: 2 ** -14, torch.bfloat16: 2 ** -11}[dtype]
        ed = (x.double() - r).abs().max().item()
        good = e <= bound and ed <= bound
        ok &= good
        print("gradcheck %s d=%d causal=%d %s: fa2 %.3e (det %.3e) flash %.3e bound %.3e %s"
              % (str(dtype)[6:], d, causal, name, e, ed, ef, bound, "ok" if good else "FAIL"))
    same = all(torch.equal(a, b) for a, b in zip(ours_det, ours_det2))
    print("gradcheck deterministic bit-identical:", same)
    return ok and same


def timed(fn, reps):
    start = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    end = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        start[i].record()
        fn()
        end[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(start, end)]


def bench_one(dtype, d, n, causal, reps, csv, label=""):
    h = 2048 // d
    b = 16384 // n
    torch.manual_seed(1)
    q = torch.randn(b, n, h, d, device="cuda", dtype=dtype)
    k, v, do = torch.randn_like(q), torch.randn_like(q), torch.randn_like(q)
    o = torch.empty_like(q)
    lse = torch.empty(b, h, n, device="cuda", dtype=torch.float32)
    fargs = fa2.make_args(q, k, v, o, lse, causal=causal)
    fa2.run(fargs)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    bargs = fa2.make_bwd_args(q, k, v, o, lse, do, dq, dk, dv, causal=causal)
    qs, ks, vs = (x.detach().requires_grad_() for x in (q, k, v))
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        os_ = F.scaled_dot_product_attention(qs.transpose(1, 2), ks.transpose(1, 2),
                                             vs.transpose(1, 2), is_causal=causal)
    dos = do.transpose(1, 2)

    def ours_bwd():
        fa2.run_bwd(bargs)

    def ours_fb():
        fa2.run(fargs)
        fa2.run_bwd(bargs)

    def flash_bwd():
        torch.autograd.grad(os_, (qs, ks, vs), dos, retain_graph=True)

    def flash_fb():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(qs.transpose(1, 2), ks.transpose(1, 2),
                                                 vs.transpose(1, 2), is_causal=causal)
        torch.autograd.grad(out, (qs, ks, vs), dos)

    fwd_flops = 4.0 * b * n * n * d * h / (2 if causal else 1)
    res = {}
    for name, fn, fl in (("bwd", (ours_bwd, flash_bwd), 2.5 * fwd_flops),
                         ("fwd+bwd", (ours_fb, flash_fb), 3.5 * fwd_flops)):
        for f in fn:
            timed(f, 3)
        t_ours, t_flash = [], []
        for _ in range(reps):  # alternate
            t_ours += timed(fn[0], 1)
            t_flash += timed(fn[1], 1)
        mo, mf = statistics.median(t_ours), statistics.median(t_flash)
        res[name] = (fl / mo / 1e9, fl / mf / 1e9)
    line = label + "%s d=%3d N=%5d %-6s bwd: fa2 %6.1f flash %6.1f TFLOP/s (%.2fx)  fwd+bwd: fa2 %6.1f flash %6.1f (%.2fx)" % (
        str(dtype)[6:], d, n, "causal" if causal else "", res["bwd"][0], res["bwd"][1],
        res["bwd"][0] / res["bwd"][1], res["fwd+bwd"][0], res["fwd+bwd"][1],
        res["fwd+bwd"][0] / res["fwd+bwd"][1])
    print(line, flush=True)
    if csv:
        csv.write("%s,%d,%d,%d,%.2f,%.2f,%.2f,%.2f\n" % (
            str(dtype)[6:], d, n, int(causal), res["bwd"][0], res["bwd"][1],
            res["fwd+bwd"][0], res["fwd+bwd"][1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--csv")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--seqlens", help="comma-separated (default: the paper's 512..16k)")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--dtypes", default="float16,bfloat16")
    ap.add_argument("--no-gradcheck", action="store_true")
    ap.add_argument("--label", default="", help="printed on every line (a variant's name)")
    args = ap.parse_args()
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__,
          "libfa2", fa2.version())
    ok = True
    if not args.no_gradcheck:
        for dtype in (torch.float16, torch.bfloat16):
            for d in (64, 128):
                ok &= grad_check(dtype, d, causal=True)
        ok &= grad_check(torch.bfloat16, 96, causal=False)
        print("gradcheck", "PASS" if ok else "FAIL", flush=True)
    csv = open(args.csv, "w") if args.csv else None
    if csv:
        csv.write("dtype,d,n,causal,bwd_fa2,bwd_flash,fb_fa2,fb_flash\n")
    seqlens = (1024, 4096) if args.quick else (512, 1024, 2048, 4096, 8192, 16384)
    if args.seqlens:
        seqlens = tuple(int(x) for x in args.seqlens.split(","))
    dtypes = tuple(getattr(torch, x) for x in args.dtypes.split(","))
    for dtype in dtypes:
        for d in (int(x) for x in args.head_dims.split(",")):
            for causal in (False, True):
                for n in seqlens:
                    bench_one(dtype, d, n, causal, args.reps, csv, args.label)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
