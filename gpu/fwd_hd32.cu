/* fwd_hd32.cu — the forward kernel for head dim 32 (and the smaller
 * multiples of 8 it serves), fp16 and bf16. One file per head dim so that
 * make -j compiles them in parallel. */
#include "fwd_kernel.cuh"

FA2_FWD_DEFINE_LAUNCHER(32)
