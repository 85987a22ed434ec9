#!/usr/bin/env python3
"""broken_kernel.py — a FlashAttention-2 forward written tile by tile in
numpy, with a bug you can switch on, and what `fa2 verify` says about it.

The kernel walks query blocks of BLOCK_M rows and, for each, the key
blocks of BLOCK_N keys that causal masking leaves visible (an online
softmax: running max m, running sum l, rescaled accumulator). The bug
(--bug) is one a real kernel can have: the loop bound skips the last key
block of every query block whenever that block is only partly visible, the
one that needs the causal mask (the "boundary tile"). The output then
looks plausible (every row is a convex combination of value rows) and only
rows that should have seen keys of that block are wrong; the first query
block, which sees no other block, is never written.

    python3 examples/broken_kernel.py --bug --out /tmp/broken
    fa2 verify --causal --block 64,64 --fill nan /tmp/broken   # FAIL, names the tile
    python3 examples/broken_kernel.py --out /tmp/fixed
    fa2 verify --causal --block 64,64 --fill nan /tmp/fixed    # PASS

The output buffer starts as NaN, as a careful test harness fills it, so
that rows the kernel never writes are told from rows it wrote wrongly.
"""
import argparse
import os

import numpy as np

BLOCK_M = BLOCK_N = 64


def flash_forward(q, k, v, causal, bug):
    """o (dtype of q) and lse (float32 [B, H, N]) of attention, tile by tile,
    accumulating in float32 as a GPU kernel does."""
    B, N, H, d = q.shape
    scale = 1.0 / np.sqrt(d)
    o = np.full(q.shape, np.nan, dtype=q.dtype)
    lse = np.full((B, H, N), np.nan, dtype=np.float32)
    qf, kf, vf = (x.astype(np.float32) for x in (q, k, v))
    for b in range(B):
        for h in range(H):
            for i0 in range(0, N, BLOCK_M):
                i1 = min(N, i0 + BLOCK_M)
                m = np.full(i1 - i0, -np.inf, np.float32)
                l = np.zeros(i1 - i0, np.float32)
                acc = np.zeros((i1 - i0, d), np.float32)
                # causal: key blocks up to the one holding key i1 - 1
                n_blocks = (i1 + BLOCK_N - 1) // BLOCK_N if causal else \
                    (N + BLOCK_N - 1) // BLOCK_N
                if bug and causal:
                    n_blocks = i0 // BLOCK_N   # forgets the boundary tile
                for j0 in range(0, n_blocks * BLOCK_N, BLOCK_N):
                    j1 = min(N, j0 + BLOCK_N)
                    s = (qf[b, i0:i1, h] @ kf[b, j0:j1, h].T) * scale
                    if causal and j1 > i0:   # the tile crosses the diagonal
                        rows = np.arange(i0, i1)[:, None]
                        cols = np.arange(j0, j1)[None, :]
                        s = np.where(cols <= rows, s, -np.inf)
                    m_new = np.maximum(m, s.max(axis=1))
                    p = np.exp(s - m_new[:, None])
                    alpha = np.exp(m - m_new)
                    l = alpha * l + p.sum(axis=1)
                    # P rounded to the input dtype before P.V, as the kernel does
                    pv = p.astype(q.dtype).astype(np.float32) @ vf[b, j0:j1, h]
                    acc = alpha[:, None] * acc + pv
                    m = m_new
                if n_blocks == 0:
                    continue                  # nothing to write: left as is
                o[b, i0:i1, h] = (acc / l[:, None]).astype(q.dtype)
                lse[b, h, i0:i1] = m + np.log(l)
    return o, lse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bug", action="store_true", help="skip the boundary tile")
    ap.add_argument("--out", required=True, help="directory for the .npy files")
    ap.add_argument("--seqlen", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    shape = (1, a.seqlen, 2, 64)
    q, k, v = (rng.standard_normal(shape).astype(np.float16) for _ in range(3))
    o, lse = flash_forward(q, k, v, causal=True, bug=a.bug)
    os.makedirs(a.out, exist_ok=True)
    for name, x in (("q", q), ("k", k), ("v", v), ("o", o), ("lse", lse)):
        np.save(os.path.join(a.out, name + ".npy"), x)
    print("wrote q, k, v, o, lse to %s (%s)" % (a.out, "with the bug" if a.bug else "correct"))


if __name__ == "__main__":
    main()
