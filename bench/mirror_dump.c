/* mirror_dump.c — dump the tiled mirror's outputs (O, LSE, dQ, dK, dV) on a
 * fixed set of problems, and compare two dumps in ulps: how a change to the
 * tile products shows it moved no rounding point (bench/NOTES-cpu.md).
 *
 *   cc -O2 -I lib bench/mirror_dump.c -o mirror_dump BUILD/lib/.libs/libfa2.so -lm
 *   ./mirror_dump dump FILE       (with one build's libfa2 on LD_LIBRARY_PATH)
 *   ./mirror_dump cmp  OLD NEW
 * Not built by make: a developer's tool. */
#include "fa2.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15u;
static float uniform(void) /* xorshift64*, in [-1, 1) */
{
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (float)((rng * 2685821657736338717u) >> 40) / (float)(1u << 23) - 1.0f;
}

static void *fill(fa2_dtype t, size_t n, float amp)
{
    void *p = malloc(n * fa2_dtype_size(t));
    for (size_t i = 0; i < n; i++) {
        const float x = amp * uniform();
        if (t == FA2_DTYPE_FP32) ((float *)p)[i] = x;
        else if (t == FA2_DTYPE_FP16) ((uint16_t *)p)[i] = fa2_float_to_fp16(x);
        else ((uint16_t *)p)[i] = fa2_float_to_bf16(x);
    }
    return p;
}

static void put(FILE *f, fa2_dtype t, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = t == FA2_DTYPE_FP32 ? ((const float *)p)[i]
                  : t == FA2_DTYPE_FP16 ? fa2_fp16_to_float(((const uint16_t *)p)[i])
                                        : fa2_bf16_to_float(((const uint16_t *)p)[i]);
        fwrite(&x, sizeof x, 1, f);
    }
}

static int dump(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    const int64_t B = 1, N = 300, H = 4, HKV = 2;
    const int64_t dims[] = {64, 128};
    for (int dt = 0; dt < 3; dt++)
        for (int di = 0; di < 2; di++)
            for (int causal = 0; causal < 2; causal++) {
                const fa2_dtype t = (fa2_dtype)dt;
                const int64_t d = dims[di];
                const size_t nq = (size_t)(B * N * H * d), nk = (size_t)(B * N * HKV * d);
                void *q = fill(t, nq, 2.0f), *k = fill(t, nk, 2.0f), *v = fill(t, nk, 1.0f);
                void *o = fill(t, nq, 0.0f), *dO = fill(t, nq, 1.0f);
                void *dq = fill(t, nq, 0.0f), *dk = fill(t, nk, 0.0f), *dv = fill(t, nk, 0.0f);
                float *lse = calloc((size_t)(B * H * N), sizeof(float));
                fa2_fwd_args a;
                fa2_fwd_args_init(&a);
                a.q = fa2_tensor_4d(q, t, B, N, H, d);
                a.k = fa2_tensor_4d(k, t, B, N, HKV, d);
                a.v = fa2_tensor_4d(v, t, B, N, HKV, d);
                a.o = fa2_tensor_4d(o, t, B, N, H, d);
                a.lse = fa2_tensor_lse(lse, B, H, N);
                a.causal = causal;
                a.num_threads = 2;
                if (fa2_fwd(&a, FA2_BACKEND_CPU_TILED) != FA2_OK) {
                    fprintf(stderr, "fwd: %s\n", fa2_last_error());
                    return 1;
                }
                fa2_bwd_args g;
                fa2_bwd_args_init(&g);
                g.q = a.q; g.k = a.k; g.v = a.v; g.o = a.o; g.lse = a.lse;
                g.dout = fa2_tensor_4d(dO, t, B, N, H, d);
                g.dq = fa2_tensor_4d(dq, t, B, N, H, d);
                g.dk = fa2_tensor_4d(dk, t, B, N, HKV, d);
                g.dv = fa2_tensor_4d(dv, t, B, N, HKV, d);
                g.causal = causal;
                g.num_threads = 2;
                g.deterministic = 1;
                if (fa2_bwd(&g, FA2_BACKEND_CPU_TILED) != FA2_OK) {
                    fprintf(stderr, "bwd: %s\n", fa2_last_error());
                    return 1;
                }
                put(f, t, o, nq);
                put(f, FA2_DTYPE_FP32, lse, (size_t)(B * H * N));
                put(f, t, dq, nq);
                put(f, t, dk, nk);
                put(f, t, dv, nk);
                free(q); free(k); free(v); free(o); free(dO);
                free(dq); free(dk); free(dv); free(lse);
            }
    fclose(f);
    return 0;
}

/* |a - b| in ulps of the output dtype at max(|a|, |b|) (2^-23, 2^-10, 2^-7
 * relative), with the magnitude floored at 2^-10: values near zero (a
 * gradient's cancellations) are measured against the tensors' scale. */
static double ulps(float a, float b, int mant_bits)
{
    const double mag = fmax(fmax(fabs((double)a), fabs((double)b)), 0x1p-10);
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0.0 : INFINITY;
    return fabs((double)a - (double)b) / ldexp(mag, -mant_bits);
}

/* The dump holds fp32, fp16, bf16 problems in equal thirds. */
static int cmp(const char *pa, const char *pb)
{
    static const char *const names[3] = {"fp32", "fp16", "bf16"};
    static const int mant[3] = {23, 10, 7};
    FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
    if (!fa || !fb) return 1;
    fseek(fa, 0, SEEK_END);
    const size_t third = (size_t)ftell(fa) / 4 / 3;
    rewind(fa);
    for (int t = 0; t < 3; t++) {
        size_t same = 0;
        double worst = 0, sum = 0;
        float x, y;
        for (size_t i = 0; i < third && fread(&x, 4, 1, fa) == 1 &&
                           fread(&y, 4, 1, fb) == 1; i++) {
            const double u = ulps(x, y, mant[t]);
            same += memcmp(&x, &y, 4) == 0;
            sum += u;
            if (u > worst) worst = u;
        }
        printf("%s: %zu values, %.2f%% bit-identical, max %.2f ulp, mean %.4f ulp "
               "(%s ulps of max(|x|, 2^-10))\n", names[t], third,
               100.0 * (double)same / (double)third, worst, sum / (double)third,
               names[t]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "dump")) return dump(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "cmp")) return cmp(argv[2], argv[3]);
    fprintf(stderr, "usage: mirror_dump dump FILE | cmp OLD NEW\n");
    return 2;
}
