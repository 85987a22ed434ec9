/* softmax_tile.c — the online softmax over one transposed score tile
 * (FA2 Algorithm 1, lines 8-10), shared by the CPU mirror's forward
 * (tiled_fwd.c) and its forward over a KV cache (tiled_kvcache.c): for
 * each query row (a column of S^T) fold the tile's max into the running
 * state, turn S into P = exp2(S c - m c), add the float32 row sums into l,
 * rescale the accumulator, and round P to the input dtype for the P V
 * product. The per-row arithmetic is lib/fa2_tile.h's, with an exp2 that
 * vectorises (cpu/fa2_cpu_simd.h). */
#include "config.h"
#include "fa2_cpu.h"
#include "fa2_cpu_simd.h"

FA2_CPU_CLONES
void fa2_cpu_softmax_tile(const fa2_cpu_softmax_io *io, int64_t rows, int64_t cols)
{
    const int64_t d = io->d, ld = io->ld;
    const float c = io->scale_log2;
    float *tmax = io->tile_max, *ms = io->max_scaled, *sum = io->rowsum;

    for (int64_t i = 0; i < rows; i++)
        tmax[i] = FA2_NEG_INF;
    for (int64_t j = 0; j < cols; j++) {
        const float *sj = io->st + j * ld;
#pragma omp simd
        for (int64_t i = 0; i < rows; i++)
            tmax[i] = sj[i] > tmax[i] ? sj[i] : tmax[i];
    }
    for (int64_t i = 0; i < rows; i++) {
        io->alpha[i] = fa2_softmax_rescale(&io->state[i], tmax[i], c, &ms[i]);
        sum[i] = 0.0f;
    }
    /* P = exp2(S c - m c): fa2_softmax_p's arithmetic (the exponent in the
     * form that is exact for the row, fa2_softmax_arg), with an exp2 that
     * vectorises; each row's sum runs over its keys in order */
    for (int64_t j = 0; j < cols; j++) {
        float *sj = io->st + j * ld;
#pragma omp simd
        for (int64_t i = 0; i < rows; i++) {
            sj[i] = fa2_simd_exp2(fa2_softmax_arg(sj[i], c, ms[i]));
            sum[i] += sj[i];
        }
        fa2_simd_round_row(sj, rows, io->dtype); /* round(P); l keeps float32 */
    }
    for (int64_t i = 0; i < rows; i++) {
        fa2_softmax_accumulate(&io->state[i], io->alpha[i], sum[i]);
        float *acc = io->acc + i * d;
        const float alpha = io->alpha[i];
#pragma omp simd
        for (int64_t x = 0; x < d; x++)
            acc[x] *= alpha;
    }
}
