/*
 * sim.h — the simulator's parts (the sim/ sources) and what they share.
 *
 *   args.c         fa2_sim_args: defaults, validation, tile choice -> sim_setup
 *   device.c       the GPU profiles (A100, H100, H200; key=value overrides)
 *   sched_fa2.c    FlashAttention-2 forward / backward (+ pre/postprocess)
 *   sched_fa1.c    FlashAttention(-1) forward / backward
 *   sched_std.c    standard attention forward / backward (Algorithm 0)
 *   sched_decode.c the forward over a KV cache: append, split-KV, combine
 *   record.c       the event recorder: reads, writes, atomics, the L2 feed
 *   dq_convert.c   row-wise launches: FA2 preprocess frame, dQ conversion
 *   warps.c        shared-memory traffic of a tile step: split-Q vs split-K
 *   flops.c        matmul and non-matmul FLOPs of a tile step
 *   l2.c           the L2 model: a tile-granular LRU cache
 *   run.c          the launch driver (waves, lockstep), counters, roofline
 *
 * Calls point down this list's layers: models and the recorder (args,
 * device, l2, record, warps, flops), then the schedules (dq_convert,
 * sched_*), then the driver (run, closed_form), then report
 * (tests/layers.sh checks).
 *   closed_form.c  closed-form global bytes and the compulsory bytes
 *   report.c       text / JSON / CSV
 *   ring.c         ring attention across GPUs: link bytes of a ring step,
 *                  its overlap with the step's compute, against one GPU
 *
 * THE COUNTING CONVENTION (doc/io-complexity.md, "Counting convention"):
 *  - Global bytes are what a thread block requests: a tile of `rows` valid
 *    rows of a [batch, seqlen, heads, head_dim] tensor counts rows * d *
 *    elem bytes. Rows past the end of a sequence are predicated off and not
 *    counted (partial tiles count only the rows that exist); so are padded
 *    head-dim columns. LSE, D, l, m: 4 bytes a row; the dQ accumulator:
 *    4 * d bytes a row.
 *  - An atomic add of a dQ tile into the float32 accumulator counts as a
 *    read AND a write of that tile (the read-modify-write happens at L2).
 *  - Every block loads its own resident tile (Q in the forward, K and V in
 *    the backward) and writes its outputs even when the mask leaves it no
 *    tile to visit (it writes zeros / +inf), as the CPU mirror and the
 *    kernels do. Tiles the mask skips (fa2_fwd_kv_blocks, fa2_bwd_q_blocks)
 *    are neither loaded nor computed.
 */
#ifndef FA2_SIM_H
#define FA2_SIM_H

#include "fa2_internal.h"

#include <stdint.h>
#include <stdio.h>

/* ---- the resolved problem (args.c) ---------------------------------------- */

typedef struct sim_tiles {
    int bm, bn, warps;
} sim_tiles;

/* The forward over a KV cache (FA2_SIM_DECODE), resolved. */
typedef struct sim_decode {
    int splits;         /* split-KV chunks, >= 1                            */
    int64_t page_size;  /* 0: contiguous                                    */
    int64_t seqlen_new; /* tokens the append launch writes                  */
    int64_t capacity;   /* keys a cache holds                               */
    int64_t rows;       /* packed rows per (sequence, key head): Nq group   */
    int64_t r_blocks;   /* ceil(rows / block_m)                             */
    int64_t smem;       /* the decode kernel's shared memory per block      */
    int key_warps;      /* warps sharing a block's keys: 1 or 4             */
} sim_decode;

/* Which score modifiers and dropout a FA2 pass runs with (sim/flops.c). */
typedef struct sim_mods {
    int softcap, alibi, sinks, dropout;
} sim_mods;

typedef struct sim_setup {
    fa2_problem p;  /* sizes, mask parameters, varlen: the CPU mirror's struct */
    fa2_sim_algo algo;
    fa2_sim_pass pass;
    int64_t es;     /* bytes of an operand element (q, k, v, o, dO, S, P ...) */
    int64_t E;      /* bytes of one q/k/v/o row: head_dim * es               */
    int64_t group;  /* heads_q / heads_kv                                    */
    sim_tiles fwd;  /* FA2 forward; FA1 and standard: both passes            */
    int fwd_ws;     /* the FA2 forward is the warp-specialised sm_90 kernel  */
    sim_tiles bwd;  /* FA2 backward; FA1 and standard: == fwd                */
    fa2_sim_partition partition; /* resolved: SPLIT_Q or SPLIT_K             */
    fa2_sim_order order;
    int64_t sram_elems; /* M, in elements                                     */
    int regs_per_thread;
    sim_decode dec;     /* FA2_SIM_DECODE                                     */
    int det;        /* FA2 backward, deterministic mode (fa2_sim_args)       */
    sim_mods mods;  /* FA2: score modifiers and dropout on (fa2_sim_args)    */
} sim_setup;

