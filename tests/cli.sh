#!/bin/sh
# cli.sh — the fa2 program's behaviours that issue 17 found wrong, each a
# named check: help on every subcommand, values refused rather than
# clamped, escaped JSON/CSV, progress on stderr, timings with a spread.
# Run by make check from the build tree.
set -u
fa2=$(pwd)/tools/fa2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
check() { # NAME, then a command that must succeed
    name=$1
    shift
    if "$@" >"$tmp/last.out" 2>"$tmp/last.err"; then
        echo "ok   $name"
    else
        echo "FAIL $name"
        sed 's/^/     | /' "$tmp/last.out" "$tmp/last.err" | head -20
        failed=1
    fi
}
status_is() { # WANT, then the command: its exit status must be WANT
    want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" -eq "$want" ] || { echo "exit $got, expected $want: $*"; cat "$tmp/err"; return 1; }
}

for cmd in run trace bench sim; do
    check "fa2 $cmd -h prints its usage and exits 0" \
        sh -c "$fa2 $cmd -h | grep -q 'usage: fa2 $cmd'"
    check "fa2 $cmd refuses an unknown option with exit status 2" \
        status_is 2 $fa2 $cmd --no-such-option
done
check "fa2 trace --head-dim 7 is refused (the library takes multiples of 8)" \
    status_is 2 $fa2 trace --head-dim 7
check "fa2 trace --head-dim 8 runs" status_is 0 $fa2 trace --head-dim 8
check "fa2 trace --digits 64 is refused, not clamped" status_is 2 $fa2 trace --digits 64
check "fa2 trace --digits 8 runs" status_is 0 $fa2 trace --digits 8
check "fa2 sim --sram 1 is refused: no tile fits in one byte" \
    sh -c "! $fa2 sim --seqlen 1024 --sram 1 2>&1 | grep -q 1x1 &&
           $fa2 sim --seqlen 1024 --sram 1 2>&1 | grep -q 'no tiling fits'"
check "fa2 sim --ring 4 --link pcie5: K/V bytes of a step, both passes; odd seqlen refused" \
    sh -c "$fa2 sim --ring 4 --link pcie5 --seqlen 1024 --heads 4 --heads-kv 2 --head-dim 64 --causal |
           grep -Eq '^fwd +131072 +393216 ' &&
           $fa2 sim --ring 4 --seqlen 1024 --heads 4 --heads-kv 2 --head-dim 64 | grep -q '^bwd ' &&
           ! $fa2 sim --ring 3 --seqlen 1024 2>/dev/null &&
           $fa2 sim --ring 3 --seqlen 1024 2>&1 | grep -q 'multiple of 2 x 3'"
check "fa2 sim --help does not say sweeps are fwd+bwd" \
    sh -c "! $fa2 sim --help | grep -q 'sweeps: fwd+bwd' &&
           $fa2 sim --help | grep -q 'sweep paper: fwd+bwd'"

printf 'name = My "GPU", v2\n' >"$tmp/dev.txt"
printf '%s\n' '  "device": "My \"GPU\", v2",' >"$tmp/json.want"
printf '%s\n' ',"My ""GPU"", v2",' >"$tmp/csv.want"
check "fa2 sim --json escapes a device name holding '\"' and ','" \
    sh -c "$fa2 sim --seqlen 256 --device $tmp/dev.txt --json | grep -qxF -f $tmp/json.want"
check "fa2 sim --csv quotes a device name holding '\"' and ','" \
    sh -c "$fa2 sim --seqlen 256 --device $tmp/dev.txt --csv | grep -qF -f $tmp/csv.want"
if command -v python3 >/dev/null; then
    check "fa2 sim --json output parses, with the device's name intact" \
        sh -c "$fa2 sim --seqlen 256 --device $tmp/dev.txt --json |
               python3 -c 'import json,sys; assert json.load(sys.stdin)[\"device\"] == \"My \\\"GPU\\\", v2\"'"
fi

check "fa2 sim --sweep prints its progress on stderr" \
    sh -c "$fa2 sim --sweep sram --seqlen 1024 2>&1 >/dev/null | grep -q '14/14 simulations'"
check "the seqlen figure says '1 head', not '1 heads'" \
    sh -c "cd $tmp && $fa2 sim --sweep seqlen --heads 1 --no-l2 --plot f.svg >/dev/null 2>&1;
           grep -q ', 1 head, ' f.gp && ! grep -q '1 heads' f.gp"

check "fa2 run --json reports the median and the spread of at least 3 runs" \
    sh -c "$fa2 run --seqlen 128 --json |
           grep -Eq '\"runs\": ([3-9]|[1-9][0-9]+), \"time_ms\": [0-9.e+-]+, \"time_min_ms\": [0-9.e+-]+, \"time_max_ms\"'"
check "fa2 run says on stderr that a long check is running" \
    sh -c "$fa2 run --seqlen 1024 --heads 4 --no-causal --threads 1 --check 2>&1 >/dev/null |
           grep -q 'checking against the float64 oracle'"
check "fa2 bench times sgemm and each pass alike: median, spread, runs" \
    sh -c "$fa2 bench --seqlen 128 --dtype fp32 --causal 0 --pass fwd --json 2>/dev/null |
           grep -Eq '\"runs\": ([3-9]|[1-9][0-9]+),.*\"time_min_ms\".*\"time_max_ms\".*\"sgemm_gflops\"'"
check "fa2 run --check passes with softcap, ALiBi, sinks and dropout, fwd+bwd" \
    sh -c "$fa2 run --backend tiled --seqlen 96 --heads 4 --heads-kv 2 --varlen --batch 4 \
           --softcap 5 --alibi --sinks --dropout 0.25 --pass fwd+bwd --check |
           grep -q 'dsinks' && $fa2 run --backend tiled --seqlen 96 --softcap 5 --alibi \
           --sinks --dropout 0.25 --pass fwd+bwd --check >/dev/null"
check "fa2 run --dropout 1 is refused: not a probability below 1" \
    status_is 2 $fa2 run --dropout 1
check "fa2 run --softcap -1 is refused" status_is 2 $fa2 run --softcap -1
check "fa2 trace --sinks --pass bwd shows the sink's gradient next to the oracle's" \
    sh -c "$fa2 trace --sinks --softcap 2 --dropout 0.3 --pass bwd | grep -q 'dsink: tiled | oracle'"
check "fa2 bench --decode times the KV-cache forward against the run's triad" \
    sh -c "$fa2 bench --decode 1,2 --seqlen 512 --heads 8 --heads-kv 2 --head-dim 32 \
           --dtype bf16 --runs 1 --threads 1 --json 2>/dev/null |
           grep -c '\"pass\": \"decode\".*\"kv_gbs\": [0-9.e+-]*, \"triad_gbs\": [0-9.e+-]*, \"of_triad\"' |
           grep -qx 2"
check "fa2 sim --algo decode: the closed form equals the simulation" \
    sh -c "$fa2 sim --algo decode --heads 32 --heads-kv 8 --seqlen 4 --seqlen-k 3000 \
           --causal --page-size 16 --seqlen-new 4 --no-l2 | grep -q 'equal to the simulation'"
check "fa2 run --kvcache --check: the KV-cache forward passes the contract" \
    sh -c "$fa2 run --kvcache --seqlen 3 --seqlen-k 700 --heads 8 --heads-kv 2 \
           --threads 1 --check --json | grep -q '\"kvcache\": true.*\"check_passed\": true'"
check "fa2 run --kvcache refuses the backward" \
    sh -c "! $fa2 run --kvcache --pass bwd 2>/dev/null"
exit $failed
