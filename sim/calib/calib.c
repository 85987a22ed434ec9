/* calib.c — calibration of the simulator against the CUDA forward kernel
 * (not built by make; sim/calib/run.sh builds and runs it on a GPU host):
 *     calib BATCH HEADS SEQLEN HEAD_DIM CAUSAL
 * runs fa2_fwd on the CUDA backend of a library configured with
 * --enable-traffic-counters, and prints the kernel's counters next to
 * fa2_sim_run's global bytes (they must be equal, tensor by tensor; exit
 * status 2 if not) and the L2 model's DRAM bytes. Run it under ncu to read
 * the kernel's real DRAM bytes. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fa2.h"

static void *dalloc(size_t n)
{
    void *p = NULL;
    if (cudaMalloc(&p, n) != cudaSuccess) { fprintf(stderr, "cudaMalloc\n"); exit(1); }
    cudaMemset(p, 0, n);
    return p;
}

int main(int argc, char **argv)
{
    const int64_t B = atoll(argv[1]), H = atoll(argv[2]), N = atoll(argv[3]), D = atoll(argv[4]);
    const int causal = atoi(argv[5]);
    const size_t n = (size_t)(B * N * H * D);
    void *q = dalloc(2 * n), *k = dalloc(2 * n), *v = dalloc(2 * n), *o = dalloc(2 * n);
    float *lse = dalloc(sizeof(float) * (size_t)(B * H * N));
    fa2_fwd_args a;
    fa2_fwd_args_init(&a);
    a.q = fa2_tensor_4d(q, FA2_DTYPE_FP16, B, N, H, D);
    a.k = fa2_tensor_4d(k, FA2_DTYPE_FP16, B, N, H, D);
    a.v = fa2_tensor_4d(v, FA2_DTYPE_FP16, B, N, H, D);
    a.o = fa2_tensor_4d(o, FA2_DTYPE_FP16, B, N, H, D);
    a.lse = fa2_tensor_lse(lse, B, H, N);
    a.causal = causal;
    fa2_status st = fa2_cuda_traffic_reset();
    if (st) { fprintf(stderr, "reset: %s\n", fa2_last_error()); return 1; }
    if ((st = fa2_fwd(&a, FA2_BACKEND_CUDA))) { fprintf(stderr, "fwd: %s\n", fa2_last_error()); return 1; }
    cudaDeviceSynchronize();
    fa2_traffic t;
    fa2_cuda_traffic_read(&t);
    fa2_sim_args s;
    fa2_sim_args_init(&s);
    s.batch = B; s.heads_q = s.heads_kv = H; s.seqlen_q = s.seqlen_k = N; s.head_dim = D;
    s.causal = causal;
    fa2_tile_config tc;
    fa2_tile_config_for(FA2_BACKEND_CUDA, FA2_PASS_FWD, FA2_DTYPE_FP16, (int)D, &tc);
    s.block_m = tc.block_m; s.block_n = tc.block_n; s.warps = tc.warps;
    fa2_sim_device dev;
    fa2_sim_device_builtin("h100", &dev);
    fa2_sim_result r;
    if (fa2_sim_run(&s, &dev, &r)) { fprintf(stderr, "sim: %s\n", fa2_last_error()); return 1; }
    const fa2_sim_counters *c = &r.total;
    const int same = t.q_bytes == (uint64_t)c->tensor_read[FA2_SIM_T_Q] &&
                     t.k_bytes == (uint64_t)c->tensor_read[FA2_SIM_T_K] &&
                     t.v_bytes == (uint64_t)c->tensor_read[FA2_SIM_T_V] &&
                     t.o_bytes == (uint64_t)c->tensor_written[FA2_SIM_T_O] &&
                     t.lse_bytes == (uint64_t)c->tensor_written[FA2_SIM_T_LSE];
    printf("CONFIG B=%lld H=%lld N=%lld d=%lld causal=%d tiles %dx%d\n", (long long)B,
           (long long)H, (long long)N, (long long)D, causal, tc.block_m, tc.block_n);
    printf("  kernel counters: read %llu written %llu (q %llu k %llu v %llu o %llu lse %llu)\n",
           (unsigned long long)t.read_bytes, (unsigned long long)t.written_bytes,
           (unsigned long long)t.q_bytes, (unsigned long long)t.k_bytes,
           (unsigned long long)t.v_bytes, (unsigned long long)t.o_bytes,
           (unsigned long long)t.lse_bytes);
    printf("  sim global:      read %lld written %lld  -> %s\n", (long long)c->global_read,
           (long long)c->global_written, same ? "EQUAL per tensor" : "DIFFERENT");
    printf("  sim DRAM (L2):   read %lld written %lld; compulsory %lld/%lld\n",
           (long long)c->dram_read, (long long)c->dram_written,
           (long long)r.compulsory_read, (long long)r.compulsory_written);
    return same ? 0 : 2;
}
