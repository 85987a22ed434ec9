/* timing.c — see timing.h. */
#include "config.h"
#include "timing.h"

#include <stdlib.h>
#include <time.h>

double timing_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

fa2_status timing_measure(timing_fn fn, void *ctx, int min_runs,
                          timing_result *out)
{
    double t[TIMING_MAX_RUNS], total = 0.0;
    int n = 0;
    min_runs = min_runs < TIMING_MIN_RUNS ? TIMING_MIN_RUNS
               : min_runs > TIMING_MAX_RUNS ? TIMING_MAX_RUNS : min_runs;
    while (n < min_runs || (total < TIMING_MIN_S && n < TIMING_MAX_RUNS)) {
        const fa2_status st = fn(ctx, &t[n]);
        if (st != FA2_OK)
            return st;
        total += t[n++];
    }
    qsort(t, (size_t)n, sizeof t[0], by_value);
    out->seconds = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    out->min = t[0];
    out->max = t[n - 1];
    out->runs = n;
    return FA2_OK;
}