fa2_status sim_setup_make(const fa2_sim_args *a, const fa2_sim_device *dev,
                          sim_setup *S);

static inline int64_t sim_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t sim_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* Valid rows of tile `blk` of height `h` in a sequence of n rows. */
static inline int64_t sim_tile_rows(int64_t n, int64_t blk, int64_t h)
{
    const int64_t lo = blk * h;
    return lo >= n ? 0 : sim_min(h, n - lo);
}

/* ---- device profiles (device.c) ------------------------------------------- */

/* A profile file (key = value lines over the h100's fields), named after
 * the file unless it names itself. */
fa2_status sim_device_load(const char *path, fa2_sim_device *dev);

/* ---- the L2 model (l2.c) ----------------------------------------------------- */

typedef struct sim_l2 sim_l2;

sim_l2 *sim_l2_new(int64_t capacity_bytes);
void sim_l2_free(sim_l2 *l2);
/* One access to the line (k1, k2) of `bytes` bytes by launch `launch`.
 * A read that misses costs `bytes` of DRAM read (returned); a write makes
 * the line dirty (no DRAM read: whole sectors are overwritten). A dirty
 * line's bytes are charged to the launch that last wrote it, in
 * wb[launch], when it is evicted or flushed. Returns -1 when out of memory. */
int64_t sim_l2_access(sim_l2 *l2, uint64_t k1, uint64_t k2, int64_t bytes,
                      int write, int launch);
/* Write back every dirty line (end of the run). */
void sim_l2_flush(sim_l2 *l2);
/* DRAM bytes written back so far, by launch. */
int64_t sim_l2_writeback(const sim_l2 *l2, int launch);

/* ---- launches (run.c drives; sched_*.c describe) --------------------------- */

enum { SIM_DONE = -1 };

/* One thread block in flight: where it is in its loop nest. */
typedef struct sim_block {
    int64_t id;               /* position in launch order                   */
    int64_t mm, other, sfu;   /* its FLOPs so far (for its compute time)    */
    int64_t seq, head, slice; /* sequence, head (query or key/value), and
                                 seq * heads + head                         */
    int64_t blk;              /* its own tile index (query or key block)    */
    fa2_seq s;
    fa2_mask mask;
    int64_t lo, n;            /* its own tile: first row and valid rows     */
    fa2_block_range range;    /* the blocks it visits                       */
    int64_t step, nsteps;     /* position in the inner loop                 */
    int64_t j;                /* outer-loop cursor (FA1); FA2 backward,
                                 deterministic: the first query block       */
    int phase;                /* schedule-defined; SIM_DONE when finished   */
    /* Dependent global round trips on the block's critical path (a load
     * whose data the block waits for before it can go on): the schedule
     * counts them, run.c prices them with the device's latencies. */
    int64_t dram_trips, l2_trips, smem_trips;
    /* Pipelined tile steps after the first DRAM trip: each takes the
     * longer of the launch's tile step and a DRAM round trip (the next
     * tile streams in during the step). */
    int64_t tile_steps;
} sim_block;

typedef struct sim_ctx sim_ctx;
typedef struct sim_launch sim_launch;

