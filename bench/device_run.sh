#!/bin/bash
# device_run.sh — everything one call on the GPU machine does, so that a
# lease is spent on few, full calls (doc/NOTES-gpu.md has the commands).
#
#   bench/device_run.sh STAGE...      run in the repository root
#
# It expects a run folder (RUN=build-run by default, made here by
# bench/pack_run.sh) holding lib/libfa2.so.0, test_cuda_fwd and, optionally,
# traffic/ (a --enable-traffic-counters build) and tune-*/ (variant
# libraries for the benchmark). Logs and results go to $OUT.
#
# Stages: info test bwdtest bwddet kvtest decode mods bwdmods mmatest cpukernels sanitize traffic bench quickbench tune ncu stalls
# cli sass pack
# (pack: everything under $OUT into one results.tgz, since at most 8 files
# come back).
set -u
RUN=${RUN:-build-run}
OUT=${OUT:-/tmp/fa2-out}
mkdir -p "$OUT"
root=$PWD
# bench/pack_run.sh packs the run folder into one archive
if [ -f "$RUN/run.tar.xz" ] && [ ! -e "$RUN/lib/libfa2.so.0" ]; then
    tar xJf "$RUN/run.tar.xz" -C "$RUN"
fi
export LD_LIBRARY_PATH="$root/$RUN/lib:${LD_LIBRARY_PATH:-}"
# libraries this host lacks (carried in $RUN/fallback), only if needed
if ldd "$RUN/lib/libfa2.so.0" | grep -q "not found"; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$root/$RUN/fallback"
fi
export FA2_LIB="$root/$RUN/lib/libfa2.so.0"
export PYTHONUNBUFFERED=1
log() { echo "== $* ($(date +%T))"; }

for stage in "$@"; do
case $stage in
info)
    log info
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv
    ldd "$RUN/test_cuda_fwd" "$RUN/lib/libfa2.so.0" | grep -i "not found" || echo "all libraries found"
    ;;
test)
    log "GPU suite (full grid)"
    FA2_TEST_VERBOSE=1 timeout ${TEST_TIMEOUT:-300} "$RUN/test_cuda_fwd" >"$OUT/test.log" 2>&1
    echo "test_cuda_fwd exit $?"
    grep -E "^[0-9]+%|Checks|FA2_TEST_SEED" "$OUT/test.log" | head -5
    grep -E ":F:|:E:" "$OUT/test.log" | head -20
    # the largest GPU-vs-mirror distance seen, in ulps
    awk '/^case/{for(i=1;i<=NF;i++) if($i=="mirror"){u=$(i+1); if(u+0>m){m=u+0; l=$0}}} END{print "max mirror ulps", m; print l}' "$OUT/test.log"
    ;;
bwdtest)
    log "GPU backward suite (full grid)"
    FA2_TEST_VERBOSE=1 timeout ${TEST_TIMEOUT:-300} "$RUN/test_cuda_bwd" >"$OUT/test_bwd.log" 2>&1
    echo "test_cuda_bwd exit $?"
    grep -E "^[0-9]+%|Checks|FA2_TEST_SEED" "$OUT/test_bwd.log" | head -5
    grep -E ":F:|:E:" "$OUT/test_bwd.log" | head -20
    ;;
