"""ring.py — ring attention (context parallelism) and its CPU mirror.

R ranks each hold a slice of the sequence; the K/V slices travel around a
ring (rank r sends to r + 1) so that after R steps every rank's queries
have met every key, and each rank merges its partial (O, LSE) by LSE, in
the ring's order, with the merge of lib/fa2_kvcache.h (doc/algorithm.md
sections 8 and 9). This module holds what fa2.distributed (the real ring,
on torch.distributed) and the mirror (ranks simulated by a loop over the
tiled CPU backend, on numpy arrays) share, so that both cut, pair and merge
the same way:

  - zig-zag chunking: every sequence is cut into 2R chunks and rank r holds
    chunks r and 2R-1-r, so under a causal mask each rank has the same
    amount of work (an early chunk sees few keys, its partner many);
  - the plan of one ring step: which local query rows meet which rows of
    the visiting K/V, and with which mask (section 9's three cases);
  - merge_lse: the two-pass LSE merge of fa2_merge_lse / fa2_merge_weight /
    fa2_merge_partials, written once over numpy or torch arrays.

ring_attention_mirror / ring_attention_mirror_backward are the mirror;
they take the whole problem (packed varlen or [B, N, H, d]) and return the
whole result, computed rank by rank exactly as the distributed code does.
"""
import numpy as np

LOG2E = 1.44269504088896340736  # FA2_LOG2E, applied as a float32 product


# ---- the shared merge -------------------------------------------------------

def _rounded(f, x):
    """f(x) of a float32 array, computed in float64 and rounded once to
    float32: the correctly rounded value (but for rare double roundings),
    which is what glibc's exp2f / logf return, and the same whichever of
    numpy's or torch's vector libraries runs it, so that the mirror and
    fa2.distributed round the merge alike."""
    if hasattr(x, "double"):  # torch
        return f(x.double()).float()
    return f(x.astype(np.float64)).astype(np.float32)


def merge_lse(xp, lses, outs):
    """Merge parts i = 0, 1, ... (in that order) of attention over disjoint
    key sets: lses[i] float32 [...rows], outs[i] float32 [...rows, d] (rows
    laid out alike). Returns (o, lse) as fa2_merge_partials computes them,
    rounding at the same points: lse = mx + ln(sum_i exp2((lse_i - mx)
    log2 e)) over the non-empty parts, mx their largest lse; o = sum_i
    exp2((lse_i - lse) log2 e) o_i in part order. Empty parts (lse +-inf)
    are skipped and their o never read; all parts empty: o = 0, lse = +inf;
    any NaN lse_i: lse and all of o NaN. xp: numpy or torch."""
    inf = float("inf")
    nan_any = None
    mx = None
    empty = []
    for x in lses:
        e = xp.isinf(x)
        empty.append(e)
        n = xp.isnan(x)
        nan_any = n if nan_any is None else (nan_any | n)
        cand = xp.where(e | n, xp.full_like(x, -inf), x)
        mx = cand if mx is None else xp.maximum(mx, cand)
    none_seen = mx == -inf
    mx_safe = xp.where(none_seen, xp.zeros_like(mx), mx)
    total = xp.zeros_like(mx)
    for x, e in zip(lses, empty):
        t = _rounded(xp.exp2, (xp.where(e, mx_safe, x) - mx_safe) * LOG2E)
        total = total + xp.where(e, xp.zeros_like(t), t)
    lse = mx_safe + _rounded(xp.log, xp.where(none_seen, xp.ones_like(total), total))
    lse = xp.where(none_seen, xp.full_like(lse, inf), lse)
    lse = xp.where(nan_any, xp.full_like(lse, float("nan")), lse)
    lse_safe = xp.where(none_seen, xp.zeros_like(lse), lse)
    o = xp.zeros_like(outs[0])
    for x, e, oi in zip(lses, empty, outs):
        w = _rounded(xp.exp2, (xp.where(e, lse_safe, x) - lse_safe) * LOG2E)
        term = w[..., None] * oi
        o = o + xp.where(e[..., None], xp.zeros_like(term), term)
    return o, lse


# ---- zig-zag chunking --------------------------------------------------------

