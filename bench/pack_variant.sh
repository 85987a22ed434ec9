#!/bin/sh
# pack_variant.sh — one kernel variant's build, packed for bench/ab_device.sh:
#
#   sh bench/pack_variant.sh NAME BUILD_DIR    (build host, repository root)
#
# writes build-probe/NAME.tar.xz (git-ignored) holding NAME/libfa2.so.0 and,
# where BUILD_DIR has built them, NAME/test_cuda_fwd and NAME/test_cuda_bwd
# (stripped; the test programs link libfa2 statically). Carry build-probe
# and build-run (bench/pack_run.sh: main's library, the baseline) to the
# device and run bench/ab_device.sh there. doc/NOTES-gpu.md, "A/B of
# kernel variants in one device call", says how the variants are built.
set -e
if [ $# -ne 2 ]; then
    echo "usage: $0 NAME BUILD_DIR" >&2
    exit 2
fi
name=$1 build=$2
case $name in
    *[!A-Za-z0-9_-]*) echo "$0: NAME must be letters, digits, - or _" >&2; exit 2 ;;
esac
[ -e "$build/lib/.libs/libfa2.so.0" ] || { echo "$0: no $build/lib/.libs/libfa2.so.0" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/$name" build-probe
cp -L "$build/lib/.libs/libfa2.so.0" "$tmp/$name/"
. "$(dirname "$0")/pack_lib.sh"
copy_tests "$build" "$tmp/$name" test_cuda_fwd test_cuda_bwd
strip "$tmp/$name"/test_* 2>/dev/null || true
tar cJf "build-probe/$name.tar.xz" -C "$tmp" "$name"
ls -l "build-probe/$name.tar.xz"
