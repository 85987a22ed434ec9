#!/bin/bash
# ab_device.sh — on the GPU host: each kernel variant packed by
# bench/pack_variant.sh against the baseline library of build-run/
# (bench/pack_run.sh), in one call:
#
#   bench/ab_device.sh STAGE...      (repository root; logs under $OUT)
#
# Stages, run in the order given, for every build-probe/NAME.tar.xz:
#   suite   NAME's test_cuda_fwd / test_cuda_bwd (those it carries)
#   bytes   bench/same_bytes.py with the baseline and with NAME: for a
#           change that must not move a bit
#   fwd     bench/lib_ab.sh BASE NAME 2 bench/sdpa_compare.py --passes fwd
#   bwd     the same with --passes bwd
#   mods    bench/lib_ab.sh BASE NAME 1 bench/mods_cost.py
# (HEAD_DIMS, SEQLENS, DTYPES in the environment narrow the sdpa_compare
# grid; defaults 64,128,256 / 1024,4096,16384 / bf16.) Everything under
# $OUT ends packed in $OUT/ab.tar.xz (the device tool brings back 8 files).
set -u
root=$PWD
OUT=${OUT:-/tmp/fa2-out}
mkdir -p "$OUT"
tar xJf build-run/run.tar.xz -C build-run 2>/dev/null
export LD_LIBRARY_PATH="$root/build-run/lib:$root/build-run/fallback:${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1
base="$root/build-run/lib/libfa2.so.0"
names=()
for f in build-probe/*.tar.xz; do
    [ -e "$f" ] || continue
    tar xJf "$f" -C build-probe
    n=$(basename "$f" .tar.xz)
    [ -e "build-probe/$n/libfa2.so.0" ] && names+=("$n")
done
if [ ${#names[@]} -eq 0 ]; then
    echo "ab_device.sh: no build-probe/NAME.tar.xz (bench/pack_variant.sh)" >&2
    exit 2
fi
hd=${HEAD_DIMS:-64,128,256} sl=${SEQLENS:-1024,4096,16384} dt=${DTYPES:-bf16}
log() { echo "== $* ($(date +%T))"; }
grid() { # pass name
    mkdir -p "$OUT/$2/$1"
    OUT="$OUT/$2/$1" timeout 300 bench/lib_ab.sh "$base" "$root/build-probe/$2/libfa2.so.0" 2 \
        python3 bench/sdpa_compare.py --out /tmp/ab-sdpa --passes "$1" --impls fa2,cudnn \
        --dtypes "$dt" --head-dims "$hd" --seqlens "$sl" --rounds 3 >/dev/null
    for f in "$OUT/$2/$1"/ab_*.log; do
        echo "-- $(basename "$f")"
        grep -E "^$1 " "$f" | awk '{print $2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}'
    done
}
for stage in "$@"; do
    for n in "${names[@]}"; do
        mkdir -p "$OUT/$n"
        case $stage in
        suite)
            for t in test_cuda_fwd test_cuda_bwd; do
                [ -x "build-probe/$n/$t" ] || continue
                log "$n: $t"
                FA2_TEST_VERBOSE=1 timeout 200 "build-probe/$n/$t" >"$OUT/$n/$t.log" 2>&1
                echo "$t exit $?"
                grep -E "^[0-9]+%" "$OUT/$n/$t.log"
                grep -E ":F:|:E:" "$OUT/$n/$t.log" | head -8
            done ;;
        bytes)
            log "$n: bytes against the baseline"
            [ -e /tmp/ab-base.pt ] || FA2_LIB="$base" timeout 150 python3 bench/same_bytes.py --dump /tmp/ab-base.pt | tail -1
            FA2_LIB="$root/build-probe/$n/libfa2.so.0" timeout 150 python3 bench/same_bytes.py --dump "/tmp/ab-$n.pt" | tail -1
            python3 bench/same_bytes.py --cmp /tmp/ab-base.pt "/tmp/ab-$n.pt" | tail -4 ;;
        fwd|bwd)
            log "$n: $stage against the baseline"
            grid "$stage" "$n" ;;
        mods)
            log "$n: modifiers against the baseline"
            OUT="$OUT/$n/mods" timeout 200 bench/lib_ab.sh "$base" "$root/build-probe/$n/libfa2.so.0" 1 \
                python3 bench/mods_cost.py --rounds 10 ;;
        *)
            echo "ab_device.sh: unknown stage $stage" >&2 ;;
        esac
    done
done
tar cJf "$OUT/ab.tar.xz" -C "$OUT" --exclude ab.tar.xz . 2>/dev/null
log end
