/* timing.h — wall-clock timing of a pass: a warm-up run, then the median
 * of a few timed runs while that stays cheap, or the one run for a pass
 * that is expensive by itself. */
#ifndef FA2_TOOLS_TIMING_H
#define FA2_TOOLS_TIMING_H

#include "fa2.h"

/* Seconds on CLOCK_MONOTONIC. */
double timing_now(void);

/* One run of the thing timed; *seconds is the run alone (set-up such as
 * poisoning outputs excluded, waiting for the device included). */
typedef fa2_status (*timing_fn)(void *ctx, double *seconds);

typedef struct timing_result {
    double seconds; /* the median of the timed runs */
    int runs;       /* how many runs the median is of */
} timing_result;

/* After a warm-up run that took warmup_s: if warmup_is_timed (a CPU
 * backend, with nothing to initialise lazily) and it took at least
 * TIMING_EXPENSIVE_S, that run is the measurement. Otherwise run fn as
 * often as fits in about TIMING_BUDGET_S (1 .. TIMING_MAX_RUNS times) and
 * take the median. Stops at the first failing run and returns its status. */
#define TIMING_EXPENSIVE_S 0.25
#define TIMING_BUDGET_S 1.0
#define TIMING_MAX_RUNS 7
fa2_status timing_measure(timing_fn fn, void *ctx, double warmup_s,
                          int warmup_is_timed, timing_result *out);

#endif
