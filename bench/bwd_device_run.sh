#!/bin/bash
# bwd_device_run.sh — one call on the GPU machine for the backward: the
# GPU backward suite, the training test, the benchmark of several builds of
# the library against SDPA flash, sanitizers, and ncu's warp-state sections.
#
#   bench/bwd_device_run.sh RUNDIR STAGE...     (in the repository root)
#
# RUNDIR (made on the build host, see bench/NOTES-bwd.md) holds libs.tar.xz
# (NAME/libfa2.so.0 for each variant; "new" is the one under test, "base"
# the previous kernel), test_cuda_bwd, and fallback/ (OpenBLAS's runtime
# libraries, used only if the host lacks them). Logs go to $OUT.
#
# Stages: info suite train bench sanitize ncu pack
set -u
RUN=$1
shift
OUT=${OUT:-/tmp/fa2-out}
mkdir -p "$OUT" /tmp/fa2libs
root=$PWD
tar xJf "$RUN/libs.tar.xz" -C /tmp/fa2libs
export LD_LIBRARY_PATH="/tmp/fa2libs/new:${LD_LIBRARY_PATH:-}"
if ldd /tmp/fa2libs/new/libfa2.so.0 | grep -q "not found"; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$root/$RUN/fallback"
fi
export FA2_LIB=/tmp/fa2libs/new/libfa2.so.0
export PYTHONUNBUFFERED=1
log() { echo "== $* ($(date +%T))"; }

for stage in "$@"; do
case $stage in
info)
    log info
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
    ls /tmp/fa2libs
    ;;
suite)
    log "GPU backward suite (new)"
    FA2_TEST_VERBOSE=1 timeout 180 "$RUN/test_cuda_bwd" >"$OUT/suite.log" 2>&1
    echo "test_cuda_bwd exit $?"
    grep -E "^[0-9]+%|Checks|SEED" "$OUT/suite.log" | head -5
    grep -E ":F:|:E:" "$OUT/suite.log" | head -20
    ;;
train)
    log "training test (new), bf16 then fp16"
    timeout 150 python3 python/test_train.py 2>&1 | tee "$OUT/train_bf16.log" | tail -45
    echo "test_train bf16 exit ${PIPESTATUS[0]}"
    timeout 100 python3 python/test_train.py --dtype fp16 --no-fp32 >"$OUT/train_fp16.log" 2>&1
    echo "test_train fp16 exit $?"
    grep -E "largest|FAIL|PASS|steps in" "$OUT/train_fp16.log"
    ;;
bench)
    log "backward vs SDPA flash, per library"
    for v in ${VARIANTS:-new base}; do
        extra="--no-gradcheck --seqlens ${SEQLENS_VAR:-1024,4096}"
        [ "$v" = new ] && extra="--seqlens ${SEQLENS_NEW:-1024,4096,16384}"
        FA2_LIB=/tmp/fa2libs/$v/libfa2.so.0 timeout 150 python3 bench/bwd_compare.py \
            --reps 10 --label "$v " $extra --csv "$OUT/bench_$v.csv" >"$OUT/bench_$v.log" 2>&1
        echo "bench $v exit $?"
        grep -E "gradcheck (PASS|FAIL)|FAIL" "$OUT/bench_$v.log"
    done
    python3 - "$OUT" ${VARIANTS:-new base} <<'EOF'
import csv, sys, os
out, names = sys.argv[1], sys.argv[2:]
rows = {}
for n in names:
    f = os.path.join(out, "bench_%s.csv" % n)
    if not os.path.exists(f):
        continue
    for r in csv.DictReader(open(f)):
        key = (r["dtype"], int(r["d"]), int(r["causal"]), int(r["n"]))
        rows.setdefault(key, {})[n] = (float(r["bwd_fa2"]), float(r["bwd_flash"]))
print("bwd TFLOP/s (ratio to SDPA flash in the same process)")
print("%-9s %4s %3s %6s " % ("dtype", "d", "cau", "N") + " ".join("%15s" % n for n in names))
for key in sorted(rows):
    cells = []
    for n in names:
        v = rows[key].get(n)
        cells.append("%15s" % ("-" if v is None else "%6.1f (%.2fx)" % (v[0], v[0] / v[1])))
    print("%-9s %4d %3d %6d " % key + " ".join(cells))
EOF
    ;;
sanitize)
    log "compute-sanitizer memcheck + racecheck (quick grid, new)"
    for tool in ${SAN_TOOLS:-racecheck memcheck}; do
        FA2_GPU_TEST_QUICK=1 CK_RUN_CASE=grid timeout ${SAN_TIMEOUT:-100} compute-sanitizer --tool $tool \
            --error-exitcode 9 "$RUN/test_cuda_bwd" >"$OUT/sanitize_$tool.log" 2>&1
        echo "$tool exit $?"
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Checks" "$OUT/sanitize_$tool.log" | head -3
    done
    ;;
ncu)
    log "ncu warp-state sections, bwd_kernel (new)"
    for spec in "64 4096" "128 4096"; do
        set -- $spec
        timeout 120 ncu --clock-control none --section WarpStateStats --section SchedulerStats \
            --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
            --section MemoryWorkloadAnalysis -k regex:bwd_kernel -c 1 \
            python3 bench/bwd_compare.py --no-gradcheck --reps 1 --dtypes bfloat16 \
            --head-dims $1 --seqlens $2 >>"$OUT/ncu_bwd.txt" 2>&1
    done
    grep -E "bwd_kernel|Stall|Issued Warp|No Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Executed Ipc A|Shared Memory|Bank|Throughput|Pipe" "$OUT/ncu_bwd.txt" | head -90
    ;;
pack)
    tar czf /tmp/results.tgz -C "$OUT" . && find "$OUT" -maxdepth 1 -type f -delete &&
        mv /tmp/results.tgz "$OUT/"
    ls -la "$OUT"
    ;;
*)
    echo "unknown stage $stage"
    ;;
esac
done
