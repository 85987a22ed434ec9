#!/bin/sh
# pack_run.sh — gather what a GPU call needs from the build trees into one
# small git-ignored folder (build-run/), to pass to the device tool's carry:
#   lib/libfa2.so.0, test_cuda_fwd, fa2   from BUILD (default build-cuda)
#   traffic/libfa2.so.0, traffic/test_cuda_fwd   from build-traffic, if built
#   tune-NAME/libfa2.so.0                 from build-tune-NAME, if built
#   fallback/                             libgfortran/libquadmath (OpenBLAS's)
set -e
BUILD=${BUILD:-build-cuda}
RUN=${RUN:-build-run}
rm -rf "$RUN"
mkdir -p "$RUN/lib" "$RUN/fallback"
cp -L "$BUILD/lib/.libs/libfa2.so.0" "$RUN/lib/"
cp "$BUILD/tests/gpu/.libs/test_cuda_fwd" "$RUN/" 2>/dev/null ||
    cp "$BUILD/tests/gpu/test_cuda_fwd" "$RUN/"
cp "$BUILD/tools/.libs/fa2" "$RUN/" 2>/dev/null || cp "$BUILD/tools/fa2" "$RUN/" 2>/dev/null || true
cp "$BUILD/tests/gpu/.libs/test_cuda_bwd" "$RUN/" 2>/dev/null || cp "$BUILD/tests/gpu/test_cuda_bwd" "$RUN/" 2>/dev/null || true
if [ -e build-traffic/lib/.libs/libfa2.so.0 ]; then
    mkdir -p "$RUN/traffic"
    cp -L build-traffic/lib/.libs/libfa2.so.0 "$RUN/traffic/"
    cp build-traffic/tests/gpu/.libs/test_cuda_fwd "$RUN/traffic/" 2>/dev/null ||
        cp build-traffic/tests/gpu/test_cuda_fwd "$RUN/traffic/"
    cp build-traffic/tests/gpu/test_cuda_bwd "$RUN/traffic/" 2>/dev/null || true
fi
for t in build-tune-*; do
    [ -e "$t/lib/.libs/libfa2.so.0" ] || continue
    mkdir -p "$RUN/tune-${t#build-tune-}"
    cp -L "$t/lib/.libs/libfa2.so.0" "$RUN/tune-${t#build-tune-}/"
done
for l in libgfortran.so.5 libquadmath.so.0 libopenblas.so.0; do
    cp -L "/lib/x86_64-linux-gnu/$l" "$RUN/fallback/" 2>/dev/null || true
done
# the CPU suites that exercise the tile micro-kernels (run on the GPU host
# too, whose CPU may have instructions this one lacks: FA2_CPU_KERNEL)
mkdir -p "$RUN/cpu"
for t in test_cpu_kernels test_fwd_cases test_bwd; do
    cp "$BUILD/tests/$t" "$RUN/cpu/" 2>/dev/null || true
done
du -sh "$RUN"
