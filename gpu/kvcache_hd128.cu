/* kvcache_hd128.cu: the KV-cache kernels for head dims up to 128 */
#include "kvcache_kernel.cuh"

FA2_KVCACHE_DEFINE_LAUNCHER(128)