struct sim_launch {
    const char *name;
    int kind;         /* which kernel, for schedules with several            */
    int64_t slices;   /* (sequence, head) pairs                            */
    int64_t tiles;    /* blocks per slice (of the longest sequence)         */
    int warps, bm, bn;
    int64_t smem;     /* shared-memory footprint of one block, bytes        */
    int qrows, krows; /* tile heights on query-side / key-side tensors      */
    int overlap;      /* tensor-core and CUDA-core work overlap (warp-
                         specialised): compute time is the longest pipe's,
                         not the sum                                       */
    double step_scale; /* a tile step's latency in units of the device's
                          tile_step_ns (its tile against 32 keys x d 128) */
    int programmatic; /* launched as the previous launch's programmatic
                         dependent (griddepcontrol): on sm_90 devices its
                         blocks are scheduled under that launch's tail, so
                         it pays no launch overhead of its own           */
    /* Set up block (slice, tile); phase SIM_DONE if it has nothing to do. */
    void (*init)(sim_ctx *c, const sim_launch *L, sim_block *b, int64_t slice,
                 int64_t tile);
    /* Do one step; return 0 when the block has finished. */
    int (*step)(sim_ctx *c, const sim_launch *L, sim_block *b);
};

/* The launches of one pass, in stream order; returns how many (<= 5). */
int sim_fa2_launches(const sim_setup *S, fa2_sim_pass pass, sim_launch *out);
int sim_fa1_launches(const sim_setup *S, fa2_sim_pass pass, sim_launch *out);
int sim_std_launches(const sim_setup *S, fa2_sim_pass pass, sim_launch *out);
int sim_decode_launches(const sim_setup *S, sim_launch *out);
typedef int (*sim_step_fn)(sim_ctx *c, const sim_launch *L, sim_block *b);
/* Start block b on the tiles of `range` it visits, `per_tile` steps each
 * (the query heads of a GQA group share a key block). */
static inline void sim_block_visit(sim_block *b, fa2_block_range range,
                                   int64_t per_tile)
{
    b->range = range;
    b->nsteps = per_tile * fa2_block_count(range);
    b->step = 0;
    b->phase = 0;
}

/* Place block b on query tile blk of (sequence, query head) slice: its
 * sequence, head and rows; returns the valid rows (0: the sequence is
 * shorter than the longest and the block has nothing to do). */
static inline int64_t sim_query_tile(const sim_setup *S, const sim_launch *L,
                                     sim_block *b, int64_t slice, int64_t blk)
{
    b->slice = slice;
    b->seq = slice / S->p.heads_q;
    b->head = slice % S->p.heads_q;
    b->blk = blk;
    b->s = fa2_problem_seq(&S->p, b->seq);
    b->lo = blk * L->bm;
    b->n = sim_tile_rows(b->s.seqlen_q, blk, L->bm);
    return b->n;
}
/* A launch of one block per (sequence, query head, bm query rows), each
 * doing `step` once (dq_convert.c). */
sim_launch sim_rows_launch(const sim_setup *S, const char *name, int bm,
                           sim_step_fn step);
/* dQ = scale * dQaccum, one block per (sequence, query head, bm rows). */
sim_launch sim_dq_convert_launch(const sim_setup *S, const char *name, int bm);

/* ---- the event recorder (record.c) ---------------------------------------------- */

struct sim_ctx {
    const sim_setup *S;
    fa2_sim_counters *c; /* the running launch's counters                   */
    int launch;
    sim_l2 *l2;          /* NULL: no L2 model                               */
    int64_t seg_q, seg_k; /* L2 line height (rows) of query-/key-side tensors */
    int64_t hits, misses;
    int oom;
};

enum { SIM_REGS = 0, SIM_SMEM = 1 };

/* rows [row_lo, row_lo + rows) of tensor t in (sequence, head) slice
 * `slice`; `col` is the key-block index of a score tile (S, P, dP, dS), 0
 * otherwise. via SIM_SMEM: a load lands in shared memory (smem write), a
 * store is staged through it (smem write + read); SIM_REGS: neither. */
void sim_read(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t row_lo,
              int64_t rows, int64_t col, int64_t row_bytes, int via);
void sim_write(sim_ctx *c, fa2_sim_tensor t, int64_t slice, int64_t row_lo,
               int64_t rows, int64_t col, int64_t row_bytes, int via);
/* float32 atomic add of a tile into global memory from registers: a read
 * and a write of the tile, performed at L2. */
void sim_atomic_add(sim_ctx *c, fa2_sim_tensor t, int64_t slice,
                    int64_t row_lo, int64_t rows, int64_t row_bytes);

/* ---- on-chip work of a step (warps.c, flops.c) ------------------------------- */

/* Shared-memory reads/writes of the compute of one forward tile step
 * (S = Q K^T, softmax, O += P V) on an r x c tile, under the partition. */
