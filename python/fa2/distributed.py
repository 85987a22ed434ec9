"""fa2.distributed — ring attention (context parallelism) on torch.distributed.

Each of the R ranks of a process group holds its zig-zag share of every
sequence (chunks r and 2R-1-r of 2R, fa2.ring.ZigZag): q, k and v of those
tokens. ring_attention() passes the K/V shares around the ring (rank r
sends to r + 1), computes at each step the chunk pair fa2.ring.step_plan
names with fa2's attention (CUDA kernels for CUDA tensors, the tiled CPU
mirror for CPU tensors), and merges the partial (O, LSE) into its running
result with fa2.ring.merge_lse (lib/fa2_kvcache.h's merge) in ring order,
so that every run, and fa2.ring.ring_attention_mirror on one CPU, merges
the same parts in the same order. The transfer of the next K/V is posted
before the step's attention and waited for after it (overlap).

The backward keeps dQ local and sends a dK/dV accumulator (float32) along
with each K/V share: each rank adds its chunk pair's gradient, computed
from the forward's final O and LSE, and after R steps the accumulator is
back at its owner. NCCL (GPUs) and gloo (CPU tensors) both work.

    import torch.distributed as dist, fa2.distributed as fd
    q_loc = fd.shard(q, rank, world)      # [B, N/R, H, d]: 2R must divide N
    o_loc = fd.ring_attention(q_loc, k_loc, v_loc, causal=True)
    o = fd.unshard([...all ranks' o_loc...], world)
"""
from . import ring as _ring


def _torch():
    import torch
    return torch


# ---- sharding --------------------------------------------------------------

def _cu_fixed(batch, seqlen):
    return [b * seqlen for b in range(batch + 1)]


