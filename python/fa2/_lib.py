"""_lib.py — finding and loading libfa2, and the ctypes mirrors of the C
structs of lib/fa2.h.

The structs below must match the header field for field. They are not
trusted to: tests/layout.c prints sizeof and offsetof of every struct the
header declares and python/tests/test_layout.py compares them with these
(built and run by `make check`), so a field added to the header without
its twin here fails the build's tests.

The library is looked for, in order, at:
  1. $FA2_LIB (a path to libfa2.so);
  2. a build tree in the source tree this package is in, or was installed
     from by pip (fa2/_source.py): lib/.libs (the README's in-tree build),
     build*/lib/.libs, _build/lib/.libs;
  3. the directory `make install` recorded (fa2/_config.py, when installed
     that way);
  4. `pkg-config --variable=libdir fa2` (an installed fa2.pc);
  5. the system's loader path (libfa2.so.0).
"""
import ctypes
import ctypes.util
import glob
import os
import subprocess

FA2_OK = 0
STATUS_NAMES = (
    "FA2_OK", "FA2_ERR_NULL_POINTER", "FA2_ERR_INVALID_ARGUMENT",
    "FA2_ERR_DTYPE", "FA2_ERR_SHAPE", "FA2_ERR_STRIDE", "FA2_ERR_HEAD_DIM",
    "FA2_ERR_OVERLAP", "FA2_ERR_SEQLENS", "FA2_ERR_ALIGNMENT",
    "FA2_ERR_OUT_OF_MEMORY", "FA2_ERR_NOT_BUILT", "FA2_ERR_NO_DEVICE",
    "FA2_ERR_DEVICE_POINTER", "FA2_ERR_CUDA", "FA2_ERR_UNSUPPORTED",
    "FA2_ERR_INTERNAL", "FA2_ERR_BLOCK_TABLE", "FA2_ERR_CACHE_SEQLENS")
DTYPE_FP32, DTYPE_FP16, DTYPE_BF16 = 0, 1, 2
BACKENDS = {"oracle": 0, "standard": 1, "tiled": 2, "cuda": 3}
PASS_FWD, PASS_BWD = 0, 1


class Tensor(ctypes.Structure):
    """fa2_tensor"""
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("shape", ctypes.c_int64 * 4), ("stride", ctypes.c_int64 * 4)]


class FwdArgs(ctypes.Structure):
    """fa2_fwd_args"""
    _fields_ = [("q", Tensor), ("k", Tensor), ("v", Tensor), ("o", Tensor),
                ("lse", Tensor),
                ("softmax_scale", ctypes.c_float), ("causal", ctypes.c_int),
                ("window_left", ctypes.c_int64), ("window_right", ctypes.c_int64),
                ("cu_seqlens_q", ctypes.c_void_p), ("cu_seqlens_k", ctypes.c_void_p),
                ("num_seqs", ctypes.c_int64),
                ("max_seqlen_q", ctypes.c_int64), ("max_seqlen_k", ctypes.c_int64),
                ("block_m", ctypes.c_int), ("block_n", ctypes.c_int),
                ("num_threads", ctypes.c_int), ("stream", ctypes.c_void_p),
                ("softcap", ctypes.c_float),
                ("alibi_slopes", ctypes.c_void_p), ("alibi_batch_stride", ctypes.c_int64),
                ("sinks", ctypes.c_void_p), ("dropout_p", ctypes.c_float),
                ("dropout_seed", ctypes.c_uint64), ("dropout_offset", ctypes.c_uint64),
                ("dropout_mask", ctypes.c_void_p)]