bwddet)
    # issue 13: the deterministic backward's order and the dQ paths. The
    # suite once as built (dQ by the copy engine on sm_90a at head dims
    # 64/128) and once with the per-thread reductions; then the timing of
    # default / atomic / rotate / det / det-atomic against SDPA cuDNN and
    # flash (bench/bwd_det.py), and the CLI's deterministic check.
    log "GPU backward suite, dQ by bulk reduction (default) and by reductions (atomic)"
    for dqp in bulk atomic; do
        FA2_CUDA_BWD90_DQ=$dqp FA2_TEST_VERBOSE=1 timeout ${TEST_TIMEOUT:-300} \
            "$RUN/test_cuda_bwd" >"$OUT/test_bwd_$dqp.log" 2>&1
        echo "test_cuda_bwd ($dqp) exit $?"
        grep -E "^[0-9]+%|Checks|worst GPU|FA2_TEST_SEED" "$OUT/test_bwd_$dqp.log" | head -5
        grep -E ":F:|:E:" "$OUT/test_bwd_$dqp.log" | head -20
    done
    log "compute-sanitizer on the backward's quick subset (bulk dQ path)"
    for tool in memcheck racecheck; do
        FA2_GPU_TEST_QUICK=1 CK_RUN_CASE=grid timeout ${SAN_TIMEOUT:-240} \
            compute-sanitizer --tool $tool --error-exitcode 9 "$RUN/test_cuda_bwd" \
            >>"$OUT/sanitizer_bwd.log" 2>&1
        echo "$tool exit $?"
    done
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Checks" "$OUT/sanitizer_bwd.log"
    log "bench/bwd_det.py"
    timeout ${BENCH_TIMEOUT:-400} python3 bench/bwd_det.py 2>&1 | tee "$OUT/bwd_det.log"
    for a in "--seqlen 4096 --heads 16 --head-dim 128 --batch 1 --no-causal --dtype bf16" \
             "--seqlen 4096 --heads 16 --head-dim 128 --batch 1 --dtype bf16"; do
        for det in "" "--deterministic"; do
            echo "-- fa2 run --backend cuda --pass bwd --check $det $a"
            timeout 120 "$RUN/fa2" run --backend cuda --pass bwd --check $det $a 2>&1 | tail -4
        done
    done 2>&1 | tee "$OUT/bwddet_cli.log"
    ;;
kvtest)
    log "GPU KV-cache suite (kernels vs the mirror with their splits)"
    FA2_TEST_VERBOSE=1 timeout ${TEST_TIMEOUT:-300} "$RUN/test_cuda_kvcache" >"$OUT/test_kvcache.log" 2>&1
    echo "test_cuda_kvcache exit $?"
    grep -E "^[0-9]+%|Checks|FA2_TEST_SEED" "$OUT/test_kvcache.log" | head -5
    grep -E ":F:|:E:" "$OUT/test_kvcache.log" | head -20
    awk '/^case/{for(i=1;i<=NF;i++) if($i=="mirror"){u=$(i+1); if(u+0>m){m=u+0; l=$0}}} END{print "max mirror ulps", m; print l}' "$OUT/test_kvcache.log"
    ;;
decode)
    log "decode vs SDPA (bench/decode_compare.py ${DECODE_ARGS:-})"
    python3 bench/decode_compare.py --out "$OUT" ${DECODE_ARGS:-} 2>&1 | tee "$OUT/decode.log" | tail -70
    ;;
mods)
    log "score modifiers: cost over plain attention (issue 15), one process"
    timeout ${BENCH_TIMEOUT:-300} python3 bench/mods_cost.py ${MODS_ARGS:-} 2>&1 | tee "$OUT/mods_cost.log"
    echo "-- the same with the mma.sync kernels (FA2_CUDA_FWD_KERNEL=mma FA2_CUDA_BWD_KERNEL=mma)"
    FA2_CUDA_FWD_KERNEL=mma FA2_CUDA_BWD_KERNEL=mma timeout ${BENCH_TIMEOUT:-300} \
        python3 bench/mods_cost.py --rounds 10 ${MODS_ARGS:-} 2>&1 | tee -a "$OUT/mods_cost.log"
    echo "-- the forward suite's quick subset on the mma.sync kernel (its MODS instantiation)"
    FA2_CUDA_FWD_KERNEL=mma FA2_GPU_TEST_QUICK=1 timeout ${TEST_TIMEOUT:-300} "$RUN/test_cuda_fwd" \
        >"$OUT/test_fwd_mma_quick.log" 2>&1
    echo "test_cuda_fwd (mma, quick) exit $?"
    grep -E "^[0-9]+%|:F:|:E:" "$OUT/test_fwd_mma_quick.log" | head -10
    echo "-- checks"
    for m in "--softcap 30" "--alibi" "--sinks" "--dropout 0.1" "--softcap 30 --alibi --sinks --dropout 0.1 --varlen --batch 4 --heads-kv 4"; do
        timeout 120 "$RUN/fa2" run --backend cuda --head-dim 128 --seqlen 1024 --dtype fp16 $m --check 2>&1 | grep -E "check|FA2_ERR"
    done 2>&1 | tee -a "$OUT/mods_cost.log"
    ;;
