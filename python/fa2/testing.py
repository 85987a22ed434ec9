"""testing.py — is another implementation's attention right?

verify() takes the inputs and outputs of a kernel under test (numpy arrays
or .npy paths: q, k, v, o, and optionally lse, dout, dq, dk, dv) and the
problem's options, and measures each output against

  - the float64 oracle, computed here in numpy straight from the
    definition (independent of libfa2's code): the error the bound is about;
  - standard attention in the same dtype (libfa2's OpenBLAS backend): the
    yardstick. An output passes when

        max |x - oracle| <= 2 * max |standard - oracle| + floor

    (flash-attn's own standard; the floors are lib/check/contract.c's);
  - the tiled mirror (libfa2's CPU copy of the GPU algorithm) with the
    tiling the caller names (block_m x block_n): a kernel with the same
    tiling rounds at the same points, so it should agree with the mirror
    to a few ulps; the report gives that distance.

The report lists the worst elements as (batch, row, head, col) with their
ulps, the rows that are NaN and the rows that were never written (every
element still the fill value the caller's buffer was initialised with),
the failing rows grouped by query block, and, for the worst rows, which
key blocks explain what the kernel computed (e.g. "matches attention
without key block 1 (keys 64..127)": a skipped tile).

    report = fa2.verify(q, k, v, o, causal=True, block_m=64, block_n=64)
    print(report); assert report.passed
    fa2.testing.assert_attention_close(q, k, v, o, causal=True)
"""
import math

import numpy as np

from . import _numpy as _np_backend

_FLOOR = {"fp32": 1e-6, "fp16": 1e-5, "bf16": 1e-4}
_LSE_FLOOR = 1e-5
_UNIT = {"fp32": 2.0 ** -24, "fp16": 2.0 ** -11, "bf16": 2.0 ** -8}
_MANT = {"fp32": 23, "fp16": 10, "bf16": 7}
_MIN_EXP = {"fp32": -126, "fp16": -14, "bf16": -126}


# ---- inputs ---------------------------------------------------------------

def _load(x):
    if x is None or isinstance(x, np.ndarray):
        return x
    return np.load(x)


def _dtype_name(a, dtype):
    name = a.dtype.name
    if name == "uint16":
        if dtype not in ("fp16", "bf16"):
            raise TypeError("uint16 arrays need dtype='fp16' or 'bf16'")
        return dtype
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[name]


