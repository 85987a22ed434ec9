"""python3 -m fa2 verify [options] DIR — fa2.verify() from the command line:
the same check as the C program's `fa2 verify`, plus the diagnosis of which
key tile explains a failing row. Exit 0 pass, 1 fail, 2 usage."""
import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m fa2")
    sub = ap.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check a kernel's .npy outputs against the oracle")
    v.add_argument("dir", help="q.npy k.npy v.npy o.npy [lse dout dq dk dv "
                               "cu_seqlens_q cu_seqlens_k].npy")
    v.add_argument("--causal", action="store_true")
    v.add_argument("--window", default="-1,-1", help="L,R (-1: unbounded)")
    v.add_argument("--scale", type=float, default=None)
    v.add_argument("--block", default="0,0", help="the kernel's tiling M,N")
    v.add_argument("--dtype", choices=("fp16", "bf16"), default=None,
                   help="what uint16 arrays hold")
    v.add_argument("--fill", type=float, default=0.0,
                   help="the value the output buffers held before the kernel ran")
    v.add_argument("--worst", type=int, default=5)
    a = ap.parse_args(argv)
    from . import testing
    try:
        wl, wr = (int(x) for x in a.window.split(","))
        bm, bn = (int(x) for x in a.block.split(","))
    except ValueError:
        ap.error("--window and --block take two integers: A,B")
    files = {}
    for name in ("q", "k", "v", "o", "lse", "dout", "dq", "dk", "dv",
                 "cu_seqlens_q", "cu_seqlens_k"):
        path = os.path.join(a.dir, name + ".npy")
        if os.path.exists(path):
            files[name] = path
        elif name in ("q", "k", "v", "o"):
            ap.error("%s is missing" % path)
    rep = testing.verify(files.pop("q"), files.pop("k"), files.pop("v"),
                         files.pop("o"), causal=a.causal, window_size=(wl, wr),
                         softmax_scale=a.scale, block_m=bm, block_n=bn,
                         dtype=a.dtype, fill=a.fill, worst=a.worst, **files)
    print(rep)
    return rep.exit_code


if __name__ == "__main__":
    sys.exit(main())
