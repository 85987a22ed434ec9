/* hello_fa2.c — the smallest complete use of libfa2: causal attention on
 * random fp16 inputs with the tiled CPU mirror, checked against the float64
 * oracle. Built and run by `make check` (linked against the shared library,
 * so it uses nothing but the public API); outside the tree:
 *
 *     cc hello_fa2.c $(pkg-config --cflags --libs fa2) -o hello_fa2
 */
#include <fa2.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 1, SEQLEN = 256, HEADS = 4, HEAD_DIM = 64 };

/* a uniform value in [-1, 1) from a small linear congruential generator */
static float next_uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*state >> 40) * 0x1p-24 * 2.0 - 1.0);
}

static fa2_status attend(const uint16_t *q, const uint16_t *k, const uint16_t *v,
                         uint16_t *o, float *lse, fa2_backend backend)
{
    fa2_fwd_args a;
    fa2_fwd_args_init(&a);
    a.q = fa2_tensor_4d((void *)q, FA2_DTYPE_FP16, BATCH, SEQLEN, HEADS, HEAD_DIM);
    a.k = fa2_tensor_4d((void *)k, FA2_DTYPE_FP16, BATCH, SEQLEN, HEADS, HEAD_DIM);
    a.v = fa2_tensor_4d((void *)v, FA2_DTYPE_FP16, BATCH, SEQLEN, HEADS, HEAD_DIM);
    a.o = fa2_tensor_4d(o, FA2_DTYPE_FP16, BATCH, SEQLEN, HEADS, HEAD_DIM);
    a.lse = fa2_tensor_lse(lse, BATCH, HEADS, SEQLEN);
    a.causal = 1;
    return fa2_fwd(&a, backend);
}

int main(void)
{
    const size_t n = (size_t)BATCH * SEQLEN * HEADS * HEAD_DIM;
    uint16_t *q = malloc(n * 2), *k = malloc(n * 2), *v = malloc(n * 2);
    uint16_t *o = malloc(n * 2), *o_ref = malloc(n * 2);
    float *lse = malloc(sizeof(float) * BATCH * HEADS * SEQLEN);
    float *lse_ref = malloc(sizeof(float) * BATCH * HEADS * SEQLEN);
    if (!q || !k || !v || !o || !o_ref || !lse || !lse_ref) {
        fprintf(stderr, "hello_fa2: out of memory\n");
        return 1;
    }
    uint64_t state = 42;
    for (size_t i = 0; i < n; i++) {
        q[i] = fa2_float_to_fp16(next_uniform(&state));
        k[i] = fa2_float_to_fp16(next_uniform(&state));
        v[i] = fa2_float_to_fp16(next_uniform(&state));
    }
    fa2_status st = attend(q, k, v, o, lse, FA2_BACKEND_CPU_TILED);
    if (st == FA2_OK)
        st = attend(q, k, v, o_ref, lse_ref, FA2_BACKEND_CPU_ORACLE);
    if (st != FA2_OK) {
        fprintf(stderr, "hello_fa2: %s: %s\n", fa2_status_str(st), fa2_last_error());
        return 1;
    }
    double err = 0.0;
    for (size_t i = 0; i < n; i++)
        err = fmax(err, fabs((double)fa2_fp16_to_float(o[i]) -
                             (double)fa2_fp16_to_float(o_ref[i])));
    printf("fa2 %s: causal attention, %d x %d x %d x %d fp16, tiled mirror vs "
           "oracle: max |diff| = %.3g\n", fa2_version_string(), BATCH, SEQLEN,
           HEADS, HEAD_DIM, err);
    free(q); free(k); free(v); free(o); free(o_ref); free(lse); free(lse_ref);
    /* fp16 outputs of values in [-1, 1]: a few units of 2^-11 apart at most */
    return err < 4e-3 ? 0 : 1;
}
