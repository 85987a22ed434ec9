#!/usr/bin/env python3
"""decode_compare.py — libfa2's forward over a KV cache (fa2_fwd_kvcache,
decoding: a few new query tokens per sequence against a long cache) against
PyTorch's scaled_dot_product_attention, in one process, on the same data,
timed alternately (fa2, sdpa backends, fa2, ...; the median over rounds).

GPU mode (default when CUDA is there): Hq 32 / Hkv 8 (GQA) and 32 / 32
(MHA), head dim 128, Nq 1 and 4, batch 1 .. 64, cache 1k .. 128k keys, bf16;
fa2's cache contiguous [B, N, Hkv, d] and paged (pages of 16, 64, 256 slots,
a shuffled block table); SDPA's backends (cuDNN, flash, efficient) on a
contiguous [B, H, N, d] cache (GQA: enable_gqa, or K/V expanded to Hq heads
when the backend refuses it, flagged). Reported: time, K/V bytes read per
second against the device-to-device copy bandwidth measured in the same
run, and fa2's time over each SDPA backend's; fa2's error against SDPA's
math backend in float32 on the first sequences; the simulator's predicted
time (fa2 sim --algo decode with the measured copy bandwidth as the HBM
bandwidth and fa2's split count) over the measured one. Points whose caches would
pass --mem-gb are skipped.

CPU mode (--device cpu): the issue's CPU decode shapes (Hq 32 / Hkv 8, d 128,
8192 keys, Nq 1 and 8) on the tiled backend with --threads worker threads,
against torch CPU SDPA with torch.set_num_threads(--threads) (enable_gqa on
[B, H, N, d], and K/V expanded to 32 heads), and a triad (a = b + s c,
float32, 64 MiB arrays, torch on the same threads) measured in the run.

Writes OUT/decode_compare_{gpu,cpu}.json and .csv.

    python3 bench/decode_compare.py --device cpu --out /tmp/dec [--rounds 7]
    python3 bench/decode_compare.py --out /tmp/dec [--quick] [--lib PATH]
"""
import argparse
import csv
import glob
import subprocess
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))


def parse_ints(s):
    return [int(x) for x in s.split(",") if x]


def kv_bytes(batch, seqlen_k, hkv, d, esize):
    """K and V bytes one call must read: every cached key and value once."""
    return 2 * batch * seqlen_k * hkv * d * esize


def paged_cache(torch, k, v, page, gen):
    """The contiguous caches [B, N, H, d] cut into pages of `page` slots,
    scattered over a pool in a random order; returns (k_pages, v_pages,
    block_table int32 [B, N / page])."""
    b, n, h, d = k.shape
    per = n // page
    perm = torch.randperm(b * per, generator=gen).to(k.device)
    kp = torch.empty(b * per, page, h, d, dtype=k.dtype, device=k.device)
    vp = torch.empty_like(kp)
    kp[perm] = k.reshape(b * per, page, h, d)
    vp[perm] = v.reshape(b * per, page, h, d)
    return kp, vp, perm.reshape(b, per).to(torch.int32)


def median_time(fn, rounds_of, sync, inner):
    """Seconds per call of fn: `inner` back-to-back calls per round."""
    ts = []
    for _ in range(rounds_of):
        sync()
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        ts.append((time.perf_counter() - t) / inner)
    return ts


def alternate(impls, rounds, sync, inner, warm=0):
    """Median seconds per call of each impl (dict name -> fn), the rounds
    alternating between them so that all see the same machine state; each
    round first calls the impl `warm` times untimed, so that it is timed in
    its own steady state (on the CPU a call right after SDPA's otherwise
    shares the two cores with torch's OpenMP threads still spinning)."""
    times = {n: [] for n in impls}
    for _ in range(rounds):
        for n, fn in impls.items():
            for _ in range(warm):
                fn()
            times[n] += median_time(fn, 1, sync, inner)
    return {n: statistics.median(t) for n, t in times.items()}


# ---- CPU ---------------------------------------------------------------------

def triad_gbps(torch, threads, rounds):
    n = 16 << 20  # 64 MiB per float32 array
    a, b, c = (torch.rand(n) for _ in range(3))
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        torch.add(b, c, alpha=1.5, out=a)
        el = time.perf_counter() - t
        best = max(best, 3 * 4 * n / el / 1e9)
    return best