bwdmods)
    # issue 15: the CUDA backward with softcap, ALiBi, sinks and dropout:
    # the suite's mods case on the default kernel (on sm_90 the wgmma
    # kernel's MODS instantiation; the case also runs a subset on the
    # mma.sync kernel and compares the two kernels' bits), the whole case
    # again on the mma.sync kernel, the quick subset under
    # compute-sanitizer, fa2 run --check through the backward, and the
    # cost over the plain backward (bench/mods_cost.py: one process, the
    # variants alternating, medians; then the mma.sync kernel's)
    log "GPU backward suite, modifier cases (CK_RUN_CASE=mods)"
    for k in default mma; do
        if [ $k = mma ]; then export FA2_CUDA_BWD_KERNEL=mma; else unset FA2_CUDA_BWD_KERNEL; fi
        CK_RUN_CASE=mods FA2_TEST_VERBOSE=1 timeout ${TEST_TIMEOUT:-900} \
            "$RUN/test_cuda_bwd" >"$OUT/test_bwd_mods_$k.log" 2>&1
        echo "test_cuda_bwd (mods, kernel $k) exit $?"
        grep -E "^[0-9]+%|Checks|worst GPU|FA2_TEST_SEED" "$OUT/test_bwd_mods_$k.log" | head -5
        grep -E ":F:|:E:" "$OUT/test_bwd_mods_$k.log" | head -20
        grep -E "^kernels " "$OUT/test_bwd_mods_$k.log" | head -40
    done
    unset FA2_CUDA_BWD_KERNEL
    for tool in memcheck racecheck; do
        FA2_GPU_TEST_QUICK=1 CK_RUN_CASE=mods timeout ${SAN_TIMEOUT:-300} \
            compute-sanitizer --tool $tool --error-exitcode 9 "$RUN/test_cuda_bwd" \
            >>"$OUT/sanitizer_bwd_mods.log" 2>&1
        echo "compute-sanitizer $tool (mods quick subset) exit $?"
    done
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Checks" "$OUT/sanitizer_bwd_mods.log"
    echo "-- checks (fwd+bwd)"
    for m in "--softcap 30" "--alibi" "--sinks" "--dropout 0.1" "--softcap 30 --alibi --sinks --dropout 0.1 --varlen --batch 4 --heads-kv 4"; do
        timeout 120 "$RUN/fa2" run --backend cuda --head-dim 128 --seqlen 1024 --dtype fp16 \
            --heads 8 --pass fwd+bwd $m --check 2>&1 | grep -E "check|dsinks|FA2_ERR"
    done 2>&1 | tee "$OUT/bwd_mods.log"
    log "backward cost: bench/mods_cost.py --passes bwd (bf16, b 1, h 16, n 4096, d 128; no mask, causal)"
    for c in "" "--causal"; do
        timeout ${BENCH_TIMEOUT:-300} python3 bench/mods_cost.py --passes bwd $c ${MODS_ARGS:-} 2>&1 |
            tee -a "$OUT/bwd_mods.log"
        FA2_CUDA_BWD_KERNEL=mma timeout ${BENCH_TIMEOUT:-300} \
            python3 bench/mods_cost.py --passes bwd --rounds 10 $c ${MODS_ARGS:-} 2>&1 |
            tee -a "$OUT/bwd_mods.log"
    done
    ;;
mmatest)
    log "GPU forward suite on the mma.sync kernel (FA2_CUDA_FWD_KERNEL=mma)"
    FA2_CUDA_FWD_KERNEL=mma timeout ${TEST_TIMEOUT:-300} "$RUN/test_cuda_fwd" >"$OUT/test_mma.log" 2>&1
    echo "test_cuda_fwd (mma) exit $?"
    grep -E "^[0-9]+%|:F:|:E:" "$OUT/test_mma.log" | head -10
    ;;
