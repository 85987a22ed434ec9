#!/bin/sh
# pack_run.sh — gather what a GPU call needs from the build trees into one
# small git-ignored folder (build-run/), to pass to the device tool's carry:
#   lib/libfa2.so.0, test_cuda_fwd, fa2   from BUILD (default build-cuda)
#   traffic/libfa2.so.0, traffic/test_cuda_{fwd,bwd,kvcache}   from
#                                         build-traffic, if built
#   tune-NAME/libfa2.so.0                 from build-tune-NAME, if built
#   fallback/                             libgfortran/libquadmath (OpenBLAS's)
set -e
BUILD=${BUILD:-build-cuda}
RUN=${RUN:-build-run}
rm -rf "$RUN"
mkdir -p "$RUN/lib" "$RUN/fallback"
cp -L "$BUILD/lib/.libs/libfa2.so.0" "$RUN/lib/"
. "$(dirname "$0")/pack_lib.sh"
copy_tests "$BUILD" "$RUN" test_cuda_fwd test_cuda_bwd test_cuda_kvcache
cp "$BUILD/tools/.libs/fa2" "$RUN/" 2>/dev/null || cp "$BUILD/tools/fa2" "$RUN/" 2>/dev/null || true
if [ -e build-traffic/lib/.libs/libfa2.so.0 ]; then
    mkdir -p "$RUN/traffic"
    cp -L build-traffic/lib/.libs/libfa2.so.0 "$RUN/traffic/"
    copy_tests build-traffic "$RUN/traffic" test_cuda_fwd test_cuda_bwd test_cuda_kvcache
fi
for t in build-tune-*; do
    [ -e "$t/lib/.libs/libfa2.so.0" ] || continue
    mkdir -p "$RUN/tune-${t#build-tune-}"
    cp -L "$t/lib/.libs/libfa2.so.0" "$RUN/tune-${t#build-tune-}/"
done
for l in libgfortran.so.5 libquadmath.so.0; do
    cp -L "/lib/x86_64-linux-gnu/$l" "$RUN/fallback/" 2>/dev/null || true
done
# the CPU suites that exercise the tile micro-kernels (run on the GPU host
# too, whose CPU may have instructions this one lacks: FA2_CPU_KERNEL)
mkdir -p "$RUN/cpu"
for t in test_cpu_kernels test_fwd_cases test_bwd; do
    cp "$BUILD/tests/$t" "$RUN/cpu/" 2>/dev/null || true
done
# one xz archive (the fat binaries compress about 10x): what travels is
# $RUN/run.tar.xz, which bench/device_run.sh unpacks in place
strip "$RUN"/test_* "$RUN"/fa2 "$RUN"/traffic/test_* "$RUN"/cpu/* 2>/dev/null || true
tar cJf /tmp/fa2-run.tar.xz -C "$RUN" .
rm -rf "$RUN" && mkdir -p "$RUN" && mv /tmp/fa2-run.tar.xz "$RUN/run.tar.xz"
du -sh "$RUN"
