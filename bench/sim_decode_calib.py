#!/usr/bin/env python3
"""The simulator's decode prediction against measured decode times, and the
fixed costs of the device profile measured from kernel durations
(doc/io-complexity.md section 12, "Fixed costs").

Predict: for every row of a bench/decode_compare.py GPU result (JSON; its
fa2_ms per call, or with --gpu-time its fa2_graph_ms (decode_compare.py
--graph: GPU time alone, no host launch costs), split count and copy
bandwidth), run `fa2 sim --algo
decode` on the same problem with the run's copy bandwidth as hbm_gbps and
the --device-set values given, and print measured, predicted and their
ratio per row (no GPU needed: re-run it with other values).

    python3 bench/sim_decode_calib.py --json OUT/decode_compare_gpu.json \\
        --fa2 build/tools/fa2 [--device-set launch_us=2.5 ...]

Measure (--kernels CSV, one row per shape: batch, heads_q, heads_kv, nq,
cache, splits, call_us, decode_us, combine_us; the kernels' durations from
torch.profiler, nsys or ncu, the call's from decode_compare.py): the
procedure of section 12, with the trip and step counts from the simulator:
  tile_step_ns, block_us  slope and intercept (less one DRAM round trip) of
                  the decode kernel's duration against its tile steps a
                  block, over the rows where that chain, not the bytes,
                  is the time (batch 1: one wave of blocks)
  smem_latency_ns (combine duration - block_us - 2 L2 round trips) / its
                  shared-memory steps
  launch_us       (call - decode - combine) / launches per call (only
                  where the host is not the bound: a call from Python
                  costs 16-23 us of host time)
and the --device-set flags that set them. (Checked on synthetic durations
made by the simulator with known values: it returns them.)
"""
import argparse
import csv
import json
import statistics
import subprocess


def sim(prog, r, sets):
    """fa2 sim --algo decode --json on row r: the parsed JSON."""
    cmd = [prog, "sim", "--algo", "decode", "--json", "--device", "h200",
           "--batch", str(r["batch"]), "--heads", str(r["heads_q"]),
           "--heads-kv", str(r["heads_kv"]), "--seqlen", str(r["nq"]),
           "--seqlen-k", str(r["cache"]), "--head-dim", str(r.get("head_dim", 128)),
           "--dtype", "bf16", "--causal", "--num-splits", str(r["splits"])]
    for kv in sets:
        cmd += ["--device-set", kv]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def launch(j, name):
    return next((L for L in j["launches"] if L["name"] == name), None)


def predict(a):
    key = "fa2_graph_ms" if a.gpu_time else "fa2_ms"
    rows = [r for r in json.load(open(a.json)) if r.get(key) and r.get("splits")]
    print("%5s %3s %5s %7s %6s %10s %10s %8s" % ("Hq/Hkv", "Nq", "batch", "cache",
                                                 "splits", "meas_us", "sim_us",
                                                 "sim/meas"))
    ratios = []
    for r in rows:
        sets = ["hbm_gbps=%.0f" % r["copy_gbps"]] + a.device_set
        p = sim(a.fa2, r, sets)["predicted_time_ms"] * 1e3
        m = r[key] * 1e3
        ratios.append(p / m)
        print("%2d/%-3d %3d %5d %7d %6d %10.1f %10.1f %8.2f" % (
            r["heads_q"], r["heads_kv"], r["nq"], r["batch"], r["cache"], r["splits"],
            m, p, p / m))
    if ratios:
        print("sim/meas: %.2f .. %.2f; within 15%%: %d of %d" % (
            min(ratios), max(ratios), sum(abs(x - 1) <= 0.15 for x in ratios), len(ratios)))


def measure(a):
    rows = [{k: (float(v) if "us" in k else int(v)) for k, v in r.items()}
            for r in csv.DictReader(open(a.kernels))]
    only = ["launch_us=0", "block_us=0", "dram_latency_ns=0", "l2_latency_ns=0",
            "smem_latency_ns=0", "tile_step_ns=0"]

    def count(r, key, name):
        """the launch's latency with only `key` at 1 ns: its count"""
        L = launch(sim(a.fa2, r, only + [key + "=1"]), name)
        return L["latency_ms"] * 1e6 if L else 0.0

    pts = []
    for r in rows:
        d = launch(sim(a.fa2, r, a.device_set), "fa2_decode")
        one_wave = d["grid"] <= d["blocks_per_sm"] * a.sms
        if one_wave and r["decode_us"] > 1.05 * d["memory_ms"] * 1e3:  # the chain
            pts.append((count(r, "tile_step_ns", "fa2_decode"), r["decode_us"]))
    res = {}
    if len(pts) >= 2:
        n = len(pts)
        mx = sum(x for x, _ in pts) / n
        my = sum(y for _, y in pts) / n
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        if sxx > 0:
            slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
            res["tile_step_ns"] = slope * 1e3
            res["block_us"] = my - slope * mx - a.dram_ns * 1e-3
    block_us = res.get("block_us", 0.0)
    smem = []
    for r in rows:
        if r["splits"] > 1 and r.get("combine_us", 0) > 0:
            steps = count(r, "smem_latency_ns", "fa2_decode_combine")
            l2 = count(r, "l2_latency_ns", "fa2_decode_combine")
            if steps > 0:
                smem.append((r["combine_us"] * 1e3 - block_us * 1e3 - l2 * a.l2_ns) / steps)
    if smem:
        res["smem_latency_ns"] = statistics.median(smem)
    gaps = [(r["call_us"] - r["decode_us"] - r.get("combine_us", 0)) /
            (1 + (r["splits"] > 1)) for r in rows]
    res["launch_us"] = statistics.median(gaps)
    for k, v in res.items():
        print("%-16s %.4g" % (k, v))
    print("points (tile steps, decode us): " +
          ", ".join("(%g, %g)" % p for p in pts))
    print(" ".join("--device-set %s=%.4g" % kv for kv in res.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fa2", default="build/tools/fa2", help="the fa2 program")
    ap.add_argument("--json", help="a decode_compare_gpu.json: predict its rows")
    ap.add_argument("--kernels", help="a CSV of kernel durations: measure the costs")
    ap.add_argument("--gpu-time", action="store_true",
                    help="predict: compare with fa2_graph_ms (decode_compare.py "
                    "--graph: GPU time alone) instead of the direct calls' fa2_ms")
    ap.add_argument("--device-set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--sms", type=int, default=132, help="measure: the GPU's SMs")
    ap.add_argument("--dram-ns", type=float, default=600.0,
                    help="measure: the DRAM round trip the intercept includes")
    ap.add_argument("--l2-ns", type=float, default=225.0,
                    help="measure: the L2 round trip of the combine's two")
    a = ap.parse_args()
    if not a.json and not a.kernels:
        ap.error("give --json, --kernels or both")
    if a.kernels:
        measure(a)
    if a.json:
        predict(a)


if __name__ == "__main__":
    main()
