#!/usr/bin/env python3
"""The simulator's L2 model against the DRAM bytes Nsight Compute counts,
forward and backward, on a grid of problems (doc/io-complexity.md,
"Calibration"; issue 13's L2 point).

On the GPU host (libfa2 with CUDA at $FA2_LIB), every kernel of every
problem under ncu, L2 flushed before each kernel as the model starts cold:

    ncu --csv --clock-control none --kernel-name regex:"fwd_kernel|bwd_" \\
        --metrics dram__bytes_read.sum,dram__bytes_write.sum \\
        python3 bench/l2_check.py run > ncu.csv

then anywhere (no GPU; the fa2 program of a build):

    python3 bench/l2_check.py compare ncu.csv --fa2 build/tools/fa2

prints, per problem and pass, DRAM bytes read and written by ncu and by
`fa2 sim` (L2 model on, H200 profile) and their ratios. The problems are
bf16, in the order below; the run prints one JSON line per problem to
stderr.
"""
import csv
import json
import subprocess
import sys

# (batch, heads_q, heads_kv, seqlen, head_dim, causal)
PROBLEMS = [
    (1, 16, 16, 8192, 128, 0),
    (1, 16, 16, 8192, 128, 1),
    (4, 32, 32, 2048, 64, 0),
    (1, 32, 32, 16384, 64, 1),
    (2, 16, 16, 4096, 256, 0),
    (1, 32, 8, 8192, 128, 1),   # GQA 4
    (2, 16, 16, 3000, 96, 1),   # a head dim the kernels pad, a ragged tile
]


def run():
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "python"))
    import torch
    import fa2
    for B, hq, hkv, n, d, causal in PROBLEMS:
        g = torch.Generator(device="cuda").manual_seed(0)
        mk = lambda h: torch.randn(B, n, h, d, device="cuda", dtype=torch.bfloat16,
                                   generator=g)
        q, k, v, dout = mk(hq), mk(hkv), mk(hkv), mk(hq)
        o = torch.empty_like(q)
        lse = torch.empty(B, hq, n, device="cuda", dtype=torch.float32)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        a = fa2.make_args(q, k, v, o, lse, causal=bool(causal))
        ab = fa2.make_bwd_args(q, k, v, o, lse, dout, dq, dk, dv, causal=bool(causal))
        torch.cuda.synchronize()
        fa2.run(a, "cuda")
        fa2.run_bwd(ab, "cuda")
        torch.cuda.synchronize()
        print(json.dumps({"batch": B, "heads_q": hq, "heads_kv": hkv, "seqlen": n,
                          "head_dim": d, "causal": causal}), file=sys.stderr, flush=True)
        del q, k, v, dout, o, dq, dk, dv, a, ab
        torch.cuda.empty_cache()


def ncu_kernels(path):
    """[(kernel name, dram read bytes, dram written bytes)] in launch order"""
    rows = {}
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        kid = int(r["ID"])
        unit, val = r["Metric Unit"], float(r["Metric Value"].replace(",", ""))
        scale = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}.get(unit, 1)
        e = rows.setdefault(kid, {"name": r["Kernel Name"]})
        e[r["Metric Name"]] = val * scale
    return [(e["name"], e.get("dram__bytes_read.sum", 0.0), e.get("dram__bytes_write.sum", 0.0))
            for _, e in sorted(rows.items())]


def sim_bytes(prog, prob, pas):
    B, hq, hkv, n, d, causal = prob
    cmd = [prog, "sim", "--batch", str(B), "--heads", str(hq), "--heads-kv", str(hkv),
           "--seqlen", str(n), "--head-dim", str(d), "--dtype", "bf16", "--device", "h200",
           "--pass", pas, "--json"] + (["--causal"] if causal else [])
    j = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return j["dram_bytes_read"], j["dram_bytes_written"]


def compare(path, prog):
    ks = ncu_kernels(path)
    # split into problems: a forward kernel after a backward one starts the next
    groups, cur = [], None
    for name, rd, wr in ks:
        fwd = "fwd_kernel" in name
        if cur is None or (fwd and cur["bwd"][2] > 0):
            cur = {"fwd": [0.0, 0.0, 0], "bwd": [0.0, 0.0, 0]}
            groups.append(cur)
        g = cur["fwd" if fwd else "bwd"]
        g[0] += rd
        g[1] += wr
        g[2] += 1
    if len(groups) != len(PROBLEMS):
        sys.exit("ncu has %d problems' kernels, the list %d" % (len(groups), len(PROBLEMS)))
    print("| problem (bf16) | pass | kernels | DRAM read, ncu / model (MB) | ratio | "
          "DRAM written, ncu / model (MB) | ratio | read + written ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for prob, g in zip(PROBLEMS, groups):
        B, hq, hkv, n, d, causal = prob
        label = "B %d, H %d/%d, N %d, d %d%s" % (B, hq, hkv, n, d, ", causal" if causal else "")
        for pas in ("fwd", "bwd"):
            rd, wr, nk = g[pas]
            mrd, mwr = sim_bytes(prog, prob, pas)
            print("| %s | %s | %d | %.1f / %.1f | %.2f | %.1f / %.1f | %.2f | %.2f |" % (
                label, pas, nk, rd / 1e6, mrd / 1e6, rd / mrd if mrd else 0, wr / 1e6,
                mwr / 1e6, wr / mwr if mwr else 0, (rd + wr) / (mrd + mwr)))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        run()
    elif len(sys.argv) >= 3 and sys.argv[1] == "compare":
        prog = sys.argv[sys.argv.index("--fa2") + 1] if "--fa2" in sys.argv else "build/tools/fa2"
        compare(sys.argv[2], prog)
    else:
        sys.exit(__doc__)
