#!/usr/bin/env python3
"""test_train.py — train a small causal transformer with fa2.attention and
with PyTorch SDPA, from the same seed on the same data, and check that

  1. both losses decrease substantially and track each other: the trailing
     means (over --window steps) of the two runs differ by less than --tol
     (relative) at every logged step;
  2. for one batch of the trained model, the gradients of q, k, v through
     fa2.attention agree with the float64 reference (SDPA's math backend on
     the same rounded inputs) within doc/design.md's bound: max error <= 2 x the
     max error of standard attention computed in the same low precision
     + a floor of one unit roundoff of the gradient's magnitude + the
     change of the float64 gradients when D = rowsum(dO o O) uses the
     forward's rounded O (FA2's backward does; it matters where dS =
     P (dP - D) cancels, e.g. nearly uniform attention); for fp16 and bf16,
     each attention layer's real q/k/v and upstream gradient. (SDPA's math
     backend upcasts half inputs to float32 internally, so the explicit
     standard attention in the dtype is the yardstick; both are printed.)
  3. with dropout and softcap (--mods-dropout, --mods-softcap), fa2's
     training run tracks an eager PyTorch implementation of the same maths
     fed fa2's own dropout pattern (its kept-mask output), as in 1.

The model: token + position embeddings, --layers pre-LN blocks (causal
self-attention with --heads heads of dim d_model/heads, GELU MLP 4x), tied
output head; float32 weights, the attention's inputs cast to --dtype (no
autocast) and its output cast back. The task: each sequence is a segment
drawn from a fixed sparse Markov chain, repeated with a random period, so
the loss falls first by learning the chain's bigrams, then by copying.

    FA2_LIB=build/lib/.libs/libfa2.so.0 python3 python/test_train.py [--steps 300]

Exit 0 pass, 1 fail, 77 skip (no torch, no CUDA device, or a libfa2
without the CUDA backend). --device cpu runs everything on the CPU (fa2's
tiled mirror), slowly: a smoke test of the script itself.
"""
import argparse
import math
import os
import sys
import time

SKIP = 77

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tol", type=float, default=0.05,
                    help="largest relative difference of the trailing means")
    ap.add_argument("--window", type=int, default=25)
    ap.add_argument("--min-drop", type=float, default=0.5,
                    help="final trailing mean must be under this x the first loss")
    ap.add_argument("--no-fp32", action="store_true",
                    help="skip the informational float32 SDPA run")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--mods-dropout", type=float, default=0.1,
                    help="the modifiers run: dropout probability")
    ap.add_argument("--mods-softcap", type=float, default=5.0,
                    help="the modifiers run: logit soft-cap")
    ap.add_argument("--mods-steps", type=int, default=0,
                    help="steps of the modifiers run (0: --steps; -1: skip it)")
    return ap.parse_args()


