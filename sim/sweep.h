/* sweep.h — the simulator's sweeps: the grids of problems `fa2 sim --sweep`
 * runs (the FA2 paper's, sequence length, SRAM size), run on the library's
 * worker threads, and the gnuplot figure of a finished sweep. */
#ifndef FA2_SIM_SWEEP_H
#define FA2_SIM_SWEEP_H

#include "fa2.h"

#include <stdio.h>

/* One problem of a sweep and what came of it. */
typedef struct sim_sweep_row {
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_tile_config t; /* the forward's tiles */
    fa2_status st;
    char err[256];
} sim_sweep_row;

typedef enum sim_sweep_kind {
    SIM_SWEEP_PAPER,  /* batch x seqlen = 16k, hidden 2048, d 64 and 128,
                       * seqlen 512 .. 16k, causal and not; 3 algorithms */
    SIM_SWEEP_SEQLEN, /* seqlen 256 .. 64k at the given batch and heads  */
    SIM_SWEEP_SRAM,   /* M = 16K .. 1M bytes, FA1 and FA2, global bytes  */
    SIM_SWEEP_COUNT
} sim_sweep_kind;

extern const char *const sim_sweep_names[SIM_SWEEP_COUNT + 1]; /* NULL-ended */

#define SIM_SWEEP_MAX_ROWS 256

/* Fill rows[] with the sweep's problems, each a copy of *base with what
 * the sweep varies set; *base gets the pass and sizes the sweep implies
 * (paper: fwd+bwd unless pass_given; sram: seqlen 16k unless given, no
 * L2). Returns the number of rows. */
int sim_sweep_rows(sim_sweep_kind kind, fa2_sim_args *base, int pass_given,
                   sim_sweep_row *rows);

/* Run every row on num_threads workers; progress(user, done, n) is called
 * (from any worker) as rows finish. FA2_OK, or the first failing row's
 * status with its sentence in fa2_last_error(). */
fa2_status sim_sweep_run(sim_sweep_row *rows, int n, const fa2_sim_device *dev,
                         int num_threads, void (*progress)(void *, int, int),
                         void *user);

/* Print a finished sweep as a table, one row per simulation. */
void sim_sweep_print(FILE *f, sim_sweep_kind kind, const fa2_sim_args *base,
                     const fa2_sim_device *dev, const sim_sweep_row *rows, int n);

/* Write the figure of a finished sweep: the numbers to dat, the gnuplot
 * script to gp (it reads dat_name and writes svg_name, both relative to
 * the script's folder; plot_arg: the --plot argument, for its header). */
void sim_sweep_plot(sim_sweep_kind kind, const fa2_sim_args *base,
                    const fa2_sim_device *dev, const sim_sweep_row *rows, int n,
                    FILE *dat, FILE *gp, const char *dat_name, const char *gp_name,
                    const char *svg_name, const char *plot_arg);

#endif /* FA2_SIM_SWEEP_H */
