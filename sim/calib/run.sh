#!/bin/bash
# sim/calib/run.sh — on a GPU host, from the source tree (with configure
# generated): build libfa2 with CUDA (sm_90a) and --enable-traffic-counters
# in build-gpu/, then for each configuration compare the CUDA forward's
# traffic counters with fa2_sim (no L2), and read the kernel's DRAM bytes
# and L2 hit rate with Nsight Compute next to the L2 model's
# (doc/io-complexity.md, "Calibration"). OUT: a folder for the logs.
set -x
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-/tmp}
nvidia-smi -L; nvcc --version | tail -1
touch aclocal.m4; sleep 1; touch configure config.h.in; sleep 1; touch Makefile.in
mkdir -p build-gpu && cd build-gpu
../configure -q --with-cuda --enable-traffic-counters CUDA_ARCH_FLAGS="-gencode arch=compute_90a,code=sm_90a" > $OUT/configure.log 2>&1 || { tail -30 $OUT/configure.log; exit 1; }
make -j16 lib/libfa2.la > $OUT/make.log 2>&1 || { grep -E "error" $OUT/make.log | head -30; tail -20 $OUT/make.log; exit 1; }
CUDA_HOME=$(dirname $(dirname $(which nvcc)))
gcc -O2 -std=c11 -I../lib -I$CUDA_HOME/include ../sim/calib/calib.c -o calib lib/.libs/libfa2.so -L$CUDA_HOME/lib64 -lcudart -Wl,-rpath,$PWD/lib/.libs || exit 1
for cfg in "1 16 8192 128 0" "1 16 8192 128 1" "1 32 16384 64 0" "4 32 4096 128 0" "2 16 2048 64 1" "1 8 1000 96 1"; do
  ./calib $cfg
done
for cfg in "1 16 8192 128 0" "1 16 8192 128 1" "1 32 16384 64 0" "4 32 4096 128 0"; do
  echo "NCU $cfg"
  ncu --metrics dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_op_read_hit_rate.pct,gpu__time_duration.sum --kernel-name regex:fwd ./calib $cfg 2>&1 | grep -E "dram__|lts__|gpu__time|==PROF==|Error|error" | head -12
done
