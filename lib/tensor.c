/* tensor.c — strided tensor views and row access in any dtype. */
#include "config.h"
#include "fa2_internal.h"

/* a * b for sizes, saturating at INT64_MAX (a shape that large is refused
 * by validation: its span passes 2^62 bytes), and without the undefined
 * behaviour of a signed overflow; negative sizes give their (refused)
 * product unless it overflows. */
static int64_t size_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return INT64_MAX;
    return r;
}

fa2_tensor fa2_tensor_4d(void *data, fa2_dtype t, int64_t d0, int64_t d1,
                         int64_t d2, int64_t d3)
{
    fa2_tensor x;
    x.data = data;
    x.dtype = t;
    x.shape[0] = d0;
    x.shape[1] = d1;
    x.shape[2] = d2;
    x.shape[3] = d3;
    x.stride[3] = 1;
    x.stride[2] = d3;
    x.stride[1] = size_mul(d2, d3);
    x.stride[0] = size_mul(d1, x.stride[1]);
    return x;
}

fa2_tensor fa2_tensor_lse(float *data, int64_t batch, int64_t heads,
                          int64_t seqlen)
{
    fa2_tensor x = fa2_tensor_4d(data, FA2_DTYPE_FP32, batch, heads, seqlen, 1);
    /* lse is 3-d: drop the trailing unit dim */
    x.stride[0] = size_mul(heads, seqlen);
    x.stride[1] = seqlen;
    x.stride[2] = 1;
    x.shape[3] = 1;
    x.stride[3] = 1;
    return x;
}

void fa2_load_row_f32(const fa2_tensor *t, int64_t b, int64_t row, int64_t h,
                      int64_t n, float *out)
{
    const int64_t off = fa2_offset4(t, b, row, h, 0);
    switch (t->dtype) {
    case FA2_DTYPE_FP32: {
        const float *src = (const float *)t->data + off;
        for (int64_t i = 0; i < n; i++)
            out[i] = src[i];
        break;
    }
    case FA2_DTYPE_FP16: {
        const uint16_t *src = (const uint16_t *)t->data + off;
        for (int64_t i = 0; i < n; i++)
            out[i] = fa2_fp16_to_float(src[i]);
        break;
    }
    case FA2_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)t->data + off;
        for (int64_t i = 0; i < n; i++)
            out[i] = fa2_bf16_to_float(src[i]);
        break;
    }
    }
}

void fa2_load_row_f64(const fa2_tensor *t, int64_t b, int64_t row, int64_t h,
                      int64_t n, double *out)
{
    float tmp[256];
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        const int64_t m = n - i0 < 256 ? n - i0 : 256;
        fa2_tensor shifted = *t;
        shifted.data = (char *)t->data + (size_t)i0 * fa2_dtype_size(t->dtype);
        fa2_load_row_f32(&shifted, b, row, h, m, tmp);
        for (int64_t i = 0; i < m; i++)
            out[i0 + i] = tmp[i];
    }
}

void fa2_store_row_f32(const fa2_tensor *t, int64_t b, int64_t row, int64_t h,
                       int64_t n, const float *in)
{
    const int64_t off = fa2_offset4(t, b, row, h, 0);
    switch (t->dtype) {
    case FA2_DTYPE_FP32: {
        float *dst = (float *)t->data + off;
        for (int64_t i = 0; i < n; i++)
            dst[i] = in[i];
        break;
    }
    case FA2_DTYPE_FP16: {
        uint16_t *dst = (uint16_t *)t->data + off;
        for (int64_t i = 0; i < n; i++)
            dst[i] = fa2_float_to_fp16(in[i]);
        break;
    }
    case FA2_DTYPE_BF16: {
        uint16_t *dst = (uint16_t *)t->data + off;
        for (int64_t i = 0; i < n; i++)
            dst[i] = fa2_float_to_bf16(in[i]);
        break;
    }
    }
}
