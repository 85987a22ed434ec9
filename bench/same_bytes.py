#!/usr/bin/env python3
"""same_bytes.py — do two builds of libfa2 give the same bytes on the GPU?

A change that only moves where the kernels compute the same values (an
instruction schedule, a register-pressure fix) must leave every output bit
for bit as it was. Each library runs in its own process (libfa2 is loaded
once, from $FA2_LIB), so this is two steps:

    FA2_LIB=OLD.so python3 bench/same_bytes.py --dump old.pt
    FA2_LIB=NEW.so python3 bench/same_bytes.py --dump new.pt
    python3 bench/same_bytes.py --cmp old.pt new.pt

--dump runs the forward (O, LSE) and the deterministic backward (dQ, dK,
dV) on fixed tensors, per case: head dims 64/128/256, causal or not, plain,
dropout, all four modifiers; --cmp names every tensor whose bytes differ
and exits 1 if any does.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))


def dump(path):
    import torch
    import fa2
    dev = "cuda"
    out = {}
    for d in (64, 128, 256):
        g = torch.Generator(device=dev).manual_seed(d)
        shape = (2, 1000, 4, d)  # a ragged last tile on purpose
        q, k, v, do = (torch.randn(shape, generator=g, device=dev).to(torch.bfloat16)
                       for _ in range(4))
        h = shape[2]
        slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / h) for i in range(h)],
                              dtype=torch.float32, device=dev)
        sinks = torch.randn(h, generator=g, device=dev)
        drop = {"dropout_p": 0.1, "dropout_seed": 77, "dropout_offset": 5}
        variants = {"plain": {}, "dropout": drop,
                    "all": dict(softcap=30.0, alibi_slopes=slopes, sinks=sinks, **drop)}
        for causal in (False, True):
            for name, m in variants.items():
                key = "d%d_%s_%s" % (d, "causal" if causal else "full", name)
                o, lse = fa2.forward(q, k, v, causal=causal, return_lse=True, **m)
                grads = fa2.backward(q, k, v, o, lse, do, causal=causal,
                                     deterministic=True, **m)
                out[key + "_o"] = o.cpu()
                out[key + "_lse"] = lse.cpu()
                for gname, t in zip(("dq", "dk", "dv", "dsinks"), grads):
                    out[key + "_" + gname] = t.cpu()
    torch.save(out, path)
    print("dumped %d tensors to %s" % (len(out), path))


def cmp(a_path, b_path):
    import torch
    a, b = torch.load(a_path), torch.load(b_path)
    bad = 0
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            print("only in one:", key)
            bad += 1
            continue
        x = a[key].contiguous().view(torch.uint8)
        y = b[key].contiguous().view(torch.uint8)
        if x.shape != y.shape or not torch.equal(x, y):
            print("differs:", key)
            bad += 1
    print("%d of %d tensors differ" % (bad, len(set(a) | set(b))))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", metavar="FILE")
    ap.add_argument("--cmp", nargs=2, metavar=("A", "B"))
    a = ap.parse_args()
    if a.dump:
        dump(a.dump)
        return 0
    if a.cmp:
        return cmp(*a.cmp)
    ap.error("give --dump FILE or --cmp A B")


if __name__ == "__main__":
    sys.exit(main())