cpukernels)
    log "CPU tile kernels on this host's CPU (FA2_CPU_KERNEL=avx512|avx2|portable)"
    grep -o -m1 'avx512f' /proc/cpuinfo || echo "no avx512f"
    for k in avx512 avx2 portable; do
        for t in test_cpu_kernels test_fwd_cases test_bwd; do
            [ -x "$RUN/cpu/$t" ] || continue
            FA2_CPU_KERNEL=$k CK_FORK=yes timeout 300 "$RUN/cpu/$t" >"$OUT/cpu_${k}_$t.log" 2>&1
            echo "$k $t exit $? $(grep -E '^[0-9]+%' "$OUT/cpu_${k}_$t.log" | tail -1)"
        done
    done
    ;;
sanitize)
    log "compute-sanitizer memcheck + racecheck + synccheck (quick subset)"
    for tool in memcheck racecheck synccheck; do
        FA2_GPU_TEST_QUICK=1 timeout ${SAN_TIMEOUT:-240} compute-sanitizer --tool $tool --error-exitcode 9 \
            "$RUN/test_cuda_fwd" >>"$OUT/sanitizer.log" 2>&1
        echo "$tool exit $?"
        if [ -x "$RUN/test_cuda_kvcache" ]; then
            FA2_GPU_TEST_QUICK=1 timeout ${SAN_TIMEOUT:-240} compute-sanitizer --tool $tool \
                --error-exitcode 9 "$RUN/test_cuda_kvcache" >>"$OUT/sanitizer.log" 2>&1
            echo "$tool (kvcache) exit $?"
        fi
    done
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Checks" "$OUT/sanitizer.log"
    ;;
traffic)
    log "traffic-counter build"
    if [ -x "$RUN/traffic/test_cuda_fwd" ]; then
        LD_LIBRARY_PATH="$root/$RUN/traffic:$LD_LIBRARY_PATH" \
            CK_RUN_SUITE=cuda_fwd CK_RUN_CASE=traffic "$RUN/traffic/test_cuda_fwd" \
            >"$OUT/traffic.log" 2>&1
        echo "traffic suite exit $?"
        grep -E "Checks|:F:" "$OUT/traffic.log" | head
    fi
    if [ -x "$RUN/traffic/test_cuda_bwd" ]; then
        LD_LIBRARY_PATH="$root/$RUN/traffic:$LD_LIBRARY_PATH" \
            CK_RUN_CASE=traffic "$RUN/traffic/test_cuda_bwd" \
            >"$OUT/traffic_bwd.log" 2>&1
        echo "backward traffic suite exit $?"
        grep -E "Checks|:F:" "$OUT/traffic_bwd.log" | head
    fi
    if [ -x "$RUN/traffic/test_cuda_kvcache" ]; then
        LD_LIBRARY_PATH="$root/$RUN/traffic:$LD_LIBRARY_PATH" \
            CK_RUN_CASE=traffic "$RUN/traffic/test_cuda_kvcache" \
            >"$OUT/traffic_kvcache.log" 2>&1
        echo "KV-cache traffic suite exit $?"
        grep -E "Checks|:F:|^traffic " "$OUT/traffic_kvcache.log" | head -20
    fi
    ;;
bench)
    log "benchmark vs SDPA (paper grid)"
    python3 bench/sdpa_compare.py --out "$OUT" 2>&1 | tee "$OUT/bench.log" | grep -vE "^  " | tail -80
    ;;
sass)
    log "SASS of the sm_90 forward kernels: instruction classes"
    cuobjdump -sass "$RUN/lib/libfa2.so.0" 2>/dev/null |
        awk '/Function : /{keep = ($0 ~ /fwd_kernel_sm90/)} keep' >"$OUT/fwd90.sass"
    for op in HGMMA UTMALDG SYNCS USETMAXREG WARPGROUP BAR LDL STL MUFU.EX2; do
        printf '%-10s %s\n' $op "$(grep -c "$op" "$OUT/fwd90.sass")"
    done
    # local-memory traffic per kernel, and where it sits (the producer's
    # part comes before the first HGMMA of the function)
    awk '/Function : /{f=$3} /HGMMA/{h[f]=1} /STL|LDL/{if(h[f]) c[f]++; else pc[f]++}
         END{for(f in pc) print "before first HGMMA", pc[f], f; for(f in c) print "after first HGMMA", c[f], f}' "$OUT/fwd90.sass"
    # wgmma serialisation, per sm_90a function: a healthy kernel has a few
    # WARPGROUP.DEPBARs (its waits); one per HGMMA means ptxas serialised
    # them, which it may report only as extra C7519 info lines (2026-12-02)
    awk '/Function : /{f=$3; getline; sm90 = ($0 ~ /SM90/)}
         sm90 && /HGMMA/{h[f]++} sm90 && /WARPGROUP.DEPBAR/{d[f]++}
         END{for (f in h) printf "%4d HGMMA %4d DEPBAR  %s\n", h[f], d[f], f}' "$OUT/fwd90.sass" | sort -k5
    ;;
