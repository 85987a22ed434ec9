#!/usr/bin/env python3
"""The simulator's decode prediction against measured decode times, and the
fixed costs of the device profile measured from kernel durations
(doc/io-complexity.md section 12, "Fixed costs").

Predict: for every row of a bench/decode_compare.py GPU result (JSON; its
fa2_ms per call, split count and copy bandwidth), run `fa2 sim --algo
decode` on the same problem with the run's copy bandwidth as hbm_gbps and
the --device-set values given, and print measured, predicted and their
ratio per row (no GPU needed: re-run it with other values).

    python3 bench/sim_decode_calib.py --json OUT/decode_compare_gpu.json \\
        --fa2 build/tools/fa2 [--device-set launch_us=2.5 ...]

Measure (--kernels CSV, one row per shape: batch, heads_q, heads_kv, nq,
cache, splits, call_us, decode_us, combine_us; the kernels' durations from
nsys or ncu, the call's from decode_compare.py): the procedure of section
12, each value a median over the rows where its term is what the time is
made of:
  launch_us       (call - decode - combine) / launches per call
  l2_latency_ns   combine duration / the combine's L2 round trips (the
                  simulator's count, from its latency at 1 ns a trip)
  dram_latency_ns decode duration / its DRAM round trips, on the rows where
                  the decode kernel took over twice its bytes' time (a
                  long chain of tiles per block: e.g. batch 1, 8k keys,
                  num_splits 1)
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
    rows = [r for r in json.load(open(a.json)) if r.get("fa2_ms") and r.get("splits")]
    print("%5s %3s %5s %7s %6s %10s %10s %8s" % ("Hq/Hkv", "Nq", "batch", "cache",
                                                 "splits", "meas_us", "sim_us",
                                                 "sim/meas"))
    ratios = []
    for r in rows:
        sets = ["hbm_gbps=%.0f" % r["copy_gbps"]] + a.device_set
        p = sim(a.fa2, r, sets)["predicted_time_ms"] * 1e3
        m = r["fa2_ms"] * 1e3
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
    # trip counts: the latency spans at 1 ns a round trip, nothing else
    unit = ["launch_us=0", "block_us=0"]
    launch_us, l2_ns, dram_ns = [], [], []
    for r in rows:
        n = 1 + (r["splits"] > 1)
        launch_us.append((r["call_us"] - r["decode_us"] - r.get("combine_us", 0)) / n)
        if r["splits"] > 1:
            c = launch(sim(a.fa2, r, unit + ["dram_latency_ns=0", "l2_latency_ns=1"]),
                       "fa2_decode_combine")
            trips = c["latency_ms"] * 1e6
            if trips > 0:
                l2_ns.append(r["combine_us"] * 1e3 / trips)
        d = launch(sim(a.fa2, r, unit + ["dram_latency_ns=1", "l2_latency_ns=0"]),
                   "fa2_decode")
        trips = d["latency_ms"] * 1e6
        dram = launch(sim(a.fa2, r, unit), "fa2_decode")
        # latency bound: the measured time well above the bytes' time
        if trips > 0 and r["decode_us"] > 2 * dram["memory_ms"] * 1e3:
            dram_ns.append(r["decode_us"] * 1e3 / trips)
    out = []
    for key, xs in (("launch_us", launch_us), ("l2_latency_ns", l2_ns),
                    ("dram_latency_ns", dram_ns)):
        if xs:
            print("%-16s median %.3g over %d rows (%.3g .. %.3g)" % (
                key, statistics.median(xs), len(xs), min(xs), max(xs)))
            out.append("--device-set %s=%.3g" % (key, statistics.median(xs)))
        else:
            print("%-16s no row measures it" % key)
    print(" ".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fa2", default="build/tools/fa2", help="the fa2 program")
    ap.add_argument("--json", help="a decode_compare_gpu.json: predict its rows")
    ap.add_argument("--kernels", help="a CSV of kernel durations: measure the costs")
    ap.add_argument("--device-set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    if not a.json and not a.kernels:
        ap.error("give --json, --kernels or both")
    if a.kernels:
        measure(a)
    if a.json:
        predict(a)


if __name__ == "__main__":
    main()