class BwdArgs(ctypes.Structure):
    """fa2_bwd_args"""
    _fields_ = [("q", Tensor), ("k", Tensor), ("v", Tensor), ("o", Tensor),
                ("lse", Tensor), ("dout", Tensor),
                ("dq", Tensor), ("dk", Tensor), ("dv", Tensor),
                ("softmax_scale", ctypes.c_float), ("causal", ctypes.c_int),
                ("window_left", ctypes.c_int64), ("window_right", ctypes.c_int64),
                ("cu_seqlens_q", ctypes.c_void_p), ("cu_seqlens_k", ctypes.c_void_p),
                ("num_seqs", ctypes.c_int64),
                ("max_seqlen_q", ctypes.c_int64), ("max_seqlen_k", ctypes.c_int64),
                ("block_m", ctypes.c_int), ("block_n", ctypes.c_int),
                ("deterministic", ctypes.c_int), ("num_threads", ctypes.c_int),
                ("stream", ctypes.c_void_p),
                ("workspace", ctypes.c_void_p), ("workspace_bytes", ctypes.c_size_t),
                ("softcap", ctypes.c_float),
                ("alibi_slopes", ctypes.c_void_p), ("alibi_batch_stride", ctypes.c_int64),
                ("sinks", ctypes.c_void_p), ("dropout_p", ctypes.c_float),
                ("dropout_seed", ctypes.c_uint64), ("dropout_offset", ctypes.c_uint64),
                ("dsinks", ctypes.c_void_p)]


class KvcacheArgs(ctypes.Structure):
    """fa2_kvcache_args"""
    _fields_ = [("q", Tensor), ("k_cache", Tensor), ("v_cache", Tensor),
                ("block_table", ctypes.c_void_p), ("max_pages", ctypes.c_int64),
                ("block_table_stride", ctypes.c_int64),
                ("cache_seqlens", ctypes.c_void_p),
                ("k_new", Tensor), ("v_new", Tensor), ("o", Tensor), ("lse", Tensor),
                ("softmax_scale", ctypes.c_float), ("causal", ctypes.c_int),
                ("window_left", ctypes.c_int64), ("window_right", ctypes.c_int64),
                ("num_splits", ctypes.c_int), ("block_n", ctypes.c_int),
                ("key_warps", ctypes.c_int),
                ("num_threads", ctypes.c_int), ("stream", ctypes.c_void_p),
                ("workspace", ctypes.c_void_p), ("workspace_bytes", ctypes.c_size_t)]


class TileConfig(ctypes.Structure):
    """fa2_tile_config"""
    _fields_ = [("block_m", ctypes.c_int), ("block_n", ctypes.c_int),
                ("warps", ctypes.c_int), ("head_dim", ctypes.c_int)]


class Traffic(ctypes.Structure):
    """fa2_traffic"""
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("q_bytes", "k_bytes", "v_bytes", "o_bytes", "lse_bytes",
                 "read_bytes", "written_bytes", "k_new_bytes", "v_new_bytes",
                 "k_cache_written_bytes", "v_cache_written_bytes",
                 "o_partial_written_bytes", "lse_partial_written_bytes",
                 "o_partial_read_bytes", "lse_partial_read_bytes")]


# The ctypes twin of each C struct, by the C name; test_layout.py walks it.
STRUCTS = {"fa2_tensor": Tensor, "fa2_fwd_args": FwdArgs,
           "fa2_bwd_args": BwdArgs, "fa2_kvcache_args": KvcacheArgs,
           "fa2_tile_config": TileConfig,
           "fa2_traffic": Traffic}


class Fa2Error(RuntimeError):
    """A libfa2 call returned a status other than FA2_OK: .status is its
    name ("FA2_ERR_SHAPE"), the message fa2_last_error()'s sentence."""

    def __init__(self, status, message):
        super().__init__("%s: %s" % (status, message))
        self.status = status


def _source_roots():
    # python/fa2/_lib.py -> the source tree's root, when run from a checkout
    yield os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        from . import _source  # written by setup.py when pip installs us
        yield _source.SOURCE_ROOT
    except ImportError:
        pass