def shard(x, rank, world, cu_seqlens=None):
    """Rank `rank`'s zig-zag share of a whole tensor: x [B, N, H, d] (2R
    must divide N; the share is [B, N/R, H, d]) or packed [total, H, d]
    with cu_seqlens (the share is [local total, H, d], sequence by
    sequence)."""
    torch = _torch()
    if cu_seqlens is None:
        b, n = x.shape[0], x.shape[1]
        if n % (2 * world):
            raise ValueError("seqlen %d is not a multiple of 2 x %d ranks "
                             "(pass packed tensors with cu_seqlens)" % (n, world))
        zz = _ring.ZigZag(_cu_fixed(b, n), world)
        idx = torch.as_tensor(zz.index[rank], device=x.device)
        flat = x.reshape((b * n,) + tuple(x.shape[2:]))
        return flat.index_select(0, idx).reshape((b, n // world) + tuple(x.shape[2:]))
    zz = _ring.ZigZag(_cpu_list(cu_seqlens), world)
    return x.index_select(0, torch.as_tensor(zz.index[rank], device=x.device))


def unshard(parts, world, cu_seqlens=None):
    """The whole tensor from every rank's share (shard's inverse)."""
    torch = _torch()
    p0 = parts[0]
    if cu_seqlens is None:
        b, n = p0.shape[0], p0.shape[1] * world
        zz = _ring.ZigZag(_cu_fixed(b, n), world)
        flat = [p.reshape((-1,) + tuple(p.shape[2:])) for p in parts]
    else:
        zz = _ring.ZigZag(_cpu_list(cu_seqlens), world)
        flat = list(parts)
    total = sum(f.shape[0] for f in flat)
    out = p0.new_empty((total,) + tuple(flat[0].shape[1:]))
    for r, f in enumerate(flat):
        out[torch.as_tensor(zz.index[r], device=out.device)] = f
    if cu_seqlens is None:
        return out.reshape((b, n) + tuple(p0.shape[2:]))
    return out


def _cpu_list(cu):
    if hasattr(cu, "tolist"):
        return [int(x) for x in cu.tolist()]
    return [int(x) for x in cu]


# ---- one chunk pair -----------------------------------------------------------

class _Ctx:
    """What one call needs: the group, ranks, plan and index tensors."""

    def __init__(self, group, cu_global, device, causal, scale):
        import torch.distributed as dist
        torch = _torch()
        self.group = group
        self.world = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.causal, self.scale = causal, scale
        self.zz = _ring.ZigZag(cu_global, self.world)
        self.device = device
        as_idx = lambda a: torch.as_tensor(a, device=device)
        as_cu = lambda a: torch.as_tensor(a, dtype=torch.int32, device=device)
        self.plans = []
        for src in _ring.ring_order(self.rank, self.world):
            q_rows, cu_q, kv_rows, cu_k, mask = _ring.step_plan(
                self.zz, self.rank, src, causal)
            nq = len(self.zz.index[self.rank]) if q_rows is None else len(q_rows)
            nk = len(self.zz.index[src]) if kv_rows is None else len(kv_rows)
            self.plans.append(dict(
                src=src, q_rows=None if q_rows is None else as_idx(q_rows),
                kv_rows=None if kv_rows is None else as_idx(kv_rows),
                cu_q=as_cu(cu_q), cu_k=as_cu(cu_k), mask=mask, nq=nq, nk=nk,
                max_q=self.zz.max_len(cu_q), max_k=self.zz.max_len(cu_k)))

    def peer(self, offset):
        import torch.distributed as dist
        r = (self.rank + offset) % self.world
        return dist.get_global_rank(self.group, r) if self.group is not None else r

    def local_len(self, src):
        return len(self.zz.index[src])


def _take(x, rows):
    return x if rows is None else x.index_select(0, rows)


def _exchange(ctx, send, recv_like):
    """Post the ring transfer: each tensor of `send` to rank + 1, the
    matching tensors shaped `recv_like` (shape, dtype) from rank - 1.
    Returns (received tensors, requests to wait on)."""
    import torch.distributed as dist
    torch = _torch()
    recv = [torch.empty(s, dtype=dt, device=ctx.device) for s, dt in recv_like]
    ops = [dist.P2POp(dist.isend, t.contiguous(), ctx.peer(1), ctx.group)
           for t in send]
    ops += [dist.P2POp(dist.irecv, t, ctx.peer(-1), ctx.group) for t in recv]
    return recv, (dist.batch_isend_irecv(ops), ops)  # ops keep the buffers alive


def _wait(reqs):
    for r in (reqs[0] if reqs else ()):
        r.wait()


def _forward(ctx, q, k, v):
    import fa2
    torch = _torch()
    hq = q.shape[1]
    o = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
    lse = torch.full((q.shape[0], hq), float("inf"), dtype=torch.float32,
                     device=q.device)
    kv = (k, v)
    for t, p in enumerate(ctx.plans):
        reqs = []
        if t + 1 < ctx.world:
            nxt = ctx.local_len(ctx.plans[t + 1]["src"])
            like = [((nxt,) + tuple(x.shape[1:]), x.dtype) for x in kv]
            nkv, reqs = _exchange(ctx, kv, like)
        if p["nq"] and p["nk"]:
            qs = _take(q, p["q_rows"])
            ks, vs = (_take(x, p["kv_rows"]) for x in kv)
            po, plse = fa2.forward(qs, ks, vs, causal=p["mask"] == "causal",
                                   softmax_scale=ctx.scale, return_lse=True,
                                   cu_seqlens_q=p["cu_q"], cu_seqlens_k=p["cu_k"],
                                   max_seqlen_q=p["max_q"], max_seqlen_k=p["max_k"])
            plse = plse.reshape(hq, -1).t()
            rows = p["q_rows"]
            if rows is None:
                o, lse = _ring.merge_lse(torch, [lse, plse], [o, po.float()])
            else:
                mo, ml = _ring.merge_lse(torch, [lse[rows], plse],
                                         [o[rows], po.float()])
                o[rows], lse[rows] = mo, ml
        _wait(reqs)
        if t + 1 < ctx.world:
            kv = tuple(nkv)
    return o, lse


def _backward(ctx, q, k, v, o, lse, do):
    import fa2
    torch = _torch()
    f32 = torch.float32
    dq = torch.zeros(q.shape, dtype=f32, device=q.device)
    kv = (k, v)
    acc = (torch.zeros(k.shape, dtype=f32, device=k.device),
           torch.zeros(v.shape, dtype=f32, device=v.device))
    acc_reqs = []
    for t, p in enumerate(ctx.plans):
        kv_reqs = []
        if t + 1 < ctx.world:  # the next K/V, while this step computes
            nxt = ctx.local_len(ctx.plans[t + 1]["src"])
            like = [((nxt,) + tuple(x.shape[1:]), x.dtype) for x in kv]
            nkv, kv_reqs = _exchange(ctx, kv, like)
        g = None
        if p["nq"] and p["nk"]:
            rows = p["q_rows"]
            ks, vs = (_take(x, p["kv_rows"]) for x in kv)
            g = fa2.backward(_take(q, rows), ks, vs, _take(o, rows),
                             _take(lse, rows).t().contiguous().unsqueeze(0),
                             _take(do, rows), causal=p["mask"] == "causal",
                             softmax_scale=ctx.scale, cu_seqlens_q=p["cu_q"],
                             cu_seqlens_k=p["cu_k"], max_seqlen_q=p["max_q"],
                             max_seqlen_k=p["max_k"])
            if rows is None:
                dq += g[0]
            else:
                dq.index_add_(0, rows, g[0].to(f32))
        _wait(acc_reqs)  # this K/V's accumulator, from the rank before
        if g is not None:
            kr = p["kv_rows"]
            if kr is None:
                acc[0].add_(g[1])
                acc[1].add_(g[2])
            else:
                acc[0].index_add_(0, kr, g[1].to(f32))
                acc[1].index_add_(0, kr, g[2].to(f32))
        # pass the accumulator on with its K/V (the last hop: to its owner)
        nxt_len = ctx.local_len(ctx.plans[t + 1]["src"]) if t + 1 < ctx.world \
            else k.shape[0]
        like = [((nxt_len,) + tuple(x.shape[1:]), f32) for x in acc]
        if ctx.world > 1:
            acc, acc_reqs = _exchange(ctx, acc, like)
        _wait(kv_reqs)
        if t + 1 < ctx.world:
            kv = tuple(nkv)
    _wait(acc_reqs)
    return dq, acc[0], acc[1]


def _function():
    torch = _torch()

    class RingAttention(torch.autograd.Function):
        @staticmethod
        def forward(fctx, q, k, v, causal, scale, cu_global, group):
            ctx = _Ctx(group, cu_global, q.device, causal, scale)
            o, lse = _forward(ctx, q, k, v)
            o = o.to(q.dtype)
            fctx.save_for_backward(q, k, v, o, lse)
            fctx.ring = ctx
            lse_out = lse.t().contiguous()
            fctx.mark_non_differentiable(lse_out)
            return o, lse_out

        @staticmethod
        def backward(fctx, do, dlse):
            q, k, v, o, lse = fctx.saved_tensors
            if do.stride(-1) != 1:
                do = do.contiguous()
            dq, dk, dv = _backward(fctx.ring, q, k, v, o, lse, do)
            return (dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype),
                    None, None, None, None)

    return RingAttention


_FN = None


def ring_attention(q, k, v, causal=False, softmax_scale=None, cu_seqlens=None,
                   group=None, return_lse=False):
    """Attention of this rank's zig-zag share of the queries over every
    rank's keys, with autograd. q [B, N/R, Hq, d] and k/v [B, N/R, Hkv, d]
    (this rank's share, fa2.distributed.shard; the global seqlen is N), or
    packed [local total, H, d] shares with cu_seqlens the *global* int32
    offsets of the sequences (the same on every rank; each sequence is cut
    into 2R chunks). Returns o like q (and lse float32 [Hq, local rows] with
    return_lse). group: the process group (None: the default)."""
    global _FN
    if _FN is None:
        _FN = _function()
    import torch.distributed as dist
    world = dist.get_world_size(group)
    shape = None
    if cu_seqlens is None:
        shape = q.shape
        b, n = q.shape[0], q.shape[1] * world
        cu = _cu_fixed(b, n)
        q, k, v = (x.reshape((-1,) + tuple(x.shape[2:])) for x in (q, k, v))
    else:
        cu = _cpu_list(cu_seqlens)
    o, lse = _FN.apply(q, k, v, bool(causal),
                      None if softmax_scale is None else float(softmax_scale),
                      cu, group)
    if shape is not None:
        o = o.reshape(shape)
    return (o, lse) if return_lse else o


__all__ = ["ring_attention", "shard", "unshard"]
