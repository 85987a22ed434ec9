#!/usr/bin/env python3
"""The simulator's predicted forward time against measured times.

For every row of a bench/sdpa_compare.py CSV (pass fwd), run
`fa2 sim --algo fa2 --pass fwd --json` on the same problem and device
profile and print the measured time (from fa2's TFLOP/s and the paper's
FLOP count), the predicted time and their ratio:

    python3 bench/sim_vs_measured.py --csv bench/results/h200-2026-12-01-fwd90/sdpa_compare.csv \\
        --fa2 build/tools/fa2 --device h200 [--no-l2]
"""
import argparse
import csv
import json
import subprocess
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--fa2", default="tools/fa2")
    ap.add_argument("--device", default="h200")
    ap.add_argument("--device-set", action="append", default=[])
    ap.add_argument("--no-l2", action="store_true")
    a = ap.parse_args()
    ratios = {}
    print("%4s %6s %6s %5s %-5s %10s %10s %7s" % ("d", "N", "causal", "B", "dtype",
                                                  "meas_ms", "sim_ms", "sim/meas"))
    for r in csv.DictReader(open(a.csv)):
        if r.get("pass", "fwd") != "fwd":
            continue
        d, n, b, h = int(r["head_dim"]), int(r["seqlen"]), int(r["batch"]), int(r["heads"])
        causal = r["causal"] == "True"
        flops = 4.0 * n * n * d * h * b / (2 if causal else 1)
        meas_ms = flops / (float(r["tflops_fa2"]) * 1e12) * 1e3
        cmd = [a.fa2, "sim", "--algo", "fa2", "--pass", "fwd", "--json",
               "--device", a.device, "--batch", str(b), "--heads", str(h),
               "--seqlen", str(n), "--head-dim", str(d), "--dtype", r["dtype"]]
        for kv in a.device_set:
            cmd += ["--device-set", kv]
        if causal:
            cmd.append("--causal")
        if a.no_l2:
            cmd.append("--no-l2")
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                        text=True).stdout)
        sim_ms = out["predicted_time_ms"]
        ratio = sim_ms / meas_ms
        ratios.setdefault((d, causal), []).append(ratio)
        print("%4d %6d %6s %5d %-5s %10.3f %10.3f %7.2f" % (d, n, causal, b, r["dtype"],
                                                           meas_ms, sim_ms, ratio))
    print()
    for (d, causal), v in sorted(ratios.items()):
        print("d %3d %-6s sim/measured: median %.2f, %.2f .. %.2f" % (
            d, "causal" if causal else "full", statistics.median(v), min(v), max(v)))


if __name__ == "__main__":
    main()
