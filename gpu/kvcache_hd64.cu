/* kvcache_hd64.cu: the KV-cache kernels for head dims up to 64 */
#include "kvcache_kernel.cuh"

FA2_KVCACHE_DEFINE_LAUNCHER(64)