def _candidates():
    env = os.environ.get("FA2_LIB")
    if env:
        yield env
        return
    for root in _source_roots():
        for pat in ("lib/.libs/libfa2.so", "build-cuda*/lib/.libs/libfa2.so",
                    "build*/lib/.libs/libfa2.so", "_build/lib/.libs/libfa2.so"):
            for hit in sorted(glob.glob(os.path.join(root, pat))):
                yield hit
    try:
        from . import _config  # written by `make install`
        yield os.path.join(_config.LIBDIR, "libfa2.so.0")
    except ImportError:
        pass
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "fa2"],
                                capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if libdir:
            yield os.path.join(libdir, "libfa2.so.0")
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("fa2")
    yield found or "libfa2.so.0"


def find_library():
    """The path (or soname) of the libfa2 this package loads."""
    last = None
    for path in _candidates():
        last = path
        if os.path.sep not in path or os.path.exists(path):
            return path
    return last


_lib = None


def _proto(L, name, restype, *argtypes):
    f = getattr(L, name)
    f.restype = restype
    f.argtypes = list(argtypes)


def lib():
    """The loaded libfa2 (loaded on first use, every prototype declared)."""
    global _lib
    if _lib is not None:
        return _lib
    path = find_library()
    try:
        L = ctypes.CDLL(path)
    except OSError as e:
        raise OSError(
            "fa2: cannot load libfa2 (%s). Build it (README: ./configure && "
            "make), then set FA2_LIB=/path/to/libfa2.so, or `make install` "
            "it." % e) from None
    i, p, c = ctypes.c_int, ctypes.POINTER, ctypes.c_char_p
    _proto(L, "fa2_fwd", i, p(FwdArgs), i)
    _proto(L, "fa2_fwd_check", i, p(FwdArgs), i)
    _proto(L, "fa2_fwd_args_init", None, p(FwdArgs))
    _proto(L, "fa2_fwd_flops", ctypes.c_double, p(FwdArgs))
    _proto(L, "fa2_bwd", i, p(BwdArgs), i)
    _proto(L, "fa2_bwd_check", i, p(BwdArgs), i)
    _proto(L, "fa2_bwd_args_init", None, p(BwdArgs))
    _proto(L, "fa2_bwd_flops", ctypes.c_double, p(BwdArgs))
    _proto(L, "fa2_cuda_bwd_workspace_size", i, p(BwdArgs), p(ctypes.c_size_t))
    _proto(L, "fa2_fwd_kvcache", i, p(KvcacheArgs), i)
    _proto(L, "fa2_fwd_kvcache_check", i, p(KvcacheArgs), i)
    _proto(L, "fa2_kvcache_args_init", None, p(KvcacheArgs))
    _proto(L, "fa2_kvcache_num_splits", i, p(KvcacheArgs), i, p(i))
    _proto(L, "fa2_kvcache_key_warps", i, p(KvcacheArgs), i, p(i))
    _proto(L, "fa2_kvcache_workspace_size", i, p(KvcacheArgs), i, p(ctypes.c_size_t))
    _proto(L, "fa2_last_error", c)
    _proto(L, "fa2_status_str", c, i)
    _proto(L, "fa2_version_string", c)
    _proto(L, "fa2_backend_available", i, i)
    _proto(L, "fa2_backend_name", c, i)
    _proto(L, "fa2_default_num_threads", i)
    _proto(L, "fa2_tile_config_for", i, i, i, i, i, p(TileConfig))
    _proto(L, "fa2_cuda_traffic_reset", i)
    _proto(L, "fa2_cuda_traffic_read", i, p(Traffic))
    _lib = L
    return _lib


def check(status):
    """Raise Fa2Error for a status other than FA2_OK."""
    if status != FA2_OK:
        L = lib()
        raise Fa2Error(L.fa2_status_str(status).decode(),
                       L.fa2_last_error().decode())


def version():
    """The library's version string, e.g. "0.1.0"."""
    return lib().fa2_version_string().decode()


def backend_available(name):
    """True if the backend ("oracle", "standard", "tiled", "cuda") runs here."""
    return lib().fa2_backend_available(BACKENDS[name]) == FA2_OK