def run_cpu(args, torch, F, fa2):
    torch.set_num_threads(args.threads)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    rows = []
    gen = torch.Generator().manual_seed(0)
    tri = triad_gbps(torch, args.threads, 5)
    sys.path.insert(0, HERE)
    from cpu_compare import tile_kernel  # which micro-kernel the library runs
    kernel = tile_kernel()
    print("triad %.1f GB/s (%d threads); fa2 micro-kernel %s; torch %s, CPU capability %s"
          % (tri, args.threads, kernel, torch.__version__,
             torch.backends.cpu.get_cpu_capability()), flush=True)
    for dname in args.dtypes.split(","):
        for nq in parse_ints(args.nq or "1,8"):
            B, hq, hkv, d, n = 1, 32, 8, 128, args.cache
            dtype = dt[dname]
            q = torch.randn(B, nq, hq, d, generator=gen).to(dtype)
            k = torch.randn(B, n, hkv, d, generator=gen).to(dtype)
            v = torch.randn(B, n, hkv, d, generator=gen).to(dtype)
            lens = torch.full((B,), n, dtype=torch.int32)
            out = torch.empty_like(q)
            a_contig = fa2.make_kvcache_args(q, k, v, out, lens, causal=True,
                                             num_threads=args.threads)
            kp, vp, table = paged_cache(torch, k, v, 64, gen)
            out_p = torch.empty_like(q)
            a_paged = fa2.make_kvcache_args(q, kp, vp, out_p, lens, block_table=table,
                                            causal=True, num_threads=args.threads)
            # SDPA's layout [B, H, N, d]; the new tokens are the last nq keys
            qs = q.transpose(1, 2).contiguous()
            ks, vs = k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
            ke = ks.repeat_interleave(hq // hkv, dim=1)
            ve = vs.repeat_interleave(hq // hkv, dim=1)
            mask = None
            if nq > 1:  # bottom-right causal: query i sees keys <= n - nq + i
                i = torch.arange(nq)[:, None]
                j = torch.arange(n)[None, :]
                mask = j <= (n - nq + i)
            impls = {
                "fa2": lambda: fa2.run_kvcache(a_contig, "tiled"),
                "fa2_paged64": lambda: fa2.run_kvcache(a_paged, "tiled"),
                "sdpa_gqa": lambda: F.scaled_dot_product_attention(
                    qs, ks, vs, attn_mask=mask, enable_gqa=True),
                "sdpa_expanded": lambda: F.scaled_dot_product_attention(
                    qs, ke, ve, attn_mask=mask),
            }
            for fn in impls.values():  # warm-up
                fn()
            ref = F.scaled_dot_product_attention(
                qs.float(), ke.float(), ve.float(), attn_mask=mask).transpose(1, 2)
            fa2.run_kvcache(a_contig, "tiled")
            err = (out.float() - ref).abs().max().item()
            t = alternate(impls, args.rounds, lambda: None, 5, warm=3)
            nbytes = kv_bytes(B, n, hkv, d, q.element_size())
            torch_best = min(t["sdpa_gqa"], t["sdpa_expanded"])
            row = {"dtype": dname, "batch": B, "nq": nq, "heads_q": hq,
                   "heads_kv": hkv, "head_dim": d, "cache": n,
                   "threads": args.threads, "triad_gbps": round(tri, 2),
                   "fa2_kernel": kernel,
                   "fa2_err_vs_fp32": err,
                   "splits": fa2.kvcache_num_splits(a_contig, "tiled")}
            for name, s in t.items():
                row[name + "_ms"] = round(s * 1e3, 3)
            row["fa2_gbps"] = round(nbytes / t["fa2"] / 1e9, 2)
            row["fa2_vs_triad"] = round(nbytes / t["fa2"] / 1e9 / tri, 3)
            row["speedup_vs_sdpa_best"] = round(torch_best / t["fa2"], 2)
            row["speedup_paged_vs_sdpa_best"] = round(torch_best / t["fa2_paged64"], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


# ---- GPU ---------------------------------------------------------------------

def copy_gbps(torch):
    n = 1 << 30  # 1 GiB
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    best = 0.0
    for _ in range(10):
        ev[0].record()
        b.copy_(a)
        ev[1].record()
        torch.cuda.synchronize()
        best = max(best, 2 * n / (ev[0].elapsed_time(ev[1]) / 1e3) / 1e9)
    del a, b
    return best


def gpu_time(torch, fn, rounds, target_ms=2.0):
    """Median ms per call: CUDA events around back-to-back calls."""
    fn()
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    ev[0].record()
    fn()
    ev[1].record()
    torch.cuda.synchronize()
    one = max(ev[0].elapsed_time(ev[1]), 1e-3)
    inner = max(1, min(200, int(target_ms / one)))
    ts = []
    for _ in range(rounds):
        ev[0].record()
        for _ in range(inner):
            fn()
        ev[1].record()
        torch.cuda.synchronize()
        ts.append(ev[0].elapsed_time(ev[1]) / inner)
    return statistics.median(ts)


def events_ms(torch, fn, calls):
    """ms per call: CUDA events around `calls` back-to-back calls, once."""
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    ev[0].record()
    for _ in range(calls):
        fn()
    ev[1].record()
    ev[1].synchronize()
    return ev[0].elapsed_time(ev[1]) / calls


def capture_calls(torch, fn, stream, calls=20):
    """A CUDA graph of `calls` back-to-back calls of fn, captured on stream
    (replaying it times the GPU alone, without the host's launches)."""
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=stream):
        for _ in range(calls):
            fn()
    return g


def graph_times(torch, impls, stream, rounds, calls=20):
    """GPU time alone: ms per call of each implementation, from `calls`
    calls captured in a CUDA graph on `stream` and replayed, alternating,
    median of `rounds` (an implementation that cannot be captured is left
    out). No host launch costs: what the simulator predicts."""
    graphs = {}
    for name, fn in impls.items():
        try:
            graphs[name] = capture_calls(torch, fn, stream, calls)
        except Exception:  # noqa: BLE001 (a backend that cannot be captured)
            continue
    torch.cuda.synchronize()
    ts = {}
    for _ in range(rounds):
        for name, g in graphs.items():
            ts.setdefault(name, []).append(events_ms(torch, g.replay, 3) / calls)
    return {name: statistics.median(v) for name, v in ts.items()}


def decode_tensors(torch, B, n, hq, hkv, d, dtype=None):
    """Decode's inputs on the GPU: q [B, 1, hq, d], a full contiguous cache
    k, v [B, n, hkv, d], lengths n, an output like q, and SDPA's per-head
    contiguous copies qs, ks, vs [B, H, N, d]."""
    dtype = dtype or torch.bfloat16
    q = torch.randn(B, 1, hq, d, dtype=dtype, device="cuda")
    k = torch.randn(B, n, hkv, d, dtype=dtype, device="cuda")
    v = torch.randn(B, n, hkv, d, dtype=dtype, device="cuda")
    lens = torch.full((B,), n, dtype=torch.int32, device="cuda")
    qs = q.transpose(1, 2).contiguous()
    ks, vs = k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
    return q, k, v, lens, torch.empty_like(q), qs, ks, vs


def find_fa2_prog(args):
    if args.fa2_prog:
        return args.fa2_prog
    root = os.path.dirname(HERE)
    for pat in ("build-cuda*/tools/fa2", "build*/tools/fa2", "tools/fa2"):
        hits = sorted(glob.glob(os.path.join(root, pat)))
        if hits:
            return hits[0]
    return None


def sim_ms(prog, copy_gbps, B, hq, hkv, nq, n, d, page, splits, sets=()):
    """The simulator's predicted time of the decode (fa2 sim --algo decode)
    with the measured copy bandwidth as the HBM bandwidth and `sets`
    (KEY=VALUE: the profile's fixed costs, launch_us, dram_latency_ns ...)
    applied: {"sim_ms": total, "sim_<launch>_ms": each launch's}; {}
    without the program."""
    if not prog:
        return {}
    cmd = [prog, "sim", "--algo", "decode", "--batch", str(B), "--heads", str(hq),
           "--heads-kv", str(hkv), "--seqlen", str(nq), "--seqlen-k", str(n),
           "--head-dim", str(d), "--dtype", "bf16", "--device", "h200",
           "--device-set", "hbm_gbps=%.0f" % copy_gbps, "--causal", "--json",
           "--page-size", str(page), "--num-splits", str(splits)]
    for kv in sets:
        cmd += ["--device-set", kv]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        j = json.loads(out.stdout)
        res = {"sim_ms": j["predicted_time_ms"]}
        for L in j["launches"]:
            res["sim_%s_ms" % L["name"]] = L["predicted_time_ms"]
        return res
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return {}


def run_gpu(args, torch, F, fa2):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    sdpa_backends = {"cudnn": SDPBackend.CUDNN_ATTENTION,
                     "flash": SDPBackend.FLASH_ATTENTION,
                     "efficient": SDPBackend.EFFICIENT_ATTENTION}
    bw = copy_gbps(torch)
    props = torch.cuda.get_device_properties(0)
    print(json.dumps({"device": props.name, "copy_gbps": round(bw, 1),
                      "torch": torch.__version__, "fa2": fa2.version()}), flush=True)
    gen = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16
    rows = []
    if args.graph:  # everything on one side stream, which graphs capture
        stream = torch.cuda.Stream()
        torch.cuda.set_stream(stream)
    for hq, hkv in ((32, 8), (32, 32)):
        for nq in parse_ints(args.nq or "1,4"):
            for B in parse_ints(args.batches):
                for n in parse_ints(args.caches):
                    d = 128
                    cache_gb = kv_bytes(B, n, hkv, d, 2) / 1e9
                    if cache_gb * (2 + hq / hkv) > args.mem_gb:
                        continue  # fa2's, paged copy, SDPA's (expanded) caches
                    q = torch.randn(B, nq, hq, d, dtype=dtype, device="cuda")
                    k = torch.randn(B, n, hkv, d, dtype=dtype, device="cuda")
                    v = torch.randn(B, n, hkv, d, dtype=dtype, device="cuda")
                    lens = torch.full((B,), n, dtype=torch.int32, device="cuda")
                    out = torch.empty_like(q)
                    base = {"heads_q": hq, "heads_kv": hkv, "nq": nq, "batch": B,
                            "cache": n, "head_dim": d, "dtype": "bf16",
                            "copy_gbps": round(bw, 1)}
                    nbytes = kv_bytes(B, n, hkv, d, 2)
                    impls = {}
                    paged_outs = {}
                    a = fa2.make_kvcache_args(q, k, v, out, lens, causal=True)
                    try:
                        fa2.run_kvcache(a, "cuda")
                        impls["fa2"] = lambda a=a: fa2.run_kvcache(a, "cuda")
                        base["splits"] = fa2.kvcache_num_splits(a, "cuda")
                    except fa2.Fa2Error as e:
                        base["fa2_error"] = str(e)
                    for page in parse_ints(args.pages):
                        if n % page or "fa2" not in impls:
                            continue
                        kp, vp, table = paged_cache(torch, k, v, page, gen)
                        outp = torch.empty_like(q)
                        ap = fa2.make_kvcache_args(q, kp, vp, outp, lens,
                                                   block_table=table.cuda(), causal=True)
                        impls["fa2_page%d" % page] = lambda ap=ap: fa2.run_kvcache(ap, "cuda")
                        paged_outs[page] = outp
                    qs = q.transpose(1, 2).contiguous()
                    ks, vs = k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()
                    mask = None
                    if nq > 1:
                        i = torch.arange(nq, device="cuda")[:, None]
                        j = torch.arange(n, device="cuda")[None, :]
                        mask = j <= (n - nq + i)
                    for name, be in sdpa_backends.items():
                        for gqa in (True, False):
                            kk, vv = (ks, vs) if gqa or hq == hkv else (
                                ks.repeat_interleave(hq // hkv, 1),
                                vs.repeat_interleave(hq // hkv, 1))

                            def call(be=be, kk=kk, vv=vv, gqa=gqa):
                                with sdpa_kernel(be):
                                    return F.scaled_dot_product_attention(
                                        qs, kk, vv, attn_mask=mask,
                                        enable_gqa=gqa and hq != hkv)
                            try:
                                call()
                                impls["sdpa_" + name] = call
                                if not gqa and hq != hkv:
                                    base["sdpa_%s_expanded" % name] = True
                                break
                            except RuntimeError:
                                continue
                    if "fa2" in impls:  # correctness against the math backend
                        with sdpa_kernel(SDPBackend.MATH):
                            ref = F.scaled_dot_product_attention(
                                qs[:2].float(), ks[:2].float(), vs[:2].float(),
                                attn_mask=mask, enable_gqa=hq != hkv).transpose(1, 2)
                        base["fa2_err"] = (out[:2].float() - ref).abs().max().item()
                        # a paged call reads the same keys: the same bytes out
                        for page, outp in paged_outs.items():
                            impls["fa2_page%d" % page]()
                            base["page%d_max_diff" % page] = (
                                outp.float() - out.float()).abs().max().item()
                    times = {}
                    for _ in range(args.rounds):  # alternate the implementations
                        for name, fn in impls.items():
                            times.setdefault(name, []).append(
                                gpu_time(torch, fn, 1))
                    if args.graph:
                        for name, ms in graph_times(torch, impls, stream,
                                                    args.rounds).items():
                            times[name + "_graph"] = [ms]
                    row = dict(base)
                    prog = find_fa2_prog(args)
                    if "splits" in base:
                        row.update(sim_ms(prog, bw, B, hq, hkv, nq, n, d, 0,
                                          base["splits"], args.sim_set))
                    for name, ts in times.items():
                        ms = statistics.median(ts)
                        row[name + "_ms"] = round(ms, 4)
                        gbps = nbytes / (ms / 1e3) / 1e9
                        row[name + "_gbps"] = round(gbps, 1)
                        row[name + "_of_copy"] = round(gbps / bw, 3)
                    if "fa2_ms" in row:
                        for name in sdpa_backends:
                            if "sdpa_%s_ms" % name in row:
                                row["fa2_vs_" + name] = round(
                                    row["sdpa_%s_ms" % name] / row["fa2_ms"], 3)
                        if row.get("sim_ms"):
                            row["sim_over_measured"] = round(row["sim_ms"] / row["fa2_ms"], 3)
                        if row.get("sim_ms") and row.get("fa2_graph_ms"):
                            row["sim_over_gpu"] = round(row["sim_ms"] / row["fa2_graph_ms"], 3)
                        for name in sdpa_backends:
                            if "sdpa_%s_graph_ms" % name in row and "fa2_graph_ms" in row:
                                row["fa2_vs_%s_graph" % name] = round(
                                    row["sdpa_%s_graph_ms" % name] / row["fa2_graph_ms"], 3)
                        for page in parse_ints(args.pages):
                            if "fa2_page%d_ms" % page in row:
                                row["page%d_over_contig" % page] = round(
                                    row["fa2_page%d_ms" % page] / row["fa2_ms"], 3)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    del q, k, v, ks, vs, impls
                    torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--lib", help="path of libfa2.so (default: see python/fa2)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--nq", default="", help="new tokens per sequence (1,4 GPU; 1,8 CPU)")
    ap.add_argument("--batches", default="1,2,4,8,16,32,64")
    ap.add_argument("--caches", default="1024,4096,8192,16384,32768,65536,131072")
    ap.add_argument("--pages", default="16,64,256")
    ap.add_argument("--mem-gb", type=float, default=100.0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads, both sides")
    ap.add_argument("--cache", type=int, default=8192, help="CPU mode: keys")
    ap.add_argument("--dtypes", default="fp32,bf16", help="CPU mode")
    ap.add_argument("--sim-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a simulator device key for the prediction (repeatable), "
                    "e.g. launch_us=2.5 or dram_latency_ns=700: the fixed costs "
                    "of doc/io-complexity.md section 12")
    ap.add_argument("--graph", action="store_true",
                    help="GPU mode: also time every implementation as calls "
                    "replayed from a CUDA graph (GPU time alone: NAME_graph_ms, "
                    "fa2_vs_NAME_graph, sim_over_gpu)")
    ap.add_argument("--fa2-prog", help="the fa2 program, for the simulator's "
                    "prediction (default: build*/tools/fa2)")
    args = ap.parse_args()
    if args.lib:
        os.environ["FA2_LIB"] = args.lib
    import torch
    import torch.nn.functional as F
    import fa2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.quick:
        args.batches, args.caches, args.rounds = "1,8,64", "4096,32768", 5
    os.makedirs(args.out, exist_ok=True)
    rows = (run_gpu if device == "cuda" else run_cpu)(args, torch, F, fa2)
    base = os.path.join(args.out, "decode_compare_%s" % ("gpu" if device == "cuda"
                                                         else "cpu"))
    with open(base + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    keys = sorted({k for r in rows for k in r})
    with open(base + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print("wrote %s.json and .csv" % base)
    if device == "cpu":
        worst = min((r["speedup_vs_sdpa_best"] for r in rows), default=math.nan)
        print("fa2 over torch's best SDPA, worst shape: %.2fx" % worst)


if __name__ == "__main__":
    main()