def main():
    args = parse()
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        print("SKIP: no torch")
        return SKIP
    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return SKIP
    try:
        import fa2
        L = fa2.lib()
    except OSError as e:
        print("SKIP: libfa2 not loadable:", e)
        return SKIP
    if args.device == "cuda" and L.fa2_backend_available(fa2.BACKENDS["cuda"]) != fa2.FA2_OK:
        print("SKIP: this libfa2 has no CUDA backend")
        return SKIP

    dev = torch.device(args.device)
    lowp = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    have_sdpa = hasattr(F, "scaled_dot_product_attention")
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        SDPBackend = sdpa_kernel = None

    # ---- attention implementations: q, k, v [B, N, H, d] -> [B, N, H, d]

    def explicit_attention(q, k, v, causal=True):
        """standard attention in the inputs' precision (S and P rounded)"""
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        s = torch.matmul(qt, kt.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        if causal:
            n, m = s.shape[-2], s.shape[-1]
            keep = torch.ones(n, m, dtype=torch.bool, device=s.device).tril(m - n)
            s = s.masked_fill(~keep, float("-inf"))
        p = torch.softmax(s.float(), dim=-1).to(q.dtype)
        return torch.matmul(p, vt).transpose(1, 2)

    def sdpa(q, k, v, backend=None, causal=True):
        if not have_sdpa:
            return explicit_attention(q, k, v, causal)
        run = lambda: F.scaled_dot_product_attention(  # noqa: E731
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
            is_causal=causal).transpose(1, 2)
        if backend is None or sdpa_kernel is None:
            return run()
        with sdpa_kernel([backend]):
            return run()

    def attn_fa2(q, k, v):
        return fa2.attention(q.to(lowp), k.to(lowp), v.to(lowp), causal=True).float()

    def attn_sdpa(q, k, v):
        return sdpa(q.to(lowp), k.to(lowp), v.to(lowp)).float()

    def attn_sdpa32(q, k, v):
        return sdpa(q, k, v)

    # ---- the model

    class Block(nn.Module):
        def __init__(self, dm, nh):
            super().__init__()
            self.nh = nh
            self.ln1, self.ln2 = nn.LayerNorm(dm), nn.LayerNorm(dm)
            self.qkv = nn.Linear(dm, 3 * dm)
            self.proj = nn.Linear(dm, dm)
            self.fc1, self.fc2 = nn.Linear(dm, 4 * dm), nn.Linear(4 * dm, dm)

        def forward(self, x, attn):
            b, n, dm = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.nh, dm // self.nh).unbind(2)
            x = x + self.proj(attn(q, k, v).reshape(b, n, dm))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(args.vocab, args.d_model)
            self.pos = nn.Embedding(args.seqlen, args.d_model)
            self.blocks = nn.ModuleList(Block(args.d_model, args.heads)
                                        for _ in range(args.layers))
            self.ln = nn.LayerNorm(args.d_model)
            nn.init.normal_(self.tok.weight, std=0.02)
            nn.init.normal_(self.pos.weight, std=0.02)

        def forward(self, idx, attn):
            x = self.tok(idx) + self.pos.weight[: idx.shape[1]]
            for blk in self.blocks:
                x = blk(x, attn)
            return self.ln(x) @ self.tok.weight.t()

    # ---- the data: fixed for every run

    gen = torch.Generator().manual_seed(args.seed)
    V, N = args.vocab, args.seqlen
    succ = torch.randint(0, V, (V, 4), generator=gen)          # 4 successors each
    succ_p = torch.tensor([0.55, 0.25, 0.15, 0.05])

    def make_batch():
        out = torch.empty(args.batch, N + 1, dtype=torch.long)
        for b in range(args.batch):
            period = int(torch.randint(N // 8, N // 3, (1,), generator=gen))
            seg = torch.empty(period, dtype=torch.long)
            seg[0] = torch.randint(0, V, (1,), generator=gen)
            pick = torch.multinomial(succ_p, period, replacement=True, generator=gen)
            for i in range(1, period):
                seg[i] = succ[seg[i - 1], pick[i]]
            out[b] = seg.repeat(N // period + 2)[: N + 1]
        return out

    batches = [make_batch() for _ in range(args.steps)]
    check_batch = make_batch()

    torch.manual_seed(args.seed)
    init_state = {k: v.clone() for k, v in Model().state_dict().items()}

    state = {"step": 0, "call": 0}  # dropout's seed and offset per call

    def train(attn, name, steps=0):
        torch.manual_seed(args.seed + 1)
        model = Model().to(dev)
        model.load_state_dict(init_state)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                weight_decay=0.01)
        warm = max(1, args.steps // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) *
            (0.5 + 0.5 * math.cos(math.pi * min(s, args.steps) / args.steps)))
        losses = []
        t0 = time.time()
        for step in range(steps or args.steps):
            state["step"], state["call"] = step, 0
            xy = batches[step].to(dev)
            logits = model(xy[:, :-1], attn)
            loss = F.cross_entropy(logits.reshape(-1, V).float(), xy[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                print("%s: loss %r at step %d" % (name, losses[-1], step))
                break
        secs = time.time() - t0
        print("%-12s %d steps in %.1f s (%.1f ms/step), loss %.4f -> %.4f"
              % (name, len(losses), secs, 1e3 * secs / max(1, len(losses)),
                 losses[0], losses[-1]), flush=True)
        return model, losses

    print("torch %s, device %s, libfa2 %s" % (
        torch.__version__,
        torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        fa2.version()))
    print("model: %d layers, d_model %d, %d heads of %d, seqlen %d, batch %d, "
          "vocab %d; attention in %s; %d steps, seed %d"
          % (args.layers, args.d_model, args.heads, args.d_model // args.heads,
             N, args.batch, V, args.dtype, args.steps, args.seed), flush=True)
    model_fa2, l_fa2 = train(attn_fa2, "fa2")
    _, l_sdpa = train(attn_sdpa, "sdpa-" + args.dtype)
    l_32 = None if args.no_fp32 else train(attn_sdpa32, "sdpa-fp32")[1]

    ok = True
    if len(l_fa2) != args.steps or len(l_sdpa) != args.steps:
        print("FAIL: a run stopped early (non-finite loss)")
        return 1

    def trail(ls, i):
        lo = max(0, i + 1 - args.window)
        return sum(ls[lo:i + 1]) / (i + 1 - lo)

    print("\nloss (mean of the last %d steps; raw loss at step 0)" % args.window)
    print("%6s %10s %10s %9s %10s" % ("step", "fa2", "sdpa", "rel diff",
                                      "" if l_32 is None else "sdpa fp32"))
    worst = 0.0
    logged = sorted(set(list(range(0, args.steps, 25)) + [args.steps - 1]))
    for i in logged:
        a, b = trail(l_fa2, i), trail(l_sdpa, i)
        rel = abs(a - b) / max(abs(b), 1e-12)
        worst = max(worst, rel)
        extra = "" if l_32 is None else "%10.4f" % trail(l_32, i)
        print("%6d %10.4f %10.4f %9.2e %s" % (i, a, b, rel, extra))
    first = l_sdpa[0]
    end_a, end_b = trail(l_fa2, args.steps - 1), trail(l_sdpa, args.steps - 1)
    print("largest relative difference %.2e (tolerance %.2e)" % (worst, args.tol))
    if worst >= args.tol:
        print("FAIL: the loss curves do not track each other")
        ok = False
    if abs(l_fa2[0] - l_sdpa[0]) > 1e-2 * abs(l_sdpa[0]):
        print("FAIL: step-0 losses differ: %.6f vs %.6f" % (l_fa2[0], l_sdpa[0]))
        ok = False
    for name, end in (("fa2", end_a), ("sdpa", end_b)):
        if not end < args.min_drop * first:
            print("FAIL: %s loss did not decrease enough: %.4f -> %.4f (need < %.4f)"
                  % (name, first, end, args.min_drop * first))
            ok = False

    # ---- gradients of one batch: the trained model's real q, k, v and dO

    captured = []

    def capture(q, k, v):
        q, k, v = (x.detach().clone() for x in (q, k, v))
        qi, ki, vi = (x.to(lowp).requires_grad_() for x in (q, k, v))
        o = fa2.attention(qi, ki, vi, causal=True)
        entry = {"q": q, "k": k, "v": v}
        o.register_hook(lambda g: entry.__setitem__("do", g.detach().clone()))
        captured.append(entry)
        return o.float()

    xy = check_batch.to(dev)
    logits = model_fa2(xy[:, :-1], capture)
    F.cross_entropy(logits.reshape(-1, V).float(), xy[:, 1:].reshape(-1)).backward()

    def grads_rounded_o(q, k, v, do, o):
        """float64 gradients with D = rowsum(dO o O) taken from the given
        (rounded) O, as FA2's backward does; the rest exact"""
        qt, kt, vt, dot, ot = (x.double().transpose(1, 2) for x in (q, k, v, do, o))
        scale = q.shape[-1] ** -0.5
        s = torch.matmul(qt, kt.transpose(-1, -2)) * scale
        n, m = s.shape[-2], s.shape[-1]
        keep = torch.ones(n, m, dtype=torch.bool, device=s.device).tril(m - n)
        pm = torch.softmax(s.masked_fill(~keep, float("-inf")), dim=-1)
        ds = pm * (torch.matmul(dot, vt.transpose(-1, -2)) -
                   (dot * ot).sum(-1, keepdim=True))
        dq = torch.matmul(ds, kt) * scale
        dk = torch.matmul(ds.transpose(-1, -2), qt) * scale
        dv = torch.matmul(pm.transpose(-1, -2), dot)
        return (None,) + tuple(x.transpose(1, 2) for x in (dq, dk, dv))

    def grads(fn, q, k, v, do):
        q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
        o = fn(q, k, v)
        g = torch.autograd.grad(o, (q, k, v), do.to(o.dtype))
        return (o.detach(),) + tuple(g)

    print("\ngradients of one batch (trained model), max abs error against "
          "SDPA math in float64;\nbound = 2 x max(standard, sdpa math) + u |ref| "
          "+ rounded O (the float64 gradients' change when D = rowsum(dO o O)\n"
          "takes the forward's rounded O, as FA2's backward does: large only "
          "where dS = P (dP - D) cancels)")
    print("%-5s %5s %-3s %10s %10s %10s %10s %10s %10s %10s %10s  %s" % (
        "dtype", "layer", "", "|ref|", "fa2", "standard", "sdpa math",
        "sdpa flash", "sdpa fp32", "rounded O", "bound", ""))
    backends = {}
    if SDPBackend is not None:
        backends = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION}
    # (torch on the CPU may have no float16 matmul: bf16 only there)
    for dt in ((torch.float16, torch.bfloat16) if args.device == "cuda" else (torch.bfloat16,)):
        u = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}[dt]
        for li, c in enumerate(captured):
            # the same rounded inputs for everyone; dO normalised to max 1
            # (gradients are linear in it; keeps fp16 clear of subnormals)
            do = c["do"].float()
            do = (do / do.abs().max()).to(dt)
            q, k, v = (c[n].to(dt) for n in ("q", "k", "v"))
            ref = grads(lambda a, b, e: sdpa(a, b, e, backends.get("math")),
                        q.double(), k.double(), v.double(), do.double())
            ours = grads(lambda a, b, e: fa2.attention(a, b, e, causal=True), q, k, v, do)
            ref_o = grads_rounded_o(q, k, v, do, ours[0])
            std = grads(explicit_attention, q, k, v, do)
            math_lp = grads(lambda a, b, e: sdpa(a, b, e, backends.get("math")), q, k, v, do)
            f32 = grads(lambda a, b, e: sdpa(a, b, e, backends.get("math")),
                        q.float(), k.float(), v.float(), do.float())
            flash = None
            if "flash" in backends and args.device == "cuda":
                try:
                    flash = grads(lambda a, b, e: sdpa(a, b, e, backends["flash"]), q, k, v, do)
                except RuntimeError:
                    flash = None
            for j, name in enumerate(("o", "dq", "dk", "dv")):
                r = ref[j]
                err = lambda x: (x[j].double() - r).abs().max().item()  # noqa: E731
                mag = r.abs().max().item()
                e_ours, e_std, e_math, e_32 = err(ours), err(std), err(math_lp), err(f32)
                e_flash = err(flash) if flash is not None else float("nan")
                e_o = 0.0 if j == 0 else err(ref_o)
                bound = 2 * max(e_std, e_math) + u * mag + e_o
                good = math.isfinite(e_ours) and e_ours <= bound
                ok &= good
                print("%-5s %5d %-3s %10.3e %10.3e %10.3e %10.3e %10.3e %10.3e %10.3e %10.3e  %s" % (
                    str(dt)[6:], li, name, mag, e_ours, e_std, e_math, e_flash, e_32,
                    e_o, bound, "ok" if good else "FAIL"))
    ok &= mods_run(args, torch, F, fa2, dev, lowp, train, state, trail)
    print("\ntest_train:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def mods_run(args, torch, F, fa2, dev, lowp, train, state, trail):
    """3. dropout + softcap: fa2.attention against an eager PyTorch
    implementation of the same maths (doc/algorithm.md section 7) with the
    same dropout pattern, taken from fa2's kept-mask output: s = cap
    tanh(scale q.k / cap), causal, P = softmax(s), O = (P o z / (1 - p)) V.
    Both runs must track each other as in 1."""
    steps = args.steps if args.mods_steps == 0 else args.mods_steps
    if steps <= 0:
        return True
    p, cap = args.mods_dropout, args.mods_softcap

    def seed_offset():
        # a fresh pattern per step and per layer, the same in both runs
        off = state["call"]
        state["call"] += 1
        return args.seed * 100003 + state["step"], off

    def attn_fa2(q, k, v):
        seed, off = seed_offset()
        return fa2.attention(q.to(lowp), k.to(lowp), v.to(lowp), dropout_p=p,
                             causal=True, softcap=cap, seed=seed,
                             offset=off).float()

    def attn_eager(q, k, v):
        seed, off = seed_offset()
        q, k, v = (x.to(lowp) for x in (q, k, v))
        _, keep = fa2.forward(q.detach(), k.detach(), v.detach(), causal=True,
                              softcap=cap, dropout_p=p, dropout_seed=seed,
                              dropout_offset=off, return_dropout_mask=True)
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        s = torch.matmul(qt.float(), kt.float().transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        s = cap * torch.tanh(s / cap)
        n, m = s.shape[-2], s.shape[-1]
        vis = torch.ones(n, m, dtype=torch.bool, device=s.device).tril(m - n)
        prob = torch.softmax(s.masked_fill(~vis, float("-inf")), dim=-1)
        prob = prob * keep.to(prob.dtype) / (1.0 - p)
        return torch.matmul(prob.to(lowp), vt).transpose(1, 2).float()

    print("\nmodifiers: dropout %g and softcap %g, %d steps: fa2 against eager "
          "PyTorch with fa2's dropout pattern" % (p, cap, steps), flush=True)
    try:
        _, l_a = train(attn_fa2, "fa2-mods", steps)
        _, l_b = train(attn_eager, "eager-mods", steps)
    except fa2.Fa2Error as e:
        if "UNSUPPORTED" in str(getattr(e, "status", "")) or "does not implement" in str(e):
            print("SKIP modifiers run: %s" % e)
            return True
        raise
    if len(l_a) != steps or len(l_b) != steps:
        print("FAIL: a modifiers run stopped early (non-finite loss)")
        return False
    worst = max(abs(trail(l_a, i) - trail(l_b, i)) / max(abs(trail(l_b, i)), 1e-12)
                for i in range(steps))
    print("largest relative difference of the trailing means %.2e (tolerance "
          "%.2e); loss %.4f -> %.4f (fa2), %.4f -> %.4f (eager)"
          % (worst, args.tol, l_a[0], trail(l_a, steps - 1), l_b[0],
             trail(l_b, steps - 1)))
    good = worst < args.tol and abs(l_a[0] - l_b[0]) <= 1e-2 * abs(l_b[0])
    if not good:
        print("FAIL: the modifiers runs do not track each other")
    return good


if __name__ == "__main__":
    sys.exit(main())