def chunk_bounds(length, world):
    """The 2R chunk boundaries of a sequence of `length` tokens: chunk c is
    [b[c], b[c+1]), b[c] = c length // 2R (sizes differ by at most 1)."""
    n = 2 * world
    return [c * length // n for c in range(n + 1)]


class ZigZag:
    """Where each token of a packed batch lives on the ring. cu_seqlens:
    offsets of the sequences in the packed [total, H, d] tensors. For rank
    r: index[r] (global token indices of its local rows, sequence by
    sequence: chunk r then chunk 2R-1-r), cu[r] (local offsets of the
    sequences), and for each slot a in (0, 1) rows[r][a] (local row
    indices of chunk r (a=0) or 2R-1-r (a=1) of every sequence) with
    cu_slot[r][a] (their offsets)."""

    def __init__(self, cu_seqlens, world):
        cu = [int(x) for x in np.asarray(cu_seqlens).reshape(-1)]
        if world < 1:
            raise ValueError("the ring needs at least one rank, not %d" % world)
        self.world = world
        self.index, self.cu, self.rows, self.cu_slot = [], [], [], []
        for r in range(world):
            idx, loc, rows, cus = [], [0], ([], []), ([0], [0])
            for s in range(len(cu) - 1):
                b = chunk_bounds(cu[s + 1] - cu[s], world)
                start = len(idx)
                for a, c in enumerate((r, 2 * world - 1 - r)):
                    n = b[c + 1] - b[c]
                    rows[a].extend(range(len(idx), len(idx) + n))
                    idx.extend(range(cu[s] + b[c], cu[s] + b[c + 1]))
                    cus[a].append(cus[a][-1] + n)
                loc.append(loc[-1] + len(idx) - start)
            self.index.append(np.array(idx, np.int64))
            self.cu.append(np.array(loc, np.int32))
            self.rows.append(tuple(np.array(x, np.int64) for x in rows))
            self.cu_slot.append(tuple(np.array(x, np.int32) for x in cus))

    def max_len(self, cu):
        return int(np.max(np.diff(cu))) if len(cu) > 1 else 0


def step_plan(zz, rank, src, causal):
    """What rank `rank` computes while it holds the K/V of rank `src`:
    (q_rows, q_cu, kv_rows, kv_cu, mask) with rows None for "all local
    rows" and mask "causal" or "none"; None when nothing is visible.
    Not causal: all rows meet all keys. Causal, zig-zag: the own K/V is the
    diagonal (local causal mask: chunk r sees itself causally, chunk
    2R-1-r sees chunk r whole and itself causally); a K/V from an earlier
    rank (src < rank) is seen whole by both local chunks through its first
    chunk only (its second, 2R-1-src, lies after both); a K/V from a later
    rank is seen whole, both chunks, by the second local chunk only."""
    if not causal:
        return None, zz.cu[rank], None, zz.cu[src], "none"
    if src == rank:
        return None, zz.cu[rank], None, zz.cu[src], "causal"
    if src < rank:
        return None, zz.cu[rank], zz.rows[src][0], zz.cu_slot[src][0], "none"
    return zz.rows[rank][1], zz.cu_slot[rank][1], None, zz.cu[src], "none"


def ring_order(rank, world):
    """The K/V owner rank `rank` holds at steps 0 .. R-1: itself, then the
    ranks before it (K/V move from r to r + 1)."""
    return [(rank - t) % world for t in range(world)]


# ---- the CPU mirror ---------------------------------------------------------

def _packed(q, k, v, cu_seqlens):
    if cu_seqlens is not None:
        return q, k, v, np.asarray(cu_seqlens, np.int32), None
    b, n = q.shape[0], q.shape[1]
    if k.shape[1] != n:
        raise ValueError("ring attention needs as many keys as queries "
                         "(self-attention), not %d and %d" % (n, k.shape[1]))
    cu = (np.arange(b + 1) * n).astype(np.int32)
    flat = lambda x: x.reshape((b * n,) + x.shape[2:])
    return flat(q), flat(k), flat(v), cu, q.shape


def _take(x, rows):
    return x if rows is None else x[rows]


def _chunk_forward(fa2, q, k, v, cu_q, cu_k, mask, softmax_scale):
    """(o float32, lse float32 [Hq, rows]) of one chunk pair."""
    if q.shape[0] == 0 or k.shape[0] == 0:
        lse = np.full((q.shape[1], q.shape[0]), np.inf, np.float32)
        return np.zeros(q.shape, np.float32), lse
    o, lse = fa2.forward(q, k, v, causal=mask == "causal",
                         softmax_scale=softmax_scale, return_lse=True,
                         cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)
    return o.astype(np.float32), lse.reshape(q.shape[1], q.shape[0])


def ring_attention_mirror(q, k, v, world, causal=False, softmax_scale=None,
                          cu_seqlens=None):
    """Ring attention over `world` simulated ranks on the tiled CPU
    backend: (o, lse) of the whole problem, lse float32 [B, Hq, N] (or
    [Hq, total] with cu_seqlens), o like q. q [B, N, Hq, d], k/v
    [B, N, Hkv, d] (self-attention: as many keys as queries), or packed
    [total, H, d] with cu_seqlens (int32 offsets, the same for q and k).
    Each rank starts from its own chunks; at step t it holds the K/V of
    rank (r - t) mod R, computes the chunk pair of step_plan and merges the
    partial into its running (o, lse) with merge_lse (running first)."""
    import fa2
    q2, k2, v2, cu, shape = _packed(q, k, v, cu_seqlens)
    zz = ZigZag(cu, world)
    hq = q2.shape[1]
    o_all = np.zeros(q2.shape, np.float32)
    lse_all = np.full((hq, q2.shape[0]), np.inf, np.float32)
    for r in range(world):
        ql = q2[zz.index[r]]
        o = np.zeros(ql.shape, np.float32)
        lse = np.full((ql.shape[0], hq), np.inf, np.float32)  # rows, heads
        for src in ring_order(r, world):
            plan = step_plan(zz, r, src, causal)
            q_rows, cu_q, kv_rows, cu_k, mask = plan
            kl, vl = k2[zz.index[src]], v2[zz.index[src]]
            po, plse = _chunk_forward(fa2, _take(ql, q_rows), _take(kl, kv_rows),
                                      _take(vl, kv_rows), cu_q, cu_k, mask,
                                      softmax_scale)
            rows = slice(None) if q_rows is None else q_rows
            with np.errstate(invalid="ignore", over="ignore"):
                mo, ml = merge_lse(np, [lse[rows], plse.T.copy()], [o[rows], po])
            o[rows], lse[rows] = mo, ml
        o_all[zz.index[r]] = o
        lse_all[:, zz.index[r]] = lse.T
    o_all = o_all.astype(q.dtype)
    if shape is None:
        return o_all, lse_all
    b, n = shape[0], shape[1]
    return (o_all.reshape(q.shape),
            lse_all.reshape(hq, b, n).transpose(1, 0, 2).copy())


def ring_attention_mirror_backward(q, k, v, o, lse, dout, world, causal=False,
                                   softmax_scale=None, cu_seqlens=None):
    """(dq, dk, dv) of ring_attention_mirror's forward, rank by rank as
    fa2.distributed computes them: rank r keeps dq of its rows; the K/V of
    rank s travels the ring with a dK/dV accumulator that each rank it
    visits adds its chunk pair's gradient to (in ring order: s, s+1, ...)
    and that returns to s after R steps. Every chunk pair's backward uses
    the forward's final o and lse (so D = rowsum(dO o) and P = exp(S - lse)
    are the whole row's)."""
    import fa2
    q2, k2, v2, cu, shape = _packed(q, k, v, cu_seqlens)
    o2, do2 = (x.reshape(q2.shape) for x in (o, dout))
    hq = q2.shape[1]
    lse2 = (lse.reshape(hq, -1) if shape is None
            else lse.transpose(1, 0, 2).reshape(hq, -1))
    zz = ZigZag(cu, world)
    dq = np.zeros(q2.shape, np.float32)
    dk_acc = [np.zeros((len(zz.index[s]),) + k2.shape[1:], np.float32)
              for s in range(world)]
    dv_acc = [np.zeros_like(a) for a in dk_acc]
    for t in range(world):  # ring steps: at step t rank r holds (r - t) mod R
        for r in range(world):
            src = (r - t) % world
            q_rows, cu_q, kv_rows, cu_k, mask = step_plan(zz, r, src, causal)
            gi = _take(zz.index[r], q_rows)
            kg = _take(zz.index[src], kv_rows)
            if len(gi) == 0 or len(kg) == 0:
                continue
            g = fa2.backward(q2[gi], k2[kg], v2[kg], o2[gi],
                             lse2[:, gi].copy(), do2[gi], causal=mask == "causal",
                             softmax_scale=softmax_scale, cu_seqlens_q=cu_q,
                             cu_seqlens_k=cu_k)
            loc = zz.rows[r][1] if q_rows is not None else slice(None)
            dq_r = dq[zz.index[r]]
            dq_r[loc] += g[0]
            dq[zz.index[r]] = dq_r
            kl = slice(None) if kv_rows is None else kv_rows
            dk_acc[src][kl] += g[1]
            dv_acc[src][kl] += g[2]
    dk = np.zeros(k2.shape, np.float32)
    dv = np.zeros(v2.shape, np.float32)
    for s in range(world):
        dk[zz.index[s]] = dk_acc[s]
        dv[zz.index[s]] = dv_acc[s]
    cast = lambda x, like: x.astype(like.dtype).reshape(like.shape)
    return cast(dq, q), cast(dk, k), cast(dv, v)


__all__ = ["merge_lse", "chunk_bounds", "ZigZag", "step_plan", "ring_order",
           "ring_attention_mirror", "ring_attention_mirror_backward", "LOG2E"]
