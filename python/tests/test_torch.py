"""fa2 on torch tensors (skipped without torch): the CPU path with autograd
against the numpy path, and python/fa2.py's helpers still reachable."""
import numpy as np
import pytest

import fa2

torch = pytest.importorskip("torch")


def test_torch_cpu_attention_has_autograd_and_matches_numpy():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 40, 2, 16, generator=g, requires_grad=True)
               for _ in range(3))
    o = fa2.attention(q, k, v, causal=True)
    o.sum().backward()
    want = fa2.forward(q.detach().numpy(), k.detach().numpy(),
                       v.detach().numpy(), causal=True)
    assert np.abs(o.detach().numpy() - want).max() < 1e-6
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_flash_attn_func_on_torch():
    from fa2.flash_attn_interface import flash_attn_func
    q = torch.randn(1, 32, 2, 16)
    o = flash_attn_func(q, q, q, causal=True)
    assert o.shape == q.shape


def test_python_fa2_py_helpers_are_still_there():
    for name in ("make_args", "run", "make_bwd_args", "run_bwd", "tile_config",
                 "traffic_reset", "traffic_read", "lib", "version",
                 "_find_library"):
        assert callable(getattr(fa2, name)), name
