/* bwd_hd256.cu — the backward kernels for head dim 256 (and the smaller
 * multiples of 8 it serves), fp16 and bf16. One file per head dim so that
 * make -j compiles them in parallel. */
#include "bwd_kernel.cuh"

FA2_BWD_DEFINE_LAUNCHER(256)