quickbench)
    log "benchmark vs SDPA (d 64/128, 1k..16k)"
    python3 bench/sdpa_compare.py --out "$OUT" --head-dims 64,128 \
        --seqlens 512,1024,2048,4096,8192,16384 --impls fa2,flash,cudnn --rounds 7 \
        2>&1 | tee "$OUT/bench.log" | tail -45
    ;;
tune)
    for lib in "$RUN"/tune-*/libfa2.so.0; do
        [ -e "$lib" ] || continue
        log "variant $lib"
        python3 bench/sdpa_compare.py --lib "$root/$lib" --out "/tmp/tune" \
            ${TUNE_ARGS:---head-dims 64 --seqlens 512,1024,2048,8192} --impls fa2,flash --rounds 5 \
            2>&1 | grep -E "^d=" | tee -a "$OUT/tune.log"
    done
    ;;
ncu)
    log "ncu DRAM bytes on the paper grid (traffic-counter build)"
    tlib="$root/$RUN/traffic/libfa2.so.0"
    [ -e "$tlib" ] || tlib="$FA2_LIB"
    ncu --clock-control none --metrics dram__bytes_read.sum,dram__bytes_write.sum \
        -k regex:fwd_kernel --csv python3 bench/traffic_probe.py --lib "$tlib" \
        --json "$OUT/traffic_probe.json" >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
    echo "ncu exit $?"; tail -3 "$OUT/ncu.err"
    python3 bench/traffic_probe.py --merge "$OUT/ncu.csv" --json "$OUT/traffic_probe.json" | tail -45
    ;;
stalls)
    log "ncu warp-state sections (d64 N=512/4096, d128 N=2048)"
    for spec in "64 512,4096" "128 2048"; do
        set -- $spec
        ncu --clock-control none --section WarpStateStats --section SchedulerStats \
            --section Occupancy --section LaunchStats --section InstructionStats \
            -k regex:fwd_kernel python3 bench/traffic_probe.py --lib "$FA2_LIB" \
            --head-dims $1 --seqlens $2 --json /tmp/stalls.json >>"$OUT/ncu_stalls.txt" 2>&1
    done
    grep -E "fwd_kernel|Stall|Issued Warp|No Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Executed Ipc A" "$OUT/ncu_stalls.txt" | head -80
    ;;
cli)
    log "tools/fa2 run --backend cuda --check"
    for a in "" "--no-causal --head-dim 128 --dtype bf16" \
             "--varlen --batch 6 --seqlen 777 --heads 8 --heads-kv 2" \
             "--window 64,0 --seqlen 1000 --seqlen-k 1500 --head-dim 96" \
             "--head-dim 256 --dtype bf16 --seqlen 4096 --batch 2" \
             "--head-dim 40 --seqlen 333 --no-causal --heads 3 --heads-kv 1"; do
        echo "-- fa2 run --backend cuda --check $a"
        out=$(timeout 120 "$RUN/fa2" run --backend cuda --check $a 2>&1); rc=$?
        echo "$out" | tail -8
        echo "exit $rc"
    done 2>&1 | tee "$OUT/cli.log"
    ;;
pack)
    tar czf /tmp/results.tgz -C "$OUT" --exclude '*.png' . &&
        find "$OUT" -maxdepth 1 -type f ! -name '*.png' -delete &&
        mv /tmp/results.tgz "$OUT/"
    ls -la "$OUT"
    ;;
*)
    echo "unknown stage $stage"
    ;;
esac
done