def to_float64(a, dtype=None):
    """The values of a float32/float16/bfloat16 (or uint16 bits) array."""
    name = _dtype_name(a, dtype)
    if a.dtype.name == "uint16":
        if name == "fp16":
            return a.view(np.float16).astype(np.float64)
        return (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return a.astype(np.float64)


def ulp(y, dtype):
    """The spacing of dtype's numbers at |y| (y float64)."""
    mag = np.maximum(np.abs(y), 2.0 ** _MIN_EXP[dtype])
    mag = np.where(np.isfinite(mag), mag, 1.0)
    return np.exp2(np.floor(np.log2(mag)) - _MANT[dtype])


# ---- the float64 oracle ----------------------------------------------------

class _Problem:
    """Shapes and masks: the sequences as (batch index, q rows, k rows)."""

    def __init__(self, q, k, causal, window_size, softmax_scale, cu_q, cu_k):
        self.varlen = cu_q is not None
        self.hq, self.hkv, self.d = q.shape[-2], k.shape[-2], q.shape[-1]
        if self.hq % self.hkv:
            raise ValueError("heads of q (%d) not a multiple of heads of k (%d)"
                             % (self.hq, self.hkv))
        self.scale = softmax_scale or 1.0 / math.sqrt(self.d)
        self.wl, self.wr = int(window_size[0]), int(window_size[1])
        if causal:
            self.wr = 0
        if self.varlen:
            cq, ck = np.asarray(cu_q, np.int64), np.asarray(cu_k, np.int64)
            self.seqs = [(0, slice(cq[s], cq[s + 1]), slice(ck[s], ck[s + 1]))
                         for s in range(len(cq) - 1)]
            self.cu_q = cq
        else:
            self.seqs = [(b, slice(0, q.shape[1]), slice(0, k.shape[1]))
                         for b in range(q.shape[0])]

    def visible(self, nq, nk):
        """[nq, nk] booleans: which key each query row sees."""
        i = np.arange(nq)[:, None] + (nk - nq)
        j = np.arange(nk)[None, :]
        ok = np.ones((nq, nk), bool)
        if self.wl >= 0:
            ok &= j >= i - self.wl
        if self.wr >= 0:
            ok &= j <= i + self.wr
        return ok

    def where(self, b, row):
        """(batch, row) as the report names it: the sequence and its row."""
        if not self.varlen:
            return b, row
        s = int(np.searchsorted(self.cu_q, row, side="right") - 1)
        return s, row - int(self.cu_q[s])


def _expand(x, group):
    return np.repeat(x, group, axis=1) if group > 1 else x


def oracle(P, q, k, v, dout=None):
    """float64 (o, lse) and, with dout, (dq, dk, dv): 4-d [B, N, H, d]."""
    g = P.hq // P.hkv
    o = np.zeros(q.shape)
    lse = np.full((q.shape[0], P.hq, q.shape[1]), np.inf)
    grads = None
    if dout is not None:
        grads = [np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)]
    for b, rq, rk in P.seqs:
        Q, K, V = q[b, rq], _expand(k[b, rk], g), _expand(v[b, rk], g)
        nq, nk = Q.shape[0], K.shape[0]
        if nq == 0:
            continue
        s = np.einsum("ihd,jhd->hij", Q, K) * P.scale
        ok = P.visible(nq, nk)[None]
        s = np.where(ok, s, -np.inf)
        any_ok = ok.any(axis=2)                       # [1, nq]
        m = np.where(any_ok, np.max(s, axis=2, initial=-np.inf), 0.0)
        p = np.exp(s - m[..., None])
        l = p.sum(axis=2)
        p = p / np.where(l > 0, l, 1.0)[..., None]
        O = np.einsum("hij,jhd->ihd", p, V)
        o[b, rq] = O
        lse[b, :, rq] = np.where(any_ok, m + np.log(np.where(l > 0, l, 1.0)), np.inf)
        if dout is not None:
            dO = dout[b, rq]
            dp = np.einsum("ihd,jhd->hij", dO, V)
            D = np.einsum("ihd,ihd->hi", dO, O)
            ds = p * (dp - D[..., None])
            grads[0][b, rq] = np.einsum("hij,jhd->ihd", ds, K) * P.scale
            dk = np.einsum("hij,ihd->jhd", ds, Q) * P.scale
            dv = np.einsum("hij,ihd->jhd", p, dO)
            nkv = dk.shape[0]
            grads[1][b, rk] = dk.reshape(nkv, P.hkv, g, P.d).sum(axis=2)
            grads[2][b, rk] = dv.reshape(nkv, P.hkv, g, P.d).sum(axis=2)
    return o, lse, grads


# ---- the report ------------------------------------------------------------

class OutputCheck:
    """One output's measurements (all errors absolute, against float64)."""

    def __init__(self, name):
        self.name = name
        self.checked = False
        self.err = self.ref_err = self.bound = self.mirror_err = 0.0
        self.max_ulps = self.mirror_ulps = 0.0
        self.worst = []        # (batch, row, head, col, got, want, ulps)
        self.nan_rows = []     # (batch, row, head)
        self.unwritten_rows = []
        self.passed = True


