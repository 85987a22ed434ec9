/* fwd_sm90_hd128.cu — the sm_90 forward kernel for head dim 128 (and the
 * head dims below it that run on it), fp16 and bf16. */
#include "fwd_kernel_sm90.cuh"

FA2_FWD90_DEFINE_LAUNCHER(128)
