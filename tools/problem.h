/* problem.h — a random attention problem in host memory: the shapes a user
 * asked for, seeded normal inputs in the chosen dtype, output buffers, and
 * for --varlen random sequence lengths packed with cu_seqlens; for the
 * backward, on request, a random output gradient dO and gradient buffers. */
#ifndef FA2_TOOLS_PROBLEM_H
#define FA2_TOOLS_PROBLEM_H

#include "fa2.h"

#include <stddef.h>
#include <stdint.h>

/* What to build (the command line's view). */
typedef struct problem_spec {
    fa2_dtype dtype;
    int64_t batch;    /* sequences                                        */
    int64_t seqlen_q; /* per sequence; with varlen, the mean length        */
    int64_t seqlen_k;
    int64_t heads_q;
    int64_t heads_kv;
    int64_t head_dim;
    int causal;
    int64_t window_left;  /* -1: unbounded */
    int64_t window_right; /* -1: unbounded */
    int varlen;
    uint64_t seed;    /* inputs, dO, lengths, sinks and dropout's seed       */
    /* score modifiers and dropout (doc/algorithm.md); 0 = off */
    float softcap;
    int alibi;        /* slopes 2^(-8 k / heads), k = 1 .. heads (ALiBi paper) */
    int sinks;        /* random N(0, 1) sink logits, one per query head      */
    float dropout_p;
} problem_spec;

/* The built problem. Fixed lengths: q/k/v/o are [batch, seqlen, heads, d].
 * Varlen: [1, total, heads, d] with sequence b in rows cu_seqlens[b] ..
 * cu_seqlens[b+1]-1; the lengths are random, sum to batch * seqlen, and
 * with batch >= 4 include one empty sequence and one of length 1. */
typedef struct problem {
    problem_spec spec;
    int64_t dim0;     /* batch, or 1 when packed                            */
    int64_t rows_q;   /* dim 1 of q/o/lse: seqlen_q or total_q              */
    int64_t rows_k;   /* dim 1 of k/v                                       */
    int64_t max_seqlen_q, max_seqlen_k;
    int32_t *cu_seqlens_q; /* batch + 1 entries; NULL without varlen        */
    int32_t *cu_seqlens_k;
    void *q, *k, *v, *o; /* elements of spec.dtype                           */
    float *lse;          /* [dim0, heads_q, rows_q]                          */
    size_t q_bytes, kv_bytes, lse_bytes; /* o has q_bytes                    */
    /* The backward's (problem_alloc_grads; NULL until then): dout like o,
     * dq like q, dk and dv like k and v. */
    void *dout, *dq, *dk, *dv;
    /* [heads_q] each, NULL when off: ALiBi slopes, sink logits, and the
     * backward's dsinks */
    float *slopes, *sinks, *dsinks;
} problem;

/* Check a spec's sizes against what fits in memory and in int32
 * cu_seqlens; on failure write a sentence to why and return -1. */
int problem_spec_check(const problem_spec *s, char *why, size_t why_len);

/* Allocate and fill; returns 0, or -1 (out of memory) with *p empty. */
int problem_create(problem *p, const problem_spec *s);
void problem_destroy(problem *p);

/* Forward arguments over the host buffers: q, k, v, p->o, p->lse, the
 * mask, cu_seqlens and max lengths. Callers may point o/lse elsewhere. */
fa2_fwd_args problem_fwd_args(const problem *p, int num_threads);

/* Fill o and lse with NaN, so an element a backend forgets to write is an
 * error in the check. */
void problem_poison_outputs(problem *p);

/* Allocate the backward's buffers: dout drawn from its own seeded normal
 * stream (no element is zero), dq, dk and dv poisoned. 0, or -1 (out of
 * memory; problem_destroy frees what was allocated). */
int problem_alloc_grads(problem *p);

/* Backward arguments over the host buffers: problem_fwd_args' q, k, v, o,
 * lse, mask and lengths, with dout, dq, dk, dv (problem_alloc_grads). */
fa2_bwd_args problem_bwd_args(const problem *p, int num_threads);

/* Fill dq, dk and dv with NaN. */
void problem_poison_grads(problem *p);

/* FLOPs by the FA2 paper's count (fa2_fwd_flops of the host arguments). */
double problem_fwd_flops(const problem *p);

#endif
