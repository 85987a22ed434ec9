/* kvcache_hd256.cu: the KV-cache kernels for head dims up to 256 */
#include "kvcache_kernel.cuh"

FA2_KVCACHE_DEFINE_LAUNCHER(256)