void sim_smem_fwd_step(fa2_sim_counters *c, fa2_sim_partition part, int warps,
                       int64_t r, int64_t cols, int64_t d, int64_t es);
/* ... of one backward tile step (five products; P and dS via smem). */
void sim_smem_bwd_step(fa2_sim_counters *c, int warps, int64_t r, int64_t cols,
                       int64_t d, int64_t es);
/* ... of a GEMM step C(m x n) += A(m x k) B(k x n), operands in smem,
 * output rows split over the warps (A read once, B once per warp). */
void sim_smem_gemm(fa2_sim_counters *c, int warps, int64_t m, int64_t n,
                   int64_t k, int64_t es);

typedef enum sim_flop_kind {
    SIM_FL_FA2_FWD_STEP,  /* r x c tile: S, online softmax, rescale, P V     */
    SIM_FL_FA2_FWD_END,   /* r rows: O = acc / l, LSE                         */
    SIM_FL_FA1_FWD_STEP,  /* r x c tile: S, softmax, the O_i / l_i / m_i update */
    SIM_FL_FA2_BWD_STEP,  /* r x c tile: S, P, dP, dS, dV, dK, dQ            */
    SIM_FL_FA1_BWD_STEP,  /* the same, plus D_i recomputed from O_i and dO_i  */
    SIM_FL_BWD_PRE,       /* r rows: D = rowsum(dO o O)                       */
    SIM_FL_SCALE,         /* r rows x d: one multiply an element              */
    SIM_FL_GEMM,          /* r x c x d: one matmul                            */
    SIM_FL_STD_SOFTMAX,   /* r x c tile of the row softmax                    */
    SIM_FL_STD_SOFTMAX_BWD,
    SIM_FL_STD_SOFTMAX_END /* r rows: 1 / rowsum                              */
} sim_flop_kind;

/* Add the FLOPs of one step of the given kind: an r x c tile (c = 0 for row
 * kinds) with head dim d; masked: the tile needs the element mask. */
void sim_flops(fa2_sim_counters *c, sim_flop_kind kind, int64_t r, int64_t cols,
               int64_t d, int masked);
/* The score modifiers' and dropout's share of an r x c FA2 tile step
 * (bwd: the backward's), masked as for sim_flops. */
void sim_flops_mods(fa2_sim_counters *c, const sim_mods *m, int bwd, int64_t r,
                    int64_t cols, int masked);

/* ---- shared by run.c and closed_form.c ------------------------------------- */

/* The FA2 paper's FLOPs: 4 Nq Nk d heads_q per sequence (halved when
 * causal), x2.5 for the backward, x3.5 for both. */
double sim_paper_flops(const sim_setup *S);

/* Resolved tile heights of the launches of a run (for closed forms). */
int sim_launches(const sim_setup *S, sim_launch *out);

/* ---- ring attention across GPUs (ring.c) ------------------------------------ */

typedef struct sim_link {
    const char *name;
    double bytes_per_s; /* per direction per GPU */
} sim_link;

typedef struct sim_ring_pass {
    int64_t link_bytes;  /* what one GPU sends during a step              */
    int64_t sent_bytes;  /* what one GPU sends over the whole pass        */
    double diag_ms;      /* step 0's compute (the own share)              */
    double step_ms;      /* a later step's compute                        */
    double link_ms;      /* link_bytes / bandwidth                        */
    double ring_ms;      /* the pass: steps of max(compute, link)         */
    double one_gpu_ms;   /* the whole problem on one GPU                  */
    double speedup;      /* one_gpu_ms / ring_ms                          */
    int link_bound;      /* a later step waits for the link               */
} sim_ring_pass;

typedef struct sim_ring_result {
    int world;
    sim_link link;
    int64_t kv_bytes;    /* K and V of one share (operand dtype)          */
    int64_t dkv_bytes;   /* dK and dV of one share (float32)              */
    sim_ring_pass fwd, bwd;
} sim_ring_result;

fa2_status sim_link_builtin(const char *name, sim_link *out);
fa2_status sim_ring_run(const fa2_sim_args *a, const fa2_sim_device *dev,
                        const sim_link *link, int world, sim_ring_result *out);
void sim_ring_print(FILE *f, const fa2_sim_args *a, const fa2_sim_device *dev,
                    const sim_ring_result *r);

#endif /* FA2_SIM_H */
