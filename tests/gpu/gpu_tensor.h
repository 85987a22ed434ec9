/* gpu_tensor.h — what the GPU suites share (tests/gpu/test_cuda_fwd.c and
 * test_cuda_bwd.c): a seeded generator, and strided tensors kept as a host
 * copy and a device copy, poisoned around the view, uploaded and downloaded,
 * with element access by logical index. Built only with CUDA. */
#ifndef FA2_GPU_TENSOR_H
#define FA2_GPU_TENSOR_H

#ifdef FA2_HAVE_CUDA
#include "fa2.h"
#include "gpu_mem.h"

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* the run's seed (printed; FA2_TEST_SEED reproduces a run) */
extern uint64_t run_seed;

typedef enum layout {
    L_DENSE = 0, /* [B, N, H, d]                          */
    L_PADDED,    /* gaps after each head, row and batch   */
    L_HEAD_MAJOR,/* memory order [B, H, N, d]             */
    L_SEQ_MAJOR, /* memory order [N, B, H, d]             */
    L_COUNT
} layout;

typedef struct gtensor {
    fa2_tensor host; /* view on the host copy   */
    fa2_tensor dev;  /* same view on the device */
    int ndim;
    size_t esize;
    int64_t n_alloc; /* elements in the allocation */
    void *h_base, *d_base;
} gtensor;

extern const char *const layout_names[L_COUNT];

uint64_t splitmix(uint64_t *s);
double unif(uint64_t *s);
double normal(uint64_t *s);
void *xmalloc(size_t n);
void gt_alloc(gtensor *x, fa2_dtype dt, int ndim, const int64_t *shape,
              layout lay);
void gt_free(gtensor *x);
int64_t gt_off(const gtensor *x, const int64_t *i);
double gt_get_raw(const gtensor *x, const void *base, int64_t off);
void gt_set(gtensor *x, const int64_t *i, float v);
int64_t gt_numel(const gtensor *x);
void gt_unflatten(const gtensor *x, int64_t f, int64_t *i);
void gt_fill(gtensor *x, uint64_t *rng, double sigma);
void gt_upload(gtensor *x);
void *gt_download(const gtensor *x);
int64_t gt_outside_touched(const gtensor *x, const void *buf);

#endif /* FA2_HAVE_CUDA */
#endif /* FA2_GPU_TENSOR_H */