class Report:
    """What verify() found; str(report) is the text `fa2 verify` prints."""

    def __init__(self):
        self.outputs = {}
        self.blocks = []       # (query block, rows failing, max err)
        self.diagnosis = []    # sentences
        self.block_m = self.block_n = 0
        self.dtype = "fp32"

    @property
    def passed(self):
        return all(c.passed for c in self.outputs.values() if c.checked)

    @property
    def exit_code(self):
        return 0 if self.passed else 1

    def __str__(self):
        out = ["fa2 verify: %s, mirror tiling %d x %d" %
               (self.dtype, self.block_m, self.block_n)]
        out.append("%-4s %12s %12s %12s %9s %12s %9s  %s" %
                   ("out", "max err", "standard", "bound", "ulps",
                    "vs mirror", "ulps", "verdict"))
        for c in self.outputs.values():
            if not c.checked:
                continue
            out.append("%-4s %12.4e %12.4e %12.4e %9.1f %12.4e %9.1f  %s" %
                       (c.name, c.err, c.ref_err, c.bound, c.max_ulps,
                        c.mirror_err, c.mirror_ulps,
                        "ok" if c.passed else "FAIL"))
        for c in self.outputs.values():
            if not c.checked or c.passed:
                continue
            out.append("%s: worst elements (batch, row, head, col):" % c.name)
            for (b, r, h, j, got, want, u) in c.worst:
                out.append("  (%d, %d, %d, %d)  got %.6g  want %.6g  (%.0f ulps)"
                           % (b, r, h, j, got, want, u))
            for label, rows in (("NaN rows", c.nan_rows),
                                ("never-written rows", c.unwritten_rows)):
                if rows:
                    shown = ", ".join("(%d, %d, %d)" % t for t in rows[:8])
                    more = " and %d more" % (len(rows) - 8) if len(rows) > 8 else ""
                    out.append("  %d %s (batch, row, head): %s%s" %
                               (len(rows), label, shown, more))
        if self.blocks:
            out.append("failing rows of o by query block (block_m = %d):" % self.block_m)
            for blk, n, e in self.blocks:
                out.append("  query block %d (rows %d..%d): %d rows, max err %.3e"
                           % (blk, blk * self.block_m, (blk + 1) * self.block_m - 1, n, e))
        out.extend(self.diagnosis)
        out.append("PASS" if self.passed else "FAIL")
        return "\n".join(out)


def _measure(c, got, want, ref, mirror, bound_floor, P, dtype, worst,
             fill=0.0):
    """Fill OutputCheck c: got/want/ref/mirror float64 [B, N, H, d]."""
    c.checked = True
    both_finite = np.isfinite(want)
    diff = np.where(both_finite, np.abs(got - want), 0.0)
    # a non-finite result where the oracle is finite is an infinite error;
    # where the oracle is NaN (NaN inputs), the result must be NaN too
    bad = (both_finite & ~np.isfinite(got)) | (np.isnan(want) & ~np.isnan(got))
    diff = np.where(bad, np.inf, diff)
    c.err = float(diff.max()) if diff.size else 0.0
    rdiff = np.where(both_finite, np.abs(ref - want), 0.0)
    c.ref_err = float(np.nan_to_num(rdiff, posinf=0.0).max()) if rdiff.size else 0.0
    c.bound = 2.0 * c.ref_err + bound_floor
    u = diff / ulp(want, dtype)
    c.max_ulps = float(u.max()) if u.size else 0.0
    if mirror is not None:
        md = np.where(np.isfinite(mirror) & np.isfinite(got),
                      np.abs(got - mirror), 0.0)
        c.mirror_err = float(md.max()) if md.size else 0.0
        c.mirror_ulps = float((md / ulp(mirror, dtype)).max()) if md.size else 0.0
    if got.ndim == 4:
        row_nan = np.isnan(got).any(axis=3) & np.isfinite(want).all(axis=3)
        filled = (np.isnan(got) if isinstance(fill, float) and math.isnan(fill)
                  else got == fill).all(axis=3)
        row_unwritten = filled & ~(want == (0.0 if math.isnan(fill) else fill)).all(axis=3)
        for name, mask in (("nan_rows", row_nan & ~row_unwritten),
                           ("unwritten_rows", row_unwritten)):
            idx = np.argwhere(mask)
            setattr(c, name, [P.where(b, r) + (h,) for b, r, h in idx[:1000]])
    # the worst finite errors (NaN and unwritten rows are listed apart)
    ranked = np.where(np.isfinite(diff), diff, -1.0)
    order = np.argsort(ranked, axis=None)[::-1][:worst]
    for flat in order:
        ix = np.unravel_index(flat, diff.shape)
        if ranked[ix] <= 0.0:
            break
        if got.ndim == 4:
            b, r = P.where(ix[0], ix[1])
            c.worst.append((b, r, ix[2], ix[3], got[ix], want[ix], u[ix]))
        else:   # lse [B, H, N]: report as (batch, row, head, -)
            b, r = P.where(ix[0], ix[2])
            c.worst.append((b, r, ix[1], -1, got[ix], want[ix], u[ix]))
    c.passed = c.err <= c.bound and not c.nan_rows and not c.unwritten_rows


