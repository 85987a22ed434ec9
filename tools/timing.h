/* timing.h — wall-clock timing of a pass as every fa2 subcommand reports
 * it: after the caller's warm-up run (never counted), the pass runs at
 * least TIMING_MIN_RUNS times and until TIMING_MIN_S have passed (at most
 * TIMING_MAX_RUNS times); the report is the median and the spread (the
 * fastest and the slowest run). */
#ifndef FA2_TOOLS_TIMING_H
#define FA2_TOOLS_TIMING_H

#include "fa2.h"

/* Seconds on CLOCK_MONOTONIC. */
double timing_now(void);

/* One run of the thing timed; *seconds is the run alone (set-up such as
 * poisoning outputs excluded, waiting for the device included). */
typedef fa2_status (*timing_fn)(void *ctx, double *seconds);

typedef struct timing_result {
    double seconds;  /* the median of the timed runs */
    double min, max; /* the fastest and the slowest  */
    int runs;        /* how many runs                */
} timing_result;

#define TIMING_MIN_RUNS 3
#define TIMING_MIN_S 0.5
#define TIMING_MAX_RUNS 101

/* Time fn as above (min_runs > TIMING_MIN_RUNS asks for more runs). Stops
 * at the first failing run and returns its status. */
fa2_status timing_measure(timing_fn fn, void *ctx, int min_runs,
                          timing_result *out);

#endif
