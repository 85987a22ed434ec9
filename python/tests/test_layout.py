"""The ctypes structs of python/fa2/_lib.py have the C header's layout:
the same size, and every field at the same offset with the same size, as
python/tests/layout.c prints them (make check builds it and passes its
path in FA2_LAYOUT_PROG)."""
import ctypes
import os
import subprocess

import pytest

from fa2 import _lib


def _c_layout():
    prog = os.environ.get("FA2_LAYOUT_PROG")
    if not prog:
        pytest.skip("FA2_LAYOUT_PROG not set (make check sets it)")
    out = subprocess.run([prog], check=True, capture_output=True, text=True).stdout
    sizes, fields = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if parts[1] == "sizeof":
            sizes[parts[0]] = int(parts[2])
        else:
            fields.setdefault(parts[0], {})[parts[1]] = (int(parts[2]), int(parts[3]))
    return sizes, fields


def test_every_mirrored_struct_has_the_c_size():
    sizes, _ = _c_layout()
    for name, cls in _lib.STRUCTS.items():
        assert ctypes.sizeof(cls) == sizes[name], name


def test_every_field_has_the_c_offset_and_size():
    _, fields = _c_layout()
    for name, cls in _lib.STRUCTS.items():
        py = {f: (getattr(cls, f).offset, getattr(cls, f).size)
              for f, _ in cls._fields_}
        assert py == fields[name], name


def test_enums_are_int_sized():
    sizes, _ = _c_layout()
    assert sizes["fa2_dtype"] == ctypes.sizeof(ctypes.c_int)