def _diagnose(report, P, q, k, v, o_got, row_err, bound, block_n, rows=4):
    """For the worst failing rows: does the output match attention over a
    different set of keys (one key block left out, or a block's mask not
    applied)? That names the tile a kernel got wrong."""
    g = P.hq // P.hkv
    # rows with a finite error: NaN and unwritten rows are listed already
    idx = np.argwhere((row_err > bound) & np.isfinite(row_err))
    if idx.size == 0:
        return
    order = np.argsort(row_err[tuple(idx.T)])[::-1][:rows]
    for b, r, h in idx[order]:
        for sb, rq, rk in P.seqs:
            if sb == b and rq.start <= r < rq.stop:
                break
        i = r - rq.start
        K, V = k[b, rk, h // g], v[b, rk, h // g]
        nq, nk = rq.stop - rq.start, K.shape[0]
        s = K @ q[b, r, h] * P.scale
        vis = P.visible(nq, nk)[i]

        def attend(mask):
            if not mask.any():
                return np.zeros(P.d)
            e = np.exp(s[mask] - s[mask].max())
            return (e / e.sum()) @ V[mask]

        got = o_got[b, r, h]
        best = None
        for kb in range(0, (nk + block_n - 1) // block_n):
            blk = np.zeros(nk, bool)
            blk[kb * block_n:(kb + 1) * block_n] = True
            for what, mask in (("without key block %d (keys %d..%d): that tile "
                                "looks skipped", vis & ~blk),
                               ("with key block %d (keys %d..%d) unmasked: its "
                                "mask looks missed", vis | blk)):
                if (mask == vis).all():
                    continue
                e = float(np.abs(attend(mask) - got).max())
                if best is None or e < best[0]:
                    best = (e, what % (kb, kb * block_n,
                                       min(nk, (kb + 1) * block_n) - 1))
        if best is not None and best[0] <= max(bound, 0.05 * row_err[b, r, h]):
            bb, rr = P.where(b, r)
            report.diagnosis.append(
                "row (%d, %d, head %d), query block %d: matches attention %s "
                "(error %.2e against that, %.2e against the right keys)" %
                (bb, rr, h, rr // report.block_m, best[1], best[0], row_err[b, r, h]))


def verify(q, k, v, o, lse=None, dout=None, dq=None, dk=None, dv=None,
           causal=False, window_size=(-1, -1), softmax_scale=None,
           cu_seqlens_q=None, cu_seqlens_k=None, block_m=0, block_n=0,
           dtype=None, fill=0.0, worst=5, num_threads=0):
    """Check a kernel's outputs (o; lse, dq, dk, dv when given; the
    gradients need dout and lse) against the float64 oracle and the
    bound. Arrays or .npy paths; [B, N, H, d] (or [total, H, d] with
    cu_seqlens). fill: the value the kernel's output buffer held before it
    ran (rows still all fill are "never written"; NaN works). block_m,
    block_n: the kernel's tiling, for the mirror and the report (0: the
    library's). Returns a Report; report.passed, print(report)."""
    q, k, v, o, lse, dout, dq, dk, dv = (
        _load(x) for x in (q, k, v, o, lse, dout, dq, dk, dv))
    if cu_seqlens_q is not None:
        cu_seqlens_q = np.asarray(_load(cu_seqlens_q), np.int32)
        cu_seqlens_k = np.asarray(_load(cu_seqlens_k), np.int32)
    dt = _dtype_name(q, dtype)
    kw = dict(causal=causal, window_size=window_size,
              softmax_scale=softmax_scale, cu_seqlens_q=cu_seqlens_q,
              cu_seqlens_k=cu_seqlens_k, num_threads=num_threads, dtype=dtype)
    if not block_m or not block_n:
        import ctypes
        from ._lib import BACKENDS, PASS_FWD, TileConfig, check, lib
        tc = TileConfig()
        code = {"fp32": 0, "fp16": 1, "bf16": 2}[dt]
        check(lib().fa2_tile_config_for(BACKENDS["tiled"], PASS_FWD, code,
                                        q.shape[-1], ctypes.byref(tc)))
        block_m, block_n = block_m or tc.block_m, block_n or tc.block_n
    four = (lambda a: a[np.newaxis]) if q.ndim == 3 else (lambda a: a)
    f64 = lambda a: four(to_float64(a, dtype))
    P = _Problem(four(q), four(k), causal, window_size, softmax_scale,
                 cu_seqlens_q, cu_seqlens_k)
    want_grads = dq is not None or dk is not None or dv is not None
    if want_grads and (dout is None or lse is None):
        raise ValueError("checking dq/dk/dv needs dout and the kernel's lse")
    q64, k64, v64 = f64(q), f64(k), f64(v)
    o64, lse64, g64 = oracle(P, q64, k64, v64, f64(dout) if want_grads else None)
    ref_o, ref_lse = _np_backend.forward(q, k, v, backend="standard", **kw)
    mir_o, mir_lse = _np_backend.forward(q, k, v, backend="tiled",
                                         block_m=block_m, block_n=block_n, **kw)
    rep = Report()
    rep.block_m, rep.block_n, rep.dtype = block_m, block_n, dt
    c = rep.outputs["o"] = OutputCheck("o")
    _measure(c, f64(o), o64, f64(ref_o), f64(mir_o), _FLOOR[dt], P, dt, worst,
             fill)
    if lse is not None:
        c = rep.outputs["lse"] = OutputCheck("lse")
        lse_g = np.asarray(lse, np.float64).reshape(lse64.shape)
        _measure(c, lse_g, lse64, ref_lse.astype(np.float64).reshape(lse64.shape),
                 mir_lse.astype(np.float64).reshape(lse64.shape), _LSE_FLOOR,
                 P, "fp32", worst)
    if want_grads:
        ref_g = _np_backend.backward(q, k, v, ref_o, ref_lse, dout,
                                     backend="standard", **kw)
        mir_g = _np_backend.backward(q, k, v, mir_o, mir_lse, dout,
                                     backend="tiled", block_m=block_m,
                                     block_n=block_n, **kw)
        mags = [float(np.abs(x).max()) if x.size else 0.0 for x in g64]
        for i, (name, got) in enumerate((("dq", dq), ("dk", dk), ("dv", dv))):
            if got is None:
                continue
            floor = _FLOOR[dt] + _UNIT[dt] * mags[i] + (
                128 * _UNIT[dt] * max(mags) if dt == "fp32" else 0.0)
            c = rep.outputs[name] = OutputCheck(name)
            _measure(c, f64(got), g64[i], f64(ref_g[i]), f64(mir_g[i]), floor,
                     P, dt, worst, fill)
    oc = rep.outputs["o"]
    if not oc.passed:
        o_g = f64(o)
        row_err = np.where(np.isfinite(o64), np.abs(o_g - o64), 0.0)
        row_err = np.where(np.isnan(o_g) & np.isfinite(o64), np.inf, row_err).max(axis=3)
        failing = row_err > oc.bound
        rows_blk = {}
        for b, r, h in np.argwhere(failing):
            rr = P.where(b, r)[1] // block_m
            n, e = rows_blk.get(rr, (0, 0.0))
            rows_blk[rr] = (n + 1, max(e, float(row_err[b, r, h])))
        rep.blocks = [(blk, n, e) for blk, (n, e) in sorted(rows_blk.items())]
        _diagnose(rep, P, q64, k64, v64, o_g, row_err, oc.bound, block_n)
    return rep


class AttentionMismatch(AssertionError):
    """assert_attention_close failed; .report is the Report."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


def assert_attention_close(q, k, v, o, **kwargs):
    """verify(), raising AttentionMismatch (an AssertionError whose message
    is the report) when any output is out of bounds, NaN or unwritten."""
    rep = verify(q, k, v, o, **kwargs)
    if not rep.passed:
        raise AttentionMismatch(rep)
    return rep
