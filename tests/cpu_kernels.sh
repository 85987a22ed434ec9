#!/bin/sh
# cpu_kernels.sh — the mirror suites (forward cases, the KV-cache forward and the backward
# against the oracle) once under each tile-product micro-kernel forced with
# FA2_CPU_KERNEL; kernels this CPU cannot run are skipped (and said so).
# Fails if any suite fails; SKIP (77) only if no forced kernel could run.
ran=0
for k in portable avx2 avx512; do
  if ! FA2_CPU_KERNEL=$k tests/test_cpu_kernels --can-run; then
    echo "FA2_CPU_KERNEL=$k: this CPU cannot run it, skipped"
    continue
  fi
  for t in tests/test_fwd_cases tests/test_bwd tests/test_kvcache; do
    echo "FA2_CPU_KERNEL=$k $t"
    FA2_CPU_KERNEL=$k $t || exit 1
  done
  ran=1
done
test $ran = 1 || exit 77
