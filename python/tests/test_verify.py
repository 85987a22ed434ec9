"""fa2.verify and `fa2 verify` catch a broken kernel and pass a correct
one: examples/broken_kernel.py, whose --bug skips the causal boundary tile."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fa2
from fa2.testing import AttentionMismatch, assert_attention_close

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
import broken_kernel  # noqa: E402


def kernel_outputs(bug, seqlen=192):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, seqlen, 2, 64)).astype(np.float16)
               for _ in range(3))
    o, lse = broken_kernel.flash_forward(q, k, v, causal=True, bug=bug)
    return q, k, v, o, lse


def test_the_correct_kernel_passes():
    q, k, v, o, lse = kernel_outputs(bug=False)
    rep = fa2.verify(q, k, v, o, lse=lse, causal=True, block_m=64, block_n=64,
                     fill=float("nan"))
    assert rep.passed, str(rep)
    assert rep.outputs["o"].err <= rep.outputs["o"].bound
    assert "PASS" in str(rep)


def test_the_broken_kernel_fails_and_the_report_names_the_skipped_tile():
    q, k, v, o, lse = kernel_outputs(bug=True)
    rep = fa2.verify(q, k, v, o, lse=lse, causal=True, block_m=64, block_n=64,
                     fill=float("nan"))
    assert not rep.passed and rep.exit_code == 1
    oc = rep.outputs["o"]
    # query block 0 sees only its boundary tile: never written
    assert len(oc.unwritten_rows) == 64 * 2
    assert all(r < 64 for _, r, _ in oc.unwritten_rows)
    # every other query block fails, and the diagnosis names its own
    # diagonal key block as skipped
    assert [b for b, _, _ in rep.blocks] == [0, 1, 2]
    assert rep.diagnosis
    for line in rep.diagnosis:
        qb = int(line.split("query block ")[1].split(":")[0])
        assert "without key block %d " % qb in line and "skipped" in line


def test_a_wrong_element_is_reported_at_its_coordinates():
    q, k, v, o, lse = kernel_outputs(bug=False, seqlen=64)
    o = o.copy()
    o[0, 37, 1, 5] += np.float16(0.5)
    rep = fa2.verify(q, k, v, o, causal=True)
    b, r, h, c, got, want, ulps = rep.outputs["o"].worst[0]
    assert (b, r, h, c) == (0, 37, 1, 5) and ulps > 100
    with pytest.raises(AttentionMismatch):
        assert_attention_close(q, k, v, o, causal=True)


def test_a_nan_row_is_reported():
    q, k, v, o, _ = kernel_outputs(bug=False, seqlen=64)
    o = o.copy()
    o[0, 9, 0, 3] = np.nan
    rep = fa2.verify(q, k, v, o, causal=True)
    assert rep.outputs["o"].nan_rows == [(0, 9, 0)] and not rep.passed


def test_gradients_are_checked_too():
    rng = np.random.default_rng(5)
    q, k, v, do = (rng.standard_normal((1, 48, 2, 16)).astype(np.float32)
                   for _ in range(4))
    o, lse = fa2.forward(q, k, v, causal=True, return_lse=True)
    dq, dk, dv = fa2.backward(q, k, v, o, lse, do, causal=True)
    rep = fa2.verify(q, k, v, o, lse=lse, dout=do, dq=dq, dk=dk, dv=dv,
                     causal=True)
    assert rep.passed, str(rep)
    dk = dk.copy()
    dk[0, 3, 1, :] *= 1.01
    rep = fa2.verify(q, k, v, o, lse=lse, dout=do, dq=dq, dk=dk, dv=dv,
                     causal=True)
    assert not rep.outputs["dk"].passed and rep.outputs["dq"].passed
    assert rep.outputs["dk"].worst[0][:3] == (0, 3, 1)


def fa2_program():
    prog = os.environ.get("FA2_PROG")
    if not prog:
        pytest.skip("FA2_PROG not set (make check sets it)")
    return prog


@pytest.mark.parametrize("bug", [True, False])
def test_fa2_verify_command_exit_status(tmp_path, bug):
    prog = fa2_program()
    q, k, v, o, lse = kernel_outputs(bug=bug)
    for name, x in (("q", q), ("k", k), ("v", v), ("o", o), ("lse", lse)):
        np.save(tmp_path / (name + ".npy"), x)
    r = subprocess.run([prog, "verify", "--causal", "--block", "64,64",
                        "--fill", "nan", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == (1 if bug else 0), r.stdout + r.stderr
    assert ("FAIL" if bug else "PASS") in r.stdout


def test_fa2_verify_command_varlen_gqa_and_gradients(tmp_path):
    prog = fa2_program()
    rng = np.random.default_rng(9)
    cu = np.array([0, 5, 5, 40], np.int32)
    q = rng.standard_normal((40, 4, 16)).astype(np.float32)
    k, v, do = (rng.standard_normal((40, 2, 16)).astype(np.float32) for _ in range(3))
    do = rng.standard_normal((40, 4, 16)).astype(np.float32)
    o, lse = fa2.forward(q, k, v, causal=True, return_lse=True,
                         cu_seqlens_q=cu, cu_seqlens_k=cu)
    dq, dk, dv = fa2.backward(q, k, v, o, lse, do, causal=True,
                              cu_seqlens_q=cu, cu_seqlens_k=cu)
    arrays = dict(q=q, k=k, v=v, o=o, lse=lse, dout=do, dq=dq, dk=dk, dv=dv,
                  cu_seqlens_q=cu, cu_seqlens_k=cu)
    for name, x in arrays.items():
        np.save(tmp_path / (name + ".npy"), x)
    r = subprocess.run([prog, "verify", "--causal", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    dv = dv.copy()
    dv[30, 1, 2] += 0.5
    np.save(tmp_path / "dv.npy", dv)
    r = subprocess.run([prog, "verify", "--causal", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "(0, 30, 1, 2)" in r.stdout   # packed row 30 of dv, head 1, col 2


def test_gqa_window_and_varlen_outputs_of_the_mirror_pass():
    rng = np.random.default_rng(11)
    cu_q = np.array([0, 30, 31, 70], np.int32)
    cu_k = np.array([0, 40, 50, 90], np.int32)
    q = rng.standard_normal((70, 4, 32)).astype(np.float16)
    k, v = (rng.standard_normal((90, 1, 32)).astype(np.float16) for _ in range(2))
    kw = dict(causal=True, window_size=(7, 0), cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)
    o, lse = fa2.forward(q, k, v, return_lse=True, block_m=16, block_n=16, **kw)
    rep = fa2.verify(q, k, v, o, lse=lse, block_m=16, block_n=16, **kw)
    assert rep.passed, str(rep)
    # the same tiling as the mirror: bit for bit
    assert rep.outputs["o"].mirror_err == 0.0
    # a row of sequence 2 shifted: reported in that sequence's coordinates
    o = o.copy()
    o[31 + 5, 2, :] += np.float16(0.25)
    rep = fa2.verify(q, k, v, o, lse=lse, block_m=16, block_n=16, **kw)
    assert not rep.passed
    assert rep.outputs["o"].worst[0][:3] == (2, 5, 2)


@pytest.mark.parametrize("bug", [True, False])
def test_python_m_fa2_verify_exit_status_and_diagnosis(tmp_path, bug):
    from fa2.__main__ import main
    q, k, v, o, lse = kernel_outputs(bug=bug)
    for name, x in (("q", q), ("k", k), ("v", v), ("o", o), ("lse", lse)):
        np.save(tmp_path / (name + ".npy"), x)
    rc = main(["verify", "--causal", "--block", "64,64", "--fill", "nan",
               str(tmp_path)])
    assert rc == (1 if bug else 0)
