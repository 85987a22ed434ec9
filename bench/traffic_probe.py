#!/usr/bin/env python3
"""traffic_probe.py — one launch of libfa2's forward kernel per shape of the
FlashAttention-2 paper's grid (bf16; head dim 64/128/256, seqlen 512..16k,
causal and not), for ncu to measure DRAM bytes, with the kernel's own
traffic counters (a --enable-traffic-counters build) read after each launch.

    ncu --clock-control none --metrics dram__bytes_read.sum,dram__bytes_write.sum \
        -k regex:fwd_kernel --csv python3 bench/traffic_probe.py --lib L --json T.json > ncu.csv
    python3 bench/traffic_probe.py --merge ncu.csv --json T.json

The merge prints, per shape: the bytes the kernel's blocks requested (the
counters; what `fa2 sim --no-l2` must equal), the compulsory bytes (Q, K, V
read once, O and LSE written once) and the DRAM bytes ncu measured.
"""
import argparse
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

UNITS = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3,
         "MB": 1e6, "GB": 1e9, "B": 1}


def grid(args):
    for d in [int(x) for x in args.head_dims.split(",")]:
        for n in [int(x) for x in args.seqlens.split(",")]:
            for causal in (False, True):
                yield {"head_dim": d, "seqlen": n, "batch": max(1, 16384 // n),
                       "heads": 2048 // d, "causal": causal}


def run(args):
    if args.lib:
        os.environ["FA2_LIB"] = args.lib
    import torch
    import fa2
    counters = True
    try:
        fa2.traffic_reset()
    except fa2.Fa2Error as e:
        print("no traffic counters in this build:", e, file=sys.stderr)
        counters = False
    recs = []
    for c in grid(args):
        B, N, H, d = c["batch"], c["seqlen"], c["heads"], c["head_dim"]
        q, k, v = (torch.randn(B, N, H, d, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        o = torch.empty_like(q)
        lse = torch.empty(B, H, N, device="cuda", dtype=torch.float32)
        a = fa2.make_args(q, k, v, o, lse, causal=c["causal"])
        torch.cuda.synchronize()
        if counters:
            fa2.traffic_reset()
        fa2.run(a)
        torch.cuda.synchronize()
        rec = dict(c)
        elt = B * N * H * d * 2
        rec["compulsory_read"] = 3 * elt
        rec["compulsory_written"] = elt + B * H * N * 4
        if counters:
            rec.update(fa2.traffic_read())
        recs.append(rec)
        del q, k, v, o, lse
        torch.cuda.empty_cache()
    with open(args.json, "w") as f:
        json.dump(recs, f, indent=1)


def merge(args):
    recs = json.load(open(args.json))
    rows = [r for r in csv.reader(open(args.merge)) if len(r) > 10]
    head = rows[0]
    col = {n: i for i, n in enumerate(head)}
    per = {}
    for r in rows[1:]:
        if r[col["Metric Name"]] not in ("dram__bytes_read.sum", "dram__bytes_write.sum"):
            continue
        v = float(r[col["Metric Value"]].replace(",", "")) * \
            UNITS.get(r[col["Metric Unit"]], 1)
        per.setdefault(int(r[col["ID"]]), {})[r[col["Metric Name"]]] = v
    ids = sorted(per)
    if len(ids) != len(recs):
        print("warning: %d profiled launches for %d shapes" % (len(ids), len(recs)))
    print("%4s %6s %2s %3s %-6s %12s %12s %12s %12s %12s %7s" % (
        "d", "N", "B", "H", "mask", "counted_rd", "compuls_rd", "dram_rd",
        "counted_wr", "dram_wr", "dram/ct"))
    for rec, i in zip(recs, ids):
        rec["dram_read"] = per[i].get("dram__bytes_read.sum")
        rec["dram_written"] = per[i].get("dram__bytes_write.sum")
        crd = rec.get("read_bytes", float("nan"))
        print("%4d %6d %2d %3d %-6s %12.4g %12.4g %12.4g %12.4g %12.4g %7.3f" % (
            rec["head_dim"], rec["seqlen"], rec["batch"], rec["heads"],
            "causal" if rec["causal"] else "full", crd, rec["compulsory_read"],
            rec["dram_read"] or 0, rec.get("written_bytes", float("nan")),
            rec["dram_written"] or 0, (rec["dram_read"] or 0) / crd if crd else 0))
    with open(args.json, "w") as f:
        json.dump(recs, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--json", default="traffic_probe.json")
    ap.add_argument("--merge", help="ncu --csv output to merge into --json")
    ap.add_argument("--head-dims", default="64,128,256")
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    args = ap.parse_args()
    if args.merge:
        merge(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
