#!/bin/bash
# lib_ab.sh — one benchmark, two builds of libfa2, in alternating processes.
#
#   bench/lib_ab.sh OLD.so NEW.so ROUNDS COMMAND...
#
# Runs COMMAND (a Python benchmark that loads libfa2 from $FA2_LIB, e.g.
# bench/mods_cost.py or bench/sdpa_compare.py) ROUNDS times with each
# library, old then new, logs in $OUT (default /tmp/fa2-out) as
# ab_old_R.log / ab_new_R.log, and prints each run's markdown table rows.
# Why: on the H200 the same benchmark's ratios moved by 5-10% between
# device calls with no code change (doc/NOTES-modifiers.md, 2026-12-03),
# so a change is judged by old and new measured in one call, alternating.
set -u
if [ $# -lt 4 ]; then
    echo "usage: $0 OLD.so NEW.so ROUNDS COMMAND..." >&2
    exit 2
fi
old=$1 new=$2 rounds=$3
shift 3
OUT=${OUT:-/tmp/fa2-out}
mkdir -p "$OUT"
for r in $(seq 1 "$rounds"); do
    for v in old new; do
        lib=$old
        [ $v = new ] && lib=$new
        log="$OUT/ab_${v}_$r.log"
        FA2_LIB=$lib "$@" >"$log" 2>&1
        echo "== $v, round $r (exit $?): $*"
        grep -E '^\| [a-z]' "$log" | grep -v '^| variant'
    done
done
